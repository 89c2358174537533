"""Account administration: departments (課室), users, roles (SEC-129, SEC-150, SEC-19, SEC-131).

Administrators manage accounts but get no data access by it (roles confer no ``data:`` permission).
Nobody grants themselves a role, disables, unlocks or resets themselves (SEC-19: no one approves
their own request). Every change is recorded with who made it, in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.domain.access import account_state
from hogo.domain.events import Event, Outcome
from hogo.domain.passwords import generate_one_time_password
from hogo.domain.roles import DEPARTMENT_SCOPED, REQUIRES_END_DATE, Permission, Role, parse_role
from hogo.domain.text import clean_display_text, normalise_dept_code, normalise_username
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import audit
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal, revoke_user_credentials
from hogo.store.models import ApiToken, Department, User, UserRole

# --------------------------------------------------------------------------------- views


@dataclasses.dataclass(frozen=True)
class RoleView:
    role: str
    department: str | None
    granted_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class UserView:
    username: str
    display_name: str
    email: str | None
    department: str | None
    roles: tuple[RoleView, ...]
    state: str  # active | disabled | expired | not_yet_valid | locked
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    mfa_enabled: bool
    must_change_password: bool
    locked_until: dt.datetime | None
    last_login_at: dt.datetime | None
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class DepartmentView:
    code: str
    name: str
    parent: str | None
    members: int


@dataclasses.dataclass(frozen=True)
class NewUser:
    user: UserView
    one_time_password: str


def _view(user: User, now: dt.datetime) -> UserView:
    state = account_state(
        now=now, valid_from=user.valid_from, valid_until=user.valid_until, disabled_at=user.disabled_at
    )
    if state == "active" and user.locked_until is not None and now < user.locked_until:
        state = "locked"
    return UserView(
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        department=user.department.code if user.department else None,
        roles=tuple(
            sorted(
                (RoleView(r.role, r.department.code if r.department else None, r.granted_at) for r in user.roles),
                key=lambda v: (v.role, v.department or ""),
            )
        ),
        state=state,
        valid_from=user.valid_from,
        valid_until=user.valid_until,
        mfa_enabled=user.mfa_enabled,
        must_change_password=user.must_change_password,
        locked_until=user.locked_until,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


# ---------------------------------------------------------------------------- departments


def _dept(db: Session, code: str) -> Department:
    try:
        norm = normalise_dept_code(code)
    except ValueError as exc:
        raise ValidationFailed(f"department code {exc}", field="department") from None
    d = db.scalar(select(Department).where(Department.code == norm))
    if d is None:
        raise NotFound(f"no department with code {norm!r}", code="department_not_found",
                       details={"field": "department"})
    return d


def create_department(hogo: Hogo, actor: Principal | None, *, code: str, name: str,
                      parent: str | None = None, ctx: RequestContext) -> DepartmentView:
    if actor is not None:
        actor.require(Permission.DEPT_WRITE)
    try:
        norm = normalise_dept_code(code, strict=True)
    except ValueError as exc:
        raise ValidationFailed(f"department code {exc}", field="code") from None
    try:
        clean_name = clean_display_text(name)
    except ValueError as exc:
        raise ValidationFailed(f"department name {exc}", field="name") from None
    with hogo.unit_of_work() as db:
        if db.scalar(select(Department.id).where(Department.code == norm)) is not None:
            raise Conflict(f"a department with code {norm!r} already exists", code="department_exists")
        parent_row = _dept(db, parent) if parent else None
        now = hogo.clock.now()
        d = Department(code=norm, name=clean_name, parent_id=parent_row.id if parent_row else None, created_at=now)
        db.add(d)
        db.flush()
        audit.record(
            db, now=now, event=Event.DEPARTMENT_CREATED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=actor.user_id if actor else None, actor_name=actor.username if actor else None,
            target=f"department:{norm}",
            details={"name": clean_name, "parent": parent_row.code if parent_row else None},
        )
        return DepartmentView(norm, clean_name, parent_row.code if parent_row else None, 0)


def list_departments(hogo: Hogo, actor: Principal) -> list[DepartmentView]:
    actor.require(Permission.DEPT_READ)
    with hogo.unit_of_work() as db:
        counts = dict(
            db.execute(select(User.department_id, func.count()).group_by(User.department_id)).all()
        )
        by_id = {d.id: d for d in db.scalars(select(Department).order_by(Department.code))}
        return [
            DepartmentView(d.code, d.name, by_id[d.parent_id].code if d.parent_id in by_id else None,
                           int(counts.get(d.id, 0)))
            for d in by_id.values()
        ]


# ----------------------------------------------------------------------------------- users


def _user(db: Session, username: str) -> User:
    try:
        name = normalise_username(username)
    except ValueError as exc:
        raise ValidationFailed(f"user name {exc}", field="username") from None
    u = db.scalar(select(User).where(User.username == name))
    if u is None:
        raise NotFound(f"no user named {name!r}", code="user_not_found")
    return u


def _not_self(actor: Principal | None, user: User, action: str) -> None:
    if actor is not None and actor.user_id == user.id:
        raise Forbidden(
            f"you cannot {action} your own account; another administrator must do it",
            code="self_approval_forbidden",
            requirement="SEC-19",
        )


def _parse_role_specs(db: Session, specs: list[str], default_dept: Department | None,
                      ) -> list[tuple[Role, Department | None]]:
    """``clerk`` (uses the user's department) or ``clerk@JINJI`` (explicit department)."""
    out: list[tuple[Role, Department | None]] = []
    for spec in specs:
        role_text, _, dept_text = spec.partition("@")
        try:
            role = parse_role(role_text)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="roles") from None
        dept: Department | None = None
        if role in DEPARTMENT_SCOPED:
            dept = _dept(db, dept_text) if dept_text else default_dept
            if dept is None:
                raise ValidationFailed(
                    f"role {role.value!r} is held within a department: give --dept or {role.value}@DEPT",
                    field="roles",
                )
        elif dept_text:
            raise ValidationFailed(f"role {role.value!r} is organisation-wide; drop '@{dept_text}'", field="roles")
        if (role, dept) not in out:
            out.append((role, dept))
    return out


def _aware(value: dt.datetime | None, field: str) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed("must include a time zone", field=field)
    return value


def create_user(
    hogo: Hogo,
    actor: Principal | None,
    *,
    username: str,
    display_name: str | None = None,
    department: str | None = None,
    roles: list[str],
    email: str | None = None,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    ctx: RequestContext,
    password: str | None = None,
    is_demo: bool = False,
) -> NewUser:
    """Create an account with a one-time password that must be changed at first login.

    ``actor=None`` only from local bootstrap (``hogo init``). ``password`` is for bootstrap and the
    demo; otherwise a random one-time password is generated and returned once.
    """
    if actor is not None:
        actor.require(Permission.ACCOUNT_WRITE)
    try:
        name = normalise_username(username, strict=True)
    except ValueError as exc:
        raise ValidationFailed(f"user name {exc}", field="username") from None
    try:
        shown = clean_display_text(display_name or name)
    except ValueError as exc:
        raise ValidationFailed(f"display name {exc}", field="display_name") from None
    if email is not None:
        email = email.strip()
        if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
            raise ValidationFailed("not an e-mail address", field="email")
    _aware(valid_from, "valid_from")
    _aware(valid_until, "valid_until")
    now = hogo.clock.now()
    if valid_until is not None and valid_until <= (valid_from or now):
        raise ValidationFailed("the end of the validity period must be after its start", field="valid_until")
    if not roles:
        raise ValidationFailed("give at least one role", field="roles")
    from hogo.services.auth import check_new_password

    with hogo.unit_of_work() as db:
        if db.scalar(select(User.id).where(User.username == name)) is not None:
            raise Conflict(f"a user named {name!r} already exists", code="user_exists")
        dept = _dept(db, department) if department else None
        parsed = _parse_role_specs(db, roles, dept)
        if any(r in REQUIRES_END_DATE for r, _ in parsed) and valid_until is None:
            raise ValidationFailed("contractor accounts need an end date (--until)", field="valid_until",
                                   requirement="SEC-129")
        if password is None:
            one_time = generate_one_time_password()
            must_change = True
        else:
            one_time = check_new_password(hogo, password, username=name)
            must_change = False
        user = User(
            username=name,
            display_name=shown,
            email=email,
            department_id=dept.id if dept else None,
            password_hash=hogo.hasher.hash(one_time),
            must_change_password=must_change,
            password_changed_at=now,
            valid_from=valid_from,
            valid_until=valid_until,
            failed_attempts=0,
            lockout_count=0,
            mfa_enabled=False,
            is_demo=is_demo,
            created_at=now,
            created_by_id=actor.user_id if actor else None,
            updated_at=now,
        )
        db.add(user)
        db.flush()
        for role, rdept in parsed:
            db.add(UserRole(user_id=user.id, role=role.value, department_id=rdept.id if rdept else None,
                            granted_by_id=actor.user_id if actor else None, granted_at=now))
        db.flush()
        db.refresh(user)
        audit.record(
            db, now=now, event=Event.USER_CREATED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=actor.user_id if actor else None, actor_name=actor.username if actor else None,
            subject_user_id=user.id, target=f"user:{name}",
            details={
                "department": dept.code if dept else None,
                "roles": [f"{r.value}@{d.code}" if d else r.value for r, d in parsed],
                "valid_until": valid_until.isoformat() if valid_until else None,
            },
        )
        return NewUser(_view(user, now), one_time)


def list_users(hogo: Hogo, actor: Principal, *, department: str | None = None,
               include_disabled: bool = True) -> list[UserView]:
    actor.require(Permission.ACCOUNT_READ)
    with hogo.unit_of_work() as db:
        q = select(User).order_by(User.username)
        if department:
            q = q.where(User.department_id == _dept(db, department).id)
        now = hogo.clock.now()
        views = [_view(u, now) for u in db.scalars(q).unique()]
        if not include_disabled:
            views = [v for v in views if v.state != "disabled"]
        return views


def get_user(hogo: Hogo, actor: Principal, username: str) -> UserView:
    actor.require(Permission.ACCOUNT_READ)
    with hogo.unit_of_work() as db:
        return _view(_user(db, username), hogo.clock.now())


def _change(hogo: Hogo, actor: Principal, username: str, *, event: Event, action: str,
            ctx: RequestContext, change: Any, details: dict[str, Any] | None = None) -> UserView:
    actor.require(Permission.ACCOUNT_WRITE)
    with hogo.unit_of_work() as db:
        user = _user(db, username)
        _not_self(actor, user, action)
        now = hogo.clock.now()
        extra = change(db, user, now) or {}
        user.updated_at = now
        audit.record(
            db, now=now, event=event, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=actor.user_id, actor_name=actor.username, subject_user_id=user.id,
            target=f"user:{user.username}", details={**(details or {}), **extra} or None,
        )
        db.flush()
        db.refresh(user)
        return _view(user, now)


def disable_user(hogo: Hogo, actor: Principal, username: str, *, reason: str | None,
                 ctx: RequestContext) -> UserView:
    """SEC-129: disabling takes effect at once: every session is revoked; tokens stop working."""
    def change(db: Session, user: User, now: dt.datetime) -> None:
        if user.disabled_at is not None:
            raise Conflict("the account is already disabled", code="already_disabled")
        user.disabled_at = now
        user.disabled_reason = reason
        revoke_user_credentials(db, user.id, now, "account_disabled")
        for tok in db.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
            tok.revoked_at = now

    return _change(hogo, actor, username, event=Event.USER_DISABLED, action="disable", ctx=ctx,
                   change=change, details={"reason": reason})


def enable_user(hogo: Hogo, actor: Principal, username: str, *, ctx: RequestContext) -> UserView:
    def change(db: Session, user: User, now: dt.datetime) -> None:
        if user.disabled_at is None:
            raise Conflict("the account is not disabled", code="not_disabled")
        user.disabled_at = None
        user.disabled_reason = None

    return _change(hogo, actor, username, event=Event.USER_ENABLED, action="enable", ctx=ctx, change=change)


def unlock_user(hogo: Hogo, actor: Principal, username: str, *, ctx: RequestContext) -> UserView:
    def change(db: Session, user: User, now: dt.datetime) -> dict[str, Any]:
        was = user.locked_until is not None and now < user.locked_until
        user.locked_until = None
        user.failed_attempts = 0
        user.lockout_count = 0
        return {"was_locked": was}

    return _change(hogo, actor, username, event=Event.USER_UNLOCKED, action="unlock", ctx=ctx, change=change)


def reset_password(hogo: Hogo, actor: Principal, username: str, *, ctx: RequestContext) -> NewUser:
    """A new one-time password, to be changed at next login; all sessions end."""
    holder: dict[str, str] = {}

    def change(db: Session, user: User, now: dt.datetime) -> None:
        otp = generate_one_time_password()
        holder["otp"] = otp
        user.password_hash = hogo.hasher.hash(otp)
        user.must_change_password = True
        user.password_changed_at = now
        user.is_demo = False
        revoke_user_credentials(db, user.id, now, "password_reset")

    view = _change(hogo, actor, username, event=Event.USER_PASSWORD_RESET, action="reset the password of",
                   ctx=ctx, change=change)
    return NewUser(view, holder["otp"])


def reset_mfa(hogo: Hogo, actor: Principal, username: str, *, ctx: RequestContext) -> UserView:
    """For a lost device: MFA must be enrolled again at next login; sessions end."""
    def change(db: Session, user: User, now: dt.datetime) -> None:
        user.mfa_enabled = False
        user.mfa_secret = None
        user.mfa_pending_secret = None
        user.mfa_pending_at = None
        user.mfa_last_step = None
        revoke_user_credentials(db, user.id, now, "mfa_reset")

    return _change(hogo, actor, username, event=Event.MFA_RESET, action="reset MFA of", ctx=ctx, change=change)


def update_user(hogo: Hogo, actor: Principal, username: str, *, ctx: RequestContext,
                display_name: str | None = None, email: str | None = None, department: str | None = None,
                valid_until: dt.datetime | None = None, clear_valid_until: bool = False) -> UserView:
    _aware(valid_until, "valid_until")
    changed: dict[str, Any] = {}

    def change(db: Session, user: User, now: dt.datetime) -> dict[str, Any]:
        if display_name is not None:
            try:
                user.display_name = clean_display_text(display_name)
            except ValueError as exc:
                raise ValidationFailed(f"display name {exc}", field="display_name") from None
            changed["display_name"] = user.display_name
        if email is not None:
            user.email = email.strip() or None
            changed["email_changed"] = True
        if department is not None:
            d = _dept(db, department)
            user.department_id = d.id
            changed["department"] = d.code
        if valid_until is not None:
            if user.valid_from is not None and valid_until <= user.valid_from:
                raise ValidationFailed("the end of the validity period must be after its start",
                                       field="valid_until")
            user.valid_until = valid_until
            changed["valid_until"] = valid_until.isoformat()
        elif clear_valid_until:
            if any(Role(r.role) in REQUIRES_END_DATE for r in user.roles):
                raise ValidationFailed("contractor accounts need an end date", field="valid_until")
            user.valid_until = None
            changed["valid_until"] = None
        if not changed:
            raise ValidationFailed("nothing to change", field=None)
        return changed

    return _change(hogo, actor, username, event=Event.USER_UPDATED, action="change", ctx=ctx, change=change)


def grant_role(hogo: Hogo, actor: Principal, username: str, role: str, *, ctx: RequestContext) -> UserView:
    """SEC-19: an administrator never grants a role to themselves."""
    def change(db: Session, user: User, now: dt.datetime) -> dict[str, Any]:
        (r, d), = _parse_role_specs(db, [role], user.department)
        if r in REQUIRES_END_DATE and user.valid_until is None:
            raise ValidationFailed("contractor accounts need an end date", field="valid_until")
        for existing in user.roles:
            if existing.role == r.value and existing.department_id == (d.id if d else None):
                raise Conflict("the user already holds this role", code="role_exists")
        user.roles.append(UserRole(user_id=user.id, role=r.value, department_id=d.id if d else None,
                                   granted_by_id=actor.user_id, granted_at=now))
        return {"role": r.value, "department": d.code if d else None}

    return _change(hogo, actor, username, event=Event.ROLE_GRANTED, action="grant a role to", ctx=ctx,
                   change=change)


def revoke_role(hogo: Hogo, actor: Principal, username: str, role: str, *, ctx: RequestContext) -> UserView:
    def change(db: Session, user: User, now: dt.datetime) -> dict[str, Any]:
        (r, d), = _parse_role_specs(db, [role], user.department)
        for existing in list(user.roles):
            if existing.role == r.value and (
                r not in DEPARTMENT_SCOPED or existing.department_id == (d.id if d else None)
            ):
                user.roles.remove(existing)
                return {"role": r.value, "department": d.code if d else None}
        raise NotFound("the user does not hold this role", code="role_not_held")

    return _change(hogo, actor, username, event=Event.ROLE_REVOKED, action="revoke a role from", ctx=ctx,
                   change=change)


def count_users(hogo: Hogo) -> int:
    with hogo.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(User)) or 0)
