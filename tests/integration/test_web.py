"""The web UI over TestClient, on SQLite and PostgreSQL: sign-in (MN-6b, MLIT-9.5.1, SEC-128), CSRF,
cookie flags, forced password change (ANON-11) and MFA enrolment (SEC-157), session end (ANON-21,
SEC-129), administration for administrators only (SEC-150, SEC-19), Japanese/English."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hogo.api.app import create_app
from hogo.domain.events import Event
from hogo.services import accounts, auth
from hogo.store.models import AuditEvent, Department, User
from support import CTX, Instance, bearer, hidden_csrf, meta_csrf

NEW_PASSWORD = "Sakura-Kumo-Umi-47"
CLERK_PASSWORD = "Hanami-Yozakura-Kaede-2026"


# ---------------------------------------------------------------------------------- helpers


def login_csrf(c: TestClient) -> str:
    r = c.get("/login")
    assert r.status_code == 200
    return hidden_csrf(r.text)


def web_login(c: TestClient, username: str, password: str, code: str | None = None, **extra: str):
    data = {"csrf_token": login_csrf(c), "username": username, "password": password, **extra}
    if code:
        data["totp"] = code
    return c.post("/login", data=data, follow_redirects=False)


def admin_login(c: TestClient, inst: Instance):
    r = web_login(c, inst.admin, inst.admin_password, inst.next_code())
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return r


def page_csrf(c: TestClient, path: str = "/") -> str:
    r = c.get(path)
    assert r.status_code == 200, r.text
    return meta_csrf(r.text)


def set_cookies(response) -> dict[str, SimpleCookie]:
    out = {}
    for header in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        for name in jar:
            out[name] = jar
    return out


def ensure_department(inst: Instance, code: str = "JINJI", name: str = "人事課") -> None:
    with inst.hogo.unit_of_work() as db:
        exists = db.scalar(select(Department.id).where(Department.code == code)) is not None
    if not exists:
        accounts.create_department(inst.hogo, None, code=code, name=name, ctx=CTX)


def active_user(inst: Instance, name: str, roles: list[str], department: str | None = None) -> str:
    """An account that has finished its first sign-in steps (set password, MFA). Returns its TOTP secret."""
    if department:
        ensure_department(inst, department)
    accounts.create_user(inst.hogo, inst.admin_principal(), username=name, roles=roles, department=department,
                         password=CLERK_PASSWORD, ctx=CTX)
    p = auth.login(inst.hogo, username=name, password=CLERK_PASSWORD, ctx=CTX).principal
    enrol = auth.start_mfa_enrolment(inst.hogo, p, CTX)
    auth.confirm_mfa_enrolment(inst.hogo, p, inst.next_code(enrol.secret), CTX)
    return enrol.secret


def count_events(inst: Instance, event: Event) -> int:
    with inst.hogo.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == event.value)))


def user_row(inst: Instance, name: str) -> User:
    with inst.hogo.unit_of_work() as db:
        u = db.scalar(select(User).where(User.username == name))
        assert u is not None
        db.expunge(u)
        return u


def user_row_roles(inst: Instance, name: str) -> list[str]:
    return [r.role for r in accounts.get_user(inst.hogo, inst.admin_principal(), name).roles]


# ------------------------------------------------------------------------------- sign-in


def test_login_page_is_japanese_by_default_uncached_and_script_free(web: TestClient):
    r = web.get("/login")
    assert r.status_code == 200
    assert '<html lang="ja">' in r.text
    assert "サインイン" in r.text and "ワンタイムコード" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    # CSP: no inline script or style anywhere (only /static files).
    assert re.search(r"<script(?![^>]*\ssrc=)", r.text) is None
    assert " style=" not in r.text and "<style" not in r.text


def test_static_files_are_served_from_the_package(web: TestClient):
    js = web.get("/static/htmx.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "htmx" in js.text
    assert web.get("/static/hogo.css").headers["content-type"].startswith("text/css")
    assert "X-CSRF-Token" in web.get("/static/hogo.js").text


def test_every_form_posts_and_no_page_puts_a_secret_in_a_url(web: TestClient, inst: Instance):
    admin_login(web, inst)
    for path in ("/", "/admin/users", "/admin/departments", "/account/password", "/login"):
        html = web.get(path).text
        forms = re.findall(r"<form\b[^>]*>", html)
        assert forms, path
        assert all('method="post"' in f for f in forms), (path, forms)
        assert "hgs_" not in html and "?token" not in html and "password=" not in html


def test_admin_signs_in_with_password_and_totp_and_sees_home_MN_6b_MLIT_9_5_1(web: TestClient, inst: Instance):
    r = admin_login(web, inst)
    assert "hgs_" not in r.headers["location"]  # never a secret in a URL
    home = web.get("/")
    assert home.status_code == 200
    assert home.headers["cache-control"] == "no-store"
    assert "システム管理者" in home.text  # Role.label_ja
    assert 'data-testid="me-username"><code>admin</code>' in home.text
    assert 'data-testid="sign-ins"' in home.text and "成功" in home.text  # a recent sign-in
    assert "<code>testclient</code>" in home.text  # ... with its address (TestClient's peer name)
    assert "JST" in home.text  # times in Asia/Tokyo


def test_session_cookie_is_httponly_samesite_strict_and_secure_SEC_128(client: TestClient, inst: Instance):
    """The conftest client speaks plain http://127.0.0.1; the flags are set all the same. (httpx, unlike
    Chromium, never returns a Secure cookie over http, so the login CSRF cookie is sent by hand.)"""
    page = client.get("/login")
    token = hidden_csrf(page.text)
    r = client.post("/login", data={"csrf_token": token, "username": inst.admin, "password": inst.admin_password,
                                     "totp": inst.next_code()},
                    headers={"Cookie": f"hogo_login_csrf={token}"}, follow_redirects=False)
    assert r.status_code == 303
    header = next(h for h in r.headers.get_list("set-cookie") if h.startswith("hogo_session="))
    flags = {p.strip().lower() for p in header.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "secure"} <= flags
    assert not any(f.startswith(("max-age", "expires")) for f in flags)  # ends with the browser session
    lc = set_cookies(client.get("/login"))["hogo_login_csrf"]["hogo_login_csrf"]
    assert lc["httponly"] and lc["samesite"].lower() == "strict" and int(lc["max-age"]) <= 900


def test_login_over_plain_http_with_secure_cookies_explains_itself(client: TestClient, inst: Instance):
    """A browser drops Secure cookies over http:// (except on localhost): say so instead of a bare 403."""
    token = hidden_csrf(client.get("/login").text)  # the client, like such a browser, keeps no Secure cookie
    r = client.post("/login", data={"csrf_token": token, "username": inst.admin, "password": inst.admin_password})
    assert r.status_code == 403
    assert "HTTPS" in r.text and "cookie_secure" in r.text


def test_unknown_pages_are_html_and_unknown_api_paths_stay_json(web: TestClient):
    r = web.get("/no/such/page")
    assert r.status_code == 404 and "ページが見つかりません" in r.text
    assert r.headers["content-type"].startswith("text/html") and r.headers["cache-control"] == "no-store"
    r = web.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = web.get("/logout")
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    assert web.get("/api/v1/auth/logout").json()["error"]["code"] == "method_not_allowed"


def test_cookie_without_secure_when_configured_off(inst: Instance):
    inst.hogo.settings = inst.hogo.settings.with_(cookie_secure=False)
    with TestClient(create_app(inst.hogo), base_url="http://127.0.0.1") as c:
        r = web_login(c, inst.admin, inst.admin_password, inst.next_code())
        header = next(h for h in r.headers.get_list("set-cookie") if h.startswith("hogo_session="))
        assert "secure" not in header.lower() and "httponly" in header.lower()
        assert c.get("/", follow_redirects=False).status_code == 200


def test_login_failures_get_one_generic_answer_SEC_128(web: TestClient, inst: Instance):
    unknown = web_login(web, "nobody", "whatever-password-1", "123456")
    wrong = web_login(web, inst.admin, "wrong-password-123", inst.next_code())
    assert unknown.status_code == wrong.status_code == 401
    text = "サインインできませんでした"
    assert text in unknown.text and text in wrong.text
    msg = lambda html: re.search(r'data-testid="login-error">([^<]*)<', html).group(1)  # noqa: E731
    assert msg(unknown.text) == msg(wrong.text)
    assert "hogo_session" not in web.cookies


def test_missing_code_asks_for_it_keeps_user_name_never_the_password_SEC_157(web: TestClient, inst: Instance):
    r = web_login(web, inst.admin, inst.admin_password)
    assert r.status_code == 401
    assert 'data-testid="login-message"' in r.text and "6桁" in r.text
    assert 'value="admin"' in r.text
    assert inst.admin_password not in r.text


def test_recovery_code_signs_in_once(web: TestClient, inst: Instance):
    code = inst.recovery_codes[0]
    assert web_login(web, inst.admin, inst.admin_password, recovery_code=code).status_code == 303
    web.cookies.clear()
    assert web_login(web, inst.admin, inst.admin_password, recovery_code=code).status_code == 401


def test_rate_limited_address_gets_a_message_SEC_128(web: TestClient, inst: Instance):
    for _ in range(inst.hogo.settings.rate_limit_failures_per_address):
        web_login(web, "nobody", "wrong-password-123")
    r = web_login(web, inst.admin, inst.admin_password, inst.next_code())
    assert r.status_code == 429
    assert "しばらくしてから" in r.text


# ------------------------------------------------------------------------------------ CSRF


def test_login_without_matching_csrf_is_refused_and_records_nothing(web: TestClient, inst: Instance):
    before = count_events(inst, Event.LOGIN_SUCCEEDED)
    token = login_csrf(web)
    data = {"username": inst.admin, "password": inst.admin_password, "totp": inst.next_code()}
    assert web.post("/login", data=data).status_code == 403
    assert web.post("/login", data={**data, "csrf_token": token + "x"}).status_code == 403
    web.cookies.clear()  # the field alone, without the cookie (a cross-site form)
    r = web.post("/login", data={**data, "csrf_token": token})
    assert r.status_code == 403
    assert "何も変更されていません" in r.text
    assert count_events(inst, Event.LOGIN_SUCCEEDED) == before
    assert "hogo_session" not in web.cookies


def test_post_without_valid_csrf_token_changes_nothing(web: TestClient, inst: Instance):
    admin_login(web, inst)
    token = page_csrf(web)
    for data, headers in [
        ({"code": "SOMU", "name": "総務課"}, {}),
        ({"code": "SOMU", "name": "総務課", "csrf_token": "forged"}, {}),
        ({"code": "SOMU", "name": "総務課"}, {"X-CSRF-Token": "forged", "HX-Request": "true"}),
        ({"code": "SOMU", "name": "総務課", "csrf_token": token}, {"Origin": "https://evil.example"}),
        ({"code": "SOMU", "name": "総務課", "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
        ({"code": "SOMU", "name": "総務課", "csrf_token": token}, {"Origin": "null", "Sec-Fetch-Site": "same-site"}),
    ]:
        r = web.post("/admin/departments", data=data, headers=headers)
        assert r.status_code == 403, (data, headers)
        assert "不正な送信" in r.text
    with inst.hogo.unit_of_work() as db:
        assert db.scalar(select(Department.id).where(Department.code == "SOMU")) is None
    r = web.post("/logout", data={})
    assert r.status_code == 403
    assert web.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_csrf_token_in_header_works_for_htmx_and_same_origin_is_accepted(web: TestClient, inst: Instance):
    admin_login(web, inst)
    token = page_csrf(web)
    r = web.post("/admin/departments", data={"code": "SOMU", "name": "総務課"},
                 headers={"X-CSRF-Token": token, "Origin": "https://127.0.0.1"})
    assert r.status_code == 201
    assert "SOMU" in r.text


def test_same_origin_form_post_as_chromium_sends_it_is_accepted(web: TestClient, inst: Instance):
    """Under Referrer-Policy: no-referrer, Chromium sends ``Origin: null`` with same-origin form posts."""
    admin_login(web, inst)
    r = web.post("/admin/departments", data={"code": "SOMU", "name": "総務課", "csrf_token": page_csrf(web)},
                 headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 201


def test_csrf_token_is_bound_to_the_session(web: TestClient, inst: Instance):
    admin_login(web, inst)
    old = page_csrf(web)
    web.cookies.clear()
    admin_login(web, inst)
    assert page_csrf(web) != old
    r = web.post("/admin/departments", data={"code": "SOMU", "name": "総務課", "csrf_token": old})
    assert r.status_code == 403


# ----------------------------------------------------------------------- forced first steps


def test_new_account_is_forced_to_change_password_then_enrol_mfa_ANON_11_SEC_157(web: TestClient, inst: Instance):
    ensure_department(inst)
    otp = accounts.create_user(inst.hogo, inst.admin_principal(), username="tanaka", display_name="田中 花子",
                               department="JINJI", roles=["clerk"], ctx=CTX).one_time_password
    r = web_login(web, "tanaka", otp)
    assert r.status_code == 303 and r.headers["location"] == "/account/password"
    for path in ("/", "/admin/users", "/account/mfa"):
        r = web.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/account/password", path
    page = web.get("/account/password")
    assert "パスワードの変更" in page.text and 'data-testid="pw-forced"' in page.text
    token = meta_csrf(page.text)

    # The policy's problems, in Japanese, next to the form; nothing changes.
    r = web.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                            "new_password": "tanaka", "confirm_password": "tanaka"})
    assert r.status_code == 422
    assert "12文字以上にしてください" in r.text and "ユーザー名を含めないでください" in r.text
    r = web.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                            "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "x"})
    assert r.status_code == 422 and "一致しません" in r.text
    r = web.post("/account/password", data={"csrf_token": token, "current_password": "wrong-wrong-wrong",
                                            "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert r.status_code == 403 and "現在のパスワードが正しくありません" in r.text
    assert user_row(inst, "tanaka").must_change_password

    r = web.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                            "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"
    assert web.get("/", follow_redirects=False).headers["location"] == "/account/mfa"

    mfa = web.get("/account/mfa")
    assert mfa.status_code == 200
    assert 'src="data:image/svg+xml' in mfa.text
    secret = re.search(r'data-testid="mfa-secret">([^<]+)<', mfa.text).group(1).replace(" ", "")
    wrong = web.post("/account/mfa", data={"csrf_token": token, "code": "000000"},
                     headers={"HX-Request": "true"})
    assert wrong.status_code == 200 and 'data-testid="mfa-error"' in wrong.text
    assert "<html" not in wrong.text  # a partial: the QR code stays on the page
    done = web.post("/account/mfa", data={"csrf_token": token, "code": inst.next_code(secret)})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([^<]+)</code></li>", done.text)
    assert len(codes) == 10
    home = web.get("/")
    assert home.status_code == 200 and "事務取扱担当者" in home.text and "田中 花子" in home.text
    # The recovery codes are not shown again.
    assert web.get("/account/mfa", follow_redirects=False).headers["location"] == "/"


def test_mfa_confirmation_as_htmx_swaps_in_the_recovery_codes(web: TestClient, inst: Instance):
    accounts.create_user(inst.hogo, inst.admin_principal(), username="sato", roles=["auditor"],
                         password=CLERK_PASSWORD, ctx=CTX)
    r = web_login(web, "sato", CLERK_PASSWORD)
    assert r.headers["location"] == "/account/mfa"
    page = web.get("/account/mfa")
    secret = re.search(r'data-testid="mfa-secret">([^<]+)<', page.text).group(1).replace(" ", "")
    r = web.post("/account/mfa", data={"code": inst.next_code(secret)},
                 headers={"HX-Request": "true", "X-CSRF-Token": meta_csrf(page.text)})
    assert r.status_code == 200
    assert r.headers["hx-retarget"] == "#main"
    assert 'data-testid="recovery-codes"' in r.text


# -------------------------------------------------------------------------- administration


@pytest.mark.parametrize("path", ["/admin/users", "/admin/departments"])
def test_admin_pages_are_forbidden_to_non_administrators_SEC_150(web: TestClient, inst: Instance, path: str):
    secret = active_user(inst, "watanabe", ["auditor"])
    r = web_login(web, "watanabe", CLERK_PASSWORD, inst.next_code(secret))
    assert r.headers["location"] == "/"
    home = web.get("/")
    assert "監査責任者" in home.text
    assert "/admin/users" not in home.text  # not offered in the menu
    r = web.get(path)
    assert r.status_code == 403
    assert "権限がありません" in r.text
    token = meta_csrf(home.text)
    r = web.post("/admin/users", data={"csrf_token": token, "username": "evil", "roles": "admin"})
    assert r.status_code == 403
    r = web.post("/admin/users/admin/disable", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert r.status_code == 403
    assert user_row(inst, "admin").disabled_at is None
    with inst.hogo.unit_of_work() as db:
        assert db.scalar(select(User.id).where(User.username == "evil")) is None


def test_admin_creates_department_and_user_and_sees_the_one_time_password_once_SEC_129(
        web: TestClient, inst: Instance):
    admin_login(web, inst)
    token = page_csrf(web, "/admin/departments")
    r = web.post("/admin/departments", data={"csrf_token": token, "code": "JINJI", "name": "人事課"})
    assert r.status_code == 201 and "人事課" in r.text
    r = web.post("/admin/departments", data={"csrf_token": token, "code": "JINJI", "name": "人事課"})
    assert r.status_code == 409 and 'data-testid="error-code"' in r.text and "既に使われています" in r.text

    r = web.post("/admin/users", data={"csrf_token": token, "username": "tanaka", "display_name": "田中 花子",
                                       "department": "JINJI", "roles": ["clerk"], "valid_until": "2027-03-31"})
    assert r.status_code == 201, r.text
    otp = re.search(r'data-testid="otp">([^<]+)<', r.text).group(1)
    assert auth.login(inst.hogo, username="tanaka", password=otp, ctx=CTX).principal.must_change_password
    listing = web.get("/admin/users")
    assert otp not in listing.text  # shown once
    assert "2027-03-31" in listing.text and "事務取扱担当者" in listing.text

    # Errors are shown next to the field they concern; the form keeps what was typed.
    r = web.post("/admin/users", data={"csrf_token": token, "username": "tanaka", "roles": ["clerk"],
                                       "department": "JINJI"})
    assert r.status_code == 409 and 'data-testid="error-username"' in r.text
    r = web.post("/admin/users", data={"csrf_token": token, "username": "nakamura", "roles": ["contractor"],
                                       "department": "JINJI"})
    assert r.status_code == 422 and 'data-testid="error-valid_until"' in r.text and "委託先" in r.text
    assert 'value="nakamura"' in r.text
    r = web.post("/admin/users", data={"csrf_token": token, "username": "bad name", "roles": ["clerk"]})
    assert r.status_code == 422 and 'data-testid="error-username"' in r.text and "2〜63文字" in r.text
    r = web.post("/admin/users", data={"csrf_token": token, "username": "ｓａｔｏ", "roles": ["auditor"]})
    assert r.status_code == 422 and "半角文字で入力してください（「sato」ではありませんか？）" in r.text
    r = web.post("/admin/users", data={"csrf_token": token, "username": "ito"})
    assert r.status_code == 422 and 'data-testid="error-roles"' in r.text
    r = web.post("/admin/users", data={"csrf_token": token, "username": "ito", "roles": ["clerk"],
                                       "valid_until": "31/03/2027"})
    assert r.status_code == 422 and 'data-testid="error-valid_until"' in r.text


def test_admin_actions_answer_with_the_row_and_refuse_self_approval_SEC_19(web: TestClient, inst: Instance):
    secret = active_user(inst, "tanaka", ["clerk"], department="JINJI")
    admin_login(web, inst)
    token = page_csrf(web, "/admin/users")
    hx = {"HX-Request": "true", "X-CSRF-Token": token}

    r = web.post("/admin/users/admin/disable", headers=hx)
    assert r.status_code == 200 and 'data-testid="row-error"' in r.text and "SEC-19" in r.text
    r = web.post("/admin/users/admin/grant-role", data={"role": "auditor"}, headers=hx)
    assert "SEC-19" in r.text
    assert user_row(inst, "admin").disabled_at is None

    r = web.post("/admin/users/tanaka/disable", headers=hx)
    assert r.status_code == 200 and r.text.lstrip().startswith('<tbody id="user-tanaka"')
    assert "無効" in r.text and 'data-testid="row-notice"' in r.text
    assert user_row(inst, "tanaka").disabled_at is not None
    r = web.post("/admin/users/tanaka/disable", headers=hx)
    assert "既に無効化されています" in r.text
    r = web.post("/admin/users/tanaka/enable", headers=hx)
    assert user_row(inst, "tanaka").disabled_at is None

    chip = '<input type="hidden" name="role" value="auditor">'
    r = web.post("/admin/users/tanaka/grant-role", data={"role": "auditor"}, headers=hx)
    assert chip in r.text and "役割を付与しました" in r.text
    r = web.post("/admin/users/tanaka/grant-role", data={"role": "clerk", "department": "SOMU"}, headers=hx)
    assert "その課室はありません" in r.text
    r = web.post("/admin/users/tanaka/revoke-role", data={"role": "auditor"}, headers=hx)
    assert chip not in r.text
    assert user_row_roles(inst, "tanaka") == ["clerk"]

    r = web.post("/admin/users/tanaka/reset-password", headers=hx)
    otp = re.search(r'data-testid="otp">([^<]+)<', r.text).group(1)
    p = auth.login(inst.hogo, username="tanaka", password=otp, totp=inst.next_code(secret), ctx=CTX).principal
    assert p.pending_steps == ("change_password",)
    r = web.post("/admin/users/tanaka/reset-mfa", headers=hx)
    assert not user_row(inst, "tanaka").mfa_enabled

    # Without htmx, the same actions answer with the whole page.
    r = web.post("/admin/users/tanaka/unlock", data={"csrf_token": token})
    assert r.status_code == 200 and "<html" in r.text and 'data-testid="notice"' in r.text
    r = web.post("/admin/users/ghost/disable", headers=hx)
    assert r.status_code == 404 and "その利用者はいません" in r.text
    r = web.post("/admin/users/tanaka/explode", headers=hx)
    assert r.status_code == 404


# --------------------------------------------------------------------------- ending sessions


def test_logout_revokes_the_session_and_the_old_cookie_no_longer_works_ANON_21(web: TestClient, inst: Instance):
    admin_login(web, inst)
    token = web.cookies.get("hogo_session")
    assert token
    r = web.post("/logout", data={"csrf_token": page_csrf(web)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?m=logged_out"
    assert 'hogo_session=""' in r.headers["set-cookie"]
    web.cookies.set("hogo_session", token, domain="127.0.0.1")
    r = web.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert web.get("/api/v1/auth/whoami", headers=bearer(token)).status_code == 401


def test_login_page_sends_a_signed_in_user_home_and_clears_a_dead_cookie(web: TestClient, inst: Instance):
    admin_login(web, inst)
    r = web.get("/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    inst.clock.advance(seconds=inst.hogo.settings.session_idle_timeout_s + 1)
    r = web.get("/login", follow_redirects=False)
    assert r.status_code == 200
    assert any(h.startswith('hogo_session=""') for h in r.headers.get_list("set-cookie"))


def test_idle_session_goes_to_login_with_a_message_ANON_21(web: TestClient, inst: Instance):
    admin_login(web, inst)
    inst.clock.advance(seconds=inst.hogo.settings.session_idle_timeout_s + 1)
    r = web.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?m=idle"
    page = web.get("/login?m=idle")
    assert "一定時間操作がなかったため" in page.text
    inst.clock.advance(seconds=60)
    admin_login(web, inst)
    inst.clock.advance(seconds=inst.hogo.settings.session_absolute_lifetime_s)
    r = web.get("/admin/users", follow_redirects=False)
    assert r.headers["location"] == "/login?m=expired"
    assert "セッションの有効期限が切れました" in web.get(r.headers["location"]).text


def test_htmx_request_on_an_ended_session_redirects_the_whole_page(web: TestClient, inst: Instance):
    admin_login(web, inst)
    token = page_csrf(web)
    inst.clock.advance(seconds=inst.hogo.settings.session_idle_timeout_s + 1)
    r = web.post("/admin/departments", data={"code": "X", "name": "x"},
                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.headers["hx-redirect"] == "/login?m=idle"


def test_disabling_an_account_sends_its_open_browser_to_login_SEC_129(web: TestClient, inst: Instance):
    secret = active_user(inst, "tanaka", ["clerk"], department="JINJI")
    assert web_login(web, "tanaka", CLERK_PASSWORD, inst.next_code(secret)).status_code == 303
    assert web.get("/", follow_redirects=False).status_code == 200
    accounts.disable_user(inst.hogo, inst.admin_principal(), "tanaka", reason="left", ctx=CTX)
    r = web.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


# --------------------------------------------------------------------------------- language


def test_language_switch_to_english_and_back(web: TestClient, inst: Instance):
    admin_login(web, inst)
    r = web.get("/lang/en?next=/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "hogo_lang=en" in r.headers["set-cookie"]
    home = web.get("/")
    assert '<html lang="en">' in home.text
    assert "System administrator" in home.text and "Recent sign-ins" in home.text
    roles = home.text.split('data-testid="me-roles"')[1].split("</dd>")[0]
    assert "System administrator" in roles and "システム管理者" not in roles
    web.get("/lang/ja?next=/")
    assert '<html lang="ja">' in web.get("/").text


def test_language_switch_never_redirects_off_site(web: TestClient):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        r = web.get("/lang/en", params={"next": target}, follow_redirects=False)
        assert r.headers["location"] == "/", target
    r = web.get("/lang/xx", follow_redirects=False)
    assert "hogo_lang=ja" in r.headers["set-cookie"]


def test_english_password_problems(web: TestClient, inst: Instance):
    ensure_department(inst)
    otp = accounts.create_user(inst.hogo, inst.admin_principal(), username="tanaka", department="JINJI",
                               roles=["clerk"], ctx=CTX).one_time_password
    web.get("/lang/en")
    web_login(web, "tanaka", otp)
    page = web.get("/account/password")
    assert "Change your password" in page.text
    r = web.post("/account/password", data={"csrf_token": meta_csrf(page.text), "current_password": otp,
                                            "new_password": "password", "confirm_password": "password"})
    assert "must be at least 12 characters" in r.text

