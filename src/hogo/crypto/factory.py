"""Builds the configured key provider (``key_provider`` in hogo.toml)."""

from __future__ import annotations

from hogo.config import Settings
from hogo.crypto.keys import Keyring
from hogo.crypto.providers import KeyFileProvider, KeyProvider
from hogo.errors import ConfigurationError


def build_key_provider(settings: Settings, keyring: Keyring) -> KeyProvider:
    """The KEK's home: the key file (embedded default) or a PKCS#11 token (production).

    Raises ConfigurationError when the provider cannot be used (for PKCS#11: the module path is
    missing, the token is not found, ``$HOGO_PKCS11_PIN`` is missing or wrong, the key is absent).
    """
    if settings.key_provider == "keyfile":
        return KeyFileProvider(keyring)
    if settings.key_provider == "pkcs11":
        from hogo.crypto.pkcs11 import Pkcs11Provider, pin_from_env

        return Pkcs11Provider(
            module=settings.pkcs11_module,
            token_label=settings.pkcs11_token_label,
            pin=pin_from_env(),
            key_label=settings.pkcs11_key_label,
        )
    raise ConfigurationError(f"key provider {settings.key_provider!r} is not available in this build")
