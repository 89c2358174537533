"""Account administration: SEC-129 (IDs issued and disabled), SEC-150 / SEC-131 / ANON-14 (administration
is not data access), SEC-19 (no one approves their own request), SEC-84 (changes recorded with who)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from hogo.domain.events import Event
from hogo.domain.roles import DATA_PERMISSIONS, Permission
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import accounts, audit_access, auth
from hogo.store.models import AuditEvent
from support import CTX, Instance


@pytest.fixture
def admin(inst: Instance) -> auth.Principal:
    p = inst.admin_principal()
    accounts.create_department(inst.hogo, p, code="JINJI", name="人事課", ctx=CTX)
    accounts.create_department(inst.hogo, p, code="KYUYO", name="給与厚生課", ctx=CTX)
    return p


def recorded(inst: Instance, event: Event) -> list[AuditEvent]:
    with inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event.value).order_by(AuditEvent.seq)))


def test_user_with_several_roles_scoped_to_departments(inst: Instance, admin):
    created = accounts.create_user(inst.hogo, admin, username="ito", display_name="伊藤 翔", department="KYUYO",
                                   roles=["clerk", "clerk@JINJI", "auditor"], ctx=CTX)
    roles = {(r.role, r.department) for r in created.user.roles}
    assert roles == {("clerk", "KYUYO"), ("clerk", "JINJI"), ("auditor", None)}
    assert created.user.must_change_password
    assert len(created.one_time_password) >= 16


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"username": "ｔａｎａｋａ"}, "username", "half-width"),
        ({"username": "田中"}, "username", "letters"),
        ({"roles": ["boss"]}, "roles", "unknown role"),
        ({"roles": ["protection_manager"], "department": None}, "roles", "department"),
        ({"roles": ["auditor@JINJI"]}, "roles", "organisation-wide"),
        ({"roles": ["contractor"]}, "valid_until", "end date"),
        ({"display_name": "a\x00b"}, "display_name", "control"),
        ({"email": "not-an-address"}, "email", "e-mail"),
    ],
)
def test_bad_account_input_names_the_field_and_stores_nothing(inst: Instance, admin, kwargs, field, fragment):
    args = {"username": "tanaka", "department": "JINJI", "roles": ["clerk"], **kwargs}
    with pytest.raises(ValidationFailed) as e:
        accounts.create_user(inst.hogo, admin, ctx=CTX, **args)
    assert e.value.field == field and fragment in e.value.message
    assert [u.username for u in accounts.list_users(inst.hogo, admin)] == ["admin"]
    assert not recorded(inst, Event.USER_CREATED)[1:]


def test_unknown_department_is_named(inst: Instance, admin):
    with pytest.raises(NotFound) as e:
        accounts.create_user(inst.hogo, admin, username="tanaka", department="NOPE", roles=["clerk"], ctx=CTX)
    assert "NOPE" in e.value.message


def test_duplicate_user_and_department_conflict(inst: Instance, admin):
    accounts.create_user(inst.hogo, admin, username="tanaka", department="JINJI", roles=["clerk"], ctx=CTX)
    with pytest.raises(Conflict):
        accounts.create_user(inst.hogo, admin, username="TANAKA", department="JINJI", roles=["clerk"], ctx=CTX)
    with pytest.raises(Conflict):
        accounts.create_department(inst.hogo, admin, code="jinji", name="x", ctx=CTX)


def test_administrator_cannot_grant_themselves_roles_SEC_19(inst: Instance, admin):
    for role in ("auditor", "general_protection_manager", "clerk@JINJI"):
        with pytest.raises(Forbidden) as e:
            accounts.grant_role(inst.hogo, admin, "admin", role, ctx=CTX)
        assert e.value.requirement == "SEC-19" and e.value.code == "self_approval_forbidden"
    for action in (accounts.disable_user, accounts.unlock_user, accounts.reset_password, accounts.reset_mfa):
        with pytest.raises(Forbidden):
            action(inst.hogo, admin, "admin", ctx=CTX, **({"reason": None} if action is accounts.disable_user
                                                           else {}))
    assert [r.role for r in accounts.get_user(inst.hogo, admin, "admin").roles] == ["admin"]


def test_administrator_has_no_right_to_personal_data_SEC_131_SEC_150_ANON_14(inst: Instance, admin):
    assert not (admin.permissions & DATA_PERMISSIONS)
    for perm in DATA_PERMISSIONS:
        with pytest.raises(Forbidden) as e:
            admin.require(perm)
        assert e.value.requirement == "SEC-131"
    # Nor can an administrator read others' entries of the access record by being one: only their own.
    inst.login()  # one more entry about the administrator
    rows = audit_access.search(inst.hogo, admin, audit_access.SearchFilter(limit=1000), ctx=CTX)
    assert rows and all(admin.user_id in (r.actor_id, r.subject_user_id) for r in rows)


def test_only_administrators_manage_accounts(inst: Instance, admin):
    from support import secret_of  # noqa: F401 - documents where secrets come from

    created = accounts.create_user(inst.hogo, admin, username="watanabe", department="JINJI",
                                   roles=["auditor"], ctx=CTX)
    p = auth.login(inst.hogo, username="watanabe", password=created.one_time_password, ctx=CTX).principal
    auth.change_password(inst.hogo, p, old_password=created.one_time_password,
                         new_password="Sakura-Kumo-Umi-47", ctx=CTX)
    enrol = auth.start_mfa_enrolment(inst.hogo, p, CTX)
    auth.confirm_mfa_enrolment(inst.hogo, p, inst.code(enrol.secret), CTX)
    auditor = auth.login(inst.hogo, username="watanabe", password="Sakura-Kumo-Umi-47",
                         totp=inst.next_code(enrol.secret), ctx=CTX).principal
    with pytest.raises(Forbidden):
        accounts.create_user(inst.hogo, auditor, username="x1", department="JINJI", roles=["clerk"], ctx=CTX)
    with pytest.raises(Forbidden):
        accounts.disable_user(inst.hogo, auditor, "admin", reason=None, ctx=CTX)
    # The auditor reads the record of account changes, each with who made it (SEC-84).
    rows = audit_access.search(inst.hogo, auditor, audit_access.SearchFilter(event="account:"), ctx=CTX)
    created_events = [r for r in rows if r.event == Event.USER_CREATED.value and r.target == "user:watanabe"]
    assert created_events and created_events[0].actor_name == "admin"
    assert auditor.can(Permission.AUDIT_READ)


def test_every_account_change_is_recorded_with_who_did_it_SEC_84(inst: Instance, admin):
    accounts.create_user(inst.hogo, admin, username="tanaka", department="JINJI", roles=["clerk"], ctx=CTX)
    accounts.grant_role(inst.hogo, admin, "tanaka", "clerk@KYUYO", ctx=CTX)
    accounts.revoke_role(inst.hogo, admin, "tanaka", "clerk@JINJI", ctx=CTX)
    accounts.update_user(inst.hogo, admin, "tanaka", display_name="田中 花子", ctx=CTX)
    accounts.reset_password(inst.hogo, admin, "tanaka", ctx=CTX)
    accounts.reset_mfa(inst.hogo, admin, "tanaka", ctx=CTX)
    accounts.disable_user(inst.hogo, admin, "tanaka", reason="異動", ctx=CTX)
    accounts.enable_user(inst.hogo, admin, "tanaka", ctx=CTX)
    expected = [Event.USER_CREATED, Event.ROLE_GRANTED, Event.ROLE_REVOKED, Event.USER_UPDATED,
                Event.USER_PASSWORD_RESET, Event.MFA_RESET, Event.USER_DISABLED, Event.USER_ENABLED]
    with inst.hogo.unit_of_work() as db:
        rows = list(db.scalars(select(AuditEvent).where(AuditEvent.target == "user:tanaka").order_by(AuditEvent.seq)))
    assert [r.event for r in rows] == [e.value for e in expected]
    assert all(r.actor_name == "admin" and r.actor_id == admin.user_id and r.client_addr == "127.0.0.1"
               for r in rows)
    assert rows[1].details == {"role": "clerk", "department": "KYUYO"}


def test_validity_period_dates_are_checked(inst: Instance, admin):
    now = inst.clock.now()
    with pytest.raises(ValidationFailed) as e:
        accounts.create_user(inst.hogo, admin, username="x1", department="JINJI", roles=["clerk"],
                             valid_from=now + dt.timedelta(days=2), valid_until=now + dt.timedelta(days=1), ctx=CTX)
    assert e.value.field == "valid_until"
    with pytest.raises(ValidationFailed):
        accounts.create_user(inst.hogo, admin, username="x1", department="JINJI", roles=["clerk"],
                             valid_until=dt.datetime(2030, 1, 1), ctx=CTX)  # no time zone


def test_account_not_yet_valid_cannot_sign_in_SEC_129(inst: Instance, admin):
    from hogo.errors import AuthenticationFailed

    created = accounts.create_user(inst.hogo, admin, username="newhire", department="JINJI", roles=["clerk"],
                                   valid_from=inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    with pytest.raises(AuthenticationFailed):
        auth.login(inst.hogo, username="newhire", password=created.one_time_password, ctx=CTX)
    inst.clock.advance(days=1)
    assert auth.login(inst.hogo, username="newhire", password=created.one_time_password, ctx=CTX)
