"""Shared fixtures: a real database (SQLite file, or a PostgreSQL schema per test), a fake clock,
an initialised instance with an administrator, and helpers to sign in.

PostgreSQL: set ``HOGO_TEST_PG_URL`` (``.ci/run`` does, after starting a real server). Without it a
PostgreSQL test skips on a developer machine and fails in CI (``CI=true``).
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from hogo.api.app import create_app
from hogo.bootstrap import build
from hogo.clock import FakeClock
from hogo.config import Settings, load_settings
from hogo.services import instance
from support import ADMIN, ADMIN_PASSWORD, TEST_ARGON2, Instance, pg_url, secret_of


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
def web(inst: Instance) -> Iterator[TestClient]:
    """A browser-like client over https (the session cookie is Secure, as configured by default)."""
    with TestClient(create_app(inst.hogo), base_url="https://127.0.0.1") as c:
        yield c


@pytest.fixture
def client(inst: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(inst.hogo), base_url="http://127.0.0.1") as c:
        yield c
