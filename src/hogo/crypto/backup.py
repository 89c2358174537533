"""Encryption of backups (ANON-19, SEC-51, SEC-151(3); CRYPTREC: AES-256-GCM, SHA-256, Argon2id).

A database backup is encrypted as a stream of chunks under a random 256-bit content key of its own,
with AES-256-GCM. Each chunk's associated data binds it to its backup, its index and whether it is
the last one, so a chunk moved to another backup or another place, a reordered chunk, a dropped
chunk and a stream cut short all fail to open (a stream whose final chunk is missing is truncated,
however many chunks came before). The nonce is the chunk index: every content key encrypts exactly
one stream, so a (key, nonce) pair is never reused. The file ``data.enc`` is the chunks one after
the other, each as a 4-byte big-endian length and nonce ‖ ciphertext ‖ tag.

The content key is wrapped by the instance KEK through the key provider (key file or PKCS#11), so
only the instance that made a backup (or the holder of its key backup) can open it.

Key material (the keys directory) is backed up separately (SEC-151(3)), sealed under a key derived
from a passphrase given through a separate channel, with Argon2id (RFC 9106; its parameters and
salt bound to the ciphertext as associated data).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hogo.crypto import registry

CHUNK_BYTES = 4 * 1024 * 1024
KEY_BYTES = registry.AES_256_GCM.key_bytes
_LEN = struct.Struct(">I")
_INDEX = struct.Struct(">Q")
_TAG_BYTES = 16
_NONCE_BYTES = 12
MAX_CHUNK_CIPHERTEXT = CHUNK_BYTES + _NONCE_BYTES + _TAG_BYTES


class BackupCryptoError(ValueError):
    """A backup stream that does not open: ``kind`` says how (tampered, truncated, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def new_content_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + _INDEX.pack(index)


def _aad(backup_id: str, index: int, final: bool) -> bytes:
    return b"hogo-backup/1|" + backup_id.encode("ascii") + b"|" + _INDEX.pack(index) + (b"\x01" if final else b"\x00")


def wrap_aad(backup_id: str) -> bytes:
    """The associated data under which the KEK wraps a backup's content key."""
    return f"backup:{backup_id}|content-key".encode("ascii")


class ChunkWriter:
    """Encrypts what is written to it into ``out`` as chunks; ``close`` writes the final chunk.

    Keeps the SHA-256 of every chunk as written, for the signed manifest (which, with their number,
    pins the whole file: no hash of the whole is needed on top). Whole chunks written as such (the
    SQLite file is read in chunk-sized pieces) are encrypted without being copied first."""

    def __init__(self, out: BinaryIO, key: bytes, backup_id: str, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._out = out
        self._aead = AESGCM(key)
        self._id = backup_id
        self._chunk = chunk_bytes
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._index = 0
        self.chunk_hashes: list[str] = []
        self.size = 0  # ciphertext bytes written
        self.plain_size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if not n:
            return 0
        self._pending.append(data if isinstance(data, bytes) else bytes(data))
        self._pending_len += n
        self.plain_size += n
        # Keep at least one byte back: the last chunk is flagged final, and only ``close`` knows which it is.
        while self._pending_len > self._chunk:
            first = self._pending[0]
            if len(first) == self._chunk:
                piece = self._pending.pop(0)
            else:
                joined = b"".join(self._pending)
                piece, rest = joined[: self._chunk], joined[self._chunk:]
                self._pending = [rest]
            self._pending_len -= len(piece)
            self._emit(piece, final=False)
        return n

    def _emit(self, piece: bytes, *, final: bool) -> None:
        nonce = _nonce(self._index)
        ct = self._aead.encrypt(nonce, piece, _aad(self._id, self._index, final))
        head = _LEN.pack(len(ct) + _NONCE_BYTES)
        h = hashlib.sha256(head)
        h.update(nonce)
        h.update(ct)
        self._out.write(head)
        self._out.write(nonce)
        self._out.write(ct)
        self.chunk_hashes.append(h.hexdigest())
        self.size += len(head) + _NONCE_BYTES + len(ct)
        self._index += 1

    def close(self) -> None:
        if self.closed:
            return
        self._emit(b"".join(self._pending), final=True)
        self._pending, self._pending_len = [], 0
        self.closed = True


def check_stream(f: BinaryIO, chunk_hashes: list[str]) -> None:
    """Compare ``data.enc`` with the chunk hashes of the signed manifest, without decrypting (no key needed).

    Raises BackupCryptoError naming the first chunk that differs, a missing tail (truncated) or extra data."""
    for n in range(len(chunk_hashes)):
        _read_checked(f, n, chunk_hashes)
    if f.read(1):
        raise BackupCryptoError("tampered", "data.enc holds data after its final chunk")


def _read_checked(f: BinaryIO, n: int, chunk_hashes: list[str]) -> tuple[bytes, memoryview]:
    """Chunk ``n`` of ``data.enc`` (nonce, ciphertext), once its SHA-256 matches the signed one."""
    count = len(chunk_hashes)
    head = f.read(_LEN.size)
    if len(head) < _LEN.size:
        raise BackupCryptoError(
            "truncated", f"data.enc ends after {n} of {count} chunks (truncated or a chunk removed)")
    (length,) = _LEN.unpack(head)
    if not _NONCE_BYTES + _TAG_BYTES <= length <= MAX_CHUNK_CIPHERTEXT:
        raise BackupCryptoError("tampered", f"chunk {n + 1} has an impossible length ({length} bytes)")
    body = f.read(length)
    if len(body) < length:
        raise BackupCryptoError("truncated", f"data.enc is cut short inside chunk {n + 1} of {count} (truncated)")
    h = hashlib.sha256(head)
    h.update(body)
    if h.hexdigest() != chunk_hashes[n]:
        raise BackupCryptoError(
            "tampered", f"chunk {n + 1} of {count} does not match the signed manifest (altered, removed or "
                        "reordered)")
    return body[:_NONCE_BYTES], memoryview(body)[_NONCE_BYTES:]


def decrypt_stream(f: BinaryIO, key: bytes, backup_id: str, chunk_hashes: list[str]) -> Iterator[bytes]:
    """The plaintext of ``data.enc``, chunk by chunk: each chunk is checked against the manifest's hash and
    opened (AES-256-GCM with its index and final flag), so nothing unauthenticated is ever yielded."""
    aead = AESGCM(key)
    count = len(chunk_hashes)
    for n in range(count):
        nonce, ct = _read_checked(f, n, chunk_hashes)
        if nonce != _nonce(n):
            raise BackupCryptoError("tampered", f"chunk {n + 1} of {count} is out of place")
        try:
            yield aead.decrypt(nonce, ct, _aad(backup_id, n, n == count - 1))
        except InvalidTag:
            raise BackupCryptoError(
                "tampered", f"chunk {n + 1} of {count} failed authentication (altered, or not of this backup)"
            ) from None
    if f.read(1):
        raise BackupCryptoError("tampered", "data.enc holds data after its final chunk")


class ChunkReader:
    """A file-like reader over ``decrypt_stream`` (for COPY … FROM STDIN and the like)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = [self._buf[self._pos:], *self._chunks]
            self._buf, self._pos = b"", 0
            return b"".join(parts)
        while len(self._buf) - self._pos < n:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            self._buf = self._buf[self._pos:] + nxt
            self._pos = 0
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def read_exact(self, n: int, what: Callable[[], str]) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise BackupCryptoError("malformed", f"the backup's content ends inside {what()}")
        return data


# --- key backups: sealed by a passphrase (SEC-151(3)) ------------------------------------------------------------

_KDF_T, _KDF_M, _KDF_P = 3, 64 * 1024, 4  # RFC 9106 second recommended option
_KDF_LIMITS = {"t": (1, 64), "m": (8, 4 * 1024 * 1024), "p": (1, 64)}
KEYS_SEALED_HEADER = "hogo-key-backup-v1-sealed"
PASSPHRASE_MIN_LENGTH = 16


def _derive(passphrase: str, salt: bytes, t: int, m: int, p: int) -> bytes:
    import unicodedata

    return hash_secret_raw(unicodedata.normalize("NFC", passphrase).encode("utf-8"), salt, time_cost=t,
                           memory_cost=m, parallelism=p, hash_len=KEY_BYTES, type=Type.ID, version=ARGON2_VERSION)


def seal_with_passphrase(plaintext: bytes, passphrase: str, *, context: str) -> bytes:
    """``plaintext`` sealed under Argon2id(passphrase) with AES-256-GCM; ``context`` (the backup ID) is bound too."""
    if len(passphrase) < PASSPHRASE_MIN_LENGTH:
        raise ValueError(f"the key backup passphrase must be at least {PASSPHRASE_MIN_LENGTH} characters")
    salt = os.urandom(16)
    params = f"argon2id v={ARGON2_VERSION} t={_KDF_T} m={_KDF_M} p={_KDF_P} salt={base64.b64encode(salt).decode()}"
    nonce = os.urandom(_NONCE_BYTES)
    ct = AESGCM(_derive(passphrase, salt, _KDF_T, _KDF_M, _KDF_P)).encrypt(
        nonce, plaintext, f"{KEYS_SEALED_HEADER}\n{params}\n{context}".encode())
    return f"{KEYS_SEALED_HEADER}\n{params}\n".encode() + base64.b64encode(nonce + ct) + b"\n"


def open_with_passphrase(sealed: bytes, passphrase: str, *, context: str) -> bytes:
    try:
        header, params, body = sealed.decode("ascii").strip("\n").split("\n")
        kind, *fields = params.split(" ")
        values = dict(f.partition("=")[::2] for f in fields)
        if header != KEYS_SEALED_HEADER or kind != "argon2id" or int(values["v"]) != ARGON2_VERSION:
            raise ValueError
        cost = {k: int(values[k]) for k in ("t", "m", "p")}
        if any(not lo <= cost[k] <= hi for k, (lo, hi) in _KDF_LIMITS.items()):
            raise ValueError
        salt = base64.b64decode(values["salt"], validate=True)
        blob = base64.b64decode(body, validate=True)
    except (ValueError, KeyError, UnicodeDecodeError):
        raise BackupCryptoError("malformed", "the sealed key backup is damaged (not a hogo key backup)") from None
    key = _derive(passphrase, salt, cost["t"], cost["m"], cost["p"])
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:],
                                   f"{KEYS_SEALED_HEADER}\n{params}\n{context}".encode())
    except InvalidTag:
        raise BackupCryptoError(
            "wrong_passphrase", "the passphrase does not open this key backup (wrong passphrase, or altered)"
        ) from None
