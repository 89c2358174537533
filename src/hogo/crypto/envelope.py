"""Envelope encryption of record values (ANON-18, SEC-133, SEC-151; CRYPTREC: AES-256-GCM, HMAC-SHA-256).

Each personal-data file has data keys (DEKs, one per key version) and one blind-index key, all
random 256-bit keys wrapped by the key provider's KEK. Every field value is encrypted separately
with AES-256-GCM under the file's current DEK; its associated data binds it to the file, the
record, the field and the key version, so a ciphertext moved to another record or field, or
swapped between them, fails to open. A record's ciphertexts are packed into one blob that begins
with the algorithm id and key version.

Exact-match lookup uses a keyed blind index: HMAC-SHA-256 under the file's index key, over the
normalised value — never decryption of everything.

Key versions are buckets (crypto-shredding, services/erasure.py): a file starts a new version (a data
key and its own index key) every ``BUCKET_RECORDS`` records or so, so erasing a record costs re-encrypting
its bucket, not the file. A record's index digests are made with the index key of its version; a lookup
makes one digest per live index key. Files made before buckets have one index key (version 1) that
serves every data version without an index key of its own.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import struct
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hogo.crypto import registry
from hogo.crypto.keys import SealError
from hogo.crypto.providers import KeyProvider

ALG_AES_256_GCM = 1
ALGORITHMS = {ALG_AES_256_GCM: registry.AES_256_GCM.name}  # parameters from the registry (SEC-133)
_DEK_BYTES = registry.AES_256_GCM.key_bytes
_INDEX_DIGEST = registry.HMAC_SHA_256.digest or "sha256"
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
    key = os.urandom(_DEK_BYTES)
    return WrappedKey(version, purpose, provider.name, provider.kek_id,
                      provider.wrap(key, aad=dek_aad(file_id, version, purpose)))


class FileKeys:
    """The unwrapped keys of one file, in memory only."""

    def __init__(self, file_id: int, deks: Mapping[int, bytes], index_key: bytes | Mapping[int, bytes],
                 current_version: int | None = None) -> None:
        if not deks:
            raise SealError("a file needs at least one data key")
        self.file_id = file_id
        self._aeads = {v: AESGCM(k) for v, k in deks.items()}
        self._deks = dict(deks)  # in memory only; ``raw`` hands them to an import's sealing process
        self.current_version = max(deks) if current_version is None else current_version
        if self.current_version not in self._aeads:
            raise SealError(f"no data key of the current version {self.current_version} for file {file_id}")
        index_keys = {min(deks): index_key} if isinstance(index_key, bytes) else dict(index_key)
        if not index_keys:
            raise SealError(f"file {file_id} has no blind-index key")
        self._index_keys = index_keys
        # The index key of each data version: its own, or (a file made before buckets) the newest older one.
        self._index_of: dict[int, int] = {}
        for v in self._aeads:
            own = [i for i in index_keys if i <= v]
            self._index_of[v] = max(own) if own else min(index_keys)
        self._parts: dict[int, dict[str, tuple[bytes, bytes]]] = {}

    def raw(self) -> tuple[int, dict[int, bytes], dict[int, bytes], int]:
        """What makes these keys again (``FileKeys(*raw)``): for an import's sealing process only, over
        its private pipe (services/import_sealer.py); never to be stored or logged."""
        return self.file_id, dict(self._deks), dict(self._index_keys), self.current_version

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(self._aeads)

    def index_version(self, version: int) -> int:
        """The version of the index key that indexes records of data version ``version``."""
        return self._index_of[version]

    def sharing_index(self, version: int) -> frozenset[int]:
        """The data versions whose records are indexed with the same index key as ``version``'s."""
        i = self._index_of[version]
        return frozenset(v for v, j in self._index_of.items() if j == i)

    def _aad(self, record_id: str, field: str, version: int) -> bytes:
        return f"hogo:v1|file:{self.file_id}|record:{record_id}|field:{field}|key:{version}".encode()

    def seal_record(self, record_id: str, values: Mapping[str, str]) -> tuple[int, bytes]:
        """Encrypt every value of a record under the current key: (key version, blob)."""
        version, blobs = self.seal_records([(record_id, values)])
        return version, blobs[0]

    def seal_records(self, records: Sequence[tuple[str, Mapping[str, str]]], version: int | None = None
                     ) -> tuple[int, list[bytes]]:
        """``seal_record`` for many records (an import batch): (key version, one blob per record).

        Each value is still encrypted on its own, with its own random 96-bit nonce and its own
        associated data (file, record, field, key version); what is shared is the work around it:
        one read of the OS random source for all the nonces (a system call per field costs as much
        as the encryption), and the per-field parts of the associated data and of the blob, made
        once per field name. ``version``: another live key version than the current one (an import
        batch that fills one bucket and starts the next)."""
        version = self.current_version if version is None else version
        encrypt = self._aeads[version].encrypt
        parts_of = self._field_parts(version)
        head = _HEADER.pack(ALG_AES_256_GCM, version)
        record_prefix = f"hogo:v1|file:{self.file_id}|record:".encode()
        nonces = os.urandom(12 * sum(len(values) for _, values in records))
        pos = 0
        blobs = []
        pack = _LEN.pack
        join = b"".join
        for record_id, values in records:
            prefix = record_prefix + record_id.encode() + b"|field:"
            parts = [head]
            for field, value in values.items():
                name, aad_tail = parts_of.get(field) or self._new_field_parts(version, field)
                nonce = nonces[pos:pos + 12]
                pos += 12
                ct = encrypt(nonce, value.encode("utf-8"), prefix + aad_tail)
                parts += (name, pack(len(ct) + 12), nonce, ct)
            blobs.append(join(parts))
        return version, blobs

    def _field_parts(self, version: int) -> dict[str, tuple[bytes, bytes]]:
        parts = self._parts.get(version)
        if parts is None:
            parts = self._parts[version] = {}
        return parts

    def _new_field_parts(self, version: int, field: str) -> tuple[bytes, bytes]:
        """The field's entry header before its length (name length, name) and the end of its
        associated data after the record ID (``field`` and the key version), as ``_aad`` writes them."""
        name = field.encode("ascii")
        parts = (_NAME.pack(len(name)) + name, f"{field}|key:{version}".encode())
        self._field_parts(version)[field] = parts
        return parts

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

    def blind_index(self, field: str, value: str, version: int | None = None) -> bytes:
        """The digest of a value of a record of data ``version`` (default: the current one)."""
        key = self._index_keys[self._index_of[self.current_version if version is None else version]]
        # The digest named as text: OpenSSL's HMAC in one call (with the constructor, Python's slower path).
        return hmac.digest(key, f"{field}\x00{value}".encode(), _INDEX_DIGEST)

    def blind_indexes(self, field: str, value: str) -> list[bytes]:
        """The value's digest under every live index key (a lookup: one HMAC per bucket)."""
        data = f"{field}\x00{value}".encode()
        return [hmac.digest(self._index_keys[i], data, _INDEX_DIGEST) for i in sorted(set(self._index_of.values()))]


def blob_key_version(blob: bytes) -> int:
    return int(_HEADER.unpack_from(blob, 0)[1])


def unwrap_file_keys(provider: KeyProvider, file_id: int, keys: Iterable[WrappedKey],
                     current_version: int | None = None) -> FileKeys:
    deks: dict[int, bytes] = {}
    index_keys: dict[int, bytes] = {}
    for k in keys:
        if k.provider != provider.name or k.kek_id != provider.kek_id:
            raise SealError(f"key v{k.version} of file {file_id} was wrapped by {k.provider}/{k.kek_id}, "
                            f"not by the configured {provider.name}/{provider.kek_id}")
        raw = provider.unwrap(k.wrapped, aad=dek_aad(file_id, k.version, k.purpose))
        if k.purpose == "index":
            index_keys[k.version] = raw
        else:
            deks[k.version] = raw
    if not index_keys:
        raise SealError(f"file {file_id} has no blind-index key")
    if current_version is not None and current_version not in deks:
        current_version = max(deks) if deks else None
    return FileKeys(file_id, deks, index_keys, current_version)
