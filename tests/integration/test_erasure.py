"""Irrecoverable deletion (crypto-shredding), deletion certificates and retention, on real SQLite and
PostgreSQL (ANON-10, SEC-50, MN-5d, MN-3c)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import stat

import pytest
from sqlalchemy import func, select, text

from hogo.bootstrap import build
from hogo.crypto.keys import SealError
from hogo.domain.events import Event
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import erasure, files, grants, guard
from hogo.store.models import AuditEvent, FileKey, PersonalDataFile, Record, RecordIndex, RecordVersion
from hogo.store.models_erasure import DeletionRecord
from support import CTX, Instance, Org, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
MNS = ["123456789018", "111111111118", "222222222224", "333333333331", "444444444448", "555555555553"]


def _mn(i: int) -> str:
    from hogo.domain.identifiers import my_number_check_digit

    body = f"{i:011d}"
    return body + str(my_number_check_digit(body))


@pytest.fixture
def org(inst: Instance) -> Org:
    inst.hogo.extras["bucket_records"] = 2  # small buckets, so a few records span several key versions
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito",
                        actions=["read", "create", "update", "delete", "reveal"], purposes=[P1], ctx=CTX)
    return o


def _create(org: Org, n: int) -> list[str]:
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    return [guard.create_record(hogo, ito, FILE, {"employee_no": f"E{i:04d}", "name": f"社員 {i}",
                                                  "my_number": _mn(i + 1), "department": "KYUYO"},
                                purpose=P1, ctx=CTX).record_id for i in range(n)]


def _file_id(org: Org) -> int:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        return int(db.scalar(select(PersonalDataFile.id).where(PersonalDataFile.code == FILE)))


def _snapshot(org: Org) -> dict[str, tuple[int, bytes]]:
    """What a backup taken now would hold of the records: their ciphertexts and key versions."""
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        return {r: (v, bytes(b)) for r, v, b in db.execute(
            select(Record.record_id, Record.key_version, Record.blob).where(Record.file_id == _file_id(org)))}


def _opens(org: Org, rid: str, version: int, blob: bytes) -> bool:
    hogo = org.inst.hogo
    hogo.file_keys.clear()  # a fresh process: only what the key store holds now
    try:
        with hogo.unit_of_work(readonly=True) as db:
            keys = files.file_keys(hogo, db, _file_id(org))
        return bool(keys.open_record(rid, blob))
    except (SealError, Conflict):
        return False


def test_keys_live_in_the_key_store_not_the_database(org: Org):
    """The database alone is not decryptable: no wrapped key in it; the key store is 0600 beside the KEK."""
    _create(org, 3)
    hogo = org.inst.hogo
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(FileKey)) == 0
    path = hogo.keystore.path
    assert path.parent == hogo.settings.keys_dir and stat.S_IMODE(path.stat().st_mode) == 0o600
    # Buckets of two: three records span two key versions, each with its own data and index key.
    assert {(p, v) for p, v in hogo.keystore.versions(_file_id(org))} == {("data", 1), ("index", 1), ("data", 2),
                                                                          ("index", 2)}


def test_keys_of_an_older_instance_move_to_the_key_store(org: Org):
    """An instance made before the key store kept wrapped keys in file_keys: they move out at first use
    (idempotently) and the table is left empty."""
    hogo = org.inst.hogo
    ids = _create(org, 1)
    fid = _file_id(org)
    wrapped = hogo.keystore.get(fid)
    with hogo.unit_of_work() as db:
        for k in wrapped:
            db.add(FileKey(file_id=fid, purpose=k.purpose, version=k.version, algorithm="AES-256-GCM",
                           provider=k.provider, kek_id=k.kek_id, wrapped=k.wrapped, created_at=hogo.clock.now()))
    hogo.keystore.destroy(fid, remember=False)  # as an instance from before the key store had it
    hogo.file_keys.clear()
    assert guard.read_record(hogo, org.p("clerk.ito"), FILE, ids[0], purpose=P1, ctx=CTX).values["name"] == "社員 0"
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(FileKey)) == 0
    assert files.move_keys_out_of_database(hogo) == 0


def test_erased_record_is_gone_even_from_an_earlier_backup_SEC_50_MN_5d(org: Org):
    """Erasing a record: reading it fails, its My Number's blind-index lookup finds nothing, its key
    version is gone from the key store, and a copy of the database taken before cannot decrypt it with
    the current key store; the other records still read."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    ids = _create(org, 4)  # v1: ids[0], ids[1]; v2: ids[2], ids[3]
    backup = _snapshot(org)
    assert backup[ids[0]][0] == 1 and backup[ids[2]][0] == 2
    cert = erasure.erase_records(hogo, ito, FILE, [ids[0]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    assert cert.status == "complete" and cert.record_count == 1
    with pytest.raises(NotFound):
        guard.read_record(hogo, ito, FILE, ids[0], purpose=P1, ctx=CTX)
    assert guard.find_records(hogo, ito, FILE, {"my_number": _mn(1)}, purpose=P1, ctx=CTX) == []
    assert ("data", 1) not in hogo.keystore.versions(_file_id(org))
    assert ("index", 1) not in hogo.keystore.versions(_file_id(org))
    # The earlier backup with the current key store: the erased record (and its bucket's old ciphertexts)
    # cannot be opened; a record of another bucket still can.
    assert not _opens(org, ids[0], *backup[ids[0]])
    assert not _opens(org, ids[1], *backup[ids[1]])
    assert _opens(org, ids[2], *backup[ids[2]])
    # Live: the bucket-mate was re-encrypted under a fresh version and still reads and is still found.
    assert guard.read_record(hogo, ito, FILE, ids[1], purpose=P1, ctx=CTX).values["name"] == "社員 1"
    assert [r.record_id for r in guard.find_records(hogo, ito, FILE, {"my_number": _mn(2)}, purpose=P1,
                                                    ctx=CTX)] == [ids[1]]
    assert guard.read_record(hogo, ito, FILE, ids[3], purpose=P1, ctx=CTX).values["name"] == "社員 3"
    # The certificate: what, how, who; never the My Number, a name or the record ID itself (MN-3c).
    body = json.dumps(cert.certificate, ensure_ascii=False)
    assert cert.certificate["method"].startswith("crypto-shredding") and cert.certificate["ordered_by"] == "clerk.ito"
    assert cert.certificate["key_versions_destroyed"] == [1]
    assert cert.certificate["confirmed_by"]["checks"]["keys_absent"] is True
    assert _mn(1) not in body and "社員 0" not in body and ids[0] not in body
    # Logged first, naming the record, never values.
    with hogo.unit_of_work(readonly=True) as db:
        ev = db.scalars(select(AuditEvent).where(AuditEvent.event == Event.RECORD_ERASED.value)).one()
        assert ids[0] in ev.entry.decode("utf-8", "replace") if isinstance(ev.entry, bytes) else True
    assert _mn(1).encode() not in hogo.keystore.raw_bytes()


def test_an_earlier_sqlite_file_copy_cannot_decrypt_the_erased_record(org: Org, tmp_path):
    """The literal backup: a copy of the SQLite file taken before the erasure, opened with the instance's
    current key store, does not give the erased record back."""
    hogo = org.inst.hogo
    if not hogo.settings.is_sqlite:
        pytest.skip("a file copy is the SQLite form of a backup (the snapshot test covers PostgreSQL)")
    ids = _create(org, 3)
    src = hogo.settings.database_url.removeprefix("sqlite:///")
    copy = tmp_path / "backup.db"
    with sqlite3.connect(src) as live, sqlite3.connect(copy) as out:  # a consistent copy of the file
        live.backup(out)
    erasure.erase_records(hogo, org.p("clerk.ito"), FILE, [ids[0]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    old = build(hogo.settings.with_(database_url=f"sqlite:///{copy}"), clock=org.inst.clock)
    try:
        with old.unit_of_work(readonly=True) as db:
            fid = _file_id(org)
            rows = {r: (v, bytes(b)) for r, v, b in db.execute(
                select(Record.record_id, Record.key_version, Record.blob).where(Record.file_id == fid))}
            assert ids[0] in rows  # the backup still holds the ciphertext …
            keys = files.file_keys(old, db, fid)
        with pytest.raises(SealError):  # … but no key opens it any more
            keys.open_record(ids[0], rows[ids[0]][1])
        assert keys.open_record(ids[2], rows[ids[2]][1])["name"] == "社員 2"  # another bucket's record
    finally:
        old.close()


def test_erasure_covers_previous_versions_and_sealed_correction_values(org: Org):
    """record_versions and the sealed values of correction requests are erased with the record; another
    record's pending correction in the same bucket is re-encrypted and still applies."""
    from hogo.services import corrections
    from hogo.store.models import ApprovalRequest

    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    ids = _create(org, 2)
    # A correction of ids[0], applied (keeps its previous version), and one of ids[1], pending.
    pm = org.p("pm.takahashi")
    r0 = corrections.request_correction(hogo, ito, FILE, ids[0], {"name": "訂正 太郎"}, reason="誤記",
                                        purpose=P1, ctx=CTX)
    from hogo.services import approvals

    approvals.decide(hogo, pm, r0.id, approve=True, reason=None, ctx=CTX)
    corrections.request_correction(hogo, ito, FILE, ids[1], {"name": "訂正 花子"}, reason="誤記", purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(RecordVersion)) == 1
    erasure.erase_records(hogo, ito, FILE, [ids[0]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(RecordVersion)) == 0
        reqs = {r.record_id: r for r in db.scalars(select(ApprovalRequest))}
        assert reqs[ids[0]].payload is None
        assert reqs[ids[1]].payload is not None and reqs[ids[1]].status == "pending"
        pending_id = reqs[ids[1]].id
    approvals.decide(hogo, pm, pending_id, approve=True, reason=None, ctx=CTX)
    assert guard.read_record(hogo, ito, FILE, ids[1], purpose=P1, ctx=CTX).values["name"] == "訂正 花子"


def test_erasure_needs_a_delete_grant_and_a_reason_without_personal_data(org: Org):
    hogo = org.inst.hogo
    ids = _create(org, 1)
    active = org.p("clerk.tanaka")
    with pytest.raises(Forbidden):
        erasure.erase_records(hogo, active, FILE, [ids[0]], reason="削除", purpose=P1, ctx=CTX)
    with pytest.raises(ValidationFailed) as e:
        erasure.erase_records(hogo, org.p("clerk.ito"), FILE, [ids[0]], reason=f"番号 {MNS[0]} の削除",
                              purpose=P1, ctx=CTX)
    assert e.value.field == "reason"
    with pytest.raises(ValidationFailed):
        erasure.erase_records(hogo, org.p("clerk.ito"), FILE, [ids[0]], reason="  ", purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(Record)) == 1
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == Event.RECORD_ERASED.value, AuditEvent.outcome == "denied")) == 1


def test_file_erase_destroys_every_key_and_purges_every_row(org: Org):
    hogo = org.inst.hogo
    ids = _create(org, 5)
    backup = _snapshot(org)
    fid = _file_id(org)
    with pytest.raises(Forbidden):
        erasure.erase_file(hogo, org.p("clerk.ito"), FILE, reason="廃止", ctx=CTX)
    cert = erasure.erase_file(hogo, org.p("pm.takahashi"), FILE, reason="事務の廃止", ctx=CTX)
    assert cert.kind == "file" and cert.record_count == 5 and cert.status == "complete"
    assert hogo.keystore.versions(fid) == set()
    assert cert.certificate["key_versions_destroyed"] == [1, 2, 3]
    with hogo.unit_of_work(readonly=True) as db:
        for model in (Record, RecordIndex, RecordVersion):
            assert db.scalar(select(func.count()).select_from(model).where(model.file_id == fid)) == 0
        assert db.get(PersonalDataFile, fid).erased_at is not None  # the ledger entry stays, marked
    assert all(not _opens(org, r, *backup[r]) for r in ids)
    with pytest.raises(Conflict) as e:
        guard.create_record(hogo, org.p("clerk.ito"), FILE, {"employee_no": "E9", "name": "x", "my_number": MNS[0],
                                                             "department": "KYUYO"}, purpose=P1, ctx=CTX)
    assert e.value.code == "file_erased"
    with pytest.raises(Conflict):
        erasure.erase_file(hogo, org.p("pm.takahashi"), FILE, reason="again", ctx=CTX)


def test_certificate_verifies_offline_and_a_tampered_one_is_refused_ANON_10(org: Org):
    from hogo.services import audit_tree

    hogo = org.inst.hogo
    ids = _create(org, 1)
    cert = erasure.erase_records(hogo, org.p("clerk.ito"), FILE, ids, reason="本人からの削除請求", purpose=P1, ctx=CTX)
    key = audit_tree.log_key(hogo).verifier_key
    exported = cert.export()
    ok = erasure.verify_certificate(json.dumps(exported, ensure_ascii=False), key)
    assert ok["ok"] and ok["record_count"] == 1
    tampered = json.loads(json.dumps(exported))
    tampered["certificate"]["record_count"] = 0
    with pytest.raises(erasure.CertificateInvalid) as e:
        erasure.verify_certificate(tampered, key)
    assert "does not match its signature" in str(e.value)
    forged = json.loads(json.dumps(exported))
    forged["signature"] = forged["signature"].replace(forged["signature"].split("\n")[1][:8], "0" * 8, 1)
    with pytest.raises(erasure.CertificateInvalid):
        erasure.verify_certificate(forged, key)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hogo.crypto import checkpoint

    other = checkpoint.public_key_text(audit_tree.log_key(hogo).name, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(erasure.CertificateInvalid) as e:
        erasure.verify_certificate(exported, other)
    assert "signature" in str(e.value)
    # Contractors' certificates are attached to it, by hash (ANON-10).
    att = erasure.attach(hogo, org.p("pm.takahashi"), cert.id, contractor="株式会社 委託", filename="cert.pdf",
                         content=b"%PDF-1.4 contractor certificate", ctx=CTX)
    import hashlib

    assert att["sha256"] == hashlib.sha256(b"%PDF-1.4 contractor certificate").hexdigest()
    assert erasure.show(hogo, org.p("auditor.watanabe"), cert.id).attachments[0]["contractor"] == "株式会社 委託"
    with pytest.raises(Forbidden):
        erasure.attach(hogo, org.p("clerk.ito"), cert.id, contractor="x", filename="a.pdf", content=b"x", ctx=CTX)
    with pytest.raises(Forbidden):
        erasure.list_certificates(hogo, org.p("clerk.ito"))


def _age(org: Org, ids: list[str], days_ago: int) -> None:
    with org.inst.hogo.unit_of_work() as db:
        db.execute(text("UPDATE records SET dispose_after = :d WHERE record_id IN :ids").bindparams(
            __import__("sqlalchemy").bindparam("ids", expanding=True)),
            {"d": org.inst.clock.now().date() - dt.timedelta(days=days_ago), "ids": ids})


def test_retention_dry_run_lists_without_erasing_then_the_run_erases_with_certificates(org: Org):
    hogo = org.inst.hogo
    ids = _create(org, 5)
    with hogo.unit_of_work(readonly=True) as db:
        due = db.scalar(select(Record.dispose_after).where(Record.record_id == ids[0]))
    assert due == org.inst.clock.now().date() + dt.timedelta(days=7 * 365 + 1)  # retention_years: 7
    _age(org, ids[:3], 1)
    preview = erasure.retention_run(hogo, org.p("pm.takahashi"), dry_run=True)
    assert preview["files"] == [{"file": FILE, "name": preview["files"][0]["name"], "due": 3,
                                 "rule": {"retention_days": 2556, "runs_from": "record_created"}}]
    assert _snapshot(org).keys() == set(ids)
    done = erasure.retention_run(hogo, None)
    assert done["erased"] == 3 and len(done["certificates"]) == 2  # batches of a bucket
    assert set(_snapshot(org)) == set(ids[3:])
    cert = erasure.show(hogo, None, done["certificates"][0])
    assert cert.kind == "retention" and cert.certificate["retention_rule"]["retention_days"] == 2556


def test_retention_from_an_event_date_field(org: Org):
    """A period that runs from an event (a retirement date): no due date until the date is set."""
    from support import payroll_spec

    hogo, pm = org.inst.hogo, org.p("pm.takahashi")
    spec = payroll_spec()
    spec.update(code="retirees", retention_days=30, retention_from="birth_date")
    spec.pop("retention_years")
    files.create_file(hogo, pm, spec, ctx=CTX)
    grants.create_grant(hogo, pm, "retirees", user="clerk.ito", actions=["create", "update"], purposes=[P1], ctx=CTX)
    ito = org.p("clerk.ito")
    a = guard.create_record(hogo, ito, "retirees", {"employee_no": "E1", "name": "a", "my_number": _mn(9),
                                                    "department": "KYUYO"}, purpose=P1, ctx=CTX)
    b = guard.create_record(hogo, ito, "retirees", {"employee_no": "E2", "name": "b", "my_number": _mn(8),
                                                    "department": "KYUYO", "birth_date": "2020-01-01"},
                            purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        got = dict(db.execute(select(Record.record_id, Record.dispose_after).where(
            Record.record_id.in_([a.record_id, b.record_id]))).all())
    assert got == {a.record_id: None, b.record_id: dt.date(2020, 1, 31)}
    guard.update_record(hogo, ito, "retirees", a.record_id, {"birth_date": "2021-02-01"}, purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(Record.dispose_after).where(Record.record_id == a.record_id)) == dt.date(2021, 3, 3)


def test_a_crash_mid_disposal_then_a_rerun_leaves_a_consistent_state(org: Org):
    hogo = org.inst.hogo
    ids = _create(org, 6)
    _age(org, ids[:5], 1)
    with pytest.raises(RuntimeError):
        erasure.retention_run(hogo, None, _fail_after_batches=1)  # dies after the 2nd batch's purge, before its keys
    with hogo.unit_of_work(readonly=True) as db:
        states = list(db.scalars(select(DeletionRecord.status).order_by(DeletionRecord.id)))
    assert states == ["complete", "purged"]
    # Whatever a crash leaves, every live record still reads.
    ito = org.p("clerk.ito")
    for rid in _snapshot(org):
        assert guard.read_record(hogo, ito, FILE, rid, purpose=P1, ctx=CTX).values["name"].startswith("社員")
    # An injected failure after the keys went: the deletion stays incomplete, and the re-run finishes it.
    done = erasure.retention_run(hogo, None)
    with hogo.unit_of_work(readonly=True) as db:
        states = list(db.scalars(select(DeletionRecord.status).order_by(DeletionRecord.id)))
        left = set(db.scalars(select(Record.record_id)))
    assert set(states) == {"complete"} and left == {ids[5]}
    assert done["erased"] == 1  # the 2 of the interrupted batch were finished by resume, not counted again
    assert guard.read_record(hogo, ito, FILE, ids[5], purpose=P1, ctx=CTX).values["name"] == "社員 5"


def test_a_crash_after_the_keys_of_a_file_are_destroyed_is_finished_on_rerun(org: Org, monkeypatch):
    hogo = org.inst.hogo
    _create(org, 3)
    real = erasure._finish
    monkeypatch.setattr(erasure, "_finish", lambda h, i: real(h, i, fail_after_destroy=True))
    with pytest.raises(RuntimeError):
        erasure.erase_file(hogo, org.p("pm.takahashi"), FILE, reason="事務の廃止", ctx=CTX)
    monkeypatch.setattr(erasure, "_finish", real)
    assert erasure.resume(hogo)
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(Record)) == 0
        assert db.scalar(select(DeletionRecord.status)) == "complete"


def test_an_import_fills_buckets_of_the_set_size(org: Org):
    """An import batch is spread over key versions so no bucket holds more than its size: erasing one
    record later re-encrypts a bucket, not the batch (SEC-50)."""
    import io

    hogo = org.inst.hogo
    _create(org, 1)  # v1 holds one record: one place left
    data = "employee_no,name,my_number,department\n" + "".join(
        f"E1{i:03d},社員 {i},{_mn(100 + i)},KYUYO\n" for i in range(6))
    rep = guard.import_records(hogo, org.p("clerk.ito"), FILE, io.BytesIO(data.encode()), purpose=P1, ctx=CTX)
    assert rep.imported == 6
    with hogo.unit_of_work(readonly=True) as db:
        sizes = dict(db.execute(select(Record.key_version, func.count()).group_by(Record.key_version)).all())
    assert sizes == {1: 2, 2: 2, 3: 2, 4: 1}
    found = guard.find_records(hogo, org.p("clerk.ito"), FILE, {"my_number": _mn(103)}, purpose=P1, ctx=CTX)
    assert [r.values["employee_no"] for r in found] == ["E1003"]


def test_delete_is_an_erasure_and_record_verify_still_vouches_SEC_50(org: Org):
    """``record delete`` erases irrecoverably too (with a certificate, logged as a delete); record verify
    says the erased record was deleted, and the bucket-mate re-encrypted under a new key still verifies
    against the signed log (SEC-133(2))."""
    from hogo.services import integrity

    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    ids = _create(org, 2)
    guard.delete_record(hogo, ito, FILE, ids[0], purpose=P1, ctx=CTX)
    assert ("data", 1) not in hogo.keystore.versions(_file_id(org))
    certs = erasure.list_certificates(hogo, org.p("auditor.watanabe"))
    assert [(c.kind, c.record_count, c.status) for c in certs] == [("record", 1, "complete")]
    gone = integrity.verify_record(hogo, ito, FILE, ids[0], purpose=P1, ctx=CTX)
    assert gone.deleted and gone.event == Event.RECORD_DELETED.value
    mate = integrity.verify_record(hogo, ito, FILE, ids[1], purpose=P1, ctx=CTX)
    assert mate.ok and mate.event == Event.RECORDS_REENCRYPTED.value, mate.message


def test_a_record_written_under_the_old_version_meanwhile_is_moved_before_the_keys_go(org: Org, monkeypatch):
    """A write that read the old current version before the erasure started a new one and committed after
    it (several writers on PostgreSQL) is re-encrypted before the old key is destroyed: nothing live is
    ever left under a destroyed key."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    ids = _create(org, 1)  # v1: one record, one place left
    real = erasure._finish
    late: dict[str, str] = {}

    def finish(h, deletion_id, **kw):
        with h.unit_of_work() as db:  # a straggler sealed under v1 lands after the purge committed
            keys = files.file_keys(h, db, _file_id(org))
            values = {"employee_no": "E9", "name": "遅延", "my_number": _mn(50), "department": "KYUYO"}
            _, (blob,) = keys.seal_records([("LATE", values)], 1)
            now = h.clock.now()
            db.add(Record(file_id=_file_id(org), record_id="LATE", segment="KYUYO", key_version=1, blob=blob,
                          revision=1, created_at=now, updated_at=now))
        late["done"] = "yes"
        return real(h, deletion_id, **kw)

    monkeypatch.setattr(erasure, "_finish", finish)
    cert = erasure.erase_records(hogo, ito, FILE, [ids[0]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    assert late and cert.status == "complete"
    assert guard.read_record(hogo, ito, FILE, "LATE", purpose=P1, ctx=CTX).values["name"] == "遅延"


def test_a_second_person_confirms_and_the_confirmation_verifies_ANON_10(org: Org):
    """The four-eyes check: the one who ordered an erasure cannot confirm it (SEC-19); the protection
    manager can, hogo checks again, and the signed confirmation travels with the exported certificate."""
    from hogo.services import audit_tree

    hogo = org.inst.hogo
    ids = _create(org, 1)
    cert = erasure.erase_records(hogo, org.p("clerk.ito"), FILE, ids, reason="本人からの削除請求", purpose=P1, ctx=CTX)
    with pytest.raises(Forbidden):
        erasure.confirm(hogo, org.p("clerk.ito"), cert.id, ctx=CTX)
    with pytest.raises(Forbidden):
        erasure.confirm(hogo, org.p("clerk.tanaka"), cert.id, ctx=CTX)
    done = erasure.confirm(hogo, org.p("pm.takahashi"), cert.id, ctx=CTX)
    assert done.confirmed_by == "pm.takahashi" and done.confirmation
    with pytest.raises(Conflict):
        erasure.confirm(hogo, org.p("auditor.watanabe"), cert.id, ctx=CTX)
    key = audit_tree.log_key(hogo).verifier_key
    assert erasure.verify_certificate(done.export(), key)["confirmed_by"] == "pm.takahashi"
    other = erasure.erase_records(hogo, org.p("clerk.ito"), FILE, _create(org, 1), reason="本人からの削除請求",
                                  purpose=P1, ctx=CTX)
    swapped = {**other.export(), "confirmation": done.confirmation}  # a confirmation of another certificate
    with pytest.raises(erasure.CertificateInvalid) as e:
        erasure.verify_certificate(swapped, key)
    assert "another certificate" in str(e.value)


def test_a_file_from_before_buckets_is_rebucketed_at_its_first_erasure_MN_5d(org: Org):
    """An older file: data versions 1 and 2 (rotated) share the index key of version 1. Erasing a record
    of version 2 takes the index key with it, so every record of both versions moves to new buckets and
    both versions are destroyed; lookups still find the others."""
    from hogo.crypto.envelope import new_wrapped_key

    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    hogo.extras["bucket_records"] = 1000
    ids = _create(org, 2)
    fid = _file_id(org)
    hogo.keystore.put(fid, [new_wrapped_key(hogo.key_provider, fid, 2, "data")], algorithm="AES-256-GCM",
                      now=hogo.clock.now())  # a rotation as hogo did it before buckets: a data key only
    with hogo.unit_of_work() as db:
        db.get(PersonalDataFile, fid).data_key_version = 2
    hogo.file_keys.clear()
    ids.append(guard.create_record(hogo, ito, FILE, {"employee_no": "E0002", "name": "社員 2", "my_number": _mn(3),
                                                     "department": "KYUYO"}, purpose=P1, ctx=CTX).record_id)
    # (sealed under v2, indexed with the index key of v1)
    assert _snapshot(org)[ids[2]][0] == 2
    cert = erasure.erase_records(hogo, ito, FILE, [ids[2]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    assert cert.certificate["key_versions_destroyed"] == [1, 2]
    assert {v for _, v in hogo.keystore.versions(fid)} == {3}
    for i in (0, 1):
        found = guard.find_records(hogo, ito, FILE, {"my_number": _mn(i + 1)}, purpose=P1, ctx=CTX)
        assert [r.record_id for r in found] == [ids[i]]
    assert guard.find_records(hogo, ito, FILE, {"my_number": _mn(3)}, purpose=P1, ctx=CTX) == []


def test_a_failure_inside_the_purge_changes_nothing_and_a_rerun_erases(org: Org, monkeypatch):
    """A failure while the bucket is re-encrypted rolls the whole step back: the record and its bucket-mate
    are as they were (readable, found), no deletion record, no key destroyed; the next try erases."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    ids = _create(org, 2)

    def broken(*a, **kw):
        raise RuntimeError("injected failure while re-encrypting the bucket")

    monkeypatch.setattr(erasure, "_rekey", broken)
    with pytest.raises(RuntimeError):
        erasure.erase_records(hogo, ito, FILE, [ids[0]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(DeletionRecord)) == 0
    assert ("data", 1) in hogo.keystore.versions(_file_id(org))
    assert guard.read_record(hogo, ito, FILE, ids[0], purpose=P1, ctx=CTX).values["name"] == "社員 0"
    monkeypatch.undo()
    cert = erasure.erase_records(hogo, ito, FILE, [ids[0]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    assert cert.status == "complete" and set(_snapshot(org)) == {ids[1]}
    assert guard.read_record(hogo, ito, FILE, ids[1], purpose=P1, ctx=CTX).values["name"] == "社員 1"
