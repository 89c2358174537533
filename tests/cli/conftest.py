"""CLI test fixtures: a real hogo server (``tests/live.py``) per test, stopped afterwards, and an
in-process ``hogo`` runner with a private config directory per user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import ADMIN, ADMIN_PASSWORD, Cli, Live
from typer.testing import CliRunner

from live import init_data_dir, secret_of, start_server


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for var in ("HOGO_URL", "HOGO_TOKEN", "HOGO_DATA_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOGO_CONFIG_DIR", str(tmp_path / "config" / "default"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    return Cli(tmp_path, CliRunner())


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    res = init_data_dir(tmp_path / "data", admin=ADMIN, admin_password=ADMIN_PASSWORD)
    assert res.otpauth_uri is not None
    server = start_server(tmp_path / "data")
    try:
        yield Live(server, secret_of(res.otpauth_uri), list(res.recovery_codes))
    finally:
        server.stop()


