"""Erasure and deletion certificates through the CLI against a real server (ANON-10, SEC-50, MN-5d,
MN-3c): ``hogo record erase`` and ``hogo file erase`` print the signed certificate, ``hogo certificate
verify`` checks it offline with the pinned key and refuses a changed one (exit 10), ``hogo retention run
--dry-run`` lists without erasing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_data_support import AUDITOR, FILE, ITO, MN1, P1, PM, DataOrg, start_org
from cli_support import Cli


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        yield o
    finally:
        o.server.stop()


def _create(org: DataOrg, rid: str, mn: str = MN1) -> None:
    r = org.cli("record", "create", FILE, "--purpose", P1, "--id", rid, "--set", f"employee_no={rid}",
                "--set", "name=髙橋 一郎", "--set", f"my_number={mn}", "--set", "department=KYUYO", as_=ITO)
    assert r.exit_code == 0, r.stderr


def test_record_erase_prints_a_certificate_that_verifies_offline_ANON_10_SEC_50(org: DataOrg, tmp_path: Path) -> None:
    org.define_file()
    org.grant(ITO, "read", "create", "delete")
    cli = org.cli
    _create(org, "E0100")
    assert cli("record", "erase", FILE, "E0100", "--purpose", P1, as_=ITO).exit_code == 2  # --reason is required
    r = cli("record", "erase", FILE, "E0100", "--purpose", P1, "--reason", "本人からの削除請求", as_=ITO)
    assert r.exit_code == 0, r.stderr
    assert "crypto-shredding" in r.stdout and "Erased record E0100" in r.stdout and MN1 not in r.stdout
    assert cli("record", "get", FILE, "E0100", "--purpose", P1, as_=ITO).exit_code == 5
    assert cli.json("record", "find", FILE, "--purpose", P1, "--where", f"my_number={MN1}", as_=ITO) == []
    org.login(AUDITOR)
    listed = cli.json("certificate", "list", as_=AUDITOR)
    assert [d["kind"] for d in listed] == ["record"] and listed[0]["record_count"] == 1
    cid = listed[0]["id"]
    out = tmp_path / "cert.json"
    assert cli("certificate", "show", str(cid), "--out", str(out), as_=AUDITOR).exit_code == 0
    key = cli("audit", "public-key", as_=AUDITOR).stdout.strip().splitlines()[-1]
    keyfile = tmp_path / "key.txt"
    keyfile.write_text(key + "\n", encoding="utf-8")
    ok = cli.json("certificate", "verify", str(out), "--key", str(keyfile))
    assert ok["ok"] and ok["record_count"] == 1 and ok["file"] == FILE
    assert cli("certificate", "confirm", str(cid), as_=ITO).exit_code == 4  # not the one who ordered it
    confirmed = cli.json("certificate", "confirm", str(cid), as_=PM)
    assert confirmed["confirmed_by"] == PM
    assert cli("certificate", "show", str(cid), "--out", str(out), as_=AUDITOR).exit_code == 0
    assert cli.json("certificate", "verify", str(out), "--key", str(keyfile))["confirmed_by"] == PM
    data = json.loads(out.read_text(encoding="utf-8"))
    data["certificate"]["reason"] = "別の理由"
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    bad = cli("certificate", "verify", str(out), "--key", str(keyfile))
    assert bad.exit_code == 10 and "does not match its signature" in bad.stderr
    # A contractor's certificate, attached by the file's protection manager (ANON-10).
    pdf = tmp_path / "contractor.pdf"
    pdf.write_bytes(b"%PDF-1.4 deletion certificate of the contractor")
    att = cli.json("certificate", "attach", str(cid), "--file", str(pdf), "--contractor", "株式会社 委託", as_=PM)
    assert att["filename"] == "contractor.pdf" and len(att["sha256"]) == 64
    assert cli("certificate", "attach", str(cid), "--file", str(pdf), "--contractor", "x", as_=ITO).exit_code == 4


def test_file_erase_and_retention_dry_run(org: DataOrg) -> None:
    org.define_file()
    org.grant(ITO, "read", "create")
    cli = org.cli
    _create(org, "E0200")
    dry = cli.json("retention", "run", "--dry-run", as_=PM)
    assert dry["dry_run"] is True and dry["files"] == []  # nothing is past its retention yet
    assert cli("retention", "run", "--dry-run", as_=ITO).exit_code == 4  # clerks do not run disposal
    assert cli("file", "erase", FILE, "--reason", "事務の廃止", "--yes", as_=ITO).exit_code == 4
    d = cli.json("file", "erase", FILE, "--reason", "事務の廃止", "--yes", as_=PM)
    assert d["kind"] == "file" and d["record_count"] == 1 and d["status"] == "complete"
    assert d["certificate"]["confirmed_by"]["checks"]["keys_absent"] is True
    assert cli("record", "get", FILE, "E0200", "--purpose", P1, as_=ITO).exit_code == 6  # file_erased
    shown = cli("file", "show", FILE, as_=PM)
    assert shown.exit_code == 0 and "消去済" in shown.stdout  # the ledger entry stays, marked erased
