"""Take-outs through the CLI against a real server (issue 5): ``hogo takeout request`` prints the request's id
(and ``--json``), the file's protection manager approves it with ``hogo approval approve`` (the kind
``takeout`` shows its recipient, transport and due date), the requester can never approve it (SEC-19), and
the register lists it (SEC-47, SEC-48(2), SEC-49, MN-6d)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_data_support import ITO, P1, PM, SPEC, DataOrg, start_org
from cli_support import Cli

FILE = "kyuyo-contacts"


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
        spec.update(code=FILE, kind="personal_information", restrictions=[],
                    classification={"confidentiality": 2, "integrity": 1, "availability": 1})
        spec["fields"] = [f for f in spec["fields"] if f["name"] != "my_number"]
        o.cli.json("file", "create", "--spec", o.cli.write("c2.yaml", yaml.safe_dump(spec, allow_unicode=True)),
                   as_=PM)
        o.cli.json("grant", "add", FILE, "--user", ITO, "--action", "read", "--action", "create", "--action",
                   "export", "--purpose", P1, as_=PM)
        o.cli.json("record", "create", FILE, "--id", "E1", "--set", "employee_no=E1", "--set", "name=伊藤 翔",
                   "--set", "department=KYUYO", "--purpose", P1, as_=ITO)
        yield o
    finally:
        o.server.stop()


def _due() -> str:
    return (dt.date.today() + dt.timedelta(days=10)).isoformat()


REQUEST = ("takeout", "request", FILE, "--fields", "employee_no,name", "--purpose", P1, "--recipient",
           "税理士法人 みなと", "--destination", "みなと事務所", "--passphrase")


def test_request_prints_the_id_and_the_manager_approves_it_SEC_47_SEC_19(org: DataOrg):
    cli = org.cli
    human = cli(*REQUEST, "--due", _due(), "--transport", "media", "--media-id", "USB-7", as_=ITO)
    assert human.exit_code == 0, (human.stdout, human.stderr)
    m = re.search(r"Requested take-out #(\d+) \(approval request #(\d+)\)", human.stdout)
    assert m and "protection_manager@KYUYO" in human.stdout and "承認待ち" in human.stdout
    t = cli.json(*REQUEST, "--due", _due(), as_=ITO)
    assert t["status"] == "requested" and isinstance(t["id"], int) and t["id"] == int(m.group(1)) + 1
    assert t["fields"] == ["employee_no", "name"] and t["recipient_mode"] == "passphrase"
    rid = str(t["request_id"])
    err = cli.json("approval", "approve", rid, as_=ITO, expect=4)["error"]
    assert err["code"] == "own_request" and err["requirement"] == "SEC-19"
    inbox = cli.json("approval", "list", "--kind", "takeout", as_=PM)["requests"]
    mine = next(r for r in inbox if r["id"] == t["request_id"])
    assert mine["can_decide"] and mine["details"]["transport"] == "download"
    shown = cli("approval", "show", rid, as_=PM)
    assert shown.exit_code == 0 and "税理士法人 みなと" in shown.stdout and "持出し・提供" in shown.stdout
    done = cli.json("approval", "approve", rid, as_=PM)
    assert done["status"] == "applied"
    got = cli.json("takeout", "show", str(t["id"]), as_=ITO)
    assert got["status"] == "approved" and got["can_download"]
    listed = cli.json("takeout", "list", "--status", "all", as_=PM)["takeouts"]
    assert {x["id"] for x in listed} == {t["id"], int(m.group(1))}
    media = next(x for x in listed if x["transport"] == "media")
    assert media["media_id"] == "USB-7"
    table = cli("takeout", "list", as_=ITO)
    assert table.exit_code == 0 and "承認済" in table.stdout


def test_a_no_take_out_file_is_refused_with_the_reason_SEC_47(org: DataOrg):
    cli = org.cli
    org.define_file()  # the payroll My Number file: no-copy, no-take-out
    cli.json("grant", "add", "payroll-mynumber", "--user", ITO, "--action", "export", "--purpose", P1, as_=PM)
    err = cli.json("takeout", "request", "payroll-mynumber", "--fields", "name", "--purpose", P1, "--recipient",
                   "x", "--destination", "y", "--passphrase", "--due", _due(), as_=ITO, expect=4)["error"]
    assert err["code"] == "takeout_restricted" and "no_take_out" in err["details"]["restrictions"]
    bad = cli("takeout", "request", FILE, "--fields", "name", "--purpose", P1, "--recipient", "x", "--destination",
              "y", "--due", _due(), as_=ITO)
    assert bad.exit_code != 0 and "--recipient-key" in (bad.stdout + bad.stderr)


def test_download_writes_a_package_that_verifies_and_opens_then_the_manager_confirms_SEC_49_MN_5c(
        org: DataOrg, tmp_path: Path):
    """SEC-49, MN-5c: once approved, the requester downloads the package (the passphrase from a file, never the
    command line); ``hogo package verify`` and ``open`` accept it with the record count of the register; the
    taker declares it disposed of and the manager confirms (SEC-19)."""
    cli = org.cli
    t = cli.json(*REQUEST, "--due", _due(), as_=ITO)
    cli.json("approval", "approve", str(t["request_id"]), as_=PM)
    secret = cli.write("pass", "kusunoki-no-ki-no-shita\n")
    out = tmp_path / "takeout.hogopkg"
    early = cli.json("takeout", "download", str(t["id"]), "--out", str(out), "--passphrase-file", secret, as_=PM,
                     expect=4)["error"]
    assert early["code"] == "not_requester" and not out.exists()
    d = cli.json("takeout", "download", str(t["id"]), "--out", str(out), "--passphrase-file", secret, as_=ITO)
    assert d["status"] == "taken_out" and d["record_count"] == 1 and out.stat().st_size == d["bytes"]
    key = cli.json("audit", "public-key", as_=PM)["key"]
    v = cli.json("package", "verify", str(out), "--key", key)
    assert v["valid"] and v["manifest"]["takeout_id"] == t["id"] and v["manifest"]["record_count"] == 1
    opened = cli.json("package", "open", str(out), "--out", str(tmp_path / "o"), "--passphrase-file", secret,
                      "--key", key)
    assert "伊藤 翔" in Path(opened["path"]).read_text(encoding="utf-8-sig")
    again = cli("takeout", "download", str(t["id"]), "--out", str(out), "--passphrase-file", secret, as_=ITO)
    assert again.exit_code != 0  # never overwritten
    declared = cli.json("takeout", "dispose", str(t["id"]), "--note", "削除済み", as_=ITO)
    assert declared["status"] == "taken_out" and declared["declared"] == "disposed"
    done = cli("takeout", "dispose", str(t["id"]), as_=PM)
    assert done.exit_code == 0 and "Confirmed" in done.stdout and "廃棄確認済" in done.stdout
