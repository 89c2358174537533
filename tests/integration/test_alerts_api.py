"""The alert inbox and the analysis over the REST API, on SQLite and PostgreSQL (ANON-13, ANON-12, SEC-132,
SEC-107(2), SEC-84, SEC-19, MN-6c).

Auditors, SIRT and the general protection manager read and act on alerts; clerks and administrators
are refused with 403 ``forbidden`` naming the permission. Nobody handles an alert about themselves, nor
reviews the thresholds they set (SEC-19).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hogo.domain.events import Event, Outcome
from hogo.services import accounts, analysis, audit
from hogo.services.audit import RequestContext
from hogo.store.models import AuditEvent, User
from support import CTX, USER_PASSWORD, Instance, active_user, api_login, bearer, web_sign_in

JST = dt.timezone(dt.timedelta(hours=9))
T0 = dt.datetime(2026, 4, 7, 10, 0, tzinfo=JST)
FILE = "payroll-mynumber"
ROLES = {"gpm.sato": "general_protection_manager", "auditor.watanabe": "auditor", "sirt.kobayashi": "sirt",
         "clerk.ito": "clerk"}


@pytest.fixture
def secrets(inst: Instance) -> dict[str, str]:
    """A person in each role (with MFA); their TOTP secrets."""
    admin = inst.admin_principal()
    accounts.create_department(inst.hogo, admin, code="KANSA", name="監査室", ctx=CTX)
    return {name: active_user(inst, admin, name, [role], "KANSA") for name, role in ROLES.items()}


@pytest.fixture
def tokens(inst: Instance, client: TestClient, secrets: dict[str, str]) -> dict[str, dict[str, str]]:
    """Bearer headers for the admin and for each person."""
    out = {"admin": bearer(api_login(client, inst)["token"])}
    for name, secret in secrets.items():
        out[name] = bearer(api_login(client, inst, name, USER_PASSWORD, secret)["token"])
    return out


def uid(inst: Instance, name: str) -> int:
    with inst.hogo.unit_of_work(readonly=True) as db:
        return int(db.scalar(select(User.id).where(User.username == name)))


def downloads(inst: Instance, name: str, n: int, start: dt.datetime = T0) -> None:
    """``n`` reads of distinct persons by ``name``, 20 seconds apart."""
    who = uid(inst, name)
    with inst.hogo.unit_of_work() as db:
        for i in range(n):
            audit.record(db, now=start + dt.timedelta(seconds=20 * i), event=Event.RECORD_READ,
                         outcome=Outcome.SUCCESS, ctx=RequestContext(client_addr="10.0.0.8"), actor_id=who,
                         actor_name=name, file_code=FILE, purpose="源泉徴収票作成事務", records=[f"E{i:04d}"])


def set_threshold(client: TestClient, tokens: dict[str, dict[str, str]], changes: dict[str, Any]) -> Any:
    """As the general protection manager. The test client's address is new to every user who signed in
    through the services first: sign-ins from new addresses are not what these tests look at."""
    r = client.put("/api/v1/analysis/config", headers=tokens["gpm.sato"],
                   json={"changes": {"new_address.enabled": False, **changes}, "note": "試験のため小さく"})
    assert r.status_code == 200, r.text
    return r.json()


def test_clerks_and_administrators_are_refused_with_the_permission_named_SEC_132(
        client: TestClient, tokens: dict[str, dict[str, str]]):
    """SEC-132, ANON-12: the analysis and its alerts are for auditors, SIRT and the general protection
    manager; anyone else gets 403 ``forbidden`` with the permission they lack."""
    for who in ("clerk.ito", "admin"):
        h = tokens[who]
        for method, url, body in (("GET", "/api/v1/alerts", None), ("GET", "/api/v1/alerts/1", None),
                                  ("POST", "/api/v1/alerts/1/ack", {"note": "x"}),
                                  ("POST", "/api/v1/alerts/1/close", {"resolution": "x"}),
                                  ("POST", "/api/v1/analysis/run", None), ("GET", "/api/v1/analysis/config", None),
                                  ("PUT", "/api/v1/analysis/config", {"changes": {"bulk.max_records": 5}, "note": "x"}),
                                  ("POST", "/api/v1/analysis/config/review", None),
                                  ("GET", "/api/v1/analysis/report?period=2026-04", None)):
            r = client.request(method, url, headers=h, json=body)
            assert r.status_code == 403, (who, url, r.text)
            err = r.json()["error"]
            assert err["code"] == "forbidden" and err["details"]["permission"].startswith("audit:"), err
    # The auditor reviews thresholds but does not set them.
    r = client.put("/api/v1/analysis/config", headers=tokens["auditor.watanabe"],
                   json={"changes": {"bulk.max_records": 5}, "note": "x"})
    assert r.status_code == 403 and r.json()["error"]["details"]["permission"] == "audit:analysis:configure"
    assert client.get("/api/v1/alerts").status_code == 401


def test_run_list_show_acknowledge_and_close_an_alert_ANON_13(
        inst: Instance, client: TestClient, tokens: dict[str, dict[str, str]]):
    """ANON-13: a bulk download raises an alert when the analysis runs; the inbox lists it in Japanese and
    English; its detail lists the log entries behind it (and that reading is logged, ANON-12); it is
    acknowledged with a note and closed with a resolution, each step logged; a closed alert stays closed."""
    set_threshold(client, tokens, {"bulk.max_records": 10, "bulk.max_persons": 1000})
    downloads(inst, "clerk.ito", 12)
    r = client.post("/api/v1/analysis/run", headers=tokens["sirt.kobayashi"])
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "done" and run["trigger"] == "manual" and len(run["raised"]) == 1
    alert_id = run["raised"][0]

    listed = client.get("/api/v1/alerts", headers=tokens["auditor.watanabe"]).json()
    [a] = [x for x in listed["alerts"] if x["rule"] == "bulk"]
    assert a["id"] == alert_id and a["status"] == "open" and a["severity"] == "high"
    assert a["title_ja"] == "大量ダウンロードの警告" and a["title_en"] == "Bulk download warning"
    assert a["summary_ja"].startswith("clerk.ito が 60 分以内に 12 件") and a["subject"] == "clerk.ito"
    assert a["event_count"] == 12 and a["params"]["records"] == 12
    assert "no_alert_sinks" in {w["code"] for w in listed["warnings"]}

    detail = client.get(f"/api/v1/alerts/{alert_id}", headers=tokens["auditor.watanabe"]).json()
    assert detail["linked"] == 12 and [e["seq"] for e in detail["events"]] == list(
        range(a["first_seq"], a["last_seq"] + 1))
    assert {e["event"] for e in detail["events"]} == {"data:record:read"}
    with inst.hogo.unit_of_work(readonly=True) as db:
        read = db.scalars(select(AuditEvent).where(AuditEvent.event == Event.LOG_READ.value,
                                                   AuditEvent.target == f"alert:{alert_id}")).all()
    assert [e.actor_name for e in read] == ["auditor.watanabe"]

    r = client.post(f"/api/v1/alerts/{alert_id}/ack", headers=tokens["auditor.watanabe"],
                    json={"note": "伊藤さんに確認中"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert r.json()["acknowledged_by"] == "auditor.watanabe" and r.json()["ack_note"] == "伊藤さんに確認中"
    r = client.post(f"/api/v1/alerts/{alert_id}/ack", headers=tokens["sirt.kobayashi"], json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "alert_not_open"
    r = client.post(f"/api/v1/alerts/{alert_id}/close", headers=tokens["sirt.kobayashi"], json={"resolution": ""})
    assert r.status_code == 422
    r = client.post(f"/api/v1/alerts/{alert_id}/close", headers=tokens["sirt.kobayashi"],
                    json={"resolution": "源泉徴収票の一括作成。課長の指示によるもので問題なし。"})
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["closed_by"] == "sirt.kobayashi"
    r = client.post(f"/api/v1/alerts/{alert_id}/close", headers=tokens["gpm.sato"], json={"resolution": "x"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "alert_closed"

    assert client.get("/api/v1/alerts", headers=tokens["gpm.sato"]).json()["alerts"] == []
    closed = client.get("/api/v1/alerts?status=closed", headers=tokens["gpm.sato"]).json()["alerts"]
    assert [x["id"] for x in closed] == [alert_id]
    with inst.hogo.unit_of_work(readonly=True) as db:
        steps = db.execute(select(AuditEvent.event, AuditEvent.actor_name).where(
            AuditEvent.target == f"alert:{alert_id}", AuditEvent.event.like("audit:alert:%"))
            .order_by(AuditEvent.seq)).all()
    assert [tuple(s) for s in steps] == [("audit:alert:raised", None),
                                         ("audit:alert:acknowledged", "auditor.watanabe"),
                                         ("audit:alert:closed", "sirt.kobayashi")]
    assert client.get("/api/v1/alerts/99999", headers=tokens["gpm.sato"]).status_code == 404


def test_nobody_handles_an_alert_about_themselves_SEC_19(
        inst: Instance, client: TestClient, tokens: dict[str, dict[str, str]]):
    """SEC-19 (an auditee never audits themselves): the SIRT member whose own downloads raised the alert
    can neither acknowledge nor close it; a colleague can."""
    set_threshold(client, tokens, {"bulk.max_records": 10, "bulk.max_persons": 1000})
    downloads(inst, "sirt.kobayashi", 12)
    alert_id = client.post("/api/v1/analysis/run", headers=tokens["auditor.watanabe"]).json()["raised"][0]
    for url, body in ((f"/api/v1/alerts/{alert_id}/ack", {"note": "問題なし"}),
                      (f"/api/v1/alerts/{alert_id}/close", {"resolution": "問題なし"})):
        r = client.post(url, headers=tokens["sirt.kobayashi"], json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "own_alert"
        assert r.json()["error"]["requirement"] == "SEC-19"
    r = client.post(f"/api/v1/alerts/{alert_id}/close", headers=tokens["gpm.sato"], json={"resolution": "確認済み"})
    assert r.status_code == 200


def test_thresholds_over_the_api_are_versioned_checked_and_reviewed_ANON_13_SEC_84(
        client: TestClient, tokens: dict[str, dict[str, str]]):
    """SEC-84, ANON-13: a change makes a new version with the reason; bad values are refused naming the
    setting; the review is recorded by someone other than the author, and sets the next due date."""
    before = client.get("/api/v1/analysis/config", headers=tokens["auditor.watanabe"]).json()
    assert before["version"] == 0 and before["review_overdue"] is True
    assert "config_never_reviewed" in {w["code"] for w in before["warnings"]}
    cfg = set_threshold(client, tokens, {"bulk.max_records": "5000", "working_hours.end": "21:00"})
    assert cfg["version"] == 1 and cfg["settings"]["bulk"]["max_records"] == 5000
    assert cfg["settings"]["working_hours"]["end"] == "21:00" and cfg["defaults"]["bulk"]["max_records"] == 1000
    assert cfg["created_by"] == "gpm.sato" and cfg["note"] == "試験のため小さく" and cfg["reviewed_at"] is None
    r = client.put("/api/v1/analysis/config", headers=tokens["gpm.sato"],
                   json={"changes": {"bulk.max_records": -1}, "note": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "bulk.max_records"
    r = client.put("/api/v1/analysis/config", headers=tokens["gpm.sato"], json={"changes": {"bulk.max_records": 1}})
    assert r.status_code == 422  # a change needs its reason
    r = client.post("/api/v1/analysis/config/review", headers=tokens["gpm.sato"], json={"note": "自己確認"})
    assert r.status_code == 403 and r.json()["error"]["requirement"] == "SEC-19"
    r = client.post("/api/v1/analysis/config/review", headers=tokens["auditor.watanabe"],
                    json={"note": "しきい値は業務量に照らして妥当"})
    assert r.status_code == 200, r.text
    reviewed = r.json()
    assert reviewed["reviewed_by"] == "auditor.watanabe" and reviewed["review_overdue"] is False
    due = dt.datetime.fromisoformat(reviewed["review_due_at"])
    assert due - dt.datetime.fromisoformat(reviewed["reviewed_at"]) == dt.timedelta(days=365)
    assert [h["version"] for h in reviewed["history"]] == [1]


def test_monthly_report_as_json_and_markdown_MN_6c(
        inst: Instance, client: TestClient, tokens: dict[str, dict[str, str]]):
    """MN-6c, SEC-132: the periodic report for a month (or a period), JSON with its Markdown, or Markdown
    alone; Japanese headings first; generating it is logged."""
    downloads(inst, "clerk.ito", 3)
    r = client.get("/api/v1/analysis/report?period=2026-04", headers=tokens["auditor.watanabe"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"]["files"] == [{"file": FILE, "events": 3, "records": 3, "users": 1, "denied": 0}]
    assert body["report"]["since"].startswith("2026-04-01T00:00:00+09:00")
    assert body["markdown"].startswith("# アクセス記録の分析報告 (Access record analysis report)")
    r = client.get("/api/v1/analysis/report?since=2026-04-07&until=2026-04-07&format=markdown",
                   headers=tokens["gpm.sato"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert "| payroll-mynumber | 3 | 3 | 1 | 0 |" in r.text
    assert client.get("/api/v1/analysis/report?period=2026-13",
                      headers=tokens["gpm.sato"]).json()["error"]["details"]["field"] == "period"
    assert client.get("/api/v1/analysis/report", headers=tokens["gpm.sato"]).status_code == 422
    with inst.hogo.unit_of_work(readonly=True) as db:
        made = db.scalars(select(AuditEvent.actor_name).where(AuditEvent.event == Event.REPORT_GENERATED.value)).all()
    assert made == ["auditor.watanabe", "gpm.sato"]


# ------------------------------------------------------------------------------------- web


def raise_alert(inst: Instance, secrets: dict[str, str], who: str = "clerk.ito") -> int:
    from support import sign_in

    gpm = sign_in(inst, "gpm.sato", secrets["gpm.sato"]).principal
    analysis.set_config(inst.hogo, gpm, {"bulk.max_records": 10, "bulk.max_persons": 1000,
                                         "new_address.enabled": False}, note="試験", ctx=CTX)
    downloads(inst, who, 12)
    r = analysis.run(inst.hogo)
    [alert_id] = r.raised
    return alert_id


def test_web_inbox_lists_acknowledges_and_closes_in_place_ANON_13(
        inst: Instance, web: TestClient, secrets: dict[str, str]):
    """ANON-13, SEC-132: the inbox shows the alert (Japanese first, English on request) with the
    analysis's warnings; acknowledging (htmx) answers with the alert's row; an alert about oneself is
    refused with the reason (SEC-19); closing without htmx goes back to the inbox; the detail page lists
    the log entries behind the alert, and looking is logged (ANON-12). Every POST needs the CSRF token."""
    alert_id = raise_alert(inst, secrets)
    csrf = web_sign_in(web, inst, "auditor.watanabe", secrets["auditor.watanabe"])
    page = web.get("/alerts")
    assert page.status_code == 200
    assert "大量ダウンロードの警告" in page.text and f'id="alert-{alert_id}"' in page.text
    assert 'data-testid="warning-no_alert_sinks"' in page.text
    web.cookies.set("hogo_lang", "en")
    assert "Bulk download warning" in web.get("/alerts").text
    web.cookies.set("hogo_lang", "ja")

    r = web.post(f"/alerts/{alert_id}/ack", data={"note": "確認中"}, headers={"HX-Request": "true"})
    assert r.status_code == 403  # no CSRF token
    r = web.post(f"/alerts/{alert_id}/ack", data={"note": "確認中", "csrf_token": csrf},
                 headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith(f'<tbody id="alert-{alert_id}"')
    assert 'data-status="acknowledged"' in r.text and "確認中" in r.text and 'data-testid="row-notice"' in r.text

    detail = web.get(f"/alerts/{alert_id}")
    assert detail.status_code == 200 and detail.text.count('data-testid="event-row"') == 12
    assert "clerk.ito が 60 分以内に 12 件" in detail.text
    with inst.hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(AuditEvent.actor_name).where(AuditEvent.event == Event.LOG_READ.value,
                                                             AuditEvent.target == f"alert:{alert_id}")) \
            == "auditor.watanabe"

    r = web.post(f"/alerts/{alert_id}/close", data={"resolution": "問題なし", "csrf_token": csrf},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    assert f'id="alert-{alert_id}"' not in web.get("/alerts").text
    assert 'data-status="closed"' in web.get("/alerts?status=closed").text

    own = raise_again(inst, "sirt.kobayashi")
    csrf = web_sign_in(web, inst, "sirt.kobayashi", secrets["sirt.kobayashi"])
    r = web.post(f"/alerts/{own}/ack", data={"csrf_token": csrf}, headers={"HX-Request": "true"})
    assert r.status_code == 403 and 'data-testid="row-error"' in r.text and "SEC-19" in r.text


def raise_again(inst: Instance, who: str) -> int:
    downloads(inst, who, 12, start=T0 + dt.timedelta(days=1))
    [alert_id] = analysis.run(inst.hogo).raised
    return alert_id


def test_web_inbox_is_refused_to_clerks_and_administrators_SEC_132(
        inst: Instance, web: TestClient, secrets: dict[str, str]):
    """SEC-132: the inbox is for auditors, SIRT and the general protection manager."""
    web_sign_in(web, inst, "clerk.ito", secrets["clerk.ito"])
    r = web.get("/alerts")
    assert r.status_code == 403 and "監査責任者、SIRT要員、総括保護管理者" in r.text
    assert web.get("/alerts/1").status_code == 403
