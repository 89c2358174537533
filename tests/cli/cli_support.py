"""Helpers for the CLI tests: a runner that calls ``hogo`` in-process with a private config directory
per user, and the steps a new account goes through."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyotp
from typer.testing import CliRunner, Result

from hogo.cli.main import app
from live import LiveServer

ADMIN = "admin"
ADMIN_PASSWORD = "Kanri-Sekinin-2026!"
NEW_PASSWORD = "Sakura-Fubuki-2O26x"


@dataclasses.dataclass
class Live:
    server: LiveServer
    admin_secret: str
    recovery_codes: list[str]

    @property
    def url(self) -> str:
        return str(self.server.url)

    def admin_code(self) -> str:
        return str(pyotp.TOTP(self.admin_secret).now())


@dataclasses.dataclass
class Cli:
    """Runs ``hogo`` in-process. ``as_`` names whose config directory (stored sign-in) to use."""

    root: Path
    runner: CliRunner

    def config_dir(self, who: str) -> Path:
        return self.root / "config" / who

    def __call__(self, *args: str, as_: str = ADMIN, input: str | None = None,
                 env: dict[str, str | None] | None = None) -> Result:
        full_env: dict[str, str | None] = {"HOGO_CONFIG_DIR": str(self.config_dir(as_)), **(env or {})}
        return self.runner.invoke(app, list(args), input=input, env=full_env, catch_exceptions=False)

    def json(self, *args: str, as_: str = ADMIN, input: str | None = None, expect: int = 0,
             env: dict[str, str | None] | None = None) -> Any:
        r = self(*args, "--json", as_=as_, input=input, env=env)
        assert r.exit_code == expect, (r.exit_code, r.stdout, r.stderr)
        return json.loads(r.stdout)

    def write(self, name: str, text: str) -> str:
        p = self.root / "files" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return str(p)


def admin_login(cli: Cli, live: Live) -> Result:
    pw = cli.write("admin-password", ADMIN_PASSWORD + "\n")
    r = cli("login", "--url", live.url, "--user", ADMIN, "--password-file", pw, "--totp", live.admin_code())
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return r


def add_user(cli: Cli, name: str, *roles: str, dept: str | None = "JINJI") -> str:
    """As the signed-in admin: create ``name`` (and the department); return its one-time password."""
    if dept is not None and dept not in {d["code"] for d in cli.json("dept", "list")}:
        cli.json("dept", "add", dept, "--name", f"{dept}課")
    args = ["user", "add", name, *[x for r in roles for x in ("--role", r)]]
    if dept is not None:
        args += ["--dept", dept]
    data = cli.json(*args)
    otp: str = data["one_time_password"]
    return otp


def onboard(cli: Cli, live: Live, name: str, *roles: str, dept: str | None = "JINJI") -> str:
    """Create ``name``, sign it in, change its password and enrol MFA; return its TOTP secret."""
    otp = add_user(cli, name, *roles, dept=dept)
    r = cli("login", "--url", live.url, "--user", name, as_=name, input=otp + "\n")
    assert r.exit_code == 0, r.stderr
    old, new = cli.write(f"{name}-old", otp), cli.write(f"{name}-new", NEW_PASSWORD + "\n")
    r = cli("passwd", "--old-password-file", old, "--new-password-file", new, as_=name)
    assert r.exit_code == 0, r.stderr
    secret: str = cli.json("mfa", "enroll", as_=name)["secret"]
    cli.json("mfa", "confirm", pyotp.TOTP(secret).now(), as_=name)
    return secret


def credentials(cli: Cli, who: str = ADMIN) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((cli.config_dir(who) / "credentials.json").read_text())
    return data


def no_secrets_in(result: Result, *secrets: str) -> bool:
    return not any(s and (s in result.stdout or s in result.stderr) for s in secrets)
