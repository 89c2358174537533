"""My Number (個人番号) and corporate number (法人番号): normalisation, check digits, masking.

Pure. Input is NFKC-normalised (full-width digits become ASCII) and hyphens and spaces are removed
before checking. The check digit rules are those of the 行政手続における特定の個人を識別するための
番号の利用等に関する法律施行令 (My Number, 12 digits) and the 法人番号 rules (13 digits, leading check).
"""

from __future__ import annotations

import re
from operator import mul

from hogo.domain.text import nfkc

_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―ー－]")


class IdentifierError(ValueError):
    """The value is not a valid identifier; the message says why (never repeating the value)."""


def _digits(value: str, length: int, kind: str) -> str:
    # ASCII digits only (the usual case): NFKC leaves them as they are and there is nothing to remove.
    text = value if value.isascii() and value.isdigit() else _SEPARATORS.sub("", nfkc(value))
    if not text.isascii() or not text.isdigit():
        raise IdentifierError(f"{kind} must consist of digits")
    if len(text) != length:
        raise IdentifierError(f"{kind} must have {length} digits (got {len(text)})")
    return text


# Qn of the digits of the first 11, from the left (P11 … P1).
_MY_NUMBER_WEIGHTS = tuple((n + 1 if n <= 6 else n - 5) for n in range(11, 0, -1))
_MY_NUMBER_OFFSET = 48 * sum(_MY_NUMBER_WEIGHTS)


def my_number_check_digit(first11: str) -> int:
    """check = 11 − (Σ Pn×Qn mod 11), 0 when the remainder is 0 or 1; Pn is the n-th digit from the
    right of the first 11, Qn = n+1 for n ≤ 6 and n−5 for n ≥ 7."""
    if len(first11) == 11 and first11.isascii() and first11.isdigit():
        # ASCII digits as their byte values: Σ (b − 48)·Q = Σ b·Q − 48·ΣQ.
        total = sum(map(mul, first11.encode(), _MY_NUMBER_WEIGHTS)) - _MY_NUMBER_OFFSET
    else:
        total = 0
        for n, ch in enumerate(reversed(first11), start=1):
            q = n + 1 if n <= 6 else n - 5
            total += int(ch) * q
    rem = total % 11
    return 0 if rem <= 1 else 11 - rem


def normalise_my_number(value: str) -> str:
    """The 12-digit My Number, or IdentifierError (wrong length, non-digits, bad check digit)."""
    digits = _digits(value, 12, "個人番号 (My Number)")
    if my_number_check_digit(digits[:11]) != int(digits[11]):
        raise IdentifierError("個人番号 (My Number) check digit does not match")
    return digits


def corporate_number_check_digit(base12: str) -> int:
    """check = 9 − (Σ Pn×Qn mod 9); Pn is the n-th digit from the right of the 12-digit base,
    Qn = 1 for odd n and 2 for even n."""
    total = 0
    for n, ch in enumerate(reversed(base12), start=1):
        total += int(ch) * (1 if n % 2 else 2)
    return 9 - total % 9


def normalise_corporate_number(value: str) -> str:
    digits = _digits(value, 13, "法人番号 (corporate number)")
    if corporate_number_check_digit(digits[1:]) != int(digits[0]):
        raise IdentifierError("法人番号 (corporate number) check digit does not match")
    return digits


def mask(value: str, *, visible: int = 4) -> str:
    """Masked for display: only the last ``visible`` characters shown (MN: masked by default)."""
    if len(value) <= visible:
        return "*" * len(value)
    return "*" * (len(value) - visible) + value[-visible:]
