"""The records API over HTTP: purpose in a header, search by POST, CSV import, errors (MN-6a, SEC-45, MN-3b)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from support import CTX, Instance, Org, bearer, make_org, payroll_over_api
from support import my_number as mn

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
SPEC = Path(__file__).resolve().parents[1] / "data" / "payroll-spec.yaml"


def purpose(p: str = P1) -> dict[str, str]:
    return {"X-Hogo-Purpose": quote(p)}


@pytest.fixture
def org(inst: Instance) -> Org:
    return make_org(inst, define_file=False)


@pytest.fixture
def ready(client, org: Org) -> dict[str, str]:
    made = payroll_over_api(client, org, actions=["read", "create", "update", "delete", "reveal"])
    return {"pm": made["pm"], "ito": made["ito"], "tanaka": org.token("clerk.tanaka")}


def test_file_ledger_over_the_api_shows_marks_SEC_5_MN_3c(client, ready):
    r = client.get(f"/api/v1/files/{FILE}", headers=bearer(ready["pm"]))
    body = r.json()
    assert body["classification"] == "C3-I2-A1" and "no_take_out" in body["restrictions"]
    assert body["spec"]["administrative_task"] == P1
    assert [f["code"] for f in client.get("/api/v1/files", headers=bearer(ready["ito"])).json()] == [FILE]
    assert client.get("/api/v1/files", headers=bearer(ready["tanaka"])).json() == []  # no grant, not listed


def test_record_roundtrip_with_japanese_purpose_header_MN_6a(client, ready):
    h = {**bearer(ready["ito"]), **purpose()}
    r = client.post(f"/api/v1/files/{FILE}/records", headers=h, json={
        "record_id": "E1",
        "values": {"employee_no": "E1", "name": "伊藤 翔", "my_number": mn(7), "department": "KYUYO"}})
    assert r.status_code == 201, r.text
    assert r.json()["values"]["my_number"].startswith("********")
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers=h, params={"reveal": "my_number"})
    assert r.status_code == 200 and r.json()["values"]["my_number"] == mn(7)
    r = client.post(f"/api/v1/files/{FILE}/records/search", headers=h, json={"where": {"my_number": mn(7)}})
    assert [x["record_id"] for x in r.json()] == ["E1"]
    r = client.patch(f"/api/v1/files/{FILE}/records/E1", headers=h, json={"values": {"name": "伊藤 翔太"}})
    assert r.json()["revision"] == 2
    assert client.delete(f"/api/v1/files/{FILE}/records/E1", headers=h).status_code == 204
    assert client.get(f"/api/v1/files/{FILE}/records/E1", headers=h).status_code == 404


def test_missing_or_foreign_purpose_SEC_45(client, ready):
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers=bearer(ready["ito"]))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "purpose"
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers={**bearer(ready["ito"]), **purpose("営業活動")})
    assert r.status_code == 403 and r.json()["error"]["code"] == "denied_purpose_not_of_file"
    assert r.json()["error"]["requirement"] == "SEC-45"


def test_csv_import_over_http_larger_than_the_normal_body_limit(client, ready):
    rows = ["record_id,employee_no,name,my_number,department,address"]
    rows += [f"R{i},E{i},社員 {i},{mn(i)},KYUYO,{'東京都千代田区' * 10}" for i in range(6000)]
    rows.append("BAD,EX,x,123,KYUYO,")
    body = ("\n".join(rows) + "\n").encode("cp932")
    assert len(body) > 1024 * 1024
    r = client.post(f"/api/v1/files/{FILE}/records/import", content=body,
                    params={"encoding": "shift_jis"},
                    headers={**bearer(ready["ito"]), **purpose(), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["imported"] == 6000 and rep["rejected"] == [
        {"row": 6001, "field": "my_number", "reason": "個人番号 (My Number) must have 12 digits (got 3)"}]
    found = client.post(f"/api/v1/files/{FILE}/records/search", headers={**bearer(ready["ito"]), **purpose()},
                        json={"where": {"employee_no": "E5999"}}).json()
    assert found[0]["record_id"] == "R5999"


def test_a_token_needs_the_data_scope(client, ready, org: Org):
    from hogo.services import auth

    p = org.p("clerk.ito")
    import datetime as dt

    tok = auth.create_api_token(org.inst.hogo, p, name="batch", scopes=["self:account:read"],
                                expires_at=org.inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers={**bearer(tok.token), **purpose()})
    assert r.status_code == 403 and "data:record:read" in r.json()["error"]["message"]
    tok2 = auth.create_api_token(org.inst.hogo, p, name="batch2", scopes=["data:record:read"],
                                 expires_at=org.inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers={**bearer(tok2.token), **purpose()})
    assert r.status_code == 404  # allowed by scope and grant; the record does not exist


def test_grant_api_refuses_self_grant_SEC_19_and_review_lists(client, ready):
    r = client.post(f"/api/v1/files/{FILE}/grants", headers=bearer(ready["pm"]),
                    json={"user": "pm.takahashi", "actions": ["read"], "purposes": [P1]})
    assert r.status_code == 403 and r.json()["error"]["requirement"] == "SEC-19"
    r = client.post(f"/api/v1/files/{FILE}/grants", headers=bearer(ready["pm"]),
                    json={"user": "clerk.tanaka", "actions": ["read"], "purposes": [P1], "fields": ["name"],
                          "valid_until": "2026-12-31"})
    assert r.status_code == 201, r.text
    review = client.get("/api/v1/grants/review", params={"file": FILE}, headers=bearer(ready["pm"])).json()
    assert {x["grant"]["grantee"] for x in review} == {"user:clerk.ito", "user:clerk.tanaka"}
