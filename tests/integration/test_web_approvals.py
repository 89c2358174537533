"""The web approval inbox (/approvals): the protection manager approves or rejects a correction with the
CSRF token; the requester sees no decide form and is refused (SEC-19); Japanese first (ANON-8)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hogo.services import approvals, corrections, grants, guard
from support import CTX, Instance, Org, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": "123456789018", "department": "KYUYO"}
NEW_NAME = "伊藤 翔太郎"


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito", actions=["read", "create"],
                        purposes=[P1], ctx=CTX)
    guard.create_record(inst.hogo, o.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX, record_id="E1")
    return o


def request(org: Org) -> int:
    return corrections.request_correction(org.inst.hogo, org.p("clerk.ito"), FILE, "E1", {"name": NEW_NAME},
                                          reason="氏名の誤記", purpose=P1, ctx=CTX).id


def test_inbox_approve_with_csrf_applies_the_correction_ANON_8_SEC_19(web: TestClient, org: Org):
    rid = request(org)
    csrf = org.web_sign_in(web, "pm.takahashi")
    page = web.get("/approvals")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "承認の申請" in page.text and 'data-testid="decide-form"' in page.text and NEW_NAME not in page.text
    assert web.post(f"/approvals/{rid}/approve", data={"reason": "確認済み"}).status_code == 403  # no CSRF token
    r = web.post(f"/approvals/{rid}/approve", data={"csrf_token": csrf, "reason": "確認済み"})
    assert r.status_code == 200 and f"申請 {rid} を承認しました（状態: 反映済）" in r.text
    assert approvals.get_request(org.inst.hogo, org.p("pm.takahashi"), rid).status == "applied"


def test_requester_sees_no_decide_form_and_is_refused_and_reject_needs_a_reason_SEC_19(web: TestClient, org: Org):
    rid = request(org)
    csrf = org.web_sign_in(web, "clerk.ito")
    page = web.get("/approvals")
    assert f'data-id="{rid}"' in page.text and 'data-testid="decide-form"' not in page.text
    r = web.post(f"/approvals/{rid}/approve", data={"csrf_token": csrf})
    assert r.status_code == 403 and "自分の申請は決裁できません" in r.text
    csrf = org.web_sign_in(web, "pm.takahashi")
    r = web.post(f"/approvals/{rid}/reject", data={"csrf_token": csrf, "reason": ""})
    assert r.status_code == 422
    r = web.post(f"/approvals/{rid}/reject", data={"csrf_token": csrf, "reason": "根拠資料がない"})
    assert r.status_code == 200 and f"申請 {rid} を却下しました" in r.text
