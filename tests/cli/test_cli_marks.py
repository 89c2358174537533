"""Marks and working copies through the CLI against a real server: marks in ``file list|show`` and ``record
get|find`` (SEC-5, SEC-46(1)); ``hogo file marks`` by the protection manager, refused for a clerk (SEC-46(3));
``hogo workcopy`` create / read / report / dispose / confirm (ANON-17), refused for a no-copy file (ANON-7)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli_data_support import FILE, ITO, MN1, P1, PM, DataOrg, start_org
from cli_support import Cli


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        o.define_file()
        o.grant(ITO, "read", "create")
        for rid, emp, name in (("E1", "E0001", "伊藤 翔"), ("E2", "E0002", "佐藤 花子")):
            o.cli.json("record", "create", FILE, "--id", rid, "--set", f"employee_no={emp}", "--set", f"name={name}",
                       "--set", f"my_number={MN1}", "--set", "department=KYUYO", "--purpose", P1, as_=ITO)
        yield o
    finally:
        o.server.stop()


def test_marks_shown_in_file_and_record_output_SEC_5_SEC_46(org: DataOrg):
    cli = org.cli
    f = cli.json("file", "show", FILE, as_=ITO)
    assert f["marks"]["label"] == "C3-I2-A1" and "no_copy" in f["marks"]["restrictions"]
    assert f["marks"]["label_ja"].startswith("機密性3情報")
    assert cli.json("file", "list", as_=PM)[0]["marks"] == f["marks"]
    assert cli.json("record", "get", FILE, "E1", "--purpose", P1, as_=ITO)["marks"] == f["marks"]
    assert cli.json("record", "find", FILE, "--where", "employee_no=E0002", "--purpose", P1,
                    as_=ITO)[0]["marks"] == f["marks"]
    human = cli("record", "get", FILE, "E1", "--purpose", P1, as_=ITO)
    assert human.exit_code == 0
    assert "機密性3情報・完全性2情報・可用性1情報（複製禁止・持出禁止・暗号化必須）" in human.stdout
    shown = cli("file", "show", FILE, as_=ITO)
    assert "表示 marks" in shown.stdout and "複製禁止" in shown.stdout and "C3-I2-A1" in shown.stdout


def test_file_marks_by_the_manager_refused_for_a_clerk_then_a_working_copy_SEC_46_ANON_17(org: DataOrg):
    cli = org.cli
    err = cli.json("file", "marks", FILE, "--unrestrict", "no_copy", "--reason", "x", as_=ITO, expect=4)["error"]
    assert err["code"] == "marks_change_refused" and err["requirement"] == "SEC-46"
    tomorrow = (dt.datetime.now(ZoneInfo("Asia/Tokyo")) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    refused = cli.json("workcopy", "create", FILE, "--fields", "name", "--purpose", P1, "--expires", tomorrow,
                       as_=ITO, expect=4)["error"]
    assert refused["code"] == "working_copy_refused"  # the file is marked no-copy (ANON-7)

    f = cli.json("file", "marks", FILE, "--unrestrict", "no_copy", "--restrict", "no_distribution",
                 "--reason", "匿名加工作業のため複製を許可", as_=PM)
    assert f["version"] == 2 and "no_copy" not in f["marks"]["restrictions"]
    assert "no_distribution" in f["marks"]["restrictions"]
    hist = cli.json("file", "marks-history", FILE, as_=PM)
    assert [(h["changed_by"], h["basis"], h["reason"]) for h in hist] == [
        (PM, "decider", "匿名加工作業のため複製を許可")]
    assert "決定者" in cli("file", "marks-history", FILE, as_=PM).stdout

    w = cli.json("workcopy", "create", FILE, "--fields", "name,birth_date", "--purpose", P1, "--where",
                 "employee_no=E0001", "--expires", tomorrow, as_=ITO)
    assert w["records"] == 1 and w["fields"] == ["name", "birth_date"] and w["marks"] == f["marks"]
    data = cli.json("workcopy", "read", w["id"], as_=ITO)
    assert data["rows"] == [{"record_id": "E1", "values": {"name": "伊藤 翔"}}]
    assert cli.json("workcopy", "read", w["id"], as_=PM, expect=4)["error"]["code"] == "not_holder"
    human = cli("workcopy", "read", w["id"], as_=ITO)
    assert human.exit_code == 0 and "伊藤 翔" in human.stdout and "表示 marks" in human.stdout
    assert "配付禁止" in human.stdout and "1 record(s)" in human.stdout
    listed = cli("workcopy", "list", as_=ITO)
    assert listed.exit_code == 0 and w["id"] in listed.stdout
    changed = cli("file", "marks", FILE, "--availability", "2", "--reason", "業務継続のため", as_=PM)
    assert changed.exit_code == 0 and "C3-I2-A2" in changed.stdout and "version 3" in changed.stdout
    rep = cli.json("workcopy", "report", as_=PM)
    assert [x["id"] for x in rep["outstanding"]] == [w["id"]]
    assert w["id"] in cli("workcopy", "report", as_=PM).stdout
    assert cli.json("workcopy", "dispose", w["id"], as_=ITO)["status"] == "disposed"
    assert cli.json("workcopy", "report", as_=PM)["outstanding"] == []
    done = cli.json("workcopy", "confirm", w["id"], "--note", "鍵の破棄を確認", as_=PM)
    assert done["confirmed_by"] == PM and done["key_destroyed"] and not done["data_present"]
    shown = cli("workcopy", "show", w["id"], as_=PM)
    assert shown.exit_code == 0 and "廃棄済" in shown.stdout and "鍵の破棄を確認" in shown.stdout
