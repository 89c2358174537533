"""End to end: a real hogo server (uvicorn, SQLite) driven by Debian's headless Chromium.

Covers the first sign-in of a new administrator (ANON-11, SEC-157, MN-6b, MLIT-9.5.1), an
administrator creating a clerk who then signs in (SEC-129), disabling taking effect on an open
browser (SEC-129), administration refused to non-administrators (SEC-150), and the English switch.
The pages run under the production CSP, so a violation (an inline script or style) fails the test.

Chromium: /usr/bin/chromium (Debian package). Without it these tests skip, except in CI (``CI`` set)
where they fail. ``playwright install`` is never needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from browser_support import SHOTS, Tab, expect, serve, sign_in

from live import LiveServer, init_data_dir, secret_of

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "Kanri-Sekinin-2026!"
NEW_ADMIN_PASSWORD = "Yama-Kawa-Mori-Sora-88"
CLERK_NEW_PASSWORD = "Hanami-Yozakura-Kaede-2026"



def change_password(tab: Tab, current: str, new: str) -> None:
    page = tab.page
    expect(page).to_have_url(re.compile(r"/account/password$"))
    expect(page.get_by_test_id("pw-forced")).to_be_visible()
    page.fill("#current_password", current)
    page.fill("#new_password", new)
    page.fill("#confirm_password", new)
    page.click("form[action='/account/password'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/account/mfa$"))


def enrol_mfa(tab: Tab, *, screenshot: str | None = None) -> list[str]:
    """Reads the key shown on the page, answers with the authenticator's code; returns the recovery codes."""
    page = tab.page
    qr = page.get_by_test_id("mfa-qr")
    expect(qr).to_be_visible()
    assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    assert page.evaluate("document.querySelector('[data-testid=mfa-qr]').naturalWidth") > 100  # it rendered
    if screenshot:
        page.screenshot(path=str(SHOTS / screenshot), full_page=True)
    secret = page.get_by_test_id("mfa-secret").inner_text().replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("#mfa-confirm button[type=submit]")
    expect(page.get_by_test_id("recovery-codes")).to_be_visible()
    codes = [c.strip() for c in page.locator("ol.codes code").all_inner_texts()]
    assert len(codes) == 10
    page.get_by_test_id("codes-stored").click()
    expect(page).to_have_url(re.compile(r"/$"))
    return codes


def test_a_newcomer_administrator_changes_password_enrols_mfa_and_sees_home_ANON_11_SEC_157(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    """(a) ``hogo init`` without a password: the one-time password, then the forced steps, then home."""
    result = init_data_dir(tmp_path / "a", admin="admin", admin_password=None, database_url=db_url)
    assert result.one_time_password
    server = serve(servers, tmp_path / "a")
    tab = Tab(browser, server.url)
    page = tab.page

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    sign_in(tab, "admin", result.one_time_password)

    # The session cookie: HttpOnly, SameSite=Strict, and Secure (Chromium keeps Secure cookies
    # from http://127.0.0.1, a potentially trustworthy origin).
    cookie = tab.cookie("hogo_session")
    assert cookie is not None, "Chromium did not keep the session cookie"
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["secure"] is True
    assert cookie["path"] == "/" and cookie["expires"] == -1  # a browser-session cookie
    assert page.evaluate("document.cookie") == ""  # no script can read it

    # Every page leads to the forced steps until they are done.
    page.goto("/admin/users")
    expect(page).to_have_url(re.compile(r"/account/password$"))
    change_password(tab, result.one_time_password, NEW_ADMIN_PASSWORD)
    enrol_mfa(tab, screenshot="mfa.png")

    expect(page.get_by_test_id("me-username")).to_have_text("admin")
    expect(page.get_by_test_id("me-roles")).to_contain_text("システム管理者")
    sign_ins = page.get_by_test_id("sign-ins")
    expect(sign_ins).to_contain_text("成功")
    expect(sign_ins).to_contain_text("127.0.0.1")
    expect(page.get_by_test_id("session-expires")).to_contain_text("JST")
    page.screenshot(path=str(SHOTS / "home.png"), full_page=True)
    tab.assert_clean()
    tab.close()


def test_b_c_admin_creates_a_clerk_who_signs_in_then_is_disabled_while_signed_in_SEC_129(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    """(b) The administrator creates a department and a clerk in it and reads the one-time password
    from the page; the clerk signs in and is made to change it and enrol MFA. (c) The administrator
    disables the clerk while the clerk's browser is open: its next page load goes to /login."""
    result = init_data_dir(tmp_path / "b", admin="admin", admin_password=ADMIN_PASSWORD, database_url=db_url)
    assert result.otpauth_uri
    admin_totp = pyotp.TOTP(secret_of(result.otpauth_uri))
    server = serve(servers, tmp_path / "b")

    admin = Tab(browser, server.url)
    page = admin.page
    sign_in(admin, "admin", ADMIN_PASSWORD, code=admin_totp.now())
    expect(page).to_have_url(re.compile(r"/$"))

    page.get_by_role("link", name="課室").click()
    expect(page).to_have_url(re.compile(r"/admin/departments$"))
    page.fill("#dept-code", "JINJI")
    page.fill("#dept-name", "人事課")
    page.click("form[data-testid=create-department] button[type=submit]")
    expect(page.get_by_test_id("notice")).to_contain_text("JINJI")
    expect(page.get_by_test_id("departments")).to_contain_text("人事課")

    page.get_by_role("link", name="利用者管理").click()
    page.fill("#new-username", "clerk.tanaka")
    page.fill("#new-display_name", "田中 花子")
    page.select_option("#new-department", "JINJI")
    page.select_option("#new-roles", ["clerk"])
    page.click("form[data-testid=create-user] button[type=submit]")
    one_time = page.get_by_test_id("otp").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}", one_time)
    row = page.locator("tbody#user-clerk\\.tanaka")
    expect(row).to_contain_text("事務取扱担当者")
    expect(row).to_contain_text("JINJI")
    page.screenshot(path=str(SHOTS / "users.png"), full_page=True)
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login\?m=logged_out$"))
    assert admin.cookie("hogo_session") is None

    clerk = Tab(browser, server.url)
    sign_in(clerk, "clerk.tanaka", one_time)
    change_password(clerk, one_time, CLERK_NEW_PASSWORD)
    enrol_mfa(clerk)
    expect(clerk.page.get_by_test_id("me-roles")).to_contain_text("事務取扱担当者")
    expect(clerk.page.get_by_test_id("me-display-name")).to_have_text("田中 花子")
    expect(clerk.page.get_by_role("link", name="利用者管理")).to_have_count(0)

    # (c) TOTP codes are single use: the administrator's second sign-in uses a recovery code.
    sign_in(admin, "admin", ADMIN_PASSWORD, recovery_code=result.recovery_codes[0])
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/admin/users")
    row = page.locator("tbody#user-clerk\\.tanaka")
    row.locator("details summary").click()
    row.locator("button[data-action=disable]").click()  # htmx, after hx-confirm
    row = page.locator("tbody#user-clerk\\.tanaka")
    expect(row.get_by_test_id("state")).to_have_text("無効")
    expect(row.get_by_test_id("row-notice")).to_be_visible()

    # SEC-19: the administrator cannot disable themselves; the error shows in the row.
    own = page.locator("tbody#user-admin")
    own.locator("details summary").click()
    own.locator("button[data-action=disable]").click()
    expect(page.locator("tbody#user-admin").get_by_test_id("row-error")).to_contain_text("SEC-19")

    clerk.page.reload()
    expect(clerk.page).to_have_url(re.compile(r"/login\?m=expired$"))
    expect(clerk.page.get_by_test_id("login-message")).to_contain_text("セッション")
    admin.assert_clean()
    clerk.assert_clean()
    admin.close()
    clerk.close()


def test_d_non_administrator_gets_403_on_administration_SEC_150(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    """(d) An auditor (not an administrator) asking for /admin/users gets the 403 page."""
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.services import accounts, auth
    from hogo.services.audit import RequestContext

    data_dir = tmp_path / "d"
    init_data_dir(data_dir, admin="admin", admin_password=ADMIN_PASSWORD, database_url=db_url)
    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    ctx = RequestContext(client_addr="local", user_agent="test")
    try:
        accounts.create_user(h, None, username="auditor.watanabe", display_name="渡辺 恵", roles=["auditor"],
                             password=CLERK_NEW_PASSWORD, ctx=ctx)
        p = auth.login(h, username="auditor.watanabe", password=CLERK_NEW_PASSWORD, ctx=ctx).principal
        enrol = auth.start_mfa_enrolment(h, p, ctx)
        codes = auth.confirm_mfa_enrolment(h, p, pyotp.TOTP(enrol.secret).now(), ctx)
    finally:
        h.close()
    server = serve(servers, data_dir)
    tab = Tab(browser, server.url)
    sign_in(tab, "auditor.watanabe", CLERK_NEW_PASSWORD, recovery_code=codes[0])
    expect(tab.page).to_have_url(re.compile(r"/$"))
    expect(tab.page.get_by_test_id("me-roles")).to_contain_text("監査責任者")
    response = tab.page.goto("/admin/users")
    assert response is not None and response.status == 403
    expect(tab.page.locator("main")).to_contain_text("権限がありません")
    tab.assert_clean(allow=("status of 403 (Forbidden) (" + server.url + "/admin/users)",))
    tab.close()


def test_e_english_switch_shows_english_labels(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    """(e) The language links switch every label to English (and back)."""
    result = init_data_dir(tmp_path / "e", admin="admin", admin_password=ADMIN_PASSWORD, database_url=db_url)
    assert result.otpauth_uri
    server = serve(servers, tmp_path / "e")
    tab = Tab(browser, server.url)
    page = tab.page
    page.goto("/login")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.fill("#totp", pyotp.TOTP(secret_of(result.otpauth_uri)).now())
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_test_id("me-roles")).to_contain_text("System administrator")
    expect(page.get_by_role("heading", name="Recent sign-ins")).to_be_visible()
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Create a user")).to_be_visible()
    page.get_by_role("link", name="日本語").click()
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", name="利用者の登録")).to_be_visible()
    tab.assert_clean()
    tab.close()
