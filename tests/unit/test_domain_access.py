"""Pure authentication rules: lockout schedule (SEC-128), MFA requirement (SEC-157), validity (SEC-129)."""

import datetime as dt

import pytest

from hogo.domain.access import account_state, is_trusted_address, lockout_duration, mfa_required
from hogo.domain.roles import Role

T0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(("count", "seconds"), [(1, 60), (2, 120), (3, 240), (4, 480), (20, 86400), (64, 86400)])
def test_each_lockout_is_longer_than_the_last_up_to_a_cap_SEC_128(count, seconds):
    assert lockout_duration(count, base_s=60, max_s=86400) == dt.timedelta(seconds=seconds)


def test_lockout_count_starts_at_one():
    with pytest.raises(ValueError):
        lockout_duration(0, base_s=60, max_s=600)


@pytest.mark.parametrize(
    ("roles", "required", "nets", "addr", "enrolled", "expected"),
    [
        ({Role.CLERK}, ["clerk"], [], "10.0.0.5", False, True),
        ({Role.CLERK}, ["admin"], [], "10.0.0.5", False, False),
        ({Role.CLERK}, ["admin"], ["10.0.0.0/8"], "10.0.0.5", False, False),
        # SEC-157: remote access always needs MFA when a trusted-network list is set.
        ({Role.CLERK}, ["admin"], ["10.0.0.0/8"], "203.0.113.9", False, True),
        ({Role.CLERK}, [], ["10.0.0.0/8"], None, False, True),
        ({Role.CLERK}, [], [], "203.0.113.9", True, True),  # enrolled users always use it
        (set(), [], [], "127.0.0.1", False, True),  # no roles: default deny → require
    ],
)
def test_mfa_requirement_SEC_157(roles, required, nets, addr, enrolled, expected):
    assert mfa_required(roles, required_roles=required, trusted_networks=nets, client_address=addr,
                        enrolled=enrolled) is expected


@pytest.mark.parametrize(
    ("addr", "expected"),
    [("192.168.1.10", True), ("192.168.2.1", False), ("::1", True), ("not-an-ip", False), (None, False)],
)
def test_trusted_address(addr, expected):
    assert is_trusted_address(addr, ["192.168.1.0/24", "::1/128"]) is expected


@pytest.mark.parametrize(
    ("kw", "state"),
    [
        ({}, "active"),
        ({"disabled_at": T0 - dt.timedelta(seconds=1)}, "disabled"),
        ({"valid_until": T0}, "expired"),
        ({"valid_until": T0 + dt.timedelta(seconds=1)}, "active"),
        ({"valid_from": T0 + dt.timedelta(days=1)}, "not_yet_valid"),
    ],
)
def test_account_state_follows_validity_period_and_disablement_SEC_129(kw, state):
    args = {"valid_from": None, "valid_until": None, "disabled_at": None, **kw}
    assert account_state(now=T0, **args) == state
