"""/api/v1 routes: parse → call a service → render. No rule lives here."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from hogo import __version__
from hogo.api import schemas as S
from hogo.api.deps import CtxDep, HogoDep, PrincipalDep, api_principal
from hogo.bootstrap import Hogo
from hogo.domain.dates import to_instant
from hogo.domain.roles import DEPARTMENT_SCOPED, REQUIRES_END_DATE, ROLE_PERMISSIONS, Role
from hogo.services import accounts, auth
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": S.ErrorResponse} for code in (401, 403, 404, 409, 413, 422, 429)
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)


async def actor_context(principal: Annotated[Principal, Depends(api_principal)], ctx: CtxDep) -> RequestContext:
    return dataclasses.replace(ctx, session_id=principal.session_id or principal.token_id)


ActorCtx = Annotated[RequestContext, Depends(actor_context)]


def me_out(p: Principal) -> S.MeOut:
    return S.MeOut(
        username=p.username,
        display_name=p.display_name,
        department=p.department,
        roles=[
            S.RoleOut(role=g.role.value, department=g.department, label_ja=g.role.label_ja,
                      label_en=g.role.label_en)
            for g in p.roles
        ],
        permissions=sorted(x.value for x in p.permissions),
        credential=p.credential,
        pending_steps=list(p.pending_steps),
        mfa_enrolled=p.mfa_enrolled,
        mfa_verified=p.mfa_verified,
        valid_until=p.valid_until,
        expires_at=p.expires_at,
    )


def _instant(hogo: Hogo, value: dt.date | dt.datetime | None, *, end: bool = False) -> dt.datetime | None:
    return to_instant(value, hogo.settings.timezone, end_of_day=end)


# --------------------------------------------------------------------------- health


@router.get("/health", response_model=S.HealthOut, tags=["system"])
def health(hogo: HogoDep) -> S.HealthOut:
    return S.HealthOut(status="ok", version=__version__, database=hogo.engine.dialect.name)


# ----------------------------------------------------------------------------- auth


@router.post("/auth/login", response_model=S.LoginOut, tags=["auth"])
def login(body: S.LoginIn, hogo: HogoDep, ctx: CtxDep) -> S.LoginOut:
    """Password + TOTP (or a recovery code). Answers ``mfa_required`` when the code is missing."""
    result = auth.login(
        hogo, username=body.username, password=body.password, totp=body.totp,
        recovery_code=body.recovery_code, ctx=ctx, kind="cli",
    )
    return S.LoginOut(
        token=result.token,
        session_id=result.session_id,
        expires_at=result.expires_at,
        idle_timeout_s=result.idle_timeout_s,
        pending_steps=list(result.principal.pending_steps),
        user=me_out(result.principal),
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def logout(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> Response:
    auth.logout(hogo, principal, ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/whoami", response_model=S.MeOut, tags=["auth"])
async def whoami(principal: PrincipalDep) -> S.MeOut:
    # Rendering only (the principal was resolved in the dependency): no second thread hop.
    return me_out(principal)


@router.get("/auth/sign-ins", response_model=list[S.SignInOut], tags=["auth"])
def sign_ins(hogo: HogoDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=100)] = 10
             ) -> list[S.SignInOut]:
    rows = auth.recent_sign_ins(hogo, principal.user_id, limit)
    return [S.SignInOut(ts=r.ts, outcome=r.outcome or "expired", reason=r.reason,
                        client_addr=r.client_addr) for r in rows]


@router.post("/auth/password", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def change_password(body: S.PasswordChangeIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx
                    ) -> Response:
    auth.change_password(hogo, principal, old_password=body.old_password, new_password=body.new_password, ctx=ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/mfa/enroll", response_model=S.MfaEnrolOut, tags=["auth"])
def mfa_enroll(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> S.MfaEnrolOut:
    e = auth.start_mfa_enrolment(hogo, principal, ctx)
    return S.MfaEnrolOut(otpauth_uri=e.otpauth_uri, secret=e.secret, issuer=e.issuer, account=e.account)


@router.post("/auth/mfa/confirm", response_model=S.RecoveryCodesOut, tags=["auth"])
def mfa_confirm(body: S.MfaConfirmIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx
                ) -> S.RecoveryCodesOut:
    return S.RecoveryCodesOut(recovery_codes=auth.confirm_mfa_enrolment(hogo, principal, body.code, ctx))


# --------------------------------------------------------------------------- tokens


@router.post("/tokens", response_model=S.TokenCreatedOut, status_code=201, tags=["tokens"])
def create_token(body: S.TokenCreateIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx
                 ) -> S.TokenCreatedOut:
    """The token is in this response only; hogo keeps its SHA-256."""
    expires = _instant(hogo, body.expires_at, end=True)
    assert expires is not None
    t = auth.create_api_token(hogo, principal, name=body.name, scopes=body.scopes, expires_at=expires, ctx=ctx)
    return S.TokenCreatedOut(token=t.token, id=t.id, name=t.name, scopes=list(t.scopes), expires_at=t.expires_at)


@router.get("/tokens", response_model=list[S.TokenOut], tags=["tokens"])
def list_tokens(hogo: HogoDep, principal: PrincipalDep) -> list[S.TokenOut]:
    return [S.TokenOut.model_validate(t) for t in auth.list_api_tokens(hogo, principal)]


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["tokens"])
def revoke_token(token_id: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> Response:
    auth.revoke_api_token(hogo, principal, token_id, ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ----------------------------------------------------------------------- departments


@router.get("/departments", response_model=list[S.DepartmentOut], tags=["accounts"])
def list_departments(hogo: HogoDep, principal: PrincipalDep) -> list[S.DepartmentOut]:
    return [S.DepartmentOut.model_validate(d) for d in accounts.list_departments(hogo, principal)]


@router.post("/departments", response_model=S.DepartmentOut, status_code=201, tags=["accounts"])
def create_department(body: S.DepartmentIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx
                      ) -> S.DepartmentOut:
    d = accounts.create_department(hogo, principal, code=body.code, name=body.name, parent=body.parent, ctx=ctx)
    return S.DepartmentOut.model_validate(d)


# ----------------------------------------------------------------------------- users


@router.get("/roles", response_model=list[S.RoleInfoOut], tags=["accounts"])
def list_roles(principal: PrincipalDep) -> list[S.RoleInfoOut]:
    return [
        S.RoleInfoOut(
            role=r.value, label_ja=r.label_ja, label_en=r.label_en, department_scoped=r in DEPARTMENT_SCOPED,
            requires_end_date=r in REQUIRES_END_DATE, permissions=sorted(p.value for p in ROLE_PERMISSIONS[r]),
        )
        for r in Role
    ]


@router.get("/users", response_model=list[S.UserOut], tags=["accounts"])
def list_users(
    hogo: HogoDep,
    principal: PrincipalDep,
    department: Annotated[str | None, Query(max_length=64)] = None,
    include_disabled: bool = True,
) -> list[S.UserOut]:
    return [S.UserOut.model_validate(u) for u in
            accounts.list_users(hogo, principal, department=department, include_disabled=include_disabled)]


@router.post("/users", response_model=S.UserCreatedOut, status_code=201, tags=["accounts"])
def create_user(body: S.UserCreateIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> S.UserCreatedOut:
    """Creates the account with a one-time password (in this response only) that must be changed
    at first sign-in."""
    created = accounts.create_user(
        hogo, principal, username=body.username, display_name=body.display_name, department=body.department,
        roles=body.roles, email=body.email, valid_from=_instant(hogo, body.valid_from),
        valid_until=_instant(hogo, body.valid_until, end=True), ctx=ctx,
    )
    return S.UserCreatedOut(user=S.UserOut.model_validate(created.user),
                            one_time_password=created.one_time_password)


@router.get("/users/{username}", response_model=S.UserOut, tags=["accounts"])
def get_user(username: str, hogo: HogoDep, principal: PrincipalDep) -> S.UserOut:
    return S.UserOut.model_validate(accounts.get_user(hogo, principal, username))


@router.patch("/users/{username}", response_model=S.UserOut, tags=["accounts"])
def update_user(username: str, body: S.UserUpdateIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx
                ) -> S.UserOut:
    return S.UserOut.model_validate(accounts.update_user(
        hogo, principal, username, ctx=ctx, display_name=body.display_name, email=body.email,
        department=body.department, valid_until=_instant(hogo, body.valid_until, end=True),
        clear_valid_until=body.clear_valid_until,
    ))


@router.post("/users/{username}/disable", response_model=S.UserOut, tags=["accounts"])
def disable_user(username: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                 body: S.DisableIn | None = None) -> S.UserOut:
    return S.UserOut.model_validate(
        accounts.disable_user(hogo, principal, username, reason=body.reason if body else None, ctx=ctx))


@router.post("/users/{username}/enable", response_model=S.UserOut, tags=["accounts"])
def enable_user(username: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> S.UserOut:
    return S.UserOut.model_validate(accounts.enable_user(hogo, principal, username, ctx=ctx))


@router.post("/users/{username}/unlock", response_model=S.UserOut, tags=["accounts"])
def unlock_user(username: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> S.UserOut:
    return S.UserOut.model_validate(accounts.unlock_user(hogo, principal, username, ctx=ctx))


@router.post("/users/{username}/reset-password", response_model=S.UserCreatedOut, tags=["accounts"])
def reset_password(username: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> S.UserCreatedOut:
    r = accounts.reset_password(hogo, principal, username, ctx=ctx)
    return S.UserCreatedOut(user=S.UserOut.model_validate(r.user), one_time_password=r.one_time_password)


@router.post("/users/{username}/reset-mfa", response_model=S.UserOut, tags=["accounts"])
def reset_mfa(username: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> S.UserOut:
    return S.UserOut.model_validate(accounts.reset_mfa(hogo, principal, username, ctx=ctx))


@router.post("/users/{username}/roles", response_model=S.UserOut, tags=["accounts"])
def grant_role(username: str, body: S.RoleGrantIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx
               ) -> S.UserOut:
    return S.UserOut.model_validate(accounts.grant_role(hogo, principal, username, body.role, ctx=ctx))


@router.delete("/users/{username}/roles/{role}", response_model=S.UserOut, tags=["accounts"])
def revoke_role(username: str, role: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> S.UserOut:
    return S.UserOut.model_validate(accounts.revoke_role(hogo, principal, username, role, ctx=ctx))
