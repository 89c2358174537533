"""Helpers for the CLI tests of files, grants and records: an organisation seeded through the services
on the data directory (before the server starts), users signed in through the CLI, and CSVs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyotp
from cli_support import ADMIN, ADMIN_PASSWORD, Cli

from hogo.bootstrap import build
from hogo.config import load_settings
from hogo.domain.identifiers import my_number_check_digit
from hogo.services import accounts, auth
from hogo.services.audit import RequestContext
from live import LiveServer, init_data_dir, secret_of, start_server

CTX = RequestContext(client_addr="127.0.0.1", user_agent="pytest")
USER_PASSWORD = "Sakura-Kumo-Umi-47"
SPEC = Path(__file__).resolve().parents[1] / "data" / "payroll-spec.yaml"
FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
P2 = "年末調整事務"
PM = "pm.takahashi"
ITO = "clerk.ito"
TANAKA = "clerk.tanaka"
AUDITOR = "auditor.watanabe"
USERS = ((PM, "protection_manager", "KYUYO"), (ITO, "clerk", "KYUYO"), (TANAKA, "clerk", "JINJI"),
         (AUDITOR, "auditor", "KANSA"))
HEADER = ["record_id", "employee_no", "name", "my_number", "department"]


def my_number(first11: str) -> str:
    """A valid 12-digit My Number (its check digit computed)."""
    return first11 + str(my_number_check_digit(first11))


MN1 = my_number("12345678901")  # 123456789018
MN3 = my_number("98765432101")
MN4 = my_number("11122233344")
BAD_MN = MN1[:11] + str((int(MN1[11]) + 1) % 10)  # wrong check digit


@dataclasses.dataclass
class DataOrg:
    """A running server with departments KYUYO, JINJI and KANSA, a protection manager of KYUYO, clerks
    in KYUYO and JINJI, an auditor (each with MFA; the manager and clerk.ito signed in through the CLI
    with a recovery code, the others by ``login``), and the admin."""

    cli: Cli
    server: LiveServer
    admin_secret: str
    recovery_codes: dict[str, list[str]]

    @property
    def url(self) -> str:
        return self.server.url

    def login(self, name: str) -> None:
        if name == ADMIN:
            pw = self.cli.write("admin-pw", ADMIN_PASSWORD + "\n")
            r = self.cli("login", "--url", self.url, "--user", ADMIN, "--password-file", pw,
                         "--totp", pyotp.TOTP(self.admin_secret).now(), as_=ADMIN)
        else:
            pw = self.cli.write(f"{name}-pw", USER_PASSWORD + "\n")
            r = self.cli("login", "--url", self.url, "--user", name, "--password-file", pw,
                         "--recovery-code", self.recovery_codes[name].pop(), as_=name)
        assert r.exit_code == 0, (r.stdout, r.stderr)

    def define_file(self) -> None:
        self.cli.json("file", "create", "--spec", str(SPEC), as_=PM)

    def grant(self, user: str = ITO, *actions: str, purposes: tuple[str, ...] = (P1,)) -> str:
        args = ["grant", "add", FILE, "--user", user]
        for a in actions or ("read", "create", "reveal"):
            args += ["--action", a]
        for p in purposes:
            args += ["--purpose", p]
        grant_id: str = self.cli.json(*args, as_=PM)["id"]
        return grant_id


def seed(data_dir: Path) -> dict[str, list[str]]:
    """Departments and active users (password set, MFA enrolled), straight through the services on
    the data directory; returns each user's recovery codes. The server is not running yet."""
    hogo = build(load_settings(data_dir))
    try:
        for code, name in (("KYUYO", "給与厚生課"), ("JINJI", "人事課"), ("KANSA", "監査室")):
            accounts.create_department(hogo, None, code=code, name=name, ctx=CTX)
        codes: dict[str, list[str]] = {}
        for user, role, dept in USERS:
            accounts.create_user(hogo, None, username=user, department=dept, roles=[role], password=USER_PASSWORD,
                                 ctx=CTX)
            p = auth.login(hogo, username=user, password=USER_PASSWORD, ctx=CTX).principal
            enrol = auth.start_mfa_enrolment(hogo, p, CTX)
            codes[user] = list(auth.confirm_mfa_enrolment(hogo, p, pyotp.TOTP(enrol.secret).now(), CTX))
        return codes
    finally:
        hogo.close()


def start_org(cli: Cli, root: Path) -> DataOrg:
    res = init_data_dir(root / "data", admin=ADMIN, admin_password=ADMIN_PASSWORD)
    assert res.otpauth_uri is not None
    codes = seed(root / "data")
    server = start_server(root / "data")
    org = DataOrg(cli, server, secret_of(res.otpauth_uri), codes)
    try:
        for name in (PM, ITO):
            org.login(name)
    except BaseException:
        server.stop()
        raise
    return org


def write_csv(root: Path, name: str, rows: list[list[str]], *, encoding: str) -> Path:
    p = root / "csv" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(HEADER), *(",".join(r) for r in rows)]
    p.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return p
