"""The web deletion certificates (/certificates): list and show, Japanese first, for protection managers
and auditors; a clerk is refused; no personal data on the pages (ANON-10, MN-3c); and the API paths."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hogo.services import erasure, grants, guard
from support import CTX, Instance, Org, bearer, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
MN = "123456789018"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": MN, "department": "KYUYO"}


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito",
                        actions=["read", "create", "delete"], purposes=[P1], ctx=CTX)
    guard.create_record(inst.hogo, o.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX, record_id="E1")
    guard.create_record(inst.hogo, o.p("clerk.ito"), FILE, {**ITO, "employee_no": "E0002"}, purpose=P1, ctx=CTX,
                        record_id="E2")
    return o


def test_certificate_pages_list_and_show_without_personal_data_ANON_10(web: TestClient, org: Org):
    cert = erasure.erase_records(org.inst.hogo, org.p("clerk.ito"), FILE, ["E1"], reason="本人からの削除請求",
                                 purpose=P1, ctx=CTX)
    org.web_sign_in(web, "auditor.watanabe")
    page = web.get("/certificates")
    assert page.status_code == 200 and "消去証明" in page.text and 'data-testid="certificate-row"' in page.text
    assert "記録の消去" in page.text and "完了" in page.text
    one = web.get(f"/certificates/{cert.id}")
    assert one.status_code == 200 and "crypto-shredding" in one.text and "本人からの削除請求" in one.text
    assert "hogo certificate verify" in one.text and 'data-testid="signature"' in one.text
    assert MN not in one.text and "伊藤" not in one.text and MN not in page.text
    org.web_sign_in(web, "clerk.ito")
    assert web.get("/certificates").status_code == 403
    assert 'data-testid="nav-certificates"' not in web.get("/").text


def test_erasure_over_the_api_ANON_10_SEC_50(client: TestClient, org: Org):
    ito = bearer(org.token("clerk.ito"))
    r = client.post(f"/api/v1/files/{FILE}/records/E1/erase", json={"reason": "本人からの削除請求"},
                    headers={**ito, "X-Hogo-Purpose": "%E6%BA%90%E6%B3%89%E5%BE%B4%E5%8F%8E%E7%A5%A8%E4%BD%9C%E6%88%90"
                                                      "%E4%BA%8B%E5%8B%99"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "complete" and body["record_count"] == 1 and MN not in r.text
    assert client.get(f"/api/v1/files/{FILE}/records/E1", headers={**ito, "X-Hogo-Purpose": "x"}).status_code in (
        403, 404)
    aud = bearer(org.token("auditor.watanabe"))
    assert [c["id"] for c in client.get("/api/v1/certificates", headers=aud).json()] == [body["id"]]
    exported = client.get(f"/api/v1/certificates/{body['id']}/export", headers=aud).json()
    key_text = client.get("/api/v1/audit/public-key", headers=aud).text
    assert erasure.verify_certificate(exported, key_text)["ok"]
    assert client.get("/api/v1/certificates", headers=ito).status_code == 403
    pm = bearer(org.token("pm.takahashi"))
    att = client.post(f"/api/v1/certificates/{body['id']}/attachments", content=b"%PDF contractor",
                      params={"contractor": "委託先", "filename": "c.pdf"}, headers=pm)
    assert att.status_code == 201 and len(att.json()["sha256"]) == 64
    dry = client.post("/api/v1/retention/run", params={"dry_run": "true"}, headers=pm)
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    f = client.post(f"/api/v1/files/{FILE}/erase", json={"reason": "事務の廃止"}, headers=pm)
    assert f.status_code == 200 and f.json()["kind"] == "file" and f.json()["record_count"] == 1
    assert client.post(f"/api/v1/files/{FILE}/erase", json={"reason": "again"}, headers=pm).status_code == 409
