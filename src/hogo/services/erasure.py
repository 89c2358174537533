"""Irrecoverable deletion (crypto-shredding), deletion certificates (消去証明) and retention (ANON-10,
SEC-50, MN-5d, MN-3c).

Why keys, not rows: deleting rows leaves their ciphertext in every earlier copy of the database. The
wrapped keys live in the key store beside the KEK (crypto/keystore.py), never in the database, so
destroying a key version there makes every ciphertext under it unreadable, in the database and in
every backup taken before.

A record is sealed under its file's current key version, and versions are buckets of about
``BUCKET_RECORDS`` records (services/files.py ``writable_keys``), each with its own data key and its
own blind-index key. Erasing records:

1. in one transaction: their rows are purged (the record, its kept previous versions, its blind-index
   rows, the sealed values of correction requests on it); every other ciphertext under the affected
   versions (the other records of the bucket, their previous versions, pending correction values) is
   re-encrypted under a fresh version, and re-indexed with that version's index key; the deletion
   record (status ``purged``, the versions to destroy) and the log entry (record IDs, never values)
   commit with it — log first, fail closed;
2. the affected versions' keys are destroyed in the key store;
3. hogo checks that those keys are gone and that no row holds a ciphertext under them, then signs the
   certificate (status ``complete``).

A crash between the steps leaves a deletion record that is not complete; ``resume`` (run before every
erasure and retention run, and by the daily job) finishes it. The cost is O(bucket), not O(file).
The blind index: a digest of an erased My Number under a destroyed index key cannot be recomputed,
so an earlier backup's index rows confirm nothing (one index key per bucket; a lookup makes one HMAC
per live bucket). A file made before buckets has one index key for every data version: its first
erasure re-encrypts the whole file into buckets, once.

Erasing a file: the file is marked erased (every access refused from then on), all its keys are
destroyed (one statement, whatever its record count), then its rows are purged; the ledger entry stays.

A certificate is canonical JSON (what, when, how, who ordered, hogo's own check; never a value or a
record ID, only their count and a digest of the IDs), signed as a signed note with the log key over
``hogo-deletion-certificate/v1\\n<sha256 hex>\\n``; ``verify_certificate`` checks it offline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.crypto import checkpoint as notes
from hogo.crypto.envelope import ALG_AES_256_GCM, ALGORITHMS, blob_key_version
from hogo.domain import retention as retention_rules
from hogo.domain.auditlog import format_ts
from hogo.domain.events import Event, Outcome
from hogo.domain.files import Action
from hogo.domain.roles import Permission, Role
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import audit, audit_tree, files, guard, integrity, workcopies
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import ApprovalRequest, FileKey, PersonalDataFile, Record, RecordIndex, RecordVersion
from hogo.store.models_backups import Backup
from hogo.store.models_erasure import ContractorCertificate, DeletionRecord

CERT_FORMAT = "hogo-deletion-certificate/v1"
CONFIRM_FORMAT = "hogo-deletion-confirmation/v1"
METHOD = ("crypto-shredding: AES-256-GCM data keys and HMAC-SHA-256 blind-index keys destroyed in the key "
          "store (kept apart from the database); rows purged")
SYSTEM = RequestContext(client_addr="local", user_agent="hogo retention")
_MY_NUMBER_LIKE = re.compile(r"(?:\d[\s\-‐－]?){11}\d")
MAX_ATTACHMENT = 20 * 1024 * 1024


class ErasureIncomplete(Exception):
    """hogo's own check after an erasure found a key or a ciphertext that should be gone."""


def _reason(text: str | None) -> str:
    from hogo.domain.text import has_control_chars, nfkc

    value = nfkc(text or "").strip()
    if not value:
        raise ValidationFailed("give the reason for the erasure (--reason)", field="reason")
    if len(value) > 1000 or has_control_chars(value):
        raise ValidationFailed("the reason must be at most 1000 characters, no control characters", field="reason")
    if _MY_NUMBER_LIKE.search(value):
        # A certificate never holds a My Number or other personal data (MN-3c).
        raise ValidationFailed("the reason must not contain a number like a My Number or other personal data",
                               field="reason", requirement="MN-3c")
    return value


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _ids_digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class Certificate:
    id: int
    kind: str
    status: str
    file: str
    file_name: str
    record_count: int
    created_at: dt.datetime
    completed_at: dt.datetime | None
    ordered_by: str
    reason: str
    certificate: dict[str, Any] | None
    signature: str | None
    attachments: tuple[dict[str, Any], ...] = ()
    confirmed_by: str | None = None
    confirmed_at: dt.datetime | None = None
    confirmation: str | None = None

    def export(self) -> dict[str, Any]:
        """What ``hogo certificate verify`` checks offline: the certificate, its signed note, and a second
        person's signed confirmation if there is one."""
        out: dict[str, Any] = {"certificate": self.certificate, "signature": self.signature}
        if self.confirmation:
            out["confirmation"] = self.confirmation
        return out


@guard.guarded
def erase_records(hogo: Hogo, principal: Principal, file_code: str, record_ids: Sequence[str], *,
                  reason: str | None, purpose: str | None, ctx: RequestContext,
                  event: Event = Event.RECORD_ERASED) -> Certificate:
    """Erase records irrecoverably (a 'delete' grant covering each record, for the declared purpose: the
    same least privilege as deleting it). Returns the signed certificate. ``event``: how the log names
    it (``hogo record delete`` is an erasure too, logged as a delete)."""
    why = _reason(reason)
    ids = sorted(set(record_ids))
    if not ids:
        raise ValidationFailed("name at least one record to erase", field="record_id")
    resume(hogo)
    with hogo.unit_of_work() as db:
        c = guard._open(hogo, db, principal, file_code, purpose, Action.DELETE, ctx)
        rows = db.execute(select(Record.record_id, Record.segment).where(
            Record.file_id == c.row.id, Record.record_id.in_(ids))).all()
        found = {r for r, _ in rows}
        for _rid, segment in rows:
            d = guard._decide(hogo, c, Action.DELETE, fields=(), segment=segment, segment_applies=True)
            if not d.allowed:
                raise guard._deny(hogo, c, event, d, records=ids, fields=())
        missing = [i for i in ids if i not in found]
        if missing:
            # Decided without a segment first, so a refusal is recorded like any other.
            d = guard._decide(hogo, c, Action.DELETE, fields=(), segment=None, segment_applies=False)
            if not d.allowed:
                raise guard._deny(hogo, c, event, d, records=ids, fields=())
            raise NotFound(f"no record {missing[0]!r} in {c.row.code}", code="record_not_found")
        decision = guard._decide(hogo, c, Action.DELETE, fields=(), segment=rows[0][1], segment_applies=True)
        row = db.get(PersonalDataFile, c.row.id)
        assert row is not None
        guard._touch_grants(db, hogo, guard._grants_to_touch(hogo, decision))
        deletion_id = _purge_and_rekey(hogo, db, row, ids, kind="record", reason=why, principal=principal,
                                       ctx=c.ctx, purpose=c.purpose, grants=list(decision.grant_ids), event=event)
    return _finish(hogo, deletion_id)


def _purge_and_rekey(hogo: Hogo, db: Session, row: PersonalDataFile, ids: Sequence[str], *, kind: str, reason: str,
                     principal: Principal | None, ctx: RequestContext, purpose: str | None = None,
                     grants: Sequence[str] = (), rule: dict[str, Any] | None = None,
                     event: Event = Event.RECORD_ERASED) -> int:
    """Step 1, in the caller's transaction: purge the records, re-encrypt what else their key versions
    protect under fresh versions, and write the deletion record and its log entry. Returns its id."""
    # One erasure of a file at a time (PostgreSQL: concurrent erasures would re-encrypt the same rows).
    db.execute(select(PersonalDataFile.id).where(PersonalDataFile.id == row.id).with_for_update())
    db.refresh(row)
    spec = files.load_spec(hogo, row)
    keys = files.file_keys(hogo, db, row.id, row.data_key_version)
    recs = db.scalars(select(Record).where(Record.file_id == row.id, Record.record_id.in_(ids))
                      .with_for_update()).all()
    old_versions = db.scalars(select(RecordVersion).where(RecordVersion.file_id == row.id,
                                                          RecordVersion.record_id.in_(ids))).all()
    requests = db.scalars(select(ApprovalRequest).where(ApprovalRequest.file_id == row.id,
                                                        ApprovalRequest.record_id.in_(ids),
                                                        ApprovalRequest.payload.is_not(None))).all()
    touched = {r.key_version for r in recs} | {v.key_version for v in old_versions}
    touched |= {blob_key_version(r.payload) for r in requests if r.payload is not None}
    touched &= set(keys.versions)
    # An index key shared by several data versions (a file made before buckets) goes with all of them.
    versions: set[int] = set()
    for v in touched:
        versions |= keys.sharing_index(v)
    now = hogo.clock.now()
    workcopies.dispose_for_erasure(hogo, db, row.id, ctx)
    erased_rows = [(r.record_id, r.revision, r.segment, r.blob) for r in recs]
    # Purge the erased records' rows.
    pks = [r.id for r in recs]
    if pks:
        db.execute(delete(RecordIndex).where(RecordIndex.record_pk.in_(pks)))
    db.execute(delete(RecordVersion).where(RecordVersion.file_id == row.id, RecordVersion.record_id.in_(ids)))
    for r in requests:
        r.payload, r.payload_binding = None, None
        if r.status in ("pending", "approved"):
            r.status, r.updated_at = "cancelled", now
            r.outcome = {"cancelled": "record_erased"}
    if pks:
        db.execute(delete(Record).where(Record.id.in_(pks)))
    db.flush()
    moved = _rekey(hogo, db, row, spec, versions, principal=principal, ctx=ctx) if versions else 0
    deletion = DeletionRecord(
        kind=kind, status="purged", file_id=row.id, file_code=row.code, file_name=row.name, record_ids=list(ids),
        record_count=len(recs), fields=list(spec.field_names), reason=reason, retention_rule=rule,
        versions=sorted(versions), ordered_by_id=principal.user_id if principal else None,
        ordered_by=principal.username if principal else "hogo (retention)", created_at=now)
    db.add(deletion)
    db.flush()
    details: dict[str, Any] = {"deletion": deletion.id, "kind": kind, "key_versions": sorted(versions),
                               "reencrypted": moved}
    if grants:
        details["grants"] = list(grants)
    if rule:
        details["retention_rule"] = rule
    if integrity.applies(row.integrity):  # SEC-133(2): the removed versions, as deletes log them
        details.update(integrity.version_details(row.code, erased_rows, deleted=True))
    audit.record(db, now=now, event=event, outcome=Outcome.SUCCESS, ctx=ctx,
                 actor_id=principal.user_id if principal else None,
                 actor_name=principal.username if principal else None, target=f"file:{row.code}",
                 reason=None, details=details, file_code=row.code, purpose=purpose,
                 records=[r for r, *_ in erased_rows], fields=())
    return deletion.id


def _rekey(hogo: Hogo, db: Session, row: PersonalDataFile, spec: Any, versions: set[int], *,
           principal: Principal | None, ctx: RequestContext) -> int:
    """Re-encrypt every ciphertext of the file under ``versions`` (records, their kept previous versions,
    correction values) under fresh versions, a bucket at a time, and re-index the records."""
    bucket = files.bucket_records(hogo)
    indexed = [f.name for f in spec.fields if f.indexed]
    recs = db.scalars(select(Record).where(Record.file_id == row.id, Record.key_version.in_(versions))
                      .order_by(Record.id)).all()
    new_version = files.new_key_version(hogo, db, row.id)
    keys = files.file_keys(hogo, db, row.id, new_version)
    moved: list[Record] = []
    for start in range(0, len(recs), bucket):
        if start:
            new_version = files.new_key_version(hogo, db, row.id)
            keys = files.file_keys(hogo, db, row.id, new_version)
        part = recs[start:start + bucket]
        db.execute(delete(RecordIndex).where(RecordIndex.record_pk.in_([r.id for r in part])))
        index_rows = []
        for r in part:
            values = keys.open_record(r.record_id, r.blob)
            r.key_version, r.blob = keys.seal_record(r.record_id, values)
            index_rows += [{"file_id": row.id, "field": n, "digest": keys.blind_index(n, values[n]),
                            "record_pk": r.id} for n in indexed if n in values]
        if index_rows:
            db.execute(insert(RecordIndex), index_rows)
        moved += part
    for v in db.scalars(select(RecordVersion).where(RecordVersion.file_id == row.id,
                                                    RecordVersion.key_version.in_(versions))):
        v.key_version, v.blob = keys.seal_record(v.record_id, keys.open_record(v.record_id, v.blob))
    for req in db.scalars(select(ApprovalRequest).where(ApprovalRequest.file_id == row.id,
                                                        ApprovalRequest.payload.is_not(None))):
        if req.payload is not None and req.payload_binding and blob_key_version(req.payload) in versions:
            _, req.payload = keys.seal_record(req.payload_binding, keys.open_record(req.payload_binding, req.payload))
    db.flush()
    if moved and integrity.applies(row.integrity):
        audit.record(db, now=hogo.clock.now(), event=Event.RECORDS_REENCRYPTED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=principal.user_id if principal else None,
                     actor_name=principal.username if principal else None, target=f"file:{row.code}",
                     file_code=row.code, records=[r.record_id for r in moved],
                     details={"key_version": new_version, "reason": "erasure", **integrity.version_details(
                         row.code, [(r.record_id, r.revision, r.segment, r.blob) for r in moved])})
    return len(moved)


# ----------------------------------------------------------------------------------- files


def erase_file(hogo: Hogo, actor: Principal, code: str, *, reason: str | None, ctx: RequestContext) -> Certificate:
    """Erase a whole file (its protection manager or the general protection manager: erasing a file is a
    decision about the file, as defining it is, not an access to records). The ledger entry stays,
    marked erased."""
    why = _reason(reason)
    audit_tree.require_anchored(hogo)
    resume(hogo)
    with hogo.unit_of_work(readonly=True) as db:
        row = files.file_by_code(db, code)
        spec = files.load_spec(hogo, row)
        file_id, file_code = row.id, row.code
    try:
        files._may_define(actor, spec.department)
    except Forbidden:
        with hogo.unit_of_work() as db:  # the refusal is recorded, then reported
            audit.record(db, now=hogo.clock.now(), event=Event.FILE_ERASED, outcome=Outcome.DENIED, ctx=ctx,
                         actor_id=actor.user_id, actor_name=actor.username, target=f"file:{file_code}",
                         reason="not_protection_manager")
        raise
    files.move_keys_out_of_database(hogo, file_id)  # keys an older instance kept in the database go too
    with hogo.unit_of_work() as db:
        row = files.file_by_code(db, code)
        if row.erased_at is not None:
            raise Conflict(f"file {row.code!r} is erased already", code="file_erased")
        now = hogo.clock.now()
        # No count of the records here: ordering the erasure costs the same for 1,000 records as for a
        # million, and the keys go next. The purge counts what it deletes (record_count, batch by batch).
        versions = sorted({v for _, v in hogo.keystore.versions(row.id)} | {row.data_key_version})
        row.erased_at = now
        workcopies.dispose_for_erasure(hogo, db, row.id, ctx)
        deletion = DeletionRecord(
            kind="file", status="pending", file_id=row.id, file_code=row.code, file_name=row.name, record_ids=[],
            record_count=0, fields=list(spec.field_names), reason=why, retention_rule=None,
            versions=versions, ordered_by_id=actor.user_id, ordered_by=actor.username, created_at=now)
        db.add(deletion)
        db.flush()
        audit.record(db, now=now, event=Event.FILE_ERASED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=actor.user_id, actor_name=actor.username, target=f"file:{row.code}",
                     details={"deletion": deletion.id, "key_versions": versions})
        deletion_id = deletion.id
    return _finish(hogo, deletion_id)


def purge_file_rows(hogo: Hogo, file_id: int, *, batch: int = 20_000, deletion_id: int | None = None) -> int:
    """Delete every row holding a ciphertext of the file (after its keys are gone), a batch at a time;
    each batch adds what it deleted to the deletion record's count in its own transaction, so a purge
    resumed after a crash still counts every record once."""
    purged = 0
    with hogo.unit_of_work() as db:
        db.execute(delete(RecordIndex).where(RecordIndex.file_id == file_id))
        db.execute(delete(RecordVersion).where(RecordVersion.file_id == file_id))
        db.execute(update(ApprovalRequest).where(ApprovalRequest.file_id == file_id,
                                                 ApprovalRequest.payload.is_not(None))
                   .values(payload=None, payload_binding=None))
        db.execute(update(ApprovalRequest).where(ApprovalRequest.file_id == file_id,
                                                 ApprovalRequest.status.in_(("pending", "approved")))
                   .values(status="cancelled", outcome={"cancelled": "file_erased"}, updated_at=hogo.clock.now()))
    while True:
        with hogo.unit_of_work() as db:
            pks = list(db.scalars(select(Record.id).where(Record.file_id == file_id).limit(batch)))
            if not pks:
                return purged
            db.execute(delete(Record).where(Record.id.in_(pks)))
            if deletion_id is not None:
                db.execute(update(DeletionRecord).where(DeletionRecord.id == deletion_id)
                           .values(record_count=DeletionRecord.record_count + len(pks)))
            purged += len(pks)


# ----------------------------------------------------------------------- finishing, checks


def _finish(hogo: Hogo, deletion_id: int, *, fail_after_destroy: bool = False) -> Certificate:
    """Steps 2 and 3: destroy the keys, check, sign. Idempotent: run again after a crash."""
    with hogo.unit_of_work(readonly=True) as db:
        d = db.get(DeletionRecord, deletion_id)
        if d is None:
            raise NotFound(f"no deletion record {deletion_id}", code="deletion_not_found")
        kind, file_id, versions, status = d.kind, d.file_id, list(d.versions), d.status
    if status == "complete":
        return show(hogo, None, deletion_id)
    if kind == "file":
        destroyed = hogo.keystore.destroy(file_id)
        with hogo.unit_of_work() as db:  # (an older instance's keys, had any stayed in the database)
            db.execute(delete(FileKey).where(FileKey.file_id == file_id))
        hogo.file_keys.pop(file_id, None)
        if fail_after_destroy:
            raise RuntimeError("injected failure after the keys were destroyed")
        purge_file_rows(hogo, file_id, deletion_id=deletion_id)
    else:
        _sweep(hogo, file_id, set(versions))
        destroyed = hogo.keystore.destroy(file_id, versions)
        hogo.file_keys.pop(file_id, None)
        if fail_after_destroy:
            raise RuntimeError("injected failure after the keys were destroyed")
    checks = _checked(hogo, deletion_id)
    key = audit_tree.log_key(hogo)
    with hogo.unit_of_work() as db:
        d = db.get(DeletionRecord, deletion_id)
        assert d is not None
        if d.status == "complete":  # finished by another process meanwhile
            return show(hogo, None, deletion_id)
        now = hogo.clock.now()
        # Key backups made before now still hold the destroyed keys (SEC-151(3) keeps key material apart,
        # not forgetful): the erasure is final for them only once they are disposed of, at the latest when
        # they expire. The certificate says which, rather than claim more than is true.
        held = db.execute(select(Backup.id, Backup.expires_at).where(
            Backup.kind == "keys", Backup.status != "disposed", Backup.created_at <= now)
            .order_by(Backup.created_at)).all()
        cert = {
            "format": CERT_FORMAT, "id": d.id, "instance": key.name, "kind": d.kind,
            "file": {"code": d.file_code, "name": d.file_name}, "record_count": d.record_count,
            "record_ids_sha256": _ids_digest(d.record_ids) if d.kind != "file" else None,
            "fields": list(d.fields), "method": METHOD,
            "algorithms": [ALGORITHMS[ALG_AES_256_GCM], "HMAC-SHA-256"],
            "key_versions_destroyed": sorted(set(d.versions) | set(destroyed)),
            "ordered_by": d.ordered_by, "ordered_at": format_ts(d.created_at), "reason": d.reason,
            "retention_rule": d.retention_rule,
            "confirmed_by": {"by": "hogo", "checks": checks, "at": format_ts(now)},
            "completed_at": format_ts(now),
            "key_backups_holding_destroyed_keys": [{"id": b, "expires_at": format_ts(e)} for b, e in held],
            "final_for_key_backups_by": format_ts(max(e for _, e in held)) if held else format_ts(now),
        }
        data = canonical(cert)
        text = f"{CERT_FORMAT}\n{hashlib.sha256(data).hexdigest()}\n"
        d.certificate = data.decode("utf-8")
        d.signature = notes.sign_note(text, key.name, key.sign, key.public)
        d.status, d.completed_at = "complete", now
        audit.record(db, now=now, event=Event.KEYS_DESTROYED, outcome=Outcome.SUCCESS, ctx=SYSTEM,
                     actor_id=d.ordered_by_id, actor_name=d.ordered_by, target=f"file:{d.file_code}",
                     details={"deletion": d.id, "key_versions": cert["key_versions_destroyed"]})
        audit.record(db, now=now, event=Event.DELETION_CERTIFIED, outcome=Outcome.SUCCESS, ctx=SYSTEM,
                     actor_id=d.ordered_by_id, actor_name=d.ordered_by, target=f"file:{d.file_code}",
                     details={"deletion": d.id, "certificate_sha256": hashlib.sha256(data).hexdigest()})
    return show(hogo, None, deletion_id)


def _sweep(hogo: Hogo, file_id: int, versions: set[int]) -> None:
    """Just before the keys go: a write that read the old current version before the erasure started a
    new one, and committed after it (PostgreSQL, several writers), is moved too, with the file row locked."""
    with hogo.unit_of_work() as db:
        row = db.scalar(select(PersonalDataFile).where(PersonalDataFile.id == file_id).with_for_update())
        if row is None or not versions:
            return
        late = db.scalar(select(func.count()).select_from(Record).where(
            Record.file_id == file_id, Record.key_version.in_(versions))) or 0
        late += db.scalar(select(func.count()).select_from(RecordVersion).where(
            RecordVersion.file_id == file_id, RecordVersion.key_version.in_(versions))) or 0
        late += sum(1 for p in db.scalars(select(ApprovalRequest.payload).where(
            ApprovalRequest.file_id == file_id, ApprovalRequest.payload.is_not(None)))
            if p is not None and blob_key_version(p) in versions)
        if late:
            _rekey(hogo, db, row, files.load_spec(hogo, row), versions, principal=None, ctx=SYSTEM)


def _checked(hogo: Hogo, deletion_id: int) -> dict[str, Any]:
    """``_check``, refusing to go on (no signature) unless every check holds."""
    checks = _check(hogo, deletion_id)
    if not all(v is True or v == 0 for v in checks.values()):
        raise ErasureIncomplete(f"deletion {deletion_id}: hogo's check failed: {checks}")
    return checks


def _check(hogo: Hogo, deletion_id: int) -> dict[str, Any]:
    """hogo's own confirmation: the destroyed keys are absent from the key store and no row holds a
    ciphertext under them (or, for a file, no row of the file remains)."""
    with hogo.unit_of_work(readonly=True) as db:
        d = db.get(DeletionRecord, deletion_id)
        assert d is not None
        left = {v for _, v in hogo.keystore.versions(d.file_id)}
        if d.kind == "file":
            return {
                "keys_absent": not left,
                "records_remaining": db.scalar(select(func.count()).select_from(Record)
                                               .where(Record.file_id == d.file_id)) or 0,
                "index_rows_remaining": db.scalar(select(func.count()).select_from(RecordIndex)
                                                  .where(RecordIndex.file_id == d.file_id)) or 0,
                "previous_versions_remaining": db.scalar(select(func.count()).select_from(RecordVersion)
                                                         .where(RecordVersion.file_id == d.file_id)) or 0,
                "sealed_values_remaining": db.scalar(select(func.count()).select_from(ApprovalRequest).where(
                    ApprovalRequest.file_id == d.file_id, ApprovalRequest.payload.is_not(None))) or 0,
            }
        versions = set(d.versions)
        payloads = [p for p in db.scalars(select(ApprovalRequest.payload).where(
            ApprovalRequest.file_id == d.file_id, ApprovalRequest.payload.is_not(None))) if p is not None]
        return {
            "keys_absent": not (left & versions),
            "records_remaining": db.scalar(select(func.count()).select_from(Record).where(
                Record.file_id == d.file_id, Record.record_id.in_(d.record_ids))) or 0,
            "previous_versions_remaining": db.scalar(select(func.count()).select_from(RecordVersion).where(
                RecordVersion.file_id == d.file_id, RecordVersion.record_id.in_(d.record_ids))) or 0,
            "ciphertexts_under_destroyed_keys": (db.scalar(select(func.count()).select_from(Record).where(
                Record.file_id == d.file_id, Record.key_version.in_(versions))) or 0) + (db.scalar(
                select(func.count()).select_from(RecordVersion).where(
                    RecordVersion.file_id == d.file_id, RecordVersion.key_version.in_(versions))) or 0) + sum(
                1 for p in payloads if blob_key_version(p) in versions),
        }


def resume(hogo: Hogo) -> list[int]:
    """Finish every erasure a crash interrupted (idempotent)."""
    with hogo.unit_of_work(readonly=True) as db:
        open_ids = list(db.scalars(select(DeletionRecord.id).where(DeletionRecord.status != "complete")
                                   .order_by(DeletionRecord.id)))
    for i in open_ids:
        _finish(hogo, i)
    return open_ids


# --------------------------------------------------------------------------- certificates


def _may_see_certificates(actor: Principal) -> None:
    if not (actor.can(Permission.FILE_READ) or actor.can(Permission.AUDIT_READ)):
        raise Forbidden("deletion certificates are for protection managers and auditors", code="forbidden",
                        requirement="ANON-10")


def _view(db: Session, d: DeletionRecord) -> Certificate:
    atts = tuple({"id": a.id, "contractor": a.contractor, "filename": a.filename, "sha256": a.sha256,
                  "size": a.size, "attached_by": a.attached_by, "attached_at": a.attached_at}
                 for a in db.scalars(select(ContractorCertificate).where(ContractorCertificate.deletion_id == d.id)
                                     .order_by(ContractorCertificate.id)))
    return Certificate(d.id, d.kind, d.status, d.file_code, d.file_name, d.record_count, d.created_at,
                       d.completed_at, d.ordered_by, d.reason,
                       json.loads(d.certificate) if d.certificate else None, d.signature, atts,
                       d.confirmed_by, d.confirmed_at, d.confirmation)


def list_certificates(hogo: Hogo, actor: Principal, *, file: str | None = None, limit: int = 200) -> list[Certificate]:
    _may_see_certificates(actor)
    with hogo.unit_of_work(readonly=True) as db:
        q = select(DeletionRecord).order_by(DeletionRecord.id.desc()).limit(max(1, min(limit, 1000)))
        if file:
            q = q.where(DeletionRecord.file_code == file.strip().lower())
        return [_view(db, d) for d in db.scalars(q)]


def show(hogo: Hogo, actor: Principal | None, deletion_id: int) -> Certificate:
    if actor is not None:
        _may_see_certificates(actor)
    with hogo.unit_of_work(readonly=True) as db:
        d = db.get(DeletionRecord, deletion_id)
        if d is None:
            raise NotFound(f"no deletion certificate {deletion_id}", code="deletion_not_found")
        return _view(db, d)


def attach(hogo: Hogo, actor: Principal, deletion_id: int, *, contractor: str, filename: str, content: bytes,
           ctx: RequestContext) -> dict[str, Any]:
    """A contractor's deletion certificate (ANON-10), kept as given with its SHA-256, linked to the
    deletion it attests (the file's protection manager or the general protection manager)."""
    from hogo.domain.text import has_control_chars, nfkc

    name = nfkc(contractor or "").strip()
    if not name or len(name) > 200 or has_control_chars(name):
        raise ValidationFailed("give the contractor's name (--contractor, at most 200 characters)",
                               field="contractor")
    fname = (filename or "certificate").replace("/", "_").replace("\\", "_")[:255]
    if not content:
        raise ValidationFailed("the attached file is empty", field="file")
    if len(content) > MAX_ATTACHMENT:
        raise ValidationFailed(f"the attached file is larger than {MAX_ATTACHMENT // (1024 * 1024)} MiB",
                               field="file")
    with hogo.unit_of_work() as db:
        d = db.get(DeletionRecord, deletion_id)
        if d is None:
            raise NotFound(f"no deletion certificate {deletion_id}", code="deletion_not_found")
        row = db.get(PersonalDataFile, d.file_id)
        assert row is not None
        files._may_define(actor, files.load_spec(hogo, row).department)
        digest = hashlib.sha256(content).hexdigest()
        now = hogo.clock.now()
        att = ContractorCertificate(deletion_id=d.id, contractor=name, filename=fname, sha256=digest,
                                    size=len(content), content=content, attached_by=actor.username, attached_at=now)
        db.add(att)
        db.flush()
        audit.record(db, now=now, event=Event.CERTIFICATE_ATTACHED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=actor.user_id, actor_name=actor.username, target=f"file:{d.file_code}",
                     details={"deletion": d.id, "attachment": att.id, "contractor": name, "sha256": digest})
        return {"id": att.id, "deletion": d.id, "contractor": name, "filename": fname, "sha256": digest,
                "size": len(content)}


def confirm(hogo: Hogo, actor: Principal, deletion_id: int, *, ctx: RequestContext) -> Certificate:
    """A second person confirms a completed erasure (the four-eyes check of 消去証明): the file's protection
    manager, the general protection manager or an auditor, never the one who ordered it (SEC-19). hogo
    runs its check again; the confirmation is a signed note over the certificate's hash, the confirmer
    and the time."""
    with hogo.unit_of_work() as db:
        d = db.get(DeletionRecord, deletion_id)
        if d is None:
            raise NotFound(f"no deletion certificate {deletion_id}", code="deletion_not_found")
        if d.status != "complete" or d.certificate is None:
            raise Conflict(f"deletion {d.id} is not complete yet ({d.status})", code="deletion_not_complete")
        if d.confirmation is not None:
            raise Conflict(f"deletion {d.id} was confirmed already by {d.confirmed_by}", code="already_confirmed")
        if actor.user_id == d.ordered_by_id or actor.username == d.ordered_by:
            raise Forbidden("the person who ordered an erasure does not confirm it", code="own_erasure",
                            requirement="SEC-19")
        row = db.get(PersonalDataFile, d.file_id)
        assert row is not None
        if not actor.can(Permission.AUDIT_READ):
            files._may_define(actor, files.load_spec(hogo, row).department)
        file_code = d.file_code
        digest = hashlib.sha256(d.certificate.encode("utf-8")).hexdigest()
    checks = _checked(hogo, deletion_id)
    key = audit_tree.log_key(hogo)
    with hogo.unit_of_work() as db:
        d = db.get(DeletionRecord, deletion_id)
        assert d is not None
        now = hogo.clock.now()
        text = f"{CONFIRM_FORMAT}\n{digest}\nconfirmed-by {actor.username}\nat {format_ts(now)}\n"
        d.confirmation = notes.sign_note(text, key.name, key.sign, key.public)
        d.confirmed_by, d.confirmed_at = actor.username, now
        audit.record(db, now=now, event=Event.DELETION_CONFIRMED, outcome=Outcome.SUCCESS, ctx=ctx,
                     actor_id=actor.user_id, actor_name=actor.username, target=f"file:{file_code}",
                     details={"deletion": d.id, "checks": checks})
    return show(hogo, None, deletion_id)


class CertificateInvalid(ValueError):
    pass


def verify_certificate(exported: dict[str, Any] | str, public_key_text: str) -> dict[str, Any]:
    """Offline check of an exported certificate with a pinned verifier key: the signed note's signature,
    then the certificate's hash against the note. CertificateInvalid names what is wrong."""
    if isinstance(exported, str):
        try:
            exported = json.loads(exported)
        except json.JSONDecodeError as exc:
            raise CertificateInvalid(f"the certificate file is not JSON ({exc.msg})") from None
    if not isinstance(exported, dict) or not isinstance(exported.get("certificate"), dict) \
            or not isinstance(exported.get("signature"), str):
        raise CertificateInvalid("the file holds no certificate and signature (export one with "
                                 "'hogo certificate show ID --out FILE')")
    try:
        name, public = notes.parse_public_key_text(public_key_text.strip())
        text = notes.open_note(exported["signature"], name, public)
    except notes.CheckpointError as exc:
        raise CertificateInvalid(f"the signature does not verify: {exc}") from None
    lines = text.split("\n")
    if len(lines) != 3 or lines[0] != CERT_FORMAT or lines[2] != "":
        raise CertificateInvalid(f"the signed note is not a {CERT_FORMAT} note")
    cert = exported["certificate"]
    digest = hashlib.sha256(canonical(cert)).hexdigest()
    if digest != lines[1]:
        raise CertificateInvalid("the certificate's content does not match its signature (changed after signing)")
    if cert.get("format") != CERT_FORMAT:
        raise CertificateInvalid("the certificate names another format")
    confirmed_by = None
    if exported.get("confirmation") is not None:
        try:
            ctext = notes.open_note(str(exported["confirmation"]), name, public)
        except notes.CheckpointError as exc:
            raise CertificateInvalid(f"the confirmation's signature does not verify: {exc}") from None
        clines = ctext.split("\n")
        if len(clines) != 5 or clines[0] != CONFIRM_FORMAT or not clines[2].startswith("confirmed-by "):
            raise CertificateInvalid(f"the confirmation is not a {CONFIRM_FORMAT} note")
        if clines[1] != digest:
            raise CertificateInvalid("the confirmation is of another certificate")
        confirmed_by = clines[2].removeprefix("confirmed-by ")
    return {"ok": True, "id": cert.get("id"), "file": (cert.get("file") or {}).get("code"),
            "record_count": cert.get("record_count"), "completed_at": cert.get("completed_at"), "sha256": digest,
            "key": name, "confirmed_by": confirmed_by}


# ------------------------------------------------------------------------------- retention


@dataclasses.dataclass(frozen=True)
class DueFile:
    file: str
    name: str
    due: int
    rule: dict[str, Any]


def _retention_files(hogo: Hogo, actor: Principal | None) -> list[PersonalDataFile]:
    with hogo.unit_of_work(readonly=True) as db:
        rows = list(db.scalars(select(PersonalDataFile).where(PersonalDataFile.erased_at.is_(None))
                               .order_by(PersonalDataFile.code)))
        db.expunge_all()
    if actor is None:
        return rows
    actor.require(Permission.FILE_DEFINE)
    if Role.GENERAL_PROTECTION_MANAGER in actor.role_set:
        return rows
    depts = {g.department for g in actor.roles if g.role is Role.PROTECTION_MANAGER}
    return [r for r in rows if files.load_spec(hogo, r).department in depts]


def retention_run(hogo: Hogo, actor: Principal | None = None, *, dry_run: bool = False,
                  ctx: RequestContext | None = None, batch: int | None = None,
                  _fail_after_batches: int | None = None) -> dict[str, Any]:
    """Dispose of records past their retention (``records.dispose_after`` before today). ``dry_run``:
    counts per file only, nothing erased, no personal data. Otherwise the due records of each file are
    erased a bucket group at a time, each batch with its own certificate. ``actor`` None: the daily job
    (every file); a person: the files they may define (a protection manager's department, or all for
    the general protection manager)."""
    ctx = ctx or SYSTEM
    today = hogo.clock.now().date()
    if not dry_run:
        audit_tree.require_anchored(hogo)
        resume(hogo)
    rows = _retention_files(hogo, actor)
    due: list[DueFile] = []
    with hogo.unit_of_work(readonly=True) as db:
        for r in rows:
            n = db.scalar(select(func.count()).select_from(Record).where(
                Record.file_id == r.id, Record.dispose_after.is_not(None), Record.dispose_after < today)) or 0
            if n:
                due.append(DueFile(r.code, r.name, int(n), retention_rules.rule_of(files.load_spec(hogo, r))))
    result: dict[str, Any] = {"dry_run": dry_run, "date": today.isoformat(),
                              "files": [dataclasses.asdict(d) for d in due], "certificates": [], "erased": 0}
    if due or actor is not None:  # the daily job finding nothing due is housekeeping, not a disposal
        with hogo.unit_of_work() as db:
            audit.record(db, now=hogo.clock.now(), event=Event.RETENTION_RUN, outcome=Outcome.SUCCESS, ctx=ctx,
                         actor_id=actor.user_id if actor else None, actor_name=actor.username if actor else None,
                         target="retention", details={"dry_run": dry_run, "files": {d.file: d.due for d in due}})
    if dry_run:
        return result
    size = batch or files.bucket_records(hogo)
    done_batches = 0
    for d in due:
        while True:
            with hogo.unit_of_work() as db:
                row = files.file_by_code(db, d.file)
                ids = list(db.scalars(select(Record.record_id).where(
                    Record.file_id == row.id, Record.dispose_after.is_not(None), Record.dispose_after < today)
                    .order_by(Record.key_version, Record.id).limit(size)))
                if not ids:
                    break
                rule = {**d.rule, "run_date": today.isoformat()}
                deletion_id = _purge_and_rekey(
                    hogo, db, row, ids, kind="retention",
                    reason=f"保存期間の満了による廃棄 (retention period of {d.rule['retention_days']} days ended)",
                    principal=actor, ctx=ctx, rule=rule)
            if _fail_after_batches is not None and done_batches >= _fail_after_batches:
                raise RuntimeError("injected failure mid-way through a disposal")
            cert = _finish(hogo, deletion_id)
            result["certificates"].append(cert.id)
            result["erased"] += cert.record_count
            done_batches += 1
    return result
