"""Password policy (ANON-11: rules for credentials; SEC-128: counter leaked/guessable credentials)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hogo.domain.passwords import (
    PasswordPolicy,
    generate_one_time_password,
    load_common_passwords,
    normalise_password,
    password_problems,
)

POLICY = PasswordPolicy(min_length=12, max_length=256)
COMMON = load_common_passwords()


@pytest.mark.parametrize(
    ("password", "username", "problem"),
    [
        ("short1!", "tanaka", "at least 12"),
        ("tanaka-is-my-name", "tanaka", "user name"),
        ("TANAKA", "tanaka", "user name"),
        ("ｔａｎａｋａ２０２６ｘｘ", "tanaka", "user name"),  # full-width spelling is the same name
        ("password1234", "tanaka", "commonly used"),
        ("Password1234!", "tanaka", "commonly used"),
        ("qwertyuiop123", "tanaka", "commonly used"),
        ("aaaaaaaaaaaaaa", "tanaka", "repeat"),
        ("abc\x00defghijklm", "tanaka", "control"),
        ("x" * 257 + "yz", "tanaka", "at most 256"),
    ],
)
def test_policy_refuses_weak_passwords_with_a_reason_ANON_11(password, username, problem):
    problems = password_problems(password, username=username, policy=POLICY, common=COMMON)
    assert any(problem in p for p in problems), problems


def test_policy_accepts_a_long_unusual_passphrase():
    assert password_problems("Sakura-Kumo-Umi-47", username="tanaka", policy=POLICY, common=COMMON) == []


def test_policy_refuses_reusing_the_current_password():
    problems = password_problems("Sakura-Kumo-Umi-47", username="t", policy=POLICY, common=COMMON,
                                 previous_matches=True)
    assert problems == ["must differ from the current password"]


def test_common_password_list_is_shipped_and_substantial():
    assert len(COMMON) > 300
    assert "password" in COMMON and "123456" in COMMON


def test_full_width_and_half_width_passwords_are_the_same():
    assert normalise_password("Ｐａｓｓ１２３") == "Pass123"


@given(st.integers(min_value=0, max_value=50))
def test_one_time_passwords_pass_the_policy_and_differ(_):
    a, b = generate_one_time_password(), generate_one_time_password()
    assert a != b
    assert password_problems(a, username="newuser", policy=POLICY, common=COMMON) == []
