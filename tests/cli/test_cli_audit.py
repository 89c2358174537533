"""``hogo audit`` against a real server, then offline (issue 4): search by person, an inclusion proof
checked on the client with the pinned key, a kept checkpoint that verification moves forward, a
signed bundle verified with nothing but the public key, the stopped instance's data directory
verified, and damage reported with exit 10 and the first bad entry (SEC-107(2)(3), ANON-12, MN-3b,
MLIT-9.5.4, MLIT-9.5.8)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_data_support import AUDITOR, FILE, ITO, MN1, P1, DataOrg, start_org
from cli_support import Cli
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hogo.crypto.checkpoint import public_key_text
from hogo.domain.auditlog import decode, encode


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        o.define_file()
        o.grant()
        o.login(AUDITOR)
        yield o
    finally:
        o.server.stop()


def add_record(org: DataOrg) -> str:
    rec = org.cli.json("record", "create", FILE, "--purpose", P1, "--set", "employee_no=E0001", "--set", "name=伊藤 翔",
                       "--set", f"my_number={MN1}", "--set", "department=KYUYO", as_=ITO)
    return str(rec["record_id"])


def test_auditor_finds_who_touched_a_person_and_proves_it_with_the_pinned_key(org: DataOrg, tmp_path: Path):
    cli = org.cli
    rid = add_record(org)
    cli.json("record", "get", FILE, rid, "--purpose", P1, as_=ITO)
    rows = cli.json("audit", "search", "--file", FILE, "--record", rid, as_=AUDITOR)
    assert [r["event"] for r in rows] == ["data:record:read", "data:record:create"]
    assert rows[0]["actor_name"] == ITO and rows[0]["purpose"] == P1 and rows[0]["record_count"] == 1
    # A clerk sees only their own history; the protection manager's entries are not theirs.
    own = cli.json("audit", "search", "--limit", "1000", as_=ITO)
    ito_id = rows[0]["actor_id"]
    assert own and all(ito_id in (r["actor_id"], r["subject_user_id"]) for r in own)

    key_file = tmp_path / "log.pub"
    assert cli("audit", "public-key", "--out", str(key_file), as_=AUDITOR).exit_code == 0
    proof = cli.json("audit", "prove", str(rows[0]["seq"]), "--key", str(key_file), as_=AUDITOR)
    assert proof["verified"] is True and proof["key_pinned"] is True
    human = cli("audit", "prove", str(rows[0]["seq"]), "--key", str(key_file), as_=AUDITOR)
    assert human.exit_code == 0 and "Verified" in human.stdout and "yes" in human.stdout
    # Another log's key (same name, another key): the checkpoint's signature is refused, exit 10.
    name = key_file.read_text(encoding="utf-8").split("+")[0]
    other = public_key_text(name, Ed25519PrivateKey.generate().public_key())
    refused = cli("audit", "prove", str(rows[0]["seq"]), "--key", other, as_=AUDITOR)
    assert refused.exit_code == 10 and "not signed by this key" in refused.stderr
    assert cli("audit", "prove", str(rows[0]["seq"]), "--key", "not-a-key", as_=AUDITOR).exit_code == 2


def test_kept_checkpoint_bundle_and_data_dir_verification(org: DataOrg, tmp_path: Path):
    cli = org.cli
    add_record(org)
    kept = tmp_path / "kept.checkpoint"
    saved = cli.json("audit", "checkpoint", "--out", str(kept), "--fresh", as_=AUDITOR)
    assert kept.read_text(encoding="utf-8").startswith(saved["origin"] + "\n")
    first_size = saved["size"]

    ok = cli.json("audit", "verify", "--checkpoint", str(kept), as_=AUDITOR)
    assert ok["ok"] is True and ok["entries_checked"] >= first_size
    fast = cli.json("audit", "verify", "--fast", as_=AUDITOR)  # hashes, indices, tree, checkpoints; no columns
    assert fast["ok"] is True and fast["entries_checked"] >= ok["entries_checked"]
    assert cli("audit", "verify", as_=ITO).exit_code == 4  # clerks do not verify the whole log

    bundle = tmp_path / "bundle"
    out = cli.json("audit", "export", "--out", str(bundle), as_=AUDITOR)
    assert out["end"] > out["first"] and (bundle / "manifest.sig").exists()
    key_file = tmp_path / "log.pub"
    cli("audit", "public-key", "--out", str(key_file), as_=AUDITOR)
    offline = cli.json("audit", "verify", "--bundle", str(bundle), "--key", str(key_file), "--checkpoint",
                       str(kept), as_=AUDITOR)
    assert offline["ok"] is True and offline["checkpoints_verified"] >= 1
    # The kept checkpoint moved forward to the bundle's.
    assert int(kept.read_text(encoding="utf-8").split("\n")[1]) > first_size

    # A changed bundle: exit 10 and the damage named.
    entries = (bundle / "entries.log").read_bytes()
    (bundle / "entries.log").write_bytes(entries.replace(b'"outcome":"success"', b'"outcome":"denied"', 1))
    bad = cli("audit", "verify", "--bundle", str(bundle), "--key", str(key_file), as_=AUDITOR)
    assert bad.exit_code == 10 and "NOT INTACT" in bad.stdout

    # The stopped instance, offline: intact; then an entry changed by hand is named.
    org.server.stop()
    data_dir = org.server.data_dir
    clean = cli.json("audit", "verify", "--data-dir", str(data_dir), "--key", str(key_file), "--checkpoint",
                     str(kept))
    assert clean["ok"] is True
    db = sqlite3.connect(data_dir / "hogo.db")
    try:
        db.execute("DROP TRIGGER audit_events_no_update")
        entry = db.execute("SELECT entry FROM audit_events WHERE seq = 3").fetchone()[0]
        seq, e = decode(entry)
        db.execute("UPDATE audit_events SET entry = ? WHERE seq = 3",
                   (encode(seq, dataclasses.replace(e, actor="nobody")),))
        db.commit()
    finally:
        db.close()
    broken = cli.json("audit", "verify", "--data-dir", str(data_dir), "--checkpoint", str(kept), expect=10)
    assert broken["ok"] is False
    assert broken["first_problem"]["kind"] == "modified" and broken["first_problem"]["seq"] == 3
    broken_fast = cli.json("audit", "verify", "--data-dir", str(data_dir), "--fast", expect=10)
    assert broken_fast["first_problem"]["kind"] == "modified" and broken_fast["first_problem"]["seq"] == 3
