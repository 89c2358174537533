"""Corrections and the approval inbox through the CLI against a real server (issue 5): ``hogo record correct``
requests a correction (ANON-8), ``hogo approval list|show|approve|reject`` decide it; the requester can never
approve their own request (SEC-19, exit 4); a record changed meanwhile is not overwritten (exit 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_data_support import FILE, ITO, MN1, P1, PM, DataOrg, start_org
from cli_support import Cli

NEW_NAME = "伊藤 翔太郎"


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        o.define_file()
        o.grant(ITO, "read", "create", "update")
        o.cli.json("record", "create", FILE, "--id", "E1", "--set", "employee_no=E1", "--set", "name=伊藤 翔",
                   "--set", f"my_number={MN1}", "--set", "department=KYUYO", "--purpose", P1, as_=ITO)
        yield o
    finally:
        o.server.stop()


def test_record_correct_then_the_protection_manager_approves_ANON_8_SEC_19(org: DataOrg):
    cli = org.cli
    req = cli.json("record", "correct", FILE, "E1", "--set", f"name={NEW_NAME}", "--reason", "氏名の誤記",
                   "--purpose", P1, as_=ITO)
    assert req["status"] == "pending" and req["fields"] == ["name"] and isinstance(req["id"], int)
    rid = str(req["id"])
    err = cli.json("approval", "approve", rid, as_=ITO, expect=4)["error"]
    assert err["code"] == "own_request" and err["requirement"] == "SEC-19"
    inbox = cli.json("approval", "list", as_=PM)["requests"]
    assert [(r["id"], r["can_decide"]) for r in inbox] == [(req["id"], True)]
    human = cli("approval", "show", rid, as_=PM)
    assert human.exit_code == 0 and "承認待ち" in human.stdout and "protection_manager@KYUYO" in human.stdout
    assert NEW_NAME not in human.stdout  # the request shows fields, never the values
    changes = cli("approval", "changes", rid, as_=PM)  # the values, to judge it (a recorded read)
    assert changes.exit_code == 0 and "伊藤 翔" in changes.stdout and NEW_NAME in changes.stdout
    done = cli.json("approval", "approve", rid, "--reason", "確認済み", as_=PM)
    assert done["status"] == "applied" and done["outcome"] == {"revision_before": 1, "revision_after": 2}
    rec = cli.json("record", "get", FILE, "E1", "--purpose", P1, as_=ITO)
    assert rec["values"]["name"] == NEW_NAME and rec["revision"] == 2
    assert cli.json("approval", "list", "--status", "applied", as_=ITO)["requests"][0]["id"] == req["id"]


def test_reject_needs_a_reason_and_a_changed_record_is_not_overwritten_ANON_8(org: DataOrg):
    cli = org.cli
    first = cli.json("record", "correct", FILE, "E1", "--set", f"name={NEW_NAME}", "--reason", "誤記",
                     "--purpose", P1, as_=ITO)
    r = cli("approval", "reject", str(first["id"]), as_=PM)
    assert r.exit_code == 2  # --reason is required
    rejected = cli.json("approval", "reject", str(first["id"]), "--reason", "根拠がない", as_=PM)
    assert rejected["status"] == "rejected"
    second = cli.json("record", "correct", FILE, "E1", "--set", "name_kana=イトウ", "--reason", "追記",
                      "--purpose", P1, as_=ITO)
    cli.json("record", "update", FILE, "E1", "--set", "phone=03-1234-5678", "--purpose", P1, as_=ITO)
    err = cli.json("approval", "approve", str(second["id"]), as_=PM, expect=6)["error"]
    assert err["code"] == "revision_conflict"
    assert cli.json("approval", "show", str(second["id"]), as_=ITO)["status"] == "failed"
    bad = cli.json("record", "correct", FILE, "E1", "--set", "my_number=123456789012", "--reason", "誤記",
                   "--purpose", P1, as_=ITO, expect=7)["error"]
    assert "123456789012" not in str(bad)
