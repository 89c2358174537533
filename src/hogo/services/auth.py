"""Identification and authentication (ANON-11, MN-6b, MLIT-9.5.1, SEC-128, SEC-129, SEC-157, ANON-21).

Login with password (Argon2id) and TOTP, lockout with growing periods, per-address rate limits,
sessions with idle and absolute timeouts, API tokens, MFA enrolment and recovery codes. Every
outcome is recorded in the same transaction as the state it changes.

Every credential check looks at the account's current state, so disabling an account, or its
validity period ending, takes effect on the very next request of every session and token (SEC-129).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.crypto import constant_time_equal, new_token, token_digest
from hogo.crypto import totp as totp_mod
from hogo.crypto.keys import SealError
from hogo.domain.access import account_state, is_trusted_address, lockout_duration, mfa_required
from hogo.domain.events import Event, Outcome
from hogo.domain.passwords import normalise_password, password_problems
from hogo.domain.roles import DATA_PERMISSIONS, Permission, Role, permissions_for
from hogo.domain.text import nfkc
from hogo.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    HogoError,
    MfaRequired,
    NotFound,
    RateLimited,
    SessionExpired,
    StepRequired,
    ValidationFailed,
)
from hogo.services import audit
from hogo.services.audit import RequestContext
from hogo.store.authz_cache import Snapshot
from hogo.store.fastsql import FastSelect
from hogo.store.models import ApiToken, AuditEvent, AuthSession, Department, RecoveryCode, User, UserRole

SESSION_PREFIX = "hgs"
API_TOKEN_PREFIX = "hgt"  # noqa: S105 - a prefix, not a secret
LAST_SEEN_GRANULARITY_S = 10
GENERIC_LOGIN_FAILURE = "login failed: wrong user name, password or one-time code, or the account is locked"
MFA_PURPOSE = "totp-secret"
MFA_PENDING_REUSE = dt.timedelta(minutes=10)
RECOVERY_PURPOSE = "recovery-code"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RoleGrant:
    role: Role
    department: str | None = None


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated requester, as of this request."""

    user_id: int
    username: str
    display_name: str
    department: str | None
    roles: tuple[RoleGrant, ...]
    credential: str  # "session" | "token"
    session_id: str | None = None
    session_kind: str | None = None
    token_id: str | None = None
    scopes: frozenset[str] | None = None
    must_change_password: bool = False
    mfa_enrolled: bool = False
    mfa_enrollment_required: bool = False
    mfa_verified: bool = False
    valid_until: dt.datetime | None = None
    expires_at: dt.datetime | None = None

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.roles)

    @property
    def permissions(self) -> frozenset[Permission]:
        perms = permissions_for(self.role_set)
        if self.scopes is not None:
            perms = frozenset(p for p in perms if p.value in self.scopes)
        return perms

    @property
    def pending_steps(self) -> tuple[str, ...]:
        steps = []
        if self.must_change_password:
            steps.append("change_password")
        if self.mfa_enrollment_required:
            steps.append("enroll_mfa")
        return tuple(steps)

    def can(self, perm: Permission) -> bool:
        return not self.pending_steps and perm in self.permissions and perm not in DATA_PERMISSIONS

    def _require_signed_in(self) -> None:
        if self.pending_steps:
            raise StepRequired(
                "finish signing in first: " + ", ".join(self.pending_steps),
                details={"steps": list(self.pending_steps)},
            )

    def require_data_scope(self, perm: Permission) -> None:
        """Before the guard decides on grants: the requester has finished signing in, and an API
        token carries the data scope for this kind of access."""
        self._require_signed_in()
        if self.scopes is not None and perm.value not in self.scopes:
            raise Forbidden(f"this API token lacks the scope {perm.value}", details={"permission": perm.value})

    def require(self, perm: Permission) -> None:
        """Default deny. Data permissions are never granted here: only the guard grants them."""
        self._require_signed_in()
        if perm in DATA_PERMISSIONS:
            raise Forbidden(
                "access to personal data needs a grant on the file; roles never confer it",
                requirement="SEC-131",
            )
        if perm not in self.permissions:
            raise Forbidden(f"you lack the permission {perm.value}", details={"permission": perm.value})


@dataclasses.dataclass(frozen=True)
class LoginResult:
    token: str
    session_id: str
    expires_at: dt.datetime
    idle_timeout_s: int
    principal: Principal


def _deferred_raise(hogo: Hogo, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction. An authentication error raised inside still commits what was
    recorded before it (failed-attempt counters, audit events), then propagates."""
    error: HogoError | None = None
    result: T | None = None
    with hogo.unit_of_work() as db:
        try:
            result = work(db)
        except (AuthenticationFailed, RateLimited, Forbidden) as exc:
            error = exc
    if error is not None:
        raise error
    assert result is not None
    return result


def _user_by_name(db: Session, username: str) -> User | None:
    name = nfkc(username).strip().lower()
    if not name or len(name) > 63:
        return None
    return db.scalar(select(User).where(User.username == name))


@dataclasses.dataclass(frozen=True)
class _Account:
    """What authentication needs to know of an account, read fresh on every request (SEC-129)."""

    id: int
    username: str
    display_name: str
    department: str | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    disabled_at: dt.datetime | None
    must_change_password: bool
    mfa_enabled: bool
    roles: tuple[RoleGrant, ...]

    def state(self, now: dt.datetime) -> str:
        return account_state(now=now, valid_from=self.valid_from, valid_until=self.valid_until,
                             disabled_at=self.disabled_at)


def _sorted_grants(pairs: Iterable[tuple[str, str | None]]) -> tuple[RoleGrant, ...]:
    return tuple(sorted((RoleGrant(Role(r), d) for r, d in pairs), key=lambda g: (g.role.value, g.department or "")))


def _account_of(user: User) -> _Account:
    return _Account(
        id=user.id, username=user.username, display_name=user.display_name,
        department=user.department.code if user.department else None,
        valid_from=user.valid_from, valid_until=user.valid_until, disabled_at=user.disabled_at,
        must_change_password=user.must_change_password, mfa_enabled=user.mfa_enabled,
        roles=_sorted_grants((r.role, r.department.code if r.department else None) for r in user.roles),
    )


# The hot path (every request) runs prebuilt Core statements on the connection: building a SELECT
# and executing it through the ORM session costs several times the query itself.
_ACCOUNT_COLUMNS = (
    User.id.label("user_id"), User.username, User.display_name, Department.code.label("department"),
    User.valid_from, User.valid_until, User.disabled_at, User.must_change_password, User.mfa_enabled,
)
_SESSION_BY_DIGEST = (
    select(AuthSession.id, AuthSession.kind, AuthSession.mfa_verified, AuthSession.last_seen_at,
           AuthSession.expires_at, AuthSession.revoked_at, *_ACCOUNT_COLUMNS)
    .join(User, User.id == AuthSession.user_id)
    .outerjoin(Department, Department.id == User.department_id)
    .where(AuthSession.token_hash == bindparam("digest"))
)
_TOKEN_BY_DIGEST = (
    select(ApiToken.id, ApiToken.scopes, ApiToken.mfa_verified, ApiToken.expires_at, ApiToken.revoked_at,
           ApiToken.last_used_at, *_ACCOUNT_COLUMNS)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(Department, Department.id == User.department_id)
    .where(ApiToken.token_hash == bindparam("digest"))
)
_ROLES_OF_USER = (
    select(UserRole.role, Department.code)
    .outerjoin(Department, Department.id == UserRole.department_id)
    .where(UserRole.user_id == bindparam("user_id"))
)


# Run on the driver's cursor: these are on every authenticated request (store/fastsql.py).
_FAST_SESSION_BY_DIGEST = FastSelect(_SESSION_BY_DIGEST)
_FAST_TOKEN_BY_DIGEST = FastSelect(_TOKEN_BY_DIGEST)
_FAST_ROLES_OF_USER = FastSelect(_ROLES_OF_USER)


def _account_from_row(conn: Connection, row: Any) -> _Account:
    roles = _FAST_ROLES_OF_USER.all(conn, {"user_id": row.user_id})
    return _Account(
        id=row.user_id, username=row.username, display_name=row.display_name, department=row.department,
        valid_from=row.valid_from, valid_until=row.valid_until, disabled_at=row.disabled_at,
        must_change_password=row.must_change_password, mfa_enabled=row.mfa_enabled,
        roles=_sorted_grants((r, d) for r, d in roles),
    )


def _needs_mfa_enrolment(hogo: Hogo, account: _Account, client_addr: str | None) -> bool:
    if account.mfa_enabled:
        return False
    return mfa_required(
        (g.role for g in account.roles),
        required_roles=hogo.settings.mfa_required_roles,
        trusted_networks=hogo.settings.trusted_networks,
        client_address=client_addr,
        enrolled=False,
    )


def _principal(
    hogo: Hogo,
    account: _Account,
    ctx: RequestContext,
    *,
    credential: str,
    mfa_verified: bool,
    expires_at: dt.datetime,
    session_id: str | None = None,
    session_kind: str | None = None,
    token_id: str | None = None,
    scopes: frozenset[str] | None = None,
) -> Principal:
    return Principal(
        user_id=account.id,
        username=account.username,
        display_name=account.display_name,
        department=account.department,
        roles=account.roles,
        credential=credential,
        session_id=session_id,
        session_kind=session_kind,
        token_id=token_id,
        scopes=scopes,
        must_change_password=account.must_change_password,
        mfa_enrolled=account.mfa_enabled,
        mfa_enrollment_required=_needs_mfa_enrolment(hogo, account, ctx.client_addr),
        mfa_verified=mfa_verified,
        valid_until=account.valid_until,
        expires_at=expires_at,
    )


# --------------------------------------------------------------------------------------- login


def login(
    hogo: Hogo,
    *,
    username: str,
    password: str,
    ctx: RequestContext,
    totp: str | None = None,
    recovery_code: str | None = None,
    kind: str = "cli",
) -> LoginResult:
    """Password, then second factor. Unknown users, wrong passwords and locked accounts get the
    same answer and cost the same Argon2 verification (SEC-128)."""
    if kind not in ("web", "cli"):
        raise ValidationFailed("kind must be 'web' or 'cli'", field="kind")
    s = hogo.settings

    def work(db: Session) -> LoginResult:
        now = hogo.clock.now()
        if ctx.client_addr:
            window_start = now - dt.timedelta(seconds=s.rate_limit_window_s)
            failures = audit.count_failures_from(db, client_addr=ctx.client_addr, since=window_start)
            if failures >= s.rate_limit_failures_per_address:
                audit.record(
                    db,
                    now=now,
                    event=Event.LOGIN_RATE_LIMITED,
                    outcome=Outcome.DENIED,
                    ctx=ctx,
                    reason="too_many_failures_from_address",
                )
                raise RateLimited(
                    "too many failed logins from this address; try again later",
                    requirement="SEC-128",
                    details={"retry_after_s": s.rate_limit_window_s},
                )

        user = _user_by_name(db, username)
        pw = normalise_password(password)
        password_ok = hogo.hasher.verify(user.password_hash if user else None, pw)

        def fail(reason: str, *, count: bool = True) -> AuthenticationFailed:
            if user is not None and count:
                _count_failure(hogo, db, user, now, ctx)
            audit.record(
                db,
                now=now,
                event=Event.LOGIN_FAILED,
                outcome=Outcome.FAILURE,
                ctx=ctx,
                actor_id=user.id if user else None,
                actor_name=user.username if user else None,
                subject_user_id=user.id if user else None,
                reason=reason,
            )
            return AuthenticationFailed(GENERIC_LOGIN_FAILURE, requirement="SEC-128")

        if user is None:
            raise fail("unknown_user")
        if user.locked_until is not None and now < user.locked_until:
            raise fail("account_locked", count=False)
        if not password_ok:
            raise fail("wrong_password")
        state = account_state(
            now=now, valid_from=user.valid_from, valid_until=user.valid_until, disabled_at=user.disabled_at
        )
        if state != "active":
            raise fail(f"account_{state}", count=False)

        if (s.trusted_networks and not user.mfa_enabled
                and not is_trusted_address(ctx.client_addr, s.trusted_networks)):
            # SEC-157: from outside, a password alone is never enough — not even to enrol a device,
            # or whoever stole the password could enrol theirs.
            audit.record(
                db, now=now, event=Event.LOGIN_FAILED, outcome=Outcome.DENIED, ctx=ctx, actor_id=user.id,
                actor_name=user.username, subject_user_id=user.id, reason="mfa_not_enrolled_remote",
            )
            raise Forbidden(
                "multi-factor authentication is required from outside the trusted networks; "
                "enrol it from inside the organisation's network first",
                code="mfa_enrolment_required_inside", requirement="SEC-157",
            )

        mfa_verified = False
        if user.mfa_enabled:
            if not totp and not recovery_code:
                raise MfaRequired("enter the one-time code from your authenticator app", requirement="SEC-157")
            if totp:
                step = _verify_user_totp(hogo, user, totp, now)
                if step is None:
                    raise fail("wrong_totp")
                user.mfa_last_step = step
            else:
                assert recovery_code is not None
                if not _use_recovery_code(hogo, db, user, recovery_code, now):
                    raise fail("wrong_recovery_code")
                audit.record(
                    db, now=now, event=Event.RECOVERY_CODE_USED, outcome=Outcome.SUCCESS, ctx=ctx,
                    actor_id=user.id, actor_name=user.username, subject_user_id=user.id,
                )
            mfa_verified = True

        user.failed_attempts = 0
        user.lockout_count = 0
        user.locked_until = None
        user.last_login_at = now
        if hogo.hasher.needs_rehash(user.password_hash):
            user.password_hash = hogo.hasher.hash(pw)
        token = new_token(SESSION_PREFIX)
        session = AuthSession(
            id=str(uuid.uuid4()),
            user_id=user.id,
            token_hash=token_digest(token),
            kind=kind,
            mfa_verified=mfa_verified,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=s.session_absolute_lifetime_s),
            client_addr=ctx.client_addr,
            user_agent=(ctx.user_agent or "")[:300] or None,
        )
        db.add(session)
        sctx = dataclasses.replace(ctx, session_id=session.id)
        audit.record(
            db, now=now, event=Event.LOGIN_SUCCEEDED, outcome=Outcome.SUCCESS, ctx=sctx,
            actor_id=user.id, actor_name=user.username, subject_user_id=user.id,
            details={"kind": kind, "mfa": mfa_verified},
        )
        return LoginResult(
            token=token,
            session_id=session.id,
            expires_at=session.expires_at,
            idle_timeout_s=s.session_idle_timeout_s,
            principal=_principal(hogo, _account_of(user), sctx, credential="session", mfa_verified=mfa_verified,
                                 expires_at=session.expires_at, session_id=session.id, session_kind=kind),
        )

    return _deferred_raise(hogo, work)


def _count_failure(hogo: Hogo, db: Session, user: User, now: dt.datetime, ctx: RequestContext) -> None:
    s = hogo.settings
    user.failed_attempts += 1
    if user.failed_attempts >= s.lockout_threshold:
        user.lockout_count += 1
        period = lockout_duration(user.lockout_count, base_s=s.lockout_base_s, max_s=s.lockout_max_s)
        user.locked_until = now + period
        user.failed_attempts = 0
        audit.record(
            db, now=now, event=Event.ACCOUNT_LOCKED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=None, subject_user_id=user.id, target=f"user:{user.username}",
            reason="too_many_failed_attempts",
            details={"lockout_count": user.lockout_count, "locked_for_s": int(period.total_seconds())},
        )


def _open_secret(hogo: Hogo, user: User, sealed: bytes | None) -> str | None:
    if sealed is None:
        return None
    try:
        return hogo.keyring.open(MFA_PURPOSE, sealed, aad=f"user:{user.id}".encode()).decode()
    except SealError:
        return None


def _verify_user_totp(hogo: Hogo, user: User, code: str, now: dt.datetime) -> int | None:
    secret = _open_secret(hogo, user, user.mfa_secret)
    if secret is None:
        return None
    return totp_mod.verify(secret, code, now=now, last_step=user.mfa_last_step)


def _use_recovery_code(hogo: Hogo, db: Session, user: User, code: str, now: dt.datetime) -> bool:
    mac = hogo.keyring.mac(RECOVERY_PURPOSE, f"{user.id}:{totp_mod.normalise_recovery_code(code)}".encode())
    rows = db.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).all()
    found = None
    for row in rows:
        if constant_time_equal(row.code_mac, mac) and found is None:
            found = row
    if found is None:
        return False
    found.used_at = now
    return True


# ------------------------------------------------------------------------------ authentication


class WriteNeeded(Exception):
    """Raised by ``authenticate(..., cached=…)`` where it would have to write (to end an expired session,
    or to note activity): the caller, which does not write where it is, asks again, uncached, where it can."""


def authenticate(hogo: Hogo, token: str, ctx: RequestContext, *, conn: Connection | None = None,
                 cached: Snapshot | None = None) -> Principal:
    """Resolve a bearer token (session or API token) to a Principal, as of now.

    Reads run in a read-only transaction (``conn``: the caller's, e.g. the guard's for the rest of
    the request; otherwise one of its own); a write (ending an expired session, noting activity at
    most every ``LAST_SEEN_GRANULARITY_S``) happens only when something changed, in its own.

    ``cached``: the token's row and account come from the process's authorization cache as of
    ``conn``'s transaction (store/authz_cache.py), and nothing is written — ``WriteNeeded`` is raised
    instead. The time limits (absolute, idle, the account's validity) are checked against now either way.
    """
    if token.startswith(SESSION_PREFIX + "_"):
        return _authenticate_session(hogo, token, ctx, conn, cached)
    if token.startswith(API_TOKEN_PREFIX + "_"):
        return _authenticate_api_token(hogo, token, ctx, conn, cached)
    raise SessionExpired("not signed in", code="not_authenticated")


def _reading(hogo: Hogo, conn: Connection | None) -> contextlib.AbstractContextManager[Connection]:
    return contextlib.nullcontext(conn) if conn is not None else hogo.reading()


def _check_remote(hogo: Hogo, ctx: RequestContext, mfa_verified: bool) -> None:
    nets = hogo.settings.trusted_networks
    if nets and not mfa_verified and not is_trusted_address(ctx.client_addr, nets):
        raise Forbidden(
            "access from outside the trusted networks needs multi-factor authentication",
            code="mfa_required_for_remote",
            requirement="SEC-157",
        )


def _credential(hogo: Hogo, conn: Connection | None, cached: Snapshot | None, kind: str, digest: str,
                lookup: FastSelect, refused: Callable[[Any], bool], refusal: Callable[[], Exception]
                ) -> tuple[Any, _Account]:
    """The credential's row and its account: from the cache when given, else looked up. A refused row
    (unknown, revoked …) raises, and is not kept."""

    def load(conn: Connection) -> tuple[Any, _Account]:
        row = lookup.one_or_none(conn, {"digest": digest})
        if row is None or refused(row):
            raise refusal()
        return row, _account_from_row(conn, row)

    with _reading(hogo, conn) as c:
        if cached is None:
            return load(c)
        return cached.get((kind, digest), lambda: load(c))


def _session_refusal() -> Exception:
    return SessionExpired("your session has ended; sign in again")


def _authenticate_session(hogo: Hogo, token: str, ctx: RequestContext, given: Connection | None,
                          cached: Snapshot | None) -> Principal:
    now = hogo.clock.now()
    digest = token_digest(token)
    row, account = _credential(hogo, given, cached, "session", digest, _FAST_SESSION_BY_DIGEST,
                               lambda r: r.revoked_at is not None, _session_refusal)
    sctx = ctx.with_session(row.id)
    reason = None
    if now >= row.expires_at:
        reason = "absolute_timeout"
    elif now - row.last_seen_at >= dt.timedelta(seconds=hogo.settings.session_idle_timeout_s):
        reason = "idle_timeout"
    elif (state := account.state(now)) != "active":
        reason = f"account_{state}"
    if reason is not None:
        if cached is not None:
            raise WriteNeeded(reason)  # and decided again on the stored row: a cached one may be behind
        with hogo.unit_of_work() as db:
            ended = db.execute(
                update(AuthSession)
                .where(AuthSession.id == row.id, AuthSession.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            )
            if _rowcount(ended):  # recorded once, however many requests saw it expire
                audit.record(
                    db, now=now, event=Event.SESSION_EXPIRED, outcome=Outcome.SUCCESS, ctx=sctx,
                    actor_id=account.id, actor_name=account.username, subject_user_id=account.id, reason=reason,
                )
        raise SessionExpired("your session has ended; sign in again", requirement="ANON-21",
                             details={"reason": reason})
    _check_remote(hogo, ctx, row.mfa_verified)
    if now - row.last_seen_at >= dt.timedelta(seconds=LAST_SEEN_GRANULARITY_S):
        if cached is not None:
            raise WriteNeeded("last_seen")
        with hogo.unit_of_work() as db:
            db.execute(update(AuthSession)
                       .where(AuthSession.id == row.id, AuthSession.last_seen_at < now)
                       .values(last_seen_at=now))
        hogo.authz_cache.forget(("session", digest))  # the column is not watched: the cached row is behind
    return _principal(hogo, account, sctx, credential="session", mfa_verified=row.mfa_verified,
                      expires_at=row.expires_at, session_id=row.id, session_kind=row.kind)


def _token_refusal() -> Exception:
    return SessionExpired("the API token is not valid (unknown, revoked or expired)", code="token_invalid")


def _authenticate_api_token(hogo: Hogo, token: str, ctx: RequestContext, given: Connection | None,
                            cached: Snapshot | None) -> Principal:
    now = hogo.clock.now()
    digest = token_digest(token)
    row, account = _credential(hogo, given, cached, "token", digest, _FAST_TOKEN_BY_DIGEST,
                               lambda r: r.revoked_at is not None, _token_refusal)
    if now >= row.expires_at:
        raise _token_refusal()
    if account.state(now) != "active":
        raise SessionExpired("the account behind this token is not active", code="token_invalid",
                             requirement="SEC-129")
    _check_remote(hogo, ctx, row.mfa_verified)
    principal = _principal(hogo, account, ctx.with_session(row.id), credential="token",
                           mfa_verified=row.mfa_verified, expires_at=row.expires_at, token_id=row.id,
                           scopes=frozenset(row.scopes))
    if principal.pending_steps:
        raise Forbidden("the account must finish signing in before its tokens work", code="step_required")
    if row.last_used_at is None or now - row.last_used_at >= dt.timedelta(seconds=LAST_SEEN_GRANULARITY_S):
        if cached is not None:
            raise WriteNeeded("last_used")
        with hogo.unit_of_work() as db:
            db.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        hogo.authz_cache.forget(("token", digest))
    return principal


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def logout(hogo: Hogo, principal: Principal, ctx: RequestContext) -> None:
    if principal.session_id is None:
        raise Forbidden("only sessions log out; revoke an API token instead", code="not_a_session")
    with hogo.unit_of_work() as db:
        now = hogo.clock.now()
        db.execute(
            update(AuthSession)
            .where(AuthSession.id == principal.session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="logout")
        )
        audit.record(
            db, now=now, event=Event.LOGOUT, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=principal.user_id, actor_name=principal.username, subject_user_id=principal.user_id,
        )


def revoke_user_credentials(db: Session, user_id: int, now: dt.datetime, reason: str,
                            *, keep_session: str | None = None) -> None:
    """End every session (and with ``reason`` of disablement, token) of a user at once (SEC-129)."""
    q = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep_session:
        q = q.where(AuthSession.id != keep_session)
    db.execute(q.values(revoked_at=now, revoked_reason=reason))


# ----------------------------------------------------------------------------- self-service


def _load_self(db: Session, principal: Principal) -> User:
    user = db.get(User, principal.user_id)
    if user is None:
        raise NotFound("account not found")
    return user


def check_new_password(hogo: Hogo, password: str, *, username: str, current_hash: str | None = None) -> str:
    """Return the normalised password or raise ValidationFailed naming every problem."""
    pw = normalise_password(password)
    same = bool(current_hash) and hogo.hasher.verify(current_hash, pw)
    problems = password_problems(
        pw, username=username, policy=hogo.password_policy, common=hogo.common_passwords, previous_matches=same
    )
    if problems:
        raise ValidationFailed(
            "the new password " + "; ".join(problems),
            field="new_password",
            requirement="ANON-11",
            details={"problems": problems},
        )
    return pw


def change_password(hogo: Hogo, principal: Principal, *, old_password: str, new_password: str,
                    ctx: RequestContext) -> None:
    if principal.credential != "session":
        raise Forbidden("passwords are changed from a signed-in session, not with an API token")

    def work(db: Session) -> bool:
        now = hogo.clock.now()
        user = _load_self(db, principal)
        if not hogo.hasher.verify(user.password_hash, normalise_password(old_password)):
            _count_failure(hogo, db, user, now, ctx)
            audit.record(
                db, now=now, event=Event.PASSWORD_CHANGE_FAILED, outcome=Outcome.FAILURE, ctx=ctx,
                actor_id=user.id, actor_name=user.username, subject_user_id=user.id, reason="wrong_old_password",
            )
            raise Forbidden("the current password is wrong", code="wrong_password")
        pw = check_new_password(hogo, new_password, username=user.username, current_hash=user.password_hash)
        user.password_hash = hogo.hasher.hash(pw)
        user.must_change_password = False
        user.password_changed_at = now
        user.updated_at = now
        revoke_user_credentials(db, user.id, now, "password_changed", keep_session=principal.session_id)
        audit.record(
            db, now=now, event=Event.PASSWORD_CHANGED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=user.id, actor_name=user.username, subject_user_id=user.id,
        )
        return True

    _deferred_raise(hogo, work)


@dataclasses.dataclass(frozen=True)
class MfaEnrolment:
    otpauth_uri: str
    secret: str
    issuer: str
    account: str


def start_mfa_enrolment(hogo: Hogo, principal: Principal, ctx: RequestContext) -> MfaEnrolment:
    if principal.credential != "session":
        raise Forbidden("MFA is enrolled from a signed-in session, not with an API token")
    with hogo.unit_of_work() as db:
        now = hogo.clock.now()
        user = _load_self(db, principal)
        if user.mfa_enabled:
            raise Conflict(
                "multi-factor authentication is already set up; ask an administrator to reset it",
                code="mfa_already_enrolled",
            )
        # Showing the page again must not invalidate a QR code the user has just scanned.
        secret = None
        if user.mfa_pending_at is not None and now - user.mfa_pending_at < MFA_PENDING_REUSE:
            secret = _open_secret(hogo, user, user.mfa_pending_secret)
        if secret is None:
            secret = totp_mod.new_secret()
            user.mfa_pending_secret = hogo.keyring.seal(MFA_PURPOSE, secret.encode(),
                                                        aad=f"user:{user.id}".encode())
            user.mfa_pending_at = now
            user.updated_at = now
            audit.record(
                db, now=now, event=Event.MFA_ENROLMENT_STARTED, outcome=Outcome.SUCCESS, ctx=ctx,
                actor_id=user.id, actor_name=user.username, subject_user_id=user.id,
            )
        issuer = hogo.settings.instance_name
        return MfaEnrolment(
            otpauth_uri=totp_mod.provisioning_uri(secret, account=user.username, issuer=issuer),
            secret=secret,
            issuer=issuer,
            account=user.username,
        )


def confirm_mfa_enrolment(hogo: Hogo, principal: Principal, code: str, ctx: RequestContext) -> list[str]:
    """Confirm with a code from the app; returns fresh recovery codes (shown once, stored as HMACs)."""
    if principal.credential != "session":
        raise Forbidden("MFA is enrolled from a signed-in session, not with an API token")

    def work(db: Session) -> list[str]:
        now = hogo.clock.now()
        user = _load_self(db, principal)
        if user.mfa_enabled:
            raise Conflict("multi-factor authentication is already set up", code="mfa_already_enrolled")
        secret = _open_secret(hogo, user, user.mfa_pending_secret)
        if secret is None:
            raise Conflict("start enrolment first (hogo mfa enroll)", code="mfa_not_started")
        step = totp_mod.verify(secret, code, now=now, last_step=None)
        if step is None:
            audit.record(
                db, now=now, event=Event.MFA_ENROLLED, outcome=Outcome.FAILURE, ctx=ctx,
                actor_id=user.id, actor_name=user.username, subject_user_id=user.id, reason="wrong_code",
            )
            raise Forbidden("the code does not match; check the device's clock and try again",
                            code="mfa_code_invalid")
        user.mfa_secret = user.mfa_pending_secret
        user.mfa_pending_secret = None
        user.mfa_pending_at = None
        user.mfa_enabled = True
        user.mfa_last_step = step
        user.updated_at = now
        codes = totp_mod.new_recovery_codes()
        db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        for c in codes:
            mac = hogo.keyring.mac(RECOVERY_PURPOSE, f"{user.id}:{totp_mod.normalise_recovery_code(c)}".encode())
            db.add(RecoveryCode(user_id=user.id, code_mac=mac))
        if principal.session_id:
            db.execute(
                update(AuthSession).where(AuthSession.id == principal.session_id).values(mfa_verified=True)
            )
        audit.record(
            db, now=now, event=Event.MFA_ENROLLED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=user.id, actor_name=user.username, subject_user_id=user.id,
        )
        return codes

    return _deferred_raise(hogo, work)


def recent_sign_ins(hogo: Hogo, user_id: int, limit: int = 10) -> list[AuditEvent]:
    with hogo.unit_of_work() as db:
        return list(
            db.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.subject_user_id == user_id,
                    AuditEvent.event.in_([Event.LOGIN_SUCCEEDED.value, Event.LOGIN_FAILED.value]),
                )
                .order_by(AuditEvent.seq.desc())
                .limit(limit)
            )
        )


# --------------------------------------------------------------------------------- API tokens


@dataclasses.dataclass(frozen=True)
class CreatedToken:
    token: str
    id: str
    name: str
    scopes: tuple[str, ...]
    expires_at: dt.datetime


def create_api_token(hogo: Hogo, principal: Principal, *, name: str, scopes: list[str],
                     expires_at: dt.datetime, ctx: RequestContext) -> CreatedToken:
    if principal.credential != "session":
        raise Forbidden("API tokens are created from a signed-in session, not from another token")
    principal.require(Permission.SELF_WRITE)
    name = nfkc(name).strip()
    if not name or len(name) > 100:
        raise ValidationFailed("name must be 1–100 characters", field="name")
    if not scopes:
        raise ValidationFailed("give at least one scope", field="scopes")
    known = {p.value for p in Permission}
    for sc in scopes:
        if sc not in known:
            raise ValidationFailed(f"unknown scope {sc!r}", field="scopes", details={"known": sorted(known)})
        # Data scopes only narrow a token: what it may touch is still decided by the file's grants.
        if Permission(sc) not in principal.permissions and Permission(sc) not in DATA_PERMISSIONS:
            raise Forbidden(f"you cannot give a token the scope {sc!r}: you do not hold it",
                            requirement="SEC-131")
    now = hogo.clock.now()
    if expires_at.tzinfo is None:
        raise ValidationFailed("expiry must include a time zone", field="expires_at")
    if expires_at <= now:
        raise ValidationFailed("expiry must be in the future", field="expires_at")
    if expires_at > now + dt.timedelta(days=hogo.settings.api_token_max_days):
        raise ValidationFailed(
            f"expiry must be within {hogo.settings.api_token_max_days} days", field="expires_at"
        )
    if principal.valid_until is not None and expires_at > principal.valid_until:
        expires_at = principal.valid_until
    token = new_token(API_TOKEN_PREFIX)
    with hogo.unit_of_work() as db:
        row = ApiToken(
            id=str(uuid.uuid4()),
            user_id=principal.user_id,
            name=name,
            token_hash=token_digest(token),
            prefix=token[:10],
            scopes=sorted(set(scopes)),
            mfa_verified=principal.mfa_verified,
            created_at=now,
            expires_at=expires_at,
        )
        db.add(row)
        audit.record(
            db, now=now, event=Event.TOKEN_CREATED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=principal.user_id, actor_name=principal.username, subject_user_id=principal.user_id,
            target=f"token:{row.id}", details={"scopes": row.scopes, "name": name},
        )
        return CreatedToken(token=token, id=row.id, name=name, scopes=tuple(row.scopes), expires_at=expires_at)


def list_api_tokens(hogo: Hogo, principal: Principal) -> list[ApiToken]:
    principal.require(Permission.SELF_READ)
    with hogo.unit_of_work() as db:
        return list(
            db.scalars(
                select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.created_at)
            )
        )


def revoke_api_token(hogo: Hogo, principal: Principal, token_id: str, ctx: RequestContext) -> None:
    principal.require(Permission.SELF_WRITE)
    with hogo.unit_of_work() as db:
        row = db.get(ApiToken, token_id)
        if row is None or row.user_id != principal.user_id:
            raise NotFound("no such token")
        now = hogo.clock.now()
        if row.revoked_at is None:
            row.revoked_at = now
        audit.record(
            db, now=now, event=Event.TOKEN_REVOKED, outcome=Outcome.SUCCESS, ctx=ctx,
            actor_id=principal.user_id, actor_name=principal.username, subject_user_id=principal.user_id,
            target=f"token:{row.id}",
        )
