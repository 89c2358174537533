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
