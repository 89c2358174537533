"""Administration through the CLI against a real server: accounts, departments, roles, API tokens,
the audit record, and the error contract (exit codes naming the field or the requirement)."""

from __future__ import annotations

import datetime as dt

from cli_support import ADMIN, Cli, Live, add_user, admin_login, credentials, no_secrets_in, onboard


def in_days(n: int) -> str:
    return (dt.date.today() + dt.timedelta(days=n)).isoformat()


def test_an_administrator_cannot_grant_itself_a_role(cli: Cli, live: Live) -> None:
    """SEC-19 (no one approves their own request) and SEC-150 (the administrator ID is for
    administration only): granting yourself a role is refused with exit 4, citing SEC-19."""
    admin_login(cli, live)
    r = cli("user", "grant", ADMIN, "auditor")
    assert r.exit_code == 4
    assert "SEC-19" in r.stderr and "self_approval_forbidden" in r.stderr
    err = cli.json("user", "grant", ADMIN, "auditor", expect=4)["error"]
    assert err["requirement"] == "SEC-19" and err["status"] == 403
    assert [x["role"] for x in cli.json("whoami")["roles"]] == ["admin"]
    assert cli("user", "disable", ADMIN).exit_code == 4


def test_disabling_a_user_stops_its_cli_session_at_once(cli: Cli, live: Live) -> None:
    """SEC-129: disabling an account takes effect on the very next request of its stored CLI session
    (exit 3, told to sign in again); enabling it again does not bring the session back."""
    admin_login(cli, live)
    otp = add_user(cli, "ito", "clerk")
    assert cli("login", "--url", live.url, "--user", "ito", as_="ito", input=otp + "\n").exit_code == 0
    assert cli.json("whoami", as_="ito")["username"] == "ito"

    u = cli.json("user", "disable", "ito", "--reason", "退職")
    assert u["state"] == "disabled"
    r = cli("whoami", as_="ito")
    assert r.exit_code == 3 and "hogo login" in r.stderr
    again = cli("login", "--url", live.url, "--user", "ito", as_="ito", input=otp + "\n")
    assert again.exit_code == 3

    assert cli.json("user", "enable", "ito")["state"] == "active"
    assert cli("whoami", as_="ito").exit_code == 3
    assert cli("user", "enable", "ito").exit_code == 6  # not disabled: a conflict


def test_api_tokens_are_created_listed_used_and_revoked(cli: Cli, live: Live) -> None:
    """API tokens for scripts (SEC-129: issued, scoped, expiring, revocable). The token is printed
    once; ``HOGO_TOKEN`` + ``HOGO_URL`` use it without any stored sign-in; its scopes limit it
    (exit 4); revoking it stops it at once (exit 3)."""
    admin_login(cli, live)
    created = cli.json("token", "create", "--name", "nightly export", "--scope", "account:user:read",
                       "--scope", "account:department:read", "--until", in_days(30))
    token = created["token"]
    assert token.startswith("hgt_")
    assert sorted(created["scopes"]) == ["account:department:read", "account:user:read"]

    listed = cli.json("token", "list")
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0] and token not in str(listed)
    human = cli("token", "list")
    assert human.exit_code == 0 and "nightly export" in human.stdout and no_secrets_in(human, token)

    script = {"HOGO_TOKEN": token, "HOGO_URL": live.url}
    users = cli.json("user", "list", as_="script", env=script)
    assert [u["username"] for u in users] == [ADMIN]
    assert cli.json("whoami", as_="script", env=script)["credential"] == "token"
    denied = cli("dept", "add", "SOMU", "--name", "総務課", as_="script", env=script)
    assert denied.exit_code == 4
    assert not (cli.config_dir("script") / "credentials.json").exists()

    printed = cli("token", "create", "--name", "once", "--scope", "self:account:read", "--until", in_days(1))
    assert printed.exit_code == 0
    assert printed.stdout.count("hgt_") == 1 and "shown once" in printed.stdout

    assert cli.json("token", "revoke", created["id"])["revoked"] == created["id"]
    r = cli("user", "list", as_="script", env=script)
    assert r.exit_code == 3 and "HOGO_TOKEN" in r.stderr
    assert cli("token", "revoke", "no-such-token").exit_code == 5
    assert cli("logout", as_="script", env=script).exit_code == 0  # nothing stored: nothing to do


def test_departments_are_added_and_listed(cli: Cli, live: Live) -> None:
    """Departments (課室) hold the department-scoped roles (SEC-129 issue and manage IDs per
    organisation unit); duplicates conflict (exit 6) and bad codes name the field (exit 7)."""
    admin_login(cli, live)
    d = cli.json("dept", "add", "JINJI", "--name", "人事課")
    assert d == {"code": "JINJI", "name": "人事課", "parent": None, "members": 0}
    child = cli.json("dept", "add", "jinji-kyuyo", "--name", "給与係", "--parent", "JINJI")
    assert child["code"] == "JINJI-KYUYO" and child["parent"] == "JINJI"
    rows = cli.json("dept", "list")
    assert [x["code"] for x in rows] == ["JINJI", "JINJI-KYUYO"]
    human = cli("dept", "list")
    assert "人事課" in human.stdout and "給与係" in human.stdout

    assert cli("dept", "add", "JINJI", "--name", "again").exit_code == 6
    bad = cli("dept", "add", "人事", "--name", "x")
    assert bad.exit_code == 7 and "CODE (code)" in bad.stderr
    assert cli("dept", "add", "SOMU", "--name", "x", "--parent", "NOPE").exit_code == 5


def test_validation_errors_exit_7_and_name_the_field(cli: Cli, live: Live) -> None:
    """Bad input is refused with exit 7 and the message (or hint) names the field and the option
    to fix; values typed are never echoed back."""
    admin_login(cli, live)
    r = cli("token", "create", "--name", "x", "--scope", "account:user:read", "--until", "not-a-date")
    assert r.exit_code == 7
    assert "expires_at" in r.stderr and "--until" in r.stderr and "not-a-date" not in r.stderr

    err = cli.json("user", "add", "suzuki", "--role", "wizard", expect=7)["error"]
    assert err["code"] == "validation_failed" and err["details"]["field"] == "roles"
    assert "--role" in err["hint"]

    r = cli("user", "add", "suzuki", "--role", "auditor", "--until", "2027-13-45")
    assert r.exit_code == 7 and "valid_until" in r.stderr and "--until" in r.stderr

    cli.json("dept", "add", "KYUYO", "--name", "給与厚生課")
    r = cli("user", "add", "nakamura", "--role", "contractor", "--dept", "KYUYO")
    assert r.exit_code == 7 and "valid_until" in r.stderr and "SEC-129" in r.stderr
    ok = cli.json("user", "add", "nakamura", "--role", "contractor", "--dept", "KYUYO", "--until", in_days(90))
    assert ok["user"]["valid_until"] and ok["one_time_password"]

    bad_name = cli.json("user", "add", "Ｓｕｚｕｋｉ", "--role", "auditor", expect=7)["error"]
    assert bad_name["details"]["field"] == "username"
    assert cli("audit", "events", "--limit", "0").exit_code == 7


def test_account_administration_commands(cli: Cli, live: Live) -> None:
    """show / update / grant / revoke / unlock / reset-password / reset-mfa through the API; each
    change is the administrator's, on another account (SEC-19), and resets end sessions (SEC-129)."""
    admin_login(cli, live)
    otp = add_user(cli, "watanabe", "clerk")
    created = cli.json("user", "show", "watanabe")
    assert created["must_change_password"] is True and created["department"] == "JINJI"

    u = cli.json("user", "update", "watanabe", "--display-name", "渡辺 恵", "--email", "w@example.jp",
                 "--until", in_days(365))
    assert u["display_name"] == "渡辺 恵" and u["email"] == "w@example.jp" and u["valid_until"]
    assert cli.json("user", "update", "watanabe", "--no-end-date")["valid_until"] is None
    assert cli("user", "update", "watanabe", "--until", in_days(3), "--no-end-date").exit_code == 2
    assert cli("user", "update", "watanabe").exit_code == 2

    cli.json("dept", "add", "KANSA", "--name", "監査室")
    granted = cli.json("user", "grant", "watanabe", "auditor")
    assert {r["role"] for r in granted["roles"]} == {"clerk", "auditor"}
    scoped = cli.json("user", "grant", "watanabe", "clerk@KANSA")
    assert ("clerk", "KANSA") in {(r["role"], r["department"]) for r in scoped["roles"]}
    assert cli("user", "grant", "watanabe", "auditor").exit_code == 6
    revoked = cli.json("user", "revoke", "watanabe", "clerk@KANSA")
    assert ("clerk", "KANSA") not in {(r["role"], r["department"]) for r in revoked["roles"]}
    assert cli("user", "revoke", "watanabe", "sirt").exit_code == 5

    human = cli("user", "show", "watanabe")
    assert "監査責任者 (auditor)" in human.stdout and "事務取扱担当者 (clerk@JINJI)" in human.stdout

    assert cli("login", "--url", live.url, "--user", "watanabe", as_="watanabe", input=otp + "\n").exit_code == 0
    reset = cli.json("user", "reset-password", "watanabe")
    assert reset["one_time_password"] != otp and reset["user"]["must_change_password"] is True
    assert cli("whoami", as_="watanabe").exit_code == 3  # the reset ended its session
    assert cli.json("user", "reset-mfa", "watanabe")["mfa_enabled"] is False
    assert cli.json("user", "unlock", "watanabe")["state"] == "active"

    listed = cli.json("user", "list", "--dept", "JINJI")
    assert [x["username"] for x in listed] == ["watanabe"]
    table = cli("user", "list")
    assert table.exit_code == 0 and "watanabe" in table.stdout and "admin" in table.stdout
    assert cli("user", "show", "nobody").exit_code == 5
    assert cli.json("user", "show", "nobody", expect=5)["error"]["code"] == "user_not_found"


def test_audit_events_are_read_by_an_auditor_not_by_the_administrator(cli: Cli, live: Live) -> None:
    """SEC-150 / SEC-131: the administrator manages accounts but reads only their own history in the
    audit record; an auditor reads all of it, filtered by user, event and outcome (SEC-128 failures
    are there)."""
    admin_login(cli, live)
    onboard(cli, live, "kansa.ito", "auditor", dept=None)
    admin_id = next(e["actor_id"] for e in cli.json("audit", "events", "--event", "auth:login:succeeded"))
    own = cli.json("audit", "events", "--limit", "1000")
    assert own and all(admin_id in (e["actor_id"], e["subject_user_id"]) for e in own)
    assert not any(e["event"] == "auth:login:succeeded" and e["actor_name"] == "kansa.ito" for e in own)
    cli("login", "--url", live.url, "--user", ADMIN, "--totp", "000000", as_="intruder", input="wrong-password\n")

    events = cli.json("audit", "events", "--limit", "500", as_="kansa.ito")
    names = {e["event"] for e in events}
    assert any(n.startswith("auth:login") for n in names)
    failures = cli.json("audit", "events", "--event", "auth:login", "--outcome", "failure", as_="kansa.ito")
    assert failures and all(e["outcome"] == "failure" for e in failures)
    mine = cli.json("audit", "events", "--user", "kansa.ito", "--since", in_days(-1),
                    as_="kansa.ito")
    assert mine and all(e["ts"] for e in mine)
    human = cli("audit", "events", "--limit", "5", as_="kansa.ito")
    assert human.exit_code == 0 and "Event" in human.stdout
    assert cli("audit", "events", "--outcome", "maybe", as_="kansa.ito").exit_code == 7


def test_roles_are_listed_with_their_japanese_names(cli: Cli, live: Live) -> None:
    """The roles the rules name (MN-3a), with Japanese labels; no role carries a data: permission
    (SEC-131, SEC-150)."""
    admin_login(cli, live)
    rows = cli.json("roles")
    labels = {r["role"]: r["label_ja"] for r in rows}
    assert labels["admin"] == "システム管理者" and labels["clerk"] == "事務取扱担当者"
    assert not any(p.startswith("data:") for r in rows for p in r["permissions"])
    human = cli("roles")
    assert human.exit_code == 0 and "総括保護管理者" in human.stdout
    assert credentials(cli)["token"] not in human.stdout
