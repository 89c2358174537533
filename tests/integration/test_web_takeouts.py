"""The web take-out register (/takeouts), Japanese first: request through the form, see it in the approval inbox
with its recipient, transport and due date, approve it, download the package, declare its disposal and have the
manager confirm it (SEC-47, SEC-48(2), SEC-49, MN-6d, SEC-19)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hogo.crypto import package as pkg
from hogo.services import audit_tree, files, grants, guard, takeouts
from support import CTX, Instance, Org, make_org, payroll_spec

FILE = "kyuyo-contacts"
P1 = "源泉徴収票作成事務"
PASS = "kusunoki-no-ki-no-shita-de"


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    spec: dict[str, Any] = payroll_spec()
    spec.update(code=FILE, kind="personal_information", restrictions=[],
                classification={"confidentiality": 2, "integrity": 1, "availability": 1})
    spec["fields"] = [f for f in spec["fields"] if f["name"] != "my_number"]
    pm = o.p("pm.takahashi")
    files.create_file(inst.hogo, pm, spec, ctx=CTX)
    grants.create_grant(inst.hogo, pm, FILE, user="clerk.ito", actions=["read", "create", "export"], purposes=[P1],
                        ctx=CTX)
    for i in (1, 2):
        guard.create_record(inst.hogo, o.p("clerk.ito"), FILE, {"employee_no": f"E{i}", "name": f"社員 {i}",
                                                               "department": "KYUYO"}, purpose=P1, ctx=CTX)
    return o


def _form(org: Org, csrf: str, **kw: str) -> dict[str, str]:
    due = (org.inst.clock.now() + dt.timedelta(days=7)).date().isoformat()
    data = {"csrf_token": csrf, "file": FILE, "fields": "employee_no,name", "where": "", "purpose": P1,
            "recipient": "税理士法人 みなと", "recipient_key": "", "passphrase_mode": "1",
            "destination": "みなと事務所", "transport": "media", "media_id": "USB-0042", "due": due, "note": ""}
    data.update(kw)
    return data


def test_register_request_approve_download_and_confirm_in_the_browser_SEC_47_SEC_49(web: TestClient, org: Org):
    hogo = org.inst.hogo
    csrf = org.web_sign_in(web, "clerk.ito")
    page = web.get("/takeouts")
    assert page.status_code == 200 and "持出管理簿" in page.text and 'data-testid="no-takeouts"' in page.text
    form = web.get(f"/takeouts/new?file={FILE}")
    assert form.status_code == 200 and 'data-testid="takeout-form"' in form.text
    assert web.post("/takeouts", data=_form(org, "")).status_code == 403  # no CSRF token
    r = web.post("/takeouts", data=_form(org, csrf), follow_redirects=False)
    assert r.status_code == 303, r.text
    detail = web.get(r.headers["location"])
    assert detail.status_code == 200 and "承認待ち" in detail.text and "USB-0042" in detail.text
    (x,) = takeouts.list_takeouts(hogo, org.p("clerk.ito"))
    assert x.transport == "media" and x.recipient_mode == "passphrase"
    listed = web.get("/takeouts")
    assert f'data-id="{x.id}"' in listed.text and "記録媒体" in listed.text
    # The manager sees it in the approval inbox with what leaves, to whom and until when, and approves it.
    csrf_pm = org.web_sign_in(web, "pm.takahashi")
    inbox = web.get("/approvals")
    assert 'data-testid="takeout-details"' in inbox.text and "税理士法人 みなと" in inbox.text
    assert "持出し・提供" in inbox.text and "USB-0042" in inbox.text
    assert web.post(f"/approvals/{x.request_id}/approve", data={"csrf_token": csrf_pm}).status_code == 200
    # The requester downloads the package (the passphrase in the form body), which opens.
    csrf = org.web_sign_in(web, "clerk.ito")
    page = web.get(f"/takeouts/{x.id}")
    assert 'data-testid="download-form"' in page.text
    short = web.post(f"/takeouts/{x.id}/download", data={"csrf_token": csrf, "passphrase": "short"})
    assert short.status_code == 422 and 'data-testid="page-error"' in short.text
    got = web.post(f"/takeouts/{x.id}/download", data={"csrf_token": csrf, "passphrase": PASS})
    assert got.status_code == 200 and got.headers["content-type"] == "application/octet-stream"
    assert PASS not in got.headers.get("content-disposition", "")
    path = org.inst.hogo.settings.data_dir / "got.hogopkg"
    path.write_bytes(got.content)
    v = pkg.verify_package(path, audit_tree.log_key(hogo).verifier_key)
    assert v.manifest["takeout_id"] == x.id and v.manifest["record_count"] == 2
    # The taker declares it disposed of; the manager confirms.
    r = web.post(f"/takeouts/{x.id}/dispose", data={"csrf_token": csrf, "note": "消去済み"})
    assert r.status_code == 200 and "保護管理者が確認します" in r.text
    csrf_pm = org.web_sign_in(web, "pm.takahashi")
    r = web.post(f"/takeouts/{x.id}/dispose", data={"csrf_token": csrf_pm, "note": "確認"})
    assert r.status_code == 200 and 'data-testid="confirmed"' in r.text and "廃棄確認済" in r.text


def test_a_refused_request_shows_the_reason_on_the_form_SEC_47(web: TestClient, org: Org):
    grants.create_grant(org.inst.hogo, org.p("pm.takahashi"), "payroll-mynumber", user="clerk.ito",
                        actions=["export"], purposes=[P1], ctx=CTX)
    csrf = org.web_sign_in(web, "clerk.ito")
    r = web.post("/takeouts", data=_form(org, csrf, file="payroll-mynumber", fields="name"))
    assert r.status_code == 403 and "取扱制限により持ち出せません" in r.text
    assert web.get("/takeouts/999").status_code == 404


def test_the_taker_sees_the_overdue_reminder_on_the_register_SEC_49(web: TestClient, org: Org, tmp_path):
    """SEC-49, MN-6d: a copy past its due date is marked overdue by the job and the taker is reminded."""
    hogo = org.inst.hogo
    x = takeouts.request_takeout(hogo, org.p("clerk.ito"), FILE, fields=["name"], purpose=P1, recipient="みなと",
                                 destination="事務所", transport="download",
                                 due=(org.inst.clock.now() + dt.timedelta(days=1)).date(), passphrase=True, ctx=CTX)
    from hogo.services import approvals

    approvals.decide(hogo, org.p("pm.takahashi"), x.request_id, approve=True, reason=None, ctx=CTX)
    takeouts.download(hogo, org.p("clerk.ito"), x.id, out_path=tmp_path / "p.hogopkg", passphrase=PASS, ctx=CTX)
    org.inst.clock.advance(days=3)
    takeouts.run_overdue(hogo)
    org.web_sign_in(web, "clerk.ito")
    page = web.get("/takeouts?status=all")
    assert 'data-testid="overdue-reminder"' in page.text and f"督促: 持出し #{x.id}" in page.text
    org.web_sign_in(web, "pm.takahashi")  # the reminder is the taker's; the manager sees the overdue status
    page = web.get("/takeouts")
    assert 'data-testid="overdue-reminder"' not in page.text and 'data-status="overdue"' in page.text
