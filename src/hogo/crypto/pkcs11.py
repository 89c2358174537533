"""PKCS#11 key provider (production): the KEK is an AES-256 key that never leaves the HSM
(ANON-18, SEC-133, SEC-151; CRYPTREC: AES-256-GCM).

The KEK is a secret key in the token, found by label (``pkcs11_key_label``, default ``hogo-kek``):
token object, private, sensitive, not extractable, usable only to encrypt and decrypt. A data key
is wrapped by AES-GCM encryption inside the token (``CKM_AES_GCM``, random 96-bit IV, the caller's
associated data); the wrapped form is ``version byte + IV + ciphertext and tag``.

The user PIN comes from ``$HOGO_PKCS11_PIN``, never from hogo.toml. One session is opened at
startup and kept; a lock serialises its use, and it is reopened once when the HSM drops it.
Error messages name the module, token and key label, never the PIN.

Tested with SoftHSM2 (Debian package ``softhsm2``, ``/usr/lib/softhsm/libsofthsm2.so``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.mechanisms import GCMParams

from hogo.crypto.keys import SealError
from hogo.errors import ConfigurationError

PIN_ENV = "HOGO_PKCS11_PIN"
_VERSION = b"\x01"  # AES-256-GCM in the token, 96-bit IV, 128-bit tag
_IV_BYTES = 12
_TAG_BYTES = 16
# The session (or the login) is gone: the HSM restarted, or another session of this process logged out.
_SESSION_LOST: tuple[type[Exception], ...] = (
    p11.SessionClosed, p11.SessionHandleInvalid, p11.DeviceRemoved, p11.TokenNotPresent,
    p11.UserNotLoggedIn, p11.KeyHandleInvalid, p11.ObjectHandleInvalid,
)

# PKCS#11 login state belongs to the whole process: while one session is logged in to a token, a
# second login is refused (CKR_USER_ALREADY_LOGGED_IN) and every new session shares the login. So
# that a second provider in the same process still proves its PIN, remember a keyed digest (never
# the PIN) of the PIN that logged in to each token.
_LOGIN_LOCK = threading.Lock()
_LOGIN_DIGEST_KEY = os.urandom(32)
_LOGINS: dict[tuple[str, str], bytes] = {}


def pin_from_env() -> str:
    """The token's user PIN from ``$HOGO_PKCS11_PIN`` (ConfigurationError when unset)."""
    pin = os.environ.get(PIN_ENV, "")
    if not pin:
        raise ConfigurationError(
            f"key_provider is 'pkcs11' but ${PIN_ENV} (the token's user PIN) is not set; "
            "the PIN is never read from hogo.toml",
            code="missing_secret",
        )
    return pin


def _pin_digest(pin: str) -> bytes:
    return hmac.new(_LOGIN_DIGEST_KEY, pin.encode("utf-8"), hashlib.sha256).digest()


def _load_module(module: str) -> Any:
    if not module:
        raise ConfigurationError(
            "key_provider is 'pkcs11' but pkcs11_module (the path of the PKCS#11 library) is not set "
            "(hogo.toml or $HOGO_PKCS11_MODULE)",
            code="pkcs11_unavailable",
        )
    if not os.path.isfile(module):
        raise ConfigurationError(f"the PKCS#11 module {module} does not exist", code="pkcs11_unavailable")
    try:
        return pkcs11.lib(module)
    except (p11.PKCS11Error, OSError):
        raise ConfigurationError(f"the PKCS#11 module {module} could not be loaded", code="pkcs11_unavailable") \
            from None


def _open_session(module: str, token_label: str, pin: str, *, rw: bool) -> Any:
    """A session on the token labelled ``token_label``, logged in as its user."""
    lib = _load_module(module)
    if not token_label:
        raise ConfigurationError(
            "key_provider is 'pkcs11' but pkcs11_token_label is not set (hogo.toml or $HOGO_PKCS11_TOKEN_LABEL)",
            code="pkcs11_token_not_found",
        )
    if not pin:
        raise ConfigurationError(f"no PIN for the PKCS#11 token {token_label!r} (set ${PIN_ENV})",
                                 code="missing_secret")
    try:
        token = lib.get_token(token_label=token_label)
    except p11.NoSuchToken:
        raise ConfigurationError(f"no PKCS#11 token labelled {token_label!r} in {module}",
                                 code="pkcs11_token_not_found") from None
    except p11.MultipleTokensReturned:
        raise ConfigurationError(f"more than one PKCS#11 token is labelled {token_label!r} in {module}",
                                 code="pkcs11_token_not_found") from None
    except p11.PKCS11Error:
        raise ConfigurationError(f"the PKCS#11 module {module} could not list its tokens",
                                 code="pkcs11_unavailable") from None
    where = (module, token_label)
    with _LOGIN_LOCK:
        try:
            session = token.open(rw=rw, user_pin=pin)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise ConfigurationError(f"the PIN for the PKCS#11 token {token_label!r} is wrong (${PIN_ENV})",
                                     code="wrong_pin") from None
        except (p11.PinLocked, p11.PinExpired):
            raise ConfigurationError(f"the user PIN of the PKCS#11 token {token_label!r} is locked or expired",
                                     code="wrong_pin") from None
        except p11.UserAlreadyLoggedIn:
            known = _LOGINS.get(where)
            if known is None or not hmac.compare_digest(known, _pin_digest(pin)):
                raise ConfigurationError(
                    f"this process is already logged in to the PKCS#11 token {token_label!r} with another PIN",
                    code="wrong_pin",
                ) from None
            try:
                session = token.open(rw=rw)  # shares the process's login
            except p11.PKCS11Error:
                raise ConfigurationError(f"could not open a session on the PKCS#11 token {token_label!r}",
                                         code="pkcs11_unavailable") from None
            return session
        except p11.PKCS11Error:
            raise ConfigurationError(f"could not open a session on the PKCS#11 token {token_label!r}",
                                     code="pkcs11_unavailable") from None
        _LOGINS[where] = _pin_digest(pin)
        return session


def _close_quietly(session: Any) -> None:
    with contextlib.suppress(p11.PKCS11Error):
        session.close()


def _find_kek(session: Any, key_label: str) -> Any | None:
    try:
        return session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=key_label)
    except p11.NoSuchKey:
        return None
    except p11.MultipleObjectsReturned:
        raise ConfigurationError(f"more than one AES key in the token is labelled {key_label!r}",
                                 code="invalid_secret") from None


def _check_kek(key: Any, key_label: str) -> None:
    """A usable KEK: AES-256, its value never readable outside the token, allowed to encrypt and decrypt."""
    try:
        attrs = key.get_attributes([Attribute.VALUE_LEN, Attribute.SENSITIVE, Attribute.ENCRYPT, Attribute.DECRYPT])
    except p11.PKCS11Error:
        raise ConfigurationError(f"cannot read the attributes of the key {key_label!r} in the token",
                                 code="invalid_secret") from None
    if attrs.get(Attribute.VALUE_LEN) != 32:
        raise ConfigurationError(f"the key {key_label!r} in the token is not an AES-256 key", code="invalid_secret")
    if not attrs.get(Attribute.SENSITIVE):
        raise ConfigurationError(
            f"the key {key_label!r} in the token is not sensitive (its value could be read): refusing it as the KEK",
            code="insecure_secret",
        )
    if not (attrs.get(Attribute.ENCRYPT) and attrs.get(Attribute.DECRYPT)):
        raise ConfigurationError(f"the key {key_label!r} in the token may not encrypt and decrypt",
                                 code="invalid_secret")


def _check_gcm(session: Any, token_label: str) -> None:
    try:
        supported = Mechanism.AES_GCM in session.token.slot.get_mechanisms()
    except p11.PKCS11Error:
        supported = True  # cannot tell: the first wrap will say
    if not supported:
        raise ConfigurationError(f"the PKCS#11 token {token_label!r} does not offer AES-GCM (CKM_AES_GCM)",
                                 code="pkcs11_unavailable")


def ensure_kek(module: str, token_label: str, pin: str, key_label: str = "hogo-kek") -> bool:
    """Create the KEK in the token unless it is there (``hogo init``). True when it was created.

    The key is generated inside the token: AES-256, token object, private, sensitive, never
    extractable, for encryption and decryption only.
    """
    session = _open_session(module, token_label, pin, rw=True)
    try:
        _check_gcm(session, token_label)
        key = _find_kek(session, key_label)
        if key is not None:
            _check_kek(key, key_label)
            return False
        try:
            key = session.generate_key(
                KeyType.AES, 256, label=key_label, store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                },
            )
        except p11.PKCS11Error as exc:
            raise ConfigurationError(
                f"the PKCS#11 token {token_label!r} could not generate the key {key_label!r} "
                f"({type(exc).__name__})",
                code="pkcs11_unavailable",
            ) from None
        _check_kek(key, key_label)
        return True
    finally:
        _close_quietly(session)


def _aad(aad: bytes) -> bytes:
    return b"hogo-wrap|pkcs11|" + _VERSION + b"|" + aad


class Pkcs11Provider:
    """Wraps data keys with an AES-256 KEK inside a PKCS#11 token (an HSM)."""

    name = "pkcs11"

    def __init__(self, *, module: str, token_label: str, pin: str, key_label: str = "hogo-kek") -> None:
        self.kek_id = f"pkcs11:{key_label}"
        self._module = module
        self._token_label = token_label
        self._key_label = key_label
        self._pin = pin  # kept in memory only, to reopen a session the HSM dropped
        self._lock = threading.Lock()
        self._session: Any = None
        self._key: Any = None
        self._connect()

    def __repr__(self) -> str:
        return f"Pkcs11Provider(module={self._module!r}, token={self._token_label!r}, key={self._key_label!r})"

    def _connect(self) -> None:
        session = _open_session(self._module, self._token_label, self._pin, rw=False)
        try:
            _check_gcm(session, self._token_label)
            key = _find_kek(session, self._key_label)
            if key is None:
                raise ConfigurationError(
                    f"no AES key labelled {self._key_label!r} in the PKCS#11 token {self._token_label!r}: "
                    "create it ('hogo init' with key_provider = \"pkcs11\" does) or set pkcs11_key_label",
                    code="pkcs11_key_not_found",
                )
            _check_kek(key, self._key_label)
        except BaseException:
            _close_quietly(session)
            raise
        self._session, self._key = session, key

    def _call(self, op: Callable[[Any], Any]) -> bytes:
        with self._lock:
            if self._key is None:
                self._connect()
            try:
                result = op(self._key)
            except _SESSION_LOST:
                # The HSM dropped the session or the login: reopen once and retry.
                old, self._session, self._key = self._session, None, None
                if old is not None:
                    _close_quietly(old)
                self._connect()
                result = op(self._key)
        if not isinstance(result, bytes):
            raise SealError("the HSM returned no data")
        return result

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        iv = os.urandom(_IV_BYTES)
        params = GCMParams(iv, _aad(aad), _TAG_BYTES * 8)
        try:
            ct = self._call(lambda k: k.encrypt(key, mechanism=Mechanism.AES_GCM, mechanism_param=params))
        except (p11.PKCS11Error, ConfigurationError):
            raise SealError("the HSM could not wrap a data key") from None
        return _VERSION + iv + ct

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        if len(wrapped) < 1 + _IV_BYTES + _TAG_BYTES or wrapped[:1] != _VERSION:
            raise SealError("not a data key wrapped by the PKCS#11 provider")
        iv, ct = wrapped[1:1 + _IV_BYTES], wrapped[1 + _IV_BYTES:]
        params = GCMParams(iv, _aad(aad), _TAG_BYTES * 8)
        try:
            return self._call(lambda k: k.decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=params))
        except (p11.PKCS11Error, ConfigurationError):
            raise SealError("a data key failed to unwrap in the HSM (wrong KEK, wrong binding, or tampered)") \
                from None

    def close(self) -> None:
        """End the session (the server keeps it for its lifetime; tests close it)."""
        with self._lock:
            session, self._session, self._key = self._session, None, None
        if session is not None:
            _close_quietly(session)
