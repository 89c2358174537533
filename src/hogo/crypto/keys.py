"""Instance key material: a 256-bit master key in ``keys/master.key`` (mode 0600).

Sub-keys are derived with HKDF-SHA-256 per purpose, so one key never serves two purposes.
``seal``/``open`` are AES-256-GCM with a random 96-bit nonce and caller-supplied associated data
binding the ciphertext to where it belongs (a TOTP secret to its user, say).

The server refuses to start (``ConfigurationError``) when the key file is missing, readable by
others, malformed, or one of the published demo keys outside demo mode.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hogo.errors import ConfigurationError

KEY_FILE_NAME = "master.key"
_HEADER = "hogo-master-key-v1"
_SEAL_VERSION = b"\x01"  # AES-256-GCM, 96-bit nonce

# Keys that anyone can know (documentation, tests, demo): refused outside demo mode.
_PUBLISHED_KEY_DIGESTS: frozenset[str] = frozenset(
    hashlib.sha256(k).hexdigest() for k in (bytes(32), b"\xff" * 32, b"hogo-demo-master-key-do-not-use!")
)


class SealError(Exception):
    """Opening a sealed value failed (wrong key, wrong binding, or tampered)."""


class Keyring:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ConfigurationError("master key must be 256 bits")
        self._master = master_key
        self._cache: dict[str, bytes] = {}

    @property
    def is_published(self) -> bool:
        return hashlib.sha256(self._master).hexdigest() in _PUBLISHED_KEY_DIGESTS

    def subkey(self, purpose: str) -> bytes:
        key = self._cache.get(purpose)
        if key is None:
            key = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=f"hogo/{purpose}".encode()
            ).derive(self._master)
            self._cache[purpose] = key
        return key

    def seal(self, purpose: str, plaintext: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        ct = AESGCM(self.subkey(purpose)).encrypt(nonce, plaintext, _SEAL_VERSION + aad)
        return _SEAL_VERSION + nonce + ct

    def open(self, purpose: str, sealed: bytes, *, aad: bytes) -> bytes:
        if len(sealed) < 1 + 12 + 16 or sealed[:1] != _SEAL_VERSION:
            raise SealError("not a sealed value")
        try:
            return AESGCM(self.subkey(purpose)).decrypt(sealed[1:13], sealed[13:], _SEAL_VERSION + aad)
        except InvalidTag:
            raise SealError("sealed value failed authentication") from None

    def mac(self, purpose: str, data: bytes) -> str:
        return hmac.new(self.subkey(purpose), data, hashlib.sha256).hexdigest()


def create_key_file(keys_dir: Path, *, key: bytes | None = None) -> Path:
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    path = keys_dir / KEY_FILE_NAME
    if path.exists():
        raise ConfigurationError(f"{path} already exists; refusing to overwrite key material")
    material = key if key is not None else secrets.token_bytes(32)
    text = f"{_HEADER}\n{base64.b64encode(material).decode()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def load_keyring(keys_dir: Path, *, allow_published: bool = False) -> Keyring:
    path = keys_dir / KEY_FILE_NAME
    if not path.exists():
        raise ConfigurationError(
            f"no key material at {path}: run 'hogo init' first (the server never starts without keys)",
            code="missing_secret",
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"{path} is readable by other users (mode {mode:o}); run 'chmod 600 {path}'",
            code="insecure_secret",
        )
    lines = path.read_text(encoding="ascii").split()
    try:
        if len(lines) != 2 or lines[0] != _HEADER:
            raise ValueError
        material = base64.b64decode(lines[1], validate=True)
    except ValueError:
        raise ConfigurationError(f"{path} is not a hogo key file", code="invalid_secret") from None
    ring = Keyring(material)
    if ring.is_published and not allow_published:
        raise ConfigurationError(
            f"{path} holds a published (default) key; only a demo instance may use it",
            code="default_secret",
        )
    return ring
