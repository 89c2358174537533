"""Builds the configured key provider (``key_provider`` in hogo.toml)."""

from __future__ import annotations

from hogo.config import Settings
from hogo.crypto.keys import Keyring
from hogo.crypto.providers import KeyFileProvider, KeyProvider
from hogo.errors import ConfigurationError


def build_key_provider(settings: Settings, keyring: Keyring) -> KeyProvider:
    if settings.key_provider == "keyfile":
        return KeyFileProvider(keyring)
    raise ConfigurationError(f"key provider {settings.key_provider!r} is not available in this build")
