"""Authentication rules that need no I/O: lockout schedule, MFA requirement, validity periods."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable

from hogo.domain.roles import Role


def lockout_duration(lockout_count: int, *, base_s: int, max_s: int) -> dt.timedelta:
    """SEC-128: each consecutive lockout lasts twice as long as the one before, up to ``max_s``."""
    if lockout_count < 1:
        raise ValueError("lockout_count starts at 1")
    seconds = min(base_s * (2 ** min(lockout_count - 1, 30)), max_s)
    return dt.timedelta(seconds=seconds)


def is_trusted_address(address: str | None, trusted_networks: Iterable[str]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted_networks)


def mfa_required(
    roles: Iterable[Role],
    *,
    required_roles: Iterable[str],
    trusted_networks: Iterable[str],
    client_address: str | None,
    enrolled: bool,
) -> bool:
    """Whether this login must present a second factor.

    Enrolled users always use it. SEC-157: when a trusted-network list is configured, any access
    from outside it requires MFA regardless of role configuration. Otherwise the roles decide;
    a user with no roles yet is treated as needing it (default deny).
    """
    if enrolled:
        return True
    nets = list(trusted_networks)
    if nets and not is_trusted_address(client_address, nets):
        return True
    role_set = set(roles)
    required = set(required_roles)
    if not role_set:
        return True
    return any(r.value in required for r in role_set)


def account_state(
    *,
    now: dt.datetime,
    valid_from: dt.datetime | None,
    valid_until: dt.datetime | None,
    disabled_at: dt.datetime | None,
) -> str:
    """``active``, ``disabled``, ``not_yet_valid`` or ``expired`` (SEC-129)."""
    if disabled_at is not None and disabled_at <= now:
        return "disabled"
    if valid_from is not None and now < valid_from:
        return "not_yet_valid"
    if valid_until is not None and now >= valid_until:
        return "expired"
    return "active"
