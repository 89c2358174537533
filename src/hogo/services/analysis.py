"""Periodic analysis of the access record, and the alerts it raises (ANON-12, ANON-13, SEC-132, MN-6c,
MLIT-9.5.8, SEC-135, SEC-107(2)).

Rules over ``audit_events`` (and ``audit_record_refs`` for the persons each entry touched):

``bulk`` (ANON-13, 大量ダウンロードの警告)
    More than N records (sum of ``record_count``) or more than P distinct persons read, revealed,
    searched or exported by one user within W minutes.
``off_hours``
    Access to personal data outside the working hours and days (``settings.timezone``, Asia/Tokyo by
    default), holidays included; one alert per user and local day.
``persons``
    Records of more than P distinct persons accessed by one user within W minutes (slow browsing).
``denials``
    At least K refusals (``outcome = 'denied'``) of one user, or of one address without a user, within W.
``inactive_account``
    Anything done by an account while it was disabled, expired or not yet valid (compared with
    ``users.disabled_at`` / ``valid_until`` / ``valid_from``); this should never happen.
``contractor_ending``
    Access to personal data by a contractor account in the last D days before its end date.
``reveals``
    More than R My Number reveals (``data:record:reveal`` or a non-empty ``revealed`` detail) in W.
``exports``
    More than N records or more than M operations exported or taken out (``data:record:export…``,
    ``data:package:…``) in W.
``new_address``
    A sign-in from an address the user has not signed in from during the lookback period.

Windows of W minutes start every W/2 minutes (hopping windows), so any burst packed into W/2 minutes
is seen whole; overlapping windows that fire for one subject are merged into one finding. Every rule
is set-based SQL (GROUP BY user and time bucket, window functions), never a loop over log entries:
the bulk rule takes well under two seconds over a million entries (``bench/analysis_bench.py``).

The thresholds live in the database, one row per version (``analysis_configs``): every change is a new
version recorded in the log in the same transaction (SEC-84), and the settings themselves must be
reviewed periodically (ANON-13): each version says by when, ``review_config`` records the review, and
an overdue review shows up as a warning wherever alerts are listed.

``run`` analyses the entries recorded since the last run's high-water mark. A run claims a lease on
the one ``analysis_state`` row (row lock on PostgreSQL, the write lock on SQLite), so two processes
never analyse at once; alerts are deduplicated (an alert for the same rule and subject whose window
overlaps is extended rather than repeated, and ``alerts.dedup_key`` is unique), so re-analysing the
same entries raises nothing twice. New alerts are delivered to ``settings.alert_sinks`` (e-mail,
syslog, webhook) after they are committed: a failed delivery is recorded and retried by later runs,
and never loses the alert.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Table,
    Text,
    and_,
    case,
    cast,
    distinct,
    exists,
    extract,
    func,
    insert,
    literal_column,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.domain.events import Event, Outcome
from hogo.domain.roles import Permission, Role
from hogo.errors import Forbidden, ValidationFailed
from hogo.services import alerts as alert_service
from hogo.services import audit
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.services.delivery import Sink, deliver_all, parse_sink
from hogo.store.models import (
    Alert,
    AlertEvent,
    AnalysisConfig,
    AnalysisRun,
    AnalysisState,
    AuditEvent,
    AuditHead,
    AuditRecordRef,
    User,
    UserRole,
)

log = logging.getLogger("hogo.analysis")

E: Table = AuditEvent.__table__  # type: ignore[assignment]
R: Table = AuditRecordRef.__table__  # type: ignore[assignment]
U: Table = User.__table__  # type: ignore[assignment]
UR: Table = UserRole.__table__  # type: ignore[assignment]

MAX_BATCH = 1_000_000  # log entries per run; a larger backlog is worked off by the following runs
# The scheduler shares its thread with checkpoint signing: smaller batches, and a time budget per call.
SCHEDULED_BATCH = 200_000
SCHEDULED_BUDGET_S = 20.0
MAX_LINKS = 1000  # log entries linked to one alert (its event_count counts them all)
MAX_DELIVERY_ATTEMPTS = 5
# Entries the analysis writes itself: a run made of nothing else has nothing to analyse.
OWN_EVENTS = (Event.ANALYSIS_RUN.value, Event.ALERT_RAISED.value, Event.ALERT_UPDATED.value,
              Event.ALERT_DELIVERED.value)
SEVERITIES = alert_service.SEVERITIES
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_QUARTER_S = 900  # working hours and time zones are whole quarter hours

# ------------------------------------------------------------------------------- settings

RULES = ("bulk", "off_hours", "persons", "denials", "inactive_account", "contractor_ending", "reveals", "exports",
         "new_address")

DEFAULTS: dict[str, dict[str, Any]] = {
    "general": {"review_interval_days": 365},
    "working_hours": {"start": "08:00", "end": "20:00", "weekdays": [0, 1, 2, 3, 4], "holidays": []},
    "bulk": {"enabled": True, "severity": "high", "window_minutes": 60, "max_records": 1000, "max_persons": 300},
    "off_hours": {"enabled": True, "severity": "medium", "min_events": 1},
    "persons": {"enabled": True, "severity": "medium", "window_minutes": 1440, "max_persons": 200},
    "denials": {"enabled": True, "severity": "high", "window_minutes": 10, "min_denials": 5},
    "inactive_account": {"enabled": True, "severity": "high"},
    "contractor_ending": {"enabled": True, "severity": "medium", "days": 14, "min_events": 1},
    "reveals": {"enabled": True, "severity": "high", "window_minutes": 60, "max_reveals": 20},
    "exports": {"enabled": True, "severity": "high", "window_minutes": 1440, "max_records": 100, "max_exports": 10},
    "new_address": {"enabled": True, "severity": "low", "lookback_days": 90},
}

# Whole-number settings: (least, greatest).
_INT_RANGES: dict[str, tuple[int, int]] = {
    "review_interval_days": (1, 730),
    "window_minutes": (2, 7 * 24 * 60),
    "max_records": (1, 100_000_000),
    "max_persons": (1, 100_000_000),
    "min_events": (1, 1_000_000),
    "min_denials": (1, 1_000_000),
    "max_reveals": (1, 1_000_000),
    "max_exports": (1, 1_000_000),
    "days": (1, 365),
    "lookback_days": (1, 3650),
}
_TIME_RE = re.compile(r"^([01]\d|2[0-4]):(00|15|30|45)$")
MAX_HOLIDAYS = 500


def _coerce(key: str, value: Any) -> Any:
    """One setting from JSON or from a command line string, checked; ``ValidationFailed`` names the key."""
    name = key.rpartition(".")[2]
    if name == "enabled":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.strip().lower() in ("1", "true", "yes", "on")
        raise ValidationFailed(f"{key}: must be true or false", field=key)
    if name == "severity":
        if isinstance(value, str) and value.strip() in SEVERITIES:
            return value.strip()
        raise ValidationFailed(f"{key}: must be one of {', '.join(SEVERITIES)}", field=key)
    if name in ("start", "end"):
        if isinstance(value, str) and _TIME_RE.match(value.strip()):
            return value.strip()
        raise ValidationFailed(f"{key}: must be a time HH:MM on a quarter hour (00, 15, 30, 45)", field=key)
    if name in ("weekdays", "holidays"):
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValidationFailed(f"{key}: must be a list", field=key)
        if name == "weekdays":
            try:
                days = sorted({int(v) for v in items})
            except (TypeError, ValueError):
                raise ValidationFailed(f"{key}: must list weekdays 0 (Monday) … 6 (Sunday)", field=key) from None
            if any(not 0 <= d <= 6 for d in days) or any(isinstance(v, bool) for v in items):
                raise ValidationFailed(f"{key}: must list weekdays 0 (Monday) … 6 (Sunday)", field=key)
            return days
        if len(items) > MAX_HOLIDAYS:
            raise ValidationFailed(f"{key}: at most {MAX_HOLIDAYS} dates", field=key)
        try:
            return sorted({dt.date.fromisoformat(str(v)).isoformat() for v in items})
        except ValueError:
            raise ValidationFailed(f"{key}: must list dates YYYY-MM-DD", field=key) from None
    lo, hi = _INT_RANGES[name]
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationFailed(f"{key}: must be a whole number from {lo} to {hi}", field=key)
    return value


def validate(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Complete, checked settings: unknown sections or keys are refused, missing ones take the defaults."""
    out: dict[str, dict[str, Any]] = {s: dict(v) for s, v in DEFAULTS.items()}
    for section, values in settings.items():
        if section not in DEFAULTS:
            raise ValidationFailed(f"unknown section {section!r} (known: {', '.join(DEFAULTS)})", field=section)
        if not isinstance(values, Mapping):
            raise ValidationFailed(f"{section}: must be a table of settings", field=section)
        for name, value in values.items():
            key = f"{section}.{name}"
            if name not in DEFAULTS[section]:
                known = ", ".join(f"{section}.{n}" for n in DEFAULTS[section])
                raise ValidationFailed(f"unknown setting {key!r} (known: {known})", field=key)
            out[section][name] = _coerce(key, value)
    wh = out["working_hours"]
    if _minutes(wh["start"]) >= _minutes(wh["end"]):
        raise ValidationFailed("working_hours.start must be before working_hours.end", field="working_hours.start")
    return out


def flatten(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, values in settings.items() for k, v in values.items()}


def _nest(changes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"bulk.max_records": 2000}`` or ``{"bulk": {"max_records": 2000}}`` → the nested form."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, value in changes.items():
        if isinstance(value, Mapping) and "." not in key:
            out[key].update(value)
            continue
        section, dot, name = key.partition(".")
        if not dot or not name:
            raise ValidationFailed(f"setting {key!r}: use SECTION.NAME, e.g. bulk.max_records", field=key)
        out[section][name] = value
    return dict(out)


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.partition(":")
    return int(h) * 60 + int(m)


@dataclasses.dataclass(frozen=True)
class WorkingHours:
    """Working days and hours in the organisation's zone; holidays are not working days."""

    start_min: int
    end_min: int
    weekdays: frozenset[int]
    holidays: frozenset[dt.date]
    tz: ZoneInfo

    @classmethod
    def of(cls, settings: Mapping[str, Mapping[str, Any]], tz_name: str) -> WorkingHours:
        wh = settings["working_hours"]
        return cls(_minutes(wh["start"]), _minutes(wh["end"]), frozenset(wh["weekdays"]),
                   frozenset(dt.date.fromisoformat(d) for d in wh["holidays"]), ZoneInfo(tz_name))

    def working(self, when: dt.datetime) -> bool:
        local = when.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        return (local.weekday() in self.weekdays and local.date() not in self.holidays
                and self.start_min <= minute < self.end_min)

    def text(self) -> str:
        return f"{self.start_min // 60:02d}:{self.start_min % 60:02d}–{self.end_min // 60:02d}:{self.end_min % 60:02d}"


@dataclasses.dataclass(frozen=True)
class Config:
    """The settings in force (version 0: the built-in defaults, never reviewed)."""

    version: int
    settings: dict[str, dict[str, Any]]
    note: str | None = None
    created_at: dt.datetime | None = None
    created_by: str | None = None
    created_by_id: int | None = None
    reviewed_at: dt.datetime | None = None
    reviewed_by: str | None = None
    review_note: str | None = None
    review_due_at: dt.datetime | None = None

    def rule(self, name: str) -> dict[str, Any]:
        return self.settings[name]

    def review_overdue(self, now: dt.datetime) -> bool:
        return self.review_due_at is None or now >= self.review_due_at


def _config_of(config: Config | Mapping[str, Any] | None) -> Config:
    if isinstance(config, Config):
        return config
    return Config(0, validate(config or {}))


def _row_config(row: AnalysisConfig) -> Config:
    return Config(row.version, validate(row.settings), row.note, row.created_at, row.created_by_name,
                  row.created_by_id, row.reviewed_at, row.reviewed_by_name, row.review_note, row.review_due_at)


def current_config(db: Session | Connection) -> Config:
    row = db.execute(select(AnalysisConfig).order_by(AnalysisConfig.version.desc()).limit(1)).scalar()
    return Config(0, validate({})) if row is None else _row_config(row)


# ----------------------------------------------------------------------------- findings


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which log entries are behind a finding (besides its time window)."""

    events: str  # access | data | active | denied | reveal | export | login
    actor_id: int | None = None
    client_addr: str | None = None
    anonymous: bool = False  # entries without a user (denials by address)
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    off_hours: WorkingHours | None = None  # only entries outside these hours


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    subject_key: str
    subject_user_id: int | None
    subject_name: str | None
    window_start: dt.datetime
    window_end: dt.datetime
    last_seq: int  # the newest log entry behind it (a finding is new when this is past the high-water mark)
    params: dict[str, Any]
    scope: Scope


_ACCESS_EVENTS = (Event.RECORD_READ.value, Event.RECORD_REVEALED.value, Event.RECORD_SEARCHED.value)
_EXPORT_PATTERNS = ("data:record:export%", "data:package:%")


def _exported() -> ColumnElement[bool]:
    return or_(*(E.c.event.like(p) for p in _EXPORT_PATTERNS))


def _events(kind: str) -> ColumnElement[bool]:
    ok = E.c.outcome == Outcome.SUCCESS.value
    if kind == "access":  # what reads personal data out: reads, reveals, searches, exports
        return and_(ok, or_(E.c.event.in_(_ACCESS_EVENTS), _exported()))
    if kind == "data":
        return and_(ok, or_(E.c.event.like("data:record:%"), E.c.event.like("data:package:%")))
    if kind == "active":
        return and_(ok, or_(E.c.event.like("data:record:%"), E.c.event.like("data:package:%"),
                            E.c.event == Event.LOGIN_SUCCEEDED.value))
    if kind == "denied":
        return E.c.outcome == Outcome.DENIED.value
    if kind == "reveal":
        # The guard records reveals as data:record:reveal with the revealed fields in the details
        # (JSON with sorted keys and no spaces, so a non-empty list starts with "revealed":[").
        details = type_coerce(E.c.details, Text)  # the JSON text itself, not a JSON value to encode
        return and_(ok, or_(E.c.event == Event.RECORD_REVEALED.value, details.like('%"revealed":["%')))
    if kind == "export":
        return and_(ok, _exported())
    if kind == "login":
        return and_(ok, E.c.event == Event.LOGIN_SUCCEEDED.value)
    raise ValueError(kind)


def _scope_where(scope: Scope) -> list[ColumnElement[bool]]:
    where = [_events(scope.events)]
    if scope.actor_id is not None:
        where.append(E.c.actor_id == scope.actor_id)
    if scope.anonymous:
        where.append(E.c.actor_id.is_(None))
    if scope.client_addr is not None:
        where.append(E.c.client_addr == scope.client_addr)
    if scope.not_before is not None:
        where.append(E.c.ts >= scope.not_before)
    if scope.not_after is not None:
        where.append(E.c.ts < scope.not_after)
    return where


@dataclasses.dataclass(frozen=True)
class _Range:
    since: dt.datetime
    until: dt.datetime
    max_seq: int | None = None

    def where(self) -> list[ColumnElement[bool]]:
        out = [E.c.ts >= self.since, E.c.ts < self.until]
        if self.max_seq is not None:
            out.append(E.c.seq <= self.max_seq)
        return out


def _dialect(c: Session | Connection) -> str:
    if isinstance(c, Session):
        return c.get_bind().dialect.name
    return c.dialect.name


def _bucket(dialect: str, col: ColumnElement[Any], seconds: int) -> ColumnElement[int]:
    """Seconds since 1970 divided by ``seconds``, rounded down: the index of a time bucket. Constants are
    inlined so that the SELECT and GROUP BY expressions are the same text (PostgreSQL compares them)."""
    size = literal_column(str(int(seconds)), Integer)
    if dialect == "sqlite":
        return cast(func.strftime(literal_column("'%s'"), col), Integer).op("/", return_type=Integer)(size)
    return cast(func.floor(extract("epoch", col) / size), BigInteger)


def _at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _epoch(dialect: str, col: ColumnElement[Any]) -> ColumnElement[int]:
    """Whole seconds since 1970."""
    if dialect == "sqlite":
        return cast(func.strftime(literal_column("'%s'"), col), Integer)
    return cast(func.floor(extract("epoch", col)), BigInteger)


@dataclasses.dataclass(frozen=True)
class _Win:
    """A window of one subject's entries that is over a threshold."""

    subject: Any
    start: dt.datetime
    end: dt.datetime
    total: int  # records (sum of record_count)
    count: int  # entries
    persons: int  # distinct persons (0: not counted)
    last_seq: int


def _hot_subjects(c: Session | Connection, *, where: Sequence[ColumnElement[bool]], subject: ColumnElement[Any],
                  window_s: int, rng: _Range, min_total: int | None = None, min_count: int | None = None
                  ) -> list[Any]:
    """The subjects who may exceed a threshold within ``window_s``: one GROUP BY over the whole range, by
    subject and time bucket of ``window_s``. Any span of ``window_s`` lies in two buckets, so a subject
    over a threshold within one has a bucket over half of it; everyone else is cleared here."""
    k = _bucket(_dialect(c), E.c.ts, window_s)
    over = []
    if min_total is not None:
        over.append(func.sum(E.c.record_count) > min_total // 2)
    if min_count is not None:
        over.append(func.count() > min_count // 2)
    grouped = select(subject.label("subj")).where(*rng.where(), *where).group_by(subject, k).having(or_(*over))
    return sorted({r.subj for r in c.execute(grouped)}, key=str)


def _sliding(c: Session | Connection, *, where: Sequence[ColumnElement[bool]], subject: ColumnElement[Any],
             subjects: Sequence[Any], window_s: int, rng: _Range, min_total: int | None = None,
             min_count: int | None = None) -> list[_Win]:
    """Exact sliding windows for the given subjects: for each of their entries, the records and entries
    in the ``window_s`` seconds up to it (a window function with a RANGE frame), kept when over a threshold."""
    if not subjects:
        return []
    t = _epoch(_dialect(c), E.c.ts)
    frame: dict[str, Any] = {"partition_by": subject, "order_by": t, "range_": (-(window_s - 1), 0)}
    inner = (select(subject.label("subj"), t.label("at_s"), func.sum(E.c.record_count).over(**frame).label("v"),
                    func.count().over(**frame).label("n"), func.max(E.c.seq).over(**frame).label("hi"))
             .where(*rng.where(), *where, subject.in_(subjects))).subquery("sliding")
    over = []
    if min_total is not None:
        over.append(inner.c.v > min_total)
    if min_count is not None:
        over.append(inner.c.n > min_count)
    rows = c.execute(select(inner).where(or_(*over)))
    return [_Win(r.subj, _at(int(r.at_s) - window_s + 1), _at(int(r.at_s) + 1), int(r.v or 0), int(r.n), 0,
                 int(r.hi)) for r in rows]


def _window_persons(c: Session | Connection, *, where: Sequence[ColumnElement[bool]], actors: Sequence[int],
                    window_s: int, rng: _Range) -> list[_Win]:
    """Distinct persons (file, record) per user in windows of ``window_s`` starting every ``window_s / 2``,
    for the given users: each entry's records count for the two windows its half-window bucket belongs
    to (UNION ALL), then COUNT(DISTINCT …). (A distinct count has no sliding-window form in SQL.)"""
    if not actors:
        return []
    half = window_s // 2
    k = _bucket(_dialect(c), E.c.ts, half)
    x = (select(E.c.actor_id.label("subj"), k.label("k"), E.c.seq,
                (R.c.file_code + literal_column("'|'") + R.c.record_id).label("person"))
         .select_from(E.join(R, R.c.seq == E.c.seq))
         .where(*rng.where(), *where, E.c.actor_id.in_(actors))).cte("x")
    both = union_all(select(x.c.subj, x.c.k, x.c.seq, x.c.person),
                     select(x.c.subj, (x.c.k - 1).label("k"), x.c.seq, x.c.person)).subquery("both")
    rows = c.execute(select(both.c.subj, both.c.k, func.count(distinct(both.c.person)), func.count(),
                            func.max(both.c.seq))
                     .group_by(both.c.subj, both.c.k))
    return [_Win(int(s), _at(int(kk) * half), _at(int(kk) * half + window_s), int(n), 0, int(p), int(hi))
            for s, kk, p, n, hi in rows]


def _streaks(wins: Iterable[_Win]) -> list[list[_Win]]:
    """Windows of one subject that overlap become one finding (one incident, one alert)."""
    by_subject: dict[Any, list[_Win]] = defaultdict(list)
    for w in wins:
        by_subject[w.subject].append(w)
    out: list[list[_Win]] = []
    for ws in by_subject.values():
        ws.sort(key=lambda w: (w.start, w.end))
        run, end = [ws[0]], ws[0].end
        for w in ws[1:]:
            if w.start < end:
                run.append(w)
                end = max(end, w.end)
            else:
                out.append(run)
                run, end = [w], w.end
        out.append(run)
    return out


def _names(c: Session | Connection, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {int(i): str(n) for i, n in c.execute(select(U.c.id, U.c.username).where(U.c.id.in_(wanted)))}


def _window_findings(c: Session | Connection, rule: str, cfg: Mapping[str, Any], wins: Iterable[_Win],
                     scope_kind: str, params_of: Any) -> list[Finding]:
    streaks = _streaks(wins)
    names = _names(c, (s[0].subject for s in streaks if isinstance(s[0].subject, int)))
    out = []
    for run in streaks:
        subj = run[0].subject
        user = subj if isinstance(subj, int) else None
        out.append(Finding(
            rule=rule, severity=cfg["severity"],
            subject_key=f"user:{subj}" if user is not None else f"addr:{subj}"[:150],
            subject_user_id=user, subject_name=names.get(user) if user is not None else str(subj),
            window_start=min(w.start for w in run), window_end=max(w.end for w in run),
            last_seq=max(w.last_seq for w in run),
            params={"window_minutes": int(cfg["window_minutes"]), **params_of(run)},
            scope=Scope(scope_kind, actor_id=user, client_addr=None if user is not None else str(subj),
                        anonymous=user is None),
        ))
    return out


def evaluate_bulk(conn_or_session: Session | Connection, since: dt.datetime, until: dt.datetime,
                  config: Config | Mapping[str, Any] | None = None, *, max_seq: int | None = None) -> list[Finding]:
    """ANON-13: more than ``max_records`` records (in any ``window_minutes``) or more than ``max_persons``
    persons (in windows of ``window_minutes`` starting every half of it) read, revealed, searched or
    exported by one user, among the entries with ``since <= ts < until``.

    Set-based: one GROUP BY over the range clears everyone far from a threshold; window functions and a
    distinct count then look at the few users left."""
    c = conn_or_session
    cfg = _config_of(config).rule("bulk")
    window_s = int(cfg["window_minutes"]) * 60
    rng = _Range(since, until, max_seq)
    where = [_events("access"), E.c.actor_id.is_not(None)]
    max_records, max_persons = int(cfg["max_records"]), int(cfg["max_persons"])
    # Persons are at most records: a user over max_persons persons is also over max_persons records.
    hot = _hot_subjects(c, where=where, subject=E.c.actor_id, window_s=window_s, rng=rng,
                        min_total=min(max_records, max_persons))
    by_records = _sliding(c, where=where, subject=E.c.actor_id, subjects=hot, window_s=window_s, rng=rng,
                          min_total=max_records)
    counted = _window_persons(c, where=where, actors=hot, window_s=window_s, rng=rng)
    by_persons = [w for w in counted if w.persons > max_persons]

    def params(run: list[_Win]) -> dict[str, Any]:
        subj, start, end = run[0].subject, min(w.start for w in run), max(w.end for w in run)
        persons = [w.persons for w in counted if w.subject == subj and w.start < end and w.end > start]
        return {"records": max(w.total for w in run), "persons": max(persons, default=0),
                "max_records": max_records, "max_persons": max_persons}

    return _window_findings(c, "bulk", cfg, by_records + by_persons, "access", params)


def evaluate_persons(c: Session | Connection, rng: _Range, config: Config) -> list[Finding]:
    cfg = config.rule("persons")
    window_s = int(cfg["window_minutes"]) * 60
    where = [_events("access"), E.c.actor_id.is_not(None)]
    max_persons = int(cfg["max_persons"])
    hot = _hot_subjects(c, where=where, subject=E.c.actor_id, window_s=window_s, rng=rng, min_total=max_persons)
    wins = [w for w in _window_persons(c, where=where, actors=hot, window_s=window_s, rng=rng)
            if w.persons > max_persons]
    return _window_findings(c, "persons", cfg, wins, "access", lambda run: {
        "persons": max(w.persons for w in run), "max_persons": max_persons})


def _counted(c: Session | Connection, rule: str, cfg: Mapping[str, Any], rng: _Range, *,
             where: Sequence[ColumnElement[bool]], subject: ColumnElement[Any], scope_kind: str,
             min_total: int | None = None, min_count: int | None = None, params_of: Any) -> list[Finding]:
    window_s = int(cfg["window_minutes"]) * 60
    hot = _hot_subjects(c, where=where, subject=subject, window_s=window_s, rng=rng, min_total=min_total,
                        min_count=min_count)
    wins = _sliding(c, where=where, subject=subject, subjects=hot, window_s=window_s, rng=rng, min_total=min_total,
                    min_count=min_count)
    return _window_findings(c, rule, cfg, wins, scope_kind, params_of)


def evaluate_denials(c: Session | Connection, rng: _Range, config: Config) -> list[Finding]:
    cfg = config.rule("denials")
    k = int(cfg["min_denials"])

    def params(run: list[_Win]) -> dict[str, Any]:
        return {"denials": max(w.count for w in run), "min_denials": k}

    return (_counted(c, "denials", cfg, rng, where=[_events("denied"), E.c.actor_id.is_not(None)],
                     subject=E.c.actor_id, scope_kind="denied", min_count=k - 1, params_of=params)
            + _counted(c, "denials", cfg, rng,
                       where=[_events("denied"), E.c.actor_id.is_(None), E.c.client_addr.is_not(None)],
                       subject=E.c.client_addr, scope_kind="denied", min_count=k - 1, params_of=params))


def evaluate_reveals(c: Session | Connection, rng: _Range, config: Config) -> list[Finding]:
    cfg = config.rule("reveals")
    limit = int(cfg["max_reveals"])
    return _counted(c, "reveals", cfg, rng, where=[_events("reveal"), E.c.actor_id.is_not(None)],
                    subject=E.c.actor_id, scope_kind="reveal", min_count=limit,
                    params_of=lambda run: {"reveals": max(w.count for w in run), "max_reveals": limit})


def evaluate_exports(c: Session | Connection, rng: _Range, config: Config) -> list[Finding]:
    cfg = config.rule("exports")
    max_records, max_exports = int(cfg["max_records"]), int(cfg["max_exports"])
    return _counted(c, "exports", cfg, rng, where=[_events("export"), E.c.actor_id.is_not(None)],
                    subject=E.c.actor_id, scope_kind="export", min_total=max_records, min_count=max_exports,
                    params_of=lambda run: {"records": max(w.total for w in run), "exports": max(w.count for w in run),
                                           "max_records": max_records, "max_exports": max_exports})


# Per-day rules: entries grouped by user and quarter hour in SQL, the quarters placed in local days here.


@dataclasses.dataclass
class _Day:
    events: int = 0
    first: dt.datetime | None = None
    last_seq: int = -1


def _quarters(c: Session | Connection, where: Sequence[ColumnElement[bool]], rng: _Range
              ) -> list[tuple[int, dt.datetime, int, int]]:
    """(user, quarter-hour start, entries, newest seq) for the entries matching ``where``."""
    q = _bucket(_dialect(c), E.c.ts, _QUARTER_S)
    rows = c.execute(select(E.c.actor_id, q.label("q"), func.count(), func.max(E.c.seq))
                     .where(*rng.where(), *where, E.c.actor_id.is_not(None)).group_by(E.c.actor_id, q))
    return [(int(a), _at(int(qq) * _QUARTER_S), int(n), int(hi)) for a, qq, n, hi in rows]


def _local_day(when: dt.datetime, tz: ZoneInfo) -> tuple[dt.date, dt.datetime, dt.datetime]:
    day = when.astimezone(tz).date()
    start = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    end = start + dt.timedelta(days=1)
    end = dt.datetime(end.year, end.month, end.day, tzinfo=tz)
    return day, start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _daily(quarters: Iterable[tuple[int, dt.datetime, int, int]], tz: ZoneInfo, keep: Any = None
           ) -> dict[tuple[int, dt.date], _Day]:
    days: dict[tuple[int, dt.date], _Day] = defaultdict(_Day)
    for actor, start, n, hi in quarters:
        if keep is not None and not keep(start):
            continue
        d = days[(actor, start.astimezone(tz).date())]
        d.events += n
        d.first = start if d.first is None else min(d.first, start)
        d.last_seq = max(d.last_seq, hi)
    return days


def evaluate_off_hours(c: Session | Connection, rng: _Range, config: Config, tz_name: str) -> list[Finding]:
    cfg = config.rule("off_hours")
    hours = WorkingHours.of(config.settings, tz_name)
    days = _daily(_quarters(c, [_events("data")], rng), hours.tz, keep=lambda start: not hours.working(start))
    names = _names(c, (a for a, _ in days))
    out = []
    for (actor, day), d in sorted(days.items()):
        if d.events < int(cfg["min_events"]) or d.first is None:
            continue
        _, start, end = _local_day(d.first, hours.tz)
        out.append(Finding(
            rule="off_hours", severity=cfg["severity"], subject_key=f"user:{actor}", subject_user_id=actor,
            subject_name=names.get(actor), window_start=start, window_end=end, last_seq=d.last_seq,
            params={"events": d.events, "date": day.isoformat(),
                    "first_time": d.first.astimezone(hours.tz).strftime("%H:%M"), "working_hours": hours.text()},
            scope=Scope("data", actor_id=actor, off_hours=hours),
        ))
    return out


def evaluate_inactive_accounts(c: Session | Connection, rng: _Range, config: Config, tz_name: str
                               ) -> list[Finding]:
    cfg = config.rule("inactive_account")
    tz = ZoneInfo(tz_name)
    users = c.execute(select(U.c.id, U.c.username, U.c.disabled_at, U.c.valid_until, U.c.valid_from).where(or_(
        and_(U.c.disabled_at.is_not(None), U.c.disabled_at < rng.until),
        and_(U.c.valid_until.is_not(None), U.c.valid_until < rng.until),
        and_(U.c.valid_from.is_not(None), U.c.valid_from > rng.since),
    ))).all()
    out = []
    for uid, name, disabled_at, valid_until, valid_from in users:
        periods: list[tuple[str, dt.datetime | None, dt.datetime | None]] = []
        if disabled_at is not None:
            periods.append(("disabled", disabled_at, None))
        if valid_until is not None:
            periods.append(("expired", valid_until, disabled_at if disabled_at and disabled_at > valid_until else None))
        if valid_from is not None:
            periods.append(("not_yet_valid", None, valid_from))
        for state, begin, end in periods:
            scope = Scope("active", actor_id=uid, not_before=begin, not_after=end)
            days = _daily(_quarters(c, _scope_where(scope), rng), tz)
            for (_, day), d in sorted(days.items()):
                assert d.first is not None
                _, start, stop = _local_day(d.first, tz)
                out.append(Finding(
                    rule="inactive_account", severity=cfg["severity"], subject_key=f"user:{uid}:{state}",
                    subject_user_id=uid, subject_name=name, window_start=start, window_end=stop,
                    last_seq=d.last_seq, params={"state": state, "events": d.events, "date": day.isoformat()},
                    scope=scope,
                ))
    return out


def evaluate_contractors(c: Session | Connection, rng: _Range, config: Config, tz_name: str) -> list[Finding]:
    cfg = config.rule("contractor_ending")
    tz = ZoneInfo(tz_name)
    span = dt.timedelta(days=int(cfg["days"]))
    users = c.execute(select(U.c.id, U.c.username, U.c.valid_until).distinct()
                      .select_from(U.join(UR, UR.c.user_id == U.c.id))
                      .where(UR.c.role == Role.CONTRACTOR.value, U.c.valid_until.is_not(None),
                             U.c.valid_until > rng.since)).all()
    out = []
    for uid, name, valid_until in users:
        if valid_until - span >= rng.until:
            continue
        scope = Scope("data", actor_id=uid, not_before=valid_until - span, not_after=valid_until)
        for (_, day), d in sorted(_daily(_quarters(c, _scope_where(scope), rng), tz).items()):
            if d.events < int(cfg["min_events"]) or d.first is None:
                continue
            _, start, stop = _local_day(d.first, tz)
            last_day = (valid_until - dt.timedelta(microseconds=1)).astimezone(tz).date()
            out.append(Finding(
                rule="contractor_ending", severity=cfg["severity"], subject_key=f"user:{uid}", subject_user_id=uid,
                subject_name=name, window_start=start, window_end=stop, last_seq=d.last_seq,
                params={"events": d.events, "date": day.isoformat(), "valid_until": last_day.isoformat(),
                        "days": math.ceil((valid_until - d.first) / dt.timedelta(days=1))},
                scope=scope,
            ))
    return out


def evaluate_new_addresses(c: Session | Connection, rng: _Range, config: Config, tz_name: str) -> list[Finding]:
    cfg = config.rule("new_address")
    tz = ZoneInfo(tz_name)
    lookback = rng.since - dt.timedelta(days=int(cfg["lookback_days"]))
    p = E.alias("p")
    earlier = [p.c.actor_id == E.c.actor_id, p.c.event == Event.LOGIN_SUCCEEDED.value,
               p.c.outcome == Outcome.SUCCESS.value, p.c.seq < E.c.seq, p.c.ts >= lookback]
    rows = c.execute(
        select(E.c.seq, E.c.ts, E.c.actor_id, E.c.actor_name, E.c.client_addr)
        .where(*rng.where(), _events("login"), E.c.actor_id.is_not(None), E.c.client_addr.is_not(None),
               exists(select(p.c.seq).where(*earlier)),  # a user with no sign-in before has no known address
               ~exists(select(p.c.seq).where(*earlier, p.c.client_addr == E.c.client_addr)))
        .order_by(E.c.seq)
    ).all()
    out = []
    for seq, ts, actor, name, addr in rows:
        day, start, stop = _local_day(ts, tz)
        out.append(Finding(
            rule="new_address", severity=cfg["severity"], subject_key=f"user:{actor}@{addr}"[:150],
            subject_user_id=int(actor), subject_name=name, window_start=start, window_end=stop, last_seq=int(seq),
            params={"address": addr, "lookback_days": int(cfg["lookback_days"]), "date": day.isoformat()},
            scope=Scope("login", actor_id=int(actor), client_addr=addr),
        ))
    return out


def evaluate(c: Session | Connection, *, new_from: dt.datetime, new_until: dt.datetime, config: Config,
             tz_name: str, max_seq: int | None = None) -> list[Finding]:
    """Every enabled rule over the entries with ``new_from <= ts < new_until``, each with the context it
    needs before that (a window, the local day)."""
    tz = ZoneInfo(tz_name)
    _, midnight, _ = _local_day(new_from, tz)
    out: list[Finding] = []
    for rule in RULES:
        cfg = config.rule(rule)
        if not cfg["enabled"]:
            continue
        if "window_minutes" in cfg:  # a window before the first new entry, in whole half-window buckets
            half = int(cfg["window_minutes"]) * 30
            since = _at((math.floor(new_from.timestamp()) - 2 * half) // half * half)
        else:
            since = midnight
        rng = _Range(since, new_until, max_seq)
        if rule == "bulk":
            out += evaluate_bulk(c, rng.since, rng.until, config, max_seq=max_seq)
        elif rule == "persons":
            out += evaluate_persons(c, rng, config)
        elif rule == "denials":
            out += evaluate_denials(c, rng, config)
        elif rule == "reveals":
            out += evaluate_reveals(c, rng, config)
        elif rule == "exports":
            out += evaluate_exports(c, rng, config)
        elif rule == "off_hours":
            out += evaluate_off_hours(c, rng, config, tz_name)
        elif rule == "inactive_account":
            out += evaluate_inactive_accounts(c, rng, config, tz_name)
        elif rule == "contractor_ending":
            out += evaluate_contractors(c, rng, config, tz_name)
        elif rule == "new_address":
            out += evaluate_new_addresses(c, _Range(new_from, new_until, max_seq), config, tz_name)
    return out


# --------------------------------------------------------------------------------- storing


def _behind(db: Session, scope: Scope, start: dt.datetime, end: dt.datetime, max_seq: int
            ) -> tuple[int, int, int, list[int]]:
    """(entries, first seq, last seq, the first MAX_LINKS seqs) behind a finding in [start, end)."""
    where = [*_scope_where(scope), E.c.ts >= start, E.c.ts < end, E.c.seq <= max_seq]
    if scope.off_hours is not None:
        hours = scope.off_hours
        rows = db.execute(select(E.c.seq, E.c.ts).where(*where).order_by(E.c.seq)).all()
        seqs = [int(s) for s, ts in rows if not hours.working(ts)]
        return (len(seqs), seqs[0], seqs[-1], seqs[:MAX_LINKS]) if seqs else (0, -1, -1, [])
    n, lo, hi = db.execute(select(func.count(), func.min(E.c.seq), func.max(E.c.seq)).where(*where)).one()
    if not n:
        return 0, -1, -1, []
    sample = [int(s) for s in db.scalars(select(E.c.seq).where(*where).order_by(E.c.seq).limit(MAX_LINKS))]
    return int(n), int(lo), int(hi), sample


def _merge_params(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        before = out.get(key)
        if isinstance(value, int) and isinstance(before, int) and not isinstance(value, bool):
            out[key] = max(before, value)
        else:
            out[key] = value
    return out


def _link(db: Session, alert_id: int, seqs: Sequence[int]) -> None:
    have = int(db.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.alert_id == alert_id)) or 0)
    if have >= MAX_LINKS or not seqs:
        return
    top = db.scalar(select(func.max(AlertEvent.seq)).where(AlertEvent.alert_id == alert_id))
    fresh = [s for s in seqs if top is None or s > top][: MAX_LINKS - have]
    if fresh:
        db.execute(insert(AlertEvent), [{"alert_id": alert_id, "seq": s} for s in fresh])


def _alert_details(a: Alert) -> dict[str, Any]:
    return {"rule": a.rule, "severity": a.severity, "subject": a.subject_name or a.subject_key,
            "window_start": a.window_start.isoformat(), "window_end": a.window_end.isoformat(),
            "events": a.event_count, "first": a.first_seq, "last": a.last_seq, "run": a.run_id}


def _store(db: Session, hogo: Hogo, findings: Sequence[Finding], *, run_id: int | None, now: dt.datetime,
           new_after: int, max_seq: int, ctx: RequestContext) -> tuple[list[int], list[int]]:
    """New alerts for new findings; an open or acknowledged alert of the same rule and subject whose
    window overlaps is extended instead (one alert per incident). Returns (raised, updated) alert ids."""
    raised: list[int] = []
    updated: list[int] = []
    for f in sorted(findings, key=lambda f: (f.window_start, f.rule, f.subject_key)):
        if f.last_seq <= new_after:
            continue  # nothing in it that an earlier run has not seen
        overlapping = list(db.scalars(
            select(Alert).where(Alert.rule == f.rule, Alert.subject_key == f.subject_key,
                                Alert.window_start < f.window_end, Alert.window_end > f.window_start)
            .order_by(Alert.id.desc())
        ))
        active = next((a for a in overlapping if a.status != "closed"), None)
        if active is not None:
            if f.last_seq <= active.last_seq:
                continue
            start, end = min(active.window_start, f.window_start), max(active.window_end, f.window_end)
            n, lo, hi, sample = _behind(db, f.scope, start, end, max_seq)
            if n == 0:
                continue
            active.window_start, active.window_end = start, end
            active.event_count, active.first_seq, active.last_seq = n, lo, hi
            active.params = _merge_params(active.params or {}, f.params)
            if _SEVERITY_RANK[f.severity] > _SEVERITY_RANK.get(active.severity, 0):
                active.severity = f.severity
            active.updated_at = now
            _link(db, active.id, sample)
            updated.append(active.id)
            audit.record(db, now=now, event=Event.ALERT_UPDATED, outcome=Outcome.SUCCESS, ctx=ctx,
                         subject_user_id=active.subject_user_id, target=f"alert:{active.id}",
                         details=_alert_details(active))
            continue
        if overlapping and max(a.last_seq for a in overlapping) >= f.last_seq:
            continue  # a closed alert already covers these entries
        n, lo, hi, sample = _behind(db, f.scope, f.window_start, f.window_end, max_seq)
        if n == 0:
            continue
        key = f"{f.rule}|{f.subject_key}|{f.window_start:%Y%m%dT%H%M%S}"
        if db.scalar(select(Alert.id).where(Alert.dedup_key == key)) is not None:
            key = f"{key}|{hi}"
            if db.scalar(select(Alert.id).where(Alert.dedup_key == key)) is not None:
                continue
        a = Alert(dedup_key=key[:200], rule=f.rule, severity=f.severity, status="open", subject_key=f.subject_key,
                  subject_user_id=f.subject_user_id, subject_name=f.subject_name, window_start=f.window_start,
                  window_end=f.window_end, params=f.params, event_count=n, first_seq=lo, last_seq=hi, run_id=run_id,
                  opened_at=now, updated_at=now, notify_attempts=0)
        db.add(a)
        db.flush()
        _link(db, a.id, sample)
        raised.append(a.id)
        audit.record(db, now=now, event=Event.ALERT_RAISED, outcome=Outcome.SUCCESS, ctx=ctx,
                     subject_user_id=a.subject_user_id, target=f"alert:{a.id}", details=_alert_details(a))
    return raised, updated


# ------------------------------------------------------------------------------------ runs


@dataclasses.dataclass(frozen=True)
class Delivery:
    alert_id: int
    sink: str
    error: str | None


@dataclasses.dataclass(frozen=True)
class RunResult:
    status: str  # done | idle (nothing new) | busy (another run holds the lease) | superseded | failed
    trigger: str
    run_id: int | None = None
    from_seq: int = 0
    to_seq: int = -1
    events: int = 0
    config_version: int = 0
    raised: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    more: bool = False  # the batch was full: more entries wait for the next run
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None


def _lease_s(hogo: Hogo) -> int:
    return max(900, 3 * int(hogo.settings.analysis_interval_s))


def _state(db: Session) -> AnalysisState:
    state = db.scalar(select(AnalysisState).where(AnalysisState.id == 1).with_for_update())
    if state is None:  # a schema made without the migration's row
        state = AnalysisState(id=1, high_water=-1)
        db.add(state)
        db.flush()
    return state


def _actor(principal: Principal | None) -> dict[str, Any]:
    return {"actor_id": principal.user_id if principal else None,
            "actor_name": principal.username if principal else None}


def run(hogo: Hogo, *, now: dt.datetime | None = None, trigger: str = "schedule",
        principal: Principal | None = None, ctx: RequestContext | None = None,
        from_seq: int | None = None, max_entries: int = MAX_BATCH) -> RunResult:
    """Analyse the log entries recorded since the last run (or, with ``from_seq``, again from there):
    raise or extend alerts, advance the high-water mark, deliver new alerts to the sinks.

    Safe to call from several processes at once: only the holder of the lease analyses; the others
    answer ``busy``. ``principal`` (for a manual run) needs ``audit:alert:write``."""
    if trigger not in ("schedule", "manual"):
        raise ValueError("trigger must be 'schedule' or 'manual'")
    if principal is not None:
        principal.require(Permission.ALERT_WRITE)
    if from_seq is not None and from_seq < 0:
        raise ValidationFailed("from_seq must not be negative", field="from_seq")
    now = now or hogo.clock.now()
    ctx = ctx or RequestContext()
    # 1. Claim the lease and the range of entries to analyse.
    with hogo.unit_of_work() as db:
        state = _state(db)
        if state.lease_run_id is not None and state.lease_until is not None and state.lease_until > now:
            return RunResult("busy", trigger, started_at=now)
        size = int(db.scalar(select(AuditHead.size).where(AuditHead.id == 1)) or 0)
        start = state.high_water + 1 if from_seq is None else from_seq
        end = min(size - 1, start + max(1, max_entries) - 1)
        stats = db.execute(select(func.min(E.c.ts), func.max(E.c.ts), func.count(),
                                  func.sum(case((E.c.event.in_(OWN_EVENTS), 0), else_=1)))
                           .where(E.c.seq >= start, E.c.seq <= end)).one()
        first_ts, last_ts, n, others = stats[0], stats[1], int(stats[2] or 0), int(stats[3] or 0)
        config = current_config(db)
        undelivered = int(db.scalar(select(func.count()).select_from(Alert).where(*_undelivered())) or 0) \
            if hogo.settings.alert_sinks else 0
        if (n == 0 or others == 0) and not undelivered and trigger == "schedule":
            state.high_water = max(state.high_water, end)
            state.last_run_at = now
            return RunResult("idle", trigger, from_seq=start, to_seq=end, events=n, config_version=config.version,
                             more=end < size - 1, started_at=now, finished_at=now)
        r = AnalysisRun(trigger=trigger, status="running", started_at=now, from_seq=start, to_seq=end, events=n,
                        config_version=config.version, alerts_raised=0, alerts_updated=0, **_actor(principal))
        db.add(r)
        db.flush()
        run_id = r.id
        state.lease_run_id, state.lease_until = run_id, now + dt.timedelta(seconds=_lease_s(hogo))
    deliveries: tuple[Delivery, ...] = ()
    try:
        # 2. Evaluate the rules on a snapshot, without the write lock.
        findings: list[Finding] = []
        if others and first_ts is not None and last_ts is not None:
            with hogo.unit_of_work(readonly=True) as db:
                findings = evaluate(db, new_from=first_ts, new_until=last_ts + dt.timedelta(microseconds=1),
                                    config=config, tz_name=hogo.settings.timezone, max_seq=end)
        # 3. Store the alerts and advance the mark, if the lease is still ours.
        with hogo.unit_of_work() as db:
            state = _state(db)
            r = db.get_one(AnalysisRun, run_id)
            if state.lease_run_id != run_id:
                r.status, r.finished_at = "superseded", hogo.clock.now()
                return RunResult("superseded", trigger, run_id=run_id, from_seq=start, to_seq=end, events=n,
                                 config_version=config.version, started_at=now, finished_at=r.finished_at)
            raised, updated = _store(db, hogo, findings, run_id=run_id, now=now, new_after=start - 1, max_seq=end,
                                     ctx=ctx)
            state.high_water = max(state.high_water, end)
            state.last_run_at = now
            r.alerts_raised, r.alerts_updated = len(raised), len(updated)
            audit.record(db, now=now, event=Event.ANALYSIS_RUN, outcome=Outcome.SUCCESS, ctx=ctx, **_actor(principal),
                         target=f"analysis_run:{run_id}",
                         details={"run": run_id, "trigger": trigger, "from": start, "to": end, "events": n,
                                  "config_version": config.version, "raised": raised, "updated": updated})
        # 4. Deliver new alerts (and earlier ones whose delivery failed), then record the outcome.
        deliveries = _deliver_pending(hogo, now=now, ctx=ctx)
    except Exception as exc:
        _fail(hogo, run_id, now, exc, ctx, principal)
        raise
    finished = hogo.clock.now()
    with hogo.unit_of_work() as db:
        state = _state(db)
        r = db.get_one(AnalysisRun, run_id)
        r.status, r.finished_at = "done", finished
        if state.lease_run_id == run_id:
            state.lease_run_id, state.lease_until = None, None
    return RunResult("done", trigger, run_id=run_id, from_seq=start, to_seq=end, events=n,
                     config_version=config.version, raised=tuple(raised), updated=tuple(updated),
                     deliveries=deliveries, more=end < size - 1, started_at=now, finished_at=finished)


def _fail(hogo: Hogo, run_id: int, now: dt.datetime, exc: Exception, ctx: RequestContext,
          principal: Principal | None) -> None:
    """A failed run releases its lease and is recorded; the entries stay unanalysed for the next run."""
    try:
        with hogo.unit_of_work() as db:
            state = _state(db)
            r = db.get_one(AnalysisRun, run_id)
            r.status, r.finished_at, r.error = "failed", hogo.clock.now(), type(exc).__name__
            if state.lease_run_id == run_id:
                state.lease_run_id, state.lease_until = None, None
            audit.record(db, now=now, event=Event.ANALYSIS_RUN, outcome=Outcome.FAILURE, ctx=ctx, **_actor(principal),
                         target=f"analysis_run:{run_id}", reason=type(exc).__name__[:200],
                         details={"run": run_id, "from": r.from_seq, "to": r.to_seq})
    except Exception:  # the original error matters more; the lease expires anyway
        log.exception("could not record the failure of analysis run %s", run_id)


def run_scheduled(hogo: Hogo) -> RunResult | None:
    """For the scheduler thread (every ``settings.analysis_interval_s``): works off the backlog in batches
    for at most ``SCHEDULED_BUDGET_S`` (the thread also signs checkpoints); never raises: failures are
    logged here and recorded in the log by the run."""
    result: RunResult | None = None
    started = time.monotonic()
    while True:
        try:
            result = run(hogo, trigger="schedule", max_entries=SCHEDULED_BATCH)
        except Exception:  # a background thread must survive; the run recorded its failure
            log.exception("scheduled log analysis failed")
            return None
        if not result.more or time.monotonic() - started > SCHEDULED_BUDGET_S:
            return result


# ------------------------------------------------------------------------------- delivery


def _sinks(hogo: Hogo) -> list[tuple[str, Sink | None, str | None]]:
    """(name, sink or None, configuration error) for each of ``settings.alert_sinks``."""
    out: list[tuple[str, Sink | None, str | None]] = []
    for i, spec in enumerate(hogo.settings.alert_sinks):
        try:
            sink = parse_sink(spec)
        except ValueError as exc:  # the message never repeats a password or URL path
            out.append((f"alert_sinks[{i}]", None, f"alert_sinks[{i}]: {exc}"))
        else:
            out.append((sink.name, sink, None))
    return out


def _undelivered() -> list[ColumnElement[bool]]:
    """Alerts still to be sent (or re-sent to the sinks that failed), while they are not closed."""
    return [Alert.notified_at.is_(None), Alert.status != "closed", Alert.notify_attempts < MAX_DELIVERY_ATTEMPTS]


def _deliver_pending(hogo: Hogo, *, now: dt.datetime, ctx: RequestContext) -> tuple[Delivery, ...]:
    sinks = _sinks(hogo)
    if not sinks:
        return ()
    with hogo.unit_of_work(readonly=True) as db:
        pending = [(alert_service.view(a), a.notify_pending, a.notify_attempts)
                   for a in db.scalars(select(Alert).where(*_undelivered()).order_by(Alert.id))]
    out: list[Delivery] = []
    for a, wanted, tries in pending:
        # A retry goes only to the sinks that failed (the others have the message already).
        targets = [s for s in sinks if not tries or wanted is None or s[0] in wanted]
        if not targets:  # the sinks that failed are no longer configured: nothing is left to send
            with hogo.unit_of_work() as db:
                row = db.get_one(Alert, a.id)
                row.notify_pending, row.notified_at = None, hogo.clock.now()
            continue
        subject, body = alert_service.notification(a, instance_name=hogo.settings.instance_name,
                                                   timezone=hogo.settings.timezone)
        results: list[tuple[str, str | None]] = [(name, error) for name, sink, error in targets if sink is None]
        results += deliver_all([sink for _, sink, _ in targets if sink is not None], subject, body, kind="alert")
        out += [Delivery(a.id, name, error) for name, error in results]
        failed = [(name, error) for name, error in results if error]
        with hogo.unit_of_work() as db:
            row = db.get_one(Alert, a.id)
            row.notify_attempts += 1
            row.notify_pending = [name for name, _ in failed] or None
            row.notify_error = "; ".join(str(e) for _, e in failed)[:500] or None
            if not failed:
                row.notified_at = hogo.clock.now()
            audit.record(db, now=now, event=Event.ALERT_DELIVERED,
                         outcome=Outcome.FAILURE if failed else Outcome.SUCCESS, ctx=ctx,
                         subject_user_id=row.subject_user_id, target=f"alert:{a.id}",
                         reason="delivery_failed" if failed else None,
                         details={"sinks": [name for name, _ in results], "failed": [e for _, e in failed],
                                  "attempt": row.notify_attempts})
    return tuple(out)


# ------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class AnalysisWarning:
    code: str  # config_never_reviewed | config_review_overdue | analysis_stale | delivery_failing | no_alert_sinks
    ja: str
    en: str
    due: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class ConfigView:
    config: Config
    defaults: dict[str, dict[str, Any]]
    history: list[Config]
    review_overdue: bool
    warnings: list[AnalysisWarning]


def warnings(hogo: Hogo, db: Session, now: dt.datetime, config: Config | None = None) -> list[AnalysisWarning]:
    """What needs attention in the analysis itself (shown wherever alerts are listed)."""
    config = config or current_config(db)
    out: list[AnalysisWarning] = []
    if config.version == 0:
        out.append(AnalysisWarning("config_never_reviewed",
                            "分析のしきい値は初期設定のままで、一度も見直されていません（ANON-13）。",
                            "The analysis thresholds are the built-in defaults and have never been reviewed "
                            "(ANON-13)."))
    elif config.review_overdue(now):
        due = config.review_due_at
        out.append(AnalysisWarning("config_review_overdue",
                            f"分析のしきい値の定期見直しの期限（{_day(due, hogo)}）を過ぎています（ANON-13）。",
                            f"The periodic review of the analysis thresholds was due on {_day(due, hogo)} "
                            "(ANON-13).", due))
    state = db.scalar(select(AnalysisState).where(AnalysisState.id == 1))
    stale = dt.timedelta(seconds=3 * int(hogo.settings.analysis_interval_s) + 60)
    if state is None or state.last_run_at is None or now - state.last_run_at > stale:
        last = state.last_run_at if state is not None else None
        out.append(AnalysisWarning("analysis_stale",
                            "ログの定期分析が実行されていません" + (f"（最終 {_day(last, hogo)}）。" if last else "。"),
                            "The log has not been analysed recently" + (f" (last: {_day(last, hogo)})." if last
                                                                         else "."), last))
    failing = int(db.scalar(select(func.count()).select_from(Alert).where(
        Alert.notify_pending.is_not(None), Alert.status != "closed")) or 0)
    if failing:
        out.append(AnalysisWarning("delivery_failing", f"{failing} 件の警告の通知に失敗しています。",
                            f"{failing} alert(s) could not be delivered to every sink."))
    if not hogo.settings.alert_sinks:
        out.append(AnalysisWarning("no_alert_sinks",
                                   "警告の通知先（alert_sinks）が設定されていません。警告はこの画面でのみ確認できます。",
                            "No alert sinks are configured (alert_sinks): alerts are only shown here."))
    return out


def _day(value: dt.datetime | None, hogo: Hogo) -> str:
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(hogo.settings.timezone)).strftime("%Y-%m-%d %H:%M")


def current_warnings(hogo: Hogo, principal: Principal) -> list[AnalysisWarning]:
    principal.require(Permission.ALERT_READ)
    with hogo.unit_of_work(readonly=True) as db:
        return warnings(hogo, db, hogo.clock.now())


def show_config(hogo: Hogo, principal: Principal, *, history: int = 20) -> ConfigView:
    principal.require(Permission.ALERT_READ)
    now = hogo.clock.now()
    with hogo.unit_of_work(readonly=True) as db:
        config = current_config(db)
        rows = db.scalars(select(AnalysisConfig).order_by(AnalysisConfig.version.desc()).limit(history))
        past = [_row_config(r) for r in rows]
        return ConfigView(config, validate({}), past, config.review_overdue(now), warnings(hogo, db, now, config))


def _interval(settings: Mapping[str, Mapping[str, Any]]) -> dt.timedelta:
    return dt.timedelta(days=int(settings["general"]["review_interval_days"]))


def set_config(hogo: Hogo, principal: Principal, changes: Mapping[str, Any], *, note: str | None,
               ctx: RequestContext) -> Config:
    """A new version of the settings: ``changes`` (``{"bulk.max_records": 2000}``) applied to the current
    ones. The reason is required; the change and the reason go into the log with it (SEC-84)."""
    principal.require(Permission.ANALYSIS_CONFIGURE)
    text = alert_service.clean_note(note, field="note", required=True)
    if not changes:
        raise ValidationFailed("give at least one setting to change", field="changes")
    nested = _nest(changes)
    with hogo.unit_of_work() as db:
        before = current_config(db)
        merged = {s: dict(v) for s, v in before.settings.items()}
        for section, values in nested.items():
            if section not in merged:
                raise ValidationFailed(f"unknown section {section!r} (known: {', '.join(DEFAULTS)})", field=section)
            merged[section].update(values)
        settings = validate(merged)
        old, new = flatten(before.settings), flatten(settings)
        diff = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
        if not diff:
            raise ValidationFailed("the settings would not change", field="changes", code="no_change")
        now = hogo.clock.now()
        version = before.version + 1
        row = AnalysisConfig(version=version, settings=settings, note=text, created_at=now,
                             created_by_id=principal.user_id, created_by_name=principal.username,
                             review_due_at=now + _interval(settings))
        db.add(row)
        db.flush()
        audit.record(db, now=now, event=Event.ANALYSIS_CONFIG_CHANGED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=principal.user_id, actor_name=principal.username, target=f"analysis_config:{version}",
                     details={"version": version, "previous": before.version, "changes": diff,
                                           "note": text})
        return _row_config(row)


def review_config(hogo: Hogo, principal: Principal, *, note: str | None, ctx: RequestContext) -> Config:
    """Record that the settings in force were checked (ANON-13: the setting is checked periodically); the
    next review falls due ``general.review_interval_days`` later. Not by whoever made this version (SEC-19)."""
    principal.require(Permission.ALERT_WRITE)
    text = alert_service.clean_note(note, field="note", required=False)
    with hogo.unit_of_work() as db:
        now = hogo.clock.now()
        row = db.scalar(select(AnalysisConfig).order_by(AnalysisConfig.version.desc()).limit(1).with_for_update())
        if row is None:  # the built-in defaults: they become version 1, as reviewed
            row = AnalysisConfig(version=1, settings=validate({}), note="built-in defaults", created_at=now,
                                 review_due_at=now)
            db.add(row)
        elif row.created_by_id is not None and row.created_by_id == principal.user_id:
            raise Forbidden("the settings must be reviewed by someone other than who made this version",
                            code="own_change", requirement="SEC-19")
        row.reviewed_at, row.reviewed_by_id, row.reviewed_by_name = now, principal.user_id, principal.username
        row.review_note = text[:500] if text else None
        row.review_due_at = now + _interval(validate(row.settings))
        db.flush()
        audit.record(db, now=now, event=Event.ANALYSIS_CONFIG_REVIEWED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=principal.user_id, actor_name=principal.username,
                     target=f"analysis_config:{row.version}",
                     details={"version": row.version, "note": text, "next_due": row.review_due_at.isoformat()})
        return _row_config(row)


# --------------------------------------------------------------------------------- report


@dataclasses.dataclass(frozen=True)
class FileAccess:
    file: str
    events: int
    records: int
    users: int
    denied: int


@dataclasses.dataclass(frozen=True)
class UserAccess:
    user: str
    events: int
    records: int
    denied: int
    reveals: int


@dataclasses.dataclass(frozen=True)
class DenialCount:
    user: str
    reason: str
    count: int


@dataclasses.dataclass(frozen=True)
class ClosedAlert:
    id: int
    rule: str
    severity: str
    subject: str
    opened_at: dt.datetime
    closed_at: dt.datetime
    closed_by: str | None
    resolution: str | None


@dataclasses.dataclass(frozen=True)
class RuleCount:
    rule: str
    severity: str
    raised: int
    open: int
    acknowledged: int
    closed: int


@dataclasses.dataclass(frozen=True)
class Report:
    since: dt.datetime
    until: dt.datetime
    timezone: str
    generated_at: dt.datetime
    generated_by: str
    logins_succeeded: int
    logins_failed: int
    files: list[FileAccess]
    users: list[UserAccess]
    denials: list[DenialCount]
    alerts: list[RuleCount]
    closed: list[ClosedAlert]
    still_open: int
    config_version: int
    config_reviewed_at: dt.datetime | None
    config_reviewed_by: str | None
    config_review_due_at: dt.datetime | None
    config_review_overdue: bool
    runs: int
    events_analysed: int
    last_run_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.isoformat()
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}

    def to_markdown(self) -> str:
        tz = ZoneInfo(self.timezone)

        def when(value: dt.datetime | None) -> str:
            return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "—"

        def cell(value: Any) -> str:
            return str(value).replace("|", "\\|").replace("\n", " ")

        def tbl(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
            lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
            lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
            return lines if len(lines) > 2 else ["（該当なし / none）"]

        md = [
            "# アクセス記録の分析報告 (Access record analysis report)",
            "",
            f"- 対象期間 (Period): {when(self.since)} – {when(self.until)} ({self.timezone})",
            f"- 作成 (Generated): {when(self.generated_at)} by {self.generated_by}",
            f"- サインイン成功 / 失敗 (Sign-ins succeeded / failed): {self.logins_succeeded:,} / "
            f"{self.logins_failed:,}",
            "",
            "## ファイル別アクセス (Accesses per file)",
            "",
            *tbl(["ファイル (File)", "操作 (Events)", "記録 (Records)", "利用者 (Users)", "拒否 (Denied)"],
                 [[f.file, f"{f.events:,}", f"{f.records:,}", f.users, f.denied] for f in self.files]),
            "",
            "## 利用者別アクセス (Accesses per user)",
            "",
            *tbl(["利用者 (User)", "操作 (Events)", "記録 (Records)", "拒否 (Denied)", "個人番号表示 (Reveals)"],
                 [[u.user, f"{u.events:,}", f"{u.records:,}", u.denied, u.reveals] for u in self.users]),
            "",
            "## 拒否 (Denials)",
            "",
            *tbl(["利用者 (User)", "理由 (Reason)", "件数 (Count)"],
                 [[d.user, d.reason, d.count] for d in self.denials]),
            "",
            "## 警告 (Alerts)",
            "",
            *tbl(["規則 (Rule)", "重要度 (Severity)", "検知 (Raised)", "未対応 (Open)", "対応中 (Acknowledged)",
                  "完了 (Closed)"],
                 [[f"{alert_service.rule_title(a.rule, 'ja')} ({a.rule})", a.severity, a.raised, a.open,
                   a.acknowledged, a.closed] for a in self.alerts]),
            "",
            f"未完了の警告 (Alerts not yet closed, all periods): {self.still_open}",
            "",
            "### 完了した警告と対応 (Closed alerts and how they were resolved)",
            "",
            *tbl(["#", "規則 (Rule)", "対象 (Subject)", "検知 (Raised)", "完了 (Closed)", "担当 (By)",
                  "対応 (Resolution)"],
                 [[c.id, alert_service.rule_title(c.rule, "ja"), c.subject, when(c.opened_at), when(c.closed_at),
                   c.closed_by or "—", c.resolution or "—"] for c in self.closed]),
            "",
            "## 分析設定の見直し (Review of the analysis settings)",
            "",
            f"- 版 (Version): {self.config_version}",
            f"- 最終見直し (Last reviewed): {when(self.config_reviewed_at)}"
            + (f" by {self.config_reviewed_by}" if self.config_reviewed_by else ""),
            f"- 次回期限 (Next review due): {when(self.config_review_due_at)}"
            + (" — **期限切れ (overdue)**" if self.config_review_overdue else ""),
            "",
            "## 定期分析の実行 (Analysis runs)",
            "",
            f"- 実行回数 (Runs): {self.runs:,}",
            f"- 分析した記録 (Log entries analysed): {self.events_analysed:,}",
            f"- 最終実行 (Last run): {when(self.last_run_at)}",
            "",
        ]
        return "\n".join(md)


REPORT_ROWS = 500


def report(hogo: Hogo, principal: Principal, since: dt.datetime, until: dt.datetime, *,
           ctx: RequestContext | None = None) -> Report:
    """The periodic report (MN-6c, SEC-132): accesses per file and per user, denials, the alerts raised and
    how they were closed, and whether the analysis settings were reviewed in time. Generating it is logged."""
    principal.require(Permission.ALERT_READ)
    if until <= since:
        raise ValidationFailed("the end of the period must be after its start", field="until")
    now = hogo.clock.now()
    period = [E.c.ts >= since, E.c.ts < until]
    data = E.c.event.like("data:%")
    denied = E.c.outcome == Outcome.DENIED.value
    is_denied = func.sum(case((denied, 1), else_=0))
    with hogo.unit_of_work() as db:
        logins = {str(e): int(n) for e, n in db.execute(select(E.c.event, func.count()).where(
            *period, E.c.event.in_((Event.LOGIN_SUCCEEDED.value, Event.LOGIN_FAILED.value))).group_by(E.c.event))}
        files = [FileAccess(str(f), int(n), int(r or 0), int(u), int(d or 0)) for f, n, r, u, d in db.execute(
            select(E.c.file_code, func.count(), func.sum(E.c.record_count), func.count(distinct(E.c.actor_id)),
                   is_denied)
            .where(*period, E.c.file_code.is_not(None), data).group_by(E.c.file_code)
            .order_by(func.count().desc()).limit(REPORT_ROWS))]
        users = [UserAccess(str(name or f"#{a}"), int(n), int(r or 0), int(d or 0), int(v or 0))
                 for a, name, n, r, d, v in db.execute(
                     select(E.c.actor_id, func.max(E.c.actor_name), func.count(), func.sum(E.c.record_count),
                            is_denied, func.sum(case((E.c.event == Event.RECORD_REVEALED.value, 1), else_=0)))
                     .where(*period, data, E.c.actor_id.is_not(None)).group_by(E.c.actor_id)
                     .order_by(func.count().desc()).limit(REPORT_ROWS))]
        denials = [DenialCount(str(u or a or "—"), str(reason or "—"), int(n)) for u, a, reason, n in db.execute(
            select(E.c.actor_name, E.c.client_addr, E.c.reason, func.count()).where(*period, denied)
            .group_by(E.c.actor_name, E.c.client_addr, E.c.reason).order_by(func.count().desc()).limit(REPORT_ROWS))]
        in_period = and_(Alert.opened_at >= since, Alert.opened_at < until)
        counts = [RuleCount(str(rule), str(sev), int(n), int(o or 0), int(ack or 0), int(cl or 0))
                  for rule, sev, n, o, ack, cl in db.execute(
                      select(Alert.rule, Alert.severity, func.count(),
                             func.sum(case((Alert.status == "open", 1), else_=0)),
                             func.sum(case((Alert.status == "acknowledged", 1), else_=0)),
                             func.sum(case((Alert.status == "closed", 1), else_=0)))
                      .where(in_period).group_by(Alert.rule, Alert.severity).order_by(Alert.rule, Alert.severity))]
        closed = [ClosedAlert(a.id, a.rule, a.severity, a.subject_name or a.subject_key, a.opened_at,
                              a.closed_at or now, a.closed_by_name, a.resolution)
                  for a in db.scalars(select(Alert).where(Alert.closed_at >= since, Alert.closed_at < until)
                                      .order_by(Alert.closed_at).limit(REPORT_ROWS))]
        still_open = int(db.scalar(select(func.count()).select_from(Alert).where(Alert.status != "closed")) or 0)
        config = current_config(db)
        runs, analysed = db.execute(select(func.count(), func.sum(AnalysisRun.events)).where(
            AnalysisRun.started_at >= since, AnalysisRun.started_at < until, AnalysisRun.status == "done")).one()
        state = db.scalar(select(AnalysisState).where(AnalysisState.id == 1))
        audit.record(db, now=now, event=Event.REPORT_GENERATED, outcome=Outcome.SUCCESS, ctx=ctx or RequestContext(),
                     actor_id=principal.user_id, actor_name=principal.username, target="analysis_report",
                     details={"since": since.isoformat(), "until": until.isoformat()})
    return Report(
        since=since, until=until, timezone=hogo.settings.timezone, generated_at=now, generated_by=principal.username,
        logins_succeeded=int(logins.get(Event.LOGIN_SUCCEEDED.value, 0)),
        logins_failed=int(logins.get(Event.LOGIN_FAILED.value, 0)), files=files, users=users, denials=denials,
        alerts=counts, closed=closed, still_open=still_open, config_version=config.version,
        config_reviewed_at=config.reviewed_at, config_reviewed_by=config.reviewed_by,
        config_review_due_at=config.review_due_at, config_review_overdue=config.review_overdue(now),
        runs=int(runs or 0), events_analysed=int(analysed or 0), last_run_at=state.last_run_at if state else None,
    )


def month_period(text: str, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """``2026-10`` → the first instant of October 2026 and of November 2026 in the organisation's zone."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValidationFailed("period must be a month YYYY-MM, e.g. 2026-10", field="period")
    year, month = int(m.group(1)), int(m.group(2))
    tz = ZoneInfo(tz_name)
    start = dt.datetime(year, month, 1, tzinfo=tz)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return start, end
