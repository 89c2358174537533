"""``hogo record export`` against a real server and ``hogo package keygen|verify|open`` offline: SEC-46(1),
SEC-47, SEC-48(1)(2), SEC-49, MN-5c, ANON-7."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_data_support import FILE, ITO, MN1, P1, PM, SPEC, DataOrg, start_org, write_csv
from cli_support import Cli
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hogo.crypto import package as pkg
from hogo.services.audit_tree import LogKey

OPEN = "staff-open"


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        yield o
    finally:
        o.server.stop()


def _open_spec(tmp_path: Path) -> Path:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    spec.update(code=OPEN, kind="personal_information",
                classification={"confidentiality": 2, "integrity": 1, "availability": 1}, restrictions=[])
    spec["fields"] = [{**f, "type": "text", "sensitivity": "individual_identification_code"}
                      if f["name"] == "my_number" else f for f in spec["fields"]]
    p = tmp_path / "open-spec.yaml"
    p.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return p


def test_record_export_writes_the_csv_0600_with_its_marks_and_masks_codes_SEC_46_ANON_7(
        org: DataOrg, tmp_path: Path) -> None:
    """SEC-46(1): the marks are printed and written beside the CSV; ANON-7: an export grant is needed; MN-6a: the
    identification code stays masked; the CSV is created 0600."""
    cli = org.cli
    cli.json("file", "create", "--spec", str(_open_spec(tmp_path)), as_=PM)
    cli.json("grant", "add", OPEN, "--user", ITO, "--action", "create", "--purpose", P1, as_=PM)
    src = write_csv(tmp_path, "in.csv", [[f"E{i}", f"E{i}", f"社員 {i}", MN1, "KYUYO"] for i in range(30)],
                    encoding="utf-8")
    cli.json("record", "import", OPEN, "--csv", str(src), "--purpose", P1, as_=ITO)
    out = tmp_path / "export.csv"
    r = cli("record", "export", OPEN, "--purpose", P1, "--fields", "employee_no,name,my_number", "--out", str(out),
            as_=ITO)
    assert r.exit_code == 4 and "export" in r.stderr and not out.exists()  # no export grant yet
    cli.json("grant", "add", OPEN, "--user", ITO, "--action", "export", "--purpose", P1, as_=PM)
    r = cli("record", "export", OPEN, "--purpose", P1, "--fields", "employee_no,name,my_number", "--out", str(out),
            as_=ITO)
    assert r.exit_code == 0, r.stderr
    assert "C2-I1-A1" in r.stdout and "機密性2情報" in r.stdout and "30 record(s)" in r.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == ["record_id", "employee_no", "name", "my_number"] and len(rows) == 31
    assert MN1 not in out.read_text(encoding="utf-8") and rows[1][3] == "********" + MN1[-4:]
    marks = json.loads(Path(str(out) + ".marks.json").read_text(encoding="utf-8"))
    assert marks["label"] == "C2-I1-A1" and marks["record_count"] == 30 and marks["masked"] == ["my_number"]
    # one --where, Shift_JIS, JSON output
    sj = tmp_path / "one.csv"
    data = cli.json("record", "export", OPEN, "--purpose", P1, "--fields", "name", "--where", "employee_no=E7",
                    "--encoding", "shift_jis", "--out", str(sj), as_=ITO)
    assert data["records"] == 1 and "社員 7" in sj.read_bytes().decode("cp932")
    r = cli("record", "export", OPEN, "--purpose", P1, "--fields", "name", "--out", str(sj), as_=ITO)
    assert r.exit_code == 2 and "exists" in r.stderr  # never overwritten
    # SEC-48(1): publishing is only for confidentiality 1
    r = cli("record", "export", OPEN, "--purpose", P1, "--fields", "name", "--publish", "--out",
            str(tmp_path / "pub.csv"), as_=ITO)
    assert r.exit_code == 4 and "confidentiality-1" in r.stderr and not (tmp_path / "pub.csv").exists()


def test_record_export_of_a_restricted_file_is_refused_with_the_reason_SEC_47_SEC_48(
        org: DataOrg, tmp_path: Path) -> None:
    """SEC-47, SEC-48(2): the payroll My Number file (C3, no copy, no take-out) cannot be exported as a CSV; the
    refusal says why in Japanese and English, and nothing is written."""
    cli = org.cli
    org.define_file()
    org.grant(ITO, "create", "export")
    out = tmp_path / "x.csv"
    r = cli("record", "export", FILE, "--purpose", P1, "--fields", "name", "--out", str(out), as_=ITO)
    assert r.exit_code == 4, r.stdout
    assert "複製禁止" in r.stderr and "no-copy" in r.stderr and "暗号化必須" in r.stderr
    assert not out.exists() and not Path(str(out) + ".marks.json").exists()
    assert not list(tmp_path.glob(".x.csv*"))


# ------------------------------------------------------------------------------------- offline packages


def _log_key() -> LogKey:
    private = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    return LogKey(private, private.public_key(), "hogo.log/clitest")


def _package(tmp_path: Path, recipient: pkg.Recipient, *, open_once: bool = False) -> Path:
    path = tmp_path / "p.hogopkg"
    with path.open("wb") as out:
        w = pkg.PackageWriter(out, package_id="PKG-20260401-ABCDE", recipient=recipient, chunk_size=64)
        w.write("record_id,name\r\nE1,伊藤 翔\r\nE2,田中 花子\r\n".encode())
        w.finish({"file": "staff-open", "marks_label": "C3-I1-A1 [暗号化必須 / encryption required]",
                  "marks_label_ja": "機密性3情報・完全性1情報・可用性1情報（暗号化必須）", "record_count": 2,
                  "open_once": open_once, "tracking_id": "PKG-20260401-ABCDE"}, _log_key())
    return path


def test_package_keygen_verify_and_open_offline_SEC_49_MN_5c(cli: Cli, tmp_path: Path) -> None:
    """SEC-49, MN-5c: a recipient makes a key pair, verifies the package against hogo's pinned key and opens it
    to the CSV and its marks; a tampered package is refused with exit 10 and the reason, and writes nothing."""
    key = tmp_path / "me.key"
    made = cli.json("package", "keygen", "--out", str(key))
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and made["public_key"].startswith("hogo-p256+")
    path = _package(tmp_path, pkg.Recipient.of(made["public_key"]))
    verifier = _log_key().verifier_key
    v = cli.json("package", "verify", str(path), "--key", verifier)
    assert v["valid"] and v["manifest"]["tracking_id"] == "PKG-20260401-ABCDE"
    r = cli("package", "verify", str(path), "--key", verifier)
    assert r.exit_code == 0 and "暗号化必須" in r.stdout and "intact" in r.stdout
    assert cli("package", "verify", str(path)).exit_code == 2  # no pinned key: refused to guess
    other = Ed25519PrivateKey.from_private_bytes(b"\x08" * 32)
    r = cli("package", "verify", str(path), "--key", LogKey(other, other.public_key(), "hogo.log/clitest").verifier_key)
    assert r.exit_code == 10 and "re-signed" in r.stderr

    out = tmp_path / "opened"
    r = cli("package", "open", str(path), "--identity", str(key), "--out", str(out), "--key", verifier)
    assert r.exit_code == 0, r.stderr
    assert "暗号化必須" in r.stdout and "2 record(s)" in r.stdout
    [csv_file] = out.glob("*.csv")
    assert "伊藤 翔" in csv_file.read_text(encoding="utf-8") and path.exists()

    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0x40
    path.write_bytes(bytes(raw))
    out2 = tmp_path / "opened2"
    r = cli("package", "open", str(path), "--identity", str(key), "--out", str(out2), "--key", verifier)
    assert r.exit_code == 10 and "refused" in r.stderr
    assert not out2.exists() or not list(out2.iterdir())


def test_package_open_with_a_passphrase_file_and_open_once_SEC_47(cli: Cli, tmp_path: Path) -> None:
    """A passphrase package opens with the passphrase from a file (never argv); destroy-after-reading deletes it."""
    secret = "a long shared passphrase"
    path = _package(tmp_path, pkg.Recipient(passphrase=secret), open_once=True)
    verifier = _log_key().verifier_key
    keyfile = tmp_path / "hogo.pub"
    keyfile.write_text(verifier + "\n", encoding="utf-8")
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n", encoding="utf-8")
    r = cli("package", "open", str(path), "--passphrase-file", str(wrong), "--out", str(tmp_path / "o"),
            "--key", str(keyfile))
    assert r.exit_code == 1 and "passphrase is wrong" in r.stderr and path.exists()
    good = tmp_path / "good"
    good.write_text(secret + "\n", encoding="utf-8")
    data = cli.json("package", "open", str(path), "--passphrase-file", str(good), "--out", str(tmp_path / "o"),
                    env={"HOGO_VERIFIER_KEY": verifier})
    assert data["disposed"] and not path.exists()
    assert json.loads(Path(data["marks_file"]).read_text(encoding="utf-8"))["open_once"] is True
