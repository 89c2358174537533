"""Defining personal-data files (個人情報ファイル): specs, versions, keys, and the ledger view (MN-3c).

A file is defined by a protection manager of its department or the general protection manager.
Defining a file creates its keys (a data key and a blind-index key, wrapped by the key provider);
nobody gets any access to its records by defining it — that takes a grant (services/grants.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, select
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
        for purpose in ("data", "index"):
            _store_key(db, row.id, new_wrapped_key(hogo.key_provider, row.id, 1, purpose), now)
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


def _store_key(db: Session, file_id: int, key: WrappedKey, now: dt.datetime) -> None:
    db.add(FileKey(file_id=file_id, purpose=key.purpose, version=key.version,
                   algorithm=ALGORITHMS[ALG_AES_256_GCM], provider=key.provider, kek_id=key.kek_id,
                   wrapped=key.wrapped, created_at=now))


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


def file_keys(hogo: Hogo, db: Session, file_id: int, current_version: int | None = None) -> FileKeys:
    """The file's unwrapped keys, cached in this process until a newer data key appears.

    ``current_version`` (the file row's ``data_key_version``, when the caller has the row) saves
    a query; key versions only ever grow."""
    if current_version is None:
        current_version = db.scalar(select(PersonalDataFile.data_key_version).where(PersonalDataFile.id == file_id))
    cached = hogo.file_keys.get(file_id)
    if cached is not None and cached.current_version == current_version:
        return cached
    rows = db.scalars(select(FileKey).where(FileKey.file_id == file_id)).all()
    keys = unwrap_file_keys(hogo.key_provider, file_id, [
        WrappedKey(r.version, r.purpose, r.provider, r.kek_id, r.wrapped) for r in rows
    ])
    hogo.file_keys[file_id] = keys
    return keys


def rotate_key(hogo: Hogo, actor: Principal, code: str, *, ctx: RequestContext,
               batch: int = 1000) -> dict[str, int]:
    """SEC-133 / SEC-151: a new data key version; every record is re-encrypted under it, batch by
    batch (each batch in its own transaction: an interrupted rotation leaves every record readable
    under the version it names, and running it again finishes the job)."""
    with hogo.unit_of_work() as db:
        row = file_by_code(db, code)
        _may_define(actor, load_spec(hogo, row).department)
        now = hogo.clock.now()
        current = db.scalar(select(func.max(FileKey.version)).where(FileKey.file_id == row.id,
                                                                     FileKey.purpose == "data")) or 0
        new_version = current + 1
        _store_key(db, row.id, new_wrapped_key(hogo.key_provider, row.id, new_version, "data"), now)
        row.data_key_version = new_version
        audit.record(
            db, now=now, event=Event.KEY_ROTATED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
            actor_name=actor.username, target=f"file:{row.code}",
            details={"key_version": new_version, "algorithm": ALGORITHMS[ALG_AES_256_GCM]},
        )
        file_id = row.id
    return {"key_version": new_version,
            "reencrypted": reencrypt(hogo, file_id, batch=batch, actor=actor, ctx=ctx)}


def reencrypt(hogo: Hogo, file_id: int, *, batch: int = 1000, actor: Principal | None = None,
              ctx: RequestContext | None = None) -> int:
    """Re-encrypt the records not yet under the current data key. Each batch of an integrity-2 file is
    logged with the new stored versions' hashes, in the batch's transaction: a re-encrypted record is a
    new stored version the signed log must vouch for (SEC-133(2), services/integrity.py)."""
    from hogo.services import integrity

    done = 0
    while True:
        with hogo.unit_of_work() as db:
            keys = file_keys(hogo, db, file_id)
            code, level = db.execute(select(PersonalDataFile.code, PersonalDataFile.integrity)
                                     .where(PersonalDataFile.id == file_id)).one()
            rows = db.scalars(
                select(Record).where(Record.file_id == file_id, Record.key_version != keys.current_version)
                .limit(batch)
            ).all()
            if not rows:
                return done
            for r in rows:
                values = keys.open_record(r.record_id, r.blob)
                r.key_version, r.blob = keys.seal_record(r.record_id, values)
            done += len(rows)
            if integrity.applies(level):
                audit.record(
                    db, now=hogo.clock.now(), event=Event.RECORDS_REENCRYPTED, outcome=Outcome.SUCCESS,
                    ctx=ctx or RequestContext(), actor_id=actor.user_id if actor else None,
                    actor_name=actor.username if actor else None, target=f"file:{code}", file_code=code,
                    records=[r.record_id for r in rows],
                    details={"key_version": keys.current_version, **integrity.version_details(
                        code, [(r.record_id, r.revision, r.segment, r.blob) for r in rows])})
