"""The web UI: Jinja2 pages with htmx, over the same services as the API. No rule lives here.

Sign-in (MN-6b, MLIT-9.5.1, SEC-128), forced password change (ANON-11), MFA enrolment (SEC-157),
idle and absolute session timeouts (ANON-21), prompt effect of disabling (SEC-129), account
administration for administrators only (SEC-150) where nobody acts on their own account (SEC-19).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from hogo.api.deps import request_context
from hogo.bootstrap import Hogo
from hogo.domain.dates import to_instant
from hogo.domain.roles import DEPARTMENT_SCOPED, REQUIRES_END_DATE, Permission, Role
from hogo.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    HogoError,
    MfaRequired,
    NotFound,
    RateLimited,
    SessionExpired,
    ValidationFailed,
)
from hogo.services import accounts, auth
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.web import security as sec
from hogo.web.i18n import Translator, pick_lang

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
MAX_FIELD = 1024
LOGIN_MESSAGES = {"idle": "login.idle", "expired": "login.expired", "logged_out": "login.logged_out",
                  "remote_mfa": "login.remote_mfa"}
HOME_MESSAGES = {"password_changed": "pw.changed"}
USER_ACTIONS = ("disable", "enable", "unlock", "reset-password", "reset-mfa", "grant-role", "revoke-role")

_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_env)
router = APIRouter(include_in_schema=False)


# ------------------------------------------------------------------------------ plumbing


class WebRedirect(Exception):
    """Leave the current page for ``url`` (303, or ``HX-Redirect`` for htmx requests)."""

    def __init__(self, url: str, *, clear_session: bool = False) -> None:
        super().__init__(url)
        self.url = url
        self.clear_session = clear_session


class WebDenied(Exception):
    """A 403 page; nothing was changed."""

    def __init__(self, message_key: str = "error.forbidden") -> None:
        super().__init__(message_key)
        self.message_key = message_key


def _hogo(request: Request) -> Hogo:
    hogo: Hogo = request.app.state.hogo
    return hogo


def _t(request: Request) -> Translator:
    return Translator(pick_lang(request.cookies.get(sec.LANG_COOKIE)))


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _actor_ctx(request: Request, principal: Principal) -> RequestContext:
    return dataclasses.replace(request_context(request), session_id=principal.session_id)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


class _Formatter:
    """Times in the organisation's zone (settings.timezone, Asia/Tokyo by default)."""

    def __init__(self, tz_name: str) -> None:
        self.tz = ZoneInfo(tz_name)

    def when(self, value: dt.datetime | None) -> str:
        if value is None:
            return "—"
        return value.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z")

    def until(self, value: dt.datetime | None) -> str:
        """``valid_until`` is the first instant after the last valid day: show that day."""
        if value is None:
            return ""
        local = value.astimezone(self.tz)
        if local.time() == dt.time(0, 0):
            return (local - dt.timedelta(days=1)).date().isoformat()
        return local.strftime("%Y-%m-%d %H:%M %Z")


def render(request: Request, name: str, *, principal: Principal | None = None, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    hogo = _hogo(request)
    t = _t(request)
    csrf = sec.session_csrf_token(hogo, principal.session_id) if principal and principal.session_id else ""
    full: dict[str, Any] = {
        "t": t,
        "lang": t.lang,
        "principal": principal,
        "ready": bool(principal and not principal.pending_steps),
        "is_admin": bool(principal and principal.can(Permission.ACCOUNT_WRITE)),
        "may_alerts": bool(principal and principal.can(Permission.ALERT_READ)),
        "csrf": csrf,
        "path": request.url.path,
        "fmt": _Formatter(hogo.settings.timezone),
        "instance_name": hogo.settings.instance_name,
    }
    full.update(context)
    response = templates.TemplateResponse(request, name, full, status_code=status, headers=headers)
    _no_store(response)
    return response


# --------------------------------------------------------------------------- dependencies


def session_principal(request: Request) -> Principal:
    """The signed-in person, as of now: every request re-checks the session and the account
    (idle / absolute timeout ANON-21, disabled or expired account SEC-129)."""
    token = request.cookies.get(sec.SESSION_COOKIE)
    if not token:
        raise WebRedirect("/login")
    try:
        principal = auth.authenticate(_hogo(request), token, request_context(request))
    except SessionExpired as exc:
        reason = exc.details.get("reason")
        raise WebRedirect("/login?m=" + ("idle" if reason == "idle_timeout" else "expired"),
                          clear_session=True) from None
    except Forbidden:  # SEC-157: this session may not be used from outside the trusted networks
        raise WebRedirect("/login?m=remote_mfa", clear_session=True) from None
    if principal.credential != "session" or principal.session_id is None:
        raise WebRedirect("/login", clear_session=True)
    return principal


async def ready_principal(principal: Principal = Depends(session_principal)) -> Principal:
    """Until the forced steps are done, every page leads to them (ANON-11, SEC-157)."""
    steps = principal.pending_steps
    if "change_password" in steps:
        raise WebRedirect("/account/password")
    if "enroll_mfa" in steps:
        raise WebRedirect("/account/mfa")
    return principal


async def admin_principal(principal: Principal = Depends(ready_principal)) -> Principal:
    """Administration pages: administrators only (SEC-150); default deny."""
    if not principal.can(Permission.ACCOUNT_WRITE):
        raise WebDenied()
    return principal


async def form_data(request: Request) -> FormData:
    return await request.form()


def csrf_form(request: Request, principal: Principal = Depends(session_principal),
              form: FormData = Depends(form_data)) -> FormData:
    """Every signed-in POST: Origin (when sent) and the per-session CSRF token, or 403."""
    if not sec.session_csrf_ok(_hogo(request), request, form, principal.session_id):
        raise WebDenied("error.csrf")
    return form


async def _on_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebRedirect)
    response: Response
    if _is_htmx(request):
        response = Response(status_code=200, headers={"HX-Redirect": exc.url})
    else:
        response = RedirectResponse(exc.url, status_code=303)
    if exc.clear_session:
        sec.clear_session_cookie(response, _hogo(request), request)
    return _no_store(response)


async def _on_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebDenied)
    if _is_htmx(request):
        return render(request, "partials/error_body.html", status=403, message_key=exc.message_key,
                      headers={"HX-Retarget": "#main", "HX-Reswap": "innerHTML"})
    return render(request, "error.html", status=403, message_key=exc.message_key,
                  title_key="error.forbidden_title")


# ---------------------------------------------------------------------------------- sign-in


def _login_page(request: Request, *, status: int = 200, error_key: str | None = None,
                message_key: str | None = None, username: str = "", need_code: bool = False) -> Response:
    token = sec.new_login_csrf()
    response = render(request, "login.html", status=status, login_csrf=token, error_key=error_key,
                      message_key=message_key, username=username, need_code=need_code)
    sec.set_login_csrf_cookie(response, _hogo(request), request, token)
    return response


@router.get("/login")
def login_page(request: Request, m: str | None = None) -> Response:
    stale = False
    if request.cookies.get(sec.SESSION_COOKIE):
        try:
            session_principal(request)
        except WebRedirect:
            stale = True
        else:
            return _no_store(RedirectResponse("/", status_code=303))
    response = _login_page(request, message_key=LOGIN_MESSAGES.get(m or ""))
    if stale:
        sec.clear_session_cookie(response, _hogo(request), request)
    return response


@router.post("/login")
def login_submit(request: Request, form: FormData = Depends(form_data)) -> Response:
    """MN-6b, MLIT-9.5.1, SEC-128: one answer for unknown user, wrong password and locked account."""
    hogo = _hogo(request)
    if not sec.login_csrf_ok(request, form):
        raise WebDenied("error.cookie_insecure" if sec.secure_cookie_lost(hogo, request) else "error.csrf")
    username = _field(form, "username").strip()
    try:
        result = auth.login(
            hogo,
            username=username,
            password=_field(form, "password"),
            totp=_field(form, "totp").strip() or None,
            recovery_code=_field(form, "recovery_code").strip() or None,
            ctx=request_context(request),
            kind="web",
        )
    except MfaRequired:
        return _login_page(request, status=401, message_key="login.mfa_required", username=username,
                           need_code=True)
    except RateLimited:
        return _login_page(request, status=429, error_key="login.rate_limited", username=username)
    except Forbidden:  # SEC-157: no MFA enrolled yet, signing in from outside the trusted networks
        return _login_page(request, status=403, error_key="login.remote_mfa", username=username)
    except (AuthenticationFailed, ValidationFailed):
        return _login_page(request, status=401, error_key="login.failed", username=username)
    steps = result.principal.pending_steps
    target = ("/account/password" if "change_password" in steps
              else "/account/mfa" if "enroll_mfa" in steps else "/")
    response = RedirectResponse(target, status_code=303)
    sec.set_session_cookie(response, hogo, request, result.token)
    sec.clear_login_csrf_cookie(response, hogo, request)
    return _no_store(response)


@router.post("/logout")
def logout(request: Request, principal: Principal = Depends(session_principal),
           form: FormData = Depends(csrf_form)) -> Response:
    """ANON-21: signing out ends the session on the server, not only in the browser."""
    hogo = _hogo(request)
    auth.logout(hogo, principal, _actor_ctx(request, principal))
    response = RedirectResponse("/login?m=logged_out", status_code=303)
    sec.clear_session_cookie(response, hogo, request)
    return _no_store(response)


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str | None = None) -> Response:
    response = RedirectResponse(sec.safe_next(next), status_code=303)
    response.set_cookie(sec.LANG_COOKIE, pick_lang(lang), max_age=sec.LANG_MAX_AGE_S, path="/",
                        httponly=True, samesite="lax", secure=sec.cookie_secure(_hogo(request), request))
    return _no_store(response)


# ------------------------------------------------------------------------------------ home


@router.get("/")
def home(request: Request, principal: Principal = Depends(ready_principal), m: str | None = None) -> Response:
    hogo = _hogo(request)
    sign_ins = auth.recent_sign_ins(hogo, principal.user_id, 10)
    return render(
        request, "home.html", principal=principal, sign_ins=sign_ins,
        idle_minutes=max(1, hogo.settings.session_idle_timeout_s // 60),
        message_key=HOME_MESSAGES.get(m or ""),
    )


# ---------------------------------------------------------------------- forced steps


def _password_page(request: Request, principal: Principal, *, status: int = 200,
                   errors: dict[str, str] | None = None, problems: list[str] | None = None) -> Response:
    return render(request, "password.html", principal=principal, status=status, errors=errors or {},
                  problems=problems or [], forced="change_password" in principal.pending_steps,
                  min_length=_hogo(request).settings.password_min_length)


@router.get("/account/password")
def password_page(request: Request, principal: Principal = Depends(session_principal)) -> Response:
    return _password_page(request, principal)


@router.post("/account/password")
def password_submit(request: Request, principal: Principal = Depends(session_principal),
                    form: FormData = Depends(csrf_form)) -> Response:
    """ANON-11: the policy is the service's; its problems are shown next to the field."""
    t = _t(request)
    current = _field(form, "current_password")
    new = _field(form, "new_password")
    if not current:
        return _password_page(request, principal, status=422, errors={"current_password": t("err.required")})
    if new != _field(form, "confirm_password"):
        return _password_page(request, principal, status=422, errors={"confirm_password": t("pw.mismatch")})
    try:
        auth.change_password(_hogo(request), principal, old_password=current, new_password=new,
                             ctx=_actor_ctx(request, principal))
    except ValidationFailed as exc:
        problems = [t.password_problem(p) for p in exc.details.get("problems", [])] or [t.error(exc)]
        return _password_page(request, principal, status=422, problems=problems)
    except Forbidden as exc:
        key = "pw.wrong_current" if exc.code == "wrong_password" else None
        return _password_page(request, principal, status=403,
                              errors={"current_password": t(key) if key else t.error(exc)})
    if "enroll_mfa" in principal.pending_steps:
        return _no_store(RedirectResponse("/account/mfa", status_code=303))
    return _no_store(RedirectResponse("/?m=password_changed", status_code=303))


def _mfa_page(request: Request, principal: Principal, *, status: int = 200, error_key: str | None = None
              ) -> Response:
    try:
        enrolment = auth.start_mfa_enrolment(_hogo(request), principal, _actor_ctx(request, principal))
    except Conflict:  # already enrolled
        return _no_store(RedirectResponse("/", status_code=303))
    qr = segno.make(enrolment.otpauth_uri, error="m").svg_data_uri(scale=5)
    secret_groups = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
    return render(request, "mfa.html", principal=principal, status=status, qr=qr, enrolment=enrolment,
                  secret_groups=secret_groups, error_key=error_key)


@router.get("/account/mfa")
def mfa_page(request: Request, principal: Principal = Depends(session_principal)) -> Response:
    """SEC-157: a new secret is shown as a QR code and as text, confirmed with a code from the app."""
    if "change_password" in principal.pending_steps:
        return _no_store(RedirectResponse("/account/password", status_code=303))
    if principal.mfa_enrolled:
        return _no_store(RedirectResponse("/", status_code=303))
    return _mfa_page(request, principal)


@router.post("/account/mfa")
def mfa_confirm(request: Request, principal: Principal = Depends(session_principal),
                form: FormData = Depends(csrf_form)) -> Response:
    if principal.mfa_enrolled:
        return _no_store(RedirectResponse("/", status_code=303))
    code = "".join(_field(form, "code").split())
    try:
        codes = auth.confirm_mfa_enrolment(_hogo(request), principal, code, _actor_ctx(request, principal))
    except (Forbidden, Conflict) as exc:
        key = "mfa.not_started" if exc.code == "mfa_not_started" else "mfa.invalid"
        if _is_htmx(request):  # keep the QR code on the page; replace only the form
            return render(request, "partials/mfa_confirm.html", principal=principal, error_key=key)
        return _mfa_page(request, principal, status=422, error_key=key)
    if _is_htmx(request):
        return render(request, "partials/mfa_codes.html", principal=principal, codes=codes,
                      headers={"HX-Retarget": "#main", "HX-Reswap": "innerHTML"})
    return render(request, "mfa_codes.html", principal=principal, codes=codes)


# ---------------------------------------------------------------------------- administration


def _role_choices(t: Translator) -> list[dict[str, Any]]:
    return [{"value": r.value, "label": t.role(r), "scoped": r in DEPARTMENT_SCOPED,
             "needs_end": r in REQUIRES_END_DATE} for r in Role]


def _error_field(exc: HogoError, default: str | None) -> str | None:
    by_code = {"user_exists": "username", "department_exists": "code", "department_not_found": "department"}
    field = exc.details.get("field") if isinstance(exc.details.get("field"), str) else None
    return by_code.get(exc.code) or field or default


def _users_page(request: Request, principal: Principal, *, status: int = 200, **context: Any) -> Response:
    hogo = _hogo(request)
    t = _t(request)
    context.setdefault("values", {"roles": []})
    context.setdefault("errors", {})
    context.setdefault("created", None)
    context.setdefault("notice", None)
    context.setdefault("action_error", None)
    context.setdefault("one_time", None)
    context.setdefault("one_time_user", None)
    return render(
        request, "admin_users.html", principal=principal, status=status,
        users=accounts.list_users(hogo, principal), departments=accounts.list_departments(hogo, principal),
        role_choices=_role_choices(t), **context,
    )


@router.get("/admin/users")
def users_page(request: Request, principal: Principal = Depends(admin_principal)) -> Response:
    return _users_page(request, principal)


def _date_field(request: Request, form: FormData, name: str) -> dt.datetime | None:
    text = _field(form, name).strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("not a date", field=name, code="bad_date") from None
    return to_instant(day, _hogo(request).settings.timezone, end_of_day=True)


@router.post("/admin/users")
def users_create(request: Request, principal: Principal = Depends(admin_principal),
                 form: FormData = Depends(csrf_form)) -> Response:
    """Creates an account with a one-time password, shown once (SEC-129)."""
    t = _t(request)
    username = _field(form, "username").strip()
    display_name = _field(form, "display_name").strip()
    department = _field(form, "department").strip()
    roles = [r for r in form.getlist("roles") if isinstance(r, str)][:20]
    values: dict[str, Any] = {"username": username, "display_name": display_name, "department": department,
                              "roles": roles, "valid_until": _field(form, "valid_until").strip()}
    try:
        if not username:
            raise ValidationFailed("required", field="username", code="required")
        created = accounts.create_user(
            _hogo(request), principal, username=username, display_name=display_name or None,
            department=department or None, roles=roles, valid_until=_date_field(request, form, "valid_until"),
            ctx=_actor_ctx(request, principal),
        )
    except (ValidationFailed, Conflict, NotFound, Forbidden) as exc:
        field = _error_field(exc, "form") or "form"
        return _users_page(request, principal, status=exc.status, values=values,
                           errors={field: t.error(exc)})
    return _users_page(request, principal, status=201, created=created,
                       notice=t("users.created", name=created.user.username))


@router.post("/admin/users/{username}/{action}")
def users_action(request: Request, username: str, action: str, principal: Principal = Depends(admin_principal),
                 form: FormData = Depends(csrf_form)) -> Response:
    """Per-user actions; with htmx the answer is the user's row. SEC-19: never on oneself."""
    hogo = _hogo(request)
    t = _t(request)
    if action not in USER_ACTIONS:
        return render(request, "error.html", principal=principal, status=404, message_key="error.not_found",
                      title_key="error.title")
    ctx = _actor_ctx(request, principal)
    one_time: str | None = None
    error: str | None = None
    error_status = 200
    view: accounts.UserView | None = None
    try:
        if action == "disable":
            view = accounts.disable_user(hogo, principal, username, reason=_field(form, "reason").strip() or None,
                                         ctx=ctx)
        elif action == "enable":
            view = accounts.enable_user(hogo, principal, username, ctx=ctx)
        elif action == "unlock":
            view = accounts.unlock_user(hogo, principal, username, ctx=ctx)
        elif action == "reset-password":
            reset = accounts.reset_password(hogo, principal, username, ctx=ctx)
            view, one_time = reset.user, reset.one_time_password
        elif action == "reset-mfa":
            view = accounts.reset_mfa(hogo, principal, username, ctx=ctx)
        elif action == "grant-role":
            role, dept = _field(form, "role").strip(), _field(form, "department").strip()
            view = accounts.grant_role(hogo, principal, username, f"{role}@{dept}" if dept else role, ctx=ctx)
        else:
            view = accounts.revoke_role(hogo, principal, username, _field(form, "role").strip(), ctx=ctx)
    except (ValidationFailed, Conflict, NotFound, Forbidden) as exc:
        error, error_status = t.error(exc), exc.status
    if view is None:
        try:
            view = accounts.get_user(hogo, principal, username)
        except HogoError:
            view = None
    notice = None if error else t("users.done." + action, name=username)
    if not _is_htmx(request) or view is None:
        return _users_page(request, principal, status=error_status,
                           notice=notice, action_error=error, one_time=one_time, one_time_user=username)
    return render(
        request, "partials/user_row.html", principal=principal, u=view,
        departments=accounts.list_departments(hogo, principal), role_choices=_role_choices(t),
        row_notice=notice, row_error=error, row_otp=one_time,
    )


@router.get("/admin/departments")
def departments_page(request: Request, principal: Principal = Depends(admin_principal)) -> Response:
    return _departments_page(request, principal)


def _departments_page(request: Request, principal: Principal, *, status: int = 200, **context: Any
                      ) -> Response:
    context.setdefault("values", {})
    context.setdefault("errors", {})
    context.setdefault("notice", None)
    return render(request, "admin_departments.html", principal=principal, status=status,
                  departments=accounts.list_departments(_hogo(request), principal), **context)


@router.post("/admin/departments")
def departments_create(request: Request, principal: Principal = Depends(admin_principal),
                       form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    values = {k: _field(form, k).strip() for k in ("code", "name", "parent")}
    try:
        d = accounts.create_department(_hogo(request), principal, code=values["code"], name=values["name"],
                                       parent=values["parent"] or None, ctx=_actor_ctx(request, principal))
    except (ValidationFailed, Conflict, NotFound, Forbidden) as exc:
        field = _error_field(exc, "form")
        if field == "department":  # the parent did not resolve
            field = "parent"
        return _departments_page(request, principal, status=exc.status, values=values,
                                 errors={field or "form": t.error(exc)})
    return _departments_page(request, principal, status=201, notice=t("depts.created", code=d.code))


# ----------------------------------------------------------------------------------- install


def _html_http_errors(app: FastAPI) -> None:
    """404/405 outside ``/api/`` as a page; under ``/api/`` the API's JSON handler answers as before."""
    api_handler = app.exception_handlers.get(StarletteHTTPException)

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith("/api/") or exc.status_code not in (404, 405):
            if api_handler is None:
                return Response(status_code=exc.status_code)
            result = api_handler(request, exc)
            response: Response = await result if inspect.isawaitable(result) else result
            return response
        return render(request, "error.html", status=exc.status_code, message_key="error.not_found",
                      title_key="error.title", headers=dict(exc.headers or {}))

    app.add_exception_handler(StarletteHTTPException, handler)


def install(app: FastAPI) -> None:
    """Called by ``hogo.api.app.create_app``: the web UI at ``/``, its files at ``/static``."""
    app.add_exception_handler(WebRedirect, _on_redirect)
    app.add_exception_handler(WebDenied, _on_denied)
    _html_http_errors(app)
    app.include_router(router)
    # These modules import this one: late imports.
    from hogo.web.alert_routes import router as alert_router
    from hogo.web.approval_routes import router as approval_router
    from hogo.web.audit_routes import router as audit_router
    from hogo.web.data_routes import router as data_router
    from hogo.web.erasure_routes import router as erasure_router
    from hogo.web.marks_routes import router as marks_router
    from hogo.web.takeout_routes import router as takeout_router

    app.include_router(data_router)
    app.include_router(audit_router)
    app.include_router(alert_router)
    app.include_router(approval_router)
    app.include_router(marks_router)
    app.include_router(takeout_router)
    app.include_router(erasure_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
