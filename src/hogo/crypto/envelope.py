"""Envelope encryption of record values (ANON-18, SEC-133, SEC-151; CRYPTREC: AES-256-GCM, HMAC-SHA-256).

Each personal-data file has data keys (DEKs, one per key version) and one blind-index key, all
random 256-bit keys wrapped by the key provider's KEK. Every field value is encrypted separately
with AES-256-GCM under the file's current DEK; its associated data binds it to the file, the
record, the field and the key version, so a ciphertext moved to another record or field, or
swapped between them, fails to open. A record's ciphertexts are packed into one blob that begins
with the algorithm id and key version.

Exact-match lookup uses a keyed blind index: HMAC-SHA-256 under the file's index key, over the
normalised value — never decryption of everything.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import os
import struct
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hogo.crypto.keys import SealError
from hogo.crypto.providers import KeyProvider

ALG_AES_256_GCM = 1
ALGORITHMS = {ALG_AES_256_GCM: "AES-256-GCM"}
_HEADER = struct.Struct(">BI")  # algorithm id, key version
_NAME = struct.Struct(">H")
_LEN = struct.Struct(">I")


def dek_aad(file_id: int, version: int, purpose: str) -> bytes:
    return f"file:{file_id}|{purpose}|v{version}".encode()


@dataclasses.dataclass(frozen=True)
class WrappedKey:
    version: int
    purpose: str  # "data" | "index"
    provider: str
    kek_id: str
    wrapped: bytes


def new_wrapped_key(provider: KeyProvider, file_id: int, version: int, purpose: str) -> WrappedKey:
    key = os.urandom(32)
    return WrappedKey(version, purpose, provider.name, provider.kek_id,
                      provider.wrap(key, aad=dek_aad(file_id, version, purpose)))


class FileKeys:
    """The unwrapped keys of one file, in memory only."""

    def __init__(self, file_id: int, deks: Mapping[int, bytes], index_key: bytes) -> None:
        if not deks:
            raise SealError("a file needs at least one data key")
        self.file_id = file_id
        self._aeads = {v: AESGCM(k) for v, k in deks.items()}
        self.current_version = max(deks)
        self._index_key = index_key

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(self._aeads)

    def _aad(self, record_id: str, field: str, version: int) -> bytes:
        return f"hogo:v1|file:{self.file_id}|record:{record_id}|field:{field}|key:{version}".encode()

    def seal_record(self, record_id: str, values: Mapping[str, str]) -> tuple[int, bytes]:
        """Encrypt every value of a record under the current key: (key version, blob)."""
        version = self.current_version
        encrypt = self._aeads[version].encrypt
        prefix = f"hogo:v1|file:{self.file_id}|record:{record_id}|field:"
        suffix = f"|key:{version}"
        parts = [_HEADER.pack(ALG_AES_256_GCM, version)]
        # One read of the OS random source per record (a system call per field costs as much as
        # the encryption); each value still gets its own independent random 96-bit nonce.
        nonces = os.urandom(12 * len(values))
        for i, (field, value) in enumerate(values.items()):
            nonce = nonces[12 * i:12 * i + 12]
            ct = encrypt(nonce, value.encode("utf-8"), (prefix + field + suffix).encode())
            parts.append(_field_header(field, len(ct) + 12))
            parts.append(nonce)
            parts.append(ct)
        return version, b"".join(parts)

    def open_record(self, record_id: str, blob: bytes, *, fields: Iterable[str] | None = None) -> dict[str, str]:
        """Decrypt the wanted fields only (``None``: all). A tampered or moved value raises SealError."""
        wanted = None if fields is None else set(fields)
        alg, version = _HEADER.unpack_from(blob, 0)
        if alg != ALG_AES_256_GCM:
            raise SealError(f"unknown algorithm id {alg}")
        aead = self._aeads.get(version)
        if aead is None:
            raise SealError(f"no data key of version {version} for this file")
        out: dict[str, str] = {}
        pos = _HEADER.size
        end = len(blob)
        while pos < end:
            (n,) = _NAME.unpack_from(blob, pos)
            pos += _NAME.size
            field = blob[pos:pos + n].decode("ascii")
            pos += n
            (m,) = _LEN.unpack_from(blob, pos)
            pos += _LEN.size
            ct = blob[pos:pos + m]
            pos += m
            if wanted is not None and field not in wanted:
                continue
            try:
                out[field] = aead.decrypt(ct[:12], ct[12:], self._aad(record_id, field, version)).decode("utf-8")
            except InvalidTag:
                raise SealError(f"the value of field {field!r} failed authentication (tampered or moved)") from None
        return out

    def blind_index(self, field: str, value: str) -> bytes:
        return hmac.digest(self._index_key, f"{field}\x00{value}".encode(), hashlib.sha256)


@functools.lru_cache(maxsize=4096)
def _field_header(field: str, length: int) -> bytes:
    name = field.encode("ascii")
    return _NAME.pack(len(name)) + name + _LEN.pack(length)


def blob_key_version(blob: bytes) -> int:
    return int(_HEADER.unpack_from(blob, 0)[1])


def unwrap_file_keys(provider: KeyProvider, file_id: int, keys: Iterable[WrappedKey]) -> FileKeys:
    deks: dict[int, bytes] = {}
    index_key: bytes | None = None
    for k in keys:
        if k.provider != provider.name or k.kek_id != provider.kek_id:
            raise SealError(f"key v{k.version} of file {file_id} was wrapped by {k.provider}/{k.kek_id}, "
                            f"not by the configured {provider.name}/{provider.kek_id}")
        raw = provider.unwrap(k.wrapped, aad=dek_aad(file_id, k.version, k.purpose))
        if k.purpose == "index":
            index_key = raw
        else:
            deks[k.version] = raw
    if index_key is None:
        raise SealError(f"file {file_id} has no blind-index key")
    return FileKeys(file_id, deks, index_key)
