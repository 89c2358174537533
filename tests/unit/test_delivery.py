"""Off-host delivery of audit checkpoints and alerts (SEC-107(3), ANON-13, MLIT-9.5.8).

Every transport is exercised against a real local server: UDP, TCP, TLS and unix-datagram syslog
listeners, an HTTPS ``http.server`` with a certificate made here, and an ``aiosmtpd`` SMTP server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import re
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hogo.clock import FakeClock
from hogo.services import delivery
from hogo.services.delivery import (
    DeliveryError,
    FileSink,
    SmtpMailer,
    SyslogSink,
    WebhookSink,
    deliver_all,
    parse_sink,
    syslog_unescape,
)

NOW = dt.datetime(2026, 4, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
# A signed note: text, a blank line, signature lines (the blank line is why FileSink frames by byte count).
NOTE = (
    "hogo.example.jp/audit\n"
    "4711\n"
    "3q2+7w0fE1Yl0xX2rQm1S1s3b9cQ2mXxX0fE1Yl0xX0=\n"
    "\n"
    "— hogo.example.jp/audit AbCdEf0123456789+/abcdefghijklmnopqrstuvwxyz==\n"
)
JA_SUBJECT = "【hogo】大量ダウンロードの警告"
JA_BODY = "利用者 tanaka が 5,000 件の個人データを一括ダウンロードしました。\n確認してください。\n"


# --- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost, made with ``cryptography``."""
    out = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hogo test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(out / "ca.pem", out / "server.pem", out / "server.key")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ))
    return pki


HEADER = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-) "
    "\ufeff(?P<msg>.*)",
    re.DOTALL,
)


def parse_5424(data: bytes) -> re.Match[str]:
    match = HEADER.fullmatch(data.decode("utf-8"))
    assert match is not None, data
    return match


def read_octet_counted(conn: socket.socket) -> bytes:
    """One RFC 6587 octet-counted frame, then EOF."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    length, _, message = data.partition(b" ")
    assert length.isdigit() and int(length) == len(message), data
    return message


@contextlib.contextmanager
def stream_listener(context: ssl.SSLContext | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """A TCP (or TLS) listener on 127.0.0.1 that reads one octet-counted message per connection."""
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            if context is not None:
                conn = context.wrap_socket(conn, server_side=True)
            with conn:
                conn.settimeout(10)
                received.append(read_octet_counted(conn))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        thread.join(10)
        server.close()


@dataclasses.dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes


@contextlib.contextmanager
def http_server(*, context: ssl.SSLContext | None, status: int = 200) -> Iterator[tuple[int, list[Captured]]]:
    captured: list[Captured] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            headers = {k.lower(): v for k, v in self.headers.items()}
            captured.append(Captured(self.path, headers, self.rfile.read(length)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], captured
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# --- FileSink ----------------------------------------------------------------------------------


def test_file_sink_round_trip_private_and_framed(tmp_path: Path) -> None:
    path = tmp_path / "anchor" / "checkpoints.log"
    path.parent.mkdir()
    sink = FileSink(path)
    sink.send("checkpoint 4711", NOTE, kind="checkpoint")
    sink.send(JA_SUBJECT, JA_BODY, kind="alert")
    sink.send("checkpoint 4712", NOTE.replace("4711", "4712").rstrip("\n"), kind="checkpoint")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sink.read_checkpoints() == [NOTE, NOTE.replace("4711", "4712")]
    assert sink.read_records()[1] == ("alert", JA_BODY)
    raw = path.read_bytes()
    assert raw.startswith(f"\fcheckpoint {len(NOTE.encode())}\n".encode() + NOTE.encode())
    assert sink.name == f"file {path}"


def test_file_sink_is_durable_before_returning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record and, for a new file, its directory entry are fsync'ed (SEC-107(3))."""
    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_ino, st.st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    path = tmp_path / "checkpoints.log"
    sink = FileSink(path)
    sink.send("c", NOTE, kind="checkpoint")
    assert synced == [(path.stat().st_ino, path.stat().st_size), (tmp_path.stat().st_ino, tmp_path.stat().st_size)]
    synced.clear()
    sink.send("c", NOTE, kind="checkpoint")
    assert synced == [(path.stat().st_ino, path.stat().st_size)]  # existing file: the directory is unchanged


def test_file_sink_skips_a_torn_record_and_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.log"
    sink = FileSink(path)
    sink.send("c", NOTE, kind="checkpoint")
    with open(path, "ab") as f:  # a crash in the middle of a write
        f.write(f"\fcheckpoint {len(NOTE)}\n".encode() + NOTE.encode()[:20])
    sink.send("c", NOTE.replace("4711", "4713"), kind="checkpoint")
    assert sink.read_checkpoints() == [NOTE, NOTE.replace("4711", "4713")]


def test_file_sink_escapes_a_form_feed_so_framing_holds(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "log")
    sink.send("a\r\nb", "file name evil\f\x00.csv\r\nnext line\n", kind="alert")
    sink.send("c", NOTE, kind="checkpoint")
    assert sink.read_records() == [("alert", "file name evil\\x0c\\x00.csv\nnext line\n"), ("checkpoint", NOTE)]


def test_file_sink_refuses_a_file_others_may_write(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"")
    path.chmod(0o666)
    with pytest.raises(DeliveryError, match="writable by group or others"):
        FileSink(path).send("c", NOTE, kind="checkpoint")


def test_file_sink_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="absolute"):
        FileSink("relative/log")
    with pytest.raises(DeliveryError) as e:
        FileSink(tmp_path / "missing-dir" / "log").send("c", NOTE, kind="checkpoint")
    assert e.value.sink == f"file {tmp_path / 'missing-dir' / 'log'}"
    assert "FileNotFoundError" in str(e.value)
    with pytest.raises(ValueError, match="kind"):
        FileSink(tmp_path / "log").send("c", NOTE, kind="audit")
    with pytest.raises(FileNotFoundError):
        FileSink(tmp_path / "never-written").read_checkpoints()


# --- syslog ------------------------------------------------------------------------------------


def test_syslog_udp_delivers_an_rfc5424_message_intact() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(10)
        port = listener.getsockname()[1]
        sink = SyslogSink(f"udp://127.0.0.1:{port}", clock=FakeClock(NOW))
        assert sink.name == f"syslog udp://127.0.0.1:{port}"
        received: list[bytes] = []
        thread = threading.Thread(target=lambda: received.append(listener.recv(65536)))
        thread.start()
        sink.send("checkpoint 4711", NOTE, kind="checkpoint")
        thread.join(10)

    m = parse_5424(received[0])
    assert int(m["pri"]) == 10 * 8 + 5  # authpriv.notice
    assert m["ts"] == "2026-04-01T09:30:15.123456Z"
    assert m["host"] == socket.gethostname()
    assert (m["app"], m["procid"], m["msgid"]) == ("hogo", str(os.getpid()), "checkpoint")
    assert "\n" not in m["msg"]
    assert syslog_unescape(m["msg"]) == "checkpoint 4711\n" + NOTE


def test_syslog_tcp_uses_octet_counting_and_keeps_japanese_and_backslashes() -> None:
    body = JA_BODY + "path C:\\tmp\\new\tcolumn\n"
    with stream_listener() as (port, received):
        SyslogSink(f"tcp://127.0.0.1:{port}", facility="local0", clock=FakeClock(NOW)).send(
            JA_SUBJECT, body, kind="alert")
    m = parse_5424(received[0])
    assert int(m["pri"]) == 16 * 8 + 4  # local0.warning
    assert m["msgid"] == "alert"
    assert syslog_unescape(m["msg"]) == f"{JA_SUBJECT}\n{body}"


def test_syslog_tls_checks_the_server_certificate(pki: Pki) -> None:
    with stream_listener(pki.server_context()) as (port, received):
        SyslogSink(f"tls://127.0.0.1:{port}", ca_file=pki.ca_file, clock=FakeClock(NOW)).send(
            "checkpoint 4711", NOTE, kind="checkpoint")
    assert syslog_unescape(parse_5424(received[0])["msg"]) == "checkpoint 4711\n" + NOTE

    with (stream_listener(pki.server_context()) as (port, received),
          pytest.raises(DeliveryError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed")):
        SyslogSink(f"tls://127.0.0.1:{port}").send("c", NOTE, kind="checkpoint")  # system store only
    assert received == []


def test_syslog_unix_datagram_socket(tmp_path: Path) -> None:
    path = tmp_path / "log"
    assert len(str(path)) < 100, "unix socket path too long for this platform"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(10)
        sink = SyslogSink(f"unix://{path}", clock=FakeClock(NOW))
        assert sink.name == f"syslog unix://{path}"
        sink.send("checkpoint 4711", NOTE, kind="checkpoint")
        m = parse_5424(listener.recv(65536))
    assert m["msgid"] == "checkpoint"
    assert syslog_unescape(m["msg"]) == "checkpoint 4711\n" + NOTE


def test_syslog_unreachable_gives_delivery_error(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="ConnectionRefusedError"):
        SyslogSink(f"tcp://127.0.0.1:{free_port()}", timeout_s=2).send("c", NOTE, kind="checkpoint")
    with pytest.raises(DeliveryError, match=r"syslog unix://.*FileNotFoundError"):
        SyslogSink(f"unix://{tmp_path}/nothing").send("c", NOTE, kind="checkpoint")


# --- webhook -----------------------------------------------------------------------------------


def test_webhook_posts_signed_json_over_https(pki: Pki) -> None:
    with http_server(context=pki.server_context()) as (port, captured):
        sink = WebhookSink(f"https://127.0.0.1:{port}/hooks/hogo", ca_file=pki.ca_file, secret="s3cret-key",
                           clock=FakeClock(NOW))
        sink.send(JA_SUBJECT, JA_BODY, kind="alert")

    (request,) = captured
    assert request.path == "/hooks/hogo"
    assert request.headers["content-type"].startswith("application/json")
    assert json.loads(request.body) == {
        "kind": "alert", "subject": JA_SUBJECT, "body": JA_BODY, "sent_at": "2026-04-01T09:30:15.123456Z",
    }
    expected = hmac.new(b"s3cret-key", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-hogo-signature"] == f"sha256={expected}"
    assert "s3cret-key" not in repr(sink)


def test_webhook_without_secret_sends_no_signature_and_checks_the_certificate(pki: Pki) -> None:
    with http_server(context=pki.server_context()) as (port, captured):
        WebhookSink(f"https://127.0.0.1:{port}/h", ca_file=pki.ca_file).send("c", NOTE, kind="checkpoint")
        with pytest.raises(DeliveryError, match="ConnectError"):
            WebhookSink(f"https://127.0.0.1:{port}/h").send("c", NOTE, kind="checkpoint")  # system store only
    assert len(captured) == 1
    assert "x-hogo-signature" not in captured[0].headers
    assert json.loads(captured[0].body)["body"] == NOTE


def test_webhook_non_2xx_is_an_error_without_credentials(pki: Pki) -> None:
    with http_server(context=pki.server_context(), status=500) as (port, captured):
        url = f"https://hookuser:hookpass@127.0.0.1:{port}/services/T000/B000/tok3n-in-path?token=query-tok3n"
        with pytest.raises(DeliveryError) as e:
            WebhookSink(url, ca_file=pki.ca_file, secret="s3cret-key").send("c", NOTE, kind="checkpoint")
    assert len(captured) == 1
    message = str(e.value)
    assert message == f"webhook https://127.0.0.1:{port}/…: HTTP 500"
    for secret in ("hookuser", "hookpass", "tok3n", "token=", "T000", "s3cret"):
        assert secret not in message


def test_webhook_network_error_is_redacted() -> None:
    port = free_port()
    url = f"http://u:pw-secret@127.0.0.1:{port}/path-tok3n?token=query-tok3n"
    with pytest.raises(DeliveryError) as e:
        WebhookSink(url, timeout_s=2).send("c", NOTE, kind="checkpoint")
    message = str(e.value)
    assert message.startswith(f"webhook http://127.0.0.1:{port}/…: ConnectError")
    for secret in ("pw-secret", "tok3n", "token="):
        assert secret not in message


def test_webhook_plain_http_only_to_loopback() -> None:
    with http_server(context=None) as (port, captured):
        WebhookSink(f"http://127.0.0.1:{port}/dev").send("c", NOTE, kind="checkpoint")
    assert len(captured) == 1
    with pytest.raises(ValueError, match="plain http is allowed only to a loopback host") as e:
        WebhookSink("http://user:pw-secret@alerts.example.jp/hook?token=abc")
    assert "pw-secret" not in str(e.value)
    assert "token" not in str(e.value)
    with pytest.raises(ValueError, match="https"):
        WebhookSink("ftp://alerts.example.jp/hook")


# --- SMTP --------------------------------------------------------------------------------------


class CollectingHandler:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@contextlib.contextmanager
def smtp_server(**kwargs: object) -> Iterator[tuple[int, CollectingHandler]]:
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def test_smtp_sends_japanese_subject_and_body() -> None:
    with smtp_server() as (port, handler):
        mailer = SmtpMailer("127.0.0.1", port, sender="hogo@example.jp",
                            recipients=["sec@example.jp", "dpo@example.jp"], starttls=False, clock=FakeClock(NOW))
        mailer.send(JA_SUBJECT, JA_BODY, kind="alert")

    ((mail_from, rcpt_tos, content),) = handler.envelopes
    assert mail_from == "hogo@example.jp"
    assert rcpt_tos == ["sec@example.jp", "dpo@example.jp"]
    assert content.isascii()  # Subject RFC 2047-encoded, body base64: no 8BITMIME needed
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg["Subject"] == JA_SUBJECT
    assert msg.get_content() == JA_BODY  # type: ignore[attr-defined]
    assert msg["To"] == "sec@example.jp, dpo@example.jp"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Hogo-Kind"] == "alert"
    assert msg["Date"].datetime == NOW.replace(microsecond=0)


def test_smtp_starttls_and_login(pki: Pki) -> None:
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server: object, session: object, envelope: object, mechanism: str,
                      auth_data: object) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"mail-pass", handled=False)  # False: the server answers 535

    with smtp_server(tls_context=pki.server_context(), require_starttls=True, authenticator=authenticator,
                     auth_require_tls=True, auth_exclude_mechanism=["LOGIN"]) as (port, handler):
        # (LOGIN excluded so that a wrong password is tried once: smtplib would retry it with LOGIN)
        SmtpMailer("127.0.0.1", port, sender="hogo@example.jp", recipients=["sec@example.jp"], starttls=True,
                   username="hogo", password="mail-pass", ca_file=pki.ca_file).send("c", NOTE, kind="checkpoint")
        with pytest.raises(DeliveryError) as e:
            SmtpMailer("127.0.0.1", port, sender="hogo@example.jp", recipients=["sec@example.jp"], starttls=True,
                       username="hogo", password="wrong-pass", ca_file=pki.ca_file).send("c", NOTE, kind="checkpoint")
    assert seen == [(b"hogo", b"mail-pass"), (b"hogo", b"wrong-pass")]
    assert len(handler.envelopes) == 1
    msg = email.message_from_bytes(handler.envelopes[0][2], policy=email.policy.default)
    assert msg.get_content() == NOTE  # type: ignore[attr-defined]
    assert "SMTPAuthenticationError" in str(e.value)
    assert "wrong-pass" not in str(e.value)


def test_smtp_never_downgrades_when_starttls_is_missing() -> None:
    with smtp_server() as (port, handler), pytest.raises(DeliveryError, match="SMTPNotSupportedError"):
        SmtpMailer("127.0.0.1", port, sender="hogo@example.jp", recipients=["sec@example.jp"],
                   starttls=True).send("c", NOTE, kind="checkpoint")
    assert handler.envelopes == []


def test_smtp_refused_connection_is_a_delivery_error() -> None:
    port = free_port()
    mailer = SmtpMailer("127.0.0.1", port, sender="hogo@example.jp", recipients=["sec@example.jp"], starttls=False,
                        timeout_s=2)
    with pytest.raises(DeliveryError) as e:
        mailer.send(JA_SUBJECT, JA_BODY, kind="alert")
    assert str(e.value).startswith(f"smtp 127.0.0.1:{port}: ConnectionRefusedError")


def test_smtp_refuses_credentials_in_clear_and_bad_addresses() -> None:
    with pytest.raises(ValueError, match="in clear"):
        SmtpMailer("mail.example.jp", 25, sender="hogo@example.jp", recipients=["a@example.jp"], starttls=False,
                   username="hogo", password="pw")
    with pytest.raises(ValueError, match="recipient"):
        SmtpMailer("mail.example.jp", 587, sender="hogo@example.jp", recipients=["a@example.jp\r\nBcc: x@evil"],
                   starttls=True)
    with pytest.raises(ValueError, match="at least one recipient"):
        SmtpMailer("mail.example.jp", 587, sender="hogo@example.jp", recipients=[], starttls=True)


# --- parse_sink --------------------------------------------------------------------------------


def test_parse_sink_forms(tmp_path: Path) -> None:
    file_sink = parse_sink(f"file:{tmp_path}/anchor.log")
    assert isinstance(file_sink, FileSink) and file_sink.path == tmp_path / "anchor.log"
    assert isinstance(parse_sink(f"file://{tmp_path}/anchor.log"), FileSink)

    udp = parse_sink("syslog:udp://logs.example.jp:514")
    assert isinstance(udp, SyslogSink) and (udp.transport, udp.host, udp.port, udp.facility) == (
        "udp", "logs.example.jp", 514, "authpriv")
    tcp = parse_sink("syslog:tcp://logs.example.jp?facility=local0")
    assert isinstance(tcp, SyslogSink) and (tcp.transport, tcp.port, tcp.facility) == ("tcp", 601, "local0")
    assert parse_sink("syslog:tcp://[::1]:601").name == "syslog tcp://[::1]:601"
    unix = parse_sink("syslog:unix:///dev/log")
    assert isinstance(unix, SyslogSink) and unix.path == "/dev/log"
    assert parse_sink("syslog:tls://logs.example.jp").name == "syslog tls://logs.example.jp:6514"

    hook = parse_sink("https://hooks.example.jp/services/T0/B0/secret", env={})
    assert isinstance(hook, WebhookSink) and hook.name == "webhook https://hooks.example.jp/…"
    assert isinstance(parse_sink("webhook:https://hooks.example.jp/h", env={}), WebhookSink)
    assert isinstance(parse_sink("webhook:http://127.0.0.1:8080/h", env={}), WebhookSink)

    mailer = parse_sink(
        "smtp://alerts%40example.jp@mail.example.jp:587?to=sec+hogo@example.jp,dpo@example.jp&from=hogo@example.jp"
        "&starttls=1",
        env={"HOGO_SMTP_PASSWORD": "from-env"},
    )
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.starttls) == ("mail.example.jp", 587, True)
    assert mailer.sender == "hogo@example.jp"
    assert mailer.recipients == ["sec+hogo@example.jp", "dpo@example.jp"]
    assert mailer._username == "alerts@example.jp" and mailer._password == "from-env"
    assert mailer.name == "smtp mail.example.jp:587"
    local = parse_sink("smtp://127.0.0.1?to=a@example.jp&from=hogo@example.jp&starttls=0", env={})
    assert isinstance(local, SmtpMailer) and (local.port, local.starttls, local._username) == (25, False, None)


def test_parse_sink_webhook_secret_and_ca_come_from_the_environment(pki: Pki) -> None:
    with http_server(context=pki.server_context()) as (port, captured):
        sink = parse_sink(f"webhook:https://127.0.0.1:{port}/h",
                          env={"HOGO_WEBHOOK_SECRET": "env-secret", "HOGO_WEBHOOK_CA_FILE": str(pki.ca_file)})
        sink.send("c", NOTE, kind="checkpoint")
    expected = hmac.new(b"env-secret", captured[0].body, hashlib.sha256).hexdigest()
    assert captured[0].headers["x-hogo-signature"] == f"sha256={expected}"


@pytest.mark.parametrize(("spec", "problem"), [
    ("", "unknown sink type"),
    ("ftp://files.example.jp/x", "unknown sink type 'ftp'"),
    ("file:relative/anchor.log", "path must be absolute"),
    ("file://host/anchor.log", "no host"),
    ("syslog:http://logs.example.jp", "transport must be udp, tcp, tls or unix"),
    ("syslog:udp://logs.example.jp:notaport", "bad port"),
    ("syslog:udp://logs.example.jp?facility=mars", "facility 'mars' unknown"),
    ("syslog:udp://logs.example.jp?level=1", "unknown option 'level'"),
    ("syslog:unix:dev/log", "unix:///absolute/path"),
    ("syslog:udp://logs.example.jp?ca=/etc/ca.pem", "tls:// only"),
    ("webhook:ftp://hooks.example.jp", "https://"),
    ("http://hooks.example.jp/h", "plain http is allowed only to a loopback host"),
    ("https:///no-host", "https://host"),
    ("smtp://mail.example.jp?from=hogo@example.jp", "missing to="),
    ("smtp://mail.example.jp?to=a@example.jp", "missing from="),
    ("smtp://mail.example.jp?to=a@example.jp&from=hogo@example.jp&starttls=maybe", "starttls must be 1 or 0"),
    ("smtp://mail.example.jp?to=a@example.jp&from=hogo@example.jp&cc=b@example.jp", "unknown option 'cc'"),
    ("smtp://mail.example.jp?to=a@example.jp&to=b@example.jp&from=hogo@example.jp", "given twice"),
    ("smtp://mail.example.jp:99999?to=a@example.jp&from=hogo@example.jp", "bad port"),
    ("smtp://mail.example.jp?to=not-an-address&from=hogo@example.jp", "recipient 'not-an-address'"),
    ("smtp://hogo@mail.example.jp?to=a@example.jp&from=hogo@example.jp", "HOGO_SMTP_PASSWORD is not set"),
    ("smtp://hogo:hunter22@mail.example.jp?to=a@example.jp&from=hogo@example.jp", "do not put the password"),
])
def test_parse_sink_rejects_bad_forms(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_sink(spec, env={})
    assert problem in str(e.value)
    assert "hunter22" not in str(e.value)


# --- deliver_all -------------------------------------------------------------------------------


def test_deliver_all_tries_every_sink_and_reports(tmp_path: Path) -> None:
    good = FileSink(tmp_path / "a.log")
    dead = SyslogSink(f"tcp://127.0.0.1:{free_port()}", timeout_s=2)
    also_good = FileSink(tmp_path / "b.log")

    class Broken:
        name = "broken"

        def send(self, subject: str, body: str, *, kind: str) -> None:
            raise RuntimeError("password=hunter22")

    results = deliver_all([good, dead, Broken(), also_good], "checkpoint 4711", NOTE, kind="checkpoint")
    assert [name for name, _ in results] == [good.name, dead.name, "broken", also_good.name]
    assert results[0][1] is None and results[3][1] is None
    assert results[1][1] is not None and "ConnectionRefusedError" in results[1][1]
    assert results[2][1] == "broken: unexpected RuntimeError"
    assert good.read_checkpoints() == also_good.read_checkpoints() == [NOTE]
    with pytest.raises(ValueError, match="kind"):
        deliver_all([good], "s", "b", kind="notice")


def test_redact_url() -> None:
    assert delivery.redact_url("https://u:p@h.example.jp:8443/a/b?token=x#f") == "https://h.example.jp:8443/…"
    assert delivery.redact_url("https://h.example.jp") == "https://h.example.jp"
    assert delivery.redact_url("https://[::1]:9/") == "https://[::1]:9"
