"""End to end, issue 3: a real hogo server (uvicorn; SQLite, and PostgreSQL with HOGO_TEST_PG_URL)
driven by Debian's headless Chromium, under the production CSP.

The protection manager grants a clerk reading and revealing in the UI (SEC-130), and cannot grant to
himself (SEC-19); the clerk opens the file — classification and restrictions on show (SEC-5) — chooses
the purpose (SEC-45), searches by My Number (a POST: the number never enters a URL), sees it masked,
presses 表示 and sees it in full (MN-6a), each step recorded by the guard (MN-3b).

The data (departments, accounts with MFA, the file, a record) is prepared through the services on the
data directory before the server starts. Chromium: /usr/bin/chromium; without it these tests skip,
except in CI where they fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from browser_support import SHOTS, Tab, expect, serve, sign_in
from sqlalchemy import select

from live import LiveServer, init_data_dir
from support import payroll_spec

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "Kanri-Sekinin-2026!"
PASSWORD = "Hanami-Yozakura-Kaede-2026"
FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
MN = "123456789018"
MASKED = "********9018"



def sign_in_with(tab: Tab, username: str, recovery_code: str) -> None:
    """TOTP codes are single use and the preparation used the current one: sign in with a recovery code."""
    sign_in(tab, username, PASSWORD, recovery_code=recovery_code)
    expect(tab.page).to_have_url(re.compile(r"/$"))


def prepare(data_dir: Path, db_url: str | None) -> dict[str, tuple[str, ...]]:
    """Through the services, with the server not yet running: the payroll department, its protection
    manager and a clerk (MFA enrolled), the payroll My Number file, a grant letting the clerk create
    records (only), and two records. Returns each person's recovery codes."""
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.services import accounts, auth, files, grants, guard
    from hogo.services.audit import RequestContext

    init_data_dir(data_dir, admin="admin", admin_password=ADMIN_PASSWORD, database_url=db_url)
    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    ctx = RequestContext(client_addr="local", user_agent="e2e-prepare")
    codes: dict[str, tuple[str, ...]] = {}
    try:
        accounts.create_department(h, None, code="KYUYO", name="給与厚生課", ctx=ctx)
        for name, display, role in (("pm.takahashi", "高橋 誠", "protection_manager"),
                                    ("clerk.ito", "伊藤 美咲", "clerk")):
            accounts.create_user(h, None, username=name, display_name=display, department="KYUYO", roles=[role],
                                 password=PASSWORD, ctx=ctx)
            p = auth.login(h, username=name, password=PASSWORD, ctx=ctx).principal
            enrol = auth.start_mfa_enrolment(h, p, ctx)
            codes[name] = tuple(auth.confirm_mfa_enrolment(h, p, pyotp.TOTP(enrol.secret).now(), ctx))
        pm = auth.login(h, username="pm.takahashi", password=PASSWORD, recovery_code=codes["pm.takahashi"][0],
                        ctx=ctx).principal
        files.create_file(h, pm, payroll_spec(), ctx=ctx)
        grants.create_grant(h, pm, FILE, user="clerk.ito", actions=["create"], purposes=[P1], ctx=ctx)
        ito = auth.login(h, username="clerk.ito", password=PASSWORD, recovery_code=codes["clerk.ito"][0],
                         ctx=ctx).principal
        guard.create_record(h, ito, FILE, {
            "employee_no": "E0001", "name": "佐藤 花子", "name_kana": "サトウ ハナコ", "my_number": MN,
            "birth_date": "1988-07-14", "postal_code": "100-8977", "address": "東京都千代田区霞が関1-1-1",
            "phone": "03-1234-5678", "department": "KYUYO", "dependents": "2",
        }, purpose=P1, ctx=ctx, record_id="E0001")
        guard.create_record(h, ito, FILE, {"employee_no": "E0002", "name": "鈴木 一郎", "my_number": "111111111118",
                                           "department": "KYUYO"}, purpose=P1, ctx=ctx, record_id="E0002")
    finally:
        h.close()
    return codes


def access_events(data_dir: Path, db_url: str | None) -> list[tuple[str, str, str | None]]:
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.store.models import AuditEvent

    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    try:
        with h.unit_of_work(readonly=True) as db:
            rows = db.scalars(select(AuditEvent).where(AuditEvent.event.startswith("data:record"))
                              .order_by(AuditEvent.seq)).all()
            return [(r.event, r.outcome, r.actor_name) for r in rows]
    finally:
        h.close()


def test_manager_grants_reveal_and_the_clerk_finds_and_reveals_a_my_number_MN_6a_SEC_130_SEC_19(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    server = serve(servers, data_dir)

    # --- the protection manager grants the clerk read + reveal, in the UI (SEC-130)
    pm = Tab(browser, server.url)
    page = pm.page
    sign_in_with(pm, "pm.takahashi", codes["pm.takahashi"][1])
    page.get_by_test_id("nav-files").click()
    expect(page).to_have_url(re.compile(r"/files$"))
    card = page.get_by_test_id(f"file-{FILE}")
    expect(card.get_by_test_id("classification-label")).to_have_text("C3-I2-A1")
    expect(card.get_by_test_id("restrictions")).to_contain_text("持出禁止")
    page.screenshot(path=str(SHOTS / "files.png"), full_page=True)
    card.get_by_role("link", name="給与所得者の扶養控除等申告書ファイル").click()
    expect(page).to_have_url(re.compile(rf"/files/{FILE}$"))
    expect(page.get_by_test_id("ledger")).to_contain_text("所得税法第226条")
    page.get_by_test_id("grants-link").click()
    expect(page).to_have_url(re.compile(rf"/files/{FILE}/grants$"))

    page.fill("#grant-user", "clerk.ito")
    page.check("#act-read")
    page.check("#act-reveal")
    page.get_by_label(P1).check()
    page.fill("#grant-valid-until", "2031-03-31")
    page.get_by_test_id("grant-submit").click()  # htmx: the list and the form are swapped in
    expect(page.get_by_test_id("notice")).to_contain_text("clerk.ito")
    row = page.locator("tr[data-grantee='user:clerk.ito']").filter(has_text="マスク解除")
    expect(row).to_contain_text("2031-03-31")

    # SEC-19: not to himself; the refusal is shown in the form.
    page.fill("#grant-user", "pm.takahashi")
    page.check("#act-read")
    page.get_by_label(P1).check()
    page.get_by_test_id("grant-submit").click()
    expect(page.get_by_test_id("grant-error")).to_contain_text("SEC-19")
    page.screenshot(path=str(SHOTS / "grants.png"), full_page=True)
    page.get_by_test_id("review-file-link").click()  # the access review of this file (SEC-131)
    expect(page.get_by_test_id("review-summary")).to_be_visible()
    expect(page.locator("tr[data-grantee='user:clerk.ito']")).to_have_count(2)
    page.screenshot(path=str(SHOTS / "review.png"), full_page=True)
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login\?m=logged_out$"))

    # --- the clerk finds the record by My Number and reveals it (MN-6a)
    clerk = Tab(browser, server.url)
    page = clerk.page
    sign_in_with(clerk, "clerk.ito", codes["clerk.ito"][1])
    page.get_by_test_id("nav-files").click()
    page.get_by_role("link", name="給与所得者の扶養控除等申告書ファイル").click()
    expect(page.get_by_test_id("classification")).to_contain_text("要機密")
    page.select_option("#search-purpose", P1)
    page.fill("#q-my_number", "1234 5678 9018")
    page.get_by_test_id("search-submit").click()  # htmx POST: only the results are swapped in
    expect(page.get_by_test_id("result-count")).to_contain_text("1件")
    expect(page.get_by_test_id("result-my_number")).to_have_text(MASKED)
    assert MN not in page.url and MN not in page.content()
    page.screenshot(path=str(SHOTS / "search.png"), full_page=True)
    page.get_by_test_id("open-E0001").click()
    expect(page.get_by_role("heading", name="記録 E0001")).to_be_visible()
    expect(page.get_by_test_id("record-purpose")).to_have_text(P1)
    value = page.get_by_test_id("value-my_number")
    expect(value).to_have_text(MASKED)
    expect(page.get_by_test_id("value-name")).to_have_text("佐藤 花子")
    assert MN not in page.content()
    page.screenshot(path=str(SHOTS / "record-masked.png"), full_page=True)
    page.get_by_test_id("reveal-my_number").click()  # htmx POST with the CSRF header
    expect(page.get_by_test_id("value-my_number")).to_have_text(MN)
    expect(page.get_by_test_id("revealed-my_number")).to_be_visible()
    assert MN not in page.url
    page.screenshot(path=str(SHOTS / "record.png"), full_page=True)
    # The SEC-19 refusal is a 403 (htmx swaps it in); Chromium logs the status, nothing else may appear.
    pm.assert_clean(allow=(f"status of 403 (Forbidden) ({server.url}/files/{FILE}/grants)",))
    clerk.assert_clean()
    pm.close()
    clerk.close()
    server.stop()

    # Everything the clerk did is on record (MN-3b): search, read, reveal.
    recorded = [(e, o) for e, o, a in access_events(data_dir, db_url) if a == "clerk.ito"]
    assert recorded[-3:] == [("data:record:search", "success"), ("data:record:read", "success"),
                             ("data:record:reveal", "success")]


def test_clerk_without_a_reveal_grant_sees_the_refusal_in_place_MN_6a(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    """Reading allowed, revealing not: 表示 shows the guard's refusal in the field's cell; the number
    stays masked; the refusal is recorded."""
    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.services import auth, grants
    from hogo.services.audit import RequestContext

    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    ctx = RequestContext(client_addr="local", user_agent="e2e-prepare")
    try:
        pm = auth.login(h, username="pm.takahashi", password=PASSWORD, recovery_code=codes["pm.takahashi"][2],
                        ctx=ctx).principal
        grants.create_grant(h, pm, FILE, user="clerk.ito", actions=["read"], purposes=[P1], ctx=ctx)
    finally:
        h.close()
    server = serve(servers, data_dir)
    tab = Tab(browser, server.url)
    page = tab.page
    sign_in_with(tab, "clerk.ito", codes["clerk.ito"][1])
    page.goto(f"/files/{FILE}")
    page.click("details.open-by-id summary")
    page.select_option("#open-purpose", P1)
    page.fill("#open-record-id", "E0002")
    page.click("form[data-testid=open-form] button[type=submit]")
    expect(page.get_by_test_id("value-my_number")).to_have_text("********1118")
    page.get_by_test_id("reveal-my_number").click()
    expect(page.get_by_test_id("reveal-refusal")).to_contain_text("許可されていません")
    expect(page.get_by_test_id("value-my_number")).to_have_text("********1118")
    page.screenshot(path=str(SHOTS / "record-refused.png"), full_page=True)
    # htmx answers a refusal with 403 (swapped by the page's htmx config); Chromium logs the status.
    tab.assert_clean(allow=("status of 403 (Forbidden)",))
    tab.close()
    server.stop()
    assert ("data:record:reveal", "denied", "clerk.ito") in access_events(data_dir, db_url)
