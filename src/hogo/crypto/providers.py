"""Key providers: where the key-encryption key (KEK) lives. They only wrap and unwrap data keys.

- ``KeyFileProvider`` (embedded default): a KEK derived from the instance key file (HKDF-SHA-256),
  wrapping with AES-256-GCM.
- ``Pkcs11Provider`` (production; ``crypto/pkcs11.py``): an AES-256 key that never leaves the HSM.

Wrapped keys carry the provider's name and KEK id, so a data key is always unwrapped by the
provider (and KEK) that wrapped it.
"""

from __future__ import annotations

import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hogo.crypto.keys import Keyring, SealError


class KeyProvider(Protocol):
    name: str  # "keyfile" | "pkcs11"
    kek_id: str  # which KEK wraps (for KEK rotation and for refusing a foreign provider)

    def wrap(self, key: bytes, *, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes: ...


class KeyFileProvider:
    name = "keyfile"

    def __init__(self, keyring: Keyring, *, kek_id: str = "kek-1") -> None:
        self.kek_id = kek_id
        self._aead = AESGCM(keyring.subkey(f"kek/{kek_id}"))

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, key, b"hogo-wrap|" + aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], b"hogo-wrap|" + aad)
        except InvalidTag:
            raise SealError("a data key failed to unwrap (wrong key file, or tampered)") from None
