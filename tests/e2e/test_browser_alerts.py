"""End to end, the alert inbox: a real hogo server (uvicorn; SQLite, and PostgreSQL with HOGO_TEST_PG_URL)
driven by Debian's headless Chromium, under the production CSP (ANON-13, SEC-132, ANON-12, SEC-19).

A clerk's bulk download (twelve reads over small thresholds set by the general protection manager) has
raised an alert. The auditor finds it in the inbox (Japanese first), acknowledges it in place (htmx, with
the CSRF header), opens it to see the log entries behind it, and closes it with a resolution; the page
switches to English. The data is prepared through the services on the data directory before the server
starts. Chromium: /usr/bin/chromium; without it these tests skip, except in CI where they fail.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyotp
import pytest
from browser_support import SHOTS, Tab, expect, serve, sign_in
from sqlalchemy import select

from live import LiveServer, init_data_dir

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "Kanri-Sekinin-2026!"
PASSWORD = "Hanami-Yozakura-Kaede-2026"
PEOPLE = (("gpm.sato", "佐藤 総括", "general_protection_manager"), ("auditor.watanabe", "渡辺 監査", "auditor"),
          ("clerk.ito", "伊藤 美咲", "clerk"))


def prepare(data_dir: Path, db_url: str | None) -> dict[str, tuple[str, ...]]:
    """Departments and people (MFA enrolled), thresholds of ten records set by the general protection
    manager, twelve reads by the clerk, and one analysis run. Returns each person's recovery codes."""
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.domain.events import Event, Outcome
    from hogo.services import accounts, analysis, audit, auth
    from hogo.services.audit import RequestContext
    from hogo.store.models import User

    init_data_dir(data_dir, admin="admin", admin_password=ADMIN_PASSWORD, database_url=db_url)
    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    ctx = RequestContext(client_addr="127.0.0.1", user_agent="e2e-prepare")
    codes: dict[str, tuple[str, ...]] = {}
    try:
        accounts.create_department(h, None, code="KANSA", name="監査室", ctx=ctx)
        for name, display, role in PEOPLE:
            accounts.create_user(h, None, username=name, display_name=display, department="KANSA", roles=[role],
                                 password=PASSWORD, ctx=ctx)
            p = auth.login(h, username=name, password=PASSWORD, ctx=ctx).principal
            enrol = auth.start_mfa_enrolment(h, p, ctx)
            codes[name] = tuple(auth.confirm_mfa_enrolment(h, p, pyotp.TOTP(enrol.secret).now(), ctx))
        gpm = auth.login(h, username="gpm.sato", password=PASSWORD, recovery_code=codes["gpm.sato"][0],
                         ctx=ctx).principal
        analysis.set_config(h, gpm, {"bulk.max_records": 10, "bulk.max_persons": 1000, "off_hours.enabled": False,
                                     "new_address.enabled": False}, note="試験環境", ctx=ctx)
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
        with h.unit_of_work() as db:
            ito = int(db.scalar(select(User.id).where(User.username == "clerk.ito")))
            for i in range(12):
                audit.record(db, now=start + dt.timedelta(seconds=5 * i), event=Event.RECORD_READ,
                             outcome=Outcome.SUCCESS, ctx=ctx, actor_id=ito, actor_name="clerk.ito",
                             file_code="payroll-mynumber", purpose="源泉徴収票作成事務", records=[f"E{i:04d}"])
        result = analysis.run(h)
        assert len(result.raised) == 1, result
    finally:
        h.close()
    return codes


def test_auditor_acknowledges_and_closes_a_bulk_download_alert_ANON_13_SEC_132(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    server = serve(servers, data_dir)

    tab = Tab(browser, server.url)
    page = tab.page
    sign_in(tab, "auditor.watanabe", PASSWORD, recovery_code=codes["auditor.watanabe"][0])
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/alerts")
    expect(page.get_by_role("heading", name="警告の一覧")).to_be_visible()
    row = page.locator("tbody[data-rule='bulk']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("大量ダウンロードの警告")
    expect(row.get_by_test_id("subject")).to_have_text("clerk.ito")
    expect(row.get_by_test_id("entries")).to_have_text("12")
    expect(row.get_by_test_id("status")).to_have_text("未対応")
    expect(page.get_by_test_id("warning-no_alert_sinks")).to_be_visible()

    # Acknowledge in place: htmx swaps the alert's row, with the CSRF header from the page.
    row.get_by_test_id("ack-note").fill("伊藤さんに業務内容を確認中")
    row.get_by_test_id("ack").click()
    row = page.locator("tbody[data-rule='bulk']")
    expect(row.get_by_test_id("row-notice")).to_contain_text("対応を開始しました")
    expect(row).to_have_attribute("data-status", "acknowledged")
    expect(row.get_by_test_id("status")).to_have_text("対応中")
    expect(row.get_by_test_id("acked-by")).to_contain_text("auditor.watanabe")
    expect(row.get_by_test_id("ack-form")).to_have_count(0)
    # (Screenshots only after htmx swaps: a full-page screenshot leaves a style attribute that htmx's
    # settling would copy, which the CSP rightly reports.)
    page.screenshot(path=str(SHOTS / "alerts.png"), full_page=True)

    # The detail page: the log entries behind the alert; closing it there with the resolution.
    row.get_by_test_id("alert-link").click()
    expect(page).to_have_url(re.compile(r"/alerts/\d+$"))
    expect(page.get_by_test_id("alert-summary")).to_contain_text("clerk.ito が 60 分以内に 12 件")
    expect(page.get_by_test_id("event-row")).to_have_count(12)
    page.screenshot(path=str(SHOTS / "alert-detail.png"), full_page=True)
    page.get_by_test_id("detail-actions").get_by_test_id("resolution").fill("源泉徴収票の一括作成。課長の指示で問題なし。")
    page.get_by_test_id("detail-actions").get_by_test_id("close").click()
    expect(page).to_have_url(re.compile(r"/alerts/\d+$"))
    expect(page.get_by_test_id("closed-by")).to_contain_text("源泉徴収票の一括作成")
    expect(page.get_by_test_id("detail-actions")).to_have_count(0)

    # The inbox no longer lists it; the closed ones do. In English on request.
    page.goto("/alerts")
    expect(page.get_by_test_id("no-alerts")).to_be_visible()
    page.goto("/alerts?status=closed")
    expect(page.locator("tbody[data-rule='bulk']")).to_have_attribute("data-status", "closed")
    page.get_by_role("link", name="English").click()  # back to the inbox (the switch keeps the path only)
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    page.get_by_role("link", name="Closed", exact=True).click()
    expect(page.locator("tbody[data-rule='bulk']")).to_contain_text("Bulk download warning")
    page.screenshot(path=str(SHOTS / "alerts-closed-en.png"), full_page=True)
    tab.assert_clean()
    tab.close()


def test_clerk_is_refused_the_inbox_SEC_132(browser: object, tmp_path: Path, servers: list[LiveServer],
                                             db_url: str | None):
    """SEC-132: the inbox is for auditors, SIRT and the general protection manager; a clerk is told so."""
    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    server = serve(servers, data_dir)
    tab = Tab(browser, server.url)
    sign_in(tab, "clerk.ito", PASSWORD, recovery_code=codes["clerk.ito"][0])
    response = tab.page.goto("/alerts")
    assert response is not None and response.status == 403
    expect(tab.page.locator("main")).to_contain_text("監査責任者、SIRT要員、総括保護管理者")
    tab.assert_clean(allow=("status of 403 (Forbidden)",))
    tab.close()
