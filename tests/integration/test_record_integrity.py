"""Record versions of integrity-2 files committed into the signed log, and ``verify_record``, on real SQLite and
PostgreSQL (SEC-133(2) electronic signatures for integrity-2 information; SEC-134(1) verification by the
log's public key; the guard's default deny and access record, MN-3b)."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from sqlalchemy import select, text, update

from hogo.crypto import checkpoint as notes
from hogo.domain import merkle
from hogo.domain.auditlog import decode
from hogo.domain.events import Event
from hogo.errors import Forbidden
from hogo.services import audit_tree, files, grants, guard, integrity
from hogo.store.models import AuditEvent, Record
from support import CTX, Org, make_org, payroll_spec

FILE = "payroll-mynumber"  # C3-I2-A1
P1 = "源泉徴収票作成事務"
MN = "123456789018"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": MN, "department": "KYUYO", "birth_date": "1990-04-01"}


@pytest.fixture
def org(inst) -> Org:
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito",
                        actions=["read", "create", "update", "delete"], purposes=[P1], ctx=CTX)
    return o


def _entries(org: Org, event: str) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.seq)))


def _verify(org: Org, rid: str, who: str = "clerk.ito", file: str = FILE) -> integrity.VerifyReport:
    return integrity.verify_record(org.inst.hogo, org.p(who), file, rid, purpose=P1, ctx=CTX)


def _tamper(org: Org, rid: str, **values: object) -> None:
    with org.inst.hogo.engine.begin() as conn:
        conn.execute(update(Record).where(Record.record_id == rid).values(**values))


def test_every_write_logs_the_stored_versions_hash_never_the_plaintext_SEC_133(org: Org):
    """SEC-133(2): create, update and delete of an integrity-2 record each log the SHA-256 of the stored
    version (the ciphertext blob with revision, segment and place), not of any value."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    guard.update_record(hogo, ito, FILE, rec.record_id, {"name": "伊藤 翔太"}, purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        stored = db.scalar(select(Record).where(Record.record_id == rec.record_id))
        assert stored is not None
        expected = integrity.version_hash(FILE, rec.record_id, 2, stored.segment, stored.blob)
    guard.delete_record(hogo, ito, FILE, rec.record_id, purpose=P1, ctx=CTX)
    created, updated, deleted = (_entries(org, e.value)[-1] for e in
                                 (Event.RECORD_CREATED, Event.RECORD_UPDATED, Event.RECORD_DELETED))
    logged = decode(updated.entry)[1]  # from the signed bytes: one item per record of the entry, in order
    assert logged.records == (rec.record_id,) and logged.details["versions"] == {"revision": [2], "sha256": [expected]}
    assert decode(created.entry)[1].details["versions"]["revision"] == [1]
    assert decode(deleted.entry)[1].details["versions"] == {"revision": [2], "sha256": [expected], "deleted": True}
    for e in (created, updated, deleted):
        body = e.entry.decode("utf-8")
        assert MN not in body and "伊藤" not in body and "1990-04-01" not in body
        for value in (MN, "伊藤 翔", "伊藤 翔太", "1990-04-01"):
            assert hashlib.sha256(value.encode()).hexdigest() not in body


def test_unchanged_record_verifies_against_the_signed_checkpoint_SEC_133_SEC_134(org: Org):
    """SEC-133(2), SEC-134(1): an untouched record verifies — its hash equals the logged one, the entry is
    in the tree of a checkpoint signed by the log key, and the proof checks out with only the public key."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    rep = _verify(org, rec.record_id)
    assert rep.ok and rep.status == "ok" and rep.event == Event.RECORD_CREATED.value
    assert rep.stored_sha256 == rep.logged_sha256 and rep.checkpoint_size and rep.checkpoint_size > rep.seq
    assert [c.name for c in rep.checks] == ["stored version", "log entry", "checkpoint signature", "inclusion proof",
                                            "later writes"]
    assert all(c.ok for c in rep.checks)
    # Offline, with nothing but the public key: the leaf is in the signed tree.
    name, public = notes.parse_public_key_text(rep.public_key)
    cp = notes.verify_note(rep.checkpoint, name, public, origin=name)
    assert merkle.verify_inclusion(rep.seq, cp.size, bytes.fromhex(rep.leaf_hash),
                                   [bytes.fromhex(h) for h in rep.proof], cp.root)
    assert rep.public_key == audit_tree.log_key(hogo).verifier_key
    # The verification is itself recorded, like any access (MN-3b).
    ver = _entries(org, Event.RECORD_VERIFIED.value)[-1]
    assert ver.outcome == "success" and json.loads(json.dumps(ver.details))["result"] == "ok"


@pytest.mark.parametrize("change", ["blob", "revision", "segment", "swap"])
def test_a_record_altered_in_the_database_is_reported_changed_SEC_133(org: Org, change: str):
    """SEC-133(2): a record changed directly in the database (ciphertext, revision, segment, or another
    record's ciphertext put in its place) no longer matches the signed log."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    other = guard.create_record(hogo, ito, FILE, {**ITO, "employee_no": "E0002"}, purpose=P1, ctx=CTX)
    assert _verify(org, rec.record_id).ok
    with hogo.unit_of_work(readonly=True) as db:
        blob = bytes(db.scalar(select(Record.blob).where(Record.record_id == rec.record_id)))
        other_blob = bytes(db.scalar(select(Record.blob).where(Record.record_id == other.record_id)))
    values = {"blob": blob[:-1] + bytes([blob[-1] ^ 1]), "revision": 7, "segment": "JINJI",
              "swap": other_blob}[change]
    _tamper(org, rec.record_id, **({"blob": values} if change in ("blob", "swap") else {change: values}))
    rep = _verify(org, rec.record_id)
    assert not rep.ok and rep.status == "changed"
    assert rep.checks[0].name == "stored version" and not rep.checks[0].ok
    assert all(c.ok for c in rep.checks[1:])  # the log itself is intact
    assert _verify(org, other.record_id).ok
    failed = _entries(org, Event.RECORD_VERIFIED.value)[-2]
    assert failed.outcome == "failure" and failed.reason == "changed"


def test_deleted_record_verifies_absent_and_a_resurrected_one_is_changed_SEC_133(org: Org):
    """SEC-133(2): after a delete the log says the record is gone; a row put back directly is reported."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        row = db.scalar(select(Record).where(Record.record_id == rec.record_id))
        assert row is not None
        saved = {c: getattr(row, c) for c in ("file_id", "record_id", "segment", "key_version", "blob", "revision",
                                               "created_at", "created_by_id", "updated_at", "updated_by_id")}
    guard.delete_record(hogo, ito, FILE, rec.record_id, purpose=P1, ctx=CTX)
    rep = _verify(org, rec.record_id)
    assert rep.ok and rep.deleted and rep.event == Event.RECORD_DELETED.value
    with hogo.engine.begin() as conn:
        conn.execute(Record.__table__.insert().values(**saved))
    rep = _verify(org, rec.record_id)
    assert rep.status == "changed" and "deleted" in rep.checks[0].detail


def test_key_rotation_and_import_log_the_new_versions_SEC_133(org: Org):
    """SEC-133(2): a key rotation stores every record anew (new ciphertext, same revision): each batch is
    logged with the new versions, so rotated records still verify; imported records verify too."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    csv_data = "employee_no,name,my_number,department\nE0100,山田 太郎,123456789018,KYUYO\n"
    report = guard.import_records(hogo, ito, FILE, io.BytesIO(csv_data.encode()), purpose=P1, ctx=CTX)
    imported = report.record_ids_sample[0]
    assert _verify(org, imported).ok and _verify(org, imported).event == Event.RECORDS_IMPORTED.value
    files.rotate_key(hogo, org.p("pm.takahashi"), FILE, ctx=CTX, batch=1)
    batches = _entries(org, Event.RECORDS_REENCRYPTED.value)
    assert len(batches) == 2 and batches[0].actor_name == "pm.takahashi"
    for rid in (rec.record_id, imported):
        rep = _verify(org, rid)
        assert rep.ok and rep.event == Event.RECORDS_REENCRYPTED.value, rep.message
    with hogo.unit_of_work(readonly=True) as db:
        assert {db.scalar(select(Record.key_version).where(Record.record_id == r)) for r in (rec.record_id,
                                                                                             imported)} == {2}


def test_integrity_1_file_says_there_is_nothing_to_verify_SEC_133(org: Org):
    """SEC-133(2) applies to integrity-2 information: for an integrity-1 file verify says so, logs no
    hashes for its writes, and does not pretend to have checked anything."""
    hogo, pm = org.inst.hogo, org.p("pm.takahashi")
    spec = {**payroll_spec(), "code": "staff-contacts",
            "classification": {"confidentiality": 3, "integrity": 1, "availability": 1}}
    files.create_file(hogo, pm, spec, ctx=CTX)
    grants.create_grant(hogo, pm, "staff-contacts", user="clerk.ito", actions=["read", "create"], purposes=[P1],
                        ctx=CTX)
    rec = guard.create_record(hogo, org.p("clerk.ito"), "staff-contacts", ITO, purpose=P1, ctx=CTX)
    assert "versions" not in (_entries(org, Event.RECORD_CREATED.value)[-1].details or {})
    rep = _verify(org, rec.record_id, file="staff-contacts")
    assert rep.status == "not_integrity_2" and not rep.ok and not rep.checks and "not an integrity-2" in rep.message


def test_verify_needs_a_read_grant_and_denials_are_recorded_SEC_133(org: Org):
    """Default deny: verifying a record is an access to it — without a read grant it is refused, and the
    refusal is on record (SEC-133(2) through the guard, MN-3b)."""
    hogo = org.inst.hogo
    rec = guard.create_record(hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)
    for who in ("clerk.tanaka", "auditor.watanabe"):
        with pytest.raises(Forbidden):
            _verify(org, rec.record_id, who=who)
    denied = _entries(org, Event.RECORD_VERIFIED.value)
    assert [e.outcome for e in denied] == ["denied", "denied"]


def test_a_forged_log_entry_does_not_verify_SEC_133(org: Org):
    """SEC-133(2): rewriting the record and the hash in the log entry to match fails — the entry no longer
    hashes to the leaf under the signed checkpoint."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    first = _verify(org, rec.record_id)
    _tamper(org, rec.record_id, revision=5)
    with hogo.unit_of_work(readonly=True) as db:
        row = db.scalar(select(Record).where(Record.record_id == rec.record_id))
        forged_hash = integrity.version_hash(FILE, rec.record_id, 5, row.segment, row.blob)
    entry = bytes(_entries(org, Event.RECORD_CREATED.value)[-1].entry)
    forged = (entry.replace(first.logged_sha256.encode(), forged_hash.encode())
              .replace(b'"revision":[1]', b'"revision":[5]'))
    with hogo.engine.begin() as conn:  # someone who controls the database: the append-only triggers off
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        conn.execute(update(AuditEvent).where(AuditEvent.seq == first.seq).values(entry=forged))
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    rep = _verify(org, rec.record_id)
    assert not rep.ok and rep.status == "unverifiable"
    assert [c.ok for c in rep.checks][:2] == [True, False]  # the forged hash matches, the leaf does not


def test_verify_and_algorithms_over_the_api_SEC_133_SEC_134(org: Org, client):
    """SEC-133(2) over the REST API: GET …/records/{id}/verify with the purpose header answers ok, then
    changed once the row is altered; 403 without a grant. GET /crypto/algorithms lists the registry (SEC-134)."""
    from urllib.parse import quote

    from support import bearer

    rec = guard.create_record(org.inst.hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)
    ito = {**bearer(org.token("clerk.ito")), "X-Hogo-Purpose": quote(P1)}
    url = f"/api/v1/files/{FILE}/records/{rec.record_id}/verify"
    r = client.get(url, headers=ito)
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["checkpoint"].startswith("hogo.log/")
    _tamper(org, rec.record_id, revision=3)
    assert client.get(url, headers=ito).json()["status"] == "changed"
    tanaka = {**bearer(org.token("clerk.tanaka")), "X-Hogo-Purpose": quote(P1)}
    assert client.get(url, headers=tanaka).status_code == 403
    algs = client.get("/api/v1/crypto/algorithms", headers=bearer(org.token("clerk.ito"))).json()
    assert {a["id"] for a in algs["algorithms"]} >= {"aes-256-gcm", "ed25519", "sha-256", "argon2id"}
    assert client.get("/api/v1/crypto/algorithms").status_code == 401


def test_a_file_raised_to_integrity_2_commits_its_records_as_they_are_SEC_133(org: Org):
    """SEC-133(2): when a file's classification is raised to integrity 2, the versions its records have
    then are logged in the same transaction, so they verify from that point on (not before)."""
    hogo, pm = org.inst.hogo, org.p("pm.takahashi")
    spec = {**payroll_spec(), "code": "staff-contacts",
            "classification": {"confidentiality": 3, "integrity": 1, "availability": 1}}
    files.create_file(hogo, pm, spec, ctx=CTX)
    grants.create_grant(hogo, pm, "staff-contacts", user="clerk.ito", actions=["read", "create"], purposes=[P1],
                        ctx=CTX)
    rec = guard.create_record(hogo, org.p("clerk.ito"), "staff-contacts", ITO, purpose=P1, ctx=CTX)
    assert _verify(org, rec.record_id, file="staff-contacts").status == "not_integrity_2"
    files.update_file(hogo, pm, "staff-contacts",
                      {**spec, "classification": {"confidentiality": 3, "integrity": 2, "availability": 1}}, ctx=CTX)
    rep = _verify(org, rec.record_id, file="staff-contacts")
    assert rep.ok and rep.event == Event.RECORDS_COMMITTED.value
    _tamper(org, rec.record_id, revision=4)
    assert _verify(org, rec.record_id, file="staff-contacts").status == "changed"


def test_a_record_rolled_back_with_its_index_references_dropped_is_caught_SEC_133(org: Org):
    """SEC-133(2): someone who controls the database puts a record back to its first version and drops the
    record-reference rows of the update since: verify reads the file's later writes themselves, finds the
    update, and reports the record changed (and the index altered). A record never written is not found."""
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        first = bytes(db.scalar(select(Record.blob).where(Record.record_id == rec.record_id)))
    guard.update_record(hogo, ito, FILE, rec.record_id, {"name": "伊藤 翔太"}, purpose=P1, ctx=CTX)
    upd = _entries(org, Event.RECORD_UPDATED.value)[-1].seq
    _tamper(org, rec.record_id, blob=first, revision=1)
    with hogo.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_record_refs DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_record_refs_no_delete"))
        conn.execute(text("DELETE FROM audit_record_refs WHERE seq = :s"), {"s": upd})
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_record_refs ENABLE TRIGGER USER"))
    rep = _verify(org, rec.record_id)
    assert rep.status == "changed" and rep.seq == upd
    later = next(c for c in rep.checks if c.name == "later writes")
    assert not later.ok and str(upd) in later.detail
    from hogo.errors import NotFound

    with pytest.raises(NotFound):
        _verify(org, "never-written")
