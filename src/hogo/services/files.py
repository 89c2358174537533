"""Defining personal-data files (個人情報ファイル): specs, versions, keys, and the ledger view (MN-3c).

A file is defined by a protection manager of its department or the general protection manager.
Defining a file creates its keys (a data key and a blind-index key, wrapped by the key provider);
nobody gets any access to its records by defining it — that takes a grant (services/grants.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.crypto.envelope import ALG_AES_256_GCM, ALGORITHMS, FileKeys, WrappedKey, new_wrapped_key, unwrap_file_keys
from hogo.domain.events import Event, Outcome
from hogo.domain.files import Classification, FileSpec, Restriction, SpecError, check_evolution, parse_spec
from hogo.domain.handling import Marks
from hogo.domain.roles import Permission, Role
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import audit
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import Department, FileGrant, FileKey, FileVersion, PersonalDataFile, Record, User


@dataclasses.dataclass(frozen=True)
class FileView:
    code: str
    name: str
    kind: str
    department: str
    responsible: str
    version: int
    classification: str
    restrictions: tuple[str, ...]
    purposes: tuple[str, ...]
    records: int
    spec: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    marks: dict[str, Any] = dataclasses.field(default_factory=dict)  # marks_view: shown wherever the file is (SEC-46)
    erased_at: dt.datetime | None = None  # issue 5 (erasure): the ledger entry stays, marked


def marks_of(row: PersonalDataFile) -> Marks:
    """The file's marks (格付と取扱制限) as its current definition has them."""
    return Marks(Classification(row.confidentiality, row.integrity, row.availability),
                 frozenset(Restriction(r) for r in row.restrictions))


def marks_view(marks: Marks) -> dict[str, Any]:
    """``Marks.to_dict()`` plus the Japanese label and the one-line label, for every output (明示, SEC-46)."""
    return {**marks.to_dict(), "label_ja": marks.label_ja, "label_full": marks.label}


def spec_problems_error(exc: SpecError) -> ValidationFailed:
    first = exc.problems[0][0] if exc.problems else None
    return ValidationFailed(
        "the file spec is invalid: " + "; ".join(f"{p}: {r}" for p, r in exc.problems),
        field=first, details={"problems": [{"field": p, "reason": r} for p, r in exc.problems]},
    )


def load_spec(hogo: Hogo, row: PersonalDataFile) -> FileSpec:
    """The parsed spec of the row's current version, parsed once per process (a version never
    changes once written)."""
    key = (row.id, row.version)
    spec = hogo.spec_cache.get(key)
    if spec is None:
        spec = hogo.spec_cache[key] = parse_spec(row.spec)
    return spec


def file_by_code(db: Session, code: str) -> PersonalDataFile:
    row = db.scalar(select(PersonalDataFile).where(PersonalDataFile.code == code.strip().lower()))
    if row is None:
        raise NotFound(f"no personal-data file {code!r}", code="file_not_found")
    return row


def _may_define(actor: Principal, department: str) -> None:
    actor.require(Permission.FILE_DEFINE)
    roles = actor.role_set
    if Role.GENERAL_PROTECTION_MANAGER in roles:
        return
    if any(g.role is Role.PROTECTION_MANAGER and g.department == department for g in actor.roles):
        return
    raise Forbidden(f"only a protection manager of {department} or the general protection manager may "
                    "define its files", requirement="SEC-130")


def _view(db: Session, row: PersonalDataFile) -> FileView:
    dept = db.get(Department, row.department_id)
    resp = db.get(User, row.responsible_id)
    count = db.scalar(select(func.count()).select_from(Record).where(Record.file_id == row.id)) or 0
    spec = row.spec
    return FileView(
        code=row.code, name=row.name, kind=row.kind, department=dept.code if dept else "",
        responsible=resp.username if resp else "", version=row.version,
        classification=f"C{row.confidentiality}-I{row.integrity}-A{row.availability}",
        restrictions=tuple(row.restrictions), purposes=tuple(spec.get("purposes", ())), records=int(count),
        spec=spec, created_at=row.created_at, updated_at=row.updated_at, marks=marks_view(marks_of(row)),
        erased_at=row.erased_at,
    )


def file_view(db: Session, row: PersonalDataFile) -> FileView:
    return _view(db, row)


def _stored_spec(spec: FileSpec) -> dict[str, Any]:
    d = spec.to_dict()
    d.pop("retention_days")
    d["retention_days"] = spec.retention_days
    return d


def create_file(hogo: Hogo, actor: Principal, raw_spec: dict[str, Any], *, ctx: RequestContext) -> FileView:
    try:
        spec = parse_spec(raw_spec)
    except SpecError as exc:
        raise spec_problems_error(exc) from None
    _may_define(actor, spec.department)
    with hogo.unit_of_work() as db:
        if db.scalar(select(PersonalDataFile.id).where(PersonalDataFile.code == spec.code)) is not None:
            raise Conflict(f"a file with code {spec.code!r} already exists", code="file_exists")
        dept = db.scalar(select(Department).where(Department.code == spec.department))
        if dept is None:
            raise ValidationFailed(f"no department {spec.department!r}", field="department")
        resp = db.scalar(select(User).where(User.username == spec.responsible))
        if resp is None or resp.disabled_at is not None:
            raise ValidationFailed(f"no active user {spec.responsible!r} to be responsible", field="responsible")
        now = hogo.clock.now()
        stored = _stored_spec(spec)
        row = PersonalDataFile(
            code=spec.code, name=spec.name, kind=spec.kind.value, department_id=dept.id, responsible_id=resp.id,
            version=1, data_key_version=1, confidentiality=spec.classification.confidentiality,
            integrity=spec.classification.integrity,
            availability=spec.classification.availability, restrictions=sorted(r.value for r in spec.restrictions),
            spec=stored, created_at=now, created_by_id=actor.user_id, updated_at=now,
        )
        db.add(row)
        db.flush()
        db.add(FileVersion(file_id=row.id, version=1, spec=stored, created_at=now, created_by_id=actor.user_id))
        # A new file's id has no keys; any a rolled-back creation left under it are not this file's.
        hogo.keystore.destroy(row.id, remember=False)
        hogo.file_keys.pop(row.id, None)
        _store_keys(hogo, row.id, 1, now)
        audit.record(
            db, now=now, event=Event.FILE_CREATED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
            actor_name=actor.username, target=f"file:{spec.code}",
            details={"version": 1, "kind": spec.kind.value, "classification": spec.classification.label},
        )
        audit.record(
            db, now=now, event=Event.KEY_CREATED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
            actor_name=actor.username, target=f"file:{spec.code}",
            details={"key_version": 1, "algorithm": ALGORITHMS[ALG_AES_256_GCM],
                     "provider": hogo.key_provider.name},
        )
        db.flush()
        return _view(db, row)


def _store_keys(hogo: Hogo, file_id: int, version: int, now: dt.datetime) -> None:
    """A new key version (a data key and its own blind-index key) in the key store, never in the
    database (crypto/keystore.py: a database backup alone must not be decryptable)."""
    hogo.keystore.put(file_id, [new_wrapped_key(hogo.key_provider, file_id, version, purpose)
                                for purpose in ("data", "index")],
                      algorithm=ALGORITHMS[ALG_AES_256_GCM], now=now)


def update_file(hogo: Hogo, actor: Principal, code: str, raw_spec: dict[str, Any], *,
                ctx: RequestContext) -> FileView:
    """A new version of the definition; fields may be added, not dropped or retyped."""
    try:
        spec = parse_spec(raw_spec)
    except SpecError as exc:
        raise spec_problems_error(exc) from None
    with hogo.unit_of_work() as db:
        row = file_by_code(db, code)
        old = load_spec(hogo, row)
        _may_define(actor, old.department)
        if spec.department != old.department:
            _may_define(actor, spec.department)
        problems = check_evolution(old, spec)
        if problems:
            raise spec_problems_error(SpecError(problems))
        from hogo.services import marks as marks_service

        before, after = marks_of(row), Marks.of(spec)
        basis: str | None = None
        if after != before:
            # Marks are revised only by their decider, successor or superior (SEC-46(3)); the change is kept.
            basis = marks_service.revision_basis(db, actor, row)
            if basis is None:
                raise Forbidden("only the person who decided this file's marks, their successor or their "
                                "superior may change them", code="marks_change_refused", requirement="SEC-46")
        write_version(hogo, db, actor, row, spec, ctx)
        if basis is not None:
            marks_service.record_change(hogo, db, actor, row, before, after, basis=basis,
                                        reason=f"file definition updated (version {row.version})", ctx=ctx)
        db.flush()
        return _view(db, row)


def write_version(hogo: Hogo, db: Session, actor: Principal, row: PersonalDataFile, spec: FileSpec,
                  ctx: RequestContext) -> None:
    """A new version of the file's definition: the row takes the spec's items, the version is kept and
    logged; a file raised to integrity 2 gets its records' versions logged (SEC-133(2))."""
    now = hogo.clock.now()
    stored = _stored_spec(spec)
    raised_to_integrity_2 = row.integrity < 2 <= spec.classification.integrity
    row.version += 1
    row.name = spec.name
    row.spec = stored
    row.kind = spec.kind.value
    row.confidentiality = spec.classification.confidentiality
    row.integrity = spec.classification.integrity
    row.availability = spec.classification.availability
    row.restrictions = sorted(r.value for r in spec.restrictions)
    row.updated_at = now
    dept = db.scalar(select(Department).where(Department.code == spec.department))
    resp = db.scalar(select(User).where(User.username == spec.responsible))
    if dept is None or resp is None:
        raise ValidationFailed("department or responsible person unknown", field="department")
    row.department_id, row.responsible_id = dept.id, resp.id
    db.add(FileVersion(file_id=row.id, version=row.version, spec=stored, created_at=now,
                       created_by_id=actor.user_id))
    audit.record(
        db, now=now, event=Event.FILE_UPDATED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
        actor_name=actor.username, target=f"file:{row.code}", details={"version": row.version},
    )
    if raised_to_integrity_2:
        _commit_versions(hogo, db, actor, row, ctx)


def _commit_versions(hogo: Hogo, db: Session, actor: Principal, row: PersonalDataFile, ctx: RequestContext,
                     batch: int = 1000) -> None:
    """A file raised to integrity 2: the versions its records have now go into the log, in the same
    transaction as the change (SEC-133(2)), so ``record verify`` can vouch for them from here on."""
    from hogo.services import integrity

    q = (select(Record.record_id, Record.revision, Record.segment, Record.blob).where(Record.file_id == row.id)
         .order_by(Record.id).execution_options(yield_per=batch))
    for part in db.execute(q).partitions():
        audit.record(
            db, now=hogo.clock.now(), event=Event.RECORDS_COMMITTED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=actor.user_id, actor_name=actor.username, target=f"file:{row.code}", file_code=row.code,
            records=[r[0] for r in part],
            details={"reason": "integrity_raised",
                     **integrity.version_details(row.code, [(i, v, s, b) for i, v, s, b in part])})


def _may_see(db: Session, actor: Principal, row: PersonalDataFile) -> bool:
    if actor.can(Permission.FILE_READ):
        return True
    return _has_any_grant(db, actor, row.id)


def _has_any_grant(db: Session, actor: Principal, file_id: int) -> bool:
    roles = [g.role.value for g in actor.roles]
    q = select(FileGrant.id).where(
        FileGrant.file_id == file_id, FileGrant.revoked_at.is_(None),
        (FileGrant.user_id == actor.user_id) | (FileGrant.role.in_(roles) if roles else False),
    ).limit(1)
    return db.scalar(q) is not None


def list_files(hogo: Hogo, actor: Principal) -> list[FileView]:
    """Managers and auditors see every file's ledger entry; others the files they hold grants on."""
    if actor.pending_steps:
        actor.require(Permission.SELF_READ)
    with hogo.unit_of_work(readonly=True) as db:
        rows = db.scalars(select(PersonalDataFile).order_by(PersonalDataFile.code)).all()
        return [_view(db, r) for r in rows if _may_see(db, actor, r)]


def show_file(hogo: Hogo, actor: Principal, code: str) -> FileView:
    if actor.pending_steps:
        actor.require(Permission.SELF_READ)
    with hogo.unit_of_work(readonly=True) as db:
        row = file_by_code(db, code)
        if not _may_see(db, actor, row):
            raise NotFound(f"no personal-data file {code!r}", code="file_not_found")
        return _view(db, row)


def file_versions(hogo: Hogo, actor: Principal, code: str) -> list[dict[str, Any]]:
    with hogo.unit_of_work(readonly=True) as db:
        row = file_by_code(db, code)
        if not _may_see(db, actor, row):
            raise NotFound(f"no personal-data file {code!r}", code="file_not_found")
        return [
            {"version": v.version, "created_at": v.created_at, "spec": v.spec}
            for v in db.scalars(select(FileVersion).where(FileVersion.file_id == row.id).order_by(FileVersion.version))
        ]


# ------------------------------------------------------------------------------------ keys


BUCKET_RECORDS = 1024  # a new key version about every this many records (crypto-shredding buckets)


def bucket_records(hogo: Hogo) -> int:
    return int(hogo.extras.get("bucket_records", BUCKET_RECORDS))


def move_keys_out_of_database(hogo: Hogo, file_id: int | None = None) -> int:
    """Wrapped keys an older hogo kept in the database (``file_keys``) go to the key store, then are
    deleted from the database (idempotent: a key already in the store is kept as it is). The table
    stays, empty. Returns how many keys were moved."""
    with hogo.unit_of_work() as db:
        q = select(FileKey)
        if file_id is not None:
            q = q.where(FileKey.file_id == file_id)
        rows = db.scalars(q).all()
        if not rows:
            return 0
        by_file: dict[int, list[WrappedKey]] = {}
        for r in rows:
            by_file.setdefault(r.file_id, []).append(WrappedKey(r.version, r.purpose, r.provider, r.kek_id,
                                                                bytes(r.wrapped)))
        for fid, keys in by_file.items():
            hogo.keystore.put(fid, keys, algorithm=ALGORITHMS[ALG_AES_256_GCM], now=hogo.clock.now(), replace=True)
        for r in rows:
            db.delete(r)
        audit.record(db, now=hogo.clock.now(), event=Event.KEY_CREATED, outcome=Outcome.SUCCESS,
                     ctx=RequestContext(client_addr="local", user_agent="hogo keystore"),
                     target="keystore", reason="moved_to_keystore",
                     details={"files": sorted(by_file), "keys": len(rows)})
    for fid in by_file:
        hogo.file_keys.pop(fid, None)
    return len(rows)


def file_keys(hogo: Hogo, db: Session | Connection, file_id: int, current_version: int | None = None
              ) -> FileKeys:
    """The file's unwrapped keys (from the key store), cached in this process until a newer data key appears.

    ``current_version`` (the file row's ``data_key_version``, when the caller has the row) saves
    a query; key versions only ever grow."""
    if current_version is None:
        current_version = db.scalar(select(PersonalDataFile.data_key_version).where(PersonalDataFile.id == file_id))
    cached = hogo.file_keys.get(file_id)
    if cached is not None and cached.current_version == current_version:
        return cached
    wrapped = hogo.keystore.get(file_id)
    if not wrapped:
        if db.scalar(select(FileKey.id).where(FileKey.file_id == file_id).limit(1)) is not None:
            move_keys_out_of_database(hogo, file_id)  # an instance made before the key store
            wrapped = hogo.keystore.get(file_id)
        if not wrapped:
            raise Conflict("this file's keys are destroyed (the file was erased)", code="file_erased")
    keys = unwrap_file_keys(hogo.key_provider, file_id, wrapped, current_version)
    hogo.file_keys[file_id] = keys
    return keys


def new_key_version(hogo: Hogo, db: Session, file_id: int) -> int:
    """Start a new key version (bucket) for the file's writes, in the caller's transaction (the file's
    row is locked, so two writers do not both start one). Returns the file's current version."""
    return new_key_versions(hogo, db, file_id, 1)[-1]


def new_key_versions(hogo: Hogo, db: Session, file_id: int, count: int) -> list[int]:
    """``count`` new key versions at once, in the caller's transaction (the file's row is locked, so two
    writers do not both start one): one write to the key store. Returns them; the last is the file's
    current version."""
    row = db.scalar(select(PersonalDataFile).where(PersonalDataFile.id == file_id).with_for_update())
    if row is None:
        raise NotFound("no such personal-data file", code="file_not_found")
    versions = _put_new_versions(hogo, file_id, row.data_key_version, count)
    row.data_key_version = versions[-1]
    db.flush()
    return versions


def _put_new_versions(hogo: Hogo, file_id: int, after: int, count: int) -> list[int]:
    """``count`` new key versions (a data key and an index key each) in the key store, all or none,
    numbered after ``after`` and after every version the store has (taken, or taken and destroyed)."""
    for attempt in range(5):
        first = max(after, hogo.keystore.max_version(file_id)) + 1
        versions = list(range(first, first + count))
        try:
            hogo.keystore.put(file_id, [new_wrapped_key(hogo.key_provider, file_id, version, purpose)
                                        for version in versions for purpose in ("data", "index")],
                              algorithm=ALGORITHMS[ALG_AES_256_GCM], now=hogo.clock.now())
        except sqlite3.IntegrityError:  # another writer took one of them meanwhile: the next ones
            if attempt == 4:
                raise
            continue
        return versions
    raise AssertionError("unreachable")


def import_plan(hogo: Hogo, db: Session, file_id: int, rows: int, filled: tuple[int, int] | None = None
                ) -> tuple[FileKeys, list[tuple[int, int]], tuple[int, int]]:
    """For an import batch of ``rows`` records: the keys and which key version each run of rows goes
    under, ``[(version, count), …]`` in order — the rest of the current bucket, then new versions of
    ``BUCKET_RECORDS`` each. ``filled``: (version, records) as the import's previous plan left it (its
    batch may not be committed yet); returned for the next.

    Writes nothing to the database (a read-only transaction will do, so planning the next batch never
    waits for the write of the one before): the new versions' keys go to the key store here, and the
    file's row takes the newest version when the batch sealed under it is written
    (``advance_key_version``, in that batch's transaction)."""
    size = bucket_records(hogo)
    current = db.scalar(select(PersonalDataFile.data_key_version).where(PersonalDataFile.id == file_id))
    assert current is not None
    if filled is not None and filled[0] > current:  # a version this import started, not yet written
        current = filled[0]
    n = db.scalar(select(func.count()).select_from(Record).where(
        Record.file_id == file_id, Record.key_version == current)) or 0
    if filled is not None and filled[0] == current:
        n = max(n, filled[1])
    plan: list[tuple[int, int]] = []
    room = max(0, size - n)
    left = rows
    if room:
        plan.append((current, min(room, left)))
        left -= plan[-1][1]
    if left > 0:  # the new buckets' keys made in one go
        for version in _put_new_versions(hogo, file_id, current, -(-left // size)):
            plan.append((version, min(size, left)))
            left -= plan[-1][1]
        current = plan[-1][0]
    if not plan:
        last = (current, n)
    elif len(plan) == 1 and room:  # all in the bucket that was current
        last = (current, n + rows)
    else:
        last = (current, plan[-1][1])
    return file_keys(hogo, db, file_id, current), plan, last


def advance_key_version(db: Session, file_id: int, version: int) -> None:
    """The file's current key version becomes ``version`` unless it is newer already (an import's batch
    written under versions ``import_plan`` started)."""
    db.execute(update(PersonalDataFile).where(PersonalDataFile.id == file_id,
                                              PersonalDataFile.data_key_version < version)
               .values(data_key_version=version))


def writable_keys(hogo: Hogo, db: Session, file_id: int, current_version: int | None = None, *,
                  adding: int = 1) -> FileKeys:
    """``file_keys`` for a write of ``adding`` records: when the current version's bucket is full, a new
    version is started first (in the caller's transaction), so erasing a record later re-encrypts about
    ``BUCKET_RECORDS`` records, not the whole file (services/erasure.py)."""
    if current_version is None:
        current_version = db.scalar(select(PersonalDataFile.data_key_version).where(PersonalDataFile.id == file_id))
    assert current_version is not None
    n = db.scalar(select(func.count()).select_from(Record).where(
        Record.file_id == file_id, Record.key_version == current_version)) or 0
    if n and n + adding > bucket_records(hogo):
        current_version = new_key_version(hogo, db, file_id)
    return file_keys(hogo, db, file_id, current_version)


def rotate_key(hogo: Hogo, actor: Principal, code: str, *, ctx: RequestContext,
               batch: int = 1000) -> dict[str, int]:
    """SEC-133 / SEC-151: a new data key version; every record is re-encrypted under it, batch by
    batch (each batch in its own transaction: an interrupted rotation leaves every record readable
    under the version it names, and running it again finishes the job)."""
    with hogo.unit_of_work() as db:
        row = file_by_code(db, code)
        _may_define(actor, load_spec(hogo, row).department)
        now = hogo.clock.now()
        file_keys(hogo, db, row.id, row.data_key_version)  # keys of an older instance move to the key store
        new_version = new_key_version(hogo, db, row.id)
        audit.record(
            db, now=now, event=Event.KEY_ROTATED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
            actor_name=actor.username, target=f"file:{row.code}",
            details={"key_version": new_version, "algorithm": ALGORITHMS[ALG_AES_256_GCM]},
        )
        file_id = row.id
    done = reencrypt(hogo, file_id, batch=batch, actor=actor, ctx=ctx, below=new_version)
    return {"key_version": new_version, "reencrypted": done}


def reencrypt(hogo: Hogo, file_id: int, *, batch: int = 1000, actor: Principal | None = None,
              ctx: RequestContext | None = None, below: int | None = None) -> int:
    """Re-encrypt the records under a data key older than ``below`` (default: the current one), and
    their blind-index rows under the new version's index key. The new versions fill buckets as writes
    do (a new version when the current one is full). Each batch of an integrity-2 file is logged with
    the new stored versions' hashes, in the batch's transaction: a re-encrypted record is a new stored
    version the signed log must vouch for (SEC-133(2), services/integrity.py)."""
    from hogo.services import integrity
    from hogo.store.models import RecordIndex

    done = 0
    batch = max(1, min(batch, bucket_records(hogo)))
    while True:
        with hogo.unit_of_work() as db:
            row = db.get(PersonalDataFile, file_id)
            assert row is not None
            floor = below if below is not None else row.data_key_version
            rows = db.scalars(
                select(Record).where(Record.file_id == file_id, Record.key_version < floor)
                .order_by(Record.id).limit(batch)
            ).all()
            if not rows:
                return done
            keys = writable_keys(hogo, db, file_id, row.data_key_version, adding=len(rows))
            spec = load_spec(hogo, row)
            indexed = [f.name for f in spec.fields if f.indexed]
            pks = [r.id for r in rows]
            db.execute(delete(RecordIndex).where(RecordIndex.record_pk.in_(pks)))
            index_rows = []
            for r in rows:
                values = keys.open_record(r.record_id, r.blob)
                r.key_version, r.blob = keys.seal_record(r.record_id, values)
                index_rows += [{"file_id": file_id, "field": n, "digest": keys.blind_index(n, values[n]),
                                "record_pk": r.id} for n in indexed if n in values]
            if index_rows:
                db.execute(insert(RecordIndex), index_rows)
            done += len(rows)
            if integrity.applies(row.integrity):
                audit.record(
                    db, now=hogo.clock.now(), event=Event.RECORDS_REENCRYPTED, outcome=Outcome.SUCCESS,
                    ctx=ctx or RequestContext(), actor_id=actor.user_id if actor else None,
                    actor_name=actor.username if actor else None, target=f"file:{row.code}", file_code=row.code,
                    records=[r.record_id for r in rows],
                    details={"key_version": keys.current_version, **integrity.version_details(
                        row.code, [(r.record_id, r.revision, r.segment, r.blob) for r in rows])})
