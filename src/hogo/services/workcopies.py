"""Temporary working copies (作業用の一時的な複製, ANON-17; SEC-46(2), ANON-7).

A working copy is a scoped, expiring, encrypted dataset derived from one file's records and kept
*inside* hogo for processing (anonymisation work, a reconciliation): only the fields asked for, only
the records the holder's grants cover (optionally narrowed by exact-match conditions), until a
deadline of at most ``MAX_LIFETIME``.

* **Authority.** Reading the sources is an access to the source file through the guard
  (``guard.copy_records``): a ``read`` grant on those fields for the declared purpose. A working copy
  never leaves hogo, so ``read`` is the least privilege that covers it (``export`` is for copies
  written out, SEC-48); the protection manager decides where copies may be made through the file's
  marks (``no_copy``) and its grants (ANON-7: copying only where the manager allows).
* **Marks.** The copy carries the strictest marks of its sources (SEC-46(2), ``handling.strictest``);
  a source restriction that forbids a working copy (``no_copy``) refuses it, and the refusal is logged.
  When the source's marks change, live copies take the stricter ones; a source newly marked ``no_copy``
  disposes of its live copies (``follow_source_marks``).
* **Holder only.** Only the holder reads the copy's rows; every read is logged. Managers see the
  copy's description (file, fields, count, purpose, deadline), never its rows.
* **Disposal.** At the deadline the background job disposes of it (``dispose_expired``); the holder or
  the file's protection manager may dispose of it earlier. Disposal destroys its key and deletes its
  data; the row stays as the disposal record, which the file's protection manager (or the general
  protection manager) confirms (ANON-17: the manager checks erasure). Identification codes (My Number)
  stay masked in a copy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.crypto import workcopy as sealing
from hogo.domain.events import Event, Outcome
from hogo.domain.handling import Marks, Use, refusals, strictest
from hogo.domain.roles import Permission, Role
from hogo.domain.text import has_control_chars, nfkc
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import audit, files, guard
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import Department
from hogo.store.models_marks import WorkingCopy, WorkingCopyData

MAX_LIFETIME = dt.timedelta(days=30)  # "erased promptly after" (ANON-17): a working copy is short-lived
MAX_RECORDS = 5000
SYSTEM = "system"


@dataclasses.dataclass(frozen=True)
class CopyView:
    id: str
    file: str
    department: str
    holder: str
    purpose: str
    fields: tuple[str, ...]
    where_fields: tuple[str, ...]
    records: int
    marks: dict[str, Any]
    status: str  # live | disposed
    created_at: dt.datetime
    expires_at: dt.datetime
    disposed_at: dt.datetime | None
    disposed_by: str | None
    disposal_reason: str | None
    confirmed_at: dt.datetime | None
    confirmed_by: str | None
    confirmation_note: str | None
    key_destroyed: bool
    data_present: bool


@dataclasses.dataclass(frozen=True)
class CopyContents:
    working_copy: CopyView
    rows: list[dict[str, Any]]  # {"record_id": …, "values": {field: value}}


def _view(db: Session, row: WorkingCopy) -> CopyView:
    present = db.scalar(select(WorkingCopyData.copy_id).where(WorkingCopyData.copy_id == row.id)) is not None
    return CopyView(
        id=row.id, file=row.file_code, department=row.department, holder=row.holder_name, purpose=row.purpose,
        fields=tuple(row.fields), where_fields=tuple(row.where_fields), records=row.records,
        marks=files.marks_view(Marks.from_dict(row.marks)), status=row.status, created_at=row.created_at,
        expires_at=row.expires_at, disposed_at=row.disposed_at, disposed_by=row.disposed_by,
        disposal_reason=row.disposal_reason, confirmed_at=row.confirmed_at, confirmed_by=row.confirmed_by,
        confirmation_note=row.confirmation_note, key_destroyed=row.disposed_at is not None, data_present=present,
    )


def _log(db: Session, hogo: Hogo, actor: Principal | None, event: Event, outcome: Outcome, row_file: str,
         ctx: RequestContext, *, copy_id: str | None, reason: str | None = None,
         details: Mapping[str, Any] | None = None, purpose: str | None = None, fields: Sequence[str] = ()) -> None:
    audit.record(db, now=hogo.clock.now(), event=event, outcome=outcome, ctx=ctx,
                 actor_id=actor.user_id if actor else None, actor_name=actor.username if actor else SYSTEM,
                 target=f"workcopy:{copy_id}" if copy_id else f"file:{row_file}", file_code=row_file, reason=reason,
                 purpose=purpose, fields=fields, details={"copy": copy_id, **(details or {})})


def _text(value: str | None, name: str, limit: int) -> str:
    text = nfkc(value or "").strip()
    if not text:
        raise ValidationFailed(f"give the {name}", field=name)
    if len(text) > limit or has_control_chars(text):
        raise ValidationFailed(f"the {name} must be at most {limit} characters, without control characters",
                               field=name)
    return text


def _fields(fields: Sequence[str]) -> list[str]:
    out: list[str] = []
    for f in fields:
        name = f.strip()
        if name and name not in out:
            out.append(name)
    if not out:
        raise ValidationFailed("name the fields the working copy needs (--fields a,b): only those are copied",
                               field="fields", requirement="ANON-17")
    return out


# ------------------------------------------------------------------------------------ create


def create_copy(hogo: Hogo, actor: Principal, file_code: str, *, fields: Sequence[str], purpose: str | None,
                expires_at: dt.datetime, where: Mapping[str, str] | None = None,
                ctx: RequestContext) -> CopyView:
    """A working copy of ``fields`` of the records of ``file_code`` the actor's grants cover for
    ``purpose`` (and that match ``where``), held by the actor until ``expires_at``."""
    actor.require_data_scope(Permission.DATA_READ)
    wanted = _fields(fields)
    conditions = dict(where or {})
    why = _text(purpose, "purpose", 200)
    now = hogo.clock.now()
    if expires_at.tzinfo is None:
        raise ValidationFailed("the expiry needs a time zone", field="expires")
    if expires_at <= now:
        raise ValidationFailed("the expiry must be in the future", field="expires")
    expires_at = expires_at.astimezone(dt.UTC)
    if expires_at - now > MAX_LIFETIME:
        raise ValidationFailed(f"a working copy lives at most {MAX_LIFETIME.days} days (ANON-17: erased promptly)",
                               field="expires", requirement="ANON-17")
    with hogo.unit_of_work(readonly=True) as db:
        src = files.file_by_code(db, file_code)
        code, file_id = src.code, src.id
        dept = db.get(Department, src.department_id)
        department = dept.code if dept else ""
        source_marks = [files.marks_of(src)]
    marks = strictest(source_marks)  # SEC-46(2): derived information carries the strictest of its sources
    refused = refusals(marks, Use.WORKING_COPY, encrypted=True)
    if refused:
        with hogo.unit_of_work() as db:
            _log(db, hogo, actor, Event.WORKCOPY_CREATED, Outcome.DENIED, code, ctx, copy_id=None,
                 reason=str(refused[0].restriction), purpose=why, fields=wanted,
                 details={"marks": marks.label, "refusals": [r.reason_en for r in refused]})
        raise Forbidden("; ".join(str(r) for r in refused), code="working_copy_refused", requirement="SEC-46",
                        details={"file": code, "restrictions": [str(r.restriction) for r in refused]})
    copy_id = "wc-" + secrets.token_hex(8)
    views = guard.copy_records(hogo, actor, code, wanted, conditions, purpose=why, ctx=ctx, limit=MAX_RECORDS,
                               details={"copy": copy_id})
    rows = [{"record_id": v.record_id, "values": {f: v.values[f] for f in wanted if f in v.values}} for v in views]
    plaintext = json.dumps({"copy": copy_id, "file": code, "fields": wanted, "rows": rows},
                           ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    sealed = sealing.seal(hogo.key_provider, copy_id, plaintext)
    count = len(rows)
    del plaintext, rows, views
    # The copy's key goes to the key store beside the KEK, never into the database (as file keys: issue 5).
    hogo.keystore.put_copy_key(copy_id, provider=sealed.provider, kek_id=sealed.kek_id,
                               wrapped=sealed.wrapped_key, now=hogo.clock.now())
    try:
        return _store_copy(hogo, actor, ctx, copy_id=copy_id, file_id=file_id, code=code, department=department,
                           why=why, wanted=wanted, conditions=conditions, count=count, marks=marks,
                           expires_at=expires_at, sealed=sealed)
    except BaseException:
        hogo.keystore.destroy_copy_key(copy_id)  # nothing stored: no key left behind
        raise


def _store_copy(hogo: Hogo, actor: Principal, ctx: RequestContext, *, copy_id: str, file_id: int, code: str,
                department: str, why: str, wanted: list[str], conditions: dict[str, str], count: int, marks: Marks,
                expires_at: dt.datetime, sealed: sealing.SealedCopy) -> CopyView:
    with hogo.unit_of_work() as db:
        row = WorkingCopy(
            id=copy_id, file_id=file_id, file_code=code, department=department, holder_id=actor.user_id,
            holder_name=actor.username, purpose=why, fields=wanted, where_fields=sorted(conditions),
            records=count, marks=marks.to_dict(), status="live", created_at=hogo.clock.now(), expires_at=expires_at,
            key_provider=sealed.provider, kek_id=sealed.kek_id,
        )
        db.add(row)
        db.flush()
        db.add(WorkingCopyData(copy_id=copy_id, blob=sealed.blob))
        _log(db, hogo, actor, Event.WORKCOPY_CREATED, Outcome.SUCCESS, code, ctx, copy_id=copy_id, purpose=why,
             fields=wanted, details={"records": row.records, "marks": marks.label,
                                     "expires_at": expires_at.isoformat(), "where_fields": sorted(conditions)})
        db.flush()
        return _view(db, row)


# ------------------------------------------------------------------------------------ who sees what


def _oversees(actor: Principal, row: WorkingCopy) -> bool:
    """The file's protection manager, the general protection manager: they check copies and their erasure."""
    if Role.GENERAL_PROTECTION_MANAGER in actor.role_set:
        return True
    return any(g.role is Role.PROTECTION_MANAGER and g.department == row.department for g in actor.roles)


def _may_see(actor: Principal, row: WorkingCopy) -> bool:
    return row.holder_id == actor.user_id or _oversees(actor, row) or Role.AUDITOR in actor.role_set


def _get(db: Session, actor: Principal, copy_id: str, *, lock: bool = False) -> WorkingCopy:
    """The copy if the actor may see it (``lock``: held until the transaction ends, against a concurrent
    disposal)."""
    row = db.get(WorkingCopy, copy_id.strip()[:40], with_for_update=lock or None)
    if row is None or not _may_see(actor, row):
        raise NotFound(f"no working copy {copy_id!r}", code="working_copy_not_found")
    return row


def list_copies(hogo: Hogo, actor: Principal, *, include_disposed: bool = False) -> list[CopyView]:
    actor.require(Permission.SELF_READ)
    with hogo.unit_of_work(readonly=True) as db:
        q = select(WorkingCopy).order_by(WorkingCopy.created_at, WorkingCopy.id)
        if not include_disposed:
            q = q.where(WorkingCopy.status == "live")
        return [_view(db, r) for r in db.scalars(q) if _may_see(actor, r)]


def show_copy(hogo: Hogo, actor: Principal, copy_id: str) -> CopyView:
    actor.require(Permission.SELF_READ)
    with hogo.unit_of_work(readonly=True) as db:
        return _view(db, _get(db, actor, copy_id))


def report(hogo: Hogo, actor: Principal) -> dict[str, list[CopyView]]:
    """Copies still outstanding (live, oldest deadline first) and disposed copies whose erasure no
    manager has confirmed yet (ANON-17), as far as the actor may see them."""
    actor.require(Permission.SELF_READ)
    with hogo.unit_of_work(readonly=True) as db:
        live = db.scalars(select(WorkingCopy).where(WorkingCopy.status == "live")
                          .order_by(WorkingCopy.expires_at, WorkingCopy.id)).all()
        unconfirmed = db.scalars(select(WorkingCopy).where(WorkingCopy.status == "disposed",
                                                           WorkingCopy.confirmed_at.is_(None))
                                 .order_by(WorkingCopy.disposed_at, WorkingCopy.id)).all()
        return {"outstanding": [_view(db, r) for r in live if _may_see(actor, r)],
                "awaiting_confirmation": [_view(db, r) for r in unconfirmed if _may_see(actor, r)]}


# ------------------------------------------------------------------------------------ read


def read_copy(hogo: Hogo, actor: Principal, copy_id: str, *, ctx: RequestContext) -> CopyContents:
    """The copy's rows, for its holder only; the read is logged before anything is decrypted."""
    actor.require_data_scope(Permission.DATA_READ)
    with hogo.unit_of_work(readonly=True) as db:
        row = _get(db, actor, copy_id)
        file_code = row.file_code
        holder = row.holder_id == actor.user_id
        live = row.status == "live" and row.expires_at > hogo.clock.now()
    if not holder or not live:
        reason = "not_holder" if not holder else "disposed_or_expired"
        with hogo.unit_of_work() as db:
            _log(db, hogo, actor, Event.WORKCOPY_READ, Outcome.DENIED, file_code, ctx, copy_id=copy_id.strip(),
                 reason=reason, details={"requirement": "ANON-17"})
        if not holder:
            raise Forbidden("only the holder of a working copy may read it", code="not_holder",
                            requirement="ANON-17")
        raise Conflict("this working copy has expired or been disposed of", code="working_copy_gone")
    with hogo.unit_of_work() as db:
        row = _get(db, actor, copy_id, lock=True)
        data = db.get(WorkingCopyData, row.id)
        wrapped = hogo.keystore.get_copy_key(row.id)
        if data is None or wrapped is None or row.status != "live":
            raise Conflict("this working copy has been disposed of", code="working_copy_gone")
        blob = data.blob
        _log(db, hogo, actor, Event.WORKCOPY_READ, Outcome.SUCCESS, row.file_code, ctx, copy_id=row.id,
             purpose=row.purpose, fields=row.fields, details={"records": row.records})
        view = _view(db, row)
    # Committed: the read is on record. Only now is the copy opened.
    content = json.loads(sealing.open_sealed(hogo.key_provider, view.id, wrapped, blob))
    return CopyContents(view, list(content["rows"]))


# ------------------------------------------------------------------------------------ disposal


def _dispose(db: Session, hogo: Hogo, row: WorkingCopy, *, by: Principal | None, reason: str,
             ctx: RequestContext) -> None:
    """Destroy the key, delete the data, keep the row as the disposal record; logged in the same transaction."""
    now = hogo.clock.now()
    # The key first: should this transaction fail after it, the copy is unreadable, never readable too long.
    hogo.keystore.destroy_copy_key(row.id)
    db.execute(delete(WorkingCopyData).where(WorkingCopyData.copy_id == row.id))
    row.status = "disposed"
    row.disposed_at = now
    row.disposed_by = by.username if by else SYSTEM
    row.disposal_reason = reason
    _log(db, hogo, by, Event.WORKCOPY_DISPOSED, Outcome.SUCCESS, row.file_code, ctx, copy_id=row.id,
         details={"reason": reason, "records": row.records, "key_destroyed": True, "holder": row.holder_name})


def dispose_copy(hogo: Hogo, actor: Principal, copy_id: str, *, ctx: RequestContext) -> CopyView:
    """Dispose of a copy now: its holder, or the file's protection manager (or the general one)."""
    actor.require(Permission.SELF_READ)
    with hogo.unit_of_work() as db:
        row = _get(db, actor, copy_id, lock=True)
        if row.holder_id != actor.user_id and not _oversees(actor, row):
            raise Forbidden("only the holder or the file's protection manager may dispose of a working copy",
                            code="not_holder", requirement="ANON-17")
        if row.status != "live":
            raise Conflict("this working copy has been disposed of already", code="working_copy_gone")
        _dispose(db, hogo, row, by=actor, reason="on_demand", ctx=ctx)
        db.flush()
        return _view(db, row)


def confirm_disposal(hogo: Hogo, actor: Principal, copy_id: str, *, note: str | None,
                     ctx: RequestContext) -> CopyView:
    """The file's protection manager (or the general one) checks that a copy has been erased (ANON-17): the
    key is gone and no data is left. The holder does not confirm their own copy."""
    actor.require(Permission.SELF_READ)
    with hogo.unit_of_work() as db:
        row = _get(db, actor, copy_id, lock=True)
        if not _oversees(actor, row) or row.holder_id == actor.user_id:
            raise Forbidden("the erasure of a working copy is confirmed by the file's protection manager (or the "
                            "general protection manager), not by its holder", code="not_confirmer",
                            requirement="ANON-17")
        if row.status != "disposed":
            raise Conflict("this working copy has not been disposed of yet", code="working_copy_live")
        if row.confirmed_at is not None:
            raise Conflict("the erasure of this working copy has been confirmed already", code="already_confirmed")
        left = db.scalar(select(WorkingCopyData.copy_id).where(WorkingCopyData.copy_id == row.id))
        if hogo.keystore.get_copy_key(row.id) is not None or left is not None:
            raise Conflict("data of this working copy is still present", code="working_copy_not_erased")
        row.confirmed_at = hogo.clock.now()
        row.confirmed_by = actor.username
        row.confirmation_note = _text(note, "note", 1000) if note and note.strip() else None
        _log(db, hogo, actor, Event.WORKCOPY_CONFIRMED, Outcome.SUCCESS, row.file_code, ctx, copy_id=row.id,
             details={"key_destroyed": True, "data_present": False, "holder": row.holder_name})
        db.flush()
        return _view(db, row)


def follow_source_marks(hogo: Hogo, db: Session, file_id: int, marks: Marks, ctx: RequestContext) -> None:
    """A source file's marks changed: its live copies take the stricter of their marks and the new ones
    (a copy's marks never become laxer, SEC-46(2)); a copy the new marks forbid (no_copy) is disposed of
    at once, in the same transaction as the change."""
    rows = db.scalars(select(WorkingCopy).where(WorkingCopy.file_id == file_id, WorkingCopy.status == "live")
                      .with_for_update()).all()
    for row in rows:
        merged = strictest([Marks.from_dict(row.marks), marks])
        if refusals(merged, Use.WORKING_COPY, encrypted=True):
            _dispose(db, hogo, row, by=None, reason="source_no_copy", ctx=ctx)
        row.marks = merged.to_dict()


def dispose_for_erasure(hogo: Hogo, db: Session, file_id: int, ctx: RequestContext) -> int:
    """Records of the file are being erased (issue 5): its live copies, which may hold them, are disposed
    of in the erasure's transaction — an erasure reaches every copy inside hogo. The number disposed of."""
    rows = db.scalars(select(WorkingCopy).where(WorkingCopy.file_id == file_id, WorkingCopy.status == "live")
                      .with_for_update()).all()
    for row in rows:
        _dispose(db, hogo, row, by=None, reason="source_erased", ctx=ctx)
    return len(rows)


def dispose_expired(hogo: Hogo, *, batch: int = 100) -> int:
    """The background job: dispose of every copy whose deadline has passed (each in its own transaction)."""
    done = 0
    ctx = RequestContext(client_addr=None, user_agent="hogo-background")
    while True:
        with hogo.unit_of_work() as db:
            rows = db.scalars(select(WorkingCopy).where(WorkingCopy.status == "live",
                                                        WorkingCopy.expires_at <= hogo.clock.now())
                              .order_by(WorkingCopy.expires_at).limit(batch).with_for_update()).all()
            for row in rows:
                _dispose(db, hogo, row, by=None, reason="expired", ctx=ctx)
        done += len(rows)
        if len(rows) < batch:
            return done

