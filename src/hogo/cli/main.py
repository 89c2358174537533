"""``hogo``: the command line for a hogo (保護) personal-data vault.

Everything a user does goes through the server's REST API (``/api/v1``), like ``gh`` or ``vault``:
``hogo login`` signs in and stores a session token; other commands send it. Only ``hogo init``,
``hogo serve`` and ``hogo migrate`` work locally, on the data directory (``--data-dir``, else
``$HOGO_DATA_DIR``, else ``./hogo-data``).

Every command takes ``--json`` (one JSON document on stdout; errors as ``{"error": {…}}``).

Exit codes: 0 ok; 1 generic error; 2 usage error; 3 not authenticated / session expired (run
``hogo login``); 4 forbidden; 5 not found; 6 conflict; 7 validation failed; 8 rate limited;
9 server unreachable / configuration error. See ``hogo.cli.client`` for the mapping.

Passwords are read from a file (``--password-file``, ``-`` for stdin), from stdin when it is not a
terminal, or from a hidden prompt; they are never echoed, stored or logged.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from hogo import __version__
from hogo.cli.alerts import alerts_app
from hogo.cli.approvals import approval_app
from hogo.cli.audit import audit_app
from hogo.cli.backups import backup_app
from hogo.cli.client import (
    EXIT_CODES,
    EXIT_UNAVAILABLE,
    EXIT_VALIDATION,
    STEP_COMMANDS,
    ApiClient,
    CliError,
    Credentials,
    delete_credentials,
    is_cleartext_remote,
    load_credentials,
    path,
    resolve_url,
    save_credentials,
    usage_error,
)
from hogo.cli.command import URL_KEY, JsonOpt, api, command, command_group, opt, root_url
from hogo.cli.crypto import crypto_app
from hogo.cli.data import file_app, grant_app, key_app, record_app
from hogo.cli.erasure import certificate_app, retention_app
from hogo.cli.exports import package_app  # also adds 'hogo record export'
from hogo.cli.marks import workcopy_app
from hogo.cli.output import (
    DASH,
    Output,
    fmt_bool,
    fmt_time,
    kv_table,
    stdin_is_tty,
    stdout_is_tty,
    table,
)
from hogo.cli.takeouts import takeout_app
from hogo.errors import HogoError

PASSPHRASE_ENV = "HOGO_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a passphrase

EPILOG = "Exit codes:\n\n" + "\n".join(f"  {code}  {what}" for code, what in EXIT_CODES.items())

F = TypeVar("F", bound=Callable[..., Any])


app = typer.Typer(
    name="hogo",
    help="hogo (保護): a personal-data vault that enforces Japanese safety management measures (安全管理措置).",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
mfa_app = command_group("mfa", "Multi-factor authentication (TOTP) for your own account.")
token_app = command_group("token", "API tokens for scripts (use with HOGO_TOKEN).")
user_app = command_group("user", "Accounts: create, disable, reset, grant and revoke roles.")
dept_app = command_group("dept", "Departments (課室).")
app.add_typer(mfa_app)
app.add_typer(token_app)
app.add_typer(user_app)
app.add_typer(dept_app)
app.add_typer(audit_app)
app.add_typer(alerts_app)
app.add_typer(approval_app)
app.add_typer(takeout_app)
app.add_typer(file_app)
app.add_typer(key_app)
app.add_typer(grant_app)
app.add_typer(record_app)
app.add_typer(crypto_app)
app.add_typer(workcopy_app)
app.add_typer(package_app)
app.add_typer(certificate_app)
app.add_typer(retention_app)
app.add_typer(backup_app)


def arg(metavar: str, help: str) -> Any:
    return typer.Argument(metavar=metavar, help=help)


NameArg = Annotated[str, arg("NAME", "User name.")]


DataDirOpt = Annotated[
    Path | None,
    opt("--data-dir", metavar="DIR", help="Instance data directory (default: $HOGO_DATA_DIR, else ./hogo-data)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hogo {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        opt("--url", metavar="URL", help="Server address (default: $HOGO_URL, else the server you signed in to).",),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    ctx.meta[URL_KEY] = url


# -------------------------------------------------------------------------------------- secrets


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def read_secret_file(source: str, what: str) -> str:
    """A password from a file, or stdin for ``-``; one trailing newline is dropped, nothing else."""
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise usage_error(f"cannot read the {what} file {source}: {reason}", code="bad_file") from None
    value = _strip_newline(text)
    if not value:
        raise usage_error(f"the {what} file {source} is empty", code="bad_file")
    return value


def read_secret(source: str | None, what: str, *, confirm: bool = False) -> str:
    """From ``source`` (a file or ``-``); else from stdin when it is not a terminal; else a prompt."""
    if source is not None:
        return read_secret_file(source, what)
    if not stdin_is_tty():
        value = _strip_newline(sys.stdin.read())
        if not value:
            raise usage_error(f"no {what} on stdin (or pass --{what.replace(' ', '-')}-file)", code="no_password")
        return value
    value = str(typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=confirm, err=True))
    if not value:
        raise usage_error(f"the {what} is empty", code="no_password")
    return value


def _print_qr(uri: str) -> None:
    import segno

    segno.make(uri).terminal(compact=True)


def _steps_text(steps: list[str]) -> list[str]:
    return [STEP_COMMANDS.get(s, s) for s in steps]


# ------------------------------------------------------------------------------- local commands


def _settings(data_dir: Path | None) -> Any:
    from hogo.config import load_settings

    return load_settings(data_dir)


@command(app, "init")
def init(
    data_dir: DataDirOpt = None,
    admin: Annotated[str, opt("--admin", metavar="NAME", help="The first administrator's user name.",
                              show_default=True)] = "admin",
    password_file: Annotated[str | None, opt(
        "--password-file", metavar="FILE",
        help="Administrator password file ('-' for stdin); MFA is then enrolled at once. "
             "Without it a one-time password is printed.")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Seed a demo organisation (published passwords).")] = False,
    passphrase_file: Annotated[str | None, opt(
        "--passphrase-file", metavar="FILE",
        help="Seal the key file with the passphrase in FILE ('-' for stdin); 'hogo serve' then needs it.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a new instance: keys, settings, database, the first administrator (local).

    With key_provider = "pkcs11" ($HOGO_KEY_PROVIDER, $HOGO_PKCS11_MODULE, $HOGO_PKCS11_TOKEN_LABEL,
    PIN in $HOGO_PKCS11_PIN) the key-encryption key is created in the token if it is not there.
    """
    from hogo.domain.passwords import PasswordPolicy, load_common_passwords, password_problems
    from hogo.domain.text import normalise_username
    from hogo.services.instance import init_instance, is_initialised

    out = Output(json_out)
    settings = _settings(data_dir)
    if is_initialised(settings):
        raise CliError(f"an instance already exists in {settings.data_dir}", exit_code=6,
                       code="already_initialised")
    # Checked before anything is written, so a refused name or password leaves no half-made instance.
    try:
        name = normalise_username(admin, strict=True)
    except ValueError as exc:
        raise CliError(f"user name {exc}", exit_code=EXIT_VALIDATION, code="validation_failed",
                       details={"field": "admin"}, hint="check --admin") from None
    if password_file == "-" and passphrase_file == "-":  # noqa: S105 - '-' means stdin
        raise usage_error("--password-file and --passphrase-file cannot both read stdin ('-')")
    password = read_secret_file(password_file, "password") if password_file is not None else None
    if password is not None:
        policy = PasswordPolicy(min_length=settings.password_min_length, max_length=settings.password_max_length)
        problems = password_problems(password, username=name, policy=policy, common=load_common_passwords())
        if problems:
            raise CliError("the password " + "; ".join(problems), exit_code=EXIT_VALIDATION,
                           code="validation_failed", requirement="ANON-11",
                           details={"field": "password", "problems": problems}, hint="check --password-file")
    passphrase = read_secret_file(passphrase_file, "passphrase") if passphrase_file is not None else None
    if passphrase is not None:
        from hogo.crypto.keys import PASSPHRASE_MIN_LENGTH

        if len(passphrase) < PASSPHRASE_MIN_LENGTH:
            raise CliError(f"the key passphrase must be at least {PASSPHRASE_MIN_LENGTH} characters",
                           exit_code=EXIT_VALIDATION, code="validation_failed", requirement="ANON-18",
                           details={"field": "passphrase"}, hint="check --passphrase-file")
    if settings.key_provider == "pkcs11":
        # Checked (and the KEK made) before anything is written: a wrong PIN leaves no half-made instance.
        from hogo.crypto.pkcs11 import ensure_kek, pin_from_env

        ensure_kek(settings.pkcs11_module, settings.pkcs11_token_label, pin_from_env(), settings.pkcs11_key_label)
    result = init_instance(settings, admin=name, admin_password=password, demo=demo, passphrase=passphrase)
    data = {
        "data_dir": str(result.data_dir),
        "admin": result.admin,
        "one_time_password": result.one_time_password,
        "otpauth_uri": result.otpauth_uri,
        "recovery_codes": list(result.recovery_codes),
        "demo": demo,
        "demo_users": list(result.demo_users),
        "demo_password": result.demo_password,
        "key_sealed": passphrase is not None,
        "key_provider": settings.key_provider,
    }

    def human(c: Console) -> None:
        out.say(f"Initialised a hogo instance in {result.data_dir}", style="green")
        out.say(f"Administrator: {result.admin}")
        if passphrase is not None:
            out.say("The key file is sealed by your passphrase: 'hogo serve' asks for it "
                    "(--passphrase-file, $HOGO_KEY_PASSPHRASE or a prompt). Without it the data cannot be read.")
        if settings.key_provider == "pkcs11":
            out.say(f"Data keys are wrapped in the PKCS#11 token {settings.pkcs11_token_label!r} "
                    f"(key {settings.pkcs11_key_label!r}); 'hogo serve' needs $HOGO_PKCS11_PIN.")
        if result.one_time_password is not None:
            out.secret("One-time password (shown once; it must be changed at first sign-in)",
                       result.one_time_password)
            out.say("Multi-factor authentication will be enrolled at first sign-in (hogo mfa enroll).")
        if result.otpauth_uri is not None:
            out.say("Multi-factor authentication is enrolled. Add this to your authenticator app (TOTP):")
            out.secret("otpauth URI", result.otpauth_uri)
            if stdout_is_tty():
                _print_qr(result.otpauth_uri)
            out.say("Recovery codes (each works once; shown only now, keep them offline):")
            for code in result.recovery_codes:
                out.say(f"  {code}")
        if result.demo_users:
            out.warn("demo mode: these accounts share a published password; never hold real data here")
            out.say(f"Demo users ({result.demo_password}): " + ", ".join(result.demo_users))
        out.say(f"Next: hogo serve --data-dir {result.data_dir}, then hogo login --url URL --user {result.admin}")

    out.emit(data, human)


def _key_passphrase(passphrase_file: str | None) -> str:
    """The sealed key file's passphrase: ``--passphrase-file``, else ``$HOGO_KEY_PASSPHRASE``, else a
    hidden prompt when stdin is a terminal; else exit 9."""
    import os

    if passphrase_file is not None:
        return read_secret_file(passphrase_file, "passphrase")
    if value := os.environ.get(PASSPHRASE_ENV):
        return value
    if stdin_is_tty():
        value = str(typer.prompt("Key passphrase", hide_input=True, err=True))
        if value:
            return value
    raise CliError("the key file is sealed by a passphrase and none was given",
                   exit_code=EXIT_UNAVAILABLE, code="passphrase_required",
                   hint=f"pass --passphrase-file FILE ('-' for stdin), set ${PASSPHRASE_ENV}, "
                        "or run in a terminal to be asked")


@command(app, "serve")
def serve(
    host: Annotated[str, opt("--host", metavar="HOST", help="Address to listen on.", show_default=True)] = "127.0.0.1",
    port: Annotated[int, opt("--port", metavar="PORT", help="Port to listen on.", show_default=True)] = 8700,
    data_dir: DataDirOpt = None,
    passphrase_file: Annotated[str | None, opt(
        "--passphrase-file", metavar="FILE",
        help="The key file's passphrase, when it is sealed ('-' for stdin; else $HOGO_KEY_PASSPHRASE, "
             "else a prompt).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run the server (API and web UI) on an initialised data directory (local)."""
    from hogo.services.instance import is_initialised

    out = Output(json_out)
    settings = _settings(data_dir)
    if not is_initialised(settings):
        raise CliError(f"no hogo instance in {settings.data_dir}", exit_code=EXIT_UNAVAILABLE,
                       code="not_initialised", hint="run 'hogo init' first (or pass --data-dir)")
    import uvicorn

    from hogo.api.app import create_app
    from hogo.bootstrap import build, check_ready_to_serve
    from hogo.crypto.keys import is_sealed

    passphrase = None
    if is_sealed(settings.keys_dir):
        passphrase = _key_passphrase(passphrase_file)
    elif passphrase_file is not None:
        out.warn("the key file is not sealed by a passphrase: --passphrase-file is not used")
    hogo = build(settings, passphrase=passphrase)
    try:
        check_ready_to_serve(hogo)
    except HogoError:
        hogo.close()
        raise
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}"
    out.emit({"url": url, "data_dir": str(settings.data_dir)},
             lambda c: out.say(f"hogo is serving {url} (data: {settings.data_dir}); Ctrl+C stops it"))
    try:
        uvicorn.run(create_app(hogo, background_checkpoints=True), host=host, port=port, proxy_headers=False)
    finally:
        hogo.close()


@command(app, "migrate")
def migrate(data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """Upgrade the database schema to this version of hogo (local)."""
    from hogo.services.instance import is_initialised
    from hogo.store import db

    out = Output(json_out)
    settings = _settings(data_dir)
    if not is_initialised(settings):
        raise CliError(f"no hogo instance in {settings.data_dir}", exit_code=EXIT_UNAVAILABLE,
                       code="not_initialised", hint="run 'hogo init' first (or pass --data-dir)")
    engine = db.make_engine(settings.database_url)
    try:
        before = db.current_revision(engine)
        db.upgrade(engine)
        after = db.current_revision(engine)
    finally:
        engine.dispose()
    data = {"from_revision": before, "to_revision": after, "changed": before != after}
    out.emit(data, lambda c: out.say(
        f"Schema upgraded from {before or 'nothing'} to {after}" if before != after
        else f"Schema already at {after}; nothing to do"))


# ---------------------------------------------------------------------------------- sign in/out


def _me_rows(me: dict[str, Any]) -> list[tuple[str, Any]]:
    roles = [
        f"{r['label_ja']} ({r['role']}{'@' + r['department'] if r.get('department') else ''})"
        for r in me.get("roles", [])
    ]
    steps = me.get("pending_steps") or []
    mfa = "enrolled" if me.get("mfa_enrolled") else "not enrolled"
    if me.get("mfa_verified"):
        mfa += ", verified for this sign-in"
    return [
        ("User", me.get("username")),
        ("Name", me.get("display_name")),
        ("Department", me.get("department")),
        ("Roles", "\n".join(roles) or DASH),
        ("Signed in with", "API token" if me.get("credential") == "token" else "session"),
        ("MFA", mfa),
        ("Pending steps", "\n".join(_steps_text(steps)) if steps else "none"),
        ("Account valid until", fmt_time(me.get("valid_until")) if me.get("valid_until") else "no end date"),
        ("Expires", fmt_time(me.get("expires_at"))),
    ]


@command(app, "login")
def login(
    user: Annotated[str, opt("--user", "-u", metavar="NAME", help="Your user name.")],
    url: Annotated[
        str | None,
        opt("--url", metavar="URL", help="Server address (default: $HOGO_URL, else the last server)."),
    ] = None,
    password_file: Annotated[str | None, opt(
        "--password-file", metavar="FILE",
        help="Read the password from this file ('-' for stdin). Otherwise stdin when it is not a terminal, "
             "else a prompt.")] = None,
    totp: Annotated[str | None, opt("--totp", metavar="CODE", help="The code from your authenticator app.")] = None,
    recovery_code: Annotated[str | None, opt("--recovery-code", metavar="CODE",
                                             help="A recovery code instead of --totp.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign in (password + one-time code) and keep the session for the other commands."""
    out = Output(json_out)
    if totp and recovery_code:
        raise usage_error("give --totp or --recovery-code, not both")
    previous = None
    with contextlib.suppress(CliError):
        previous = load_credentials()
    base = resolve_url(url or root_url()) or (previous.url if previous else None)
    if base is None:
        raise CliError("which server? pass --url (or set HOGO_URL)", exit_code=EXIT_UNAVAILABLE, code="no_url")
    if is_cleartext_remote(base):
        out.warn(f"{base} is plain http to another machine: the password crosses the network unencrypted")
    password = read_secret(password_file, "password")
    body: dict[str, Any] = {"username": user, "password": password}
    if totp:
        body["totp"] = totp.strip()
    if recovery_code:
        body["recovery_code"] = recovery_code.strip()
    with ApiClient(base) as client:
        try:
            data = client.post("/auth/login", body=body, signing_in=True)
        except CliError as exc:
            if exc.code != "mfa_required":
                raise
            if totp or recovery_code or not stdin_is_tty():
                exc.hint = "this account uses multi-factor authentication: pass --totp CODE (or --recovery-code CODE)"
                raise
            body["totp"] = str(typer.prompt("One-time code from your authenticator app", err=True)).strip()
            data = client.post("/auth/login", body=body, signing_in=True)
        creds = Credentials(url=client.base_url, username=data["user"]["username"], token=data["token"],
                            expires_at=data.get("expires_at"))
    saved = save_credentials(creds)
    if previous is not None and previous.token != creds.token:
        # End the session this one replaces, so it does not linger until it times out.
        with contextlib.suppress(CliError), ApiClient(previous.url, previous.token, timeout=5) as old:
            old.post("/auth/logout")
    steps = list(data.get("pending_steps") or [])
    result = {
        "url": creds.url,
        "username": creds.username,
        "expires_at": creds.expires_at,
        "idle_timeout_s": data.get("idle_timeout_s"),
        "pending_steps": steps,
        "user": data.get("user"),
        "credentials_file": str(saved),
    }

    def human(c: Console) -> None:
        out.say(f"Signed in to {creds.url} as {creds.username} (session ends by {fmt_time(creds.expires_at)}, "
                f"or after {int(data.get('idle_timeout_s') or 0) // 60} minutes idle).", style="green")
        if steps:
            out.say("Before anything else you must:", style="yellow")
            for s in _steps_text(steps):
                out.say(f"  - {s}")

    out.emit(result, human)


@command(app, "logout")
def logout(json_out: JsonOpt = False) -> None:
    """End the session on the server and forget it here."""
    out = Output(json_out)
    creds = load_credentials()
    if creds is None:
        out.emit({"logged_out": False, "reason": "not signed in"}, lambda c: out.say("Not signed in."))
        return
    ended = True
    with ApiClient(creds.url, creds.token) as client:
        try:
            client.post("/auth/logout")
        except CliError as exc:
            if exc.exit_code != 3:
                raise
            ended = False  # the session had already ended (timed out, revoked, account disabled)
    delete_credentials()
    out.emit({"logged_out": True, "url": creds.url, "username": creds.username, "session_was_active": ended},
             lambda c: out.say(f"Signed out of {creds.url}" + ("" if ended else " (the session had already ended)")))


@command(app, "whoami")
def whoami(json_out: JsonOpt = False) -> None:
    """Who you are signed in as: roles (with their Japanese names), pending steps, expiry."""
    out = Output(json_out)
    with api() as client:
        me = client.get("/auth/whoami")
        server = client.base_url
    out.emit(me, lambda c: c.print(kv_table([*_me_rows(me), ("Server", server)])))


@command(app, "passwd")
def passwd(
    old_src: Annotated[str | None, opt("--old-password-file", metavar="FILE", help="Current password file.")] = None,
    new_src: Annotated[str | None, opt("--new-password-file", metavar="FILE", help="New password file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Change your password (prompts, with confirmation, unless both files are given)."""
    out = Output(json_out)
    if old_src == "-" and new_src == "-":
        raise usage_error("only one of the password files can be stdin ('-')")
    if (old_src is None or new_src is None) and not stdin_is_tty():
        raise usage_error("not at a terminal: give --old-password-file and --new-password-file")
    with api() as client:
        old = read_secret(old_src, "current password")
        new = read_secret(new_src, "new password", confirm=True)
        client.post("/auth/password", body={"old_password": old, "new_password": new},
                    options={"new_password": "--new-password-file", "old_password": "--old-password-file"})
        steps: list[str] = []
        with contextlib.suppress(CliError):
            steps = list(client.get("/auth/whoami").get("pending_steps") or [])

    def human(c: Console) -> None:
        out.say("Password changed. Your other sessions were signed out.", style="green")
        if steps:
            out.say("Still to do:", style="yellow")
            for s in _steps_text(steps):
                out.say(f"  - {s}")

    out.emit({"password_changed": True, "pending_steps": steps}, human)


# ----------------------------------------------------------------------------------------- MFA


@command(mfa_app, "enroll")
def mfa_enroll(json_out: JsonOpt = False) -> None:
    """Start TOTP enrolment: shows the otpauth:// URI, the secret and (on a terminal) a QR code."""
    out = Output(json_out)
    with api() as client:
        data = client.post("/auth/mfa/enroll")

    def human(c: Console) -> None:
        out.say("Add this account to your authenticator app:")
        if stdout_is_tty():
            _print_qr(data["otpauth_uri"])
        out.secret("otpauth URI", data["otpauth_uri"])
        out.secret("Secret (to type in by hand)", data["secret"])
        out.say("Then confirm with the code it shows: hogo mfa confirm CODE")

    out.emit(data, human)


@command(mfa_app, "confirm")
def mfa_confirm(
    code: Annotated[str, typer.Argument(metavar="CODE", help="The 6-digit code your authenticator app shows.")],
    json_out: JsonOpt = False,
) -> None:
    """Finish enrolment with a code from the app; prints your recovery codes (once)."""
    out = Output(json_out)
    with api() as client:
        data = client.post("/auth/mfa/confirm", body={"code": code.strip()}, options={"code": "CODE"})

    def human(c: Console) -> None:
        out.say("Multi-factor authentication is set up.", style="green")
        out.say("Recovery codes (each works once instead of a code; shown only now, keep them offline):")
        for rc in data["recovery_codes"]:
            out.say(f"  {rc}")

    out.emit(data, human)


# -------------------------------------------------------------------------------------- tokens


@command(token_app, "create")
def token_create(
    name: Annotated[str, opt("--name", metavar="NAME", help="What the token is for.")],
    scope: Annotated[list[str], opt("--scope", metavar="SCOPE",
                                    help="A permission the token carries (repeatable); see 'hogo roles'.")],
    until: Annotated[str, opt("--until", metavar="DATE",
                              help="Expiry: a date (valid through that day) or a date-time.")],
    json_out: JsonOpt = False,
) -> None:
    """Create an API token (printed once; use it as HOGO_TOKEN)."""
    out = Output(json_out)
    with api() as client:
        data = client.post("/tokens", body={"name": name, "scopes": scope, "expires_at": until},
                           options={"name": "--name", "scopes": "--scope", "expires_at": "--until"})

    def human(c: Console) -> None:
        out.say(f"Created token {data['name']} ({data['id']}), valid until {fmt_time(data['expires_at'])}, "
                f"scopes: {', '.join(data['scopes'])}", style="green")
        out.secret("Token (shown once; keep it like a password)", data["token"])

    out.emit(data, human)


@command(token_app, "list")
def token_list(json_out: JsonOpt = False) -> None:
    """Your API tokens (never the tokens themselves)."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/tokens")
    out.emit(rows, lambda c: c.print(table(
        ["ID", "Name", "Prefix", "Scopes", "Created", "Expires", "Revoked", "Last used"],
        [[t["id"], t["name"], t["prefix"], t["scopes"], fmt_time(t["created_at"]), fmt_time(t["expires_at"]),
          fmt_time(t["revoked_at"]), fmt_time(t["last_used_at"])] for t in rows],
    )))


@command(token_app, "revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's ID (hogo token list).")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke one of your API tokens, at once."""
    out = Output(json_out)
    with api() as client:
        client.delete(path("/tokens/{}", token_id))
    out.emit({"revoked": token_id}, lambda c: out.say(f"Revoked token {token_id}", style="green"))


# --------------------------------------------------------------------------------------- users


def _role_text(r: dict[str, Any]) -> str:
    from hogo.domain.roles import Role

    base = str(r["role"])
    try:
        label = Role(base).label_ja
    except ValueError:
        label = base
    return f"{label} ({base}{'@' + r['department'] if r.get('department') else ''})"


def _user_rows(u: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("User", u["username"]),
        ("Name", u["display_name"]),
        ("E-mail", u.get("email")),
        ("Department", u.get("department")),
        ("Roles", "\n".join(_role_text(r) for r in u.get("roles", [])) or DASH),
        ("State", u["state"]),
        ("Valid from", fmt_time(u.get("valid_from"))),
        ("Valid until", fmt_time(u.get("valid_until")) if u.get("valid_until") else "no end date"),
        ("MFA enrolled", fmt_bool(u.get("mfa_enabled"))),
        ("Must change password", fmt_bool(u.get("must_change_password"))),
        ("Locked until", fmt_time(u.get("locked_until"))),
        ("Last sign-in", fmt_time(u.get("last_login_at"))),
        ("Created", fmt_time(u.get("created_at"))),
    ]


def _show_user(out: Output, u: dict[str, Any], message: str | None = None) -> None:
    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        c.print(kv_table(_user_rows(u)))

    out.emit(u, human)


USER_FIELDS = {"username": "NAME", "display_name": "--display-name", "department": "--dept", "roles": "--role",
               "email": "--email", "valid_from": "--from", "valid_until": "--until"}


@command(user_app, "add")
def user_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="User name (a–z, digits, '.', '_', '-').")],
    role: Annotated[list[str], opt("--role", metavar="ROLE", help="Role (repeatable): e.g. clerk, or clerk@JINJI "
                                   "for another department; see 'hogo roles'.")],
    dept: Annotated[str | None, opt("--dept", metavar="CODE", help="The user's department code.")] = None,
    display_name: Annotated[str | None, opt("--display-name", metavar="TEXT", help="Full name as shown.")] = None,
    email: Annotated[str | None, opt("--email", metavar="EMAIL")] = None,
    valid_from: Annotated[str | None, opt("--from", metavar="DATE",
                                          help="Start of validity (date or date-time).")] = None,
    until: Annotated[str | None, opt("--until", metavar="DATE", help="End of validity: valid through this date "
                                     "(required for contractors).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an account; prints its one-time password (to be changed at first sign-in)."""
    out = Output(json_out)
    body = {"username": name, "roles": role, "department": dept, "display_name": display_name, "email": email,
            "valid_from": valid_from, "valid_until": until}
    with api() as client:
        data = client.post("/users", body={k: v for k, v in body.items() if v is not None}, options=USER_FIELDS)

    def human(c: Console) -> None:
        out.say(f"Created user {data['user']['username']}.", style="green")
        c.print(kv_table(_user_rows(data["user"])))
        out.secret("One-time password (shown once; must be changed at first sign-in)", data["one_time_password"])

    out.emit(data, human)


@command(user_app, "list")
def user_list(
    dept: Annotated[str | None, opt("--dept", metavar="CODE", help="Only this department.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """All accounts (or one department's)."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/users", params={"department": dept}, options={"department": "--dept"})
    out.emit(rows, lambda c: c.print(table(
        ["User", "Name", "Dept", "Roles", "State", "MFA", "Valid until", "Last sign-in"],
        [[u["username"], u["display_name"], u.get("department"),
          [r["role"] + ("@" + r["department"] if r.get("department") else "") for r in u["roles"]],
          u["state"], fmt_bool(u["mfa_enabled"]), fmt_time(u.get("valid_until")), fmt_time(u.get("last_login_at"))]
         for u in rows],
    )))


@command(user_app, "show")
def user_show(name: NameArg, json_out: JsonOpt = False) -> None:
    """One account in detail."""
    out = Output(json_out)
    with api() as client:
        u = client.get(path("/users/{}", name))
    _show_user(out, u)


@command(user_app, "disable")
def user_disable(
    name: NameArg,
    reason: Annotated[str | None, opt("--reason", metavar="TEXT", help="Why (kept in the audit record).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Disable an account: its sessions and tokens stop working at once (SEC-129)."""
    out = Output(json_out)
    with api() as client:
        u = client.post(path("/users/{}/disable", name), body={"reason": reason} if reason else None,
                        options={"reason": "--reason"})
    _show_user(out, u, f"Disabled {u['username']}; its sessions and tokens no longer work.")


@command(user_app, "enable")
def user_enable(name: NameArg, json_out: JsonOpt = False) -> None:
    """Enable a disabled account."""
    out = Output(json_out)
    with api() as client:
        u = client.post(path("/users/{}/enable", name))
    _show_user(out, u, f"Enabled {u['username']}.")


@command(user_app, "unlock")
def user_unlock(name: NameArg, json_out: JsonOpt = False) -> None:
    """Lift a lockout after failed sign-ins."""
    out = Output(json_out)
    with api() as client:
        u = client.post(path("/users/{}/unlock", name))
    _show_user(out, u, f"Unlocked {u['username']}.")


@command(user_app, "reset-password")
def user_reset_password(name: NameArg, json_out: JsonOpt = False) -> None:
    """Give an account a new one-time password; its sessions end."""
    out = Output(json_out)
    with api() as client:
        data = client.post(path("/users/{}/reset-password", name))

    def human(c: Console) -> None:
        out.say(f"Reset the password of {data['user']['username']}; its sessions were ended.", style="green")
        out.secret("One-time password (shown once; must be changed at next sign-in)", data["one_time_password"])

    out.emit(data, human)


@command(user_app, "reset-mfa")
def user_reset_mfa(name: NameArg, json_out: JsonOpt = False) -> None:
    """For a lost device: MFA must be enrolled again at next sign-in; sessions end."""
    out = Output(json_out)
    with api() as client:
        u = client.post(path("/users/{}/reset-mfa", name))
    _show_user(out, u, f"Reset MFA of {u['username']}; it enrols again at next sign-in.")


@command(user_app, "update")
def user_update(
    name: NameArg,
    display_name: Annotated[str | None, opt("--display-name", metavar="TEXT")] = None,
    email: Annotated[str | None, opt("--email", metavar="EMAIL", help="'' removes it.")] = None,
    dept: Annotated[str | None, opt("--dept", metavar="CODE", help="Move to this department.")] = None,
    until: Annotated[str | None, opt("--until", metavar="DATE",
                                     help="New end of validity (date or date-time).")] = None,
    no_end_date: Annotated[bool, typer.Option("--no-end-date", help="Remove the end of validity.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Change an account's name, e-mail, department or validity period."""
    out = Output(json_out)
    if until is not None and no_end_date:
        raise usage_error("give --until or --no-end-date, not both")
    body: dict[str, Any] = {"display_name": display_name, "email": email, "department": dept, "valid_until": until}
    body = {k: v for k, v in body.items() if v is not None}
    if no_end_date:
        body["clear_valid_until"] = True
    if not body:
        raise usage_error("nothing to change: give --display-name, --email, --dept, --until or --no-end-date")
    with api() as client:
        u = client.patch(path("/users/{}", name), body=body, options=USER_FIELDS)
    _show_user(out, u, f"Updated {u['username']}.")


@command(user_app, "grant")
def user_grant(
    name: NameArg,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="Role, e.g. auditor or clerk@JINJI.")],
    json_out: JsonOpt = False,
) -> None:
    """Grant a role (never to yourself: SEC-19)."""
    out = Output(json_out)
    with api() as client:
        u = client.post(path("/users/{}/roles", name), body={"role": role}, options={"role": "ROLE"})
    _show_user(out, u, f"Granted {role} to {u['username']}.")


@command(user_app, "revoke")
def user_revoke(
    name: NameArg,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="Role, e.g. auditor or clerk@JINJI.")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a role."""
    out = Output(json_out)
    with api() as client:
        u = client.delete(path("/users/{}/roles/{}", name, role), options={"role": "ROLE"})
    _show_user(out, u, f"Revoked {role} from {u['username']}.")


# --------------------------------------------------------------------------------- departments


@command(dept_app, "add")
def dept_add(
    code: Annotated[str, typer.Argument(metavar="CODE", help="Department code, e.g. JINJI.")],
    name: Annotated[str, opt("--name", metavar="NAME", help="Department name, e.g. 人事課.")],
    parent: Annotated[str | None, opt("--parent", metavar="CODE", help="Parent department code.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a department."""
    out = Output(json_out)
    body = {"code": code, "name": name, **({"parent": parent} if parent else {})}
    with api() as client:
        d = client.post("/departments", body=body, options={"code": "CODE", "name": "--name", "parent": "--parent"})
    out.emit(d, lambda c: out.say(f"Created department {d['code']} ({d['name']}).", style="green"))


@command(dept_app, "list")
def dept_list(json_out: JsonOpt = False) -> None:
    """All departments, with member counts."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/departments")
    out.emit(rows, lambda c: c.print(table(
        ["Code", "Name", "Parent", "Members"], [[d["code"], d["name"], d.get("parent"), d["members"]] for d in rows]
    )))


# --------------------------------------------------------------------------------------- roles


@command(app, "roles")
def roles(json_out: JsonOpt = False) -> None:
    """The roles, their Japanese names and what each may do."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/roles")
    out.emit(rows, lambda c: c.print(table(
        ["Role", "役割", "English", "Per department", "Needs end date", "Permissions"],
        [[r["role"], r["label_ja"], r["label_en"], fmt_bool(r["department_scoped"]),
          fmt_bool(r["requires_end_date"]), "\n".join(r["permissions"])] for r in rows],
    )))


def main() -> None:
    """Console-script entry point (``hogo``)."""
    app(prog_name="hogo")


__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
