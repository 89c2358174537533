"""Shared fixtures: a real database (SQLite file, or a PostgreSQL schema per test), a fake clock,
an initialised instance with an administrator, and helpers to sign in.

PostgreSQL: set ``HOGO_TEST_PG_URL`` (``.ci/run`` does, after starting a real server). Without it a
PostgreSQL test skips on a developer machine and fails in CI (``CI=true``).
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from hogo.api.app import create_app
from hogo.bootstrap import Hogo, build
from hogo.clock import FakeClock
from hogo.config import Argon2Params, Settings, load_settings
from hogo.crypto import totp
from hogo.services import auth, instance
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hogo.db'}"
        return
    base = pg_url()
    assert base is not None
    schema = "t_" + uuid.uuid4().hex[:12]
    admin_engine = create_engine(base)
    with admin_engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.parse_qsl(parts.query)
    query.append(("options", f"-csearch_path={schema}"))
    url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    try:
        yield url
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(tmp_path / "data", database_url=database_url, argon2=TEST_ARGON2)


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


@pytest.fixture
def inst(settings: Settings, clock: FakeClock) -> Iterator[Instance]:
    res = instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD, clock=clock)
    assert res.otpauth_uri is not None
    hogo = build(settings, clock=clock)
    try:
        yield Instance(hogo, clock, res.admin, ADMIN_PASSWORD, secret_of(res.otpauth_uri), res.recovery_codes)
    finally:
        hogo.close()


@pytest.fixture
def client(inst: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(inst.hogo), base_url="http://127.0.0.1") as c:
        yield c


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
