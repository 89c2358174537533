"""Roles the rules name and the permission vocabulary (``scope:resource:action``).

MN-3a / SEC-7..18 name the roles. SEC-131, SEC-150 and ANON-14 separate administration from data
access: no role confers any ``data:`` permission by itself — data access comes only from a grant on
a personal-data file (the guard, a later issue), so a system administrator cannot read personal
data by virtue of being one.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # システム管理者
    GENERAL_PROTECTION_MANAGER = "general_protection_manager"  # 総括保護管理者
    PROTECTION_MANAGER = "protection_manager"  # 保護管理者 (per department)
    CLERK = "clerk"  # 事務取扱担当者
    AUDITOR = "auditor"  # 監査責任者
    SIRT = "sirt"  # SIRT 要員
    CONTRACTOR = "contractor"  # 委託先
    INFORMATION_SECURITY_OFFICER = "information_security_officer"  # 情報セキュリティ責任者 (SEC-47(2), SEC-48(3))

    @property
    def label_ja(self) -> str:
        return ROLE_LABELS_JA[self]

    @property
    def label_en(self) -> str:
        return ROLE_LABELS_EN[self]


ROLE_LABELS_JA: dict[Role, str] = {
    Role.ADMIN: "システム管理者",
    Role.GENERAL_PROTECTION_MANAGER: "総括保護管理者",
    Role.PROTECTION_MANAGER: "保護管理者",
    Role.CLERK: "事務取扱担当者",
    Role.AUDITOR: "監査責任者",
    Role.SIRT: "SIRT要員",
    Role.CONTRACTOR: "委託先",
    Role.INFORMATION_SECURITY_OFFICER: "情報セキュリティ責任者",
}

ROLE_LABELS_EN: dict[Role, str] = {
    Role.ADMIN: "System administrator",
    Role.GENERAL_PROTECTION_MANAGER: "General protection manager",
    Role.PROTECTION_MANAGER: "Protection manager",
    Role.CLERK: "Clerk",
    Role.AUDITOR: "Auditor",
    Role.SIRT: "SIRT member",
    Role.CONTRACTOR: "Contractor",
    Role.INFORMATION_SECURITY_OFFICER: "Information security officer",
}

# Roles held within one department (課室); the others are organisation-wide.
DEPARTMENT_SCOPED: frozenset[Role] = frozenset({Role.PROTECTION_MANAGER, Role.CLERK, Role.CONTRACTOR})
# Contractors get narrow, expiring access: their accounts must have an end date.
REQUIRES_END_DATE: frozenset[Role] = frozenset({Role.CONTRACTOR})


class Permission(StrEnum):
    """Typed permission vocabulary. API tokens are scoped with these names."""

    SELF_READ = "self:account:read"
    SELF_WRITE = "self:account:write"
    ACCOUNT_READ = "account:user:read"
    ACCOUNT_WRITE = "account:user:write"
    DEPT_READ = "account:department:read"
    DEPT_WRITE = "account:department:write"
    AUDIT_READ = "audit:event:read"
    # Defining personal-data files and reading their ledger entries (no record data in either).
    FILE_DEFINE = "file:definition:write"
    FILE_READ = "file:definition:read"
    # Data permissions: never conferred by a role (SEC-131, ANON-14); only by file grants.
    DATA_READ = "data:record:read"
    DATA_WRITE = "data:record:write"
    DATA_REVEAL = "data:record:reveal"
    DATA_EXPORT = "data:record:export"
    # The log analysis (ANON-13, SEC-132): reading its alerts, acting on them (acknowledge, close, run the
    # analysis, review its settings), and changing its thresholds.
    ALERT_READ = "audit:alert:read"
    ALERT_WRITE = "audit:alert:write"
    ANALYSIS_CONFIGURE = "audit:analysis:configure"
    # Backups (ANON-19, SEC-51): ciphertext only, so administration, not data access (SEC-131).
    BACKUP_MANAGE = "system:backup:manage"


DATA_PERMISSIONS: frozenset[Permission] = frozenset(p for p in Permission if p.value.startswith("data:"))

_SELF = {Permission.SELF_READ, Permission.SELF_WRITE}
_ALERTS = {Permission.ALERT_READ, Permission.ALERT_WRITE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # SEC-150: the administrator ID is for administrative work only.
    Role.ADMIN: frozenset(
        _SELF
        | {Permission.ACCOUNT_READ, Permission.ACCOUNT_WRITE, Permission.DEPT_READ, Permission.DEPT_WRITE}
        | {Permission.BACKUP_MANAGE}
    ),
    Role.GENERAL_PROTECTION_MANAGER: frozenset(
        _SELF | {Permission.ACCOUNT_READ, Permission.DEPT_READ, Permission.AUDIT_READ, Permission.FILE_DEFINE,
                 Permission.FILE_READ} | _ALERTS | {Permission.ANALYSIS_CONFIGURE}
    ),
    # A protection manager defines files of their own department (checked by the file service).
    Role.PROTECTION_MANAGER: frozenset(_SELF | {Permission.DEPT_READ, Permission.FILE_DEFINE, Permission.FILE_READ}),
    Role.CLERK: frozenset(_SELF | {Permission.DEPT_READ}),
    # The auditor reviews the analysis settings (ANON-13) but does not set them: who checks is not who decides.
    Role.AUDITOR: frozenset(_SELF | {Permission.ACCOUNT_READ, Permission.DEPT_READ, Permission.AUDIT_READ,
                                     Permission.FILE_READ} | _ALERTS),
    Role.SIRT: frozenset(_SELF | {Permission.AUDIT_READ, Permission.DEPT_READ} | _ALERTS
                         | {Permission.ANALYSIS_CONFIGURE}),
    Role.CONTRACTOR: frozenset(_SELF),
    # Approves take-outs of confidentiality-3 information with the manager (SEC-47(2)) and sees their alerts.
    Role.INFORMATION_SECURITY_OFFICER: frozenset(_SELF | {Permission.DEPT_READ, Permission.FILE_READ} | _ALERTS),
}

assert all(not (perms & DATA_PERMISSIONS) for perms in ROLE_PERMISSIONS.values())


def permissions_for(roles: set[Role] | frozenset[Role]) -> frozenset[Permission]:
    out: set[Permission] = set(_SELF)
    for role in roles:
        out |= ROLE_PERMISSIONS[role]
    return frozenset(out)


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {text!r} (known: {known})") from None
