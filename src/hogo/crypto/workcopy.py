"""Sealing a temporary working copy (ANON-17) under its own data key (CRYPTREC: AES-256-GCM).

Each working copy gets a fresh random 256-bit key, wrapped by the key provider's KEK and bound to the
copy's ID; its rows are sealed as one AES-256-GCM ciphertext whose associated data names the copy. To
dispose of the copy its wrapped key is destroyed: any ciphertext left behind (a database page not yet
reused, a backup) can no longer be opened — crypto-shredding.
"""

from __future__ import annotations

import dataclasses
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hogo.crypto import registry
from hogo.crypto.keys import SealError
from hogo.crypto.providers import KeyProvider

_KEY_BYTES = registry.AES_256_GCM.key_bytes
_NONCE_BYTES = 12


def _aad(copy_id: str, purpose: str) -> bytes:
    return f"workcopy:{copy_id}|{purpose}".encode()


@dataclasses.dataclass(frozen=True)
class SealedCopy:
    provider: str
    kek_id: str
    wrapped_key: bytes
    blob: bytes


def seal(provider: KeyProvider, copy_id: str, plaintext: bytes) -> SealedCopy:
    """Seal ``plaintext`` under a new key for ``copy_id``; the key leaves here only wrapped."""
    key = os.urandom(_KEY_BYTES)
    nonce = os.urandom(_NONCE_BYTES)
    blob = nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(copy_id, "data"))
    return SealedCopy(provider.name, provider.kek_id, provider.wrap(key, aad=_aad(copy_id, "key")), blob)


def open_sealed(provider: KeyProvider, copy_id: str, wrapped_key: bytes, blob: bytes) -> bytes:
    """The plaintext of a sealed copy; a destroyed key, another copy's blob or tampering raise SealError."""
    key = provider.unwrap(wrapped_key, aad=_aad(copy_id, "key"))
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(copy_id, "data"))
    except InvalidTag:
        raise SealError("the working copy failed authentication (tampered or moved)") from None
