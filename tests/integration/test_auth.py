"""Authentication on real SQLite and PostgreSQL: ANON-11, MN-6b, MLIT-9.5.1, SEC-128, SEC-129, SEC-157, ANON-21."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select, text

from hogo.domain.events import Event
from hogo.domain.roles import Permission
from hogo.errors import (
    AuthenticationFailed,
    Forbidden,
    MfaRequired,
    RateLimited,
    SessionExpired,
    StepRequired,
    ValidationFailed,
)
from hogo.services import accounts, auth
from hogo.store.models import ApiToken, AuditEvent, AuthSession, RecoveryCode, User
from support import CTX, Instance, secret_of

NEW_PASSWORD = "Sakura-Kumo-Umi-47"


def events(inst: Instance, name: Event) -> list[AuditEvent]:
    with inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == name.value).order_by(AuditEvent.seq)))


def make_user(inst: Instance, name: str = "tanaka", roles: list[str] | None = None, **kw) -> str:
    admin = inst.admin_principal()
    if not _dept_exists(inst, "JINJI"):
        accounts.create_department(inst.hogo, admin, code="JINJI", name="人事課", ctx=CTX)
    created = accounts.create_user(inst.hogo, admin, username=name, department="JINJI",
                                   roles=roles or ["clerk"], ctx=CTX, **kw)
    return created.one_time_password


def _dept_exists(inst: Instance, code: str) -> bool:
    from hogo.store.models import Department

    with inst.hogo.unit_of_work() as db:
        return db.scalar(select(Department.id).where(Department.code == code)) is not None


def activate(inst: Instance, name: str, otp: str) -> str:
    """First login: change the one-time password and enrol MFA. Returns the TOTP secret."""
    p = auth.login(inst.hogo, username=name, password=otp, ctx=CTX).principal
    auth.change_password(inst.hogo, p, old_password=otp, new_password=NEW_PASSWORD, ctx=CTX)
    enrol = auth.start_mfa_enrolment(inst.hogo, p, CTX)
    auth.confirm_mfa_enrolment(inst.hogo, p, inst.code(enrol.secret), CTX)
    return enrol.secret


# ------------------------------------------------------------------------------ login


def test_login_needs_password_and_totp_MN_6b_MLIT_9_5_1(inst: Instance):
    with pytest.raises(MfaRequired):
        auth.login(inst.hogo, username="admin", password=inst.admin_password, ctx=CTX)
    result = inst.login()
    assert result.principal.username == "admin"
    assert result.principal.mfa_verified
    assert result.token.startswith("hgs_")
    with inst.hogo.unit_of_work() as db:
        stored = db.scalar(select(AuthSession.token_hash).where(AuthSession.id == result.session_id))
    assert stored != result.token and result.token not in (stored or "")
    assert events(inst, Event.LOGIN_SUCCEEDED)[-1].actor_name == "admin"


def test_login_names_are_matched_after_nfkc(inst: Instance):
    r = auth.login(inst.hogo, username="ＡＤＭＩＮ", password=inst.admin_password, totp=inst.next_code(), ctx=CTX)
    assert r.principal.username == "admin"


def test_unknown_user_and_wrong_password_get_the_same_answer_and_cost_SEC_128(inst: Instance, monkeypatch):
    calls: list[bool] = []
    real = inst.hogo.hasher.verify

    def counting(stored, pw):
        calls.append(stored is None)
        return real(stored, pw)

    monkeypatch.setattr(inst.hogo.hasher, "verify", counting)
    with pytest.raises(AuthenticationFailed) as unknown:
        auth.login(inst.hogo, username="nobody", password="whatever-123456", ctx=CTX)
    with pytest.raises(AuthenticationFailed) as wrong:
        auth.login(inst.hogo, username="admin", password="whatever-123456", ctx=CTX)
    assert type(unknown.value) is type(wrong.value) is AuthenticationFailed
    assert (unknown.value.code, unknown.value.message) == (wrong.value.code, wrong.value.message)
    # One Argon2 verification on each path (against a dummy hash for the unknown user).
    assert calls == [True, False]
    reasons = [e.reason for e in events(inst, Event.LOGIN_FAILED)]
    assert reasons == ["unknown_user", "wrong_password"]


def test_lockout_after_five_failures_for_a_growing_period_SEC_128(inst: Instance):
    def fail_times(n: int) -> None:
        for _ in range(n):
            with pytest.raises(AuthenticationFailed):
                auth.login(inst.hogo, username="admin", password="not-the-password", ctx=CTX)

    fail_times(5)
    locked = events(inst, Event.ACCOUNT_LOCKED)
    assert len(locked) == 1 and locked[0].details["locked_for_s"] == 60
    # The right password does not open a locked account, and the answer does not say it is locked.
    with pytest.raises(AuthenticationFailed) as e:
        inst.login()
    assert e.value.message == auth.GENERIC_LOGIN_FAILURE
    inst.clock.advance(seconds=61)
    fail_times(5)
    assert events(inst, Event.ACCOUNT_LOCKED)[-1].details["locked_for_s"] == 120
    inst.clock.advance(seconds=121)
    assert inst.login().principal.username == "admin"  # success resets the counters
    fail_times(5)
    assert events(inst, Event.ACCOUNT_LOCKED)[-1].details["locked_for_s"] == 60


def test_administrator_unlocks_a_locked_account(inst: Instance):
    otp = make_user(inst)
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            auth.login(inst.hogo, username="tanaka", password="wrong-password-x", ctx=CTX)
    admin = inst.admin_principal()
    assert accounts.get_user(inst.hogo, admin, "tanaka").state == "locked"
    accounts.unlock_user(inst.hogo, admin, "tanaka", ctx=CTX)
    assert auth.login(inst.hogo, username="tanaka", password=otp, ctx=CTX).principal.username == "tanaka"
    assert events(inst, Event.USER_UNLOCKED)[-1].actor_name == "admin"


def test_rate_limit_by_client_address_SEC_128(inst: Instance):
    attacker = dataclasses.replace(CTX, client_addr="198.51.100.7")
    limit = inst.hogo.settings.rate_limit_failures_per_address
    for i in range(limit):
        with pytest.raises(AuthenticationFailed):
            auth.login(inst.hogo, username=f"user{i}", password="guess-guess-guess", ctx=attacker)
    with pytest.raises(RateLimited):
        auth.login(inst.hogo, username="admin", password=inst.admin_password, totp=inst.next_code(), ctx=attacker)
    assert events(inst, Event.LOGIN_RATE_LIMITED)
    # Other addresses are unaffected; the window passes.
    assert inst.login().principal.username == "admin"
    inst.clock.advance(seconds=inst.hogo.settings.rate_limit_window_s + 1)
    auth.login(inst.hogo, username="admin", password=inst.admin_password, totp=inst.next_code(), ctx=attacker)


def test_wrong_or_replayed_totp_is_refused_and_counted(inst: Instance):
    with pytest.raises(AuthenticationFailed):
        auth.login(inst.hogo, username="admin", password=inst.admin_password, totp="000000", ctx=CTX)
    code = inst.next_code()
    auth.login(inst.hogo, username="admin", password=inst.admin_password, totp=code, ctx=CTX)
    with pytest.raises(AuthenticationFailed):
        auth.login(inst.hogo, username="admin", password=inst.admin_password, totp=code, ctx=CTX)
    assert [e.reason for e in events(inst, Event.LOGIN_FAILED)] == ["wrong_totp", "wrong_totp"]
    with inst.hogo.unit_of_work() as db:
        # The success in between reset the counter; the replay counts again.
        assert db.scalar(select(User.failed_attempts).where(User.username == "admin")) == 1


def test_recovery_codes_work_once_and_are_stored_hashed(inst: Instance):
    code = inst.recovery_codes[0]
    r = auth.login(inst.hogo, username="admin", password=inst.admin_password, recovery_code=code, ctx=CTX)
    assert r.principal.mfa_verified
    with pytest.raises(AuthenticationFailed):
        auth.login(inst.hogo, username="admin", password=inst.admin_password, recovery_code=code, ctx=CTX)
    with inst.hogo.unit_of_work() as db:
        macs = db.scalars(select(RecoveryCode.code_mac)).all()
    assert len(macs) == 10 and all(code.replace("-", "") not in m for m in macs)
    assert events(inst, Event.RECOVERY_CODE_USED)


# ---------------------------------------------------------------- first login: forced steps


def test_new_account_must_change_one_time_password_and_enrol_mfa_ANON_11(inst: Instance):
    otp = make_user(inst)
    r = auth.login(inst.hogo, username="tanaka", password=otp, ctx=CTX)
    p = r.principal
    assert p.pending_steps == ("change_password", "enroll_mfa")
    with pytest.raises(StepRequired):
        p.require(Permission.DEPT_READ)
    with pytest.raises(ValidationFailed) as e:
        auth.change_password(inst.hogo, p, old_password=otp, new_password="tanaka2026tanaka", ctx=CTX)
    assert "user name" in e.value.message
    with pytest.raises(ValidationFailed) as e:
        auth.change_password(inst.hogo, p, old_password=otp, new_password=otp, ctx=CTX)
    assert "differ from the current password" in e.value.message
    auth.change_password(inst.hogo, p, old_password=otp, new_password=NEW_PASSWORD, ctx=CTX)
    p = auth.authenticate(inst.hogo, r.token, CTX)
    assert p.pending_steps == ("enroll_mfa",)
    enrol = auth.start_mfa_enrolment(inst.hogo, p, CTX)
    assert enrol.otpauth_uri.startswith("otpauth://totp/") and secret_of(enrol.otpauth_uri) == enrol.secret
    # Reloading the enrolment page shortly after shows the same secret (a scanned QR code stays valid).
    assert auth.start_mfa_enrolment(inst.hogo, p, CTX).secret == enrol.secret
    with pytest.raises(Forbidden):
        auth.confirm_mfa_enrolment(inst.hogo, p, "123456" if inst.code(enrol.secret) != "123456" else "654321",
                                   CTX)
    codes = auth.confirm_mfa_enrolment(inst.hogo, p, inst.code(enrol.secret), CTX)
    assert len(codes) == 10
    p = auth.authenticate(inst.hogo, r.token, CTX)
    assert p.pending_steps == () and p.mfa_verified
    p.require(Permission.DEPT_READ)
    # From now on the second factor is required at login.
    with pytest.raises(MfaRequired):
        auth.login(inst.hogo, username="tanaka", password=NEW_PASSWORD, ctx=CTX)
    assert auth.login(inst.hogo, username="tanaka", password=NEW_PASSWORD, totp=inst.next_code(enrol.secret),
                      ctx=CTX).principal.pending_steps == ()
    kinds = [e.event for e in events(inst, Event.PASSWORD_CHANGED) + events(inst, Event.MFA_ENROLLED)]
    assert Event.PASSWORD_CHANGED.value in kinds and Event.MFA_ENROLLED.value in kinds


def test_mfa_can_be_optional_per_role_when_configured(inst: Instance):
    otp = make_user(inst)
    inst.hogo.settings = inst.hogo.settings.with_(mfa_required_roles=("admin",))
    p = auth.login(inst.hogo, username="tanaka", password=otp, ctx=CTX).principal
    assert p.pending_steps == ("change_password",)


def test_remote_access_always_needs_mfa_when_trusted_networks_are_set_SEC_157(inst: Instance):
    otp = make_user(inst)
    inst.hogo.settings = inst.hogo.settings.with_(mfa_required_roles=(), trusted_networks=("10.0.0.0/8",))
    inside = dataclasses.replace(CTX, client_addr="10.1.2.3")
    outside = dataclasses.replace(CTX, client_addr="203.0.113.5")
    p_in = auth.login(inst.hogo, username="tanaka", password=otp, ctx=inside).principal
    assert p_in.pending_steps == ("change_password",)
    # From outside, a password alone does not even allow enrolling a device.
    with pytest.raises(Forbidden) as refused:
        auth.login(inst.hogo, username="tanaka", password=otp, ctx=outside)
    assert refused.value.requirement == "SEC-157"
    assert events(inst, Event.LOGIN_FAILED)[-1].reason == "mfa_not_enrolled_remote"
    # A session opened inside without MFA cannot be carried outside.
    r_in = auth.login(inst.hogo, username="tanaka", password=otp, ctx=inside)
    with pytest.raises(Forbidden) as e:
        auth.authenticate(inst.hogo, r_in.token, outside)
    assert e.value.requirement == "SEC-157"


# ------------------------------------------------------------------------------ sessions


def test_idle_session_ends_after_fifteen_minutes_ANON_21(inst: Instance):
    r = inst.login()
    inst.clock.advance(minutes=14)
    auth.authenticate(inst.hogo, r.token, CTX)  # activity keeps it alive
    inst.clock.advance(minutes=14)
    auth.authenticate(inst.hogo, r.token, CTX)
    inst.clock.advance(minutes=15)
    with pytest.raises(SessionExpired) as e:
        auth.authenticate(inst.hogo, r.token, CTX)
    assert e.value.details["reason"] == "idle_timeout"
    with pytest.raises(SessionExpired):  # and it stays ended
        auth.authenticate(inst.hogo, r.token, CTX)
    assert events(inst, Event.SESSION_EXPIRED)[-1].reason == "idle_timeout"


def test_absolute_lifetime_forces_a_new_login_ANON_21(inst: Instance):
    r = inst.login()
    for _ in range(40):  # 40 × 14 min > the 8-hour lifetime
        inst.clock.advance(minutes=14)
        try:
            auth.authenticate(inst.hogo, r.token, CTX)
        except SessionExpired as e:
            assert e.details["reason"] == "absolute_timeout"
            break
    else:
        pytest.fail("session outlived its absolute lifetime")
    assert inst.clock.now() - r.principal.expires_at < dt.timedelta(minutes=15)


def test_logout_revokes_the_session(inst: Instance):
    r = inst.login()
    auth.logout(inst.hogo, r.principal, CTX)
    with pytest.raises(SessionExpired):
        auth.authenticate(inst.hogo, r.token, CTX)
    assert events(inst, Event.LOGOUT)


def test_disabling_an_account_ends_its_sessions_and_tokens_at_once_SEC_129(inst: Instance):
    otp = make_user(inst)
    secret = activate(inst, "tanaka", otp)
    r = auth.login(inst.hogo, username="tanaka", password=NEW_PASSWORD, totp=inst.next_code(secret), ctx=CTX)
    tok = auth.create_api_token(inst.hogo, r.principal, name="script", scopes=["self:account:read"],
                                expires_at=inst.clock.now() + dt.timedelta(days=30), ctx=CTX)
    auth.authenticate(inst.hogo, tok.token, CTX)
    admin = inst.admin_principal()
    accounts.disable_user(inst.hogo, admin, "tanaka", reason="退職", ctx=CTX)
    with pytest.raises(SessionExpired):
        auth.authenticate(inst.hogo, r.token, CTX)
    with pytest.raises(SessionExpired):
        auth.authenticate(inst.hogo, tok.token, CTX)
    with pytest.raises(AuthenticationFailed):
        auth.login(inst.hogo, username="tanaka", password=NEW_PASSWORD, totp=inst.next_code(secret), ctx=CTX)
    ev = events(inst, Event.USER_DISABLED)[-1]
    assert ev.actor_name == "admin" and ev.details["reason"] == "退職"
    # Re-enabling does not resurrect old sessions or tokens.
    accounts.enable_user(inst.hogo, admin, "tanaka", ctx=CTX)
    with pytest.raises(SessionExpired):
        auth.authenticate(inst.hogo, tok.token, CTX)


def test_expiry_of_the_validity_period_takes_effect_on_live_sessions_SEC_129(inst: Instance):
    until = inst.clock.now() + dt.timedelta(hours=1)
    otp = make_user(inst, "yamada", roles=["contractor"], valid_until=until)
    secret = activate(inst, "yamada", otp)
    r = auth.login(inst.hogo, username="yamada", password=NEW_PASSWORD, totp=inst.next_code(secret), ctx=CTX)
    while inst.clock.now() + dt.timedelta(minutes=10) < until:  # an active user, right up to the end
        inst.clock.advance(minutes=10)
        auth.authenticate(inst.hogo, r.token, CTX)
    inst.clock.set(until)
    with pytest.raises(SessionExpired) as e:
        auth.authenticate(inst.hogo, r.token, CTX)
    assert e.value.details["reason"] == "account_expired"


# -------------------------------------------------------------------------------- tokens


def test_api_tokens_are_scoped_expiring_shown_once_and_stored_hashed(inst: Instance):
    r = inst.login()
    t = auth.create_api_token(inst.hogo, r.principal, name="nightly", scopes=["account:user:read"],
                              expires_at=inst.clock.now() + dt.timedelta(days=7), ctx=CTX)
    assert t.token.startswith("hgt_")
    p = auth.authenticate(inst.hogo, t.token, CTX)
    assert p.can(Permission.ACCOUNT_READ)
    assert not p.can(Permission.ACCOUNT_WRITE)  # the admin holds it, the token does not
    with pytest.raises(Forbidden):
        accounts.create_department(inst.hogo, p, code="X1", name="x", ctx=CTX)
    listed = auth.list_api_tokens(inst.hogo, r.principal)
    assert [x.id for x in listed] == [t.id] and not hasattr(listed[0], "token")
    with inst.hogo.unit_of_work() as db:
        assert db.scalar(select(ApiToken.token_hash)) != t.token
    # Tokens cannot mint tokens; scopes beyond one's own permissions are refused.
    with pytest.raises(Forbidden):
        auth.create_api_token(inst.hogo, p, name="x", scopes=["account:user:read"],
                              expires_at=inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    with pytest.raises(Forbidden):
        auth.create_api_token(inst.hogo, r.principal, name="x", scopes=["audit:event:read"],
                              expires_at=inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    with pytest.raises(ValidationFailed):
        auth.create_api_token(inst.hogo, r.principal, name="x", scopes=["account:user:read"],
                              expires_at=inst.clock.now() + dt.timedelta(days=400), ctx=CTX)
    inst.clock.advance(days=7)
    with pytest.raises(SessionExpired):
        auth.authenticate(inst.hogo, t.token, CTX)


def test_revoked_token_stops_working(inst: Instance):
    r = inst.login()
    t = auth.create_api_token(inst.hogo, r.principal, name="x", scopes=["self:account:read"],
                              expires_at=inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    auth.revoke_api_token(inst.hogo, r.principal, t.id, CTX)
    with pytest.raises(SessionExpired):
        auth.authenticate(inst.hogo, t.token, CTX)


# ------------------------------------------------------------------- secrets never at rest


def test_no_password_totp_secret_or_token_is_stored_or_recorded_in_plaintext(inst: Instance):
    otp = make_user(inst)
    secret = activate(inst, "tanaka", otp)
    r = auth.login(inst.hogo, username="tanaka", password=NEW_PASSWORD, totp=inst.next_code(secret), ctx=CTX)
    with pytest.raises(AuthenticationFailed):
        auth.login(inst.hogo, username="tanaka", password="Typo-" + NEW_PASSWORD, ctx=CTX)
    dump = _dump_database(inst)
    for needle in (otp, NEW_PASSWORD, "Typo-" + NEW_PASSWORD, secret, r.token, inst.admin_password,
                   inst.admin_totp_secret):
        assert needle not in dump, "a secret is stored in plaintext"


def _dump_database(inst: Instance) -> str:
    out = []
    with inst.hogo.engine.connect() as conn:
        for table in ("users", "auth_sessions", "api_tokens", "recovery_codes", "audit_events"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                out.append(" ".join(str(v) for v in row))
    return "\n".join(out)
