"""Argon2id password hashing (ANON-11: credentials protected from being read)."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hogo.crypto import registry

_HASH_BYTES = (registry.ARGON2ID.output_bits or 256) // 8


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=_HASH_BYTES,
            salt_len=16,
            type=argon2.Type.ID,
        )
        # Verified against when the user is unknown, so both paths cost the same (SEC-128).
        self._dummy = self._ph.hash("hogo-dummy-password-for-timing")

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. ``stored_hash=None`` burns the same time and is False."""
        target = stored_hash or self._dummy
        try:
            ok = self._ph.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return bool(ok) and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return bool(self._ph.check_needs_rehash(stored_hash))
