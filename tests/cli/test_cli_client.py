"""The CLI's client pieces on their own: server addresses, the exit-code mapping, and the stored
credentials file (no server needed)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from hogo.cli import client as c


def test_every_error_status_maps_to_its_documented_exit_code() -> None:
    """One mapping from HTTP status to exit code, as listed in ``hogo --help``."""
    assert [c.exit_code_for_status(s) for s in (400, 401, 403, 404, 409, 413, 422, 429, 500)] == [
        1, 3, 4, 5, 6, 7, 7, 8, 1]
    assert set(c.EXIT_CODES) == set(range(11))


def test_server_addresses_are_normalised_and_checked() -> None:
    """Only http(s) URLs without embedded credentials are accepted (exit 9 otherwise)."""
    assert c.normalise_url("http://127.0.0.1:8700/") == "http://127.0.0.1:8700"
    assert c.normalise_url("https://Hogo.Example.JP/api/v1") == "https://hogo.example.jp"
    for bad in ("ftp://x", "127.0.0.1:8700", "http://user:pw@host", "http://host/?q=1"):
        with pytest.raises(c.CliError) as e:
            c.normalise_url(bad)
        assert e.value.exit_code == c.EXIT_UNAVAILABLE


def test_plain_http_is_flagged_only_for_other_machines() -> None:
    """Passwords must not cross the network in clear: plain http to another host is flagged."""
    assert not c.is_cleartext_remote("http://127.0.0.1:8700")
    assert not c.is_cleartext_remote("http://localhost:8700")
    assert not c.is_cleartext_remote("http://[::1]:8700")
    assert not c.is_cleartext_remote("https://hogo.example.jp")
    assert c.is_cleartext_remote("http://hogo.example.jp")
    assert c.is_cleartext_remote("http://192.0.2.10:8700")


def test_credentials_are_written_private_and_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials file is created 0600 in a 0700 directory (SEC-128: credentials protected
    from being read) and never repr()s its token."""
    monkeypatch.setenv("HOGO_CONFIG_DIR", str(tmp_path / "cfg"))
    creds = c.Credentials(url="http://127.0.0.1:1", username="admin", token="hgs_secret", expires_at=None)
    assert "hgs_secret" not in repr(creds)
    path = c.save_credentials(creds)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert c.load_credentials() == creds
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]
    path.write_text("{not json")
    with pytest.raises(c.CliError) as e:
        c.load_credentials()
    assert e.value.exit_code == c.EXIT_UNAVAILABLE
    assert c.delete_credentials() and not c.delete_credentials()


def test_config_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOGO_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert c.config_dir() == tmp_path / "hogo"


def test_api_errors_carry_code_requirement_and_hint() -> None:
    """An API error body becomes a CliError with the server's code and requirement ID; a 401 on a
    stored session says to run ``hogo login``; non-JSON answers still map by status."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/whoami"):
            return httpx.Response(401, json={"error": {"code": "session_expired", "message": "ended",
                                                       "requirement": "ANON-21"}})
        return httpx.Response(502, text="bad gateway")

    with c.ApiClient("http://hogo.test", "hgs_x", transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(c.CliError) as e:
            api.get("/auth/whoami")
        assert (e.value.exit_code, e.value.code, e.value.requirement) == (3, "session_expired", "ANON-21")
        assert e.value.hint and "hogo login" in e.value.hint
        with pytest.raises(c.CliError) as e:
            api.get("/other")
        assert (e.value.exit_code, e.value.code, e.value.status) == (1, "http_502", 502)
    assert json.dumps(e.value.to_dict())
