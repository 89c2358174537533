"""The take-out package format (SEC-47, SEC-48(2), SEC-49, MN-5c, MN-6d): encrypted in authenticated chunks, the
content key wrapped for one recipient, the manifest signed by hogo — and every kind of tampering refused with a
reason naming what failed, before anything is decrypted."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hogo.crypto import package as pkg
from hogo.crypto.checkpoint import key_id
from hogo.services.audit_tree import LogKey

PASS = "correct horse battery staple"


def _log_key(seed: int = 1) -> LogKey:
    private = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    public = private.public_key()
    name = f"hogo.log/test{seed}"
    key_id(name, public)
    return LogKey(private, public, name)


KEY = _log_key(1)
OTHER = _log_key(2)
DATA = ("record_id,name,city\n" + "".join(f"r{i},名前{i},東京\n" for i in range(3000))).encode()


def _build(tmp_path: Path, recipient: pkg.Recipient, data: bytes = DATA, *, chunk_size: int = 4096,
           manifest: dict | None = None, key: LogKey = KEY, name: str = "p.hogopkg") -> Path:
    path = tmp_path / name
    with path.open("wb") as out:
        w = pkg.PackageWriter(out, package_id="PKG-1", recipient=recipient, chunk_size=chunk_size)
        # written in uneven pieces, as a CSV writer would
        for i in range(0, len(data), 1000):
            w.write(data[i:i + 1000])
        written = w.finish(manifest or {"file": "payroll", "marks": {"label": "C2-I1-A1"}, "open_once": False}, key)
    assert written.size == path.stat().st_size
    assert written.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    return path


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, str]:
    path = tmp_path_factory.mktemp("id") / "me.key"
    public = pkg.write_identity(path)
    assert path.stat().st_mode & 0o777 == 0o600
    return pkg.load_identity(path.read_bytes()), public


def test_round_trip_with_a_recipient_key_SEC_49_MN_5c(tmp_path, identity):
    """SEC-49, MN-5c: a package opens with the recipient's private key to exactly the CSV put in, with its marks."""
    private, public = identity
    path = _build(tmp_path, pkg.Recipient.of(public))
    assert DATA[:100] not in path.read_bytes()  # encrypted
    v = pkg.verify_package(path, KEY.verifier_key)
    assert v.manifest["chunks"] == -(-len(DATA) // 4096) and v.manifest["plaintext_sha256"] == hashlib.sha256(
        DATA).hexdigest()
    opened = pkg.open_package(path, public_key_text=KEY.verifier_key, out_dir=tmp_path / "out", identity=private)
    assert opened.data_path.read_bytes() == DATA
    assert json.loads(opened.marks_path.read_text())["marks"] == {"label": "C2-I1-A1"}
    assert path.exists() and not opened.disposed


def test_round_trip_with_a_passphrase_and_open_once_disposes_SEC_49(tmp_path):
    """SEC-49: a passphrase recipient (Argon2id); destroy-after-reading deletes the package once opened."""
    path = _build(tmp_path, pkg.Recipient(passphrase=PASS), manifest={"file": "f", "open_once": True})
    opened = pkg.open_package(path, public_key_text=KEY.verifier_key, out_dir=tmp_path / "o", passphrase=PASS)
    assert opened.data_path.read_bytes() == DATA and opened.disposed and not path.exists()


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 8192])
def test_chunk_boundaries_round_trip(tmp_path, identity, size):
    private, public = identity
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    path = _build(tmp_path, pkg.Recipient.of(public), data)
    assert pkg.open_package(path, public_key_text=KEY.verifier_key, out_dir=tmp_path / "o",
                            identity=private).data_path.read_bytes() == data


def _sections(raw: bytes) -> tuple[int, list[tuple[int, int]], int]:
    """(end of header, [(start, end) of each chunk record], offset of the end marker)."""
    pos = len(pkg.MAGIC)
    (n,) = struct.unpack_from(">I", raw, pos)
    pos += 4 + n
    header_end = pos
    chunks = []
    while True:
        (n,) = struct.unpack_from(">I", raw, pos)
        if n == 0:
            return header_end, chunks, pos
        chunks.append((pos, pos + 4 + n))
        pos += 4 + n


def _refused(path: Path, what: str, **kw: object) -> pkg.PackageError:
    with pytest.raises(pkg.PackageError) as exc:
        pkg.verify_package(path, KEY.verifier_key)
    assert exc.value.what == what, str(exc.value)
    return exc.value


def test_flipped_byte_in_a_chunk_is_refused_SEC_47(tmp_path, identity):
    path = _build(tmp_path, pkg.Recipient.of(identity[1]))
    raw = bytearray(path.read_bytes())
    _, chunks, _ = _sections(bytes(raw))
    raw[chunks[1][0] + 20] ^= 0x01
    path.write_bytes(bytes(raw))
    assert "altered chunk" in str(_refused(path, "ciphertext"))


def test_truncated_file_is_refused(tmp_path, identity):
    path = _build(tmp_path, pkg.Recipient.of(identity[1]))
    raw = path.read_bytes()
    for cut in (len(raw) - 5, len(raw) // 2, 20):
        path.write_bytes(raw[:cut])
        _refused(path, "truncated")


def test_dropped_and_reordered_chunks_are_refused(tmp_path, identity):
    path = _build(tmp_path, pkg.Recipient.of(identity[1]))
    raw = path.read_bytes()
    _, chunks, _ = _sections(raw)
    (a0, a1), (b0, b1) = chunks[1], chunks[2]
    path.write_bytes(raw[:a0] + raw[a1:])  # chunk 1 dropped
    assert "dropped" in str(_refused(path, "chunks"))
    path.write_bytes(raw[:a0] + raw[b0:b1] + raw[a0:a1] + raw[b1:])  # 1 and 2 swapped
    _refused(path, "ciphertext")


def test_appended_data_is_refused(tmp_path, identity):
    path = _build(tmp_path, pkg.Recipient.of(identity[1]))
    path.write_bytes(path.read_bytes() + b"x")
    _refused(path, "appended")


def _manifest_span(raw: bytes) -> tuple[int, int]:
    _, _, end = _sections(raw)
    start = end + 4
    (n,) = struct.unpack_from(">I", raw, start)
    return start + 4, start + 4 + n


def test_edited_manifest_is_refused_SEC_46(tmp_path, identity):
    """SEC-46(1): the marks in the manifest cannot be lowered — an edited manifest is not the signed one."""
    path = _build(tmp_path, pkg.Recipient.of(identity[1]))
    raw = path.read_bytes()
    a, b = _manifest_span(raw)
    edited = raw[a:b].replace(b"C2-I1-A1", b"C1-I1-A1")
    assert edited != raw[a:b]
    path.write_bytes(raw[:a] + edited + raw[b:])
    assert "edited" in str(_refused(path, "manifest"))


def test_re_signed_by_another_key_is_refused_SEC_47(tmp_path, identity):
    """A package built (or re-signed) with another key than the pinned hogo key is refused."""
    path = _build(tmp_path, pkg.Recipient.of(identity[1]), key=OTHER)
    assert "re-signed" in str(_refused(path, "signature"))
    pkg.verify_package(path, OTHER.verifier_key)  # it is a well-formed package, only not hogo's


def test_wrong_identity_or_passphrase_is_refused(tmp_path, identity):
    path = _build(tmp_path, pkg.Recipient.of(identity[1]))
    other_pem, _ = pkg.generate_identity()
    with pytest.raises(pkg.PackageError, match="not for the identity given") as exc:
        pkg.open_package(path, public_key_text=KEY.verifier_key, out_dir=tmp_path / "o",
                         identity=pkg.load_identity(other_pem))
    assert exc.value.what == "recipient"
    with pytest.raises(pkg.PackageError, match="--identity"):
        pkg.open_package(path, public_key_text=KEY.verifier_key, out_dir=tmp_path / "o", passphrase=PASS)
    path2 = _build(tmp_path, pkg.Recipient(passphrase=PASS), name="q.hogopkg")
    with pytest.raises(pkg.PackageError, match="passphrase is wrong"):
        pkg.open_package(path2, public_key_text=KEY.verifier_key, out_dir=tmp_path / "o",
                         passphrase="another passphrase!")
    assert not list((tmp_path / "o").glob("*.csv")) and not list((tmp_path / "o").glob(".*part"))


def test_a_chunk_from_a_tampered_but_re_hashed_package_fails_its_tag(tmp_path, identity):
    """Even if the attacker could fix the hashes, chunk authentication catches a reordered chunk on open."""
    private, public = identity
    path = _build(tmp_path, pkg.Recipient.of(public))
    raw = path.read_bytes()
    _, chunks, _ = _sections(raw)
    (a0, a1), (b0, b1) = chunks[0], chunks[1]
    swapped = raw[:a0] + raw[b0:b1] + raw[a0:a1] + raw[b1:]
    v = pkg.verify_package(path, KEY.verifier_key)
    aead_prefix = f"{pkg.FORMAT}|PKG-1|".encode()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = pkg._unwrap(v.header["recipient"], "PKG-1", identity=private, passphrase=None)
    with pytest.raises(pkg.PackageError, match="chunk 0"):
        pkg._decrypt(AESGCM(key), aead_prefix, 0, swapped[a0 + 4:a0 + 4 + (b1 - b0 - 4)], final=False)


def test_passphrase_too_short_and_bad_public_key_are_refused():
    with pytest.raises(pkg.PackageError, match="at least 12"):
        pkg.Recipient(passphrase="short")
    _, public = pkg.generate_identity()
    with pytest.raises(pkg.PackageError, match="key ID"):
        pkg.parse_public_key(public.replace(public.split("+")[1], "0" * 16))
    with pytest.raises(pkg.PackageError):
        pkg.parse_public_key("ssh-ed25519 AAAA")


_SMALL = b"a,b\n1,2\n3,4\n" * 50


@pytest.fixture(scope="module")
def small_package(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    _, public = pkg.generate_identity()
    buf = io.BytesIO()
    w = pkg.PackageWriter(buf, package_id="P", recipient=pkg.Recipient.of(public), chunk_size=128)
    w.write(_SMALL)
    w.finish({"file": "x"}, KEY)
    return buf.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_is_refused_SEC_47(tmp_path, small_package, data):
    """SEC-47: whichever byte of the package changes, to whatever value, verification refuses it."""
    pos = data.draw(st.integers(0, len(small_package) - 1))
    delta = data.draw(st.integers(1, 255))
    raw = bytearray(small_package)
    raw[pos] ^= delta
    path = tmp_path / f"p{pos}-{delta}.hogopkg"
    path.write_bytes(bytes(raw))
    with pytest.raises(pkg.PackageError):
        pkg.verify_package(path, KEY.verifier_key)
