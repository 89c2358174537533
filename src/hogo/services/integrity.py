"""Record versions of integrity-2 files, committed into the signed log (SEC-133(2), SEC-134(1)).

Information of integrity 2 (要保全情報) needs an electronic signature that a verifier can check. hogo
does not sign each record with a key of its own: every write of a record of an integrity-2 file —
create, update, delete, import, and the re-encryption of a key rotation, which stores a new version —
puts the SHA-256 of the record's *stored version* into the details of the log entry that records the
write, in the same transaction. That entry is a leaf of the log's Merkle tree (RFC 9162), and the
tree's root is signed with the log's Ed25519 key in every checkpoint. So one signature (a checkpoint)
covers every record version written before it, and the verification needs only the log's public key,
which verifiers pin through the channel described in the README (SEC-134(1)).

The hashed bytes are the stored version, never the plaintext (a hash of a low-entropy value such as a
My Number or a birth date could be brute-forced from the log)::

    SHA-256( "hogo-record-version/1" ‖ len ‖ file code ‖ len ‖ record ID ‖ len ‖ revision (decimal)
             ‖ len ‖ segment ("" when none) ‖ len ‖ blob )          (each len: 4 bytes, big-endian)

The blob holds the per-field AES-256-GCM ciphertexts with random nonces, each bound by its associated
data to the file, record, field and key version, so the hash discloses nothing about the values.

An entry's details then carry ``{"versions": {"revision": [n, …], "sha256": [hex, …]}}``, one item per
record in the entry's ``records``, in that order (with ``"deleted": true`` for a delete: the hashes of
the versions that were removed).

``verify_record`` (``hogo record verify``, ``GET /api/v1/files/{code}/records/{id}/verify``) goes through
the guard like a read (a ``read`` grant for the purpose, recorded as ``data:record:verify``, allowed or
denied), then: finds the latest log entry that wrote the record, recomputes the stored version's hash
and compares it with the logged one (read from the entry's signed bytes, not from the searchable
details column), checks that the entry's leaf hash is the hash of those bytes, checks the entry's
inclusion proof against the latest signed checkpoint (signing one first when none covers it yet), and
checks the checkpoint's signature with the log's public key. Nothing is decrypted.

The latest entry is found through the record-reference index (``audit_record_refs``), then the file's
write entries after it are read themselves (at most ``LATER_WRITES_CAP``): someone who rewrote the
database could otherwise put an older stored version back and drop the references of the writes since.
Their ``file_code`` and ``event`` columns, which that read relies on, are checked against the signed
entries by ``hogo audit verify``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from hogo.bootstrap import Hogo
from hogo.crypto import checkpoint as notes
from hogo.crypto import registry
from hogo.domain import merkle
from hogo.domain.auditlog import EntryFormatError, decode
from hogo.domain.events import Event, Outcome
from hogo.domain.files import Action
from hogo.domain.record_versions import VERSION_TAG, hasher
from hogo.errors import NotFound
from hogo.services import audit_tree
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.db import read_snapshot
from hogo.store.models import AuditEvent, AuditRecordRef

DETAILS_KEY = "versions"
_HASH = registry.get("sha-256")
if _HASH.digest != "sha256":  # pragma: no cover - the registry and this module must agree
    raise RuntimeError("the registry's record-version hash is not SHA-256")
_SIGNATURE = registry.get("ed25519")
# Entries that only read a record never carry its version: skipped when looking for the latest write.
_READ_EVENTS = (Event.RECORD_READ.value, Event.RECORD_REVEALED.value, Event.RECORD_SEARCHED.value,
                Event.RECORD_VERIFIED.value)
_PAGE = 50
LATER_WRITES_CAP = 20_000  # the file's write entries after the one found that verify reads at most

OK, CHANGED, NOT_INTEGRITY_2, NOT_LOGGED, UNVERIFIABLE = "ok", "changed", "not_integrity_2", "not_logged", \
    "unverifiable"


def applies(integrity: int) -> bool:
    """Whether a file's records are committed into the log (integrity 2, 要保全情報)."""
    return integrity >= 2


_hasher = hasher  # domain/record_versions.py (an import's sealing process hashes beside the blobs)


def version_hash(file_code: str, record_id: str, revision: int, segment: str | None, blob: bytes) -> str:
    """The SHA-256 (hex) of a record's stored version (never of its plaintext)."""
    return _hasher(file_code)(record_id, revision, segment, bytes(blob))


def version_details(file_code: str, rows: Sequence[tuple[str, int, str | None, bytes]], *,
                    deleted: bool = False, hashes: Sequence[str] | None = None) -> dict[str, Any]:
    """The details to add to a write's log entry, for the records (ID, revision, segment, blob) it names in
    its ``records``, in the same order: ``{"versions": {"revision": [...], "sha256": [...]}}`` (lists,
    not a map by ID: an import batch's entry encodes several times faster), with ``"deleted": true`` for
    a delete."""
    one = _hasher(file_code)
    v: dict[str, Any] = {"revision": [r[1] for r in rows],
                         "sha256": list(hashes) if hashes is not None else
                         [one(rid, rev, seg, blob) for rid, rev, seg, blob in rows]}
    if deleted:
        v["deleted"] = True
    return {DETAILS_KEY: v}


def _logged_version(records: Sequence[str], versions: Any, record_id: str) -> dict[str, Any] | None:
    """This record's logged version in an entry (its position in the entry's records), or None."""
    if not isinstance(versions, dict) or record_id not in records:
        return None
    i = list(records).index(record_id)
    revisions, hashes = versions.get("revision"), versions.get("sha256")
    if not isinstance(revisions, list) or not isinstance(hashes, list) or i >= min(len(revisions), len(hashes)):
        return None
    return {"revision": revisions[i], "sha256": hashes[i], "deleted": bool(versions.get("deleted"))}


# ------------------------------------------------------------------------------------ verification


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclasses.dataclass
class VerifyReport:
    file: str
    record_id: str
    classification: str
    status: str  # ok | changed | not_integrity_2 | not_logged | unverifiable
    message: str
    checks: list[Check] = dataclasses.field(default_factory=list)
    seq: int | None = None  # the log entry that wrote the version checked against
    event: str | None = None
    logged_revision: int | None = None
    stored_revision: int | None = None
    logged_sha256: str | None = None
    stored_sha256: str | None = None
    deleted: bool = False
    checkpoint_size: int | None = None
    checkpoint: str | None = None  # the signed note the entry was proven against
    leaf_hash: str | None = None
    proof: list[str] = dataclasses.field(default_factory=list)
    public_key: str | None = None
    algorithms: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ok"] = self.ok
        d["checks"] = [c.as_dict() for c in self.checks]
        return d


def _latest_write(hogo: Hogo, file_code: str, record_id: str) -> tuple[int, bytes | None, bytes, Any] | None:
    """The latest entry whose signed bytes carry a version of the record: (seq, entry, leaf hash, version)."""
    before: int | None = None
    with read_snapshot(hogo.engine) as conn:
        while True:
            q = (select(AuditEvent.seq, AuditEvent.entry, AuditEvent.leaf_hash)
                 .join(AuditRecordRef, AuditRecordRef.seq == AuditEvent.seq)
                 .where(AuditRecordRef.file_code == file_code, AuditRecordRef.record_id == record_id,
                        AuditEvent.event.not_in(_READ_EVENTS)))
            if before is not None:
                q = q.where(AuditEvent.seq < before)
            rows = conn.execute(q.order_by(AuditEvent.seq.desc()).limit(_PAGE)).all()
            if not rows:
                return None
            for seq, data, leaf in rows:
                if data is None:  # the payload expired (retention): cannot say what it held
                    return int(seq), None, bytes(leaf), None
                try:
                    _, e = decode(bytes(data))
                except EntryFormatError:
                    return int(seq), bytes(data), bytes(leaf), None
                versions = e.details.get(DETAILS_KEY) if isinstance(e.details, dict) else None
                logged = _logged_version(e.records, versions, record_id) if e.file == file_code else None
                if logged is not None:
                    return int(seq), bytes(data), bytes(leaf), logged
            before = int(rows[-1][0])


def _later_write(hogo: Hogo, file_code: str, record_id: str, after: int
                 ) -> tuple[tuple[int, bytes, bytes, dict[str, Any]] | None, int, bool]:
    """The last write of the record after entry ``after`` that the record-reference index does not lead
    to, found by reading the file's later write entries themselves (their ``file_code`` and ``event``
    columns are checked against the signed entries by ``hogo audit verify``): (that entry or None, entries
    read, whether all were read — at most ``LATER_WRITES_CAP``)."""
    needle = b'"' + record_id.encode() + b'"'
    last: tuple[int, bytes, bytes, dict[str, Any]] | None = None
    scanned = 0
    with read_snapshot(hogo.engine) as conn:
        q = (select(AuditEvent.seq, AuditEvent.entry, AuditEvent.leaf_hash)
             .where(AuditEvent.file_code == file_code, AuditEvent.seq > after,
                    AuditEvent.event.not_in(_READ_EVENTS), AuditEvent.entry.is_not(None))
             .order_by(AuditEvent.seq).limit(LATER_WRITES_CAP + 1))
        for seq, stored, leaf in conn.execution_options(yield_per=500).execute(q):
            scanned += 1
            if scanned > LATER_WRITES_CAP:
                return last, LATER_WRITES_CAP, False
            data = bytes(stored or b"")
            if needle not in data:
                continue
            try:
                _, e = decode(data)
            except EntryFormatError:
                continue
            versions = e.details.get(DETAILS_KEY) if isinstance(e.details, dict) else None
            logged = _logged_version(e.records, versions, record_id) if e.file == file_code else None
            if logged is not None:
                last = (int(seq), data, bytes(leaf), logged)
    return last, scanned, True


def check_record(hogo: Hogo, file_code: str, classification: str, integrity: int, record_id: str,
                 stored: tuple[int, str | None, bytes] | None) -> VerifyReport:
    """The verification itself, on a record already read (``stored``: revision, segment, blob; None when
    the record does not exist). No access control here: ``verify_record`` is the guarded entry point."""
    rep = VerifyReport(file_code, record_id, classification, UNVERIFIABLE, "")
    rep.algorithms = {"version_hash": _HASH.name, "checkpoint_signature": _SIGNATURE.name}
    if not applies(integrity):
        rep.status = NOT_INTEGRITY_2
        rep.message = (f"{file_code} is not an integrity-2 file ({classification}): its record versions are not "
                       "committed into the signed log, so there is nothing to verify")
        return rep
    if stored is not None:
        rep.stored_revision = stored[0]
        rep.stored_sha256 = version_hash(file_code, record_id, stored[0], stored[1], stored[2])
    found = _latest_write(hogo, file_code, record_id)
    if found is None:
        rep.status = NOT_LOGGED if stored is not None else UNVERIFIABLE
        rep.message = ("no log entry carries a version of this record (written before the file became integrity "
                       "2, or inserted into the database directly)" if stored is not None else
                       "no such record, and the log holds no version of it")
        rep.checks.append(Check("logged version", False, rep.message))
        return rep
    seq, data, leaf, version = found
    if data is None or not isinstance(version, dict):
        rep.seq, rep.leaf_hash = seq, leaf.hex()
        rep.message = f"log entry {seq}, the latest write of this record, has no readable payload (expired)"
        rep.checks.append(Check("logged version", False, rep.message))
        return rep
    # 0. No later write of the record hides from the record-reference index (a record put back to an
    #    older version, with the references of the writes since dropped, would otherwise verify).
    later, scanned, complete = _later_write(hogo, file_code, record_id, seq)
    index_ok = later is None
    if later is not None:
        index_detail = (f"log entry {later[0]} wrote this record after entry {seq}, but the record-reference index "
                        "does not lead to it: the database was altered (run hogo audit verify)")
        seq, data, leaf, version = later
    else:
        index_detail = (f"none of the file's {scanned} later write(s) names this record"
                        + ("" if complete else f" (only the first {scanned} were read)"))
    rep.seq, rep.leaf_hash = seq, leaf.hex()
    _, entry = decode(data)
    rep.event = entry.event
    rep.logged_revision = version.get("revision")
    rep.logged_sha256 = version.get("sha256")
    rep.deleted = bool(version.get("deleted"))
    # 1. The stored version against the logged one.
    if rep.deleted:
        same = stored is None
        rep.checks.append(Check("stored version", same, "deleted, as the log says" if same else
                                "the log says the record was deleted, yet it is in the database"))
    elif stored is None:
        same = False
        rep.checks.append(Check("stored version", False, "the record is missing from the database, "
                                                          f"the log's latest write (entry {seq}) did not delete it"))
    else:
        same = rep.logged_sha256 == rep.stored_sha256 and rep.logged_revision == rep.stored_revision
        rep.checks.append(Check("stored version", same, f"SHA-256 of the stored version (revision "
                                f"{rep.stored_revision}) {'equals' if same else 'differs from'} the one logged "
                                f"in entry {seq} (revision {rep.logged_revision})"))
    # 2. The entry's bytes are the leaf.
    leaf_ok = merkle.leaf_hash(data) == leaf
    rep.checks.append(Check("log entry", leaf_ok, f"entry {seq} hashes to its leaf" if leaf_ok else
                            f"entry {seq} does not hash to its stored leaf (the log was altered)"))
    # 3. The leaf is in a signed checkpoint, and 4. the checkpoint's signature is the log key's.
    key = audit_tree.log_key(hogo)
    rep.public_key = key.verifier_key
    with hogo.engine.connect() as conn:
        last = audit_tree.latest_checkpoint(conn)
    if last is None or last.size <= seq:
        last = audit_tree.checkpoint(hogo)
    rep.checkpoint, rep.checkpoint_size = last.note, last.size
    try:
        cp = notes.verify_note(last.note, key.name, key.public, origin=key.name)
        sig_ok = cp.size == last.size
        sig_detail = f"checkpoint of size {cp.size} is signed by {key.name} ({_SIGNATURE.name})"
    except notes.CheckpointError as exc:
        cp, sig_ok, sig_detail = None, False, f"the checkpoint's signature does not verify: {exc}"
    rep.checks.append(Check("checkpoint signature", sig_ok, sig_detail))
    proof_ok = False
    if cp is not None:
        with read_snapshot(hogo.engine) as conn:
            proof = audit_tree.TreeReader(conn, hogo.tree_cache).inclusion_proof(seq, cp.size)
        rep.proof = audit_tree.to_hex(proof)
        proof_ok = merkle.verify_inclusion(seq, cp.size, leaf, proof, cp.root)
    rep.checks.append(Check("inclusion proof", proof_ok, f"entry {seq} is in the signed tree of size "
                            f"{rep.checkpoint_size}" if proof_ok else f"entry {seq} is not proven in the signed tree"))
    rep.checks.append(Check("later writes", index_ok, index_detail))
    log_ok = leaf_ok and sig_ok and proof_ok
    if same and log_ok and index_ok:
        rep.status = OK
        rep.message = (f"unchanged since log entry {seq} ({entry.event})" if not rep.deleted else
                       f"deleted at log entry {seq}, and still absent")
    elif not log_ok or (same and not index_ok):
        rep.status = UNVERIFIABLE
        rep.message = "the log itself does not verify; run hogo audit verify"
    else:
        rep.status = CHANGED
        rep.message = f"the record was changed outside hogo after log entry {seq} ({entry.event})"
    return rep


def verify_record(hogo: Hogo, principal: Principal, file_code: str, record_id: str, *, purpose: str | None,
                  ctx: RequestContext) -> VerifyReport:
    """SEC-133(2): prove that a record has not changed since it was written (see the module docstring).
    Needs a ``read`` grant on the record for ``purpose``; the verification is recorded like any access."""
    from hogo.services import guard

    return guard.guarded(_verify)(hogo, principal, file_code, record_id, purpose=purpose, ctx=ctx)


def _verify(hogo: Hogo, principal: Principal, file_code: str, record_id: str, *, purpose: str | None,
            ctx: RequestContext) -> VerifyReport:
    from hogo.services import guard

    with hogo.unit_of_work(readonly=True) as db:
        c = guard._open(hogo, db, principal, file_code, purpose, Action.READ, ctx)
        rec = guard._record_for_read(db, c.row.id, record_id)
        d = guard._decide(hogo, c, Action.READ, fields=None, segment=rec.segment if rec else None)
        if not d.allowed:
            raise guard._deny(hogo, c, Event.RECORD_VERIFIED, d, records=[record_id], fields=())
    classification = f"C{c.row.confidentiality}-I{c.row.integrity}-A{c.row.availability}"
    stored = None if rec is None else (int(rec.revision), rec.segment, bytes(rec.blob))
    rep = check_record(hogo, c.row.code, classification, c.row.integrity, record_id, stored)
    missing = stored is None and rep.seq is None and rep.status == UNVERIFIABLE  # never existed, as far as known
    details: dict[str, Any] = {"result": "not_found" if missing else rep.status, "entry": rep.seq,
                               "checkpoint_size": rep.checkpoint_size}
    outcome = Outcome.SUCCESS if rep.status in (OK, NOT_INTEGRITY_2) else Outcome.FAILURE
    with hogo.unit_of_work() as db:
        guard._record_access(db, hogo, c, Event.RECORD_VERIFIED, outcome, records=[record_id], fields=(),
                             decision=d, reason=None if outcome is Outcome.SUCCESS else details["result"],
                             extra=details)
    if missing:
        raise NotFound(f"no record {record_id!r} in {c.row.code}", code="record_not_found")
    return rep


__all__ = ["VERSION_TAG", "VerifyReport", "applies", "check_record", "verify_record", "version_details",
           "version_hash"]
