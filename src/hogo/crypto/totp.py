"""TOTP (RFC 6238) with replay protection, and recovery codes.

TOTP uses HMAC-SHA-1 with 6 digits and 30-second steps because every authenticator app expects
exactly that (RFC 6238's default); HMAC-SHA-1 as a MAC is not affected by SHA-1 collisions. The
shared secret is stored sealed (AES-256-GCM) and bound to its user.
"""

from __future__ import annotations

import datetime as dt
import secrets

import pyotp

from hogo.crypto.tokens import constant_time_equal

STEP_SECONDS = 30
DIGITS = 6


def new_secret() -> str:
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def current_code(secret: str, now: dt.datetime) -> str:
    """The code an authenticator shows at ``now`` (tests and the demo use this)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(now)


def verify(secret: str, code: str, *, now: dt.datetime, last_step: int | None, window: int = 1) -> int | None:
    """The matched time step, or None. A step at or before ``last_step`` is refused (no replay)."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        # Check every candidate so the time taken does not depend on which one matched.
        if constant_time_equal(totp.generate_otp(step), code) and matched is None:
            matched = step
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


_RC_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_recovery_codes(count: int = 10) -> list[str]:
    return [
        "-".join("".join(secrets.choice(_RC_ALPHABET) for _ in range(5)) for _ in range(2))
        for _ in range(count)
    ]


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.strip().lower() if ch.isalnum())
