"""Files, grants and records through the CLI against a real server (issue 3): the file ledger with its
classification and restrictions (MN-3c, SEC-5), grants by the protection manager only and never to
oneself (SEC-130, SEC-19), purpose-bound record access with My Numbers masked unless revealed
(SEC-45, MN-6a), bulk import of Shift_JIS CSVs with the rejected rows written 0600, the access
review (SEC-131) and key rotation (ANON-18, SEC-133). Every access is on the audit record (MN-3b)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_data_support import (
    AUDITOR,
    BAD_MN,
    FILE,
    HEADER,
    ITO,
    MN1,
    MN3,
    MN4,
    P1,
    P2,
    PM,
    SPEC,
    TANAKA,
    DataOrg,
    start_org,
    write_csv,
)
from cli_support import ADMIN, Cli

from hogo.cli.data import purpose_header


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        yield o
    finally:
        o.server.stop()


SJIS_ROWS = [
    ["E0001", "E0001", "髙橋 一郎", MN1, "KYUYO"],
    ["E0002", "E0002", "伊藤 翔", BAD_MN, "KYUYO"],  # wrong check digit
    ["E0003", "E0003", "渡邉 花子", MN3, "KYUYO"],
    ["E0003", "E0004", "﨑田 次郎", MN4, "KYUYO"],  # the same record ID again
]


def imported(org: DataOrg, tmp_path: Path) -> dict[str, object]:
    """The file defined, clerk.ito granted read/create/reveal for P1, and the Shift_JIS CSV imported."""
    org.define_file()
    org.grant()
    src = write_csv(tmp_path, "payroll.csv", SJIS_ROWS, encoding="cp932")
    data: dict[str, object] = org.cli.json("record", "import", FILE, "--csv", str(src), "--purpose", P1,
                                           "--encoding", "shift_jis", as_=ITO)
    return data


# ----------------------------------------------------------------------------------------- files


def test_file_is_defined_from_yaml_and_its_ledger_shows_classification_and_restrictions(
        org: DataOrg, tmp_path: Path) -> None:
    """MN-3c (the file ledger: kind, name, task, legal basis, responsible person, department,
    purposes, scope, retention) and SEC-5 (classification C3-I2-A1 and the handling restrictions
    shown prominently). SEC-130: only the protection manager of the department defines it."""
    cli = org.cli
    f = cli.json("file", "create", "--spec", str(SPEC), as_=PM)
    assert f["code"] == FILE and f["version"] == 1 and f["records"] == 0
    assert f["classification"] == "C3-I2-A1"
    assert set(f["restrictions"]) == {"no_copy", "no_take_out", "encryption_required"}

    shown = cli("file", "show", FILE, as_=PM)
    assert shown.exit_code == 0, shown.stderr
    head = shown.stdout.split("Code")[0]  # the marking comes first, before the ledger items
    assert "C3-I2-A1" in head and "no_copy" in head and "持出禁止" in head and "暗号化必須" in head
    for item in ("給与所得者の扶養控除等申告書ファイル", "特定個人情報ファイル", P1, P2, "所得税法第226条",
                 "pm.takahashi", "KYUYO", "従業員本人から書面で取得", "従業員及びその扶養親族", "about 7 years",
                 "個人番号", "my_number", "individual_identification_code"):
        assert item in shown.stdout, item

    listed = cli("file", "list", as_=PM)
    assert listed.exit_code == 0 and FILE in listed.stdout and "C3-I2-A1" in listed.stdout
    assert [x["code"] for x in cli.json("file", "list", as_=ITO)] == []  # no grant: not even listed

    assert cli("file", "create", "--spec", str(SPEC), as_=ITO).exit_code == 4  # a clerk defines no file
    assert cli("file", "create", "--spec", str(SPEC), as_=PM).exit_code == 6  # already exists

    # A new version from JSON (by content type): a field added.
    spec = json.loads(json.dumps(f["spec"]))
    spec["fields"].append({"name": "note", "label": "備考", "type": "text", "sensitivity": "other"})
    spec_json = tmp_path / "payroll.json"
    spec_json.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    f2 = cli.json("file", "update", FILE, "--spec", str(spec_json), as_=PM)
    assert f2["version"] == 2 and "note" in [x["name"] for x in f2["spec"]["fields"]]
    versions = cli.json("file", "versions", FILE, as_=PM)
    assert [v["version"] for v in versions] == [1, 2]
    assert "備考" not in str(versions[0]) and cli("file", "versions", FILE, as_=PM).exit_code == 0

    bad = tmp_path / "bad.yaml"
    bad.write_text("code: x\nkind: wizardry\n", encoding="utf-8")
    r = cli("file", "create", "--spec", str(bad), as_=PM)
    assert r.exit_code == 7 and "kind" in r.stderr and str(bad) in r.stderr
    assert cli("file", "create", "--spec", str(tmp_path / "missing.yaml"), as_=PM).exit_code == 2
    assert cli("file", "show", "no-such-file", as_=PM).exit_code == 5
    other = cli("--url", "http://127.0.0.1:9", "file", "list", as_=PM)  # the global --url reaches these commands
    assert other.exit_code == 3 and "not signed in to http://127.0.0.1:9" in other.stderr


# ---------------------------------------------------------------------------------------- grants


def test_grants_are_given_by_the_protection_manager_and_never_to_oneself(org: DataOrg) -> None:
    """SEC-130 (only the file's manager changes its grants) and SEC-19 (never to yourself, exit 4);
    MN-6a: a grant names the clerk, the actions, the purposes."""
    org.define_file()
    cli = org.cli
    g = cli.json("grant", "add", FILE, "--user", ITO, "--action", "read", "--action", "create",
                 "--action", "reveal", "--purpose", P1, "--note", "源泉徴収票の作成", as_=PM)
    assert g["grantee"] == f"user:{ITO}" and g["actions"] == ["read", "create", "reveal"]
    assert g["purposes"] == [P1] and g["fields"] is None and g["granted_by"] == PM

    r = cli("grant", "add", FILE, "--user", PM, "--action", "read", "--purpose", P1, as_=PM)
    assert r.exit_code == 4 and "SEC-19" in r.stderr and "self_approval_forbidden" in r.stderr
    err = cli.json("grant", "add", FILE, "--role", "protection_manager@KYUYO", "--action", "read",
                   "--purpose", P1, as_=PM, expect=4)["error"]
    assert err["requirement"] == "SEC-19"

    r = cli("grant", "add", FILE, "--user", TANAKA, "--action", "read", "--purpose", P1, as_=ITO)
    assert r.exit_code == 4 and "SEC-130" in r.stderr
    r = cli("grant", "add", FILE, "--user", TANAKA, "--action", "read", "--purpose", "マーケティング", as_=PM)
    assert r.exit_code == 7 and "--purpose" in r.stderr
    r = cli("grant", "add", FILE, "--user", TANAKA, "--action", "fly", "--purpose", P1, as_=PM)
    assert r.exit_code == 7 and "--action" in r.stderr
    assert cli("grant", "add", FILE, "--action", "read", "--purpose", P1, as_=PM).exit_code == 2
    assert cli("grant", "add", FILE, "--user", "nobody", "--action", "read", "--purpose", P1, as_=PM).exit_code == 5

    role = cli.json("grant", "add", FILE, "--role", "clerk@JINJI", "--action", "read", "--field", "employee_no",
                    "--field", "name", "--segment", "JINJI", "--until", "2099-03-31", "--purpose", P2, as_=PM)
    assert role["grantee"] == "role:clerk@JINJI" and role["fields"] == ["employee_no", "name"]
    assert role["segments"] == ["JINJI"] and role["valid_until"].startswith("2099-03-31")
    assert cli.json("grant", "revoke", role["id"], as_=PM)["revoked_at"] is not None

    listed = cli.json("grant", "list", FILE, as_=PM)
    assert [x["id"] for x in listed] == [g["id"]]
    human = cli("grant", "list", FILE, as_=PM)
    assert human.exit_code == 0 and g["id"] in human.stdout and ITO in human.stdout

    revoked = cli.json("grant", "revoke", g["id"], as_=PM)
    assert revoked["revoked_at"] is not None
    assert cli.json("grant", "list", FILE, as_=PM) == []
    assert {x["id"] for x in cli.json("grant", "list", FILE, "--all", as_=PM)} == {g["id"], role["id"]}
    assert cli("grant", "revoke", "no-such-grant", as_=PM).exit_code == 5


def test_access_review_lists_grants_and_highlights_findings(org: DataOrg) -> None:
    """SEC-131(3): the periodic check of unneeded rights lists each grant in force per file with when
    it was last used, and flags rights whose holder can no longer use them (holder_disabled)."""
    org.define_file()
    ito_grant = org.grant()
    tanaka_grant = org.grant(TANAKA, "read")
    cli = org.cli
    items = cli.json("grant", "review", "--file", FILE, as_=PM)
    assert {i["grant"]["id"]: i["findings"] for i in items} == {ito_grant: [], tanaka_grant: []}

    org.login(ADMIN)
    cli.json("user", "disable", TANAKA, "--reason", "異動", as_=ADMIN)
    items = cli.json("grant", "review", as_=PM)
    assert {i["grant"]["id"]: i["findings"] for i in items} == {ito_grant: [], tanaka_grant: ["holder_disabled"]}
    human = cli("grant", "review", "--unused-days", "30", as_=PM)
    assert human.exit_code == 0
    assert FILE in human.stdout and tanaka_grant in human.stdout and "holder_disabled" in human.stdout
    assert "1 with findings" in human.stdout and "hogo grant revoke" in human.stdout
    assert cli("grant", "review", "--file", "no-such-file", as_=PM).exit_code == 5
    assert cli("grant", "review", "--unused-days", "0", as_=PM).exit_code == 7


# --------------------------------------------------------------------------------------- records


def test_shift_jis_import_names_the_rejected_rows_and_writes_them_0600(org: DataOrg, tmp_path: Path) -> None:
    """A Shift_JIS (CP932: 髙, 﨑) CSV is streamed in; the good rows are imported under a grant for the
    declared purpose (MN-6a, SEC-45, MN-3b) and encrypted (ANON-18); each rejected row is named with
    its field and reason, and written as it was, with the reason, to a rejects file created 0600."""
    org.define_file()
    org.grant()
    src = write_csv(tmp_path, "payroll.csv", SJIS_ROWS, encoding="cp932")
    r = org.cli("record", "import", FILE, "--csv", str(src), "--purpose", P1, "--encoding", "shift_jis", as_=ITO)
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "Imported 2 of 4 row(s)" in out and "2 row(s) rejected" in out
    assert "check digit" in out and "appears twice" in out and "my_number" in out
    assert BAD_MN not in out and MN1 not in out  # values are never echoed

    rejects = src.with_name("payroll.csv.rejects.csv")
    assert str(rejects) in out
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(rejects.read_bytes().decode("cp932"), newline="")))
    assert rows[0] == [*HEADER, "hogo_reject_reason"]
    assert [row[:5] for row in rows[1:]] == [SJIS_ROWS[1], SJIS_ROWS[3]]
    assert "my_number" in rows[1][5] and "appears twice" in rows[2][5]

    found = org.cli.json("record", "find", FILE, "--where", "employee_no=E0001", "--purpose", P1, as_=ITO)
    assert [x["values"]["name"] for x in found] == ["髙橋 一郎"]
    assert org.cli.json("file", "show", FILE, as_=PM)["records"] == 2

    again = org.cli.json("record", "import", FILE, "--csv", str(src), "--purpose", P1, "--encoding", "SHIFT_JIS",
                         "--rejects", str(tmp_path / "second.csv"), as_=ITO)
    assert again["imported"] == 0 and again["rejected_rows"] == 4  # existing records are not overwritten
    assert again["rejects_file"] == str(tmp_path / "second.csv")
    assert stat.S_IMODE(os.stat(tmp_path / "second.csv").st_mode) == 0o600


def test_atomic_import_with_a_bad_row_imports_nothing_and_exits_7(org: DataOrg, tmp_path: Path) -> None:
    """--atomic: all rows or none. One bad row (a My Number with a wrong check digit) and nothing is
    imported: exit 7, the row named, no rejects file unless asked for."""
    org.define_file()
    org.grant()
    src = write_csv(tmp_path, "utf8.csv", [["A1", "A1", "伊藤 翔", MN1, "KYUYO"],
                                           ["A2", "A2", "田中 花子", BAD_MN, "KYUYO"]], encoding="utf-8")
    r = org.cli("record", "import", FILE, "--csv", str(src), "--purpose", P1, "--atomic", as_=ITO)
    assert r.exit_code == 7
    assert "Nothing was imported" in r.stdout and "import_rejected" in r.stderr
    assert not src.with_name("utf8.csv.rejects.csv").exists()
    err = org.cli.json("record", "import", FILE, "--csv", str(src), "--purpose", P1, "--atomic", as_=ITO,
                       expect=7)["error"]
    report = err["details"]["import"]
    assert report["committed"] is False and report["imported"] == 0
    assert [(p["row"], p["field"]) for p in report["rejected"]] == [(2, "my_number")]
    assert org.cli("record", "get", FILE, "A1", "--purpose", P1, as_=ITO).exit_code == 5
    assert org.cli.json("file", "show", FILE, as_=PM)["records"] == 0

    good = write_csv(tmp_path, "good.csv", [["A1", "A1", "伊藤 翔", MN1, "KYUYO"]], encoding="utf-8")
    ok = org.cli.json("record", "import", FILE, "--csv", str(good), "--purpose", P1, "--atomic", as_=ITO)
    assert ok["committed"] is True and ok["imported"] == 1


def test_utf8_import_maps_columns_and_keeps_the_bom_in_the_rejects_file(org: DataOrg, tmp_path: Path) -> None:
    """UTF-8 with a BOM (as Excel writes it), Japanese column names mapped to fields (--map) and
    the record IDs in another column (--id-column). The rejects file keeps the input's encoding
    and header, and is created 0600 even where an older one was readable by others."""
    org.define_file()
    org.grant()
    src = tmp_path / "excel.csv"
    text = f"社員ID,社員番号,氏名,個人番号,所属\r\nX1,X1,伊藤 翔,{MN1},KYUYO\r\nX2,X2,,{MN3},KYUYO\r\n"
    src.write_bytes(text.encode("utf-8-sig"))
    stale = tmp_path / "excel.csv.rejects.csv"
    stale.write_text("old\n", encoding="utf-8")
    stale.chmod(0o644)
    report = org.cli.json("record", "import", FILE, "--csv", str(src), "--purpose", P1, "--id-column", "社員ID",
                          "--map", "社員番号=employee_no", "--map", "氏名=name", "--map", "個人番号=my_number",
                          "--map", "所属=department", as_=ITO)
    assert report["imported"] == 1 and report["record_ids_sample"] == ["X1"]
    assert [(p["row"], p["field"]) for p in report["rejected"]] == [(2, "name")]
    assert report["rejects_file"] == str(stale) and stat.S_IMODE(stale.stat().st_mode) == 0o600
    raw = stale.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["社員ID", "社員番号", "氏名", "個人番号", "所属", "hogo_reject_reason"]
    assert rows[1][:5] == ["X2", "X2", "", MN3, "KYUYO"] and rows[1][5].startswith("name:")
    r = org.cli("record", "import", FILE, "--csv", str(src), "--purpose", P1, as_=ITO)
    assert r.exit_code == 7 and "社員ID" in r.stderr and "--csv" in r.stderr  # unknown columns, nothing imported
    assert org.cli("record", "import", FILE, "--csv", str(src), "--purpose", P1, "--map", "x", as_=ITO).exit_code == 2
    missing = org.cli("record", "import", FILE, "--csv", str(tmp_path / "nope.csv"), "--purpose", P1, as_=ITO)
    assert missing.exit_code == 2 and "nope.csv" in missing.stderr
    nowhere = org.cli("record", "import", FILE, "--csv", str(src), "--purpose", P1,
                      "--rejects", str(tmp_path / "no-dir" / "r.csv"), as_=ITO)
    assert nowhere.exit_code == 2
    assert org.cli.json("file", "show", FILE, as_=PM)["records"] == 1


def test_record_get_masks_the_my_number_unless_revealed_and_find_uses_it(org: DataOrg, tmp_path: Path) -> None:
    """MN-6a: the My Number is masked unless --reveal asks and the grant has 'reveal'; the record
    shows its classification and restrictions first. Search by My Number is a POST (never in a URL)."""
    imported(org, tmp_path)
    cli = org.cli
    r = cli("record", "get", FILE, "E0001", "--purpose", P1, as_=ITO)
    assert r.exit_code == 0, r.stderr
    first = r.stdout.strip().splitlines()[0]
    assert "E0001" in first and "C3-I2-A1" in first and "no_copy" in first
    assert "髙橋 一郎" in r.stdout and "個人番号" in r.stdout and "(masked)" in r.stdout
    assert MN1 not in r.stdout and MN1[-4:] in r.stdout

    rec = cli.json("record", "get", FILE, "E0001", "--purpose", P1, as_=ITO)
    assert rec["masked"] == ["my_number"] and rec["values"]["my_number"] == "*" * 8 + MN1[-4:]
    shown = cli.json("record", "get", FILE, "E0001", "--purpose", P1, "--reveal", "my_number", as_=ITO)
    assert shown["values"]["my_number"] == MN1 and shown["revealed"] == ["my_number"]
    human = cli("record", "get", FILE, "E0001", "--purpose", P1, "--reveal", "my_number", as_=ITO)
    assert MN1 in human.stdout and "revealed" in human.stdout

    found = cli.json("record", "find", FILE, "--where", f"my_number={MN1}", "--purpose", P1, as_=ITO)
    assert [x["record_id"] for x in found] == ["E0001"] and MN1 not in json.dumps(found)
    human = cli("record", "find", FILE, "--where", f"my_number={MN3}", "--purpose", P1, as_=ITO)
    assert human.exit_code == 0 and "E0003" in human.stdout and MN3 not in human.stdout
    assert cli.json("record", "find", FILE, "--where", f"my_number={MN4}", "--purpose", P1, as_=ITO) == []
    # FIELD=- reads the value from standard input: the My Number stays out of argv and shell history.
    piped = cli.json("record", "find", FILE, "--where", "my_number=-", "--purpose", P1, as_=ITO, input=MN1 + "\n")
    assert [x["record_id"] for x in piped] == ["E0001"]
    r = cli("record", "find", FILE, "--where", "name=髙橋 一郎", "--purpose", P1, as_=ITO)
    assert r.exit_code == 7 and "not indexed" in r.stderr
    assert cli("record", "find", FILE, "--where", "my_number", "--purpose", P1, as_=ITO).exit_code == 2


def test_the_purpose_is_required_and_must_be_granted(org: DataOrg, tmp_path: Path) -> None:
    """SEC-45: every access declares its purpose (missing: usage error, exit 2; empty: exit 7); a
    purpose of the file not in the grant, or not a purpose of the file, is refused (exit 4) and
    recorded (MN-3b). Japanese purposes travel percent-encoded in X-Hogo-Purpose."""
    imported(org, tmp_path)
    cli = org.cli
    r = cli("record", "get", FILE, "E0001", as_=ITO)
    assert r.exit_code == 2 and "--purpose" in r.stderr
    r = cli("record", "get", FILE, "E0001", "--purpose", " ", as_=ITO)
    assert r.exit_code == 7 and "SEC-45" in r.stderr and "--purpose" in r.stderr
    r = cli("record", "get", FILE, "E0001", "--purpose", P2, as_=ITO)
    assert r.exit_code == 4 and "purpose_not_granted" in r.stderr and "SEC-45" in r.stderr
    assert cli("record", "get", FILE, "E0001", "--purpose", "マーケティング", as_=ITO).exit_code == 4
    assert cli("record", "find", FILE, "--where", f"my_number={MN1}", "--purpose", P2, as_=ITO).exit_code == 4
    assert cli("record", "get", FILE, "E0001", "--purpose", P1, as_=PM).exit_code == 4  # no grant: no data

    assert purpose_header(P1) == {"X-Hogo-Purpose": "%E6%BA%90%E6%B3%89%E5%BE%B4%E5%8F%8E%E7%A5%A8%E4%BD%9C"
                                                    "%E6%88%90%E4%BA%8B%E5%8B%99"}
    org.login(AUDITOR)
    denied = cli.json("audit", "events", "--event", "data:record", "--outcome", "denied", as_=AUDITOR)
    assert {e["reason"] for e in denied} >= {"purpose_not_granted", "purpose_not_of_file"}


def test_records_are_created_updated_and_deleted_under_a_grant(org: DataOrg) -> None:
    """MN-6a: each action needs its own grant (here read/create/update/delete, no reveal); the answer
    masks the My Number; a stale --revision conflicts (exit 6); deleted records are gone (exit 5)."""
    org.define_file()
    org.grant(ITO, "read", "create", "update", "delete")
    cli = org.cli
    r = cli("record", "create", FILE, "--purpose", P1, "--id", "E0100", "--set", "employee_no=E0100",
            "--set", "name=髙橋 一郎", "--set", f"my_number={MN1}", "--set", "department=KYUYO", as_=ITO)
    assert r.exit_code == 0, r.stderr
    assert "Created record E0100" in r.stdout and MN1 not in r.stdout and "C3-I2-A1" in r.stdout
    u = cli.json("record", "update", FILE, "E0100", "--purpose", P1, "--set", "name=髙橋 一朗", "--revision", "1",
                 as_=ITO)
    assert u["revision"] == 2 and u["values"]["name"] == "髙橋 一朗" and MN1 not in json.dumps(u)
    assert cli("record", "update", FILE, "E0100", "--purpose", P1, "--set", "name=x", "--revision", "1",
               as_=ITO).exit_code == 6
    r = cli("record", "create", FILE, "--purpose", P1, "--set", "employee_no=E0101", "--set", "name=伊藤 翔",
            "--set", f"my_number={BAD_MN}", "--set", "department=KYUYO", as_=ITO)
    assert r.exit_code == 7 and "my_number" in r.stderr and BAD_MN not in r.stderr
    assert cli("record", "get", FILE, "E0100", "--purpose", P1, "--reveal", "my_number", as_=ITO).exit_code == 4
    assert cli("record", "create", FILE, "--purpose", P1, "--set", "oops", as_=ITO).exit_code == 2

    assert cli.json("record", "delete", FILE, "E0100", "--purpose", P1, as_=ITO) == {"deleted": "E0100",
                                                                                     "file": FILE}
    assert cli("record", "get", FILE, "E0100", "--purpose", P1, as_=ITO).exit_code == 5
    assert cli("record", "delete", FILE, "E0100", "--purpose", P1, as_=PM).exit_code == 4


def test_key_rotation_keeps_every_record_readable(org: DataOrg, tmp_path: Path) -> None:
    """ANON-18 / SEC-133: a new data key version; every record is re-encrypted and still reads the
    same. Only the file's protection manager rotates (exit 4 for a clerk)."""
    imported(org, tmp_path)
    cli = org.cli
    before = cli.json("record", "get", FILE, "E0003", "--purpose", P1, "--reveal", "my_number", as_=ITO)
    rotated = cli.json("key", "rotate", FILE, as_=PM)
    assert rotated == {"file": FILE, "key_version": 2, "reencrypted": 2}
    human = cli("key", "rotate", FILE, as_=PM)
    assert human.exit_code == 0 and "key version 3" in human.stdout
    after = cli.json("record", "get", FILE, "E0003", "--purpose", P1, "--reveal", "my_number", as_=ITO)
    assert after["values"] == before["values"] and after["values"]["my_number"] == MN3
    r = cli("record", "get", FILE, "E0001", "--purpose", P1, as_=ITO)
    assert r.exit_code == 0 and "髙橋 一郎" in r.stdout
    assert cli("key", "rotate", FILE, as_=ITO).exit_code == 4
