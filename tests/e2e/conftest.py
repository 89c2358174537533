"""Fixtures of the browser tests (helpers in browser_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import launch_browser, stop_all

from live import LiveServer


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    yield from launch_browser()


@pytest.fixture
def db_url(database_url: str) -> str | None:
    """Each scenario runs on SQLite (in the data directory) and on PostgreSQL (a schema of
    HOGO_TEST_PG_URL; skipped without it, except in CI), through tests/conftest.py's ``database_url``."""
    return None if database_url.startswith("sqlite") else database_url


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    stop_all(started)
