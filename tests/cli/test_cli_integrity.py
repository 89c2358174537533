"""``hogo record verify`` and ``hogo crypto algorithms`` against a real server (issue 5): a record of an
integrity-2 file is proven unchanged against the signed log with the pinned public key (SEC-133(2),
SEC-134(1)); one altered in the database exits 10; the algorithm registry with CRYPTREC status (SEC-134)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_data_support import FILE, ITO, MN1, P1, PM, TANAKA, DataOrg, start_org
from cli_support import Cli
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hogo.crypto import checkpoint as notes

RID = "E0100"


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        yield o
    finally:
        o.server.stop()


def _with_record(org: DataOrg) -> None:
    org.define_file()  # payroll-mynumber: C3-I2-A1
    org.grant(ITO, "read", "create")
    org.cli.json("record", "create", FILE, "--purpose", P1, "--id", RID, "--set", "employee_no=E0100",
                 "--set", "name=伊藤 翔", "--set", f"my_number={MN1}", "--set", "department=KYUYO", as_=ITO)


def test_record_verify_proves_an_unchanged_record_with_the_pinned_key_SEC_133_SEC_134(org: DataOrg,
                                                                                       tmp_path: Path) -> None:
    """SEC-133(2), SEC-134(1): the verifier pins the log key (hogo audit public-key --out) and the CLI checks
    the signed checkpoint and the inclusion proof itself; the server checks the stored version's hash."""
    _with_record(org)
    cli = org.cli
    key = tmp_path / "log.pub"
    assert cli("audit", "public-key", "--out", str(key), as_=ITO).exit_code == 0
    rep = cli.json("record", "verify", FILE, RID, "--purpose", P1, "--key", str(key), as_=ITO)
    assert rep["status"] == "ok" and rep["ok"] and rep["client_check"] == "ok" and rep["key_pinned"]
    assert rep["stored_sha256"] == rep["logged_sha256"] and rep["event"] == "data:record:create"
    assert MN1 not in str(rep) and "伊藤" not in str(rep)  # nothing of the record's values
    human = cli("record", "verify", FILE, RID, "--purpose", P1, "--key", str(key), as_=ITO)
    assert human.exit_code == 0 and "OK" in human.stdout and "pinned" in human.stdout
    # Another key (a forged log would be signed by one): not provable here, exit 10.
    other = notes.public_key_text("hogo.log/0000000000000000", Ed25519PrivateKey.generate().public_key())
    bad = cli("record", "verify", FILE, RID, "--purpose", P1, "--key", other, "--json", as_=ITO)
    assert bad.exit_code == 10 and '"unverifiable"' in bad.stdout


def test_record_verify_reports_a_record_altered_in_the_database_SEC_133(org: DataOrg, tmp_path: Path) -> None:
    """SEC-133(2): a record changed behind hogo's back (its ciphertext, in the SQLite file) is reported as
    changed, exit 10; without a read grant verify is refused (exit 4) like any access."""
    _with_record(org)
    cli = org.cli
    db = sqlite3.connect(tmp_path / "data" / "hogo.db")
    try:
        blob = db.execute("SELECT blob FROM records WHERE record_id = ?", (RID,)).fetchone()[0]
        db.execute("UPDATE records SET blob = ? WHERE record_id = ?", (blob[:-1] + bytes([blob[-1] ^ 1]), RID))
        db.commit()
    finally:
        db.close()
    r = cli("record", "verify", FILE, RID, "--purpose", P1, as_=ITO)
    assert r.exit_code == 10 and "CHANGED" in r.stdout, r.stdout
    rep = cli.json("record", "verify", FILE, RID, "--purpose", P1, as_=ITO, expect=10)
    assert rep["status"] == "changed" and rep["stored_sha256"] != rep["logged_sha256"]
    org.login(TANAKA)
    assert cli("record", "verify", FILE, RID, "--purpose", P1, as_=TANAKA).exit_code == 4


def test_crypto_algorithms_lists_the_registry_with_cryptrec_status_SEC_134(org: DataOrg) -> None:
    """SEC-133, SEC-134(2): every algorithm in use with its key length, CRYPTREC list and the review date."""
    data = org.cli.json("crypto", "algorithms", as_=PM)
    by_id = {a["id"]: a for a in data["algorithms"]}
    assert by_id["ed25519"]["cryptrec"] == "recommended" and by_id["aes-256-gcm"]["key_bits"] == 256
    assert by_id["totp-hmac-sha-1"]["cryptrec"] == "monitored" and data["reviewed_on"]
    human = org.cli("crypto", "algorithms", as_=PM)
    assert human.exit_code == 0 and "Argon2id" in human.stdout and "last reviewed" in human.stdout
