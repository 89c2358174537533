"""Request and response bodies. Requests forbid unknown fields; responses never carry secrets
except the one-time values named for it (``token``, ``one_time_password``, ``recovery_codes``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hogo.domain.text import nfkc


def _nfkc_date_text(value: object) -> object:
    # Full-width digits in dates (２０２７－０３－３１) are read as what they mean; a bare date stays a
    # date (the end of that day, in the organisation's zone), not midnight at its start.
    if isinstance(value, str):
        text = nfkc(value).strip().replace("/", "-")
        if len(text) == 10:
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError("not a date (use YYYY-MM-DD)") from None
        return text
    return value


DateOrDateTime = Annotated[dt.datetime | dt.date, BeforeValidator(_nfkc_date_text)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(Out):
    code: str
    message: str
    requirement: str | None = None
    details: dict[str, object] | None = None


class ErrorResponse(Out):
    error: ErrorBody


# ---------------------------------------------------------------------------- auth


class LoginIn(In):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=32)


class RoleOut(Out):
    role: str
    department: str | None
    label_ja: str
    label_en: str


class MeOut(Out):
    username: str
    display_name: str
    department: str | None
    roles: list[RoleOut]
    permissions: list[str]
    credential: str
    pending_steps: list[str]
    mfa_enrolled: bool
    mfa_verified: bool
    valid_until: dt.datetime | None
    expires_at: dt.datetime | None


class LoginOut(Out):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    session_id: str
    expires_at: dt.datetime
    idle_timeout_s: int
    pending_steps: list[str]
    user: MeOut


class PasswordChangeIn(In):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MfaEnrolOut(Out):
    otpauth_uri: str
    secret: str
    issuer: str
    account: str


class MfaConfirmIn(In):
    code: str = Field(min_length=1, max_length=16)


class RecoveryCodesOut(Out):
    recovery_codes: list[str]


class SignInOut(Out):
    ts: dt.datetime
    outcome: str
    reason: str | None
    client_addr: str | None


class TokenCreateIn(In):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=50)
    expires_at: DateOrDateTime


class TokenCreatedOut(Out):
    token: str
    id: str
    name: str
    scopes: list[str]
    expires_at: dt.datetime


class TokenOut(Out):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


# ------------------------------------------------------------------------- accounts


class DepartmentIn(In):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(default=None, max_length=64)


class DepartmentOut(Out):
    code: str
    name: str
    parent: str | None
    members: int


class UserRoleOut(Out):
    role: str
    department: str | None
    granted_at: dt.datetime


class UserOut(Out):
    username: str
    display_name: str
    email: str | None
    department: str | None
    roles: list[UserRoleOut]
    state: str
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    mfa_enabled: bool
    must_change_password: bool
    locked_until: dt.datetime | None
    last_login_at: dt.datetime | None
    created_at: dt.datetime


class UserCreateIn(In):
    username: str = Field(min_length=1, max_length=100)
    display_name: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=64)
    roles: list[str] = Field(min_length=1, max_length=20)
    email: str | None = Field(default=None, max_length=254)
    valid_from: DateOrDateTime | None = None
    valid_until: DateOrDateTime | None = None


class UserCreatedOut(Out):
    user: UserOut
    one_time_password: str


class UserUpdateIn(In):
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    department: str | None = Field(default=None, max_length=64)
    valid_until: DateOrDateTime | None = None
    clear_valid_until: bool = False


class DisableIn(In):
    reason: str | None = Field(default=None, max_length=500)


class RoleGrantIn(In):
    role: str = Field(min_length=1, max_length=100)


class RoleInfoOut(Out):
    role: str
    label_ja: str
    label_en: str
    department_scoped: bool
    requires_end_date: bool
    permissions: list[str]


class AuditEventOut(Out):
    seq: int
    ts: dt.datetime
    event: str
    outcome: str | None
    reason: str | None
    actor_id: int | None
    actor_name: str | None
    subject_user_id: int | None
    target: str | None
    file_code: str | None
    purpose: str | None
    record_count: int
    client_addr: str | None
    session_id: str | None
    details: dict[str, object] | None
    expired: bool = False


class HealthOut(Out):
    status: str
    version: str
    database: str
