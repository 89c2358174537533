"""Input text rules: NFKC normalisation, control characters, sizes.

Japanese users type full-width letters and digits (全角); identifiers are compared after NFKC so
``ｔａｎａｋａ`` and ``tanaka`` are the same login name, and input that changes under NFKC where it
must not (codes, names used as keys) is reported rather than silently altered.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
DEPT_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def has_control_chars(value: str) -> bool:
    return bool(_CONTROL.search(value))


def normalise_username(value: str, *, strict: bool = False) -> str:
    """NFKC, trimmed, lower-case. Raises ValueError naming the reason.

    ``strict`` (when an identifier is being created) refuses input that NFKC would change, such as
    full-width letters, and names the half-width form, rather than storing something else silently.
    """
    name = nfkc(value).strip().lower()
    if strict and value.strip() != nfkc(value).strip():
        raise ValueError(f"must be written in half-width characters (did you mean {name!r}?)")
    if not USERNAME_RE.fullmatch(name):
        raise ValueError(
            "must be 2–63 characters: letters a–z, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def normalise_dept_code(value: str, *, strict: bool = False) -> str:
    code = nfkc(value).strip().upper()
    if strict and value.strip() != nfkc(value).strip():
        raise ValueError(f"must be written in half-width characters (did you mean {code!r}?)")
    if not DEPT_CODE_RE.fullmatch(code):
        raise ValueError("must be 1–32 characters: letters, digits, '_' or '-'")
    return code


def clean_display_text(value: str, *, max_length: int = 200) -> str:
    """NFKC-normalised free text (names): no control characters, bounded length, not blank."""
    text = nfkc(value).strip()
    if not text:
        raise ValueError("must not be empty")
    if has_control_chars(text):
        raise ValueError("must not contain control characters")
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    return text
