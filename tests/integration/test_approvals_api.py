"""Approvals and corrections over HTTP: request a correction, list, show, approve, reject (ANON-8, SEC-19)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from hogo.services import grants, guard
from support import CTX, Instance, Org, bearer, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": "123456789018", "department": "KYUYO"}
NEW_NAME = "伊藤 翔太郎"


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito",
                        actions=["read", "create", "update"], purposes=[P1], ctx=CTX)
    guard.create_record(inst.hogo, o.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX, record_id="E1")
    return o


def test_correction_over_the_api_approved_by_the_protection_manager_ANON_8_SEC_19(client, org: Org):
    ito, pm = bearer(org.token("clerk.ito")), bearer(org.token("pm.takahashi"))
    url = f"/api/v1/files/{FILE}/records/E1/corrections"
    r = client.post(url, headers={**ito, "X-Hogo-Purpose": quote(P1)},
                    json={"values": {"name": NEW_NAME}, "reason": "氏名の誤記"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending" and body["fields"] == ["name"] and NEW_NAME not in r.text
    rid = body["id"]
    assert client.post(url, headers=ito, json={"values": {"name": NEW_NAME}, "reason": "x"}).status_code == 422
    # The requester cannot approve; the manager sees it in the inbox and approves.
    r = client.post(f"/api/v1/approvals/{rid}/approve", headers=ito, json={})
    err = r.json()["error"]
    assert r.status_code == 403 and err["code"] == "own_request" and err["requirement"] == "SEC-19"
    inbox = client.get("/api/v1/approvals", headers=pm).json()["requests"]
    assert [(x["id"], x["can_decide"]) for x in inbox] == [(rid, True)]
    assert client.post(f"/api/v1/approvals/{rid}/reject", headers=pm, json={}).status_code == 422  # reason required
    ch = client.get(f"/api/v1/approvals/{rid}/changes", headers=pm).json()
    assert ch["before"] == {"name": "伊藤 翔"} and ch["after"] == {"name": NEW_NAME}
    assert client.get(f"/api/v1/approvals/{rid}/changes", headers=bearer(org.token("auditor.watanabe"))
                      ).status_code == 403
    r = client.post(f"/api/v1/approvals/{rid}/approve", headers=pm, json={"reason": "確認した"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "applied" and r.json()["steps"][0]["decision"]["approver"] == "pm.takahashi"
    got = client.get(f"/api/v1/files/{FILE}/records/E1", headers={**ito, "X-Hogo-Purpose": quote(P1)}).json()
    assert got["values"]["name"] == NEW_NAME and got["revision"] == 2
    assert client.get(f"/api/v1/approvals/{rid}", headers=bearer(org.token("clerk.tanaka"))).status_code == 404
    assert client.get("/api/v1/approvals", headers=ito, params={"status": "applied"}).json()["requests"][0]["id"] == rid
