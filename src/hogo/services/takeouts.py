"""Take-outs and provisions (持出し・提供) with approval, and the take-out register (持出管理簿).

A take-out request names the file, the fields, the records (a selection), the purpose, the recipient (a
public key from ``hogo package keygen``, or a passphrase given through another channel), the destination,
the transport (download, media with its ID, transmission) and the date by which the copy is returned or
disposed of (SEC-49, MN-5c, MN-6d: chosen safe means, always encrypted, tracked transport). At the request:

* the file's marks are checked (``handling.refusals`` for a package): no-take-out and no-copy files are
  refused with the reason (SEC-47(1)); no-distribution refuses a provision outside the viewing scope;
* the requester's grants must cover ``export`` of those fields for the purpose (the guard checks again at
  download; this fails early with the reason, ANON-7);
* an approval request of kind ``takeout`` is made (services/approvals.py): the protection manager of the
  file's department, and for confidentiality 3 — or integrity-2 / availability-2 information carried out
  on media (SEC-145, SEC-147, ANON-22) — also the information-security officer (SEC-47(2), SEC-48(3)). The
  requester never decides; a conflicted approver escalates to the superior (SEC-19).

Once approved, only the requester downloads it, as a package built by ``services.packages.build_package``
(encrypted to the recipient, signed, marked; the guard checks and logs the export, which counts toward the
bulk-export alerts). Destroy-after-reading information is downloaded once; the server keeps no copy.

The register: requested → approved | rejected | cancelled → taken_out → (overdue) → returned | disposed;
an approved take-out never taken out before its due date expires. A scheduled job marks copies past their
due date overdue, raises an alert and records a reminder (daily). The taker declares the copy returned or
disposed of; someone else — the file's protection manager, the general protection manager or the
information-security officer — confirms it (SEC-19).

Emergencies (SEC-27(1)): when ``takeout_emergency_allowed`` is set, an ``emergency`` request is approved at
once, flagged in the register, an alert is raised, and its approval request becomes the after-the-fact
report, to be approved within ``takeout_emergency_report_days`` (an alert when it is not; another when it
is rejected). Every step is an entry of the tamper-evident log, never a record value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.crypto.package import Recipient, parse_public_key
from hogo.domain.dates import to_instant
from hogo.domain.events import Event, Outcome
from hogo.domain.files import Action, FileSpec
from hogo.domain.handling import Marks, Use, refusals
from hogo.domain.policy import GrantIndex, decide
from hogo.domain.roles import Permission, Role
from hogo.domain.text import has_control_chars, nfkc
from hogo.errors import Conflict, Forbidden, HogoError, NotFound, ValidationFailed
from hogo.services import approvals, audit, packages
from hogo.services.alerts import clean_note
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.services.files import file_by_code, load_spec
from hogo.services.grants import candidate_grants
from hogo.store.models import Alert, ApprovalRequest, AuditHead
from hogo.store.models_takeouts import Takeout

KIND = "takeout"
STATUSES = ("requested", "approved", "rejected", "cancelled", "taken_out", "overdue", "returned", "disposed",
            "expired")
OPEN_STATUSES = ("requested", "approved", "taken_out", "overdue")
STATUS_FILTERS = ("open", "all", *STATUSES)
OUT_STATUSES = ("taken_out", "overdue")  # a copy is outside hogo
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "requested": ("承認待ち", "requested"),
    "approved": ("承認済（未持出し）", "approved"),
    "rejected": ("却下", "rejected"),
    "cancelled": ("取消", "cancelled"),
    "taken_out": ("持出し中", "taken out"),
    "overdue": ("返却・廃棄期限超過", "overdue"),
    "returned": ("返却確認済", "returned"),
    "disposed": ("廃棄確認済", "disposed"),
    "expired": ("期限切れ（未持出し）", "expired"),
}
TRANSPORTS: dict[str, tuple[str, str]] = {
    "download": ("ダウンロード", "download"),
    "media": ("記録媒体", "media"),
    "transmission": ("送信", "transmission"),
}
RECIPIENT_MODES = ("public_key", "passphrase")
CLOSINGS = ("returned", "disposed")
MAX_FIELDS = 200
MAX_TEXT = 200
MAX_KEY = 4000
REMIND_EVERY = dt.timedelta(days=1)
# The levels that confirm a return or disposal (besides the file's protection manager).
CONFIRMERS = (Role.GENERAL_PROTECTION_MANAGER, Role.INFORMATION_SECURITY_OFFICER)


# ------------------------------------------------------------------------------------ views


@dataclasses.dataclass(frozen=True)
class TakeoutView:
    id: int
    request_id: int
    status: str
    file: str
    requester: str
    department: str
    fields: tuple[str, ...]
    selection: dict[str, Any] | None
    purpose: str
    recipient: str
    recipient_mode: str
    recipient_key: str | None
    outside_scope: bool
    destination: str
    transport: str
    media_id: str | None
    due_at: dt.datetime
    due_date: str
    marks: dict[str, Any]
    note: str | None
    emergency: bool
    report_due_at: dt.datetime | None
    report_status: str | None  # emergency: the after-the-fact approval's status
    approval_status: str
    steps: tuple[approvals.StepView, ...]
    created_at: dt.datetime
    approved_at: dt.datetime | None
    taken_out_at: dt.datetime | None
    downloads: int
    package_id: str | None
    package_sha256: str | None
    record_count: int | None
    overdue_at: dt.datetime | None
    reminders: int
    reminded_at: dt.datetime | None
    declared: str | None
    declared_at: dt.datetime | None
    declared_note: str | None
    closed_at: dt.datetime | None
    confirmed_by: str | None
    confirm_note: str | None
    can_download: bool
    can_confirm: bool
    can_declare: bool

    @property
    def status_ja(self) -> str:
        return STATUS_LABELS.get(self.status, (self.status, self.status))[0]

    @property
    def status_en(self) -> str:
        return STATUS_LABELS.get(self.status, (self.status, self.status))[1]

    @property
    def transport_ja(self) -> str:
        return TRANSPORTS.get(self.transport, (self.transport, self.transport))[0]

    @property
    def marks_label(self) -> str:
        return str(Marks.from_dict(self.marks).label)

    @property
    def marks_label_ja(self) -> str:
        return str(Marks.from_dict(self.marks).label_ja)

    @property
    def open_once(self) -> bool:
        return Marks.from_dict(self.marks).open_once


def _view(db: Session, t: Takeout, viewer: Principal | None, now: dt.datetime) -> TakeoutView:
    r = db.get(ApprovalRequest, t.request_id)
    assert r is not None
    req = approvals._view(db, r, viewer)
    mine = viewer is not None and viewer.user_id == t.requester_id
    once_done = Marks.from_dict(t.marks).open_once and t.downloads > 0
    return TakeoutView(
        id=t.id, request_id=t.request_id, status=t.status, file=t.file_code, requester=t.requester_name,
        department=t.department, fields=tuple(t.fields), selection=t.selection, purpose=t.purpose,
        recipient=t.recipient, recipient_mode=t.recipient_mode, recipient_key=t.recipient_key,
        outside_scope=t.outside_scope, destination=t.destination, transport=t.transport, media_id=t.media_id,
        due_at=t.due_at, due_date=t.due_date, marks=dict(t.marks), note=t.note, emergency=t.emergency,
        report_due_at=t.report_due_at,
        report_status=r.status if t.emergency else None, approval_status=r.status, steps=req.steps,
        created_at=t.created_at, approved_at=t.approved_at, taken_out_at=t.taken_out_at, downloads=t.downloads,
        package_id=t.package_id, package_sha256=t.package_sha256, record_count=t.record_count,
        overdue_at=t.overdue_at, reminders=t.reminders, reminded_at=t.reminded_at, declared=t.declared,
        declared_at=t.declared_at, declared_note=t.declared_note, closed_at=t.closed_at,
        confirmed_by=t.confirmed_by_name, confirm_note=t.confirm_note,
        can_download=mine and t.status in ("approved", "taken_out") and t.due_at > now and not once_done,
        can_confirm=viewer is not None and not mine and t.status in OUT_STATUSES and _confirmer(viewer, t),
        can_declare=mine and t.status in OUT_STATUSES and t.declared is None)


def _confirmer(p: Principal, t: Takeout) -> bool:
    return (approvals.holds(p, approvals.Level(Role.PROTECTION_MANAGER.value, t.department))
            or any(g.role in CONFIRMERS for g in p.roles))


def _may_see(db: Session, p: Principal, t: Takeout) -> bool:
    if p.user_id == t.requester_id or p.can(Permission.AUDIT_READ) or _confirmer(p, t):
        return True
    r = db.get(ApprovalRequest, t.request_id)
    return r is not None and approvals.involved(db, r, p)


def _takeout(db: Session, takeout_id: int, *, lock: bool = False) -> Takeout:
    q = select(Takeout).where(Takeout.id == takeout_id)
    t = db.scalar(q.with_for_update() if lock else q)
    if t is None:
        raise NotFound(f"no take-out {takeout_id}", code="takeout_not_found")
    return t


def _visible(db: Session, p: Principal, takeout_id: int, *, lock: bool = False) -> Takeout:
    t = _takeout(db, takeout_id, lock=lock)
    if not _may_see(db, p, t):
        raise NotFound(f"no take-out {takeout_id}", code="takeout_not_found")
    return t


def list_takeouts(hogo: Hogo, principal: Principal, *, status: str = "open", mine: bool = False,
                  file_code: str | None = None, limit: int = 200) -> list[TakeoutView]:
    """The register, newest first: your own take-outs; every take-out of the files you manage; all of them
    for the general protection manager, the information-security officer and the audit roles."""
    principal.require(Permission.SELF_READ)
    if status not in STATUS_FILTERS:
        raise ValidationFailed(f"status must be one of {', '.join(STATUS_FILTERS)}", field="status")
    q = select(Takeout)
    if status == "open":
        q = q.where(Takeout.status.in_(OPEN_STATUSES))
    elif status != "all":
        q = q.where(Takeout.status == status)
    if mine:
        q = q.where(Takeout.requester_id == principal.user_id)
    if file_code:
        q = q.where(Takeout.file_code == file_code.strip().lower())
    out: list[TakeoutView] = []
    now = hogo.clock.now()
    with hogo.unit_of_work(readonly=True) as db:
        for t in db.scalars(q.order_by(Takeout.id.desc()).limit(5000)):
            if _may_see(db, principal, t):
                out.append(_view(db, t, principal, now))
                if len(out) >= min(max(limit, 1), 1000):
                    break
    return out


def get_takeout(hogo: Hogo, principal: Principal, takeout_id: int) -> TakeoutView:
    principal.require(Permission.SELF_READ)
    with hogo.unit_of_work(readonly=True) as db:
        return _view(db, _visible(db, principal, takeout_id), principal, hogo.clock.now())


# ---------------------------------------------------------------------------------- requests


def steps_for(spec: FileSpec, transport: str) -> list[approvals.Level]:
    """The protection manager of the file's department; for confidentiality 3, or integrity-2 /
    availability-2 information carried out on media, also the information-security officer."""
    c = spec.classification
    steps = [approvals.Level(Role.PROTECTION_MANAGER.value, spec.department)]
    if c.confidentiality == 3 or (transport == "media" and (c.integrity == 2 or c.availability == 2)):
        steps.append(approvals.Level(Role.INFORMATION_SECURITY_OFFICER.value, None))
    return steps


def _text(value: str | None, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str | None:
    text = nfkc(value or "").strip()
    if not text:
        if required:
            raise ValidationFailed(f"{field} must not be empty", field=field)
        return None
    if has_control_chars(text):
        raise ValidationFailed(f"{field} must not contain control characters", field=field)
    if len(text) > limit:
        raise ValidationFailed(f"{field} must be at most {limit} characters", field=field)
    return text


def check_recipient_key(text: str) -> str:
    """A recipient public key as ``hogo package keygen`` prints it (checked by the package format)."""
    key = (text or "").strip()
    if not key:
        raise ValidationFailed("give the recipient's public key (hogo package keygen prints it)",
                               field="recipient_key")
    if len(key) > MAX_KEY or has_control_chars(key):
        raise ValidationFailed("the recipient key is not a public key text", field="recipient_key")
    try:
        parse_public_key(key)
    except ValueError as exc:
        raise ValidationFailed(f"the recipient key is not usable: {exc}", field="recipient_key") from None
    return key


def _fields(spec: FileSpec, fields: Iterable[str]) -> list[str]:
    out: list[str] = []
    for f in fields:
        name = nfkc(str(f)).strip()
        if not name:
            continue
        if name not in spec.field_names:
            raise ValidationFailed(f"no field {name!r} in {spec.code}", field="fields")
        if name not in out:
            out.append(name)
    if not out:
        raise ValidationFailed("name the fields to take out", field="fields")
    if len(out) > MAX_FIELDS:
        raise ValidationFailed(f"at most {MAX_FIELDS} fields", field="fields")
    return out


def _selection(spec: FileSpec, selection: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """None (every record the grants cover), {"where": {FIELD: VALUE}} or {"records": [ID, …]}."""
    if not selection:
        return None
    unknown = set(selection) - {"where", "records"}
    if unknown or len(selection) != 1:
        raise ValidationFailed("select records by 'where' (FIELD=VALUE) or by 'records' (IDs), one of them",
                               field="selection")
    if "where" in selection:
        where = selection["where"]
        if not isinstance(where, Mapping) or not where:
            raise ValidationFailed("'where' needs at least one FIELD=VALUE", field="selection")
        clean: dict[str, str] = {}
        for k, v in where.items():
            if k not in spec.field_names:
                raise ValidationFailed(f"no field {k!r} in {spec.code}", field="selection")
            if not spec.field(k).indexed:
                raise ValidationFailed(f"{k!r} is not an indexed field: records are selected by indexed fields",
                                       field="selection")
            value = _text(str(v), "selection", limit=1000)
            assert value is not None
            clean[str(k)] = value
        return {"where": clean}
    ids = selection["records"]
    if not isinstance(ids, list) or not ids or len(ids) > 10_000:
        raise ValidationFailed("'records' needs 1 to 10,000 record IDs", field="selection")
    from hogo.services.guard import RECORD_ID_RE

    clean_ids = [str(i).strip() for i in ids]
    for i in clean_ids:
        if not RECORD_ID_RE.match(i):
            raise ValidationFailed(f"{i[:64]!r} is not a record ID", field="selection")
    return {"records": list(dict.fromkeys(clean_ids))}


def _due(hogo: Hogo, due: dt.date | dt.datetime, now: dt.datetime) -> dt.datetime:
    """A date means the end of that day in the organisation's zone."""
    at = to_instant(due, hogo.settings.timezone, end_of_day=not isinstance(due, dt.datetime))
    assert at is not None
    if at <= now:
        raise ValidationFailed("the return or disposal date must be in the future", field="due")
    if at > now + dt.timedelta(days=hogo.settings.takeout_max_days + 1):
        raise ValidationFailed(f"a copy may stay out at most {hogo.settings.takeout_max_days} days "
                               "(takeout_max_days)", field="due", requirement="SEC-49")
    return at


def _log(db: Session, hogo: Hogo, p: Principal | None, t: Takeout, event: Event, ctx: RequestContext, *,
         outcome: Outcome = Outcome.SUCCESS, reason: str | None = None,
         details: Mapping[str, Any] | None = None) -> None:
    """Names the take-out, its request, transport, media ID and due date; never the free texts (a
    recipient or destination could name a person) nor any record value."""
    audit.record(db, now=hogo.clock.now(), event=event, outcome=outcome, ctx=ctx,
                 actor_id=p.user_id if p else None, actor_name=p.username if p else None,
                 subject_user_id=t.requester_id if p is None or p.user_id != t.requester_id else None,
                 target=f"takeout:{t.id}", reason=reason, file_code=t.file_code, purpose=t.purpose,
                 fields=t.fields,
                 details={"takeout": t.id, "request": t.request_id, "status": t.status, "transport": t.transport,
                          "media_id": t.media_id, "due": t.due_at.isoformat(), "emergency": t.emergency,
                          "outside_scope": t.outside_scope, **(details or {})})


def _denied(hogo: Hogo, p: Principal, file_code: str, purpose: str | None, fields: Iterable[str], exc: HogoError,
            ctx: RequestContext, event: Event = Event.TAKEOUT_REQUESTED, target: str | None = None) -> None:
    """A refused take-out is recorded too (in its own transaction, after the refusal)."""
    with hogo.unit_of_work() as db:
        audit.record(db, now=hogo.clock.now(), event=event, outcome=Outcome.DENIED, ctx=ctx, actor_id=p.user_id,
                     actor_name=p.username, target=target or f"file:{file_code}", reason=exc.code,
                     file_code=file_code, purpose=(purpose or "")[:200] or None, fields=list(fields)[:MAX_FIELDS],
                     details={"requirement": exc.requirement} if exc.requirement else None)


def _refused_by_marks(marks: Marks, outside_scope: bool) -> Forbidden | None:
    found = refusals(marks, Use.PACKAGE, encrypted=True, outside_scope=outside_scope)
    if not found:
        return None
    return Forbidden("; ".join(r.reason_en for r in found), code="takeout_restricted",
                     requirement="SEC-47" if any(r.restriction != "no_distribution" for r in found) else "SEC-48",
                     details={"restrictions": [str(r.restriction) for r in found],
                              "reasons_ja": [r.reason_ja for r in found], "marks": marks.label})


def _check_grant(hogo: Hogo, db: Session, p: Principal, file_id: int, spec: FileSpec, purpose: str,
                 fields: list[str]) -> None:
    from hogo.services.guard import _requester

    d = decide(_requester(p), GrantIndex(candidate_grants(db, file_id, p)), action=Action.EXPORT, purpose=purpose,
               file_purposes=spec.purposes, now=hogo.clock.now(), fields=fields, segment_applies=False)
    if not d.allowed:
        raise Forbidden(f"your grants do not allow this take-out: {d.reason}", code=d.code,
                        requirement=d.requirement or "ANON-7")


def request_takeout(hogo: Hogo, principal: Principal, file_code: str, *, fields: Iterable[str],
                    purpose: str | None, recipient: str, destination: str, transport: str,
                    due: dt.date | dt.datetime, ctx: RequestContext, recipient_key: str | None = None,
                    passphrase: bool = False, media_id: str | None = None,
                    selection: Mapping[str, Any] | None = None, outside_scope: bool = False,
                    emergency: bool = False, note: str | None = None) -> TakeoutView:
    """Request a take-out (or, with ``outside_scope``, a provision). Refused with the reason when the
    file's marks forbid it or the requester's grants do not cover exporting those fields for the
    purpose; every refusal is logged."""
    fields = list(fields)
    try:
        return _request(hogo, principal, file_code, fields=fields, purpose=purpose, recipient=recipient,
                        destination=destination, transport=transport, due=due, ctx=ctx,
                        recipient_key=recipient_key, passphrase=passphrase, media_id=media_id, selection=selection,
                        outside_scope=outside_scope, emergency=emergency, note=note)
    except Forbidden as exc:
        _denied(hogo, principal, file_code, purpose, (nfkc(str(f)).strip() for f in fields), exc, ctx)
        raise


def _request(hogo: Hogo, principal: Principal, file_code: str, *, fields: list[str], purpose: str | None,
             recipient: str, destination: str, transport: str, due: dt.date | dt.datetime, ctx: RequestContext,
             recipient_key: str | None, passphrase: bool, media_id: str | None,
             selection: Mapping[str, Any] | None, outside_scope: bool, emergency: bool,
             note: str | None) -> TakeoutView:
    from hogo.services.guard import _purpose

    principal.require(Permission.SELF_WRITE)
    principal.require_data_scope(Permission.DATA_EXPORT)
    if transport not in TRANSPORTS:
        raise ValidationFailed(f"transport must be one of {', '.join(TRANSPORTS)}", field="transport",
                               requirement="SEC-49")
    media = _text(media_id, "media_id", required=transport == "media", limit=64)
    if transport == "media" and not media:
        raise ValidationFailed("a take-out on media names the medium's ID (--media-id)", field="media_id",
                               requirement="MN-6d")
    who = _text(recipient, "recipient")
    where_to = _text(destination, "destination")
    text_note = clean_note(note, field="note", required=False)
    key = None if passphrase else check_recipient_key(recipient_key or "")
    if passphrase and recipient_key:
        raise ValidationFailed("give a recipient public key or choose a passphrase, not both", field="recipient_key")
    purp = _purpose(purpose)
    if emergency and not hogo.settings.takeout_emergency_allowed:
        raise Forbidden("emergency take-outs without prior approval are not allowed here "
                        "(takeout_emergency_allowed)", code="emergency_not_allowed", requirement="SEC-27")
    now = hogo.clock.now()
    due_at = _due(hogo, due, now)
    assert who is not None and where_to is not None
    with hogo.unit_of_work() as db:
        row = file_by_code(db, file_code)
        spec = load_spec(hogo, row)
        flds = _fields(spec, fields)
        sel = _selection(spec, selection)
        marks = Marks.of(spec)
        refused = _refused_by_marks(marks, outside_scope)
        if refused is not None:
            raise refused
        _check_grant(hogo, db, principal, row.id, spec, purp, flds)
        summary = _summary(hogo, emergency=emergency, outside_scope=outside_scope, transport=transport, media=media,
                           who=who, where_to=where_to, due_at=due_at, note=text_note)
        r = approvals.create(db, hogo, principal, kind=KIND, steps=steps_for(spec, transport), reason=summary,
                             ctx=ctx, file_id=row.id, file_code=row.code, purpose=purp, fields=flds)
        t = Takeout(
            request_id=r.id, status="approved" if emergency else "requested", file_id=row.id, file_code=row.code,
            requester_id=principal.user_id, requester_name=principal.username, department=spec.department,
            fields=flds, selection=sel, purpose=purp, recipient=who,
            recipient_mode="passphrase" if passphrase else "public_key", recipient_key=key,
            outside_scope=outside_scope, destination=where_to, transport=transport, media_id=media, due_at=due_at,
            due_date=_last_day(hogo, due_at),
            marks=marks.to_dict(), note=text_note, emergency=emergency,
            report_due_at=now + dt.timedelta(days=hogo.settings.takeout_emergency_report_days) if emergency else None,
            created_at=now, updated_at=now, approved_at=now if emergency else None, downloads=0, reminders=0)
        db.add(t)
        db.flush()
        r.outcome = {"takeout": t.id}
        _log(db, hogo, principal, t, Event.TAKEOUT_REQUESTED, ctx,
             details={"steps": [s["required_role"] for s in r.steps], "marks": marks.label,
                      "recipient_mode": t.recipient_mode, "selection": sorted(sel) if sel else None})
        if emergency:
            _raise_alert(db, hogo, t, "takeout_emergency", "medium", ctx, {
                "takeout": t.id, "file": t.file_code, "report_due": _day(hogo, t.report_due_at)})
        takeout_id = t.id
    return get_takeout(hogo, principal, takeout_id)


def _day(hogo: Hogo, when: dt.datetime | None) -> str:
    if when is None:
        return "-"
    from zoneinfo import ZoneInfo

    return when.astimezone(ZoneInfo(hogo.settings.timezone)).strftime("%Y-%m-%d %H:%M")


def _last_day(hogo: Hogo, due_at: dt.datetime) -> str:
    """The due date as people wrote it: ``due_at`` is the first instant after that day."""
    from zoneinfo import ZoneInfo

    local = due_at.astimezone(ZoneInfo(hogo.settings.timezone))
    if local.time() == dt.time(0, 0):
        return (local - dt.timedelta(days=1)).date().isoformat()
    return local.strftime("%Y-%m-%d %H:%M")


def _summary(hogo: Hogo, *, emergency: bool, outside_scope: bool, transport: str, media: str | None, who: str,
             where_to: str, due_at: dt.datetime, note: str | None) -> str:
    """The approval request's reason: what the approvers decide on, in words (kept with the request, not
    in the log)."""
    kind = "緊急持出し（事後報告）" if emergency else "提供" if outside_scope else "持出し"
    how = TRANSPORTS[transport][0] + (f"・媒体 {media}" if media else "")
    text = f"{kind}（{how}）: 宛先 {who} / 持出先 {where_to} / 返却・廃棄期限 {_last_day(hogo, due_at)}"
    if note:
        text += f" / {note}"
    return text[:approvals.MAX_REASON]


# ---------------------------------------------------------------------- the approval kind's hooks


def _by_request(db: Session, request_id: int) -> Takeout:
    t = db.scalar(select(Takeout).where(Takeout.request_id == request_id).with_for_update())
    if t is None:
        raise NotFound(f"no take-out for request {request_id}", code="takeout_not_found")
    return t


def _apply(hogo: Hogo, approver: Principal, request_id: int, ctx: RequestContext) -> dict[str, Any]:
    """Every step approved: the take-out may be downloaded (an emergency one's report is accepted)."""
    with hogo.unit_of_work() as db:
        r, _ = approvals.approved_to_apply(db, request_id, KIND, approver, what="take-out")
        t = _by_request(db, request_id)
        now = hogo.clock.now()
        outcome: dict[str, Any] = {"takeout": t.id}
        if t.emergency:
            outcome["report"] = "approved"
        elif t.status == "requested":
            t.status, t.approved_at, t.updated_at = "approved", now, now
        r.status, r.applied_at, r.updated_at, r.outcome = "applied", now, now, outcome
        _log(db, hogo, approver, t, Event.TAKEOUT_APPROVED, ctx, details={"report": t.emergency})
    return outcome


def _closed(db: Session, hogo: Hogo, r: ApprovalRequest, p: Principal, ctx: RequestContext) -> None:
    """The request was rejected or withdrawn: so is the take-out. An emergency take-out's report cannot
    be withdrawn; its rejection raises an alert (the copy is out without approval)."""
    t = _by_request(db, r.id)
    if t.emergency:
        if r.status == "cancelled":
            raise Forbidden("an emergency take-out must be reported: its report cannot be withdrawn",
                            code="report_required", requirement="SEC-27")
        _log(db, hogo, p, t, Event.TAKEOUT_CLOSED, ctx, reason="report_rejected")
        _raise_alert(db, hogo, t, "takeout_report_rejected", "high", ctx, {"takeout": t.id, "file": t.file_code})
        return
    if t.status != "requested":
        return
    t.status, t.updated_at = ("rejected" if r.status == "rejected" else "cancelled"), hogo.clock.now()
    _log(db, hogo, p, t, Event.TAKEOUT_CLOSED, ctx, reason=t.status)


def _details(db: Session, r: ApprovalRequest) -> dict[str, Any] | None:
    t = db.scalar(select(Takeout).where(Takeout.request_id == r.id))
    if t is None:
        return None
    marks = Marks.from_dict(t.marks)
    return {"takeout": t.id, "takeout_status": t.status, "recipient": t.recipient, "recipient_mode": t.recipient_mode,
            "destination": t.destination, "transport": t.transport, "media_id": t.media_id,
            "due_at": t.due_at, "due_date": t.due_date, "outside_scope": t.outside_scope, "emergency": t.emergency,
            "report_due_at": t.report_due_at, "marks": marks.label,
            "marks_ja": marks.label_ja, "selection": t.selection}


approvals.register_kind(approvals.Kind(KIND, "持出し・提供", "take-out", apply=_apply, details=_details,
                                       closed=_closed))


# --------------------------------------------------------------------------------- download


@dataclasses.dataclass(frozen=True)
class Downloaded:
    takeout: TakeoutView
    path: Path
    package_id: str | None
    sha256: str | None
    records: int | None


def _for_guard(selection: Mapping[str, Any] | None) -> list[str] | dict[str, str] | None:
    """The register's selection as ``build_package`` takes it: record IDs (a list) or conditions (a mapping)."""
    if not selection:
        return None
    if "records" in selection:
        return [str(i) for i in selection["records"]]
    return {str(k): str(v) for k, v in selection["where"].items()}


def _recipient(t: Takeout, passphrase: str | None) -> Recipient:
    try:
        if t.recipient_mode == "passphrase":
            if not passphrase:
                raise ValidationFailed("this take-out is for a passphrase: give it (never on the command line)",
                                       field="passphrase")
            return Recipient.of(passphrase, passphrase=True)
        if passphrase:
            raise ValidationFailed("this take-out is for the recipient's public key: no passphrase",
                                   field="passphrase")
        return Recipient.of(t.recipient_key or "")
    except ValueError as exc:  # the package format's PackageError: says what is wrong, never the passphrase
        raise ValidationFailed(str(exc), field="passphrase" if t.recipient_mode == "passphrase"
                               else "recipient_key") from None


def _may_download(hogo: Hogo, db: Session, p: Principal, t: Takeout) -> None:
    if p.user_id != t.requester_id:
        raise Forbidden("only the requester downloads an approved take-out", code="not_requester",
                        requirement="SEC-47")
    if t.status not in ("approved", "taken_out"):
        code = "takeout_not_approved" if t.status == "requested" else "takeout_closed"
        raise Conflict(f"take-out {t.id} is {t.status}: it cannot be downloaded", code=code,
                       details={"status": t.status})
    if t.due_at <= hogo.clock.now():
        raise Conflict(f"take-out {t.id} was due back by {t.due_at.isoformat()}", code="takeout_past_due")
    row = file_by_code(db, t.file_code)
    marks = Marks.of(load_spec(hogo, row))  # the file's marks now: a restriction added since applies
    refused = _refused_by_marks(marks, t.outside_scope)
    if refused is not None:
        raise refused
    if marks.open_once and t.downloads > 0:
        raise Conflict("destroy-after-reading information is downloaded once; it has been", code="downloaded_once",
                       requirement="SEC-47")


def download(hogo: Hogo, principal: Principal, takeout_id: int, *, out_path: Path, passphrase: str | None,
             ctx: RequestContext) -> Downloaded:
    """Build the approved take-out's package at ``out_path`` (the requester only). The guard decides and
    logs the export inside ``build_package``; the register then records the package. On any failure
    nothing is left at ``out_path``."""
    principal.require(Permission.SELF_WRITE)
    refusal: HogoError | None = None
    claim = False
    with hogo.unit_of_work() as db:
        t = _visible(db, principal, takeout_id, lock=True)
        try:
            _may_download(hogo, db, principal, t)
        except HogoError as exc:
            refusal = exc
        else:
            claim = Marks.from_dict(t.marks).open_once or Marks.of(load_spec(hogo, file_by_code(db, t.file_code))
                                                                   ).open_once
            if claim:  # claimed before building, so two downloads at once cannot both have it
                t.downloads += 1
        file_code, fields, selection, purpose = t.file_code, list(t.fields), t.selection, t.purpose
        due, outside = t.due_at, t.outside_scope
    if refusal is not None:
        _denied(hogo, principal, file_code, purpose, fields, refusal, ctx, event=Event.TAKEOUT_TAKEN_OUT,
                target=f"takeout:{takeout_id}")
        raise refusal
    try:
        snap = _snapshot(hogo, takeout_id)
        recipient = _recipient(snap, passphrase)
        info = packages.build_package(hogo, principal, file_code, fields=fields, selection=_for_guard(selection),
                                      purpose=purpose, recipient=recipient, out_path=out_path,
                                      takeout_id=takeout_id, due=due, outside_scope=outside, ctx=ctx,
                                      recipient_name=snap.recipient)
        with hogo.unit_of_work() as db:
            t = _takeout(db, takeout_id, lock=True)
            if t.status not in ("approved", "taken_out"):
                raise Conflict(f"take-out {t.id} became {t.status} meanwhile", code="takeout_closed")
            now = hogo.clock.now()
            first = t.taken_out_at is None
            t.status, t.updated_at = "taken_out", now
            t.taken_out_at = t.taken_out_at or now
            if not claim:
                t.downloads += 1
            t.package_id, t.package_sha256, t.record_count = info.tracking_id, info.sha256, info.record_count
            _log(db, hogo, principal, t, Event.TAKEOUT_TAKEN_OUT, ctx,
                 details={"package": t.package_id, "sha256": t.package_sha256, "records": t.record_count,
                          "download": t.downloads, "first": first})
    except BaseException:
        with _quietly():
            out_path.unlink(missing_ok=True)
        if claim:
            with _quietly(), hogo.unit_of_work() as db:
                t = _takeout(db, takeout_id, lock=True)
                t.downloads = max(0, t.downloads - 1)
        raise
    view = get_takeout(hogo, principal, takeout_id)
    return Downloaded(view, out_path, view.package_id, view.package_sha256, view.record_count)


def _snapshot(hogo: Hogo, takeout_id: int) -> Takeout:
    with hogo.unit_of_work(readonly=True) as db:
        t = _takeout(db, takeout_id)
        db.expunge(t)
        return t


class _quietly:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# ------------------------------------------------------------------------- return or disposal


def close_copy(hogo: Hogo, principal: Principal, takeout_id: int, *, kind: str, note: str | None,
               ctx: RequestContext) -> TakeoutView:
    """``kind`` returned or disposed. From the taker it is a declaration; from the file's protection
    manager, the general protection manager or the information-security officer — never the taker — it
    is the confirmation that closes the entry (SEC-19)."""
    principal.require(Permission.SELF_WRITE)
    if kind not in CLOSINGS:
        raise ValidationFailed(f"kind must be one of {', '.join(CLOSINGS)}", field="kind")
    text = clean_note(note, field="note", required=False)
    with hogo.unit_of_work() as db:
        t = _visible(db, principal, takeout_id, lock=True)
        if t.status not in OUT_STATUSES:
            raise Conflict(f"take-out {t.id} is {t.status}: nothing is out to return or dispose of",
                           code="takeout_not_out", details={"status": t.status})
        now = hogo.clock.now()
        if principal.user_id == t.requester_id:
            t.declared, t.declared_at, t.declared_note, t.updated_at = kind, now, text, now
            _log(db, hogo, principal, t, Event.TAKEOUT_DECLARED, ctx, details={"declared": kind})
        elif _confirmer(principal, t):
            t.status, t.closed_at, t.updated_at = kind, now, now
            t.confirmed_by_id, t.confirmed_by_name, t.confirm_note = principal.user_id, principal.username, text
            _log(db, hogo, principal, t, Event.TAKEOUT_CONFIRMED, ctx,
                 details={"confirmed": kind, "declared": t.declared})
        else:
            raise Forbidden("only the file's protection manager, the general protection manager or the "
                            "information-security officer confirms a return or disposal", code="not_a_confirmer",
                            requirement="SEC-19")
    return get_takeout(hogo, principal, takeout_id)


# ----------------------------------------------------------------------------- scheduled job


def _raise_alert(db: Session, hogo: Hogo, t: Takeout, rule: str, severity: str, ctx: RequestContext,
                 params: dict[str, Any]) -> int:
    """One alert per take-out and rule (raised again only after the first is closed and a new key is used)."""
    key = f"{rule}|takeout:{t.id}"
    existing = db.scalar(select(Alert.id).where(Alert.dedup_key == key))
    if existing is not None:
        return int(existing)
    now = hogo.clock.now()
    seq = int(db.scalar(select(AuditHead.size).where(AuditHead.id == 1)) or 0)
    a = Alert(dedup_key=key, rule=rule, severity=severity, status="open", subject_key=f"takeout:{t.id}",
              subject_user_id=t.requester_id, subject_name=t.requester_name, window_start=min(t.created_at, now),
              window_end=now, params=params, event_count=0, first_seq=seq, last_seq=seq, run_id=None, opened_at=now,
              updated_at=now, notify_attempts=0)
    db.add(a)
    db.flush()
    audit.record(db, now=now, event=Event.ALERT_RAISED, outcome=Outcome.SUCCESS, ctx=ctx,
                 subject_user_id=t.requester_id, target=f"alert:{a.id}",
                 details={"rule": rule, "severity": severity, "subject": t.requester_name, "takeout": t.id})
    return a.id


@dataclasses.dataclass(frozen=True)
class SweepResult:
    overdue: tuple[int, ...] = ()
    reminded: tuple[int, ...] = ()
    expired: tuple[int, ...] = ()
    reports_overdue: tuple[int, ...] = ()


def run_overdue(hogo: Hogo, *, ctx: RequestContext | None = None) -> SweepResult:
    """Copies past their due date become overdue (an alert, and a reminder each day until closed);
    approved take-outs never taken out expire; emergency take-outs not reported in time raise an alert."""
    ctx = ctx or RequestContext()
    now = hogo.clock.now()
    overdue: list[int] = []
    reminded: list[int] = []
    expired: list[int] = []
    late: list[int] = []
    with hogo.unit_of_work() as db:
        for t in db.scalars(select(Takeout).where(Takeout.status.in_(("approved", "taken_out", "overdue")),
                                                  Takeout.due_at <= now).with_for_update()):
            if t.status == "approved":
                t.status, t.updated_at = "expired", now
                _log(db, hogo, None, t, Event.TAKEOUT_CLOSED, ctx, reason="expired")
                expired.append(t.id)
                continue
            if t.status == "taken_out":
                t.status, t.overdue_at, t.updated_at = "overdue", now, now
                t.overdue_alert_id = _raise_alert(db, hogo, t, "takeout_overdue", "high", ctx, {
                    "takeout": t.id, "file": t.file_code, "due": t.due_date,
                    "transport": t.transport, "media_id": t.media_id or "-"})
                _log(db, hogo, None, t, Event.TAKEOUT_OVERDUE, ctx, details={"alert": t.overdue_alert_id})
                overdue.append(t.id)
            if t.reminded_at is None or now - t.reminded_at >= REMIND_EVERY:
                t.reminded_at, t.reminders = now, t.reminders + 1
                _log(db, hogo, None, t, Event.TAKEOUT_REMINDED, ctx, details={"reminder": t.reminders})
                reminded.append(t.id)
        for t in db.scalars(select(Takeout).where(Takeout.emergency.is_(True), Takeout.report_alerted_at.is_(None),
                                                  Takeout.report_due_at <= now).with_for_update()):
            r = db.get(ApprovalRequest, t.request_id)
            if r is None or r.status != "pending":
                continue
            t.report_alerted_at = now
            alert = _raise_alert(db, hogo, t, "takeout_report_overdue", "high", ctx, {
                "takeout": t.id, "file": t.file_code, "report_due": _day(hogo, t.report_due_at)})
            _log(db, hogo, None, t, Event.TAKEOUT_REPORT_OVERDUE, ctx, details={"alert": alert})
            late.append(t.id)
    return SweepResult(tuple(overdue), tuple(reminded), tuple(expired), tuple(late))


def run_scheduled(hogo: Hogo) -> SweepResult:
    return run_overdue(hogo)


__all__ = ["KIND", "STATUSES", "Downloaded", "SweepResult", "TakeoutView", "close_copy", "download",
           "get_takeout", "list_takeouts", "request_takeout", "run_overdue", "steps_for"]
