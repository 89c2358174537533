"""The alert inbox: alerts raised by the log analysis, and what people do with them (ANON-13, SEC-107(2),
SEC-132, MLIT-9.5.8, SEC-135).

An alert is ``open`` when raised, ``acknowledged`` once someone has taken it up (with a note), and
``closed`` with a resolution saying what was found. Raising (``services.analysis``), acknowledging and
closing are each recorded in the tamper-evident log in the same transaction as the change. Nobody
acknowledges or closes an alert about themselves (SEC-19: an auditee never audits themselves).

Texts are Japanese first: every rule has a title and a summary in Japanese and English, filled from the
alert's ``params``; e-mail and syslog notifications carry both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import string
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.domain.events import Event, Outcome
from hogo.domain.roles import Permission
from hogo.domain.text import has_control_chars, nfkc
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import audit
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import Alert, AlertEvent, AuditEvent

STATUSES = ("open", "acknowledged", "closed")
STATUS_FILTERS = ("active", "open", "acknowledged", "closed", "all")  # active = open or acknowledged
SEVERITIES = ("low", "medium", "high")
MAX_NOTE = 1000
MAX_EVENTS_SHOWN = 1000

SEVERITY_LABELS: dict[str, tuple[str, str]] = {
    "high": ("高", "high"),
    "medium": ("中", "medium"),
    "low": ("低", "low"),
}
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "open": ("未対応", "open"),
    "acknowledged": ("対応中", "acknowledged"),
    "closed": ("完了", "closed"),
}

# Each rule's title and summary, Japanese then English. Placeholders are filled from the alert's params
# (numbers with thousands separators); a missing one shows as "?" rather than failing.
RULE_TEXTS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "bulk": (
        ("大量ダウンロードの警告", "Bulk download warning"),
        ("{subject} が {window_minutes} 分以内に {records} 件（本人 {persons} 人）の記録を参照・検索・持出ししました"
         "（しきい値: {max_records} 件 / {max_persons} 人）。",
         "{subject} read, searched or exported {records} records ({persons} persons) within {window_minutes} "
         "minutes (threshold: {max_records} records / {max_persons} persons)."),
    ),
    "off_hours": (
        ("時間外のアクセス", "Access outside working hours"),
        ("{subject} が {date} の業務時間外（業務時間 {working_hours}）に {events} 回個人データにアクセスしました"
         "（最初は {first_time}）。",
         "{subject} accessed personal data {events} times on {date} outside working hours ({working_hours}), "
         "first at {first_time}."),
    ),
    "persons": (
        ("多数の本人の記録へのアクセス", "Records of many persons accessed"),
        ("{subject} が {window_minutes} 分以内に本人 {persons} 人分の記録にアクセスしました"
         "（しきい値: {max_persons} 人）。",
         "{subject} accessed the records of {persons} persons within {window_minutes} minutes "
         "(threshold: {max_persons} persons)."),
    ),
    "denials": (
        ("拒否の繰り返し（探索の疑い）", "Repeated denials (possible probing)"),
        ("{subject} のアクセスが {window_minutes} 分以内に {denials} 回拒否されました（しきい値: {min_denials} 回）。",
         "{subject} was denied {denials} times within {window_minutes} minutes (threshold: {min_denials})."),
    ),
    "inactive_account": (
        ("無効・期限切れアカウントによるアクセス", "Access by a disabled or expired account"),
        ("状態が「{state_ja}」のアカウント {subject} で {events} 件の操作が記録されました（{date}）。",
         "{events} actions were recorded for the account {subject} while it was {state} ({date})."),
    ),
    "contractor_ending": (
        ("契約終了間近の委託先によるアクセス", "Access by a contractor whose term is ending"),
        ("有効期限（{valid_until} まで）が {days} 日以内の委託先 {subject} が {date} に {events} 回個人データに"
         "アクセスしました。",
         "The contractor {subject}, whose account ends within {days} days (valid through {valid_until}), "
         "accessed personal data {events} times on {date}."),
    ),
    "reveals": (
        ("個人番号の多数表示", "Many My Number reveals"),
        ("{subject} が {window_minutes} 分以内に個人番号を {reveals} 回表示しました（しきい値: {max_reveals} 回）。",
         "{subject} revealed My Numbers {reveals} times within {window_minutes} minutes "
         "(threshold: {max_reveals})."),
    ),
    "exports": (
        ("大量の持出し・エクスポート", "Large export or take-out"),
        ("{subject} が {window_minutes} 分以内に {exports} 回、計 {records} 件の記録を持出し・エクスポートしました"
         "（しきい値: {max_records} 件 / {max_exports} 回）。",
         "{subject} exported or took out {records} records in {exports} operations within {window_minutes} "
         "minutes (threshold: {max_records} records / {max_exports} operations)."),
    ),
    "new_address": (
        ("新しいアドレスからのサインイン", "Sign-in from a new address"),
        ("{subject} が、過去 {lookback_days} 日間に使われていないアドレス {address} からサインインしました（{date}）。",
         "{subject} signed in from {address}, an address not used in the previous {lookback_days} days ({date})."),
    ),
    # Take-outs (services.takeouts, SEC-49, SEC-27(1)): raised by the register's scheduled job and requests.
    "takeout_overdue": (
        ("持出しの返却・廃棄期限超過", "Take-out overdue"),
        ("{subject} の持出し #{takeout}（{file}、{transport}、媒体 {media_id}）が返却・廃棄期限 {due} を過ぎています。",
         "Take-out #{takeout} by {subject} ({file}, {transport}, medium {media_id}) was due back or disposed of by "
         "{due}."),
    ),
    "takeout_emergency": (
        ("緊急持出し（事後報告待ち）", "Emergency take-out (to be reported)"),
        ("{subject} が承認前に緊急持出し #{takeout}（{file}）を行いました。{report_due} までに事後の承認が必要です。",
         "{subject} took out #{takeout} ({file}) in an emergency without prior approval; it must be approved "
         "afterwards by {report_due}."),
    ),
    "takeout_report_overdue": (
        ("緊急持出しの事後報告の遅延", "Emergency take-out not reported in time"),
        ("{subject} の緊急持出し #{takeout}（{file}）の事後承認が期限 {report_due} までに済んでいません。",
         "The emergency take-out #{takeout} by {subject} ({file}) was not approved afterwards by {report_due}."),
    ),
    "takeout_report_rejected": (
        ("緊急持出しの事後報告の却下", "Emergency take-out rejected afterwards"),
        ("{subject} の緊急持出し #{takeout}（{file}）が事後に却下されました。複製の回収・廃棄を確認してください。",
         "The emergency take-out #{takeout} by {subject} ({file}) was rejected afterwards: see that the copy is "
         "returned or disposed of."),
    ),
}
INACTIVE_STATES_JA = {"disabled": "無効", "expired": "期限切れ", "not_yet_valid": "有効期間前"}


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _fill(template: str, params: Mapping[str, Any], subject: str) -> str:
    values = _Params(subject=subject)
    for key, value in params.items():
        values[key] = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    if "state" in params:
        values["state_ja"] = INACTIVE_STATES_JA.get(str(params["state"]), str(params["state"]))
    return string.Formatter().vformat(template, (), values)


def rule_title(rule: str, lang: str = "ja") -> str:
    titles = RULE_TEXTS.get(rule, ((rule, rule), ("", "")))[0]
    return titles[0] if lang == "ja" else titles[1]


def describe(rule: str, params: Mapping[str, Any], subject: str, lang: str = "ja") -> str:
    """The alert's summary in ``lang`` (``ja`` or ``en``)."""
    texts = RULE_TEXTS.get(rule)
    if texts is None:
        return f"{rule}: {subject}"
    return _fill(texts[1][0] if lang == "ja" else texts[1][1], params, subject)


# ------------------------------------------------------------------------------------- views


@dataclasses.dataclass(frozen=True)
class AlertView:
    id: int
    rule: str
    severity: str
    status: str
    subject_key: str
    subject_user_id: int | None
    subject_name: str | None
    window_start: dt.datetime
    window_end: dt.datetime
    params: dict[str, Any]
    event_count: int
    first_seq: int
    last_seq: int
    opened_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    ack_note: str | None
    closed_at: dt.datetime | None
    closed_by: str | None
    resolution: str | None
    notified_at: dt.datetime | None
    notify_pending: tuple[str, ...]
    notify_error: str | None

    @property
    def subject(self) -> str:
        return self.subject_name or self.subject_key

    def title(self, lang: str = "ja") -> str:
        return rule_title(self.rule, lang)

    def summary(self, lang: str = "ja") -> str:
        return describe(self.rule, self.params, self.subject, lang)

    @property
    def title_ja(self) -> str:
        return self.title("ja")

    @property
    def title_en(self) -> str:
        return self.title("en")

    @property
    def summary_ja(self) -> str:
        return self.summary("ja")

    @property
    def summary_en(self) -> str:
        return self.summary("en")


@dataclasses.dataclass(frozen=True)
class AlertDetail:
    alert: AlertView
    events: list[AuditEvent]  # the log entries behind the alert, oldest first (at most MAX_EVENTS_SHOWN)
    linked: int  # how many entries are linked to the alert (event_count may be larger: links are capped)


def view(a: Alert) -> AlertView:
    return AlertView(
        id=a.id, rule=a.rule, severity=a.severity, status=a.status, subject_key=a.subject_key,
        subject_user_id=a.subject_user_id, subject_name=a.subject_name, window_start=a.window_start,
        window_end=a.window_end, params=dict(a.params or {}), event_count=a.event_count, first_seq=a.first_seq,
        last_seq=a.last_seq, opened_at=a.opened_at, updated_at=a.updated_at, acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by_name, ack_note=a.ack_note, closed_at=a.closed_at,
        closed_by=a.closed_by_name, resolution=a.resolution, notified_at=a.notified_at,
        notify_pending=tuple(a.notify_pending or ()), notify_error=a.notify_error,
    )


# ------------------------------------------------------------------------------------ reading


def list_alerts(hogo: Hogo, principal: Principal, *, status: str = "active", rule: str | None = None,
                limit: int = 200, before_id: int | None = None) -> list[AlertView]:
    """Newest first. ``status``: active (open or acknowledged), open, acknowledged, closed or all."""
    principal.require(Permission.ALERT_READ)
    if status not in STATUS_FILTERS:
        raise ValidationFailed(f"status must be one of {', '.join(STATUS_FILTERS)}", field="status")
    q = select(Alert)
    if status == "active":
        q = q.where(Alert.status.in_(("open", "acknowledged")))
    elif status != "all":
        q = q.where(Alert.status == status)
    if rule:
        q = q.where(Alert.rule == rule)
    if before_id:
        q = q.where(Alert.id < before_id)
    with hogo.unit_of_work(readonly=True) as db:
        rows = db.scalars(q.order_by(Alert.id.desc()).limit(min(max(limit, 1), 1000)))
        return [view(a) for a in rows]


def count_active(hogo: Hogo, principal: Principal) -> dict[str, int]:
    """Open and acknowledged alerts by severity (for a badge or a summary line)."""
    principal.require(Permission.ALERT_READ)
    with hogo.unit_of_work(readonly=True) as db:
        rows = db.execute(select(Alert.severity, func.count()).where(Alert.status.in_(("open", "acknowledged")))
                          .group_by(Alert.severity)).all()
    return {str(s): int(n) for s, n in rows}


def _alert(db: Session, alert_id: int, *, lock: bool = False) -> Alert:
    q = select(Alert).where(Alert.id == alert_id)
    a = db.scalar(q.with_for_update() if lock else q)
    if a is None:
        raise NotFound(f"no alert {alert_id}", code="alert_not_found")
    return a


def get_alert(hogo: Hogo, principal: Principal, alert_id: int, *, ctx: RequestContext | None = None) -> AlertDetail:
    """The alert and the log entries behind it. Showing log entries is reading the log: with ``ctx`` (a
    person looking) the read is itself logged (ANON-12)."""
    principal.require(Permission.ALERT_READ)
    with hogo.unit_of_work(readonly=ctx is None) as db:
        a = _alert(db, alert_id)
        if ctx is not None:
            audit.record(db, now=hogo.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS, ctx=ctx,
                         actor_id=principal.user_id, actor_name=principal.username, target=f"alert:{a.id}",
                         details={"rule": a.rule, "events": a.event_count})
        linked = int(db.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.alert_id == a.id)) or 0)
        events = list(db.scalars(
            select(AuditEvent).join(AlertEvent, AlertEvent.seq == AuditEvent.seq)
            .where(AlertEvent.alert_id == a.id).order_by(AuditEvent.seq).limit(MAX_EVENTS_SHOWN)
        ))
        return AlertDetail(view(a), events, linked)


# ------------------------------------------------------------------------------------ acting


def clean_note(value: str | None, *, field: str, required: bool) -> str | None:
    """Free text kept with an alert: NFKC, line breaks allowed, no other control characters."""
    text = nfkc(value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        if required:
            raise ValidationFailed(f"{field} must not be empty", field=field)
        return None
    if has_control_chars(text.replace("\n", " ").replace("\t", " ")):
        raise ValidationFailed(f"{field} must not contain control characters", field=field)
    if len(text) > MAX_NOTE:
        raise ValidationFailed(f"{field} must be at most {MAX_NOTE} characters", field=field)
    return text


def _not_about_yourself(principal: Principal, a: Alert) -> None:
    if a.subject_user_id is not None and a.subject_user_id == principal.user_id:
        raise Forbidden("an alert about your own actions must be handled by someone else",
                        code="own_alert", requirement="SEC-19")


def _record(db: Session, hogo: Hogo, principal: Principal, a: Alert, event: Event, ctx: RequestContext,
            details: dict[str, Any]) -> None:
    audit.record(db, now=hogo.clock.now(), event=event, outcome=Outcome.SUCCESS, ctx=ctx,
                 actor_id=principal.user_id, actor_name=principal.username, subject_user_id=a.subject_user_id,
                 target=f"alert:{a.id}", details={"rule": a.rule, "severity": a.severity, **details})


def acknowledge(hogo: Hogo, principal: Principal, alert_id: int, *, note: str | None,
                ctx: RequestContext) -> AlertView:
    """Take an open alert up: it stays in the inbox as acknowledged until closed."""
    principal.require(Permission.ALERT_WRITE)
    text = clean_note(note, field="note", required=False)
    with hogo.unit_of_work() as db:
        a = _alert(db, alert_id, lock=True)
        _not_about_yourself(principal, a)
        if a.status != "open":
            raise Conflict(f"alert {a.id} is {a.status}, not open", code="alert_not_open",
                           details={"status": a.status})
        now = hogo.clock.now()
        a.status, a.acknowledged_at, a.updated_at = "acknowledged", now, now
        a.acknowledged_by_id, a.acknowledged_by_name, a.ack_note = principal.user_id, principal.username, text
        _record(db, hogo, principal, a, Event.ALERT_ACKNOWLEDGED, ctx, {"note": text})
        return view(a)


def close(hogo: Hogo, principal: Principal, alert_id: int, *, resolution: str, ctx: RequestContext) -> AlertView:
    """Close an open or acknowledged alert, saying what was found and done (the resolution is required)."""
    principal.require(Permission.ALERT_WRITE)
    text = clean_note(resolution, field="resolution", required=True)
    with hogo.unit_of_work() as db:
        a = _alert(db, alert_id, lock=True)
        _not_about_yourself(principal, a)
        if a.status == "closed":
            raise Conflict(f"alert {a.id} is already closed", code="alert_closed", details={"status": a.status})
        now = hogo.clock.now()
        a.status, a.closed_at, a.updated_at = "closed", now, now
        a.closed_by_id, a.closed_by_name, a.resolution = principal.user_id, principal.username, text
        _record(db, hogo, principal, a, Event.ALERT_CLOSED, ctx, {"resolution": text})
        return view(a)


# ------------------------------------------------------------------------------ notification


def _local(value: dt.datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def notification(a: AlertView, *, instance_name: str, timezone: str) -> tuple[str, str]:
    """Subject and body of the message sent to the alert sinks: Japanese first, then English."""
    tz = ZoneInfo(timezone)
    sev_ja, sev_en = SEVERITY_LABELS.get(a.severity, (a.severity, a.severity))
    subject = f"【{instance_name}】{a.title('ja')}（重要度 {sev_ja}）: {a.subject} / {a.title('en')} #{a.id}"
    lines: Sequence[str] = (
        a.summary("ja"),
        "",
        a.summary("en"),
        "",
        f"警告番号 Alert: #{a.id}",
        f"重要度 Severity: {sev_ja} ({sev_en})",
        f"規則 Rule: {a.title('ja')} ({a.rule})",
        f"対象 Subject: {a.subject}",
        f"期間 Window: {_local(a.window_start, tz)} – {_local(a.window_end, tz)} ({timezone})",
        f"記録 Log entries: {a.event_count:,} (#{a.first_seq}–#{a.last_seq})",
        f"検知 Raised: {_local(a.opened_at, tz)}",
        "",
        f"確認・対応 (review and act): hogo alerts show {a.id} / hogo alerts ack {a.id} --note …",
    )
    return subject, "\n".join(lines) + "\n"
