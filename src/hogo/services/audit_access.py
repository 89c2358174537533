"""Who may read the log, and what they get: search, proofs, verification, bundles, retention
(ANON-12, MN-3b, MLIT-9.5.4, SEC-107(2)(3), SEC-132).

Log data is personal data too (who read whose record, from where). Auditors, SIRT and the general
protection manager (``audit:event:read``) read all of it; everyone else reads only their own history.
Every read of the log is itself an entry of the log. It leaves hogo only as a signed bundle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, case, delete, func, literal_column, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hogo.bootstrap import Hogo
from hogo.crypto import checkpoint as notes
from hogo.domain import auditlog
from hogo.domain.events import Event, Outcome
from hogo.domain.roles import Permission
from hogo.errors import NotFound, ValidationFailed
from hogo.services import audit, audit_tree, audit_verify, delivery
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.db import read_snapshot
from hogo.store.models import AuditCheckpoint, AuditEvent, AuditGate, AuditRecordRef, User

_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_REFS: Table = AuditRecordRef.__table__  # type: ignore[assignment]
MAX_PAGE = 1000
OUTCOMES = tuple(o.value for o in Outcome)
DATA_EVENTS = tuple(e.value for e in Event if e.value.startswith("data:record:"))
DENIAL_EVENTS = (*DATA_EVENTS, Event.GRANT_DENIED.value)
TOP_USERS = 10
RECENT_DENIALS = 20
MAX_BUNDLE_ENTRIES = 5_000_000


@dataclasses.dataclass(frozen=True)
class SearchFilter:
    user: str | None = None  # by or about this user
    file: str | None = None
    record: str | None = None  # a record (person) of ``file``
    event: str | None = None  # name or prefix
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100
    before: int | None = None  # paging: entries with a smaller index

    def described(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k not in ("limit", "before")}
        return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in out.items()}


def may_read_all(principal: Principal) -> bool:
    """The whole log (auditors, SIRT, the general protection manager); others read their own history."""
    return principal.can(Permission.AUDIT_READ)


def _note_read(db: Any, hogo: Hogo, principal: Principal, ctx: RequestContext, what: str, **details: Any) -> None:
    audit.record(db, now=hogo.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS, ctx=ctx,
                 actor_id=principal.user_id, actor_name=principal.username, target=what, details=details or None)


def search(hogo: Hogo, principal: Principal, f: SearchFilter, *, ctx: RequestContext) -> list[AuditEvent]:
    """Newest first. Without ``audit:event:read`` only the caller's own entries are found."""
    if f.record and not f.file:
        raise ValidationFailed("a record is named within its file: give the file too", field="record")
    with hogo.unit_of_work() as db:
        q = select(AuditEvent)
        if f.user:
            uid = db.scalar(select(User.id).where(User.username == f.user.strip().lower()))
            if uid is None:
                raise NotFound(f"no user {f.user!r}", code="user_not_found")
            q = q.where(or_(AuditEvent.actor_id == uid, AuditEvent.subject_user_id == uid))
        if not may_read_all(principal):
            q = q.where(or_(AuditEvent.actor_id == principal.user_id, AuditEvent.subject_user_id == principal.user_id))
        if f.file:
            q = q.where(AuditEvent.file_code == f.file.strip().lower())
        if f.record:
            seqs = select(_REFS.c.seq).where(_REFS.c.file_code == (f.file or "").strip().lower(),
                                             _REFS.c.record_id == f.record.strip())
            q = q.where(AuditEvent.seq.in_(seqs))
        if f.event:
            q = q.where(AuditEvent.event.startswith(f.event, autoescape=True))
        if f.outcome:
            q = q.where(AuditEvent.outcome == f.outcome)
        if f.since:
            q = q.where(AuditEvent.ts >= f.since)
        if f.until:
            q = q.where(AuditEvent.ts < f.until)
        if f.before is not None:
            q = q.where(AuditEvent.seq < f.before)
        rows = list(db.scalars(q.order_by(AuditEvent.seq.desc()).limit(min(max(f.limit, 1), MAX_PAGE))))
        _note_read(db, hogo, principal, ctx, "log:search", filters=f.described(), found=len(rows))
    return rows


def _readable_entry(db: Session, hogo: Hogo, principal: Principal, seq: int, ctx: RequestContext,
                    what: str) -> AuditEvent:
    """Entry ``seq`` if ``principal`` may read it (the whole log, or their own history), the read noted
    in the log; otherwise not found (whether it exists is not disclosed)."""
    row = db.get(AuditEvent, seq)
    if row is None or not (may_read_all(principal) or principal.user_id in (row.actor_id, row.subject_user_id)):
        raise NotFound(f"no log entry {seq}", code="entry_not_found")
    _note_read(db, hogo, principal, ctx, what)
    return row


def entry(hogo: Hogo, principal: Principal, seq: int, *, ctx: RequestContext) -> dict[str, Any]:
    """One entry as logged, with its leaf hash (and an inclusion proof when a checkpoint covers it)."""
    with hogo.unit_of_work() as db:
        row = _readable_entry(db, hogo, principal, seq, ctx, f"log:entry:{seq}")
        out: dict[str, Any] = {"seq": seq, "leaf_hash": row.leaf_hash.hex(), "expired": row.entry is None,
                               "entry": None if row.entry is None else row.entry.decode("utf-8"),
                               "logged": None if row.logged is None else auditlog.as_dict(seq, row.logged)}
    return out


def prove(hogo: Hogo, principal: Principal, seq: int, *, ctx: RequestContext) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of entry ``seq`` in the latest signed checkpoint."""
    with hogo.unit_of_work() as db:
        row = _readable_entry(db, hogo, principal, seq, ctx, f"log:proof:{seq}")
    with hogo.engine.connect() as conn:
        last = audit_tree.latest_checkpoint(conn)
    if last is None or last.size <= seq:  # not covered yet: sign the log as it stands now
        last = audit_tree.checkpoint(hogo)
    with read_snapshot(hogo.engine) as conn:
        p = audit_tree.proof_for(conn, seq, last.size, hogo.tree_cache)
    return {"index": seq, "size": last.size, "leaf_hash": p["leaf_hash"].hex(), "proof": audit_tree.to_hex(p["proof"]),
            "root": p["root"].hex(), "checkpoint": last.note, "entry": None if row.entry is None else
            row.entry.decode("utf-8")}


def consistency(hogo: Hogo, principal: Principal, old_size: int, new_size: int | None, *,
                ctx: RequestContext) -> dict[str, Any]:
    """A proof that the checkpoint of ``new_size`` (default: the latest) extends the log of ``old_size``."""
    with hogo.unit_of_work() as db:
        _note_read(db, hogo, principal, ctx, "log:consistency")
    with read_snapshot(hogo.engine) as conn:
        last = audit_tree.latest_checkpoint(conn)
        note = last.note if last else None
        if new_size is not None:
            note = conn.execute(select(AuditCheckpoint.note).where(AuditCheckpoint.size == new_size)).scalar()
            if note is None:
                raise NotFound(f"no checkpoint of size {new_size}", code="checkpoint_not_found")
        if note is None:
            raise NotFound("no checkpoint yet", code="checkpoint_not_found")
        cp, _ = notes.parse_note(note)
        if not 0 <= old_size <= cp.size:
            raise ValidationFailed(f"the old size must be between 0 and {cp.size}", field="old_size")
        proof = audit_tree.TreeReader(conn, hogo.tree_cache).consistency_proof(old_size, cp.size)
    return {"old_size": old_size, "new_size": cp.size, "proof": audit_tree.to_hex(proof), "checkpoint": note}


def public_key(hogo: Hogo) -> str:
    """The verifier key (``name+hash+base64``): publish it where auditors can pin it."""
    return audit_tree.log_key(hogo).verifier_key


def latest_checkpoint(hogo: Hogo, principal: Principal, *, fresh: bool, ctx: RequestContext) -> str:
    principal.require(Permission.AUDIT_READ)
    if fresh:
        return audit_tree.checkpoint(hogo).note
    with hogo.engine.connect() as conn:
        last = audit_tree.latest_checkpoint(conn)
    return last.note if last else audit_tree.checkpoint(hogo).note


# -------------------------------------------------------------------------------------- activity


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One bar: a local day or a UTC hour, with its accesses by outcome."""

    start: dt.datetime
    axis: str  # short label under the bar
    title: str  # full label (tooltip, table)
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclasses.dataclass(frozen=True)
class Activity:
    days: int
    hourly: bool
    since: dt.datetime
    until: dt.datetime
    buckets: list[Bucket]
    top: list[dict[str, Any]]
    denials: list[AuditEvent]

    def totals(self) -> dict[str, int]:
        return {o: sum(b.counts[o] for b in self.buckets) for o in OUTCOMES}


def _utc_hour(db_is_sqlite: bool) -> ColumnElement[str]:
    """The UTC hour of an entry as ``YYYY-MM-DD HH`` text. The formats are SQL literals, not bound
    parameters, so PostgreSQL sees the same expression in SELECT and GROUP BY."""
    if db_is_sqlite:
        return func.strftime(literal_column("'%Y-%m-%d %H'"), AuditEvent.ts)
    return func.to_char(func.timezone(literal_column("'UTC'"), AuditEvent.ts), literal_column("'YYYY-MM-DD HH24'"))


def _periods(now: dt.datetime, days: int, tz: ZoneInfo) -> tuple[bool, list[dt.datetime], dt.datetime]:
    """The bars' start instants and the end of the last: hours for up to two days, else local days."""
    if days <= 2:
        end = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        return True, [end - dt.timedelta(hours=days * 24 - i) for i in range(days * 24)], end
    today = now.astimezone(tz).date()
    starts = [dt.datetime.combine(today - dt.timedelta(days=days - 1 - i), dt.time(), tzinfo=tz) for i in range(days)]
    return False, starts, dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=tz)


def activity(hogo: Hogo, principal: Principal, days: int, *, ctx: RequestContext) -> Activity:
    """Data-access volume per day (or hour) by outcome, the top users by records accessed, and the
    latest denials, for the last ``days`` days (SEC-107(2), MN-3b). GROUP BY over the (event, ts)
    index: the database returns at most one row per hour and outcome. The read is logged (ANON-12)."""
    principal.require(Permission.AUDIT_READ)
    tz = ZoneInfo(hogo.settings.timezone)
    hourly, starts, end = _periods(hogo.clock.now(), days, tz)
    since = starts[0]
    in_period = (AuditEvent.event.in_(DATA_EVENTS), AuditEvent.ts >= since, AuditEvent.ts < end)
    hour = _utc_hour(hogo.settings.is_sqlite).label("hour")
    success = func.sum(case((AuditEvent.outcome == Outcome.SUCCESS.value, AuditEvent.record_count), else_=0))
    denied = func.sum(case((AuditEvent.outcome == Outcome.DENIED.value, 1), else_=0))
    with hogo.unit_of_work() as db:
        per_hour = db.execute(select(hour, AuditEvent.outcome, func.count()).where(*in_period)
                              .group_by(hour, AuditEvent.outcome)).all()
        top_rows = db.execute(
            select(AuditEvent.actor_id, func.max(AuditEvent.actor_name), success.label("records"),
                   func.count().label("accesses"), denied.label("denied"))
            .where(*in_period, AuditEvent.actor_id.is_not(None)).group_by(AuditEvent.actor_id)
            .order_by(literal_column("records").desc(), literal_column("accesses").desc()).limit(TOP_USERS)).all()
        denials = list(db.scalars(
            select(AuditEvent).where(AuditEvent.event.in_(DENIAL_EVENTS), AuditEvent.outcome == Outcome.DENIED.value,
                                     AuditEvent.ts >= since, AuditEvent.ts < end)
            .order_by(AuditEvent.ts.desc(), AuditEvent.seq.desc()).limit(RECENT_DENIALS)))
        _note_read(db, hogo, principal, ctx, "log:activity", days=days)
    counts: dict[dt.datetime | dt.date, dict[str, int]] = {}
    for hour_text, outcome, n in per_hour:
        if outcome not in OUTCOMES:
            continue
        utc = dt.datetime.strptime(hour_text, "%Y-%m-%d %H").replace(tzinfo=dt.UTC)
        key: dt.datetime | dt.date = utc if hourly else utc.astimezone(tz).date()
        slot = counts.setdefault(key, dict.fromkeys(OUTCOMES, 0))
        slot[outcome] += int(n)
    buckets = []
    for s in starts:
        local = s.astimezone(tz)
        key = s if hourly else s.date()
        if hourly:
            axis, title = local.strftime("%H"), local.strftime("%Y-%m-%d %H:00")
        else:
            axis, title = f"{local.month}/{local.day}", local.strftime("%Y-%m-%d")
        buckets.append(Bucket(s, axis, title, counts.get(key, dict.fromkeys(OUTCOMES, 0))))
    top = [{"actor_id": a, "actor": name, "records": int(r or 0), "accesses": int(c or 0), "denied": int(d or 0)}
           for a, name, r, c, d in top_rows]
    return Activity(days, hourly, since, end, buckets, top, denials)


# ---------------------------------------------------------------------------------- verification


def sink_checkpoints(hogo: Hogo) -> list[tuple[str, str]]:
    """Checkpoints held by the file sinks (other storage): the database cannot roll those back."""
    out: list[tuple[str, str]] = []
    for spec in hogo.settings.audit_sinks:
        sink = delivery.parse_sink(spec)
        if isinstance(sink, delivery.FileSink):
            try:
                notes_ = sink.read_checkpoints()
            except FileNotFoundError:
                continue
            if notes_:  # the newest is enough: it extends all the older ones
                out.append((f"sink {sink.name}", notes_[-1]))
    return out


def verify(hogo: Hogo, principal: Principal | None, *, remembered: str | None = None,
           ctx: RequestContext | None = None, deep: bool = True) -> audit_verify.Report:
    """Recompute the whole log. ``principal`` None: the operator's offline run on a stopped instance."""
    if principal is not None:
        principal.require(Permission.AUDIT_READ)
    key = audit_tree.log_key(hogo)
    external = sink_checkpoints(hogo)
    if remembered:
        external.append(("the remembered checkpoint", remembered))
    report = audit_verify.verify_database(hogo.engine, key_name=key.name, public_key=key.public, external=external,
                                          deep=deep)
    if principal is not None:
        with hogo.unit_of_work() as db:
            audit.record(db, now=hogo.clock.now(), event=Event.LOG_VERIFIED,
                         outcome=Outcome.SUCCESS if report.ok else Outcome.FAILURE, ctx=ctx or RequestContext(),
                         actor_id=principal.user_id, actor_name=principal.username,
                         details={"size": report.size, "problems": len(report.problems),
                                  "first": report.first.as_dict() if report.first else None})
    return report


# ----------------------------------------------------------------------------------------- export


def export_bundle(hogo: Hogo, principal: Principal, directory: Path, *, since: dt.datetime | None,
                  until: dt.datetime | None, ctx: RequestContext) -> dict[str, Any]:
    """Write a signed bundle of the entries in [since, until) to ``directory`` (ANON-12: the log leaves
    hogo only like this). The export itself is logged before the bundle is built."""
    principal.require(Permission.AUDIT_READ)
    with hogo.unit_of_work() as db:
        q = select(func.min(AuditEvent.seq), func.max(AuditEvent.seq))
        if since:
            q = q.where(AuditEvent.ts >= since)
        if until:
            q = q.where(AuditEvent.ts < until)
        lo, hi = db.execute(q).one()
        audit.record(db, now=hogo.clock.now(), event=Event.LOG_EXPORTED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=principal.user_id, actor_name=principal.username,
                     details={"since": since.isoformat() if since else None,
                              "until": until.isoformat() if until else None, "first": lo, "last": hi})
    a, b = (0, 0) if lo is None else (int(lo), int(hi) + 1)
    if b - a > MAX_BUNDLE_ENTRIES:
        raise ValidationFailed(f"{b - a} entries are more than one bundle holds ({MAX_BUNDLE_ENTRIES}); "
                               "narrow --since/--until", field="since")
    cp = audit_tree.checkpoint(hogo)  # covers everything up to and including the export's own entry
    return write_bundle(hogo, directory, a, b, cp, exported_by=principal.username)


def write_bundle(hogo: Hogo, directory: Path, a: int, b: int, cp: audit_tree.StoredCheckpoint, *,
                 exported_by: str) -> dict[str, Any]:
    key = audit_tree.log_key(hogo)
    directory.mkdir(parents=True, exist_ok=True)
    with read_snapshot(hogo.engine) as conn:
        tree = audit_tree.TreeReader(conn, hogo.tree_cache)
        with (directory / "entries.log").open("wb") as out, (directory / "leaves.bin").open("wb") as leaves:
            rows = conn.execution_options(yield_per=5000).execute(
                select(_EVENTS.c.entry, _EVENTS.c.leaf_hash).where(_EVENTS.c.seq >= a, _EVENTS.c.seq < b)
                .order_by(_EVENTS.c.seq))
            for data, leaf in rows:
                out.write(b"-\n" if data is None else bytes(data) + b"\n")
                leaves.write(bytes(leaf))
        nodes = audit_verify.range_proof(a, b, cp.size, tree.subtree)
        older = conn.execute(select(AuditCheckpoint.size, AuditCheckpoint.note)
                             .where(AuditCheckpoint.size < cp.size).order_by(AuditCheckpoint.size.desc())
                             .limit(10_000)).all()
        consistency_items = [{"size": size, "note": note, "proof": audit_tree.to_hex(
            tree.consistency_proof(size, cp.size))} for size, note in older]
    (directory / "checkpoint.note").write_text(cp.note, encoding="utf-8")
    (directory / "public_key.txt").write_text(key.verifier_key + "\n", encoding="utf-8")
    files = {name: audit_verify.file_digest(directory / name)
             for name in ("entries.log", "leaves.bin", "checkpoint.note", "public_key.txt")}
    manifest = {"format": audit_verify.BUNDLE_FORMAT, "origin": key.name, "first": a, "end": b, "size": cp.size,
                "exported_at": auditlog.format_ts(hogo.clock.now()), "exported_by": exported_by, "files": files,
                "range_proof": audit_tree.to_hex(nodes), "consistency": consistency_items,
                "entry_format": "hogo-log/1 <seq> <json>, one per line; '-' marks an expired payload"}
    data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    (directory / "manifest.json").write_bytes(data)
    text = f"{audit_verify.BUNDLE_FORMAT}\n{hashlib.sha256(data).hexdigest()}\n"
    (directory / "manifest.sig").write_text(notes.sign_note(text, key.name, key.sign, key.public), encoding="utf-8")
    return {"first": a, "end": b, "size": cp.size, "entries": b - a, "checkpoint": cp.note}


# --------------------------------------------------------------------------------------- retention


def retention_days(settings_retention: tuple[tuple[str, int], ...], event: str) -> int:
    """The longest matching prefix wins; ``*`` is the default."""
    best, days = -1, None
    for prefix, d in settings_retention:
        if prefix == "*":
            if best < 0:
                days = d
        elif event.startswith(prefix) and len(prefix) > best:
            best, days = len(prefix), d
    return days if days is not None else 7 * 366


def run_retention(hogo: Hogo, *, actor: Principal | None = None, ctx: RequestContext | None = None,
                  dry_run: bool = False) -> dict[str, Any]:
    """Remove the payloads of entries past their retention (ANON-12: kept for a set period). Their
    index and leaf hash stay, so the tree and every checkpoint still verify; the removal is itself
    an entry that lists the ranges removed (the verifier accepts a missing payload only there)."""
    now = hogo.clock.now()
    retention = hogo.settings.audit_retention_days
    shortest = min(d for _, d in retention)
    with hogo.unit_of_work() as db:
        candidates = db.execute(
            select(AuditEvent.seq, AuditEvent.event, AuditEvent.ts)
            .where(AuditEvent.entry.is_not(None), AuditEvent.ts < now - dt.timedelta(days=shortest),
                   AuditEvent.event != audit_verify.EXPIRED_EVENT)
            .order_by(AuditEvent.seq)).all()
        due = [seq for seq, event, ts in candidates
               if ts < now - dt.timedelta(days=retention_days(retention, event))]
        ranges = _ranges(due)
        if dry_run or not due:
            return {"expired": len(due), "ranges": ranges, "dry_run": dry_run}
        gate: Table = AuditGate.__table__  # type: ignore[assignment]
        db.execute(update(gate).where(gate.c.id == 1).values(open=True))
        for lo, hi in ranges:
            cond = and_(_EVENTS.c.seq >= lo, _EVENTS.c.seq < hi)
            db.execute(update(_EVENTS).where(cond).values(
                entry=None, outcome=None, reason=None, actor_id=None, actor_name=None, subject_user_id=None,
                target=None, file_code=None, purpose=None, record_count=0, client_addr=None, session_id=None,
                details=None, expired_at=now))
            db.execute(delete(_REFS).where(_REFS.c.seq >= lo, _REFS.c.seq < hi))
        db.execute(update(gate).where(gate.c.id == 1).values(open=False))
        audit.record(db, now=now, event=Event.LOG_EXPIRED, outcome=Outcome.SUCCESS, ctx=ctx or RequestContext(),
                     actor_id=actor.user_id if actor else None, actor_name=actor.username if actor else None,
                     details={"ranges": [list(r) for r in ranges], "entries": len(due),
                              "retention_days": {p: d for p, d in retention}})
    return {"expired": len(due), "ranges": ranges, "dry_run": False}


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s in seqs:
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], s + 1)
        else:
            out.append((s, s + 1))
    return out

