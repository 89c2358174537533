"""The web pages for marks and working copies: a marks badge (Japanese first, English too) on file, list and
record pages (SEC-5, SEC-46(1)); the marks form on the file page, refused for a clerk (SEC-46(3)); the
working-copies page with the outstanding report, holder-only contents, disposal and the manager's
confirmation (ANON-17)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from test_marks import P_STAFF, staff_spec

from hogo.services import files, grants, guard, workcopies
from support import CTX, Instance, Org, make_org

FILE = "payroll-mynumber"
STAFF = "staff-list"
P1 = "源泉徴収票作成事務"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": "123456789018", "department": "KYUYO"}
LABEL_JA = "機密性3情報・完全性2情報・可用性1情報（複製禁止・持出禁止・暗号化必須）"


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


def test_marks_badge_on_file_list_and_record_pages_SEC_5_SEC_46(web: TestClient, org: Org):
    csrf = org.web_sign_in(web, "clerk.ito")
    for url in ("/files", f"/files/{FILE}"):
        page = web.get(url)
        assert page.status_code == 200 and 'data-testid="marks-badge"' in page.text
        assert LABEL_JA in page.text and "C3-I2-A1 [複製禁止 / no copy" in page.text
    rec = web.post(f"/files/{FILE}/records/E1", data={"csrf_token": csrf, "purpose": P1})
    assert rec.status_code == 200 and 'data-testid="marks-badge"' in rec.text and LABEL_JA in rec.text
    # A clerk sees no marks form; posting one anyway is refused with the rule.
    assert 'data-testid="marks-form"' not in web.get(f"/files/{STAFF}").text
    r = web.post(f"/files/{STAFF}/marks", data={"csrf_token": csrf, "confidentiality": "3", "reason": "x"})
    assert r.status_code == 403 and "SEC-46" in r.text


def test_marks_form_changes_the_marks_and_shows_the_history_SEC_46(web: TestClient, org: Org):
    csrf = org.web_sign_in(web, "pm.takahashi")
    page = web.get(f"/files/{STAFF}")
    assert 'data-testid="marks-form"' in page.text and "定義してから変更されていません" in page.text
    r = web.post(f"/files/{STAFF}/marks", data={"csrf_token": csrf, "confidentiality": "2", "integrity": "2",
                                                 "availability": "1", "r_no_take_out": "on", "reason": ""})
    assert r.status_code == 422
    r = web.post(f"/files/{STAFF}/marks", data={"csrf_token": csrf, "confidentiality": "2", "integrity": "2",
                                                 "availability": "1", "r_no_take_out": "on", "reason": "見直し"})
    assert r.status_code == 200 and "格付と取扱制限を変更しました（第2版）" in r.text
    assert 'data-testid="marks-history"' in r.text and "決定者" in r.text
    assert "機密性2情報・完全性2情報・可用性1情報（持出禁止）" in r.text
    assert files.show_file(org.inst.hogo, org.p("pm.takahashi"), STAFF).marks["label"] == "C2-I2-A1"


def test_working_copies_page_report_contents_dispose_confirm_ANON_17(web: TestClient, org: Org):
    hogo = org.inst.hogo
    c = workcopies.create_copy(hogo, org.p("clerk.ito"), STAFF, fields=["name"], purpose=P_STAFF,
                               expires_at=org.inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    csrf = org.web_sign_in(web, "clerk.ito")
    page = web.get("/workcopies")
    assert page.status_code == 200 and f'data-id="{c.id}"' in page.text and 'data-testid="wc-read"' in page.text
    assert "機密性2情報" in page.text and "伊藤" not in page.text  # the description only, not the rows
    got = web.post(f"/workcopies/{c.id}/read", data={"csrf_token": csrf})
    assert got.status_code == 200 and 'data-testid="wc-contents"' in got.text and "伊藤 翔" in got.text
    pm_csrf = org.web_sign_in(web, "pm.takahashi")
    assert web.post(f"/workcopies/{c.id}/read", data={"csrf_token": pm_csrf}).status_code == 403
    done = web.post(f"/workcopies/{c.id}/dispose", data={"csrf_token": pm_csrf})
    assert done.status_code == 200 and f"作業用複製 {c.id} を廃棄しました" in done.text
    assert 'data-testid="wc-awaiting"' in done.text and 'data-testid="wc-outstanding"' not in done.text
    ok = web.post(f"/workcopies/{c.id}/confirm", data={"csrf_token": pm_csrf, "note": "確認"})
    assert ok.status_code == 200 and f"作業用複製 {c.id} の消去を確認しました" in ok.text
    assert f'data-id="{c.id}"' not in ok.text
