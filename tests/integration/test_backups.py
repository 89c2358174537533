"""Backups (ANON-19, SEC-51, SEC-151(3)) on real SQLite and PostgreSQL: a backup restores to the same
database whose log verifies and whose records decrypt; tampered, truncated or re-signed backups are
refused with the reason; a crash leaves nothing half-made; expired backups are disposed of and recorded;
no key material and no plaintext personal data in a backup."""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text

from hogo.bootstrap import build
from hogo.crypto import checkpoint as notes
from hogo.domain.events import Event
from hogo.errors import ConfigurationError, Conflict, Forbidden, ValidationFailed
from hogo.services import audit_access, audit_tree, backups, grants, guard, runlock
from hogo.store.models import AuditEvent
from hogo.store.models_backups import Backup
from support import CTX, Instance, Org, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
MN = "123456789018"
NAME = "伊藤 翔太郎"
ITO = {"employee_no": "E0001", "name": NAME, "my_number": MN, "department": "KYUYO", "birth_date": "1990-04-01"}

# Tables whose rows must come back exactly (everything but the log, which the restore itself extends).
COMPARED = ("users", "user_roles", "departments", "personal_data_files", "file_versions", "file_keys", "records",
            "record_index", "grants", "audit_checkpoints", "audit_nodes")


@pytest.fixture
def org(inst: Instance) -> Org:
    org = make_org(inst)
    grants.create_grant(inst.hogo, org.p("pm.takahashi"), FILE, user="clerk.ito", actions=["read", "create", "update",
                        "delete", "reveal"], purposes=[P1], ctx=CTX)
    return org


def _records(org: Org, n: int = 3) -> list[str]:
    ito = org.p("clerk.ito")
    out = []
    for i in range(n):
        rec = guard.create_record(org.inst.hogo, ito, FILE, {**ITO, "employee_no": f"E{i:04d}"}, purpose=P1, ctx=CTX)
        out.append(rec.record_id)
    return out


def _snapshot(inst: Instance) -> dict[str, list[tuple]]:
    with inst.hogo.engine.connect() as conn:
        out = {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in COMPARED}
        out["audit_events"] = [tuple(r) for r in conn.execute(text("SELECT seq, entry, leaf_hash FROM audit_events "
                                                                   "ORDER BY seq"))]
        if conn.dialect.name == "postgresql":  # the schema too: indexes, constraints, triggers
            out["schema"] = sorted(tuple(r) for r in conn.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() UNION ALL "
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = "
                "current_schema()::regnamespace UNION ALL SELECT tgname, c.relname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")))
        else:
            out["schema"] = sorted(tuple(r) for r in conn.execute(text("SELECT name, sql FROM sqlite_master")))
    return out


def _backup(inst: Instance, tmp_path: Path, *targets: str) -> dict:
    return backups.create_backup(inst.hogo, inst.admin_principal(), [tmp_path / t for t in (targets or ("bk",))],
                                 ctx=CTX)


def test_backup_then_restore_gives_the_same_data_log_verifies_records_decrypt_ANON_19(org: Org, tmp_path: Path):
    inst = org.inst
    ids = _records(org)
    audit_tree.checkpoint(inst.hogo, anchor=False)  # a signed checkpoint in the log
    made = _backup(inst, tmp_path, "bk", "offsite")
    assert made["status"] == "complete" and len(made["targets"]) == 2
    before = _snapshot(inst)
    later = _backup(inst, tmp_path, "offsite")  # a later backup in the same place
    # Afterwards the data changes: a record changed, another added. (Not deleted: deleting is erasing by
    # destroying keys, and an erased record stays unreadable after a restore — see the last test.)
    ito = org.p("clerk.ito")
    guard.update_record(inst.hogo, ito, FILE, ids[0], {"name": "変更 後"}, purpose=P1, ctx=CTX)
    _records(org, 1)
    directory = Path(made["targets"][1])
    inst.hogo.close()
    restored = backups.restore_backup(inst.hogo, directory, confirm=True)
    assert restored["backup_id"] == made["id"] and not restored["migrate_needed"]
    after = _snapshot(inst)
    for t in (*COMPARED, "schema"):
        assert after[t] == before[t], t
    n = made["log_size"]  # the entries the backup holds (its own creation was recorded after its snapshot)
    assert after["audit_events"][:n] == before["audit_events"][:n]
    # The restore is the one entry after the backup's own (the catalog entry of the backup comes back too).
    with inst.hogo.unit_of_work() as s:
        tail = s.scalars(select(AuditEvent.event).where(AuditEvent.seq >= n).order_by(AuditEvent.seq)).all()
        assert tail[-1] == Event.BACKUP_RESTORED.value
        # The restored catalog knows this backup and the later one in the same place (to dispose of them).
        assert s.get(Backup, made["id"]) is not None and s.get(Backup, later["id"]) is not None
        assert s.get(Backup, later["id"]).expires_at == later["expires_at"]
    report = audit_access.verify(inst.hogo, None)
    assert report.ok, report.as_dict()
    got = guard.read_record(inst.hogo, org.p("clerk.ito"), FILE, ids[0], purpose=P1, reveal=["my_number"], ctx=CTX)
    assert got.values["my_number"] == MN and got.values["name"] == NAME


def test_verify_restores_into_a_scratch_place_and_checks_log_and_records_SEC_51(org: Org, tmp_path: Path):
    inst = org.inst
    _records(org, 4)
    made = _backup(inst, tmp_path)
    result = backups.verify_backup(inst.hogo, inst.admin_principal(), backup_id=made["id"], ctx=CTX)
    assert result["ok"], result
    assert result["records"]["decrypted"] == 4 and result["records"]["failed"] == 0
    assert result["log"]["ok"] and result["log"]["entries"] == made["log_size"]
    row = next(b for b in backups.list_backups(inst.hogo, inst.admin_principal()) if b["id"] == made["id"])
    assert row["status"] == "verified" and row["verification"]["ok"]
    if inst.hogo.settings.is_sqlite:  # the scratch place is gone
        assert not [p for p in inst.hogo.settings.data_dir.iterdir() if p.name.startswith(".backup-verify-")]
    else:
        with inst.hogo.engine.connect() as conn:
            assert not conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname LIKE 'hogo_verify_%'")).all()


def _refused(inst: Instance, directory: Path) -> backups.BackupRefused:
    with pytest.raises(backups.BackupRefused) as e:
        backups.verify_backup(inst.hogo, inst.admin_principal(), directory=directory, ctx=CTX)
    return e.value


def _chunk_offsets(data: bytes) -> list[tuple[int, int]]:
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((pos, 4 + n))
        pos += 4 + n
    return out


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backups.bc, "CHUNK_BYTES", 16 * 1024)
    orig = backups.bc.ChunkWriter.__init__

    def init(self, out, key, backup_id, *, chunk_bytes=16 * 1024):  # type: ignore[no-untyped-def]
        orig(self, out, key, backup_id, chunk_bytes=chunk_bytes)

    monkeypatch.setattr(backups.bc.ChunkWriter, "__init__", init)


def test_tampered_truncated_removed_or_resigned_backups_are_refused_with_the_reason_ANON_19(
        org: Org, tmp_path: Path, small_chunks: None):
    inst = org.inst
    _records(org, 2)
    made = _backup(inst, tmp_path)
    src = Path(made["targets"][0])
    data = (src / "data.enc").read_bytes()
    chunks = _chunk_offsets(data)
    assert len(chunks) >= 3

    def copy(name: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        for f in ("manifest.json", "manifest.sig"):
            (d / f).write_bytes((src / f).read_bytes())
        return d

    flipped = copy("flipped")
    b = bytearray(data)
    b[chunks[1][0] + 40] ^= 0x01
    (flipped / "data.enc").write_bytes(bytes(b))
    e = _refused(inst, flipped)
    assert e.code == "backup_tampered" and "chunk 2 of" in e.message
    # An auditor without the instance's keys finds the same with the pinned public key alone.
    pinned = audit_tree.log_key(inst.hogo).verifier_key
    assert backups.check_backup_stream(src, pinned)["chunks"] == len(chunks)
    with pytest.raises(backups.BackupRefused) as offline:
        backups.check_backup_stream(flipped, pinned)
    assert offline.value.code == "backup_tampered" and "chunk 2 of" in offline.value.message

    truncated = copy("truncated")
    (truncated / "data.enc").write_bytes(data[:chunks[-1][0] + 10])
    e = _refused(inst, truncated)
    assert e.code == "backup_truncated" and "truncated" in e.message

    cut = copy("cut")  # the last chunk dropped whole: the stream ends before its final chunk
    (cut / "data.enc").write_bytes(data[:chunks[-1][0]])
    e = _refused(inst, cut)
    assert e.code == "backup_truncated"

    removed = copy("removed")
    (removed / "data.enc").write_bytes(data[:chunks[1][0]] + data[chunks[2][0]:])
    e = _refused(inst, removed)
    assert e.code == "backup_tampered" and "chunk 2 of" in e.message

    # The manifest changed and signed again by another key: refused before anything else is read.
    resigned = copy("resigned")
    (resigned / "data.enc").write_bytes(data)
    manifest = json.loads((src / "manifest.json").read_bytes())
    manifest["retention_days"] = 3650
    body = json.dumps(manifest, indent=1, sort_keys=True).encode()
    (resigned / "manifest.json").write_bytes(body)
    other = Ed25519PrivateKey.generate()
    key_name = backups.instance_key(inst.hogo)[0]
    import hashlib

    (resigned / "manifest.sig").write_text(notes.sign_note(
        f"{backups.SIGNED_FORMAT}\n{hashlib.sha256(body).hexdigest()}\n", key_name, other.sign, other.public_key()))
    e = _refused(inst, resigned)
    assert e.code == "backup_bad_signature" and "re-signed" in e.message

    edited = copy("edited")  # changed but not re-signed
    (edited / "data.enc").write_bytes(data)
    (edited / "manifest.json").write_bytes(body)
    e = _refused(inst, edited)
    assert e.code == "backup_tampered" and "after it was signed" in e.message
    # Each refusal is in the log.
    with inst.hogo.unit_of_work() as s:
        failed = s.scalars(select(AuditEvent).where(AuditEvent.event == Event.BACKUP_VERIFIED.value,
                                                    AuditEvent.outcome == "failure")).all()
    assert len(failed) == 6
    # The restore refuses the same, and the database is untouched.
    inst.hogo.close()
    with pytest.raises(backups.BackupRefused):
        backups.restore_backup(inst.hogo, flipped, confirm=True)
    assert audit_access.verify(inst.hogo, None).ok


@pytest.mark.parametrize("stage", ["data", "publish", "catalog"])
def test_a_crash_mid_backup_leaves_no_catalog_entry_and_nothing_published_SEC_51(
        org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str):
    inst = org.inst

    def crash(name: str) -> None:
        if name == stage:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(backups, "_stage", crash)
    with pytest.raises(OSError):
        _backup(inst, tmp_path, "a", "b")
    for t in ("a", "b"):
        assert list((tmp_path / t).iterdir()) == []
    assert backups.list_backups(inst.hogo, inst.admin_principal()) == []
    assert not [p for p in inst.hogo.settings.data_dir.iterdir() if "staging" in p.name]
    with inst.hogo.unit_of_work() as s:
        assert s.scalars(select(AuditEvent.event).where(AuditEvent.event == Event.BACKUP_FAILED.value)).all()


def test_expired_backups_are_disposed_of_from_every_place_and_recorded_SEC_51(org: Org, tmp_path: Path):
    inst = org.inst
    admin = inst.admin_principal()
    short = backups.create_backup(inst.hogo, admin, [tmp_path / "a", tmp_path / "b"], importance="low", ctx=CTX)
    long = backups.create_backup(inst.hogo, admin, [tmp_path / "a"], importance="critical", ctx=CTX)
    assert short["retention_days"] == 7 and long["retention_days"] == 365
    assert backups.dispose_expired(inst.hogo, admin, ctx=CTX)["disposed"] == []
    inst.clock.advance(days=8)
    done = backups.dispose_expired(inst.hogo, inst.admin_principal(), ctx=CTX)
    assert [d["id"] for d in done["disposed"]] == [short["id"]]
    assert all(not Path(t).exists() for t in short["targets"])
    assert Path(long["targets"][0]).exists()
    row = next(b for b in backups.list_backups(inst.hogo, inst.admin_principal()) if b["id"] == short["id"])
    assert row["status"] == "disposed" and row["disposed_at"] is not None
    assert [p["result"] for p in row["disposal"]["places"]] == ["deleted", "deleted"]
    with inst.hogo.unit_of_work() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.event == Event.BACKUP_DISPOSED.value)).one()
        assert ev.target == short["id"] and ev.outcome == "success"


def test_restore_refuses_while_the_server_runs_and_without_confirmation(org: Org, tmp_path: Path):
    inst = org.inst
    made = _backup(inst, tmp_path)
    with pytest.raises(ValidationFailed) as v:
        backups.restore_backup(inst.hogo, Path(made["targets"][0]), confirm=False)
    assert v.value.code == "confirmation_required"
    data_dir = inst.hogo.settings.data_dir
    with runlock.serving(data_dir), runlock.serving(data_dir):  # two servers may share one instance
        assert runlock.running_server(data_dir)
        with pytest.raises(Conflict) as c:
            backups.restore_backup(inst.hogo, Path(made["targets"][0]), confirm=True)
        assert c.value.code == "server_running"
    assert not runlock.running_server(data_dir)
    with runlock.stopped(data_dir, "test"):  # while a restore runs, no server starts
        with pytest.raises(ConfigurationError) as started:
            runlock.serving(data_dir).__enter__()
        assert started.value.code == "restore_running"


def test_backup_holds_no_key_material_and_no_plaintext_personal_data_ANON_19_SEC_151(org: Org, tmp_path: Path):
    inst = org.inst
    _records(org, 2)
    made = _backup(inst, tmp_path)
    blob = b"".join(p.read_bytes() for p in Path(made["targets"][0]).iterdir())
    master = (inst.hogo.settings.keys_dir / "master.key").read_bytes()
    assert master.strip().split(b"\n")[-1] not in blob
    for p in inst.hogo.settings.keys_dir.rglob("*"):  # the key store (when there is one) is not in it either
        content = p.read_bytes() if p.is_file() else b""
        assert len(content) < 64 or content[-64:] not in blob
    with inst.hogo.engine.connect() as conn:  # the wrapped data keys: not in the backup in the clear
        wrapped = [bytes(w) for (w,) in conn.execute(text("SELECT wrapped FROM file_keys"))]
    store = getattr(inst.hogo, "keystore", None)
    if store is not None:
        wrapped += [k.wrapped for k in store.get(1)]
    assert wrapped
    assert not [w for w in wrapped if w in blob]
    for plain in ("clerk.ito", "pm.takahashi", "給与厚生課", NAME, MN):  # user names are plain in the database
        assert plain.encode() not in blob
    assert {p.name for p in Path(made["targets"][0]).iterdir()} == {"data.enc", "manifest.json", "manifest.sig"}


def test_targets_must_be_apart_from_the_data_directory_and_only_administrators_back_up_ANON_19(
        org: Org, tmp_path: Path):
    inst = org.inst
    with pytest.raises(ValidationFailed) as e:
        backups.create_backup(inst.hogo, inst.admin_principal(), [inst.hogo.settings.data_dir / "bk"], ctx=CTX)
    assert "apart" in e.value.message
    with pytest.raises(Forbidden):
        backups.create_backup(inst.hogo, org.p("pm.takahashi"), [tmp_path / "bk"], ctx=CTX)
    with pytest.raises(Forbidden):
        backups.list_backups(inst.hogo, org.p("auditor.watanabe"))


def test_key_material_is_backed_up_separately_sealed_by_a_passphrase_SEC_151(org: Org, tmp_path: Path):
    inst = org.inst
    db_backup = _backup(inst, tmp_path, "bk")
    passphrase = "kagi-no-hokan-2026-betsu"
    with pytest.raises(ValidationFailed):  # not beside the database backups
        backups.backup_keys(inst.hogo, tmp_path / "bk", passphrase)
    made = backups.backup_keys(inst.hogo, tmp_path / "keys-bk", passphrase)
    assert made["kind"] == "keys" and made["retention_days"] == backups.KEY_BACKUP_RETENTION_DAYS
    directory = Path(made["targets"][0])
    sealed = (directory / "keys.sealed").read_bytes()
    master = (inst.hogo.settings.keys_dir / "master.key").read_bytes()
    assert master.strip().split(b"\n")[-1] not in sealed
    assert passphrase.encode() not in b"".join(p.read_bytes() for p in directory.iterdir())
    # Lost keys come back with the passphrase (and only with it); the signature is checked with the pinned key.
    lost = tmp_path / "lost-keys"
    with pytest.raises(backups.BackupRefused) as e:
        backups.restore_keys(lost, directory, "the-wrong-passphrase-x", confirm=True)
    assert e.value.code == "backup_wrong_passphrase"
    pinned = audit_tree.log_key(inst.hogo).verifier_key
    got = backups.restore_keys(lost, directory, passphrase, confirm=True, public_key_text=pinned)
    assert got["signature_checked"] and (lost / "master.key").read_bytes() == master
    assert os.stat(lost / "master.key").st_mode & 0o077 == 0
    assert {b["id"] for b in backups.list_backups(inst.hogo, inst.admin_principal())} == {db_backup["id"], made["id"]}
    with pytest.raises(ValidationFailed) as kb:
        backups.verify_backup(inst.hogo, inst.admin_principal(), backup_id=made["id"], ctx=CTX)
    assert kb.value.code == "key_backup"


def test_a_backup_of_another_instance_is_refused(org: Org, tmp_path: Path, settings, clock):
    from hogo.services import instance
    from support import ADMIN, ADMIN_PASSWORD

    inst = org.inst
    made = _backup(inst, tmp_path)
    other_settings = settings.with_(data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'other.db'}")
    instance.init_instance(other_settings, admin=ADMIN, admin_password=ADMIN_PASSWORD, clock=clock)
    other = build(other_settings, clock=clock)
    try:
        with pytest.raises(backups.BackupRefused) as e:
            backups.open_backup(other, Path(made["targets"][0]))
        assert e.value.code == "backup_bad_signature"
    finally:
        other.close()


def test_expiry_dates_follow_importance_SEC_51(org: Org, tmp_path: Path):
    """SEC-51(1): by default the retention follows the files' classification (the payroll file is A1; a
    file of availability 2 makes backups 'high')."""
    inst = org.inst
    default = backups.create_backup(inst.hogo, inst.admin_principal(), [tmp_path / "d"], ctx=CTX)
    assert default["importance"] == "normal" and default["retention_days"] == 30
    with inst.hogo.engine.begin() as conn:
        conn.execute(text("UPDATE personal_data_files SET availability = 2"))
    raised = backups.create_backup(inst.hogo, inst.admin_principal(), [tmp_path / "e"], ctx=CTX)
    assert raised["importance"] == "high" and raised["retention_days"] == 90
    made = backups.create_backup(inst.hogo, inst.admin_principal(), [tmp_path / "x"], importance="high",
                                 retention_days=12, ctx=CTX)
    assert made["expires_at"] - made["created_at"] == dt.timedelta(days=12)
    with pytest.raises(ValidationFailed):
        backups.create_backup(inst.hogo, inst.admin_principal(), [tmp_path / "y"], importance="vital", ctx=CTX)


def test_an_earlier_backup_restored_does_not_bring_back_crypto_shredded_records_ANON_19(org: Org, tmp_path: Path):
    """A backup holds the database only; the wrapped keys stay in the key store beside the KEK. Erasing a
    record destroys its key there, so restoring a backup made before the erasure brings its ciphertext
    back but not the means to read it; records under keys that still exist read as before."""
    from hogo.crypto.keys import SealError
    from hogo.errors import Conflict
    from hogo.services import erasure, files
    from hogo.store.models import PersonalDataFile, Record

    inst = org.inst
    hogo = inst.hogo
    hogo.extras["bucket_records"] = 2  # key versions of two records each: records 0,1 | 2,3
    ids = _records(org, 4)
    made = _backup(inst, tmp_path)
    erasure.erase_records(hogo, org.p("clerk.ito"), FILE, [ids[0]], reason="本人からの削除請求", purpose=P1, ctx=CTX)
    hogo.close()
    backups.restore_backup(hogo, Path(made["targets"][0]), confirm=True)

    def opens(rid: str) -> bool:
        hogo.file_keys.clear()
        with hogo.unit_of_work(readonly=True) as db:
            file_id = db.scalar(select(PersonalDataFile.id).where(PersonalDataFile.code == FILE))
            blob = db.scalar(select(Record.blob).where(Record.file_id == file_id, Record.record_id == rid))
            assert blob is not None, rid  # the restored database holds the erased record's ciphertext again
            try:
                return bool(files.file_keys(hogo, db, file_id).open_record(rid, bytes(blob)))
            except (SealError, Conflict):
                return False

    assert not opens(ids[0])
    assert opens(ids[2]) and opens(ids[3])
    # The erased record's bucket-mate was re-keyed after the backup: in the backup it is under the destroyed key.
    assert not opens(ids[1])
    checked = backups.verify_backup(hogo, inst.admin_principal(), directory=Path(made["targets"][0]), ctx=CTX)
    assert checked["records"]["key_destroyed"] == 2 and checked["records"]["decrypted"] == 2
    assert checked["ok"]


def test_leftovers_of_a_backup_killed_outright_are_removed_by_the_next_one_SEC_51(org: Org, tmp_path: Path):
    """A SIGKILL or power cut runs no clean-up: its unpublished directory and its staging copy of the
    database are removed by the next backup once they are hours old (fresh ones may be another backup's)."""
    inst = org.inst
    target = tmp_path / "bk"
    target.mkdir()
    old_partial, new_partial = target / ".db-20260101T000000Z-00000000.partial", target / ".db-x-1.partial"
    for p in (old_partial, new_partial):
        p.mkdir()
        (p / "data.enc").write_bytes(b"half")
    staging = inst.hogo.settings.data_dir / ".db-20260101T000000Z-00000000.staging.db"
    if inst.hogo.settings.is_sqlite:
        staging = Path(str(inst.hogo.settings.database_url).removeprefix("sqlite:///")).parent / staging.name
        staging.write_bytes(b"SQLite format 3\x00")
    hours_ago = dt.datetime.now().timestamp() - 7 * 3600
    for p in (old_partial, staging):
        if p.exists():
            os.utime(p, (hours_ago, hours_ago))
    made = _backup(inst, tmp_path)
    assert not old_partial.exists() and new_partial.exists() and not staging.exists()
    assert {p.name for p in target.iterdir()} == {new_partial.name, made["id"]}


def test_key_backups_older_than_an_erasure_can_be_disposed_of_at_once_SEC_151(org: Org, tmp_path: Path):
    """A key backup made before a key was destroyed still holds it; such key backups can be disposed of at
    once (before their retention ends), recorded like any disposal."""
    inst = org.inst
    older = backups.backup_keys(inst.hogo, tmp_path / "keys-a", "kagi-no-hokan-2026-betsu")
    inst.clock.advance(hours=1)
    erased_at = inst.clock.now()
    inst.clock.advance(hours=1)
    newer = backups.backup_keys(inst.hogo, tmp_path / "keys-b", "kagi-no-hokan-2026-betsu")
    done = backups.dispose_key_backups_before(inst.hogo, erased_at, reason="erasure 1 destroyed a key")
    assert [d["id"] for d in done["disposed"]] == [older["id"]]
    assert not Path(older["targets"][0]).exists() and Path(newer["targets"][0]).exists()
    row = next(b for b in backups.list_backups(inst.hogo, None) if b["id"] == older["id"])
    assert row["status"] == "disposed" and row["disposal"]["reason"] == "erasure 1 destroyed a key"


def test_a_running_server_disposes_of_expired_backups_daily_SEC_51(org: Org, tmp_path: Path):
    from hogo.services.background import BackgroundJobs

    inst = org.inst
    made = backups.create_backup(inst.hogo, inst.admin_principal(), [tmp_path / "a"], importance="low", ctx=CTX)
    inst.clock.advance(days=8)
    BackgroundJobs(inst.hogo).run_once(force=True)
    assert not Path(made["targets"][0]).exists()
    with inst.hogo.unit_of_work() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.event == Event.BACKUP_DISPOSED.value)).one()
    assert ev.actor_name == "hogo:scheduler" and ev.target == made["id"]


def test_the_deletion_certificate_names_the_key_backups_that_still_hold_the_destroyed_keys_SEC_151_SEC_50(
        org: Org, tmp_path: Path):
    """Crypto-shredding is final for every database backup at once, but a key backup made before the erasure
    still holds the destroyed key until it is disposed of: the certificate names each such key backup and
    the date by which the erasure is final for them all (their expiry), instead of claiming more."""
    from hogo.services import erasure

    inst = org.inst
    hogo = inst.hogo
    ids = _records(org, 2)
    kb = backups.backup_keys(hogo, tmp_path / "keys-a", "kagi-no-hokan-2026-betsu")
    inst.clock.advance(hours=1)
    cert = erasure.erase_records(hogo, org.p("clerk.ito"), FILE, [ids[0]], reason="本人からの削除請求", purpose=P1,
                                 ctx=CTX).certificate
    (held,) = cert["key_backups_holding_destroyed_keys"]
    assert held["id"] == kb["id"] and cert["final_for_key_backups_by"] == held["expires_at"]
    backups.dispose_key_backups_before(hogo, hogo.clock.now(), reason="erasure destroyed a key")
    inst.clock.advance(hours=1)
    later = erasure.erase_records(hogo, org.p("clerk.ito"), FILE, [ids[1]], reason="本人からの削除請求", purpose=P1,
                                  ctx=CTX).certificate
    assert later["key_backups_holding_destroyed_keys"] == []
