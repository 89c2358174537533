"""The guard (ガード): the one path to record data. Every read, search, write, delete and import of
a personal-data file's records comes through here, from the API, the CLI and the web alike.

Each call: (1) the requester is authenticated (a Principal) and has finished signing in; (2) the
pure policy decides on the file's grants — action × fields × purpose × records × time (ANON-5,
MN-6a, MLIT-9.5.2, SEC-45, SEC-131); (3) the decision, purpose, fields, record IDs and outcome are
recorded, allowed or denied (MN-3b, MLIT-9.5.4, SEC-107(2)); (4) only after that record has
committed are values decrypted and returned, or written with it in the same transaction (fail
closed: no record, no access). My Numbers and other identification codes are masked unless a
``reveal`` grant covers them (MN-6a).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import csv
import dataclasses
import datetime as dt
import functools
import io
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.crypto.envelope import FileKeys
from hogo.crypto.keys import SealError
from hogo.domain.auditlog import LogEntry
from hogo.domain.events import Event, Outcome
from hogo.domain.files import (
    Action,
    Classification,
    FileSpec,
    Restriction,
    cells_normaliser,
    normalise_record,
    normalise_value,
)
from hogo.domain.handling import Marks
from hogo.domain.identifiers import mask
from hogo.domain.policy import Decision, GrantIndex, Requester, decide, readable_fields
from hogo.domain.retention import dispose_after
from hogo.domain.roles import Permission
from hogo.domain.text import nfkc
from hogo.errors import Conflict, Forbidden, NotFound, Unreadable, ValidationFailed
from hogo.services import approvals, audit, audit_tree, auth, integrity
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.services.files import (
    advance_key_version,
    file_by_code,
    file_keys,
    import_plan,
    load_spec,
    marks_view,
    writable_keys,
)
from hogo.services.grants import candidate_grants
from hogo.services.import_sealer import Good, Sealer, stream_size
from hogo.store.authz_cache import Snapshot
from hogo.store.bulk import insert_many
from hogo.store.fastsql import FastSelect
from hogo.store.models import FileGrant, PersonalDataFile, Record, RecordIndex

_RECORDS: Table = Record.__table__  # type: ignore[assignment]
_RECORD_INDEX: Table = RecordIndex.__table__  # type: ignore[assignment]
REJECT_REASON_COLUMN = "hogo_reject_reason"
RECORD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
GRANT_TOUCH_INTERVAL = dt.timedelta(hours=1)
MAX_FIND_RESULTS = 1000
_SCOPE = {
    Action.READ: Permission.DATA_READ, Action.REVEAL: Permission.DATA_REVEAL, Action.CREATE: Permission.DATA_WRITE,
    Action.UPDATE: Permission.DATA_WRITE, Action.DELETE: Permission.DATA_WRITE, Action.EXPORT: Permission.DATA_EXPORT,
}


@dataclasses.dataclass(frozen=True)
class RecordView:
    record_id: str
    file: str
    segment: str | None
    revision: int
    values: dict[str, str]  # readable fields only; identification codes masked unless revealed
    masked: tuple[str, ...]
    revealed: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    classification: str
    restrictions: tuple[str, ...]
    marks: dict[str, Any] = dataclasses.field(default_factory=dict)  # files.marks_view: shown with every record


@dataclasses.dataclass(frozen=True)
class _FileRef:
    """A snapshot of the file's row (it outlives the transaction, e.g. to record a refusal)."""

    id: int
    code: str
    confidentiality: int
    integrity: int
    availability: int
    restrictions: tuple[str, ...]
    data_key_version: int
    erased: bool = False


@dataclasses.dataclass
class _Context:
    """Everything one guarded call needs about the file and the requester."""

    row: _FileRef
    spec: FileSpec
    who: Requester
    index: GrantIndex
    principal: Principal
    ctx: RequestContext
    purpose: str


def _requester(p: Principal) -> Requester:
    return Requester(user_id=p.user_id, department=p.department, roles=tuple((g.role, g.department) for g in p.roles))


def _purpose(purpose: str | None) -> str:
    text = (purpose or "").strip()
    if not text:
        raise ValidationFailed("declare the purpose of this access (--purpose, X-Hogo-Purpose)", field="purpose",
                               requirement="SEC-45")
    if len(text) > 200:
        raise ValidationFailed("the purpose must be at most 200 characters", field="purpose")
    return nfkc(text)


def _conn(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _open(hogo: Hogo, db: Session | Connection, principal: Principal, file_code: str, purpose: str | None,
          action: Action, ctx: RequestContext, cached: Snapshot | None = None) -> _Context:
    """The file, its spec and the requester's candidate grants, as of ``db``'s transaction (from the
    authorization cache when ``cached`` is given: store/authz_cache.py)."""
    principal.require_data_scope(_SCOPE.get(action, Permission.DATA_READ))
    audit_tree.require_anchored(hogo)  # SEC-107(3): no data access while the log cannot be anchored off-host
    if cached is None:
        ref, version = _file_ref(db, file_code)
    else:
        ref, version = cached.get(("file", file_code.strip().lower()), lambda: _file_ref(db, file_code))
    if ref.erased:  # issue 5: its keys are destroyed and its records purged; the ledger entry stays
        raise Conflict(f"file {ref.code!r} was erased; it holds no records", code="file_erased")
    spec = hogo.spec_cache.get((ref.id, version))
    if spec is None:
        if isinstance(db, Session):
            spec = load_spec(hogo, file_by_code(db, file_code))
        else:
            with Session(bind=db) as s:  # in the caller's transaction: the same snapshot
                spec = load_spec(hogo, file_by_code(s, file_code))
    if cached is None:
        index = GrantIndex(candidate_grants(db, ref.id, principal))
    else:
        index = cached.get(("grants", ref.id, principal.user_id, frozenset(g.role for g in principal.roles)),
                           lambda: GrantIndex(candidate_grants(db, ref.id, principal)))
    actor_ctx = ctx.with_session(ctx.session_id or principal.session_id or principal.token_id)
    return _Context(ref, spec, _requester(principal), index, principal, actor_ctx, _purpose(purpose))


_FILE_REF = (
    select(PersonalDataFile.id, PersonalDataFile.code, PersonalDataFile.confidentiality, PersonalDataFile.integrity,
           PersonalDataFile.availability, PersonalDataFile.restrictions, PersonalDataFile.data_key_version,
           PersonalDataFile.version, PersonalDataFile.erased_at)
    .where(PersonalDataFile.code == bindparam("code"))
)


_FAST_FILE_REF = FastSelect(_FILE_REF)


def _file_ref(db: Session | Connection, code: str) -> tuple[_FileRef, int]:
    """The file's row without its spec, and its version (a prebuilt Core statement: this is on every
    record access)."""
    row = _FAST_FILE_REF.one_or_none(_conn(db), {"code": code.strip().lower()})
    if row is None:
        raise NotFound(f"no personal-data file {code!r}", code="file_not_found")
    fid, fcode, conf, integ, avail, restr, dkv, version, erased_at = row
    return _FileRef(fid, fcode, conf, integ, avail, tuple(restr), dkv, erased_at is not None), version


def _decide(hogo: Hogo, c: _Context, action: Action, *, fields: Iterable[str] | None, segment: str | None,
            segment_applies: bool = True) -> Decision:
    return decide(c.who, c.index, action=action, purpose=c.purpose, file_purposes=c.spec.purposes,
                  now=hogo.clock.now(), fields=fields, segment=segment, segment_applies=segment_applies)


def _access_entry(hogo: Hogo, c: _Context, event: Event, outcome: Outcome, *, records: Sequence[str],
                  fields: Iterable[str], decision: Decision | None, reason: str | None = None,
                  extra: Mapping[str, Any] | None = None) -> LogEntry:
    details: dict[str, Any] = {"decision": decision.code if decision else reason}
    if decision is not None and decision.grant_ids:
        details["grants"] = list(decision.grant_ids)
    if decision is not None and decision.requirement and not decision.allowed:
        details["requirement"] = decision.requirement
    if extra:
        details.update(extra)
    return audit.entry(now=hogo.clock.now(), event=event, outcome=outcome, ctx=c.ctx, actor_id=c.principal.user_id,
                       actor_name=c.principal.username, target=f"file:{c.row.code}", reason=reason or (
                           None if decision is None or decision.allowed else decision.code), details=details,
                       file_code=c.row.code, purpose=c.purpose, records=records, fields=fields)


def _versions(c: _Context, rows: Sequence[tuple[str, int, str | None, bytes]], *, deleted: bool = False,
              hashes: Sequence[str] | None = None) -> dict[str, Any] | None:
    """For an integrity-2 file, the hashes of the stored versions a write leaves (or, ``deleted``, removes),
    for its log entry: the signed log then vouches for each record version (SEC-133(2), services/integrity.py)."""
    if not integrity.applies(c.row.integrity):
        return None
    return integrity.version_details(c.row.code, rows, deleted=deleted, hashes=hashes)


def _record_access(db: Session, hogo: Hogo, c: _Context, event: Event, outcome: Outcome, *,
                   records: Sequence[str], fields: Iterable[str], decision: Decision | None,
                   reason: str | None = None, extra: Mapping[str, Any] | None = None) -> None:
    audit.add(db, [_access_entry(hogo, c, event, outcome, records=records, fields=fields, decision=decision,
                                 reason=reason, extra=extra)])


class _Denied(Exception):
    """Raised inside a guarded call; ``guarded`` records it once the call's transaction is gone."""

    def __init__(self, c: _Context, event: Event, decision: Decision, records: Sequence[str],
                 fields: Iterable[str]) -> None:
        super().__init__(decision.code)
        self.c, self.event, self.decision = c, event, decision
        self.records, self.fields = list(records), sorted(fields)


def _deny(hogo: Hogo, c: _Context, event: Event, decision: Decision, *, records: Sequence[str],
          fields: Iterable[str]) -> _Denied:
    return _Denied(c, event, decision, records, fields)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Every refusal is recorded (in its own transaction, after the call's has rolled back), then
    reported as Forbidden with the reason and the requirement it enforces."""

    @functools.wraps(fn)
    def wrapper(hogo: Hogo, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(hogo, *args, **kwargs)
        except _Denied as denied:
            raise _refusal(hogo, denied) from None

    return wrapper  # type: ignore[return-value]


def _refusal(hogo: Hogo, denied: _Denied) -> Forbidden:
    """Record a refusal (its own transaction: fail closed, an unrecorded refusal raises the log's
    error instead) and say it."""
    c, d = denied.c, denied.decision
    with hogo.unit_of_work() as db:
        _record_access(db, hogo, c, denied.event, Outcome.DENIED, records=denied.records,
                       fields=denied.fields, decision=d)
    return Forbidden(f"access denied: {d.reason}", code=f"denied_{d.code}", requirement=d.requirement,
                     details={"file": c.row.code})


def _grants_to_touch(hogo: Hogo, decision: Decision) -> list[str]:
    """Grants whose use this process has not noted in the last hour (the access review needs when
    each grant was last used; the database is written at most hourly per grant, not on every read)."""
    now = hogo.clock.now()
    touched = hogo.grant_touches
    return [g for g in decision.grant_ids if (t := touched.get(g)) is None or now - t >= GRANT_TOUCH_INTERVAL]


def _touch_grants(db: Session, hogo: Hogo, due: Sequence[str]) -> None:
    if not due:
        return
    now = hogo.clock.now()
    db.execute(
        update(FileGrant)
        .where(FileGrant.id.in_(due),
               (FileGrant.last_used_at.is_(None)) | (FileGrant.last_used_at < now - GRANT_TOUCH_INTERVAL))
        .values(last_used_at=now)
    )
    for g in due:
        hogo.grant_touches[g] = now


def _decrypt(keys: FileKeys, record_id: str, blob: bytes, fields: Iterable[str] | None = None) -> dict[str, str]:
    """Every decryption in the guard: a value that cannot be opened (its key destroyed, its ciphertext
    tampered with or moved) is said plainly, with the record and the reason, never a value."""
    try:
        return keys.open_record(record_id, blob, fields=fields)
    except SealError as exc:
        raise Unreadable(f"record {record_id!r} cannot be decrypted: {exc}", requirement="SEC-133",
                         details={"record": record_id}) from None


def _present(c: _Context, keys: FileKeys, rec: Any, fields: Sequence[str], reveal: frozenset[str]) -> RecordView:
    values = _decrypt(keys, rec.record_id, rec.blob, fields)
    masked = []
    for name in list(values):
        f = c.spec.field(name)
        if f.is_identification_code and name not in reveal:
            values[name] = mask(values[name])
            masked.append(name)
    ordered = {n: values[n] for n in c.spec.field_names if n in values}
    return RecordView(
        record_id=rec.record_id, file=c.row.code, segment=rec.segment, revision=rec.revision, values=ordered,
        masked=tuple(masked), revealed=tuple(sorted(reveal & set(values))), created_at=rec.created_at,
        updated_at=rec.updated_at, classification=f"C{c.row.confidentiality}-I{c.row.integrity}-A{c.row.availability}",
        restrictions=tuple(c.row.restrictions), marks=_marks(c.row),
    )


@functools.lru_cache(maxsize=256)
def _marks_of(conf: int, integ: int, avail: int, restrictions: tuple[str, ...]) -> dict[str, Any]:
    return marks_view(Marks(Classification(conf, integ, avail), frozenset(Restriction(r) for r in restrictions)))


def _marks(row: _FileRef) -> dict[str, Any]:
    """The file's marks for a record's output (SEC-46: every record shows them), built once per distinct marks."""
    return _marks_of(row.confidentiality, row.integrity, row.availability, tuple(row.restrictions))


_RECORD_FOR_READ = (
    select(Record.record_id, Record.segment, Record.blob, Record.revision, Record.created_at, Record.updated_at)
    .where(Record.file_id == bindparam("file_id"), Record.record_id == bindparam("record_id"))
)


_FAST_RECORD_FOR_READ = FastSelect(_RECORD_FOR_READ)


def _record_for_read(db: Session | Connection, file_id: int, record_id: str) -> Any:
    """The stored record as a row (a prebuilt Core statement: reads need no change tracking)."""
    return _FAST_RECORD_FOR_READ.one_or_none(_conn(db), {"file_id": file_id, "record_id": record_id})


def _record(db: Session, file_id: int, record_id: str) -> Record | None:
    return db.scalar(select(Record).where(Record.file_id == file_id, Record.record_id == record_id))


# ------------------------------------------------------------------------------------ read


_READ_ONCE = Decision(False, "the file is marked destroy-after-reading (読後廃棄): you have revealed this record "
                      "once already", "read_once", requirement="SEC-5")
_REVEALED_BEFORE = text(
    "SELECT 1 FROM audit_record_refs r JOIN audit_events e ON e.seq = r.seq WHERE r.file_code = :file "
    "AND r.record_id = :record AND e.event = :event AND e.outcome = 'success' AND e.actor_id = :actor LIMIT 1")


def _revealed_once_already(db: Session | Connection, c: _Context, principal: Principal, record_id: str) -> bool:
    """Destroy after reading (読後廃棄, SEC-5 table 1): a file so marked lets each person reveal a record's
    identification codes once; the log, which records every reveal, says whether they have."""
    if Restriction.DESTROY_AFTER_READING.value not in c.row.restrictions:
        return False
    return _conn(db).execute(_REVEALED_BEFORE, {
        "file": c.row.code, "record": record_id, "event": Event.RECORD_REVEALED.value,
        "actor": principal.user_id}).first() is not None


@dataclasses.dataclass(frozen=True)
class _PreparedRead:
    """A decided read whose log entry is still to commit: ``finish`` decrypts, and is called only
    once the entry (and ``work``) have committed."""

    work: Callable[[Session], None] | None
    entry: LogEntry
    finish: Callable[[], RecordView]


# The request's authentication, given the read transaction and the authorization cache as of it, if
# it is to be used (auth.authenticate).
Authenticate = Callable[[Connection, Snapshot | None], Principal]


@guarded
def _prepare_read(hogo: Hogo, principal: Principal | Authenticate, file_code: str, record_id: str, *,
                  purpose: str | None, reveal: Iterable[str] = (), ctx: RequestContext,
                  cached: bool = False) -> _PreparedRead:
    """Decide a read and make its log entry. ``cached``: the authentication and the file and grant
    lookups come from the authorization cache as of this transaction, and nothing is written here
    (auth.WriteNeeded is raised where the uncached read would write)."""
    reveal_set = frozenset(reveal)
    # Decide on a snapshot, without the write lock (SQLite has one writer: holding it for the
    # lookups would serialise every read); on a bare connection (no ORM session: nothing here
    # changes) …
    with hogo.reading(kept=cached) as db:  # cached: only in the guard's reader threads
        snap = hogo.authz_cache.snapshot(db) if cached else None  # the epoch first: see authz_cache
        if not isinstance(principal, Principal):
            principal = principal(db, snap)  # the request's authentication, in the same snapshot
        c = _open(hogo, db, principal, file_code, purpose, Action.REVEAL if reveal_set else Action.READ, ctx,
                  cached=snap)
        for name in reveal_set:
            if name not in c.spec.field_names:
                raise ValidationFailed(f"no field {name!r} in this file", field="reveal")
            if not c.spec.field(name).is_identification_code:
                raise ValidationFailed(f"field {name!r} is not masked; there is nothing to reveal", field="reveal")
        rec = _record_for_read(db, c.row.id, record_id)
        event = Event.RECORD_REVEALED if reveal_set else Event.RECORD_READ
        segment = rec.segment if rec else None
        d = _decide(hogo, c, Action.READ, fields=None, segment=segment, segment_applies=True)
        if not d.allowed:
            raise _deny(hogo, c, event, d, records=[record_id], fields=reveal_set)
        if reveal_set:
            d2 = _decide(hogo, c, Action.REVEAL, fields=reveal_set, segment=segment, segment_applies=True)
            if not d2.allowed:
                raise _deny(hogo, c, event, d2, records=[record_id], fields=reveal_set)
            if rec is not None and _revealed_once_already(db, c, principal, record_id):
                raise _deny(hogo, c, event, _READ_ONCE, records=[record_id], fields=reveal_set)
        fields: tuple[str, ...] = ()
        if rec is not None:
            fields = readable_fields(d, c.spec.field_names)
            if reveal_set - set(fields):
                missing = sorted(reveal_set - set(fields))
                raise ValidationFailed(f"you cannot read field(s) {', '.join(missing)}", field="reveal")
            keys = file_keys(hogo, db, c.row.id, c.row.data_key_version)
    # … then the access to record: committed with other requests' records (one commit for all)
    # before ``finish`` may run.
    if rec is None:
        entry = _access_entry(hogo, c, event, Outcome.FAILURE, records=[record_id], fields=(), decision=None,
                              reason="not_found")

        def not_found() -> RecordView:
            raise NotFound(f"no record {record_id!r} in {c.row.code}", code="record_not_found")

        return _PreparedRead(None, entry, not_found)
    entry = _access_entry(hogo, c, event, Outcome.SUCCESS, records=[record_id], fields=fields, decision=d,
                          extra={"revealed": sorted(reveal_set)} if reveal_set else None)
    due = _grants_to_touch(hogo, d)
    # Committed: the access is on record. Only now is anything decrypted.
    return _PreparedRead((lambda db: _touch_grants(db, hogo, due)) if due else None, entry,
                         lambda: _present(c, keys, rec, fields, reveal_set))


def read_record(hogo: Hogo, principal: Principal, file_code: str, record_id: str, *, purpose: str | None,
                reveal: Iterable[str] = (), ctx: RequestContext) -> RecordView:
    """One record, decided, recorded (durably, before anything is decrypted), then decrypted."""
    p = _prepare_read(hogo, principal, file_code, record_id, purpose=purpose, reveal=reveal, ctx=ctx)
    hogo.write_together(p.work, entries=[p.entry])
    return p.finish()


READ_THREADS = 16  # on SQLite each keeps a read connection (Hogo.reading(kept=True))
_readers: ThreadPoolExecutor | None = None
_readers_lock = threading.Lock()


def _read_threads() -> ThreadPoolExecutor:
    """The threads that decide reads for the event loop. A plain executor: anyio's ``to_thread`` costs
    the loop a capacity-limiter checkpoint (an extra turn of the loop) and a cancel scope per call,
    more than the rest of the trip. A request cancelled meanwhile leaves its decision to finish in
    the thread (a refusal is still recorded); nothing is decrypted for it."""
    global _readers
    if _readers is None:
        with _readers_lock:
            if _readers is None:
                _readers = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="hogo-read")
    return _readers


async def read_record_async(hogo: Hogo, principal: Principal | Authenticate, file_code: str,
                            record_id: str, *, purpose: str | None, reveal: Iterable[str] = (),
                            ctx: RequestContext) -> RecordView:
    """``read_record`` for an event loop: decided, the access record awaited (``Hogo.write_together_async``:
    no thread waits for the commit), then the values decrypted — the same steps in the same order,
    so the same guarantees.

    The decision runs in a worker thread, first with the authorization cache (store/authz_cache.py: the
    lookups as of this transaction's epoch; nothing written). A request that would have to write (a
    session to end, activity to note) is decided again, uncached, in a second trip; a refusal is
    recorded in a worker thread too. (Deciding on the event loop itself was tried: on one core it
    cost more, the loop's turns grew and the log writer's groups shrank to a third.)

    ``principal`` may be the function that authenticates the request (``auth.authenticate`` bound to
    its token): it then runs first, in the same transaction. Nothing about the file is looked up for
    a request it refuses."""
    reveal = tuple(reveal)
    loop = asyncio.get_running_loop()
    try:
        p = await loop.run_in_executor(_read_threads(), functools.partial(
            contextvars.copy_context().run, _prepare_cached, hogo, principal, file_code, record_id, purpose=purpose,
            reveal=reveal, ctx=ctx))
    except _Denied as denied:
        raise await loop.run_in_executor(_read_threads(), contextvars.copy_context().run, _refusal, hogo,
                                          denied) from None
    if p is None:
        p = await loop.run_in_executor(_read_threads(), functools.partial(
            contextvars.copy_context().run, _prepare_read, hogo, principal, file_code, record_id, purpose=purpose,
            reveal=reveal, ctx=ctx))
    await hogo.write_together_async(p.work, entries=[p.entry])
    return p.finish()


def _prepare_cached(hogo: Hogo, principal: Principal | Authenticate, file_code: str, record_id: str, *,
                    purpose: str | None, reveal: tuple[str, ...], ctx: RequestContext) -> _PreparedRead | None:
    """``_prepare_read`` from the authorization cache, writing nothing: a refusal is raised unrecorded
    (``_Denied``), and None says the read must be decided again where it may write."""
    try:
        return _prepare_read.__wrapped__(hogo, principal, file_code, record_id,  # type: ignore[attr-defined,no-any-return]
                                         purpose=purpose, reveal=reveal, ctx=ctx, cached=True)
    except auth.WriteNeeded:
        return None


def _matching(c: _Context, keys: FileKeys, where: Mapping[str, str], *, what: str) -> list[Any]:
    """Conditions selecting the records whose indexed fields equal ``where``: exact match through the
    blind index (one digest per key bucket: each bucket has its own index key), never by decrypting. An
    unknown, unindexed or invalid field is refused with its name."""
    conditions = []
    for name, raw in where.items():
        if name not in c.spec.field_names:
            raise ValidationFailed(f"no field {name!r} in this file", field="where")
        f = c.spec.field(name)
        if not f.indexed:
            raise ValidationFailed(f"field {name!r} is not indexed (exact-match {what} needs indexed: true)",
                                   field="where")
        try:
            value = normalise_value(f, raw)
        except ValueError as exc:
            raise ValidationFailed(f"{name}: {exc}", field="where") from None
        conditions.append(Record.id.in_(select(RecordIndex.record_pk).where(
            RecordIndex.file_id == c.row.id, RecordIndex.field == name,
            RecordIndex.digest.in_(keys.blind_indexes(name, value)))))
    return conditions


@guarded
def find_records(hogo: Hogo, principal: Principal, file_code: str, where: Mapping[str, str], *,
                 purpose: str | None, ctx: RequestContext, limit: int = 100) -> list[RecordView]:
    """Exact match on indexed fields through the blind index (never by decrypting everything)."""
    if not where:
        raise ValidationFailed("give at least one FIELD=VALUE condition", field="where")
    limit = max(1, min(limit, MAX_FIND_RESULTS))
    with hogo.unit_of_work() as db:
        c = _open(hogo, db, principal, file_code, purpose, Action.READ, ctx)
        keys = file_keys(hogo, db, c.row.id, c.row.data_key_version)
        conditions = _matching(c, keys, where, what="search")
        # To search by a field you must be able to read it (else the search itself would disclose it).
        d = _decide(hogo, c, Action.READ, fields=list(where), segment=None, segment_applies=False)
        if not d.allowed:
            raise _deny(hogo, c, Event.RECORD_SEARCHED, d, records=[], fields=list(where))
        q = select(Record).where(Record.file_id == c.row.id, *conditions)
        matches = db.scalars(q.order_by(Record.id).limit(limit)).all()
        allowed: list[tuple[Record, tuple[str, ...]]] = []
        for rec in matches:
            rd = _decide(hogo, c, Action.READ, fields=None, segment=rec.segment)
            if rd.allowed:  # records outside the requester's scope are not returned
                allowed.append((rec, readable_fields(rd, c.spec.field_names)))
        fields_read = sorted({f for _, fs in allowed for f in fs})
        _record_access(db, hogo, c, Event.RECORD_SEARCHED, Outcome.SUCCESS, records=[r.record_id for r, _ in allowed],
                       fields=fields_read, decision=d, extra={"where_fields": sorted(where)})
        _touch_grants(db, hogo, _grants_to_touch(hogo, d))
    return [_present(c, keys, rec, fs, frozenset()) for rec, fs in allowed]


@guarded
def copy_records(hogo: Hogo, principal: Principal, file_code: str, fields: Sequence[str], where: Mapping[str, str],
                 *, purpose: str | None, ctx: RequestContext, limit: int, details: Mapping[str, Any]
                 ) -> list[RecordView]:
    """The source records of a working copy (ANON-17): only ``fields``, only records the requester's grants
    cover for ``purpose`` (a ``read`` of those fields: the copy stays inside hogo), optionally only those
    whose indexed fields equal ``where``; one logged access (``data:record:copy``) before any decryption.
    Identification codes stay masked. More than ``limit`` matches is refused (narrow the selection)."""
    with hogo.unit_of_work() as db:
        c = _open(hogo, db, principal, file_code, purpose, Action.READ, ctx)
        unknown = [f for f in [*fields, *where] if f not in c.spec.field_names]
        if unknown:
            raise ValidationFailed(f"no field(s) {', '.join(sorted(set(unknown)))} in this file", field="fields")
        keys = file_keys(hogo, db, c.row.id, c.row.data_key_version)
        q = select(Record).where(Record.file_id == c.row.id, *_matching(c, keys, where, what="selection"))
        named = sorted({*fields, *where})
        d = _decide(hogo, c, Action.READ, fields=named, segment=None, segment_applies=False)
        if not d.allowed:
            raise _deny(hogo, c, Event.RECORDS_COPIED, d, records=[], fields=named)
        matches = db.scalars(q.order_by(Record.id).limit(limit + 1)).all()
        if len(matches) > limit:
            raise ValidationFailed(f"more than {limit} records match: narrow the selection (--where)", field="where")
        allowed = [rec for rec in matches if _decide(hogo, c, Action.READ, fields=fields, segment=rec.segment).allowed]
        _record_access(db, hogo, c, Event.RECORDS_COPIED, Outcome.SUCCESS, records=[r.record_id for r in allowed],
                       fields=fields, decision=d, extra={"where_fields": sorted(where), **details})
        _touch_grants(db, hogo, _grants_to_touch(hogo, d))
    return [_present(c, keys, rec, fields, frozenset()) for rec in allowed]


# ----------------------------------------------------------------------------------- write


def new_record_id() -> str:
    """Time-ordered (microseconds, then 32 random bits): new records go to the right edge of the
    unique index instead of random pages all over it, so a batch dirties a few pages, not thousands."""
    return f"r{time.time_ns() // 1000:014x}{secrets.token_hex(4)}"


def _check_record_id(record_id: str) -> str:
    if not RECORD_ID_RE.fullmatch(record_id):
        raise ValidationFailed("a record ID is 1–64 characters: letters, digits, '.', '_' or '-'", field="record_id")
    return record_id


def _validation_error(problems: list[tuple[str, str]]) -> ValidationFailed:
    return ValidationFailed(
        "invalid record: " + "; ".join(f"{f}: {r}" for f, r in problems), field=problems[0][0],
        details={"problems": [{"field": f, "reason": r} for f, r in problems]},
    )


def _index_rows(keys: FileKeys, spec: FileSpec, file_id: int, record_pk: int, values: Mapping[str, str]
                ) -> list[dict[str, Any]]:
    return [
        {"file_id": file_id, "field": f.name, "digest": keys.blind_index(f.name, values[f.name]),
         "record_pk": record_pk}
        for f in spec.fields if f.indexed and f.name in values
    ]


@guarded
def create_record(hogo: Hogo, principal: Principal, file_code: str, values: Mapping[str, Any], *,
                  purpose: str | None, ctx: RequestContext, record_id: str | None = None) -> RecordView:
    with hogo.unit_of_work() as db:
        c = _open(hogo, db, principal, file_code, purpose, Action.CREATE, ctx)
        clean, problems = normalise_record(c.spec, {k: (None if v is None else str(v)) for k, v in values.items()})
        if problems:
            raise _validation_error(problems)
        rid = _check_record_id(record_id) if record_id else new_record_id()
        segment = clean.get(c.spec.segment_field) if c.spec.segment_field else None
        d = _decide(hogo, c, Action.CREATE, fields=clean.keys(), segment=segment)
        if not d.allowed:
            raise _deny(hogo, c, Event.RECORD_CREATED, d, records=[rid], fields=clean.keys())
        if _record(db, c.row.id, rid) is not None:
            raise Conflict(f"record {rid!r} already exists in {c.row.code}", code="record_exists")
        keys = writable_keys(hogo, db, c.row.id, c.row.data_key_version)
        now = hogo.clock.now()
        version, blob = keys.seal_record(rid, clean)
        rec = Record(file_id=c.row.id, record_id=rid, segment=segment, key_version=version, blob=blob, revision=1,
                     created_at=now, created_by_id=principal.user_id, updated_at=now, updated_by_id=principal.user_id,
                     dispose_after=dispose_after(c.spec, clean, now))
        db.add(rec)
        db.flush()
        rows = _index_rows(keys, c.spec, c.row.id, rec.id, clean)
        if rows:
            db.execute(insert(RecordIndex), rows)
        _record_access(db, hogo, c, Event.RECORD_CREATED, Outcome.SUCCESS, records=[rid], fields=clean.keys(),
                       decision=d, extra=_versions(c, [(rid, 1, segment, blob)]))
        _touch_grants(db, hogo, _grants_to_touch(hogo, d))
        readable = readable_fields(_decide(hogo, c, Action.READ, fields=None, segment=segment), c.spec.field_names)
    return _present(c, keys, rec, readable, frozenset())


def _changes(spec: FileSpec, values: Mapping[str, Any], *, nothing: str
             ) -> tuple[dict[str, str], list[str], list[str]]:
    """A partial change of a record, validated: the new values (normalised), the fields cleared (an
    empty value), and every field named, sorted. Bad values raise with every problem named."""
    clean, problems = normalise_record(spec, {k: (None if v is None else str(v)) for k, v in values.items()},
                                       partial=True)
    if problems:
        raise _validation_error(problems)
    cleared = [k for k, v in values.items() if v is None or str(v).strip() == ""]
    changed = sorted(set(clean) | set(cleared))
    if not changed:
        raise ValidationFailed(nothing, field="values")
    return clean, cleared, changed


@guarded
def update_record(hogo: Hogo, principal: Principal, file_code: str, record_id: str, values: Mapping[str, Any], *,
                  purpose: str | None, ctx: RequestContext, expected_revision: int | None = None) -> RecordView:
    """Change some fields (an empty string clears one). The segment may change only within scope."""
    with hogo.unit_of_work() as db:
        c = _open(hogo, db, principal, file_code, purpose, Action.UPDATE, ctx)
        clean, cleared, changed = _changes(c.spec, values, nothing="nothing to change")
        rec = _record(db, c.row.id, record_id)
        d = _decide(hogo, c, Action.UPDATE, fields=changed, segment=rec.segment if rec else None,
                    segment_applies=True)
        if not d.allowed:
            raise _deny(hogo, c, Event.RECORD_UPDATED, d, records=[record_id], fields=changed)
        if rec is None:
            raise NotFound(f"no record {record_id!r} in {c.row.code}", code="record_not_found")
        if expected_revision is not None and rec.revision != expected_revision:
            raise Conflict(f"the record changed meanwhile (revision {rec.revision})", code="revision_conflict")
        new_segment = rec.segment
        if c.spec.segment_field and c.spec.segment_field in changed:
            new_segment = clean.get(c.spec.segment_field)
            d2 = _decide(hogo, c, Action.UPDATE, fields=changed, segment=new_segment)
            if not d2.allowed:
                raise _deny(hogo, c, Event.RECORD_UPDATED, d2, records=[record_id], fields=changed)
        for f in c.spec.fields:
            if f.required and f.name in cleared:
                raise _validation_error([(f.name, "is required")])
        keys = writable_keys(hogo, db, c.row.id, c.row.data_key_version)
        current = _decrypt(keys, rec.record_id, rec.blob)  # in memory only, to re-seal the whole record
        merged = {k: v for k, v in current.items() if k not in cleared}
        merged.update(clean)
        now = hogo.clock.now()
        rec.key_version, rec.blob = keys.seal_record(rec.record_id, merged)
        rec.dispose_after = dispose_after(c.spec, merged, rec.created_at)
        rec.segment = new_segment
        rec.revision += 1
        rec.updated_at = now
        rec.updated_by_id = principal.user_id
        db.execute(delete(RecordIndex).where(RecordIndex.record_pk == rec.id))
        rows = _index_rows(keys, c.spec, c.row.id, rec.id, merged)
        if rows:
            db.execute(insert(RecordIndex), rows)
        _record_access(db, hogo, c, Event.RECORD_UPDATED, Outcome.SUCCESS, records=[record_id], fields=changed,
                       decision=d, extra={"revision": rec.revision, **(_versions(c, [
                           (record_id, rec.revision, rec.segment, rec.blob)]) or {})})
        _touch_grants(db, hogo, _grants_to_touch(hogo, d))
        readable = readable_fields(_decide(hogo, c, Action.READ, fields=None, segment=new_segment),
                                   c.spec.field_names)
    return _present(c, keys, rec, readable, frozenset())


def delete_record(hogo: Hogo, principal: Principal, file_code: str, record_id: str, *, purpose: str | None,
                  ctx: RequestContext, reason: str | None = None) -> None:
    """Deleting a record is erasing it irrecoverably (issue 5: crypto-shredding, services/erasure.py),
    with its deletion certificate; the log names it a delete. Needs a 'delete' grant for the purpose."""
    from hogo.services import erasure

    erasure.erase_records(hogo, principal, file_code, [record_id], reason=reason or "記録の削除 (record deleted)",
                          purpose=purpose, ctx=ctx, event=Event.RECORD_DELETED)


# ---------------------------------------------------------------------------------- import


@dataclasses.dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based data row number (the header is row 0)
    field: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ImportReport:
    file: str
    total: int
    imported: int
    rejected: tuple[RowProblem, ...]
    atomic: bool
    committed: bool
    record_ids_sample: tuple[str, ...]


ENCODINGS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "shift_jis": "cp932", "sjis": "cp932", "cp932": "cp932",
             "shift-jis": "cp932", "windows-31j": "cp932"}


def csv_rows(stream: BinaryIO, *, encoding: str = "utf-8", mapping: Mapping[str, str] | None = None
             ) -> tuple[list[str], Iterator[tuple[int, dict[str, str] | None, str | None]]]:
    """Decode a CSV (UTF-8 with or without BOM, or Shift_JIS/CP932) row by row.

    Returns the (mapped) header and an iterator of ``(row number, values or None, problem)``. A row
    that is not valid text in the encoding, or has the wrong number of columns, yields a problem
    naming the row, rather than stopping the import.
    """
    header, rows = _csv_cells(stream, encoding=encoding, mapping=mapping)
    return header, ((n, None if cells is None else dict(zip(header, cells, strict=True)), problem)
                    for n, cells, problem in rows)


def _csv_cells(stream: BinaryIO, *, encoding: str, mapping: Mapping[str, str] | None
               ) -> tuple[list[str], Iterator[tuple[int, list[str] | None, str | None]]]:
    """``csv_rows`` with each row as its list of cells (as many as the header has), not a dict."""
    codec = ENCODINGS.get(encoding.strip().lower())
    if codec is None:
        raise ValidationFailed(f"unknown encoding {encoding!r} (use utf-8 or shift_jis)", field="encoding")
    text = io.TextIOWrapper(stream, encoding=codec, errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header_raw = next(reader)
    except StopIteration:
        raise ValidationFailed("the CSV is empty (no header row)", field="csv") from None
    except csv.Error as exc:
        raise ValidationFailed(f"the CSV header cannot be read: {exc}", field="csv") from None
    if any(_bad_text(h) for h in header_raw):
        raise ValidationFailed(f"the header is not valid {encoding} text", field="encoding")
    mapping = dict(mapping or {})
    header = [mapping.get(h.strip(), h.strip()) for h in header_raw]
    width = len(header)
    undecodable = _UNDECODABLE.search

    def rows() -> Iterator[tuple[int, list[str] | None, str | None]]:
        n = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                n += 1
                yield n, None, f"cannot be parsed as CSV ({exc})"
                continue
            n += 1
            joined = "".join(cells)
            if not joined or joined.isspace():  # a blank row (or one of empty cells) is skipped
                continue
            if undecodable(joined):
                yield n, None, f"is not valid {encoding} text"
                continue
            if len(cells) != width:
                yield n, None, f"has {len(cells)} columns, the header has {width}"
                continue
            yield n, cells, None

    return header, rows()


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes surrogateescape could not decode


def _bad_text(value: str) -> bool:
    return _UNDECODABLE.search(value) is not None


class _RecordIds:
    """New record IDs for an import, as ``new_record_id`` makes them (time-ordered, then 32 random
    bits), made a block at a time: one clock reading and one read of the OS random source per block.
    Within a block the time part counts up by one microsecond per ID, so no two are the same."""

    BLOCK = 1024

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._last = 0

    def __call__(self) -> str:
        if not self._ids:
            start = max(time.time_ns() // 1000, self._last + 1)
            self._last = start + self.BLOCK - 1
            rand = secrets.token_hex(4 * self.BLOCK)
            self._ids = [f"r{start + i:014x}{rand[8 * i:8 * i + 8]}" for i in range(self.BLOCK - 1, -1, -1)]
        return self._ids.pop()


_Batch = list[tuple[int, str, dict[str, str], str | None]]  # (row number, record ID, values, segment)


@guarded
def import_records(
    hogo: Hogo,
    principal: Principal,
    file_code: str,
    stream: BinaryIO,
    *,
    purpose: str | None,
    ctx: RequestContext,
    encoding: str = "utf-8",
    atomic: bool = False,
    mapping: Mapping[str, str] | None = None,
    id_column: str = "record_id",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Bulk import. Every bad row is reported with its row number, field and reason.

    Default: good rows are committed batch by batch, each batch with its access record, so a killed
    import leaves only whole good rows. ``atomic``: all rows or none (one transaction, committed only
    when no row is bad).
    """
    size = stream_size(stream)
    header, rows = _csv_cells(stream, encoding=encoding, mapping=mapping)
    batch_size = hogo.settings.import_batch_rows
    with hogo.unit_of_work(readonly=True) as db:
        c = _open(hogo, db, principal, file_code, purpose, Action.CREATE, ctx)
        keys = file_keys(hogo, db, c.row.id, c.row.data_key_version)
    # The reason column the CLI adds to a rejects file is ignored, so a corrected rejects file imports as is.
    data_columns = [h for h in header if h not in (id_column, REJECT_REASON_COLUMN)]
    unknown = [h for h in data_columns if h not in c.spec.field_names]
    if unknown:
        raise ValidationFailed(f"unknown column(s): {', '.join(unknown)} (map them with --map CSV=FIELD)",
                               field="csv", details={"unknown": unknown})
    # File-level decision first: may this requester create records with these fields at all?
    d = _decide(hogo, c, Action.CREATE, fields=data_columns, segment=None, segment_applies=False)
    if not d.allowed:
        raise _deny(hogo, c, Event.RECORDS_IMPORTED, d, records=[], fields=data_columns)

    rejected: list[RowProblem] = []
    imported = 0
    total = 0
    sample: list[str] = []
    seen_ids: set[str] = set()
    seg_field = c.spec.segment_field
    segment_ok: dict[str | None, bool] = {}  # the decision per segment value, made once
    # A column named twice counts once, its last occurrence (as a row read into a dict).
    last = {name: i for i, name in enumerate(header)}
    id_index = last.get(id_column)
    columns = [h if last[h] == i and h in data_columns else None for i, h in enumerate(header)]
    normalise_row = cells_normaliser(c.spec, columns)
    # A large CSV: rows are validated and sealed by a worker process (a second CPU) while this one writes.
    parallel = (hogo.settings.import_workers > 0 and size is not None
                and size >= hogo.settings.import_parallel_min_bytes)
    next_id = _RecordIds()

    def record_id_of(n: int, cells: list[str] | None, problem: str | None) -> tuple[str, bool, list[str]] | None:
        """A row's record ID, whether the CSV gave it (else a new one) and its cells; None: refused (recorded)."""
        if cells is None:
            rejected.append(RowProblem(n, "*", problem or "unreadable"))
            return None
        rid = cells[id_index].strip() if id_index is not None else ""
        if not rid:
            return next_id(), False, cells
        if not RECORD_ID_RE.fullmatch(rid):
            rejected.append(RowProblem(n, id_column, "not a valid record ID"))
            return None
        return rid, True, cells

    def identified() -> Iterator[tuple[int, str, bool, list[str]]]:
        """The CSV's rows, counted, with their record IDs (``record_id_of``; refused rows recorded, not yielded)."""
        nonlocal total
        for n, cells, problem in rows:
            total += 1
            taken = record_id_of(n, cells, problem)
            if taken is not None:
                yield (n, *taken)

    def segment_allowed(segment: str | None) -> bool:
        """May the requester create records in this segment? Decided once per value."""
        ok = segment_ok.get(segment)
        if ok is None:
            ok = segment_ok[segment] = _decide(hogo, c, Action.CREATE, fields=data_columns, segment=segment).allowed
        return ok

    outside = "this record is outside the records your grants cover"

    def admitted(n: int, rid: str, problems: Sequence[tuple[str, str]], segment: str | None) -> bool:
        """Whether a validated row is taken: not if its record ID came before in the CSV, its values are
        invalid (``problems``) or its segment is outside the requester's grants — each refusal recorded,
        the first that applies. A row taken claims its record ID."""
        if rid in seen_ids:
            rejected.append(RowProblem(n, id_column, f"record ID {rid!r} appears twice in this CSV"))
            return False
        if problems:
            rejected.extend(RowProblem(n, f, r) for f, r in problems)
            return False
        if seg_field and not segment_allowed(segment):
            rejected.append(RowProblem(n, seg_field, outside))
            return False
        seen_ids.add(rid)
        return True
    # All or nothing: one transaction for the whole import (holding this process's SQLite write lock).
    atomic_lock = hogo.sqlite_write_lock if (atomic and hogo.settings.is_sqlite) else None
    if atomic_lock is not None:
        atomic_lock.acquire()
    session = hogo.sessionmaker() if atomic else None
    txn = session.begin() if session is not None else None

    # Batches are sealed here and written by one writer thread: while it inserts and commits batch k
    # (SQLite and the driver release the GIL for much of that, and the commit waits on the disk),
    # batch k+1 is parsed, validated and encrypted. At most one batch is in flight, so memory stays
    # bounded, and batches are written in order, each with its access record.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hogo-import-writer")
    in_flight: Future[tuple[list[str], list[RowProblem]]] | None = None
    given: list[int] = []  # positions in the batch of rows whose record ID the CSV gave
    filled: tuple[int, int] | None = None  # the key version the last batch ended in, and its records

    def write(sealed: _Sealed) -> tuple[list[str], list[RowProblem]]:
        if session is not None:
            return _write_batch(session, hogo, c, d, sealed)
        with hogo.unit_of_work() as db:
            return _write_batch(db, hogo, c, d, sealed)

    def settle() -> None:
        nonlocal imported, in_flight
        if in_flight is None:
            return
        done, in_flight = in_flight, None
        written, refused = done.result()
        rejected.extend(refused)
        imported += len(written)
        sample.extend(written[: max(0, 10 - len(sample))])

    def flush(batch: _Batch) -> None:
        nonlocal in_flight, keys
        if not batch:
            return
        nonlocal filled
        plan = None
        if session is None:  # new key versions as buckets fill (erasure, services/erasure.py)
            with hogo.unit_of_work(readonly=True) as db:  # never waits for the batch being written
                keys, plan, filled = import_plan(hogo, db, c.row.id, len(batch), filled)
        sealed = _seal_batch(keys, c.spec, batch, given, hogo.clock.now(), plan)
        given.clear()
        settle()
        in_flight = writer.submit(write, sealed)

    def parallel_import() -> None:
        """The loop below with worker processes validating and sealing (services/import_sealer.py): this
        thread parses, plans key versions, sends a chunk ahead per worker and writes the one before, in
        order; the workers' answers are taken row by row exactly as the loop below takes its own results."""
        hash_code = c.row.code if integrity.applies(c.row.integrity) else None
        sealers: list[Sealer] = []
        sent: collections.deque[tuple[list[tuple[int, str, bool]], Sealer]] = collections.deque()
        chunks_sent = 0

        def send(chunk: list[tuple[int, str, bool]], cells: list[tuple[str, list[str]]]) -> None:
            nonlocal keys, filled, chunks_sent
            plan = None
            if session is None:  # new key versions as buckets fill, planned for every row sent
                with hogo.unit_of_work(readonly=True) as db:
                    keys, plan, filled = import_plan(hogo, db, c.row.id, len(chunk), filled)
            # Chunks go to the workers in turn and their answers are taken in the same turn (in order).
            if len(sealers) < max(1, hogo.settings.import_workers):
                sealers.append(Sealer(c.spec, columns, keys, hash_code))
            sealer = sealers[chunks_sent % len(sealers)]
            chunks_sent += 1
            sealer.submit(cells, plan, hogo.clock.now(), keys)
            sent.append((chunk, sealer))
            if progress:
                progress(total)

        def sealed(taken: list[tuple[int, str, bool, Good]], index_entries: list[tuple[str, bytes, int]]) -> _Sealed:
            """The batch of the rows taken: row number, record ID, whether the CSV gave it, and the worker's
            sealed row (position, segment, blob, key version, fields, due date, version hash)."""
            rows: list[tuple[int, str, str | None, bytes]] = []
            versions: list[int] = []
            fields: list[tuple[str, ...]] = []
            dispose: list[dt.date | None] = []
            given: list[int] = []
            digests: list[str | None] = []
            rid_at: dict[int, str] = {}
            for i, (n, rid, id_given, (pos, segment, blob, version, names, due, digest)) in enumerate(taken):
                rid_at[pos] = rid
                rows.append((n, rid, segment, blob))
                versions.append(version)
                fields.append(names)
                dispose.append(due)
                digests.append(digest)
                if id_given:
                    given.append(i)
            index = [(name, digest, rid_at[pos]) for name, digest, pos in index_entries if pos in rid_at]
            return _Sealed(rows, versions, index, fields, given, dispose,
                           None if None in digests else digests)  # type: ignore[arg-type]

        def whole(chunk: list[tuple[int, str, bool]], good: list[Good]) -> list[tuple[int, str, bool, Good]] | None:
            """A chunk with every row good, in segments the requester may create records in, and no record
            ID seen before: taken whole (what the loop in ``receive`` would take row by row). None: use it."""
            rids = [rid for _, rid, _ in chunk]
            if (len(good) != len(chunk) or not seen_ids.isdisjoint(rids) or len(set(rids)) != len(rids)
                    or (seg_field and not all(segment_allowed(seg) for seg in {g[1] for g in good}))):
                return None
            seen_ids.update(rids)
            return [(n, rid, id_given, g) for (n, rid, id_given), g in zip(chunk, good, strict=True)]

        def store(batch: _Sealed) -> None:
            nonlocal imported
            written, refused = write(batch)
            rejected.extend(refused)
            imported += len(written)
            sample.extend(written[: max(0, 10 - len(sample))])

        def receive() -> None:
            chunk, sealer = sent.popleft()
            problems, good, index_entries = sealer.result()
            taken = None if problems else whole(chunk, good)
            if taken is None:
                bad = dict(problems)
                sealed_of = {g[0]: g for g in good}  # by position
                taken = []
                for pos, (n, rid, id_given) in enumerate(chunk):
                    g = sealed_of.get(pos)  # a row with problems was not sealed
                    if admitted(n, rid, bad.get(pos, ()), g[1] if g else None):  # g[1]: the row's segment
                        assert g is not None
                        taken.append((n, rid, id_given, g))
            if taken:
                store(sealed(taken, index_entries))

        try:
            chunk: list[tuple[int, str, bool]] = []
            cells_out: list[tuple[str, list[str]]] = []
            for n, rid, id_given, good_cells in identified():
                chunk.append((n, rid, id_given))
                cells_out.append((rid, good_cells))
                if len(chunk) >= batch_size:
                    send(chunk, cells_out)
                    chunk, cells_out = [], []
                    if len(sent) > len(sealers):  # a chunk ahead per worker: sealed while this one is written
                        receive()
            if chunk:
                send(chunk, cells_out)
            while sent:
                receive()
        finally:
            for sealer in sealers:
                sealer.close()

    try:
        if parallel:
            parallel_import()
            rows = iter(())
        batch: _Batch = []
        for n, rid, id_given, good_cells in identified():
            clean, problems = normalise_row(good_cells)
            segment = clean.get(seg_field) if seg_field else None
            if not admitted(n, rid, problems, segment):
                continue
            if id_given:
                given.append(len(batch))
            batch.append((n, rid, clean, segment))
            if len(batch) >= batch_size:
                flush(batch)
                batch = []
                if progress:
                    progress(total)
        flush(batch)
        settle()
        if progress:
            progress(total)
        rejected.sort(key=lambda r: r.row)  # a batch's refusals by the database come after the next batch's
        if session is not None and txn is not None:
            if rejected:
                txn.rollback()
                imported = 0
                sample.clear()
            else:
                txn.commit()
    except BaseException:
        if in_flight is not None:
            wait([in_flight])
        if txn is not None and txn.is_active:
            txn.rollback()
        raise
    finally:
        if in_flight is not None:  # an error here: let the batch being written finish before closing
            wait([in_flight])
        writer.shutdown(wait=True)
        if session is not None:
            session.close()
        if atomic_lock is not None:
            atomic_lock.release()
    committed = not atomic or not rejected
    if atomic and rejected:
        with hogo.unit_of_work() as db:
            _record_access(db, hogo, c, Event.RECORDS_IMPORTED, Outcome.FAILURE, records=[], fields=data_columns,
                           decision=d, reason="rejected_rows", extra={"rejected_rows": len({r.row for r in rejected})})
    return ImportReport(file=c.row.code, total=total, imported=imported, rejected=tuple(rejected), atomic=atomic,
                        committed=committed, record_ids_sample=tuple(sample))


@dataclasses.dataclass(frozen=True)
class _Sealed:
    """A batch ready to be written: per row its number, record ID, segment and blob, the key
    version, the blind-index entries (field, digest, record ID) and per row the fields it has values of."""

    rows: list[tuple[int, str, str | None, bytes]]
    versions: list[int]  # per row: the key version it is sealed under
    index: list[tuple[str, bytes, str]]
    fields: list[tuple[str, ...]]
    given: list[int]  # the rows whose record ID came from the CSV
    dispose: list[dt.date | None] = dataclasses.field(default_factory=list)  # per row (retention)
    hashes: list[str] | None = None  # per row, the stored version's hash (integrity 2), if made already


def _seal_batch(keys: FileKeys, spec: FileSpec, batch: _Batch, given: Sequence[int] = (),
                now: dt.datetime | None = None, plan: Sequence[tuple[int, int]] | None = None) -> _Sealed:
    """Encrypt a batch (each value on its own) and compute its blind-index digests, outside any transaction.
    ``plan``: which key version each run of rows goes under (``files.import_plan``; default: all current)."""
    blind = keys.blind_index
    indexed = [f.name for f in spec.fields if f.indexed]
    blobs: list[bytes] = []
    versions: list[int] = []
    index: list[tuple[str, bytes, str]] = []
    start = 0
    for version, count in plan or [(keys.current_version, len(batch))]:
        part = batch[start:start + count]
        start += count
        _, sealed = keys.seal_records([(rid, clean) for _, rid, clean, _ in part], version)
        blobs += sealed
        versions += [version] * len(part)
        index += [(name, blind(name, clean[name], version), rid)
                  for name in indexed for _, rid, clean, _ in part if name in clean]
    # In the order of the lookup index (field, digest): each insert lands next to the one before.
    index.sort()
    when = now or dt.datetime.now(dt.UTC)
    if spec.retention_from is None:  # one due date for the whole batch
        dispose = [dispose_after(spec, {}, when)] * len(batch)
    else:
        dispose = [dispose_after(spec, clean, when) for _, _, clean, _ in batch]
    return _Sealed([(n, rid, segment, blob) for (n, rid, _, segment), blob in zip(batch, blobs, strict=True)],
                   versions, index, [tuple(clean) for _, _, clean, _ in batch], list(given), dispose)


def _write_batch(db: Session, hogo: Hogo, c: _Context, d: Decision, sealed: _Sealed
                 ) -> tuple[list[str], list[RowProblem]]:
    """Insert one sealed batch and its access record, in the caller's transaction: the IDs of the
    records written, and the rows refused because their record ID exists already in the file."""
    ids = [rid for _, rid, _, _ in sealed.rows]
    # Only IDs the CSV gave can exist already: a new one (time-ordered, 32 random bits) cannot, short
    # of a collision the unique index would refuse (the batch fails; nothing is overwritten).
    given = [ids[i] for i in sealed.given]
    existing = set(db.scalars(select(Record.record_id).where(
        Record.file_id == c.row.id, Record.record_id.in_(given)))) if given else set()
    refused: list[RowProblem] = []
    dispose = sealed.dispose
    versions = sealed.versions
    rows = sealed.rows
    index = sealed.index
    row_fields = sealed.fields
    version_digests = sealed.hashes
    if existing:
        refused = [RowProblem(n, "record_id", f"record {rid!r} already exists in this file")
                   for n, rid, _, _ in rows if rid in existing]
        kept = [i for i, r in enumerate(rows) if r[1] not in existing]
        rows = [rows[i] for i in kept]
        dispose = [sealed.dispose[i] for i in kept]
        versions = [sealed.versions[i] for i in kept]
        row_fields = [row_fields[i] for i in kept]
        version_digests = None if version_digests is None else [version_digests[i] for i in kept]
        index = [i for i in index if i[2] not in existing]
        if not rows:
            return [], refused
        ids = [rid for _, rid, _, _ in rows]
    now = hogo.clock.now()
    uid = c.principal.user_id
    top = max(versions)
    if top > c.row.data_key_version:  # key versions the import started (files.import_plan) become the file's
        advance_key_version(db, c.row.id, top)
    constants = {"file_id": c.row.id, "revision": 1, "created_at": now, "created_by_id": uid, "updated_at": now,
                 "updated_by_id": uid}
    if hogo.settings.is_sqlite:
        # The records' keys given, as SQLite would choose them (the largest + 1; the transaction holds
        # the database's one write lock): the index rows need them, and no query has to look them up.
        first = (db.scalar(select(func.max(Record.id))) or 0) + 1
        insert_many(db, _RECORDS, ("id", "record_id", "segment", "key_version", "blob", "dispose_after"),
                    [(pk, rid, segment, version, blob, due) for pk, (_, rid, segment, blob), due, version
                     in zip(range(first, first + len(rows)), rows, dispose, versions, strict=True)],
                    constants=constants)
        pk_of = dict(zip(ids, range(first, first + len(ids)), strict=True))
    else:
        insert_many(db, _RECORDS, ("record_id", "segment", "key_version", "blob", "dispose_after"),
                    [(rid, segment, version, blob, due)
                     for (_, rid, segment, blob), due, version in zip(rows, dispose, versions, strict=True)],
                    constants=constants)
        pk_of = dict(db.execute(select(Record.record_id, Record.id).where(
            Record.file_id == c.row.id, Record.record_id.in_(ids))).all())
    insert_many(db, _RECORD_INDEX, ("field", "digest", "record_pk"),
                [(name, digest, pk_of[rid]) for name, digest, rid in index], constants={"file_id": c.row.id})
    _record_access(db, hogo, c, Event.RECORDS_IMPORTED, Outcome.SUCCESS, records=ids,
                   fields=sorted({f for names in row_fields for f in names}), decision=d,
                   extra=_versions(c, [(rid, 1, segment, blob) for _, rid, segment, blob in rows],
                                    hashes=version_digests))
    _touch_grants(db, hogo, _grants_to_touch(hogo, d))
    return ids, refused


__all__ = ["ENCODINGS", "ImportReport", "RecordView", "RowProblem", "create_record", "csv_rows", "delete_record",
           "find_records", "import_records", "read_record", "update_record"]


# ----------------------------------------------------------------------- corrections (ANON-8)
# A correction is requested by someone who may read the record (prepare_correction) and applied once
# the file's protection manager has approved it (apply_correction; services/corrections.py and
# services/approvals.py hold the workflow). The approval takes the place of an update grant.


@dataclasses.dataclass(frozen=True)
class PreparedCorrection:
    file_id: int
    file_code: str
    department: str
    record_id: str
    revision: int  # the record's revision the correction is based on
    fields: tuple[str, ...]  # the fields it sets or clears (names only)
    binding: str  # what the sealed values are bound to: a one-time ID that no record can have
    sealed: bytes  # the new values, encrypted under the file's data key


@guarded
def prepare_correction(hogo: Hogo, principal: Principal, file_code: str, record_id: str, values: Mapping[str, Any],
                       *, purpose: str | None, ctx: RequestContext) -> PreparedCorrection:
    """Check a correction request: the requester may read the record and every field it names, for the
    purpose (decided here like a read; a refusal is recorded, nothing is decrypted), and the new values
    pass the file's field rules. The values come back sealed under the file's data key."""
    with hogo.unit_of_work(readonly=True) as db:
        c = _open(hogo, db, principal, file_code, purpose, Action.READ, ctx)
        clean, cleared, changed = _changes(c.spec, values, nothing="nothing to correct")
        required = [f.name for f in c.spec.fields if f.required and f.name in cleared]
        if required:
            raise _validation_error([(name, "is required") for name in required])
        rec = _record_for_read(db, c.row.id, record_id)
        d = _decide(hogo, c, Action.READ, fields=changed, segment=rec.segment if rec else None, segment_applies=True)
        if not d.allowed:
            raise _deny(hogo, c, Event.RECORD_CORRECTED, d, records=[record_id], fields=changed)
        if rec is None:
            raise NotFound(f"no record {record_id!r} in {c.row.code}", code="record_not_found")
        keys = file_keys(hogo, db, c.row.id, c.row.data_key_version)
    binding = f"approval:{secrets.token_hex(16)}"  # ':' never occurs in a record ID
    _, sealed = keys.seal_record(binding, clean)
    return PreparedCorrection(c.row.id, c.row.code, c.spec.department, record_id, rec.revision, tuple(changed),
                              binding, sealed)


def apply_correction(hogo: Hogo, approver: Principal, request_id: int, *, ctx: RequestContext) -> dict[str, Any]:
    """Apply an approved correction request (ANON-8), by one of its approvers, in one transaction: the
    record's current version is kept (``record_versions``, encrypted as it was), the new values are
    merged and sealed, and the log entry names the request, requester, approver, fields and revisions,
    never values. A record changed since the request (another revision) is not overwritten: Conflict."""
    from hogo.store.models import RecordVersion

    approver.require_data_scope(Permission.DATA_WRITE)
    audit_tree.require_anchored(hogo)
    with hogo.unit_of_work() as db:
        req, approved_by = approvals.approved_to_apply(db, request_id, "correction", approver, what="correction")
        if req.file_code is None or req.record_id is None:
            raise NotFound(f"no correction request {request_id}", code="approval_not_found")
        ref, version = _file_ref(db, req.file_code)
        if ref.id != req.file_id or req.payload is None or req.payload_binding is None:
            raise NotFound(f"no correction request {request_id}", code="approval_not_found")
        spec = hogo.spec_cache.get((ref.id, version)) or load_spec(hogo, file_by_code(db, ref.code))
        rec = db.scalar(select(Record).where(Record.file_id == ref.id, Record.record_id == req.record_id)
                        .with_for_update())
        if rec is None:
            raise NotFound(f"record {req.record_id!r} no longer exists in {ref.code}", code="record_not_found")
        if rec.revision != req.base_revision:
            raise Conflict(f"the record changed after the correction was requested (revision {req.base_revision} "
                           f"then, {rec.revision} now); nothing was changed: request the correction again",
                           code="revision_conflict", details={"base_revision": req.base_revision,
                                                              "revision": rec.revision})
        keys = writable_keys(hogo, db, ref.id, ref.data_key_version)
        new = _decrypt(keys, req.payload_binding, req.payload)  # in memory only
        merged = {k: v for k, v in _decrypt(keys, rec.record_id, rec.blob).items() if k not in req.fields}
        merged.update(new)
        now = hogo.clock.now()
        before = rec.revision
        db.add(RecordVersion(file_id=ref.id, record_id=rec.record_id, revision=before, segment=rec.segment,
                             key_version=rec.key_version, blob=rec.blob, replaced_at=now,
                             replaced_by_id=approver.user_id, request_id=req.id))
        rec.key_version, rec.blob = keys.seal_record(rec.record_id, merged)
        rec.dispose_after = dispose_after(spec, merged, rec.created_at)
        if spec.segment_field and spec.segment_field in req.fields:
            rec.segment = merged.get(spec.segment_field)
        rec.revision = before + 1
        rec.updated_at, rec.updated_by_id = now, approver.user_id
        db.execute(delete(RecordIndex).where(RecordIndex.record_pk == rec.id))
        rows = _index_rows(keys, spec, ref.id, rec.id, merged)
        if rows:
            db.execute(insert(RecordIndex), rows)
        outcome = {"revision_before": before, "revision_after": rec.revision}
        req.status, req.applied_at, req.updated_at, req.outcome = "applied", now, now, outcome
        details: dict[str, Any] = {"request": req.id, "requester": req.requester_name, "approver": approver.username,
                                   "approved_by": approved_by, **outcome}
        if integrity.applies(ref.integrity):  # SEC-133(2): the new stored version goes into the signed log
            details.update(integrity.version_details(ref.code, [(rec.record_id, rec.revision, rec.segment, rec.blob)]))
        audit.record(db, now=now, event=Event.RECORD_CORRECTED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=approver.user_id, actor_name=approver.username, target=f"file:{ref.code}",
                     details=details, file_code=ref.code, purpose=req.purpose, records=[rec.record_id],
                     fields=req.fields)
    return outcome



@dataclasses.dataclass(frozen=True)
class CorrectionChanges:
    request_id: int
    file: str
    record_id: str
    fields: tuple[str, ...]
    revision_before: int | None
    before: dict[str, str]  # the corrected fields as they were (identification codes masked)
    revision_after: int | None
    after: dict[str, str] | None  # as requested or applied; None once a refused request dropped them
    masked: tuple[str, ...]


def correction_changes(hogo: Hogo, principal: Principal, request_id: int, *, ctx: RequestContext
                       ) -> CorrectionChanges:
    """What a correction changes, for its requester and its approvers (the approver needs the values to
    judge it, ANON-8): the corrected fields before (the record now, or the version the correction
    replaced) and after (the requested values, or the version it made). The read is recorded before
    anything is decrypted; identification codes stay masked; the audit roles see fields, not values."""
    from hogo.store.models import ApprovalRequest, RecordVersion

    principal.require_data_scope(Permission.DATA_READ)
    audit_tree.require_anchored(hogo)
    with hogo.unit_of_work(readonly=True) as db:
        req = db.scalar(select(ApprovalRequest).where(ApprovalRequest.id == request_id))
        if req is None or req.kind != "correction" or req.file_code is None or req.record_id is None:
            raise NotFound(f"no correction request {request_id}", code="approval_not_found")
        if not approvals.involved(db, req, principal):
            raise Forbidden("only the requester and the approvers of a correction see its values",
                            code="not_involved", requirement="ANON-8")
        ref, version = _file_ref(db, req.file_code)
        spec = hogo.spec_cache.get((ref.id, version)) or load_spec(hogo, file_by_code(db, ref.code))
        after_rev = (req.outcome or {}).get("revision_after")
        old = db.scalar(select(RecordVersion).where(RecordVersion.request_id == req.id))
        rec = _record_for_read(db, ref.id, req.record_id)
        before_rev: int | None = None
        before_blob: bytes | None = None
        if old is not None:  # applied: the version the correction replaced
            before_rev, before_blob = old.revision, old.blob
        elif rec is not None:
            before_rev, before_blob = rec.revision, rec.blob
        # After: the values requested (and, once applied, written); kept sealed until a refusal drops them.
        after_blob, binding = req.payload, req.payload_binding
        keys = file_keys(hogo, db, ref.id, ref.data_key_version)
    with hogo.unit_of_work() as db:
        audit.record(db, now=hogo.clock.now(), event=Event.RECORD_READ, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=principal.user_id, actor_name=principal.username, target=f"file:{ref.code}",
                     details={"correction": req.id}, file_code=ref.code, purpose=req.purpose,
                     records=[req.record_id], fields=req.fields)
    # On record: only now is anything decrypted.
    wanted = list(req.fields)
    masked = tuple(n for n in wanted if n in spec.field_names and spec.field(n).is_identification_code)

    def shown(values: dict[str, str]) -> dict[str, str]:
        return {n: mask(v) if n in masked else v for n, v in values.items()}

    before = shown(_decrypt(keys, req.record_id, before_blob, fields=wanted)) if before_blob is not None else {}
    after = None
    if after_blob is not None and binding is not None:
        after = shown(_decrypt(keys, binding, after_blob, fields=wanted))
    return CorrectionChanges(req.id, ref.code, req.record_id, tuple(wanted), before_rev, before, after_rev, after,
                             masked)


__all__ += ["CorrectionChanges", "PreparedCorrection", "apply_correction", "correction_changes", "prepare_correction"]


# ------------------------------------------------------------------- bulk export (SEC-46..49, ANON-7)
# One guarded path for every copy that leaves hogo in bulk: a plain CSV export (``hogo record export``) and
# a take-out package (services/packages.py). The export grant decides fields × purpose × records; the file's
# marks decide whether this use is allowed at all (handling.refusals: no-copy, no-take-out, encryption
# required, publish only confidentiality 1); one access entry listing every record ID is committed before
# any value is decrypted; values are then decrypted a batch at a time while the caller writes them out.

EXPORT_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class ExportSelection:
    """Which records: the given record IDs, the records matching exact ``where`` conditions on indexed fields,
    the records of one ``segment``, or (nothing given) every record the requester's grants cover."""

    record_ids: tuple[str, ...] | None = None
    where: Mapping[str, str] | None = None
    segment: str | None = None

    @classmethod
    def of(cls, value: ExportSelection | Sequence[str] | Mapping[str, str] | None) -> ExportSelection:
        if value is None:
            return cls()
        if isinstance(value, ExportSelection):
            return value
        if isinstance(value, Mapping):
            return cls(where=dict(value))
        if isinstance(value, str):
            raise ValidationFailed("give record IDs as a list", field="selection")
        return cls(record_ids=tuple(value))


class ExportRefused(Forbidden):
    """The file's marks forbid this use (SEC-46..48): the reasons in Japanese and English."""


@dataclasses.dataclass
class ExportStream:
    """An allowed export, already on record: the columns, marks and records, and ``rows()`` that decrypts
    them batch by batch (never all the plaintext at once). Rows are ``[record_id, value, …]`` in ``columns``
    order; identification codes are masked unless revealed."""

    file: str
    file_name: str
    fields: tuple[str, ...]
    marks: Any  # handling.Marks
    purpose: str
    use: str
    record_ids: tuple[str, ...]
    masked: tuple[str, ...]
    revealed: tuple[str, ...]
    _hogo: Hogo = dataclasses.field(repr=False)
    _file_id: int = dataclasses.field(repr=False)
    _keys: FileKeys = dataclasses.field(repr=False)
    _pks: list[int] = dataclasses.field(repr=False)
    _all_fields: tuple[str, ...] = dataclasses.field(repr=False, default=())
    exported: int = 0  # rows yielded so far by ``rows()``

    @property
    def count(self) -> int:
        return len(self.record_ids)

    @property
    def columns(self) -> tuple[str, ...]:
        return ("record_id", *self.fields)

    def rows(self, batch: int = EXPORT_BATCH) -> Iterator[list[str]]:
        fields, masked, keys = self.fields, frozenset(self.masked), self._keys
        # By primary key only (with the file ID in the condition, a planner may scan the file's records for
        # every batch); the file is checked on each row instead.
        stmt = select(Record.id, Record.file_id, Record.record_id, Record.blob).where(
            Record.id.in_(bindparam("pks", expanding=True)))
        file_id = self._file_id
        every = None if len(fields) == len(set(fields)) and set(fields) >= set(self._all_fields) else fields
        for start in range(0, len(self._pks), batch):
            pks = self._pks[start:start + batch]
            with self._hogo.unit_of_work(readonly=True) as db:
                got = {pk: (rid, bytes(blob)) for pk, fid, rid, blob in db.connection().execute(stmt, {"pks": pks})
                       if fid == file_id}
            for pk in pks:
                if pk not in got:  # deleted after the export was decided: not exported
                    continue
                rid, blob = got[pk]
                values = _decrypt(keys, rid, blob, fields=every)
                self.exported += 1
                yield [rid, *(mask(values[n]) if n in masked and n in values else values.get(n, "") for n in fields)]


def _export_record_ids(db: Session, hogo: Hogo, c: _Context, keys: FileKeys, sel: ExportSelection,
                       fields: Sequence[str], reveal: frozenset[str]) -> list[tuple[int, str]]:
    """(primary key, record ID) of the selected records, in storage order. Each record's segment is decided
    for ``export`` of ``fields`` (and ``reveal`` of the revealed fields). Explicit record IDs outside the
    requester's scope, or missing, refuse the export (alike: no oracle); otherwise records out of scope are
    left out, as a search leaves them out — but not when a reveal was asked and only the reveal is refused."""
    q = select(Record.id, Record.record_id, Record.segment).where(
        Record.file_id == c.row.id, *_matching(c, keys, sel.where or {}, what="selection"))
    if sel.segment is not None:
        q = q.where(Record.segment == sel.segment)
    decided: dict[str | None, tuple[Decision, Decision | None]] = {}

    def decide_segment(seg: str | None) -> tuple[Decision, Decision | None]:
        got = decided.get(seg)
        if got is None:
            ed = _decide(hogo, c, Action.EXPORT, fields=fields, segment=seg, segment_applies=True)
            rd = _decide(hogo, c, Action.REVEAL, fields=reveal, segment=seg, segment_applies=True) if (
                reveal and ed.allowed) else None
            got = decided[seg] = (ed, rd)
        return got

    out: list[tuple[int, str]] = []
    if sel.record_ids is not None:
        wanted = list(dict.fromkeys(sel.record_ids))
        if not wanted:
            raise ValidationFailed("give at least one record ID", field="records")
        found: dict[str, tuple[int, str | None]] = {}
        for start in range(0, len(wanted), 1000):
            for row_pk, row_id, row_seg in db.execute(q.where(Record.record_id.in_(wanted[start:start + 1000]))):
                found[row_id] = (row_pk, row_seg)
        for rid in wanted:
            hit = found.get(rid)
            pk, seg = hit if hit is not None else (None, None)
            ed, rd = decide_segment(seg)
            bad = ed if not ed.allowed else rd if rd is not None and not rd.allowed else None
            if bad is None and pk is None:
                bad = Decision(False, f"no record {rid!r} you may export", "record_out_of_scope",
                               requirement="MN-6a")
            if bad is not None:
                raise _deny(hogo, c, Event.RECORDS_EXPORTED, bad, records=[rid], fields=fields)
            assert pk is not None
            out.append((pk, rid))
        return out
    for pk, rid, seg in db.execute(q.order_by(Record.id)):
        ed, rd = decide_segment(seg)
        if not ed.allowed:
            continue
        if rd is not None and not rd.allowed:
            raise _deny(hogo, c, Event.RECORDS_EXPORTED, rd, records=[rid], fields=fields)
        out.append((pk, rid))
    return out


@guarded
def export_records(hogo: Hogo, principal: Principal, file_code: str, *, fields: Sequence[str] | None,
                   selection: ExportSelection | Sequence[str] | Mapping[str, str] | None = None,
                   purpose: str | None, use: Any = None, encrypted: bool = False, outside_scope: bool = False,
                   reveal: Iterable[str] = (), ctx: RequestContext, extra: Mapping[str, Any] | None = None
                   ) -> ExportStream:
    """A guarded bulk export (SEC-46..49, ANON-7, MN-6a).

    ``fields``: the columns (None: every field the export grants cover); ``selection``: record IDs, exact
    ``where`` conditions or a segment (None: every record in scope); ``use``: handling.Use (EXPORT, PACKAGE,
    PUBLISH; default EXPORT); ``encrypted``: the copy leaves hogo encrypted (a package); ``outside_scope``: it
    goes to someone outside the viewing scope (provision); ``reveal``: identification codes to export unmasked
    (needs a reveal grant); ``extra``: details for the access entry (e.g. the package's tracking ID).

    The export grant decides, then the marks (a refusal is recorded with its reason and raised as
    ExportRefused); then ONE access entry (``data:record:export``, listing every record ID) is committed before
    anything is decrypted — it counts toward the bulk-export alerts. The returned stream decrypts in batches."""
    from hogo.domain import handling

    use = handling.Use(use or handling.Use.EXPORT)
    reveal_set = frozenset(reveal)
    sel = ExportSelection.of(selection)
    with hogo.unit_of_work(readonly=True) as db:
        c = _open(hogo, db, principal, file_code, purpose, Action.EXPORT, ctx)
        names = c.spec.field_names
        wanted: list[str] | None = None
        if fields is not None:
            wanted = list(dict.fromkeys(f.strip() for f in fields if f.strip()))
            unknown = [f for f in wanted if f not in names]
            if unknown:
                raise ValidationFailed(f"no field(s) {', '.join(unknown)} in this file", field="fields")
            if not wanted:
                raise ValidationFailed("name at least one field to export", field="fields")
        for name in reveal_set:
            if name not in names or not c.spec.field(name).is_identification_code:
                raise ValidationFailed(f"field {name!r} is not a masked identification code", field="reveal")
        d = _decide(hogo, c, Action.EXPORT, fields=wanted, segment=None, segment_applies=False)
        if not d.allowed:
            raise _deny(hogo, c, Event.RECORDS_EXPORTED, d, records=[], fields=wanted or ())
        cols = tuple(wanted) if wanted is not None else readable_fields(d, names)
        if reveal_set - set(cols):
            raise ValidationFailed("a revealed field must also be exported", field="reveal")
        if reveal_set:
            d2 = _decide(hogo, c, Action.REVEAL, fields=reveal_set, segment=None, segment_applies=False)
            if not d2.allowed:
                raise _deny(hogo, c, Event.RECORDS_EXPORTED, d2, records=[], fields=cols)
        marks = handling.Marks.of(c.spec)
        refused = handling.refusals(marks, use, encrypted=encrypted, outside_scope=outside_scope)
        if not refused:
            keys = file_keys(hogo, db, c.row.id, c.row.data_key_version)
            picked = _export_record_ids(db, hogo, c, keys, sel, cols, reveal_set)
    if refused:
        reasons = [{"restriction": str(r.restriction), "ja": r.reason_ja, "en": r.reason_en} for r in refused]
        with hogo.unit_of_work() as db:
            _record_access(db, hogo, c, Event.RECORDS_EXPORTED, Outcome.DENIED, records=[], fields=cols,
                           decision=None, reason="restricted",
                           extra={"use": use.value, "marks": marks.label, "refusals": reasons,
                                  "requirement": "SEC-47"})
        message = "; ".join(f"{r.reason_en} ({r.reason_ja})" for r in refused)
        if any(r.restriction == "encryption_required" for r in refused) and use is handling.Use.EXPORT:
            message += " — use a take-out package instead (持出しパッケージを使ってください)"
        raise ExportRefused(f"export refused by the file's marks {marks.label}: {message}", code="export_restricted",
                            requirement="SEC-47" if use is not handling.Use.PUBLISH else "SEC-48",
                            details={"file": c.row.code, "marks": marks.to_dict(), "refusals": reasons})
    record_ids = tuple(rid for _, rid in picked)
    masked = tuple(n for n in cols if c.spec.field(n).is_identification_code and n not in reveal_set)
    details: dict[str, Any] = {"use": use.value, "marks": marks.label, "encrypted": encrypted,
                               "outside_scope": outside_scope, "count": len(record_ids)}
    if reveal_set:
        details["revealed"] = sorted(reveal_set)
    if sel.where:
        details["where_fields"] = sorted(sel.where)
    if extra:
        details.update(extra)
    entry = _access_entry(hogo, c, Event.RECORDS_EXPORTED, Outcome.SUCCESS, records=record_ids, fields=cols,
                          decision=d, extra=details)
    due = _grants_to_touch(hogo, d)
    with hogo.unit_of_work() as db:  # on record (fail closed) before any value is decrypted
        audit.add(db, [entry])
        _touch_grants(db, hogo, due)
    return ExportStream(file=c.row.code, file_name=c.spec.name, fields=cols, marks=marks, purpose=c.purpose,
                        use=use.value, record_ids=record_ids, masked=masked, revealed=tuple(sorted(reveal_set)),
                        _hogo=hogo, _file_id=c.row.id, _keys=keys, _pks=[pk for pk, _ in picked],
                        _all_fields=c.spec.field_names)


__all__ += ["EXPORT_BATCH", "ExportRefused", "ExportSelection", "ExportStream", "export_records"]
