"""A real hogo server in a subprocess (uvicorn on a free loopback port) for CLI and browser tests."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx

from hogo.config import Argon2Params, load_settings
from hogo.services import instance

TEST_ARGON2 = Argon2Params(time_cost=1, memory_cost_kib=64, parallelism=1)
_DATABASE_URLS: dict[Path, str] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class LiveServer:
    data_dir: Path
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def init_data_dir(data_dir: Path, *, admin: str, admin_password: str | None, demo: bool = False,
                  database_url: str | None = None, **settings: object) -> instance.InitResult:
    """Initialise an instance with cheap Argon2 (persisted in hogo.toml so the server uses it too)."""
    s = load_settings(data_dir, argon2=TEST_ARGON2, **({"database_url": database_url} if database_url else {}),
                      **settings)
    if database_url:
        # hogo.toml never keeps the database password; the server gets the URL from its environment.
        _DATABASE_URLS[data_dir.resolve()] = database_url
    return instance.init_instance(s, admin=admin, admin_password=admin_password, demo=demo)


def start_server(data_dir: Path, *, env: dict[str, str] | None = None, timeout: float = 30) -> LiveServer:
    # free_port() releases the port before uvicorn binds it; another worker may take it meanwhile.
    for _ in range(3):
        try:
            return _start_once(data_dir, env=env, timeout=timeout)
        except _PortTaken:
            continue
    raise RuntimeError("no free port after 3 attempts")


class _PortTaken(RuntimeError):
    pass


def _start_once(data_dir: Path, *, env: dict[str, str] | None, timeout: float) -> LiveServer:
    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    full_env = {**os.environ, "HOGO_DATA_DIR": str(data_dir), **(env or {})}
    if (url := _DATABASE_URLS.get(data_dir.resolve())) and "HOGO_DATABASE_URL" not in (env or {}):
        full_env["HOGO_DATABASE_URL"] = url
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "hogo.api.app:app_from_environment",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(data_dir, url, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if "address already in use" in server.log().lower():
                raise _PortTaken(port)
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start in {timeout}s:\n{server.log()}")


def secret_of(uri: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]


# ------------------------------------------------- personal-data files on a live server (issue 3)

import datetime as dt  # noqa: E402 - appended section
from collections.abc import Mapping, Sequence  # noqa: E402
from typing import Any  # noqa: E402


@dataclasses.dataclass
class LiveOrg:
    """An instance prepared by ``prepare_org``: ``support.make_org``'s organisation (KYUYO, JINJI,
    KANSA; pm.takahashi, clerk.ito, clerk.tanaka, auditor.watanabe) and its payroll My Number file."""

    data_dir: Path
    database_url: str | None
    secrets: dict[str, str]  # TOTP secrets by user name
    password: str  # every non-admin user's password

    def build(self) -> Any:
        """An in-process ``Hogo`` on the same database and keys (close it after use)."""
        from hogo.bootstrap import build

        return build(load_settings(self.data_dir, **({"database_url": self.database_url} if self.database_url
                                                     else {})))


def prepare_org(data_dir: Path, *, database_url: str | None = None,
                grants: Sequence[Mapping[str, Any]] = ()) -> LiveOrg:
    """Initialise ``data_dir`` and set up ``support.make_org`` in process, on a clock half an hour
    behind, so that every TOTP code used here lies in the past when the users sign in to the live
    server with real codes (``sign_in_api``). ``grants``: keyword arguments of
    ``hogo.services.grants.create_grant`` (``user``, ``actions``, ``purposes``, …), made by the
    file's protection manager."""
    from hogo.bootstrap import build
    from hogo.clock import FakeClock
    from hogo.services import grants as grant_service
    from support import ADMIN, ADMIN_PASSWORD, CTX, USER_PASSWORD, Instance, make_org

    res = init_data_dir(data_dir, admin=ADMIN, admin_password=ADMIN_PASSWORD, database_url=database_url)
    assert res.otpauth_uri is not None
    clock = FakeClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30))
    hogo = build(load_settings(data_dir, **({"database_url": database_url} if database_url else {})), clock=clock)
    try:
        inst = Instance(hogo, clock, ADMIN, ADMIN_PASSWORD, secret_of(res.otpauth_uri), res.recovery_codes)
        org = make_org(inst)
        for g in grants:
            grant_service.create_grant(hogo, org.p("pm.takahashi"), "payroll-mynumber", ctx=CTX, **g)
    finally:
        hogo.close()
    assert clock.now() < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    return LiveOrg(data_dir, database_url, dict(org.secrets), USER_PASSWORD)


def sign_in_api(url: str, username: str, password: str, totp_secret: str) -> str:
    """Sign in through the live server's API with the TOTP code of now; the Bearer token. (A code
    is single use: sign each user in once per 30-second step.)"""
    from hogo.crypto import totp

    code = totp.current_code(totp_secret, dt.datetime.now(dt.UTC))
    r = httpx.post(url + "/api/v1/auth/login", json={"username": username, "password": password, "totp": code},
                   timeout=30)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def kill_server(server: LiveServer) -> None:
    """SIGKILL: no shutdown handlers, no checkpoint, no flush; as a power cut is to the process."""
    if server.proc.poll() is None:
        server.proc.kill()
    server.proc.wait(timeout=30)
