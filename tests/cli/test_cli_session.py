"""Signing in and out with the CLI against a real server: password sources, MFA, the stored
credentials, first sign-in steps, and that a session ends when it should."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import httpx
import pyotp
import pytest
from cli_support import (
    ADMIN,
    ADMIN_PASSWORD,
    NEW_PASSWORD,
    Cli,
    Live,
    add_user,
    admin_login,
    credentials,
    no_secrets_in,
)

from hogo.cli import main as cli_main
from live import free_port, init_data_dir, start_server


def test_login_with_password_file_stores_private_credentials_without_the_password(cli: Cli, live: Live) -> None:
    """Password + TOTP sign-in (ANON-11, MN-6b, MLIT-9.5.1, SEC-157). The credentials file is 0600
    in a 0700 directory, holds url/username/token/expiry and never the password; the token is
    never printed."""
    r = admin_login(cli, live)
    assert f"Signed in to {live.url} as admin" in r.stdout
    cfg = cli.config_dir(ADMIN)
    path = cfg / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o700
    creds = credentials(cli)
    assert set(creds) == {"url", "username", "token", "expires_at"}
    assert creds["url"] == live.url and creds["username"] == ADMIN
    assert ADMIN_PASSWORD not in path.read_text()
    assert no_secrets_in(r, creds["token"], ADMIN_PASSWORD)

    me = cli.json("whoami")
    assert me["username"] == ADMIN
    assert [(x["role"], x["label_ja"]) for x in me["roles"]] == [("admin", "システム管理者")]
    assert me["mfa_verified"] is True and me["pending_steps"] == []
    assert me["credential"] == "session" and me["expires_at"]

    human = cli("whoami")
    assert human.exit_code == 0
    assert "システム管理者 (admin)" in human.stdout and live.url in human.stdout
    assert no_secrets_in(human, creds["token"])


def test_login_reads_the_password_from_stdin_when_it_is_not_a_terminal(cli: Cli, live: Live) -> None:
    """Scripts pipe the password in (MN-6b); --json reports the sign-in without the token."""
    out = cli.json("login", "--url", live.url, "--user", ADMIN, "--totp", live.admin_code(),
                   input=ADMIN_PASSWORD + "\n")
    assert out["username"] == ADMIN and out["pending_steps"] == []
    assert "token" not in out
    assert credentials(cli)["token"] not in str(out)


def test_wrong_password_and_unknown_user_get_the_same_answer(cli: Cli, live: Live) -> None:
    """SEC-128: a wrong password and an unknown user are indistinguishable (same message, exit 3),
    and nothing is stored."""
    wrong = cli("login", "--url", live.url, "--user", ADMIN, "--totp", live.admin_code(),
                input="Machigai-Desu-2026!\n")
    unknown = cli("login", "--url", live.url, "--user", "nobody.here", "--totp", "123456",
                  input=ADMIN_PASSWORD + "\n")
    assert wrong.exit_code == unknown.exit_code == 3
    assert wrong.stderr == unknown.stderr
    assert "login failed" in wrong.stderr and "SEC-128" in wrong.stderr
    assert "hogo login" not in wrong.stderr  # no "sign in again" hint while signing in
    assert not (cli.config_dir(ADMIN) / "credentials.json").exists()
    err = cli.json("login", "--url", live.url, "--user", "nobody.here", input="x\n", expect=3)["error"]
    assert err["code"] == "authentication_failed" and err["requirement"] == "SEC-128"


def test_a_missing_one_time_code_is_asked_for_only_at_a_terminal(cli: Cli, live: Live) -> None:
    """SEC-157: the API answers mfa_required; without a terminal the CLI cannot prompt, so it exits 3
    saying to pass --totp. A recovery code works instead of a TOTP code."""
    r = cli("login", "--url", live.url, "--user", ADMIN, input=ADMIN_PASSWORD + "\n")
    assert r.exit_code == 3
    assert "mfa_required" in r.stderr and "--totp" in r.stderr
    r = cli("login", "--url", live.url, "--user", ADMIN, "--recovery-code", live.recovery_codes[0],
            input=ADMIN_PASSWORD + "\n")
    assert r.exit_code == 0, r.stderr
    assert cli("login", "--url", live.url, "--user", ADMIN, "--totp", "1", "--recovery-code", "x",
               input="x\n").exit_code == 2


def test_a_new_user_is_led_through_password_change_and_mfa_enrolment(cli: Cli, live: Live) -> None:
    """An account starts with a one-time password (SEC-129, ANON-11). At first sign-in the CLI says
    to run ``hogo passwd`` and ``hogo mfa enroll``; until then other commands are refused (exit 4).
    ``hogo passwd`` works non-interactively and enforces the policy (exit 7 naming the option);
    ``hogo mfa confirm`` returns the recovery codes once (SEC-157)."""
    admin_login(cli, live)
    otp = add_user(cli, "tanaka", "clerk")

    r = cli("login", "--url", live.url, "--user", "tanaka", as_="tanaka", input=otp + "\n")
    assert r.exit_code == 0, r.stderr
    assert "hogo passwd" in r.stdout and "hogo mfa enroll" in r.stdout
    assert cli.json("whoami", as_="tanaka")["pending_steps"] == ["change_password", "enroll_mfa"]

    blocked = cli("user", "list", as_="tanaka")
    assert blocked.exit_code == 4
    assert "step_required" in blocked.stderr and "hogo passwd" in blocked.stderr

    old = cli.write("old", otp)
    weak = cli("passwd", "--old-password-file", old, "--new-password-file", cli.write("weak", "tanaka-password1\n"),
               as_="tanaka")
    assert weak.exit_code == 7
    assert "new_password" in weak.stderr and "--new-password-file" in weak.stderr and "ANON-11" in weak.stderr
    wrong_old = cli("passwd", "--old-password-file", cli.write("bad-old", "not-the-one\n"),
                    "--new-password-file", cli.write("new", NEW_PASSWORD + "\n"), as_="tanaka")
    assert wrong_old.exit_code == 4
    ok = cli("passwd", "--old-password-file", old, "--new-password-file", cli.write("new", NEW_PASSWORD + "\n"),
             as_="tanaka")
    assert ok.exit_code == 0, ok.stderr
    assert "Password changed" in ok.stdout and "hogo mfa enroll" in ok.stdout
    assert no_secrets_in(ok, otp, NEW_PASSWORD)

    enrol = cli.json("mfa", "enroll", as_="tanaka")
    assert enrol["otpauth_uri"].startswith("otpauth://totp/") and enrol["account"] == "tanaka"
    confirm = cli("mfa", "confirm", pyotp.TOTP(enrol["secret"]).now(), as_="tanaka")
    assert confirm.exit_code == 0, confirm.stderr
    codes = re.findall(r"^\s+([a-z2-9]{5}-[a-z2-9]{5})$", confirm.stdout, re.M)
    assert len(codes) == 10

    me = cli.json("whoami", as_="tanaka")
    assert me["pending_steps"] == [] and me["mfa_enrolled"] is True and me["mfa_verified"] is True
    assert [(x["role"], x["department"], x["label_ja"]) for x in me["roles"]] == [("clerk", "JINJI", "事務取扱担当者")]

    again = cli("mfa", "enroll", as_="tanaka")
    assert again.exit_code == 6 and "mfa_already_enrolled" in again.stderr


def test_logout_ends_the_session_on_the_server(cli: Cli, live: Live) -> None:
    """ANON-21: ``hogo logout`` revokes the session server-side (the old token stops working at once)
    and removes the stored credentials; afterwards commands exit 3."""
    admin_login(cli, live)
    token = credentials(cli)["token"]
    out = cli.json("logout")
    assert out["logged_out"] is True and out["session_was_active"] is True
    assert not (cli.config_dir(ADMIN) / "credentials.json").exists()
    r = httpx.get(live.url + "/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    after = cli("whoami")
    assert after.exit_code == 3 and "hogo login" in after.stderr
    assert cli.json("logout")["logged_out"] is False


def test_signing_in_again_ends_the_previous_session(cli: Cli, live: Live) -> None:
    """A second ``hogo login`` replaces the stored session and revokes the old one, so no stray
    session lingers (ANON-21)."""
    admin_login(cli, live)
    first = credentials(cli)["token"]
    r = cli("login", "--url", live.url, "--user", ADMIN, "--recovery-code", live.recovery_codes[1],
            input=ADMIN_PASSWORD + "\n")
    assert r.exit_code == 0, r.stderr
    assert credentials(cli)["token"] != first
    assert httpx.get(live.url + "/api/v1/auth/whoami",
                     headers={"Authorization": f"Bearer {first}"}).status_code == 401
    assert cli("whoami").exit_code == 0


def test_not_signed_in_unreachable_and_other_server(cli: Cli, live: Live) -> None:
    """Exit 3 when not signed in; exit 9 when the server cannot be reached or no server is
    configured. The stored session token is never sent to a different server than the one that
    issued it (exit 3 instead)."""
    r = cli("whoami")
    assert r.exit_code == 3 and "hogo login" in r.stderr
    err = cli.json("whoami", expect=3)["error"]
    assert err["code"] == "not_authenticated" and err["exit_code"] == 3

    down = f"http://127.0.0.1:{free_port()}"
    r = cli("login", "--url", down, "--user", ADMIN, input="x\n")
    assert r.exit_code == 9 and "cannot reach" in r.stderr
    assert cli("login", "--user", ADMIN, input="x\n").exit_code == 9  # no URL anywhere
    assert cli("login", "--url", "ftp://example", "--user", ADMIN, input="x\n").exit_code == 9
    assert cli("whoami", env={"HOGO_TOKEN": "hgt_x"}).exit_code == 9  # a token but no URL

    admin_login(cli, live)
    other = cli("--url", down, "whoami")
    assert other.exit_code == 3 and "not signed in to" in other.stderr
    assert cli("whoami", env={"HOGO_URL": live.url + "/"}).exit_code == 0


def test_credentials_readable_by_others_are_refused(cli: Cli, live: Live) -> None:
    """A credentials file other users can read is not used (like ssh keys): exit 9 with the fix."""
    admin_login(cli, live)
    path = cli.config_dir(ADMIN) / "credentials.json"
    path.chmod(0o644)
    r = cli("whoami")
    assert r.exit_code == 9 and "chmod 600" in r.stderr


def test_at_a_terminal_the_cli_prompts_for_the_code_and_passwords(cli: Cli, live: Live,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Interactive use: when the API answers mfa_required and stdin is a terminal, the CLI asks for
    the one-time code (SEC-157); ``hogo passwd`` prompts for the current and the new password, the
    new one twice, and never echoes them (ANON-11)."""
    monkeypatch.setattr(cli_main, "stdin_is_tty", lambda: True)
    pw = cli.write("pw", ADMIN_PASSWORD)
    r = cli("login", "--url", live.url, "--user", ADMIN, "--password-file", pw, input=live.admin_code() + "\n")
    assert r.exit_code == 0, r.stderr
    assert "One-time code" in r.stderr + r.stdout

    otp = add_user(cli, "kobayashi", "clerk")
    r = cli("login", "--url", live.url, "--user", "kobayashi", as_="kobayashi", input=otp + "\n")
    assert r.exit_code == 0, r.stderr
    r = cli("passwd", as_="kobayashi", input=f"{otp}\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert r.exit_code == 0, r.stderr
    assert no_secrets_in(r, otp, NEW_PASSWORD)
    assert cli.json("whoami", as_="kobayashi")["pending_steps"] == ["enroll_mfa"]


def test_without_a_terminal_passwd_needs_both_files(cli: Cli, live: Live) -> None:
    """No prompt can be shown without a terminal: a usage error (exit 2), nothing sent."""
    admin_login(cli, live)
    r = cli("passwd", "--old-password-file", cli.write("old", ADMIN_PASSWORD))
    assert r.exit_code == 2 and "--new-password-file" in r.stderr


def test_too_many_failures_from_one_address_are_rate_limited(cli: Cli, tmp_path: Path) -> None:
    """SEC-128: after too many failed sign-ins from one address the server answers 429; the CLI
    exits 8 and says when to try again."""
    data = tmp_path / "limited"
    init_data_dir(data, admin=ADMIN, admin_password=ADMIN_PASSWORD, rate_limit_failures_per_address=2)
    server = start_server(data)
    try:
        for _ in range(2):
            assert cli("login", "--url", server.url, "--user", "nobody", input="x\n").exit_code == 3
        r = cli("login", "--url", server.url, "--user", "nobody", input="x\n")
        assert r.exit_code == 8
        assert "rate_limited" in r.stderr and "SEC-128" in r.stderr and "try again in" in r.stderr
    finally:
        server.stop()
