"""Helpers shared by the test packages (imported as ``support``; fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from typing import Any

import pytest
from fastapi.testclient import TestClient

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
