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
import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from hogo.domain import merkle
from hogo.domain.auditlog import TILE_HEIGHT, LogEntry, encode, format_ts
from hogo.domain.events import Event, Outcome
from hogo.store.models import AuditEvent

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

    def with_session(self, session_id: str | None) -> RequestContext:
        """The same origin within a session (``dataclasses.replace`` costs ten times as much: this is on
        every request)."""
        return RequestContext(self.client_addr, self.user_agent, session_id)


def entry(
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
) -> LogEntry:
    """The log entry for one event (to ``record`` in a transaction, or ``Hogo.write_together``)."""
    for key in details or {}:
        if any(bad in key.lower() for bad in _FORBIDDEN_DETAIL_KEYS):
            raise ValueError(f"audit details must not carry secrets (key {key!r})")
    return LogEntry(
        ts=now, event=event.value, outcome=outcome.value, reason=reason, actor_id=actor_id, actor=actor_name,
        subject_user_id=subject_user_id, target=target, file=file_code, purpose=purpose, records=tuple(records),
        fields=tuple(sorted(fields)), client=ctx.client_addr, session=ctx.session_id, details=details or None,
    )


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
    """Add the entry for one event to ``db``'s transaction: appended when it commits, never if it
    rolls back."""
    add(db, [entry(now=now, event=event, outcome=outcome, ctx=ctx, actor_id=actor_id, actor_name=actor_name,
                   subject_user_id=subject_user_id, target=target, reason=reason, details=details,
                   file_code=file_code, purpose=purpose, records=records, fields=fields)])


def add(db: Session, entries: Sequence[LogEntry]) -> None:
    if not db.info.get(_INSTALLED):
        # A session whose commit would not append the entry: refuse rather than lose it.
        raise RuntimeError("this session does not write the audit log (use Hogo.unit_of_work)")
    db.info.setdefault(_PENDING, []).extend(entries)


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


# The append's statements at the driver level: the hot path skips SQLAlchemy's statement building and
# type processing (``append`` stores values as the models' column types would).
_HEAD_SQL = "UPDATE audit_head SET size = size + ? WHERE id = 1 RETURNING size"
_EVENTS_SQL = (
    "INSERT INTO audit_events (seq, ts, event, outcome, reason, actor_id, actor_name, subject_user_id, target, "
    "file_code, purpose, record_count, client_addr, session_id, details, entry, leaf_hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REFS_SQL = "INSERT INTO audit_record_refs (seq, record_id, file_code) VALUES (?, ?, ?)"
# The tiles (``extend_tiles``): stored leaf hashes or subtree roots of one range, and new roots.
_LEAVES_SQL = "SELECT leaf_hash FROM audit_events WHERE seq >= ? AND seq < ? ORDER BY seq"
_ROOTS_SQL = "SELECT hash FROM audit_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx"
_NODE_SQL = "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)"


@functools.cache
def _statements(paramstyle: str) -> tuple[str, ...]:
    """The statements in the driver's parameter style (``?`` for sqlite3, ``%s`` for psycopg):
    head, events, refs, leaves, roots, node."""
    sql = (_HEAD_SQL, _EVENTS_SQL, _REFS_SQL, _LEAVES_SQL, _ROOTS_SQL, _NODE_SQL)
    return sql if paramstyle == "qmark" else tuple(q.replace("?", "%s") for q in sql)


def append(conn: Connection, entries: Sequence[LogEntry]) -> int:
    """Append ``entries`` in this transaction; returns the index of the first."""
    n = len(entries)
    head_sql, events_sql, refs_sql = _statements(conn.dialect.paramstyle)[:3]
    sqlite = conn.dialect.name == "sqlite"
    # The head row's lock orders appenders; no head row (log not initialised) and nothing commits.
    end = int(conn.exec_driver_sql(head_sql, (n,)).scalar_one())
    start = end - n
    rows: list[tuple[Any, ...]] = []
    refs: list[tuple[int, str, str]] = []
    leaves: list[bytes] = []
    for seq, e in enumerate(entries, start):
        ts_text = format_ts(e.ts)
        data = encode(seq, e, ts_text)
        leaf = merkle.leaf_hash(data)
        leaves.append(leaf)
        rows.append((
            # stored as UTCDateTime stores it: naive UTC text on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff")
            seq, ts_text[:10] + " " + ts_text[11:26] if sqlite else e.ts, e.event, e.outcome, e.reason,
            e.actor_id, e.actor, e.subject_user_id, e.target, e.file, e.purpose, len(set(e.records)), e.client,
            e.session, None if e.details is None else _details_json(e.details), data, leaf,
        ))
        if e.records and e.file:
            refs.extend((seq, r, e.file) for r in dict.fromkeys(e.records))
    conn.exec_driver_sql(events_sql, rows)
    if refs:
        conn.exec_driver_sql(refs_sql, refs)
    extend_tiles(conn, start, end, leaves)
    return start


_details_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode  # as JSONText


def extend_tiles(conn: Connection, start: int, end: int, new_leaves: Sequence[bytes]) -> None:
    """Store the roots of the 256-wide subtrees (levels 8, 16, …) that leaves [start, end) complete.

    Driver-level statements, as ``append``'s: nearly every group of appends completes a tile, and
    building the statements with SQLAlchemy cost more than hashing the tile."""
    leaves_sql, roots_sql, node_sql = _statements(conn.dialect.paramstyle)[3:]
    level, lo, hi = 0, start, end
    fresh = dict(zip(range(start, end), new_leaves, strict=True))
    while hi // _TILE > lo // _TILE:
        made: dict[int, bytes] = {}
        for j in range(lo // _TILE, hi // _TILE):
            a, b = j * _TILE, (j + 1) * _TILE
            stored = _stored(conn, leaves_sql, roots_sql, level, a, min(b, lo))
            made[j] = merkle.root_of_leaves(stored + [fresh[i] for i in range(max(a, lo), b)])
        level += TILE_HEIGHT
        conn.exec_driver_sql(node_sql, [(level, j, h) for j, h in made.items()])
        lo, hi, fresh = lo // _TILE, hi // _TILE, made


def _stored(conn: Connection, leaves_sql: str, roots_sql: str, level: int, a: int, b: int) -> list[bytes]:
    """Hashes at ``level`` for indices [a, b) already in the database."""
    if a >= b:
        return []
    hashes = read_hashes(conn, level, a, b, sql=(leaves_sql, roots_sql))
    if len(hashes) != b - a:
        raise RuntimeError(f"the log is missing hashes at level {level} in [{a}, {b})")
    return hashes


def read_hashes(conn: Connection, level: int, a: int, b: int, *, sql: tuple[str, str] | None = None) -> list[bytes]:
    """The stored hashes at ``level`` (0: the leaves; 8, 16, …: subtree roots) for indices [a, b), in
    order; fewer than asked when some are missing (the caller decides what that means)."""
    leaves_sql, roots_sql = sql or _statements(conn.dialect.paramstyle)[3:5]
    if level == 0:
        rows = conn.exec_driver_sql(leaves_sql, (a, b)).fetchall()
    else:
        rows = conn.exec_driver_sql(roots_sql, (level, a, b)).fetchall()
    return [bytes(r[0]) for r in rows]


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
