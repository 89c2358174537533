"""My Number and corporate number check digits (MN: validated, never stored invalid), masking."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hogo.domain.identifiers import (
    IdentifierError,
    corporate_number_check_digit,
    mask,
    my_number_check_digit,
    normalise_corporate_number,
    normalise_my_number,
)


@pytest.mark.parametrize(
    "given_value",
    ["123456789018", "1234-5678-9018", "１２３４５６７８９０１８", "1234 5678 9018", "１２３４－５６７８－９０１８"],
)
def test_valid_my_number_in_any_common_spelling(given_value):
    assert normalise_my_number(given_value) == "123456789018"


@pytest.mark.parametrize(
    ("value", "reason"),
    [("123456789012", "check digit"), ("12345678901", "12 digits"), ("1234567890123", "12 digits"),
     ("12345678901a", "digits"), ("", "digits")],
)
def test_invalid_my_numbers_are_refused_with_the_reason_and_without_the_value(value, reason):
    with pytest.raises(IdentifierError) as e:
        normalise_my_number(value)
    assert reason in str(e.value)
    if value:
        assert value not in str(e.value)


def test_check_digit_zero_when_remainder_is_zero_or_one():
    assert my_number_check_digit("00000000000") == 0  # Σ = 0: remainder 0
    assert my_number_check_digit("00000000006") == 0  # P1=6, Q1=2: Σ = 12, remainder 1
    assert my_number_check_digit("00000000050") == 7  # P2=5, Q2=3: Σ = 15, remainder 4 → 11 − 4
    # The rule written out independently, over numbers whose remainders are 0, 1 and others:
    for digits in ("00000000000", "00000000050", "10000000000", "00000000006", "00000000100"):
        total = sum(int(d) * (n + 1 if n <= 6 else n - 5) for n, d in enumerate(reversed(digits), start=1))
        expect = 0 if total % 11 <= 1 else 11 - total % 11
        assert my_number_check_digit(digits) == expect


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_every_generated_number_with_its_check_digit_validates(first11):
    number = first11 + str(my_number_check_digit(first11))
    assert normalise_my_number(number) == number
    wrong = first11 + str((my_number_check_digit(first11) + 1) % 10)
    with pytest.raises(IdentifierError):
        normalise_my_number(wrong)


def test_corporate_number_rule():
    # 法人番号 of the National Tax Agency: 7000012050002.
    assert normalise_corporate_number("7000012050002") == "7000012050002"
    assert corporate_number_check_digit("000012050002") == 7
    with pytest.raises(IdentifierError):
        normalise_corporate_number("8000012050002")


def test_mask_shows_the_last_four_only():
    assert mask("123456789018") == "********9018"
    assert mask("123") == "***"
