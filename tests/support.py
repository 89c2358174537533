"""Helpers shared by the test packages (imported as ``support``; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from hogo.bootstrap import Hogo
from hogo.clock import FakeClock
from hogo.config import Argon2Params
from hogo.crypto import totp
from hogo.services import auth
from hogo.services.audit import RequestContext

# Cheap Argon2 for tests; the production cost is measured by `make bench` and checked in a unit test.
TEST_ARGON2 = Argon2Params(time_cost=1, memory_cost_kib=64, parallelism=1)
ADMIN = "admin"
ADMIN_PASSWORD = "Kanri-Sekinin-2026!"
CTX = RequestContext(client_addr="127.0.0.1", user_agent="pytest")


def pg_url() -> str | None:
    url = os.environ.get("HOGO_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("HOGO_TEST_PG_URL is not set: CI must run the suite against a real PostgreSQL")
        pytest.skip("no PostgreSQL (set HOGO_TEST_PG_URL to run these)")
    return url


@dataclasses.dataclass
class Instance:
    hogo: Hogo
    clock: FakeClock
    admin: str
    admin_password: str
    admin_totp_secret: str
    recovery_codes: tuple[str, ...]

    def code(self, secret: str | None = None) -> str:
        """The TOTP code an authenticator shows now (by the fake clock)."""
        return totp.current_code(secret or self.admin_totp_secret, self.clock.now())

    def next_code(self, secret: str | None = None) -> str:
        """Move past the current 30-second step (codes are single use), then give its code."""
        self.clock.advance(seconds=30)
        return self.code(secret)

    def login(self, username: str | None = None, password: str | None = None, *, secret: str | None = None,
              ctx: RequestContext = CTX) -> auth.LoginResult:
        username = username or self.admin
        if username == self.admin:
            password = password or self.admin_password
            secret = secret or self.admin_totp_secret
        assert password is not None
        return auth.login(self.hogo, username=username, password=password,
                          totp=self.next_code(secret) if secret else None, ctx=ctx)

    def admin_principal(self) -> auth.Principal:
        return self.login().principal


def secret_of(uri: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_login(client: TestClient, inst: Instance, username: str | None = None, password: str | None = None,
              secret: str | None = None) -> dict[str, Any]:
    username = username or inst.admin
    if username == inst.admin:
        password, secret = inst.admin_password, inst.admin_totp_secret
    body: dict[str, Any] = {"username": username, "password": password}
    if secret:
        body["totp"] = inst.next_code(secret)
    r = client.post("/api/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


USER_PASSWORD = "Sakura-Kumo-Umi-47"


def active_user(inst: Instance, admin: auth.Principal, name: str, roles: list[str], department: str | None = None,
                **kw: Any) -> str:
    """Create a user who has changed the one-time password and enrolled MFA; returns the TOTP secret."""
    from hogo.services import accounts

    accounts.create_user(inst.hogo, admin, username=name, department=department, roles=roles,
                         password=USER_PASSWORD, ctx=CTX, **kw)
    p = auth.login(inst.hogo, username=name, password=USER_PASSWORD, ctx=CTX).principal
    enrol = auth.start_mfa_enrolment(inst.hogo, p, CTX)
    auth.confirm_mfa_enrolment(inst.hogo, p, inst.next_code(enrol.secret), CTX)
    return enrol.secret


def sign_in(inst: Instance, name: str, secret: str) -> auth.LoginResult:
    return auth.login(inst.hogo, username=name, password=USER_PASSWORD, totp=inst.next_code(secret), ctx=CTX)


PAYROLL_SPEC_PATH = "tests/data/payroll-spec.yaml"
PAYROLL_FILE = "payroll-mynumber"
PAYROLL_TASK = "源泉徴収票作成事務"


def my_number(i: int) -> str:
    """A valid My Number (its check digit computed) made of ``i``."""
    from hogo.domain.identifiers import my_number_check_digit

    f = f"{i:011d}"
    return f + str(my_number_check_digit(f))


def payroll_over_api(client: TestClient, org: Org, *, actions: list[str], record: bool = False) -> dict[str, str]:
    """The payroll My Number file defined over the API by its protection manager, a grant of ``actions``
    on it to clerk.ito for 源泉徴収票作成事務 and, with ``record``, record E1 created by clerk.ito over
    the API. Returns the manager's and the clerk's tokens and the grant's ID (``pm``, ``ito``, ``grant``)."""
    import pathlib
    import urllib.parse

    from hogo.services import grants

    pm = org.token("pm.takahashi")
    spec = (pathlib.Path(__file__).resolve().parent / "data" / "payroll-spec.yaml").read_bytes()
    r = client.post("/api/v1/files", content=spec, headers={**bearer(pm), "content-type": "application/yaml"})
    assert r.status_code == 201, r.text
    g = grants.create_grant(org.inst.hogo, org.p("pm.takahashi"), PAYROLL_FILE, user="clerk.ito", actions=actions,
                            purposes=[PAYROLL_TASK], ctx=CTX)
    ito = org.token("clerk.ito")
    if record:
        r = client.post(f"/api/v1/files/{PAYROLL_FILE}/records",
                        headers={**bearer(ito), "X-Hogo-Purpose": urllib.parse.quote(PAYROLL_TASK)},
                        json={"record_id": "E1", "values": {"employee_no": "E1", "name": "伊藤 翔",
                                                            "my_number": my_number(7), "department": "KYUYO"}})
        assert r.status_code == 201, r.text
    return {"pm": pm, "ito": ito, "grant": g.id}


def payroll_spec() -> dict[str, Any]:
    import pathlib

    import yaml

    root = pathlib.Path(__file__).resolve().parent
    data: dict[str, Any] = yaml.safe_load((root / "data" / "payroll-spec.yaml").read_text(encoding="utf-8"))
    return data


@dataclasses.dataclass
class Org:
    """A small organisation on top of an Instance: a payroll department, its protection manager,
    two clerks (KYUYO, JINJI), an auditor, and the payroll My Number file defined by the manager."""

    inst: Instance
    admin: auth.Principal
    secrets: dict[str, str]

    def p(self, name: str) -> auth.Principal:
        return sign_in(self.inst, name, self.secrets[name]).principal

    def token(self, name: str) -> str:
        return sign_in(self.inst, name, self.secrets[name]).token

    def web_sign_in(self, c: TestClient, name: str) -> str:
        return web_sign_in(c, self.inst, name, self.secrets[name])


def make_org(inst: Instance, *, define_file: bool = True) -> Org:
    from hogo.services import accounts, files

    admin = inst.admin_principal()
    for code, dname in (("KYUYO", "給与厚生課"), ("JINJI", "人事課"), ("KANSA", "監査室")):
        accounts.create_department(inst.hogo, admin, code=code, name=dname, ctx=CTX)
    secrets_ = {
        "pm.takahashi": active_user(inst, admin, "pm.takahashi", ["protection_manager"], "KYUYO"),
        "clerk.ito": active_user(inst, admin, "clerk.ito", ["clerk"], "KYUYO"),
        "clerk.tanaka": active_user(inst, admin, "clerk.tanaka", ["clerk"], "JINJI"),
        "auditor.watanabe": active_user(inst, admin, "auditor.watanabe", ["auditor"], "KANSA"),
    }
    org = Org(inst, admin, secrets_)
    if define_file:
        files.create_file(inst.hogo, org.p("pm.takahashi"), payroll_spec(), ctx=CTX)
    return org


def hidden_csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token field on the page"
    return m.group(1)


def meta_csrf(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "no csrf-token meta on the page"
    return m.group(1)


def web_sign_in(c: TestClient, inst: Instance, name: str, secret: str) -> str:
    """Signs in through the login form (password and TOTP); returns the session's CSRF token."""
    c.cookies.clear()
    token = hidden_csrf(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "username": name, "password": USER_PASSWORD,
                               "totp": inst.next_code(secret)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return meta_csrf(c.get("/").text)


@contextlib.contextmanager
def attacker(inst: Instance) -> Iterator[Connection]:
    """A connection of someone who controls the database: the log's append-only triggers are off
    (tests corrupt the log by hand as such a person would; the node cache is dropped afterwards)."""
    eng = inst.hogo.engine
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_record_refs DISABLE TRIGGER USER"))
        else:
            for name in ("audit_events_no_update", "audit_events_no_delete", "audit_record_refs_no_update",
                         "audit_record_refs_no_delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        yield conn
        if eng.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_record_refs ENABLE TRIGGER USER"))
    inst.hogo.tree_cache.clear()
