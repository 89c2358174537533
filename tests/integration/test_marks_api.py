"""Marks and working copies over HTTP: marks in every file and record response (SEC-5, SEC-46(1)), changing
them (SEC-46(3)), working copies end to end (ANON-17, SEC-46(2), ANON-7)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from test_marks import P_STAFF, staff_spec

from hogo.services import files, grants, guard
from support import CTX, Instance, Org, bearer, make_org

FILE = "payroll-mynumber"
STAFF = "staff-list"
P1 = "源泉徴収票作成事務"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": "123456789018", "department": "KYUYO"}


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    hogo = inst.hogo
    files.create_file(hogo, o.p("pm.takahashi"), staff_spec(), ctx=CTX)
    for code, purpose in ((FILE, P1), (STAFF, P_STAFF)):
        grants.create_grant(hogo, o.p("pm.takahashi"), code, user="clerk.ito", actions=["read", "create"],
                            purposes=[purpose], ctx=CTX)
    guard.create_record(hogo, o.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX, record_id="E1")
    guard.create_record(hogo, o.p("clerk.ito"), STAFF, {"employee_no": "E0001", "name": "伊藤 翔",
                                                        "department": "KYUYO"}, purpose=P_STAFF, ctx=CTX,
                        record_id="S1")
    return o


def test_marks_in_file_and_record_responses_SEC_5_SEC_46(client, org: Org):
    """SEC-46(1): files (list and show) and records (get and search) carry a ``marks`` object."""
    ito = bearer(org.token("clerk.ito"))
    f = client.get(f"/api/v1/files/{FILE}", headers=ito).json()
    assert f["marks"]["label"] == "C3-I2-A1" and f["marks"]["restrictions"] == [
        "encryption_required", "no_copy", "no_take_out"]
    assert f["marks"]["label_ja"].startswith("機密性3情報・完全性2情報・可用性1情報")
    assert [x["marks"] for x in client.get("/api/v1/files", headers=ito).json() if x["code"] == FILE] == [f["marks"]]
    h = {**ito, "X-Hogo-Purpose": quote(P1)}
    assert client.get(f"/api/v1/files/{FILE}/records/E1", headers=h).json()["marks"] == f["marks"]
    found = client.post(f"/api/v1/files/{FILE}/records/search", headers=h, json={"where": {"employee_no": "E0001"}})
    assert found.json()[0]["marks"] == f["marks"]


def test_changing_marks_over_the_api_SEC_46(client, org: Org):
    """SEC-46(3): a clerk is refused (403, the rule named); the protection manager's change is a new version
    with its history."""
    ito, pm = bearer(org.token("clerk.ito")), bearer(org.token("pm.takahashi"))
    url = f"/api/v1/files/{STAFF}/marks"
    r = client.post(url, headers=ito, json={"confidentiality": 3, "reason": "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "marks_change_refused"
    assert r.json()["error"]["requirement"] == "SEC-46"
    assert client.post(url, headers=pm, json={"confidentiality": 3}).status_code == 422  # a reason is required
    r = client.post(url, headers=pm, json={"restrict": ["no_copy"], "integrity": 2, "reason": "見直し"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["marks"]["label"] == "C2-I2-A1"
    assert r.json()["marks"]["restrictions"] == ["no_copy"]
    hist = client.get(f"/api/v1/files/{STAFF}/marks/history", headers=ito).json()
    assert [(h["changed_by"], h["basis"], h["before"]["label"], h["after"]["label"]) for h in hist] == [
        ("pm.takahashi", "decider", "C2-I1-A1", "C2-I2-A1")]
    r = client.post(f"/api/v1/files/{FILE}/marks", headers=pm, json={"confidentiality": 1, "reason": "x"})
    assert r.status_code == 422  # a My Number file stays confidentiality 3


def test_working_copy_over_the_api_ANON_17(client, org: Org):
    """ANON-17: create (purpose in the header, conditions in the body), holder-only data, report, dispose and
    the manager's confirmation; the no-copy file is refused (SEC-46(2), ANON-7)."""
    ito, pm = bearer(org.token("clerk.ito")), bearer(org.token("pm.takahashi"))
    h = {**ito, "X-Hogo-Purpose": quote(P_STAFF)}
    refused = client.post("/api/v1/workcopies", headers={**ito, "X-Hogo-Purpose": quote(P1)},
                          json={"file": FILE, "fields": ["name"], "expires_at": "2026-04-02T18:00"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "working_copy_refused"
    r = client.post("/api/v1/workcopies", headers=h, json={"file": STAFF, "fields": ["name"],
                                                            "where": {"employee_no": "E0001"},
                                                            "expires_at": "2026-04-02T18:00"})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["records"] == 1 and c["marks"]["label"] == "C2-I1-A1" and c["status"] == "live"
    assert c["expires_at"].startswith("2026-04-02T09:00")  # 18:00 in Tokyo
    data = client.get(f"/api/v1/workcopies/{c['id']}/data", headers=ito).json()
    assert data["rows"] == [{"record_id": "S1", "values": {"name": "伊藤 翔"}}]
    assert client.get(f"/api/v1/workcopies/{c['id']}/data", headers=pm).status_code == 403
    rep = client.get("/api/v1/workcopies/report", headers=pm).json()
    assert [x["id"] for x in rep["outstanding"]] == [c["id"]]
    assert client.post(f"/api/v1/workcopies/{c['id']}/dispose", headers=ito).json()["status"] == "disposed"
    rep = client.get("/api/v1/workcopies/report", headers=pm).json()
    assert rep["outstanding"] == [] and [x["id"] for x in rep["awaiting_confirmation"]] == [c["id"]]
    done = client.post(f"/api/v1/workcopies/{c['id']}/confirm", headers=pm, json={"note": "確認"}).json()
    assert done["confirmed_by"] == "pm.takahashi" and done["key_destroyed"] and not done["data_present"]
    assert [x["id"] for x in client.get("/api/v1/workcopies?all=true", headers=ito).json()] == [c["id"]]
