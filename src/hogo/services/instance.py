"""Creating an instance: key material, settings, schema, the first administrator, the demo organisation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hogo.bootstrap import Hogo, build
from hogo.clock import Clock
from hogo.config import CONFIG_FILE, Settings, write_settings
from hogo.crypto import create_key_file
from hogo.crypto import totp as totp_mod
from hogo.crypto.keys import KEY_FILE_NAME
from hogo.crypto.keystore import KeyStore, keystore_path
from hogo.domain.events import Event, Outcome
from hogo.domain.passwords import PasswordPolicy, load_common_passwords, password_problems
from hogo.domain.roles import Role
from hogo.domain.text import normalise_username
from hogo.errors import Conflict, ValidationFailed
from hogo.services import accounts, audit
from hogo.services.audit import RequestContext
from hogo.services.auth import MFA_PURPOSE, RECOVERY_PURPOSE
from hogo.store import db as store_db
from hogo.store.models import RecoveryCode, User

LOCAL = RequestContext(client_addr="local", user_agent="hogo init")
# Published on purpose: demo accounts are flagged, and a non-demo server refuses to serve them.
DEMO_PASSWORD = "Hogo-Demo-Pass-2026"  # noqa: S105


@dataclasses.dataclass(frozen=True)
class InitResult:
    data_dir: Path
    database_url: str
    admin: str
    one_time_password: str | None  # when no password was given
    otpauth_uri: str | None  # when a password was given: MFA is enrolled at once
    recovery_codes: tuple[str, ...]
    demo_users: tuple[str, ...]
    demo_password: str | None


def is_initialised(settings: Settings) -> bool:
    return (settings.keys_dir / KEY_FILE_NAME).exists()


def init_instance(
    settings: Settings,
    *,
    admin: str,
    admin_password: str | None = None,
    demo: bool = False,
    clock: Clock | None = None,
    passphrase: str | None = None,
) -> InitResult:
    """Create keys (mode 0600), write ``hogo.toml``, migrate the schema and create the administrator.

    With ``admin_password`` the administrator's TOTP is enrolled immediately and its URI returned;
    without, a one-time password is returned and MFA is enrolled at first login. With
    ``passphrase`` the key file is sealed by it (it must then be given to ``hogo serve``).
    """
    if is_initialised(settings):
        raise Conflict(f"an instance already exists in {settings.data_dir}", code="already_initialised")
    admin = _check_admin(settings, admin, admin_password)
    settings = settings.with_(demo=demo)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The database in here holds password hashes, sealed secrets and the access record: owner only.
    settings.data_dir.chmod(0o700)
    key_path = create_key_file(settings.keys_dir, passphrase=passphrase)
    store_path = keystore_path(settings.keys_dir)
    KeyStore(store_path).create()  # the wrapped file keys, beside the KEK, never in the database
    write_settings(settings)
    admin_created = False
    h: Hogo | None = None
    try:
        h = build(settings, clock=clock, passphrase=passphrase)
        store_db.upgrade(h.engine)
        if accounts.count_users(h):
            raise Conflict("the database already holds accounts", code="already_initialised")
        with h.unit_of_work() as s:
            audit.record(s, now=h.clock.now(), event=Event.INSTANCE_INITIALISED, outcome=Outcome.SUCCESS,
                         ctx=LOCAL, details={"demo": demo})
        created = accounts.create_user(
            h, None, username=admin, display_name="システム管理者", roles=[Role.ADMIN.value],
            password=admin_password, ctx=LOCAL,
        )
        admin_created = True
        uri = None
        codes: tuple[str, ...] = ()
        if admin_password is not None:
            uri, codes = _enrol_mfa_now(h, created.user.username)
        demo_users: tuple[str, ...] = ()
        if demo:
            demo_users = seed_demo(h)
        return InitResult(
            data_dir=settings.data_dir,
            database_url=settings.database_url,
            admin=created.user.username,
            one_time_password=None if admin_password is not None else created.one_time_password,
            otpauth_uri=uri,
            recovery_codes=codes,
            demo_users=demo_users,
            demo_password=DEMO_PASSWORD if demo else None,
        )
    except BaseException:
        if not admin_created:
            # Nothing usable was made: leave no half-made instance that blocks a retry.
            key_path.unlink(missing_ok=True)
            store_path.unlink(missing_ok=True)
            (settings.data_dir / CONFIG_FILE).unlink(missing_ok=True)
        raise
    finally:
        if h is not None:
            h.close()


def _check_admin(settings: Settings, admin: str, password: str | None) -> str:
    """Validate the administrator's name and password before anything is written."""
    try:
        name = normalise_username(admin, strict=True)
    except ValueError as exc:
        raise ValidationFailed(f"user name {exc}", field="admin") from None
    if password is not None:
        policy = PasswordPolicy(min_length=settings.password_min_length, max_length=settings.password_max_length)
        problems = password_problems(password, username=name, policy=policy, common=load_common_passwords())
        if problems:
            raise ValidationFailed("the password " + "; ".join(problems), field="password",
                                   requirement="ANON-11", details={"problems": problems})
    return name


def _enrol_mfa_now(h: Hogo, username: str) -> tuple[str, tuple[str, ...]]:
    from sqlalchemy import select

    secret = totp_mod.new_secret()
    codes = totp_mod.new_recovery_codes()
    with h.unit_of_work() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        user.mfa_secret = h.keyring.seal(MFA_PURPOSE, secret.encode(), aad=f"user:{user.id}".encode())
        user.mfa_enabled = True
        for c in codes:
            mac = h.keyring.mac(RECOVERY_PURPOSE, f"{user.id}:{totp_mod.normalise_recovery_code(c)}".encode())
            s.add(RecoveryCode(user_id=user.id, code_mac=mac))
        audit.record(s, now=h.clock.now(), event=Event.MFA_ENROLLED, outcome=Outcome.SUCCESS, ctx=LOCAL,
                     subject_user_id=user.id, target=f"user:{username}", reason="enrolled_at_init")
    return totp_mod.provisioning_uri(secret, account=username, issuer=h.settings.instance_name), tuple(codes)


# A small but realistic organisation: departments, and a user in every role.
DEMO_DEPARTMENTS = [
    ("SOMU", "総務課"),
    ("JINJI", "人事課"),
    ("KYUYO", "給与厚生課"),
    ("JOHO", "情報システム課"),
    ("KANSA", "監査室"),
]
DEMO_USERS = [
    # username, display name, department, roles, days valid (None = open-ended)
    ("gpm.sato", "佐藤 健一（総括保護管理者）", "SOMU", ["general_protection_manager"], None),
    ("iso.kobayashi", "小林 直樹（情報セキュリティ責任者）", "JOHO", ["information_security_officer"], None),
    ("pm.suzuki", "鈴木 美咲（人事課 保護管理者）", "JINJI", ["protection_manager"], None),
    ("pm.takahashi", "高橋 誠（給与厚生課 保護管理者）", "KYUYO", ["protection_manager"], None),
    ("clerk.tanaka", "田中 花子（人事課 事務取扱担当者）", "JINJI", ["clerk"], None),
    ("clerk.ito", "伊藤 翔（給与厚生課 事務取扱担当者）", "KYUYO", ["clerk", "clerk@JINJI"], None),
    ("auditor.watanabe", "渡辺 恵（監査責任者）", "KANSA", ["auditor"], None),
    ("sirt.yamamoto", "山本 大輔（SIRT）", "JOHO", ["sirt"], None),
    ("contractor.nakamura", "中村 陽子（委託先・給与計算）", "KYUYO", ["contractor"], 90),
]


def seed_demo(h: Hogo) -> tuple[str, ...]:
    import datetime as dt

    for code, name in DEMO_DEPARTMENTS:
        accounts.create_department(h, None, code=code, name=name, ctx=LOCAL)
    names = []
    for username, shown, dept, roles, days in DEMO_USERS:
        until = h.clock.now() + dt.timedelta(days=days) if days else None
        accounts.create_user(
            h, None, username=username, display_name=shown, department=dept, roles=roles,
            valid_until=until, password=DEMO_PASSWORD, is_demo=True, ctx=LOCAL,
        )
        names.append(username)
    return tuple(names)
