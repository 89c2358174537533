"""Delivering messages off-host: audit-log checkpoints and security alerts (SEC-107(3), ANON-13, MLIT-9.5.8).

Two kinds of message leave the host through the same sinks:

``checkpoint``
    A signed audit-log checkpoint (a signed note: text, a blank line, signature lines). Written to
    storage the database cannot roll back, it lets a verifier detect a truncated, rolled-back or
    rewritten log (SEC-107(3): logs protected against falsification and deletion; MLIT-9.5.8).
``alert``
    A security alert for a person to act on, e.g. the warning on a bulk download (ANON-13).

Sinks (``parse_sink`` turns a configuration string into one):

``FileSink`` (``file:/abs/path``)
    Appends to a file that should live on *other* storage (another disk, an NFS or WORM mount, a
    volume the database host cannot rewrite). Each write is fsync'ed before ``send`` returns.
    ``FileSink.read_checkpoints`` reads the checkpoints back for a verifier.
``SyslogSink`` (``syslog:udp://host:514``, ``syslog:tcp://host:601``, ``syslog:tls://host:6514``,
``syslog:unix:///dev/log``)
    One RFC 5424 message per send, for a central log server that keeps its own copy. UDP and the
    unix socket are fire and forget: success means the datagram left, not that it was stored.
``WebhookSink`` (``https://…`` or ``webhook:https://…``)
    An HTTPS POST of JSON, optionally HMAC-signed, for a chat room, a ticket system or a SIEM. A
    2xx answer is the receiver's acknowledgement.
``SmtpMailer`` (``smtp://user@host:587?to=a@example.jp&from=hogo@example.jp``)
    An e-mail to the people who must act on alerts. The password comes from ``HOGO_SMTP_PASSWORD``.

Delivery is at-least-once, never exactly-once: ``send`` either returns (the sink accepted the
message, as far as its transport can tell) or raises ``DeliveryError``, and a caller that retries
after an error may deliver the same message twice (a lost acknowledgement looks like a failure).
Receivers must therefore treat duplicates as harmless: a checkpoint repeated is the same claim
twice, an alert repeated is noise, not a new incident. ``deliver_all`` tries every sink and reports
each outcome without raising, so the caller decides whether one failed sink is fatal (fail closed)
or a warning.

Content rules, applied the same way by every sink so all copies agree: ``kind`` must be
``"checkpoint"`` or ``"alert"`` (anything else is a ``ValueError``, a programming error); the
subject and body are never refused, but CR LF becomes LF, and control characters other than LF and
TAB in the body (any control character in the subject) are replaced by a visible ``\\xNN`` escape,
so text from an attacker (a file name in an alert) can neither break a transport's framing nor stop
the alert from being sent. Signed checkpoint notes contain no control characters, so they pass
unchanged.

``DeliveryError`` messages name the sink by a redacted description (no userinfo, no URL path or
query, no password, no HMAC secret) and are safe to log and to show to an administrator.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import hmac
import ipaddress
import json
import os
import re
import smtplib
import socket
import ssl
import stat
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

import httpx

from hogo.clock import Clock, SystemClock

KINDS = ("checkpoint", "alert")
SMTP_PASSWORD_ENV = "HOGO_SMTP_PASSWORD"  # noqa: S105 - the name of the variable, not a password
WEBHOOK_SECRET_ENV = "HOGO_WEBHOOK_SECRET"  # noqa: S105 - the name of the variable, not a secret
WEBHOOK_CA_FILE_ENV = "HOGO_WEBHOOK_CA_FILE"

# RFC 5424 section 6.2.1. Severity: checkpoints are notices, alerts are warnings.
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
_SEVERITY = {"checkpoint": 5, "alert": 4}
_SYSLOG_DEFAULT_PORTS = {"udp": 514, "tcp": 601, "tls": 6514}
_BOM = "\ufeff"

# C0 controls, DEL and C1 controls. LF and TAB are allowed in bodies.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FILE_HEADER = re.compile(rb"(checkpoint|alert) (\d{1,12})")


class DeliveryError(Exception):
    """A sink did not accept a message. The message never carries secrets (see the module docstring)."""

    def __init__(self, sink: str, reason: str) -> None:
        super().__init__(f"{sink}: {reason}")
        self.sink = sink
        self.reason = reason


class Sink(Protocol):
    """Somewhere a message goes off-host. ``name`` is a redacted description, safe to log."""

    name: str

    def send(self, subject: str, body: str, *, kind: str) -> None:
        """Deliver one message or raise ``DeliveryError``; ``kind`` is ``"checkpoint"`` or ``"alert"``."""
        ...


# --- content rules -----------------------------------------------------------------------------


def _escape_control(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def _prepare(subject: str, body: str, kind: str) -> tuple[str, str]:
    """Check ``kind``; make subject and body safe for every transport (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    subject = _CONTROL.sub(_escape_control, subject.replace("\r\n", "\n"))
    body = _BODY_CONTROL.sub(_escape_control, body.replace("\r\n", "\n"))
    return subject, body


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (of three characters or more) that occurs in ``text`` by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _describe(exc: BaseException, secrets: Iterable[str | None]) -> str:
    detail = _scrub(str(exc), secrets).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` plus ``/…`` when there was a path or query: no userinfo, no path, no query.

    The path is dropped too because many webhook services put their token there."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    tail = "/…" if parts.path not in ("", "/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}{tail}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ssl_context(ca_file: str | os.PathLike[str] | None, what: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=None if ca_file is None else os.fspath(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{what}: cannot load CA file {os.fspath(ca_file or '')!r} ({type(exc).__name__})") from exc


# --- file --------------------------------------------------------------------------------------


class FileSink:
    """Appends each message to a file on other storage, durable (fsync'ed) before ``send`` returns.

    File format: a sequence of records, each ``\\f<kind> <n>\\n`` followed by exactly ``n`` bytes of
    UTF-8 body ending in ``\\n``. A form feed never occurs inside a body (the content rules escape
    it), so each form feed starts a record; the byte count detects a record torn by a crash, which
    ``read_checkpoints`` skips while still reading every later record. The framing is independent of
    the blank line inside a signed note, and ``cat`` shows the notes readably. Only the body is
    written: the subject is for people, the body is the record.

    The file is created mode 0600 (its directory entry fsync'ed too); an existing file that is not a
    regular file, or that group or others may write, is refused. Appends from several processes are
    serialised with ``flock`` and ``O_APPEND``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_absolute():
            raise ValueError(f"file sink path must be absolute, not {os.fspath(path)!r}")
        self.name = f"file {self.path}"

    def send(self, subject: str, body: str, *, kind: str) -> None:
        _subject, body = _prepare(subject, body, kind)
        if not body.endswith("\n"):
            body += "\n"
        data = body.encode("utf-8")
        record = f"\f{kind} {len(data)}\n".encode("ascii") + data
        try:
            self._append(record)
        except OSError as exc:
            raise DeliveryError(self.name, _describe(exc, ())) from exc

    def _append(self, record: bytes) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO fails instead of blocking
        created = True
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            created = False
            fd = os.open(self.path, flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise DeliveryError(self.name, "not a regular file")
            if st.st_mode & 0o022:
                raise DeliveryError(self.name, f"writable by group or others (mode {st.st_mode & 0o777:o})")
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(record)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        if created:
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def read_records(self) -> list[tuple[str, str]]:
        """Every complete record as ``(kind, body)``, in file order; torn records are skipped.

        Raises ``FileNotFoundError`` when the file does not exist (nothing was ever anchored, or
        someone removed it: the caller knows which to expect)."""
        data = self.path.read_bytes()
        records: list[tuple[str, str]] = []
        for chunk in data.split(b"\f")[1:]:
            header, newline, payload = chunk.partition(b"\n")
            match = _FILE_HEADER.fullmatch(header)
            if not newline or match is None or len(payload) != int(match.group(2)):
                continue
            try:
                records.append((match.group(1).decode("ascii"), payload.decode("utf-8")))
            except UnicodeDecodeError:
                continue
        return records

    def read_checkpoints(self) -> list[str]:
        """The bodies written with ``kind="checkpoint"``, oldest first, each exactly as sent plus a final ``\\n``."""
        return [body for kind, body in self.read_records() if kind == "checkpoint"]


# --- syslog ------------------------------------------------------------------------------------


def syslog_escape(text: str) -> str:
    """Backslash, LF and TAB as ``\\\\``, ``\\n`` and ``\\t``: the whole message stays on one line."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def syslog_unescape(text: str) -> str:
    """The inverse of ``syslog_escape``, for a verifier reading checkpoints back from a log server."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def _syslog_hostname() -> str:
    name = socket.gethostname()
    if 0 < len(name) <= 255 and all(33 <= ord(c) <= 126 for c in name):
        return name
    return "-"


class SyslogSink:
    """One RFC 5424 message per send: ``<PRI>1 TIMESTAMP HOSTNAME hogo PROCID <kind> - BOM MSG``.

    PRI is facility × 8 + severity (notice for checkpoints, warning for alerts). MSG is the subject
    and the body joined by a newline, then escaped with ``syslog_escape`` so that it is one line:
    receivers that split on newlines or escape control characters (rsyslog, journald) still keep
    it intact, and ``syslog_unescape`` gives back ``subject + "\\n" + body``.

    Transports: ``udp://host:port`` (RFC 5426, one datagram), ``tcp://host:port`` (RFC 6587
    octet-counting framing), ``tls://host:port`` (RFC 5425, octet counting over TLS, server
    certificate checked against ``ca_file`` or the system store) and ``unix:///path`` (one
    datagram on a local socket such as ``/dev/log``; the local daemon must accept RFC 5424 there).
    UDP and unix datagrams carry no acknowledgement. Keep messages under about 2 KB: receivers may
    truncate longer ones (RFC 5426 only promises 480 octets, rsyslog's default limit is 8 KB).
    """

    def __init__(
        self,
        address: str,
        *,
        facility: str = "authpriv",
        timeout_s: float = 5.0,
        ca_file: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        try:
            parts = urllib.parse.urlsplit(address)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"syslog address {address!r}: bad port") from exc
        self.transport = parts.scheme.lower()
        if self.transport not in ("udp", "tcp", "tls", "unix"):
            raise ValueError(f"syslog address {address!r}: transport must be udp, tcp, tls or unix")
        if facility not in FACILITIES:
            raise ValueError(f"syslog facility {facility!r} unknown (use authpriv, local0 … local7, …)")
        if parts.query or parts.fragment:
            raise ValueError(f"syslog address {address!r}: unexpected query or fragment")
        self.facility = facility
        self.timeout_s = timeout_s
        self._clock: Clock = clock or SystemClock()
        self._ssl: ssl.SSLContext | None = None
        if self.transport == "unix":
            if parts.netloc or not parts.path.startswith("/"):
                raise ValueError(f"syslog address {address!r}: use unix:///absolute/path")
            self.path = parts.path
            self.host, self.port = "", 0
            self.name = f"syslog unix://{self.path}"
            return
        if ca_file is not None and self.transport != "tls":
            raise ValueError("syslog ca_file applies to tls:// only")
        if not parts.hostname or parts.username is not None or parts.path not in ("", "/"):
            raise ValueError(f"syslog address {address!r}: use {self.transport}://host:port")
        self.host = parts.hostname
        self.port = port if port is not None else _SYSLOG_DEFAULT_PORTS[self.transport]
        self.path = ""
        if self.transport == "tls":
            self._ssl = _ssl_context(ca_file, "syslog tls")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.name = f"syslog {self.transport}://{host}:{self.port}"

    def format(self, subject: str, body: str, *, kind: str) -> bytes:
        """The RFC 5424 message ``send`` would transmit (without transport framing)."""
        subject, body = _prepare(subject, body, kind)
        pri = FACILITIES[self.facility] * 8 + _SEVERITY[kind]
        ts = self._clock.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        header = f"<{pri}>1 {ts} {_syslog_hostname()} hogo {os.getpid()} {kind} -"
        return header.encode("ascii") + b" " + (_BOM + syslog_escape(f"{subject}\n{body}")).encode("utf-8")

    def send(self, subject: str, body: str, *, kind: str) -> None:
        message = self.format(subject, body, kind=kind)
        try:
            if self.transport == "unix":
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(self.timeout_s)
                    sock.connect(self.path)
                    sock.send(message)
            elif self.transport == "udp":
                family, type_, proto, _, addr = socket.getaddrinfo(
                    self.host, self.port, type=socket.SOCK_DGRAM)[0]
                with socket.socket(family, type_, proto) as sock:
                    sock.settimeout(self.timeout_s)
                    sock.connect(addr)
                    sock.send(message)
            else:
                frame = f"{len(message)} ".encode("ascii") + message
                with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as raw:
                    if self._ssl is None:
                        raw.sendall(frame)
                        raw.shutdown(socket.SHUT_WR)
                    else:
                        with self._ssl.wrap_socket(raw, server_hostname=self.host) as tls:
                            tls.sendall(frame)
        except (OSError, ssl.SSLError) as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EMSGSIZE:
                raise DeliveryError(self.name, f"message of {len(message)} bytes too long for one datagram") from exc
            raise DeliveryError(self.name, _describe(exc, ())) from exc


# --- webhook -----------------------------------------------------------------------------------


class WebhookSink:
    """POSTs ``{"kind", "subject", "body", "sent_at"}`` as UTF-8 JSON; any 2xx answer is success.

    Only ``https://`` is allowed, except ``http://`` to a loopback host (tests, a local relay).
    Redirects are not followed (they would count as failure). With ``secret`` every request carries
    ``X-Hogo-Signature: sha256=<hex HMAC-SHA256 of the exact request body>``; ``sent_at`` (UTC, ISO
    8601) is inside the signed body, so a receiver can also refuse stale replays.
    """

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | os.PathLike[str] | None = None,
        timeout_s: float = 5.0,
        secret: str | bytes | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = f"webhook {redact_url(url)}"
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"{self.name}: bad URL (port)") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{self.name}: webhook URL must be https://host/…")
        if scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError(f"{self.name}: plain http is allowed only to a loopback host; use https")
        self.url = url
        self.timeout_s = timeout_s
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self._verify = _ssl_context(ca_file, self.name)
        self._clock: Clock = clock or SystemClock()
        self._redact: tuple[str | None, ...] = (
            url, parts.username, parts.password, parts.query, parts.path if len(parts.path) > 1 else None,
            secret if isinstance(secret, str) else None,
        )

    def __repr__(self) -> str:
        return f"WebhookSink({self.name!r})"

    def send(self, subject: str, body: str, *, kind: str) -> None:
        subject, body = _prepare(subject, body, kind)
        sent_at = self._clock.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        raw = json.dumps({"kind": kind, "subject": subject, "body": body, "sent_at": sent_at},
                         ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "hogo", "X-Hogo-Kind": kind}
        if self._secret is not None:
            headers["X-Hogo-Signature"] = "sha256=" + hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
        try:
            with httpx.Client(verify=self._verify, timeout=self.timeout_s, follow_redirects=False) as client:
                response = client.post(self.url, content=raw, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ssl.SSLError) as exc:
            raise DeliveryError(self.name, _describe(exc, self._redact)) from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(self.name, f"HTTP {response.status_code}")


# --- e-mail ------------------------------------------------------------------------------------


def _check_address(address: str, what: str) -> str:
    if "@" not in address or _CONTROL.search(address) or any(c.isspace() for c in address) or "," in address:
        raise ValueError(f"smtp {what} {address!r} is not an e-mail address")
    return address


class SmtpMailer:
    """Sends each message as a UTF-8 e-mail (Japanese subjects are RFC 2047 encoded) with ``smtplib``.

    With ``starttls`` the connection is upgraded before anything else is sent, the server
    certificate checked against ``ca_file`` or the system store; a server that does not offer
    STARTTLS is an error, never a silent downgrade. Credentials are refused without STARTTLS unless
    the server is on a loopback address. The message carries ``Auto-Submitted: auto-generated``
    (RFC 3834, no auto-replies) and ``X-Hogo-Kind``. Success means the server accepted the message
    for every recipient; a partly refused message is a ``DeliveryError`` naming the refused ones.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: Sequence[str],
        starttls: bool,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        ca_file: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not host or not 0 < port < 65536:
            raise ValueError("smtp needs a host and a port between 1 and 65535")
        if not recipients:
            raise ValueError("smtp needs at least one recipient")
        if (username is None) != (password is None):
            raise ValueError(f"smtp username and password go together (password from {SMTP_PASSWORD_ENV})")
        if username is not None and not starttls and not _is_loopback(host):
            raise ValueError("smtp credentials without STARTTLS would cross the network in clear; enable starttls")
        self.host, self.port = host, port
        self.sender = _check_address(sender, "sender")
        self.recipients = [_check_address(r, "recipient") for r in recipients]
        self.starttls = starttls
        self.timeout_s = timeout_s
        self._username, self._password = username, password
        self._ssl = _ssl_context(ca_file, "smtp") if starttls else None
        self._clock: Clock = clock or SystemClock()
        shown = f"[{host}]" if ":" in host else host
        self.name = f"smtp {shown}:{port}"

    def __repr__(self) -> str:
        return f"SmtpMailer({self.name!r})"

    def build(self, subject: str, body: str, *, kind: str) -> EmailMessage:
        """The message ``send`` would transmit."""
        subject, body = _prepare(subject, body, kind)
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(self._clock.now().astimezone(dt.UTC))
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Hogo-Kind"] = kind
        if body.isascii():
            msg.set_content(body)
        else:
            msg.set_content(body, charset="utf-8", cte="base64")
        return msg

    def send(self, subject: str, body: str, *, kind: str) -> None:
        msg = self.build(subject, body, kind=kind)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self._ssl is not None:
                    smtp.starttls(context=self._ssl)
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=self.recipients)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(self.name, _describe(exc, (self._password, self._username))) from exc
        if refused:
            raise DeliveryError(self.name, f"recipients refused: {', '.join(sorted(refused))}")


# --- configuration -----------------------------------------------------------------------------


def _query(raw: str, allowed: Sequence[str], what: str) -> dict[str, str]:
    """``a=1&b=2`` with percent-decoding but ``+`` kept (it is common in e-mail addresses)."""
    result: dict[str, str] = {}
    for item in raw.split("&") if raw else []:
        key, eq, value = item.partition("=")
        key = urllib.parse.unquote(key)
        if not eq or key not in allowed:
            raise ValueError(f"{what}: unknown option {key!r} (allowed: {', '.join(allowed)})")
        if key in result:
            raise ValueError(f"{what}: option {key!r} given twice")
        result[key] = urllib.parse.unquote(value)
    return result


def _flag(value: str, what: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{what} must be 1 or 0, not {value!r}")


def _parse_syslog(address: str) -> SyslogSink:
    base, _, raw_query = address.partition("?")
    options = _query(raw_query, ("facility", "ca"), "syslog sink")
    if "ca" in options and not options["ca"].startswith("/"):
        raise ValueError("syslog sink: ca must be an absolute path")
    return SyslogSink(base, facility=options.get("facility", "authpriv"), ca_file=options.get("ca"))


def _parse_smtp(spec: str, env: Mapping[str, str]) -> SmtpMailer:
    parts = urllib.parse.urlsplit(spec)
    if parts.password is not None:
        raise ValueError(f"smtp sink: do not put the password in the sink string; set {SMTP_PASSWORD_ENV}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("smtp sink: bad port") from exc
    if not parts.hostname:
        raise ValueError("smtp sink: missing host (smtp://user@host:587?to=…&from=…)")
    if parts.path not in ("", "/"):
        raise ValueError("smtp sink: unexpected path after host:port")
    options = _query(parts.query, ("to", "from", "starttls", "ca"), "smtp sink")
    if not options.get("to"):
        raise ValueError("smtp sink: missing to=recipient[,recipient…]")
    if not options.get("from"):
        raise ValueError("smtp sink: missing from=sender")
    starttls = _flag(options.get("starttls", "1"), "smtp sink starttls")
    if "ca" in options and not options["ca"].startswith("/"):
        raise ValueError("smtp sink: ca must be an absolute path")
    username = urllib.parse.unquote(parts.username) if parts.username else None
    password = env.get(SMTP_PASSWORD_ENV) if username is not None else None
    if username is not None and not password:
        raise ValueError(f"smtp sink: user given but {SMTP_PASSWORD_ENV} is not set")
    return SmtpMailer(
        parts.hostname, port if port is not None else (587 if starttls else 25),
        sender=options["from"], recipients=[r.strip() for r in options["to"].split(",") if r.strip()],
        starttls=starttls, username=username, password=password, ca_file=options.get("ca"),
    )


def parse_sink(spec: str, *, env: Mapping[str, str] | None = None) -> Sink:
    """A sink from a configuration string (``env`` defaults to ``os.environ``).

    ``file:/abs/path``; ``syslog:udp://host:514``, ``syslog:tcp://host:601``,
    ``syslog:tls://host:6514[?ca=/abs/ca.pem]``, ``syslog:unix:///dev/log`` (each may add
    ``?facility=local0``, default authpriv; the port defaults to the one shown);
    ``https://…`` or ``webhook:https://…`` (HMAC secret from ``HOGO_WEBHOOK_SECRET``, private CA
    from ``HOGO_WEBHOOK_CA_FILE``, both optional);
    ``smtp://user@host:port?to=a@example.jp,b@example.jp&from=hogo@example.jp&starttls=1[&ca=/abs/ca.pem]``
    (password from ``HOGO_SMTP_PASSWORD``, never from the string; ``user@`` optional; starttls
    defaults to 1, the port to 587, or 25 with starttls=0).

    Raises ``ValueError`` naming the bad part; the message never repeats a password or URL path.
    """
    env = os.environ if env is None else env
    spec = spec.strip()
    scheme = spec.partition(":")[0].lower()
    if scheme == "file":
        path = spec[len("file:"):]
        if path.startswith("//"):
            if not path.startswith("///"):
                raise ValueError("file sink: use file:/abs/path (no host)")
            path = path[2:]
        if not path.startswith("/"):
            raise ValueError(f"file sink: path must be absolute, not {path!r}")
        return FileSink(path)
    if scheme == "syslog":
        return _parse_syslog(spec[len("syslog:"):])
    if scheme == "webhook":
        spec, scheme = spec[len("webhook:"):], spec[len("webhook:"):].partition(":")[0].lower()
        if scheme not in ("https", "http"):
            raise ValueError("webhook sink: URL must start with https://")
    if scheme in ("https", "http"):
        return WebhookSink(
            spec, secret=env.get(WEBHOOK_SECRET_ENV) or None, ca_file=env.get(WEBHOOK_CA_FILE_ENV) or None,
        )
    if scheme == "smtp":
        return _parse_smtp(spec, env)
    shown = scheme if re.fullmatch(r"[a-z][a-z0-9+.-]{0,20}", scheme) else "?"
    raise ValueError(
        f"unknown sink type {shown!r}: use file:/path, syslog:udp|tcp|tls|unix://…, https://… or smtp://…"
    )


def deliver_all(sinks: Iterable[Sink], subject: str, body: str, *, kind: str) -> list[tuple[str, str | None]]:
    """Send to every sink, in order; ``(sink name, error or None)`` for each, never raising for a sink.

    Only an invalid ``kind`` raises (``ValueError``, before anything is sent). A sink that raises
    something other than ``DeliveryError`` is reported by exception type only (its text might
    hold a secret). Sinks are tried one after another, so the worst case is the sum of timeouts.
    """
    _prepare(subject, body, kind)
    results: list[tuple[str, str | None]] = []
    for sink in sinks:
        try:
            sink.send(subject, body, kind=kind)
        except DeliveryError as exc:
            results.append((sink.name, str(exc)))
        except Exception as exc:
            results.append((sink.name, f"{sink.name}: unexpected {type(exc).__name__}"))
        else:
            results.append((sink.name, None))
    return results
