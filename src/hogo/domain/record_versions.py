"""The hash of a record's stored version (SEC-133(2)): SHA-256 over the file code, record ID, revision,
segment and the sealed blob — never the plaintext. The signed log carries it for integrity-2 files
(services/integrity.py); an import's sealing process computes it beside the blob (services/import_sealer.py),
so it is defined here, with no dependency on the database layer."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

VERSION_TAG = b"hogo-record-version/1"
_LEN = struct.Struct(">I")
_SHA256 = hashlib.sha256  # the registry's version hash, called directly (the fast path)


def hasher(file_code: str) -> Callable[[str, int, str | None, bytes], str]:
    """``version_hash`` for one file: the prefix made once, one SHA-256 call per record (imports hash
    thousands of records per batch)."""
    code = file_code.encode()
    prefix = VERSION_TAG + _LEN.pack(len(code)) + code
    pack = _LEN.pack
    sha = _SHA256

    def one(record_id: str, revision: int, segment: str | None, blob: bytes) -> str:
        rid, rev, seg = record_id.encode(), str(revision).encode(), (segment or "").encode()
        return sha(b"".join((prefix, pack(len(rid)), rid, pack(len(rev)), rev, pack(len(seg)), seg,
                             pack(len(blob)), blob))).hexdigest()

    return one
