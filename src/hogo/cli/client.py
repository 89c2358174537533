"""The CLI's side of the REST API: where the server is, the stored sign-in, one HTTP client, and
the one place that maps an HTTP answer (or a local error) to an exit code.

Exit codes
----------
    0  ok
    1  generic error (HTTP 400 / 5xx, unexpected answer)
    2  usage error (Typer default; also unreadable password files)
    3  not authenticated or session expired (401): run ``hogo login``
    4  forbidden (403), including steps still pending and separation of duties (SEC-19)
    5  not found (404)
    6  conflict (409), e.g. ``hogo init`` on an initialised data directory
    7  validation failed (422, 413): the message names the field
    8  rate limited (429)
    9  server unreachable, or a configuration error (no URL, unreadable credentials, instance not
       initialised, server refuses to start)

Credentials
-----------
``hogo login`` stores ``{url, username, token, expires_at}`` in ``credentials.json`` in the config
directory (``$HOGO_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/hogo``, else ``~/.config/hogo``), the file
mode 0600 and the directory 0700. No password is ever stored, printed or logged; the session token
is never printed. ``HOGO_URL`` / ``--url`` choose the server and ``HOGO_TOKEN`` supplies an API
token for scripts. A stored session token is only ever sent to the server it was issued by.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import stat
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from hogo import __version__
from hogo.errors import ConfigurationError, HogoError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_FORBIDDEN = 4
EXIT_NOT_FOUND = 5
EXIT_CONFLICT = 6
EXIT_VALIDATION = 7
EXIT_RATE_LIMITED = 8
EXIT_UNAVAILABLE = 9
EXIT_TAMPERED = 10

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_ERROR: "generic error",
    EXIT_USAGE: "usage error",
    EXIT_AUTH: "not authenticated / session expired (run 'hogo login')",
    EXIT_FORBIDDEN: "forbidden",
    EXIT_NOT_FOUND: "not found",
    EXIT_CONFLICT: "conflict (e.g. already exists / already initialised)",
    EXIT_VALIDATION: "validation failed",
    EXIT_RATE_LIMITED: "rate limited",
    EXIT_UNAVAILABLE: "server unreachable / configuration error",
    EXIT_TAMPERED: "the audit log failed verification (modified, missing, truncated, rolled back or forked)",
}

STATUS_EXIT: dict[int, int] = {
    401: EXIT_AUTH,
    403: EXIT_FORBIDDEN,
    404: EXIT_NOT_FOUND,
    409: EXIT_CONFLICT,
    413: EXIT_VALIDATION,
    422: EXIT_VALIDATION,
    429: EXIT_RATE_LIMITED,
}

CREDENTIALS_FILE = "credentials.json"
API_PREFIX = "/api/v1"
USER_AGENT = f"hogo-cli/{__version__}"
DEFAULT_TIMEOUT_S = 30.0

STEP_COMMANDS: dict[str, str] = {
    "change_password": "change your one-time password: hogo passwd",
    "enroll_mfa": "set up multi-factor authentication: hogo mfa enroll, then hogo mfa confirm CODE",
}


def exit_code_for_status(status: int) -> int:
    return STATUS_EXIT.get(status, EXIT_ERROR)


class CliError(Exception):
    """An error to report (stderr, or ``{"error": …}`` on stdout with --json) and exit with."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = EXIT_ERROR,
        code: str = "error",
        requirement: str | None = None,
        details: dict[str, Any] | None = None,
        hint: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code
        self.requirement = requirement
        self.details = details or {}
        self.hint = hint
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.requirement:
            body["requirement"] = self.requirement
        if self.details:
            body["details"] = self.details
        if self.hint:
            body["hint"] = self.hint
        if self.status is not None:
            body["status"] = self.status
        body["exit_code"] = self.exit_code
        return body


def from_hogo_error(exc: HogoError) -> CliError:
    """A service error raised by a local command (init, serve, migrate)."""
    code = EXIT_UNAVAILABLE if isinstance(exc, ConfigurationError) else exit_code_for_status(exc.status)
    return CliError(exc.message, exit_code=code, code=exc.code, requirement=exc.requirement,
                    details=exc.details or None)


def usage_error(message: str, *, code: str = "usage") -> CliError:
    return CliError(message, exit_code=EXIT_USAGE, code=code)


# ------------------------------------------------------------------------------- the server URL


def normalise_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; refuses anything else."""
    text = url.strip().rstrip("/")
    if text.endswith(API_PREFIX):
        text = text[: -len(API_PREFIX)]
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{url!r} is not a server address (expected http(s)://host[:port])",
                       exit_code=EXIT_UNAVAILABLE, code="invalid_url")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise CliError("the server address must not contain credentials, a query or a fragment",
                       exit_code=EXIT_UNAVAILABLE, code="invalid_url")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.lower(), parts.path, "", ""))


def is_cleartext_remote(url: str) -> bool:
    """Plain http to something other than this machine: passwords would cross the network in clear."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


# ---------------------------------------------------------------------------------- credentials


def config_dir() -> Path:
    if explicit := os.environ.get("HOGO_CONFIG_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "hogo"


def credentials_path() -> Path:
    return config_dir() / CREDENTIALS_FILE


@dataclasses.dataclass(frozen=True)
class Credentials:
    url: str
    username: str
    token: str = dataclasses.field(repr=False)
    expires_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "username": self.username, "token": self.token, "expires_at": self.expires_at}


def load_credentials() -> Credentials | None:
    path = credentials_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", exit_code=EXIT_UNAVAILABLE,
                       code="credentials_unreadable") from None
    mode = stat.S_IMODE(st.st_mode)
    if os.name == "posix" and mode & 0o077:
        raise CliError(
            f"{path} is accessible by other users (mode {mode:o}); run 'chmod 600 {path}' or sign in again",
            exit_code=EXIT_UNAVAILABLE, code="insecure_credentials",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        creds = Credentials(
            url=normalise_url(str(data["url"])),
            username=str(data["username"]),
            token=str(data["token"]),
            expires_at=str(data["expires_at"]) if data.get("expires_at") else None,
        )
    except (OSError, ValueError, KeyError, TypeError, CliError):
        raise CliError(f"{path} is not a hogo credentials file; run 'hogo login' again",
                       exit_code=EXIT_UNAVAILABLE, code="invalid_credentials") from None
    return creds


def save_credentials(creds: Credentials) -> Path:
    """Write atomically, created 0600 (never briefly readable by others), in a 0700 directory."""
    directory = config_dir()
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        with contextlib.suppress(OSError):
            directory.chmod(0o700)
    path = directory / CREDENTIALS_FILE
    tmp = directory / f".{CREDENTIALS_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(creds.to_dict(), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CliError(f"cannot write {path}: {exc.strerror}", exit_code=EXIT_UNAVAILABLE,
                       code="credentials_unwritable") from None
    return path


def delete_credentials() -> bool:
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True


# ----------------------------------------------------------------------------------- the client


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="@")


def path(template: str, *segments: str) -> str:
    """``path("/users/{}/roles/{}", name, role)`` with every segment percent-encoded."""
    return template.format(*(_quote(s) for s in segments))


class ApiClient:
    """One server, at most one bearer credential. Redirects are not followed, so the token only
    ever goes to ``base_url``."""

    def __init__(self, base_url: str, token: str | None = None, *, source: str = "session",
                 timeout: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = normalise_url(base_url)
        self.source = source  # where the token came from: "session" or "env"
        self._token = token
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url_path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        options: dict[str, str] | None = None,
        signing_in: bool = False,
        headers: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        timeout: float | httpx.Timeout | None = None,
        raw: bool = False,
    ) -> Any:
        """The decoded JSON answer (None for 204; the body's bytes with ``raw``). Raises CliError with
        the right exit code.

        ``options`` maps API field names to the CLI options that set them, so a validation error
        can say which option to fix. ``content`` sends a raw body (bytes, or an iterator of chunks
        streamed as they are read) instead of ``body`` as JSON; ``headers`` are added (never
        ``Authorization``); ``timeout`` overrides the client's for this request.
        """
        sent = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        extra: dict[str, Any] = {"content": content} if content is not None else {"json": body}
        if timeout is not None:
            extra["timeout"] = timeout
        try:
            resp = self._http.request(method, url_path, params=query, headers=sent, **extra)
        except httpx.TimeoutException:
            raise CliError(f"the hogo server at {self.base_url} did not answer in time",
                           exit_code=EXIT_UNAVAILABLE, code="timeout") from None
        except (httpx.WriteError, httpx.RemoteProtocolError) as exc:
            if content is None:
                raise CliError(f"cannot reach the hogo server at {self.base_url} ({type(exc).__name__}: {exc})",
                               exit_code=EXIT_UNAVAILABLE, code="unreachable",
                               hint="is 'hogo serve' running, and is the URL right?") from None
            raise CliError(f"the hogo server at {self.base_url} stopped reading the upload",
                           code="upload_interrupted",
                           hint="the file may be larger than the server accepts (import_max_bytes)") from None
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the hogo server at {self.base_url} ({type(exc).__name__}: {exc})",
                           exit_code=EXIT_UNAVAILABLE, code="unreachable",
                           hint="is 'hogo serve' running, and is the URL right?") from None
        if resp.is_success:
            if raw:
                return resp.content
            if resp.status_code == 204 or not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                raise CliError(f"the server at {self.base_url} did not answer with JSON; is it a hogo server?",
                               code="bad_response", status=resp.status_code) from None
        raise self._error(resp, options=options, signing_in=signing_in)

    def get(self, url_path: str, **kw: Any) -> Any:
        return self.request("GET", url_path, **kw)

    def post(self, url_path: str, **kw: Any) -> Any:
        return self.request("POST", url_path, **kw)

    def put(self, url_path: str, **kw: Any) -> Any:
        return self.request("PUT", url_path, **kw)

    def patch(self, url_path: str, **kw: Any) -> Any:
        return self.request("PATCH", url_path, **kw)

    def delete(self, url_path: str, **kw: Any) -> Any:
        return self.request("DELETE", url_path, **kw)

    def download(self, method: str, url_path: str, write: Any, *, body: Any = None,
                 headers: dict[str, str] | None = None, options: dict[str, str] | None = None,
                 timeout: float | httpx.Timeout | None = None) -> httpx.Headers:
        """Stream a successful answer's body to ``write(chunk)`` (never all in memory); its headers. Errors as
        ``request``; a connection lost mid-body raises CliError ``download_interrupted``."""
        sent = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        try:
            with self._http.stream(method, url_path, json=body, headers=sent,
                                   timeout=timeout if timeout is not None else self._http.timeout) as resp:
                if not resp.is_success:
                    resp.read()
                    raise self._error(resp, options=options, signing_in=False)
                try:
                    for chunk in resp.iter_bytes(256 * 1024):
                        write(chunk)
                except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                    raise CliError(f"the download from {self.base_url} was cut off ({type(exc).__name__})",
                                   code="download_interrupted") from None
                return resp.headers
        except httpx.TimeoutException:
            raise CliError(f"the hogo server at {self.base_url} did not answer in time",
                           exit_code=EXIT_UNAVAILABLE, code="timeout") from None
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the hogo server at {self.base_url} ({type(exc).__name__}: {exc})",
                           exit_code=EXIT_UNAVAILABLE, code="unreachable",
                           hint="is 'hogo serve' running, and is the URL right?") from None

    def _error(self, resp: httpx.Response, *, options: dict[str, str] | None, signing_in: bool) -> CliError:
        status = resp.status_code
        err: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            payload = resp.json()
            if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                err = payload["error"]
        code = str(err.get("code") or f"http_{status}")
        message = str(err.get("message") or f"the server answered HTTP {status} {resp.reason_phrase}")
        details = err.get("details") if isinstance(err.get("details"), dict) else None
        requirement = str(err["requirement"]) if err.get("requirement") else None
        hint = self._hint(status, code, details or {}, options or {}, signing_in)
        return CliError(message, exit_code=exit_code_for_status(status), code=code, requirement=requirement,
                        details=details, hint=hint, status=status)

    def _hint(self, status: int, code: str, details: dict[str, Any], options: dict[str, str],
              signing_in: bool) -> str | None:
        if status == 401 and not signing_in:
            if self.source == "env":
                return "the API token in HOGO_TOKEN was refused (revoked, expired, or its account disabled)"
            return "your session has ended: run 'hogo login' to sign in again"
        if code == "step_required":
            steps = details.get("steps") or []
            todo = [STEP_COMMANDS.get(str(s), str(s)) for s in steps] if isinstance(steps, list) else []
            return "next: " + ("; ".join(todo) if todo else "hogo whoami shows what is left")
        if status in (413, 422):
            fields: list[str] = []
            problems = details.get("problems")
            if isinstance(problems, list):
                fields += [str(p.get("field")) for p in problems if isinstance(p, dict)]
            if details.get("field"):
                fields.append(str(details["field"]))
            named = dict.fromkeys(f.split(".")[0] for f in fields)
            opts = [f"{options[f]} ({f})" for f in named if f in options]
            if opts:
                return "check " + ", ".join(opts)
        if status == 429 and details.get("retry_after_s"):
            return f"try again in {details['retry_after_s']} seconds"
        return None


def resolve_url(explicit: str | None) -> str | None:
    """``--url``, else ``$HOGO_URL``, else None."""
    chosen = explicit or os.environ.get("HOGO_URL") or None
    return normalise_url(chosen) if chosen else None


def signed_in_client(explicit_url: str | None) -> ApiClient:
    """A client carrying ``$HOGO_TOKEN`` or the stored session, for the chosen server."""
    url = resolve_url(explicit_url)
    env_token = os.environ.get("HOGO_TOKEN", "").strip()
    if env_token:
        if url is None:
            creds = load_credentials()
            url = creds.url if creds else None
        if url is None:
            raise CliError("HOGO_TOKEN is set but no server is: set HOGO_URL or pass --url",
                           exit_code=EXIT_UNAVAILABLE, code="no_url")
        return ApiClient(url, env_token, source="env")
    creds = load_credentials()
    if creds is None:
        raise CliError("not signed in", exit_code=EXIT_AUTH, code="not_authenticated",
                       hint="run 'hogo login --url URL --user NAME'")
    if url is not None and url != creds.url:
        # Never send a session token to a server other than the one that issued it.
        raise CliError(f"not signed in to {url} (the stored sign-in is for {creds.url})",
                       exit_code=EXIT_AUTH, code="not_authenticated",
                       hint=f"run 'hogo login --url {url} --user NAME'")
    return ApiClient(creds.url, creds.token)
