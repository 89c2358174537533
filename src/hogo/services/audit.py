"""The tamper-evident log: appending entries (MN-3b, SEC-107(2)(3), SEC-132, SEC-84, ANON-12, MLIT-9.5.4).

``record`` adds an entry to the caller's transaction. The entries of a transaction are appended just
before it commits (a ``before_commit`` hook): they take the next indices of the one log (the
``audit_head`` row lock serialises appenders across processes and nodes), get their canonical
encoding and Merkle leaf hash, and commit with the change they describe — or, if anything fails,
neither is written (fail closed). Never pass a secret in ``details``: keys are checked against a
deny-list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, event, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from hogo.domain import merkle
from hogo.domain.auditlog import TILE_HEIGHT, LogEntry, encode
from hogo.domain.events import Event, Outcome
from hogo.store.models import AuditEvent, AuditHead, AuditNode, AuditRecordRef

_AUDIT_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_REFS: Table = AuditRecordRef.__table__  # type: ignore[assignment]
_NODES: Table = AuditNode.__table__  # type: ignore[assignment]
_HEAD: Table = AuditHead.__table__  # type: ignore[assignment]
_FORBIDDEN_DETAIL_KEYS = ("password", "secret", "token", "totp", "code", "my_number", "mynumber")
_PENDING = "hogo.audit.pending"
_INSTALLED = "hogo.audit.installed"
_TILE = 1 << TILE_HEIGHT


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """Where a request came from: recorded with every event."""

    client_addr: str | None = None
    user_agent: str | None = None
    session_id: str | None = None


def record(
    db: Session,
    *,
    now: dt.datetime,
    event: Event,
    outcome: Outcome,
    ctx: RequestContext,
    actor_id: int | None = None,
    actor_name: str | None = None,
    subject_user_id: int | None = None,
    target: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    file_code: str | None = None,
    purpose: str | None = None,
    records: Iterable[str] = (),
    fields: Iterable[str] = (),
) -> None:
    for key in details or {}:
        if any(bad in key.lower() for bad in _FORBIDDEN_DETAIL_KEYS):
            raise ValueError(f"audit details must not carry secrets (key {key!r})")
    entry = LogEntry(
        ts=now, event=event.value, outcome=outcome.value, reason=reason, actor_id=actor_id, actor=actor_name,
        subject_user_id=subject_user_id, target=target, file=file_code, purpose=purpose, records=tuple(records),
        fields=tuple(sorted(fields)), client=ctx.client_addr, session=ctx.session_id, details=details or None,
    )
    if not db.info.get(_INSTALLED):
        # A session whose commit would not append the entry: refuse rather than lose it.
        raise RuntimeError("this session does not write the audit log (use Hogo.unit_of_work)")
    db.info.setdefault(_PENDING, []).append(entry)


def install(factory: sessionmaker[Session]) -> None:
    """Append each transaction's recorded entries just before it commits."""
    factory.kw.setdefault("info", {})[_INSTALLED] = True
    event.listen(factory, "before_commit", _append_pending)
    event.listen(factory, "after_rollback", _drop_pending)
    event.listen(factory, "after_soft_rollback", lambda session, _tx: _drop_pending(session))


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _append_pending(session: Session) -> None:
    pending: list[LogEntry] | None = session.info.pop(_PENDING, None)
    if pending:
        append(session.connection(), pending)


def append(conn: Connection, entries: Sequence[LogEntry]) -> int:
    """Append ``entries`` in this transaction; returns the index of the first."""
    n = len(entries)
    end = int(conn.execute(
        update(_HEAD).where(_HEAD.c.id == 1).values(size=_HEAD.c.size + n).returning(_HEAD.c.size)
    ).scalar_one())  # no head row: the log is not initialised, and nothing commits
    start = end - n
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        seq = start + i
        data = encode(seq, e)
        rows.append({
            "seq": seq, "ts": e.ts, "event": e.event, "outcome": e.outcome, "reason": e.reason,
            "actor_id": e.actor_id, "actor_name": e.actor, "subject_user_id": e.subject_user_id,
            "target": e.target, "file_code": e.file, "purpose": e.purpose, "record_count": len(set(e.records)),
            "client_addr": e.client, "session_id": e.session, "details": e.details, "entry": data,
            "leaf_hash": merkle.leaf_hash(data), "expired_at": None,
        })
        if e.records and e.file:
            refs.extend({"seq": seq, "record_id": r, "file_code": e.file} for r in dict.fromkeys(e.records))
    conn.execute(insert(_AUDIT_EVENTS), rows)
    if refs:
        conn.execute(insert(_REFS), refs)
    extend_tiles(conn, start, end, [r["leaf_hash"] for r in rows])
    return start


def extend_tiles(conn: Connection, start: int, end: int, new_leaves: Sequence[bytes]) -> None:
    """Store the roots of the 256-wide subtrees (levels 8, 16, …) that leaves [start, end) complete."""
    level, lo, hi = 0, start, end
    fresh = dict(zip(range(start, end), new_leaves, strict=True))
    while hi // _TILE > lo // _TILE:
        made: dict[int, bytes] = {}
        for j in range(lo // _TILE, hi // _TILE):
            a, b = j * _TILE, (j + 1) * _TILE
            items = _stored(conn, level, a, min(b, lo)) + [fresh[i] for i in range(max(a, lo), b)]
            made[j] = merkle.root_of_leaves(items)
        level += TILE_HEIGHT
        conn.execute(insert(_NODES), [{"level": level, "idx": j, "hash": h} for j, h in made.items()])
        lo, hi, fresh = lo // _TILE, hi // _TILE, made


def _stored(conn: Connection, level: int, a: int, b: int) -> list[bytes]:
    """Hashes at ``level`` for indices [a, b) already in the database."""
    if a >= b:
        return []
    if level == 0:
        q = select(_AUDIT_EVENTS.c.leaf_hash).where(_AUDIT_EVENTS.c.seq >= a, _AUDIT_EVENTS.c.seq < b)
        hashes = list(conn.execute(q.order_by(_AUDIT_EVENTS.c.seq)).scalars())
    else:
        q = select(_NODES.c.hash).where(_NODES.c.level == level, _NODES.c.idx >= a, _NODES.c.idx < b)
        hashes = list(conn.execute(q.order_by(_NODES.c.idx)).scalars())
    if len(hashes) != b - a:
        raise RuntimeError(f"the log is missing hashes at level {level} in [{a}, {b})")
    return hashes


def count_failures_from(db: Session, *, client_addr: str, since: dt.datetime) -> int:
    """Failed logins from one address since ``since`` (rate limit across all server processes)."""
    return int(
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.client_addr == client_addr,
                AuditEvent.event == Event.LOGIN_FAILED.value,
                AuditEvent.ts >= since,
            )
        )
        or 0
    )
