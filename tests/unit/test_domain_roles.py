"""Roles and permissions: administration is separate from data access (SEC-131, SEC-150, ANON-14)."""

import pytest

from hogo.domain.roles import DATA_PERMISSIONS, ROLE_PERMISSIONS, Permission, Role, parse_role, permissions_for


def test_the_roles_the_rules_name_have_their_identifiers():
    assert {r.value for r in Role} == {
        "admin", "general_protection_manager", "protection_manager", "clerk", "auditor", "sirt", "contractor",
        "information_security_officer",
    }
    assert Role.PROTECTION_MANAGER.label_ja == "保護管理者"
    assert Role.CLERK.label_ja == "事務取扱担当者"


@pytest.mark.parametrize("role", list(Role))
def test_no_role_confers_access_to_personal_data_SEC_131_ANON_14(role):
    assert not (ROLE_PERMISSIONS[role] & DATA_PERMISSIONS)
    assert not (permissions_for({role}) & DATA_PERMISSIONS)


def test_the_administrator_administers_accounts_only_SEC_150():
    perms = permissions_for({Role.ADMIN})
    assert Permission.ACCOUNT_WRITE in perms
    assert Permission.AUDIT_READ not in perms
    assert all(not p.value.startswith("data:") for p in perms)


def test_only_auditing_roles_read_the_audit_record():
    readers = {r for r in Role if Permission.AUDIT_READ in ROLE_PERMISSIONS[r]}
    assert readers == {Role.AUDITOR, Role.SIRT, Role.GENERAL_PROTECTION_MANAGER}


def test_unknown_role_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown role 'boss'"):
        parse_role("boss")
