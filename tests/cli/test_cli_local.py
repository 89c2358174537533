"""The local commands (``hogo init``, ``serve``, ``migrate``) and the command line's own contract
(exit codes, --version), partly through the real ``hogo`` entry point in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cli_support import ADMIN_PASSWORD, Cli

from hogo import __version__
from live import free_port, init_data_dir


def hogo_command() -> list[str]:
    """The installed console script when it sits next to this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("hogo")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hogo.cli.main"]


def run_hogo(*args: str, env: dict[str, str] | None = None, input: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HOGO_")}
    full_env.update(env or {})
    return subprocess.run([*hogo_command(), *args], env=full_env, input=input, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_init_prints_a_one_time_password_through_the_installed_entry_point(tmp_path: Path) -> None:
    """``hogo init`` without a password: the administrator gets a one-time password that must be
    changed at first sign-in, and MFA is enrolled then (ANON-11, SEC-129, SEC-157). A second init on
    the same directory is refused with exit 6."""
    data = tmp_path / "data"
    r = run_hogo("init", "--data-dir", str(data), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["admin"] == "admin"
    assert out["data_dir"] == str(data.resolve())
    assert re.fullmatch(r"[A-Za-z2-9]{4}(-[A-Za-z2-9]{4}){3}", out["one_time_password"])
    assert out["otpauth_uri"] is None
    assert out["recovery_codes"] == []
    assert out["demo_users"] == [] and out["demo_password"] is None
    assert "database_url" not in out  # may hold a database password
    assert (data / "keys").is_dir()

    again = run_hogo("init", "--json", env={"HOGO_DATA_DIR": str(data)})
    assert again.returncode == 6
    assert json.loads(again.stdout)["error"]["code"] == "already_initialised"

    human = run_hogo("init", "--data-dir", str(data))
    assert human.returncode == 6
    assert "already exists" in human.stderr and human.stdout == ""


def test_init_interactive_tells_the_administrator_what_happens_at_first_sign_in(cli: Cli, tmp_path: Path) -> None:
    """Readable output: the one-time password on its own line, and that MFA is enrolled at first
    sign-in (SEC-157)."""
    r = cli("init", "--data-dir", str(tmp_path / "data"), "--admin", "kanri")
    assert r.exit_code == 0, r.stderr
    assert "Administrator: kanri" in r.stdout
    assert re.search(r"One-time password .*: [A-Za-z2-9-]{19}$", r.stdout, re.M)
    assert "must be changed at first sign-in" in r.stdout
    assert "Multi-factor authentication will be enrolled at first sign-in" in r.stdout


def test_init_with_password_file_enrols_mfa_and_prints_recovery_codes(cli: Cli, tmp_path: Path) -> None:
    """With ``--password-file -`` (stdin) the administrator's TOTP is enrolled at once: the
    otpauth:// URI and the recovery codes are printed, never the password (ANON-11, SEC-157)."""
    r = cli("init", "--data-dir", str(tmp_path / "a"), "--password-file", "-", input=ADMIN_PASSWORD + "\n")
    assert r.exit_code == 0, r.stderr
    assert "otpauth://totp/" in r.stdout and "secret=" in r.stdout
    codes = re.findall(r"^\s+([a-z2-9]{5}-[a-z2-9]{5})$", r.stdout, re.M)
    assert len(codes) == 10
    assert ADMIN_PASSWORD not in r.stdout + r.stderr

    pw = cli.write("pw", ADMIN_PASSWORD + "\n")
    out = cli.json("init", "--data-dir", str(tmp_path / "b"), "--password-file", pw)
    assert out["otpauth_uri"].startswith("otpauth://totp/")
    assert out["one_time_password"] is None
    assert len(out["recovery_codes"]) == 10


def test_init_refuses_a_weak_password_before_creating_anything(cli: Cli, tmp_path: Path) -> None:
    """The password policy (ANON-11) is checked before keys are written, so the directory is not
    left half-initialised. Only ONE trailing newline is stripped from a password file: a second one
    stays part of the password and is refused as a control character."""
    data = tmp_path / "data"
    short = cli.write("short", "tanpen\n")
    out = cli.json("init", "--data-dir", str(data), "--password-file", short, expect=7)
    assert out["error"]["requirement"] == "ANON-11"
    assert "at least 12 characters" in out["error"]["message"]

    two_newlines = cli.write("nl", ADMIN_PASSWORD + "\n\n")
    r = cli("init", "--data-dir", str(data), "--password-file", two_newlines)
    assert r.exit_code == 7
    assert "control characters" in r.stderr
    assert not (data / "keys").exists()

    good = cli.write("good", ADMIN_PASSWORD + "\n")
    assert cli("init", "--data-dir", str(data), "--password-file", good).exit_code == 0


def test_init_refuses_a_bad_administrator_name_and_unreadable_password_file(cli: Cli, tmp_path: Path) -> None:
    """User names are validated before anything is written (exit 7); a missing password file is a
    usage error (exit 2)."""
    data = tmp_path / "data"
    r = cli("init", "--data-dir", str(data), "--admin", "Ａｄｍｉｎ")
    assert r.exit_code == 7 and "half-width" in r.stderr
    r = cli("init", "--data-dir", str(data), "--password-file", str(tmp_path / "missing"))
    assert r.exit_code == 2 and "cannot read" in r.stderr
    assert not (data / "keys").exists()


def test_init_demo_seeds_the_demo_organisation(cli: Cli, tmp_path: Path) -> None:
    """``--demo`` creates a user in every role, sharing a published password that the output
    names (and warns about)."""
    out = cli.json("init", "--data-dir", str(tmp_path / "demo"), "--demo")
    assert out["demo"] is True
    assert "clerk.tanaka" in out["demo_users"] and len(out["demo_users"]) == 9
    assert out["demo_password"]


def test_serve_refuses_an_uninitialised_data_directory(tmp_path: Path) -> None:
    """``hogo serve`` never starts without an instance (keys, schema): exit 9 and a pointer to
    ``hogo init``."""
    r = run_hogo("serve", "--data-dir", str(tmp_path / "empty"), "--port", "1", timeout=60)
    assert r.returncode == 9, (r.stdout, r.stderr)
    assert "hogo init" in r.stderr
    assert not (tmp_path / "empty").exists()


def test_migrate_upgrades_an_instance_and_refuses_an_empty_directory(cli: Cli, tmp_path: Path) -> None:
    """``hogo migrate`` brings the schema to head (nothing to do right after init); without an
    instance it exits 9."""
    init_data_dir(tmp_path / "data", admin="admin", admin_password=None)
    out = cli.json("migrate", "--data-dir", str(tmp_path / "data"))
    assert out["changed"] is False and out["to_revision"]
    r = cli("migrate", "--data-dir", str(tmp_path / "nothing"))
    assert r.exit_code == 9 and "hogo init" in r.stderr


def test_help_documents_the_exit_codes_and_version(cli: Cli) -> None:
    """Scripts rely on the exit codes: ``hogo --help`` lists them."""
    r = cli("--help")
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    assert "Exit codes" in text
    for fragment in ("3 not authenticated", "4 forbidden", "5 not found", "6 conflict", "7 validation failed",
                     "8 rate limited", "9 server unreachable"):
        assert fragment in text
    v = cli("--version")
    assert v.exit_code == 0 and v.stdout.strip() == f"hogo {__version__}"
    assert cli("user", "add", "x").exit_code == 2  # --role is required: a usage error


def test_serve_runs_the_server_on_an_initialised_instance(tmp_path: Path) -> None:
    """``hogo serve`` on an initialised data directory prints its URL and answers the API (the
    real uvicorn path, stopped at the end of the test)."""
    data = tmp_path / "data"
    init_data_dir(data, admin="admin", admin_password=None)
    port = free_port()
    proc = subprocess.Popen([*hogo_command(), "serve", "--data-dir", str(data), "--port", str(port)],
                            env={k: v for k, v in os.environ.items() if not k.startswith("HOGO_")},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 200, proc.poll()
        assert health.json()["status"] == "ok"
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert f"hogo is serving http://127.0.0.1:{port}" in out
