"""The only package that touches cryptographic primitives (CRYPTREC e-Government recommended list:
AES-256-GCM, SHA-256, HMAC-SHA-256, HKDF-SHA-256; Argon2id for password hashing, RFC 9106).

Public surface: ``Keyring`` (key file, sub-keys, seal/open), ``PasswordHasher``, ``new_token``,
``token_digest``, ``constant_time_equal``.
"""

from hogo.crypto.keys import KEY_FILE_NAME, Keyring, create_key_file, load_keyring
from hogo.crypto.passwords import PasswordHasher
from hogo.crypto.tokens import constant_time_equal, new_token, token_digest

__all__ = [
    "KEY_FILE_NAME",
    "Keyring",
    "PasswordHasher",
    "constant_time_equal",
    "create_key_file",
    "load_keyring",
    "new_token",
    "token_digest",
]
