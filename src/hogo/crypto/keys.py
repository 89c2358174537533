"""Instance key material: a 256-bit master key in ``keys/master.key`` (mode 0600).

The file is either plain (the key in base64) or sealed by a passphrase (``hogo init
--passphrase-file``; given again at ``hogo serve``): the key is then encrypted with AES-256-GCM under
a key derived from the passphrase with Argon2id (RFC 9106; t=3, m=64 MiB, p=4, random 16-byte salt).
The KDF parameters and the salt are kept in the file and bound to the ciphertext as associated data::

    hogo-master-key-v1-sealed
    argon2id v=19 t=3 m=65536 p=4 salt=<base64>
    <base64 of nonce (12 bytes) + ciphertext + tag>

Sub-keys are derived with HKDF-SHA-256 per purpose, so one key never serves two purposes.
``seal``/``open`` are AES-256-GCM with a random 96-bit nonce and caller-supplied associated data
binding the ciphertext to where it belongs (a TOTP secret to its user, say).

The server refuses to start (``ConfigurationError``) when the key file is missing, readable by
others, malformed, or one of the published demo keys outside demo mode; and, for a sealed file, when no passphrase
was given (``passphrase_required``) or it does not open the file (``wrong_passphrase``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
import unicodedata
from pathlib import Path

from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hogo.errors import ConfigurationError, ValidationFailed

KEY_FILE_NAME = "master.key"
_HEADER = "hogo-master-key-v1"
_SEALED_HEADER = "hogo-master-key-v1-sealed"
PASSPHRASE_MIN_LENGTH = 12
# Argon2id for the passphrase: RFC 9106 §4 second recommended option.
_KDF_TIME_COST = 3
_KDF_MEMORY_KIB = 64 * 1024
_KDF_PARALLELISM = 4
_KDF_SALT_BYTES = 16
# Bounds accepted when reading a sealed file (a damaged file must not make startup hang or exhaust memory).
_KDF_LIMITS = {"t": (1, 64), "m": (8, 4 * 1024 * 1024), "p": (1, 64)}
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


def create_key_file(keys_dir: Path, *, key: bytes | None = None, passphrase: str | None = None) -> Path:
    """Write a new master key (random unless ``key``) to ``keys_dir/master.key``, mode 0600.

    With ``passphrase`` the key is sealed: it cannot be read without the passphrase.
    """
    if passphrase is not None:
        passphrase = _check_passphrase(passphrase)
    path = keys_dir / KEY_FILE_NAME
    if path.exists():
        raise ConfigurationError(f"{path} already exists; refusing to overwrite key material")
    material = key if key is not None else secrets.token_bytes(32)
    if len(material) != 32:
        raise ConfigurationError("master key must be 256 bits")
    if passphrase is None:
        text = f"{_HEADER}\n{base64.b64encode(material).decode()}\n"
    else:
        salt = os.urandom(_KDF_SALT_BYTES)
        params = (f"argon2id v={ARGON2_VERSION} t={_KDF_TIME_COST} m={_KDF_MEMORY_KIB} p={_KDF_PARALLELISM} "
                  f"salt={base64.b64encode(salt).decode()}")
        kek = _derive(passphrase, salt, _KDF_TIME_COST, _KDF_MEMORY_KIB, _KDF_PARALLELISM)
        nonce = os.urandom(12)
        ct = AESGCM(kek).encrypt(nonce, material, _sealed_aad(params))
        text = f"{_SEALED_HEADER}\n{params}\n{base64.b64encode(nonce + ct).decode()}\n"
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def is_sealed(keys_dir: Path) -> bool:
    """Whether the key file exists and is sealed by a passphrase."""
    path = keys_dir / KEY_FILE_NAME
    try:
        with path.open("rb") as fh:
            first = fh.readline(len(_SEALED_HEADER) + 2)
    except FileNotFoundError:
        return False
    return first.strip() == _SEALED_HEADER.encode()


def load_keyring(keys_dir: Path, *, allow_published: bool = False, passphrase: str | None = None) -> Keyring:
    """The instance keyring. ``passphrase`` opens a sealed key file (it is not used for a plain one)."""
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
    try:
        lines = [line.strip() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path} is not a hogo key file", code="invalid_secret") from None
    if lines and lines[0] == _SEALED_HEADER:
        material = _open_sealed(path, lines, passphrase)
    else:
        try:
            if len(lines) != 2 or lines[0] != _HEADER:
                raise ValueError
            material = base64.b64decode(lines[1], validate=True)
            if len(material) != 32:
                raise ValueError
        except ValueError:
            raise ConfigurationError(f"{path} is not a hogo key file", code="invalid_secret") from None
    ring = Keyring(material)
    if ring.is_published and not allow_published:
        raise ConfigurationError(
            f"{path} holds a published (default) key; only a demo instance may use it",
            code="default_secret",
        )
    return ring


def _check_passphrase(passphrase: str) -> str:
    # NFC: the same passphrase typed through different input methods gives the same key.
    value = unicodedata.normalize("NFC", passphrase)
    if len(value) < PASSPHRASE_MIN_LENGTH:
        raise ValidationFailed(f"the key passphrase must be at least {PASSPHRASE_MIN_LENGTH} characters",
                               field="passphrase", requirement="ANON-18")
    return value


def _derive(passphrase: str, salt: bytes, time_cost: int, memory_kib: int, parallelism: int) -> bytes:
    return hash_secret_raw(
        unicodedata.normalize("NFC", passphrase).encode("utf-8"), salt,
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, hash_len=32,
        type=Type.ID, version=ARGON2_VERSION,
    )


def _sealed_aad(params: str) -> bytes:
    return f"{_SEALED_HEADER}\n{params}".encode("ascii")


def _open_sealed(path: Path, lines: list[str], passphrase: str | None) -> bytes:
    invalid = ConfigurationError(f"{path} is not a hogo key file (damaged sealed key)", code="invalid_secret")
    try:
        if len(lines) != 3:
            raise ValueError
        params = lines[1]
        kind, *fields = params.split(" ")
        values: dict[str, str] = {}
        for f in fields:
            name, _, value = f.partition("=")
            values[name] = value
        if kind != "argon2id" or set(values) != {"v", "t", "m", "p", "salt"} or int(values["v"]) != ARGON2_VERSION:
            raise ValueError
        cost = {k: int(values[k]) for k in ("t", "m", "p")}
        for k, (low, high) in _KDF_LIMITS.items():
            if not low <= cost[k] <= high:
                raise ValueError
        if cost["m"] < 8 * cost["p"]:
            raise ValueError
        salt = base64.b64decode(values["salt"], validate=True)
        blob = base64.b64decode(lines[2], validate=True)
        if len(salt) < _KDF_SALT_BYTES or len(blob) != 12 + 32 + 16:
            raise ValueError
    except ValueError:
        raise invalid from None
    if passphrase is None:
        raise ConfigurationError(
            f"{path} is sealed by a passphrase: give it with --passphrase-file, $HOGO_KEY_PASSPHRASE "
            "or at the prompt",
            code="passphrase_required",
        )
    kek = _derive(passphrase, salt, cost["t"], cost["m"], cost["p"])
    try:
        return AESGCM(kek).decrypt(blob[:12], blob[12:], _sealed_aad(params))
    except InvalidTag:
        raise ConfigurationError(
            f"the passphrase does not open {path} (wrong passphrase, or the file was altered)",
            code="wrong_passphrase",
        ) from None
