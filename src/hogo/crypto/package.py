"""The take-out package (持出しパッケージ): a single encrypted, signed file that carries records out of hogo
(SEC-47, SEC-48(2), SEC-49, MN-5c, MN-6d). Pure format and cryptography: no database, no server.

Layout (one file, so it can be carried on removable media)::

    "HOGOPKG1"                                   8 bytes, the magic
    u32 n, header (n bytes of JSON)              format, package (tracking) ID, chunk size, recipient block
    u32 n, chunk (n bytes)  …                    AES-256-GCM ciphertext + 16-byte tag of each plaintext chunk
    u32 0                                        end of the chunks
    ── the body ends here; its SHA-256 is the manifest's ``ciphertext_sha256`` ──
    u32 n, manifest (n bytes of canonical JSON)  marks, purpose, file, fields, counts, recipient, hashes …
    u32 n, signature (n bytes)                   a C2SP signed note by hogo's log key over
                                                 "hogo-package/1\\n<sha256 hex of the manifest>\\n"
    (nothing after it)

Content encryption: one random 256-bit content key per package; chunk ``i`` is encrypted with the nonce
``0x00000000 ‖ u64 i`` (unique: the key is used for this package only) and the associated data
``hogo-package/1|<package id>|u64 i|final flag``, so a chunk dropped, reordered, moved from another package,
cut off at the end or appended after the final one fails to open.

The content key reaches the recipient in one of two ways:

* ``p256``: ECDH on P-256 (CRYPTREC e-Government Recommended Ciphers List) between a fresh ephemeral key and the
  recipient's public key; the key-wrapping key is HKDF-SHA-256 of the shared secret (info binds both public keys
  and the package ID); the content key is wrapped with AES-256-GCM.
* ``passphrase``: a passphrase handed to the recipient through another channel (never on the command line);
  the key-wrapping key is Argon2id of it (RFC 9106, t=3, m=64 MiB, p=4, 16-byte salt — the KDF hogo already uses
  for its sealed key file: memory-hard, so a stolen package resists guessing far better than PBKDF2).

The manifest is signed with hogo's log signing key (Ed25519, the key that signs the log checkpoints); a verifier
pins that key, so a package re-signed by anyone else is refused. Verification checks the signature, the manifest,
and the SHA-256 of every byte of the body before anything is decrypted; opening then checks each chunk's tag,
the final flag and the SHA-256 of the plaintext again, and writes the output only when all of it holds.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import struct
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ec import (
    ECDH,
    SECP256R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
    generate_private_key,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from hogo.crypto import checkpoint as notes
from hogo.crypto import registry

FORMAT = "hogo-package/1"
MAGIC = b"HOGOPKG1"
PUBLIC_KEY_PREFIX = "hogo-p256"
CHUNK_SIZE = 1 << 20  # 1 MiB of plaintext per chunk
MAX_CHUNK = 16 << 20
MAX_SECTION = 16 << 20  # header, manifest, signature
PASSPHRASE_MIN_LENGTH = 12
_KEY_BYTES = registry.AES_256_GCM.key_bytes
_TAG = 16
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_KDF = {"t": 3, "m": 64 * 1024, "p": 4}
_KDF_LIMITS = {"t": (1, 64), "m": (8, 4 * 1024 * 1024), "p": (1, 64)}


class PackageError(ValueError):
    """A package that cannot be trusted or opened; ``what`` names the part that failed (signature, manifest,
    header, chunk N, truncated, recipient …) and the message says how."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"{what}: {message}")
        self.what = what


class LogSigner(Protocol):
    """What signs a manifest: hogo's log key (services/audit_tree.LogKey)."""

    @property
    def name(self) -> str: ...

    @property
    def public(self) -> Any: ...

    def sign(self, data: bytes) -> bytes: ...


# ------------------------------------------------------------------------------------------ recipient keys


def _point(public: EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def recipient_key_id(public: EllipticCurvePublicKey) -> str:
    return hashlib.sha256(b"hogo-p256\n" + _point(public)).hexdigest()[:16]


def public_key_text(public: EllipticCurvePublicKey) -> str:
    """``hogo-p256+<key ID>+<base64 compressed point>``: one line, to paste into a take-out request."""
    return f"{PUBLIC_KEY_PREFIX}+{recipient_key_id(public)}+{base64.b64encode(_point(public)).decode('ascii')}"


def parse_public_key(text: str) -> EllipticCurvePublicKey:
    """A recipient public key from its text; the key ID in it must match the key."""
    parts = text.strip().split("+", 2)  # the base64 may contain '+'
    if len(parts) != 3 or parts[0] != PUBLIC_KEY_PREFIX:
        raise PackageError("recipient key", f"not a recipient public key ({PUBLIC_KEY_PREFIX}+<key ID>+<key>)")
    try:
        raw = base64.b64decode(parts[2], validate=True)
        public = EllipticCurvePublicKey.from_encoded_point(SECP256R1(), raw)
    except (ValueError, TypeError):
        raise PackageError("recipient key", "the key is not a valid P-256 point") from None
    if recipient_key_id(public) != parts[1]:
        raise PackageError("recipient key", "the key ID does not match the key (mistyped or altered)")
    return public


def generate_identity() -> tuple[bytes, str]:
    """A new recipient key pair: (private key PEM, PKCS#8 — keep it 0600; public key text)."""
    private = generate_private_key(SECP256R1())
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return pem, public_key_text(private.public_key())


def write_identity(path: Path) -> str:
    """Write a new private key to ``path`` (mode 0600, never overwriting); return the public key text."""
    pem, text = generate_identity()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return text


def load_identity(data: bytes) -> EllipticCurvePrivateKey:
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise PackageError("identity", "the identity file is not an unencrypted PEM private key") from None
    if not isinstance(key, EllipticCurvePrivateKey) or not isinstance(key.curve, SECP256R1):
        raise PackageError("identity", "the identity is not a P-256 key (make one with hogo package keygen)")
    return key


@dataclasses.dataclass(frozen=True)
class Recipient:
    """Who can open a package: a P-256 public key, or a passphrase given through another channel."""

    public_key: EllipticCurvePublicKey | None = None
    passphrase: str | None = None

    def __post_init__(self) -> None:
        if (self.public_key is None) == (self.passphrase is None):
            raise ValueError("a recipient is either a public key or a passphrase")
        if self.passphrase is not None:
            check_passphrase(self.passphrase)

    @classmethod
    def of(cls, value: str, *, passphrase: bool = False) -> Recipient:
        return cls(passphrase=value) if passphrase else cls(public_key=parse_public_key(value))

    @property
    def description(self) -> str:
        if self.public_key is not None:
            return f"key {recipient_key_id(self.public_key)}"
        return "passphrase"


def check_passphrase(passphrase: str) -> str:
    if len(passphrase) < PASSPHRASE_MIN_LENGTH:
        raise PackageError("passphrase", f"a package passphrase must be at least {PASSPHRASE_MIN_LENGTH} characters")
    return passphrase


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise PackageError("header", f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise PackageError("header", f"{what} is not base64") from None


def _hkdf_p256(shared: bytes, ephemeral: bytes, recipient: bytes, package_id: str) -> bytes:
    info = b"hogo-package/1 p256 key wrap|" + ephemeral + b"|" + recipient + b"|" + package_id.encode()
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(shared)


def _argon2(passphrase: str, salt: bytes, t: int, m: int, p: int) -> bytes:
    return hash_secret_raw(unicodedata.normalize("NFC", passphrase).encode("utf-8"), salt, time_cost=t,
                           memory_cost=m, parallelism=p, hash_len=_KEY_BYTES, type=Type.ID, version=ARGON2_VERSION)


def _wrap_aad(package_id: str) -> bytes:
    return f"{FORMAT}|content-key|{package_id}".encode()


def _wrap(recipient: Recipient, content_key: bytes, package_id: str) -> dict[str, Any]:
    nonce = os.urandom(12)
    if recipient.public_key is not None:
        eph = generate_private_key(SECP256R1())
        eph_point = _point(eph.public_key())
        shared = eph.exchange(ECDH(), recipient.public_key)
        kek = _hkdf_p256(shared, eph_point, _point(recipient.public_key), package_id)
        return {"kind": "p256", "key_id": recipient_key_id(recipient.public_key), "ephemeral": _b64(eph_point),
                "nonce": _b64(nonce), "wrapped": _b64(AESGCM(kek).encrypt(nonce, content_key, _wrap_aad(package_id)))}
    assert recipient.passphrase is not None
    salt = os.urandom(16)
    kek = _argon2(recipient.passphrase, salt, _KDF["t"], _KDF["m"], _KDF["p"])
    return {"kind": "passphrase", "kdf": "argon2id", "v": ARGON2_VERSION, **_KDF, "salt": _b64(salt),
            "nonce": _b64(nonce), "wrapped": _b64(AESGCM(kek).encrypt(nonce, content_key, _wrap_aad(package_id)))}


def _unwrap(block: Mapping[str, Any], package_id: str, *, identity: EllipticCurvePrivateKey | None,
            passphrase: str | None) -> bytes:
    kind = block.get("kind")
    nonce, wrapped = _unb64(block.get("nonce"), "the wrap nonce"), _unb64(block.get("wrapped"), "the wrapped key")
    if kind == "p256":
        if identity is None:
            raise PackageError("recipient", "this package is for a recipient key: open it with --identity")
        mine = recipient_key_id(identity.public_key())
        if block.get("key_id") != mine:
            raise PackageError("recipient", f"this package is for recipient key {block.get('key_id')}, "
                                            f"not for the identity given (key {mine})")
        eph_point = _unb64(block.get("ephemeral"), "the ephemeral key")
        try:
            eph = EllipticCurvePublicKey.from_encoded_point(SECP256R1(), eph_point)
        except ValueError:
            raise PackageError("header", "the ephemeral key is not a valid P-256 point") from None
        kek = _hkdf_p256(identity.exchange(ECDH(), eph), eph_point, _point(identity.public_key()), package_id)
        failure = "the content key does not open with this identity"
    elif kind == "passphrase":
        if passphrase is None:
            raise PackageError("recipient", "this package is for a passphrase: open it with --passphrase-file")
        params = {}
        for name, (lo, hi) in _KDF_LIMITS.items():
            v = block.get(name)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise PackageError("header", f"the passphrase KDF parameter {name} is missing or out of range")
            params[name] = v
        if block.get("kdf") != "argon2id" or block.get("v") != ARGON2_VERSION:
            raise PackageError("header", "unknown passphrase KDF (expected Argon2id)")
        kek = _argon2(passphrase, _unb64(block.get("salt"), "the salt"), params["t"], params["m"], params["p"])
        failure = "the passphrase is wrong"
    else:
        raise PackageError("header", f"unknown recipient kind {kind!r}")
    try:
        key = AESGCM(kek).decrypt(nonce, wrapped, _wrap_aad(package_id))
    except InvalidTag:
        raise PackageError("recipient", failure) from None
    if len(key) != _KEY_BYTES:
        raise PackageError("header", "the content key has the wrong length")
    return key


# ------------------------------------------------------------------------------------------------- writing


def _nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + _U64.pack(index)


def _chunk_aad(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + _U64.pack(index) + (b"\x01" if final else b"\x00")


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signed_text(manifest_bytes: bytes) -> str:
    return f"{FORMAT}\n{hashlib.sha256(manifest_bytes).hexdigest()}\n"


@dataclasses.dataclass(frozen=True)
class Written:
    package_id: str
    manifest: dict[str, Any]
    sha256: str  # of the whole package file
    size: int


class PackageWriter:
    """Streams plaintext (the CSV) into a package: ``write`` as often as needed, then ``finish``.

    Memory stays at about one chunk; every byte written is hashed on the way (the body for the manifest, the
    whole file for the take-out record)."""

    def __init__(self, out: BinaryIO, *, package_id: str, recipient: Recipient, chunk_size: int = CHUNK_SIZE) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK - _TAG:
            raise ValueError("chunk size out of range")
        self._out = out
        self.package_id = package_id
        self._chunk_size = chunk_size
        key = os.urandom(_KEY_BYTES)
        self._aead = AESGCM(key)
        self._aad_prefix = f"{FORMAT}|{package_id}|".encode()
        header = _canonical({"format": FORMAT, "package_id": package_id, "chunk_size": chunk_size,
                             "recipient": _wrap(recipient, key, package_id)})
        del key
        self._body = hashlib.sha256()
        self._file = hashlib.sha256()
        self._plain = hashlib.sha256()
        self._plain_bytes = 0
        self._size = 0
        self._index = 0
        self._buf = bytearray()
        self._done = False
        self._emit(MAGIC + _U32.pack(len(header)) + header, body=True)

    def _emit(self, data: bytes, *, body: bool) -> None:
        self._out.write(data)
        if body:
            self._body.update(data)
        self._file.update(data)
        self._size += len(data)

    def _seal(self, plain: bytes | bytearray | memoryview, final: bool) -> None:
        ct = self._aead.encrypt(_nonce(self._index), bytes(plain), _chunk_aad(self._aad_prefix, self._index, final))
        self._emit(_U32.pack(len(ct)) + ct, body=True)
        self._index += 1

    def write(self, data: bytes) -> None:
        if self._done:
            raise ValueError("the package is finished")
        self._plain.update(data)
        self._plain_bytes += len(data)
        buf = self._buf
        buf += data
        size = self._chunk_size
        if len(buf) > size:  # only a chunk known not to be the last is sealed now
            cut = (len(buf) - 1) // size * size
            view = memoryview(buf)
            for start in range(0, cut, size):
                self._seal(view[start:start + size], False)
            view.release()
            del buf[:cut]

    def finish(self, manifest: Mapping[str, Any], signer: LogSigner) -> Written:
        """Seal the last chunk, then write the manifest (``manifest`` plus the format, package ID, chunk count
        and hashes) and its signature."""
        if self._done:
            raise ValueError("the package is finished")
        self._seal(self._buf, True)
        self._buf = bytearray()
        self._emit(_U32.pack(0), body=True)
        full = dict(manifest)
        full.update({"format": FORMAT, "package_id": self.package_id, "chunks": self._index,
                     "chunk_size": self._chunk_size, "ciphertext_sha256": self._body.hexdigest(),
                     "plaintext_sha256": self._plain.hexdigest(), "plaintext_bytes": self._plain_bytes})
        data = _canonical(full)
        note = notes.sign_note(signed_text(data), signer.name, signer.sign, signer.public).encode("utf-8")
        self._emit(_U32.pack(len(data)) + data + _U32.pack(len(note)) + note, body=False)
        self._done = True
        return Written(self.package_id, full, self._file.hexdigest(), self._size)


# ----------------------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True)
class Verified:
    """A package whose signature, manifest and every byte of the body were checked."""

    path: Path
    manifest: dict[str, Any]
    header: dict[str, Any]
    key_name: str  # the key that signed it
    size: int

    @property
    def open_once(self) -> bool:
        return bool(self.manifest.get("open_once"))


class _Reader:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.body = hashlib.sha256()

    def exact(self, n: int, what: str, *, body: bool = True) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise PackageError("truncated", f"the file ends inside {what} (cut off or incomplete copy)")
        if body:
            self.body.update(data)
        return data

    def u32(self, what: str, *, body: bool = True) -> int:
        return int(_U32.unpack(self.exact(4, what, body=body))[0])


def _read_header(r: _Reader) -> dict[str, Any]:
    if r.exact(len(MAGIC), "the magic") != MAGIC:
        raise PackageError("header", f"not a hogo package ({FORMAT})")
    n = r.u32("the header length")
    if not 0 < n <= MAX_SECTION:
        raise PackageError("header", "the header length is out of range")
    raw = r.exact(n, "the header")
    try:
        header = json.loads(raw)
    except ValueError:
        raise PackageError("header", "the header is not valid JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise PackageError("header", f"not a {FORMAT} package")
    if not isinstance(header.get("package_id"), str) or not isinstance(header.get("recipient"), dict):
        raise PackageError("header", "the header lacks the package ID or the recipient")
    cs = header.get("chunk_size")
    if not isinstance(cs, int) or not 1 <= cs <= MAX_CHUNK - _TAG:
        raise PackageError("header", "the chunk size is out of range")
    return header


def _chunks(r: _Reader, header: Mapping[str, Any]) -> Any:
    """Each chunk's ciphertext in order, up to the end marker."""
    limit = int(header["chunk_size"]) + _TAG
    index = 0
    while True:
        n = r.u32(f"the length of chunk {index}")
        if n == 0:
            return
        if not _TAG <= n <= limit:
            raise PackageError(f"chunk {index}", "its length is out of range (damaged framing)")
        yield r.exact(n, f"chunk {index}")
        index += 1


def _pinned(public_key_text: str) -> tuple[str, Any]:
    try:
        return notes.parse_public_key_text(public_key_text.strip())
    except notes.CheckpointError as exc:
        raise PackageError("signature", f"the hogo verifier key given is not valid ({exc})") from None


def _finish_verify(r: _Reader, path: Path, header: dict[str, Any], chunks: int, public_key_text: str) -> Verified:
    key_name, public = _pinned(public_key_text)
    body = r.body.hexdigest()
    n = r.u32("the manifest length", body=False)
    if not 0 < n <= MAX_SECTION:
        raise PackageError("manifest", "the manifest length is out of range")
    manifest_bytes = r.exact(n, "the manifest", body=False)
    n = r.u32("the signature length", body=False)
    if not 0 < n <= MAX_SECTION:
        raise PackageError("signature", "the signature length is out of range")
    note = r.exact(n, "the signature", body=False)
    if r.fh.read(1):
        raise PackageError("appended", "there are bytes after the signature (data appended to the package)")
    try:
        text = notes.open_note(note, key_name, public)
    except notes.CheckpointError as exc:
        raise PackageError("signature", f"not signed by the hogo key {key_name} — altered or re-signed ({exc})"
                           ) from None
    if text != signed_text(manifest_bytes):
        raise PackageError("manifest", "the manifest is not the one hogo signed (edited)")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise PackageError("manifest", "the manifest is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PackageError("manifest", f"not a {FORMAT} manifest")
    if manifest.get("package_id") != header["package_id"]:
        raise PackageError("header", "the header belongs to another package (package IDs differ)")
    if manifest.get("chunk_size") != header["chunk_size"] or manifest.get("chunks") != chunks:
        raise PackageError("chunks", f"the package has {chunks} chunks, the manifest says {manifest.get('chunks')}"
                                     " (chunks dropped or added)")
    if manifest.get("ciphertext_sha256") != body:
        raise PackageError("ciphertext", "the encrypted content differs from what hogo signed (altered chunk)")
    return Verified(path, manifest, header, key_name, path.stat().st_size)


def verify_package(path: Path, public_key_text: str) -> Verified:
    """Check a package without opening it: the signature by the pinned hogo key (``public_key_text``, the
    ``hogo.log/…`` verifier key), the manifest, the framing and the SHA-256 of every chunk. PackageError names
    what failed."""
    path = Path(path)
    _pinned(public_key_text)
    with path.open("rb") as fh:
        r = _Reader(fh)
        header = _read_header(r)
        chunks = sum(1 for _ in _chunks(r, header))
        return _finish_verify(r, path, header, chunks, public_key_text)


@dataclasses.dataclass(frozen=True)
class Opened:
    manifest: dict[str, Any]
    data_path: Path
    marks_path: Path
    disposed: bool  # the package file was deleted (destroy after reading)


def _safe_name(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
    return keep.strip("._")[:80] or "package"


def open_package(path: Path, *, public_key_text: str, out_dir: Path,
                 identity: EllipticCurvePrivateKey | None = None, passphrase: str | None = None,
                 dispose: bool = True, on_verified: Callable[[Verified], None] | None = None) -> Opened:
    """Verify the package, then decrypt it into ``out_dir``: ``<file>-<package id>.csv`` and
    ``<…>.marks.json`` (the marks, 明示). Every chunk's tag, the order, the final chunk and the plaintext's
    SHA-256 are checked; the CSV appears only when all of them hold (nothing half-written). When the marks say
    destroy after reading (``open_once``) and ``dispose``, the package file is deleted after a successful open —
    an offline recipient is trusted to do this; hogo cannot enforce it outside."""
    path = Path(path)
    verified = verify_package(path, public_key_text)
    if on_verified is not None:
        on_verified(verified)
    header, manifest = verified.header, verified.manifest
    key = _unwrap(header["recipient"], header["package_id"], identity=identity, passphrase=passphrase)
    aead = AESGCM(key)
    prefix = f"{FORMAT}|{header['package_id']}|".encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe_name(str(manifest.get('file', 'package')))}-{_safe_name(header['package_id'])}"
    data_path, marks_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.marks.json"
    for p in (data_path, marks_path):
        if p.exists():
            raise PackageError("output", f"{p} exists already; refusing to overwrite it")
    tmp = out_dir / f".{stem}.{os.urandom(4).hex()}.part"
    plain = hashlib.sha256()
    wrote_marks = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out, path.open("rb") as fh:
            r = _Reader(fh)
            if _read_header(r) != header:
                raise PackageError("header", "the package changed while it was being opened")
            pending: tuple[int, bytes] | None = None
            for index, ct in enumerate(_chunks(r, header)):
                if pending is not None:
                    piece = _decrypt(aead, prefix, *pending, final=False)
                    plain.update(piece)
                    out.write(piece)
                pending = (index, ct)
            if pending is None:
                raise PackageError("chunks", "the package has no chunks")
            last = _decrypt(aead, prefix, *pending, final=True)
            plain.update(last)
            out.write(last)
            if r.body.hexdigest() != manifest.get("ciphertext_sha256"):
                raise PackageError("ciphertext", "the package changed while it was being opened")
        if plain.hexdigest() != manifest.get("plaintext_sha256"):
            raise PackageError("plaintext", "the decrypted content differs from what hogo signed")
        marks = {"package_id": header["package_id"], "marks": manifest.get("marks"),
                 "label": manifest.get("marks_label"), "label_ja": manifest.get("marks_label_ja"),
                 "open_once": verified.open_once, "file": manifest.get("file"), "purpose": manifest.get("purpose"),
                 "due": manifest.get("due"), "signed_by": verified.key_name}
        fd = os.open(marks_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        wrote_marks = True
        with os.fdopen(fd, "w", encoding="utf-8") as mf:
            json.dump(marks, mf, ensure_ascii=False, indent=1, sort_keys=True)
        try:
            os.link(tmp, data_path)  # never over a file that appeared meanwhile
        except FileExistsError:
            raise PackageError("output", f"{data_path} exists already; refusing to overwrite it") from None
        except OSError:  # no hard links on this file system (e.g. FAT media)
            os.replace(tmp, data_path)
    except BaseException:
        if wrote_marks and not data_path.exists():
            marks_path.unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    disposed = False
    if dispose and verified.open_once:
        path.unlink()
        disposed = True
    return Opened(manifest, data_path, marks_path, disposed)


def _decrypt(aead: AESGCM, prefix: bytes, index: int, ct: bytes, *, final: bool) -> bytes:
    try:
        return aead.decrypt(_nonce(index), ct, _chunk_aad(prefix, index, final))
    except InvalidTag:
        if final:
            raise PackageError(f"chunk {index}", "the last chunk is not marked final (truncated) or was altered"
                               ) from None
        raise PackageError(f"chunk {index}", "fails authentication (altered, reordered or from another package)"
                           ) from None


__all__ = ["CHUNK_SIZE", "FORMAT", "Opened", "PackageError", "PackageWriter", "Recipient", "Verified", "Written",
           "check_passphrase", "generate_identity", "load_identity", "open_package", "parse_public_key",
           "public_key_text", "recipient_key_id", "verify_package", "write_identity"]
