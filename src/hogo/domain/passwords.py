"""Password policy (ANON-11: rules for credentials; SEC-128: counter credential leaks).

Pure: the list of common passwords is passed in (``load_common_passwords`` reads the list shipped
in ``hogo/data/common-passwords.txt``). Passwords are NFKC-normalised before checking and hashing,
so a full-width and a half-width spelling are the same password (NIST SP 800-63B §5.1.1.2).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from hogo.domain.text import has_control_chars, nfkc


@dataclasses.dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    max_length: int = 256


def normalise_password(password: str) -> str:
    return nfkc(password)


def password_problems(
    password: str,
    *,
    username: str,
    policy: PasswordPolicy,
    common: frozenset[str],
    previous_matches: bool = False,
) -> list[str]:
    """Every reason ``password`` is refused, as short English phrases (empty when acceptable)."""
    pw = normalise_password(password)
    problems: list[str] = []
    if len(pw) < policy.min_length:
        problems.append(f"must be at least {policy.min_length} characters")
    if len(pw) > policy.max_length:
        problems.append(f"must be at most {policy.max_length} characters")
    if has_control_chars(pw):
        problems.append("must not contain control characters")
    lowered = pw.casefold()
    user = nfkc(username).casefold()
    if user and (lowered == user or user in lowered):
        problems.append("must not be or contain the user name")
    if lowered in common or _strip_suffix_digits(lowered) in common:
        problems.append("is in the list of commonly used passwords")
    if len(set(pw)) <= 2 and len(pw) > 0:
        problems.append("must not repeat one or two characters")
    if previous_matches:
        problems.append("must differ from the current password")
    return problems


def _strip_suffix_digits(value: str) -> str:
    return value.rstrip("0123456789!.")


@lru_cache(maxsize=1)
def load_common_passwords() -> frozenset[str]:
    text = resources.files("hogo").joinpath("data/common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(_entries(text.splitlines()))


def _entries(lines: Iterable[str]) -> Iterable[str]:
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            yield nfkc(line).casefold()


# One-time passwords for new accounts: no look-alike characters, ~95 bits of entropy.
_OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_one_time_password(length: int = 16) -> str:
    groups = ["".join(secrets.choice(_OTP_ALPHABET) for _ in range(4)) for _ in range(length // 4)]
    return "-".join(groups)
