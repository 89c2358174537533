"""Cookies and CSRF protection for the web UI (SEC-128, ANON-21).

* The session token lives only in the ``hogo_session`` cookie: HttpOnly (no script reads it),
  SameSite=Strict (never sent on cross-site requests), Path=/, Secure when configured.
* Every POST carries a CSRF token: for a signed-in session, an HMAC of the session id under the
  instance key (``csrf`` purpose), sent as the form field ``csrf_token`` or the ``X-CSRF-Token``
  header (htmx); before sign-in, a random value in the short-lived ``hogo_login_csrf`` cookie that
  must match the form field (double submit).
* When the browser says where the request comes from (``Sec-Fetch-Site``, ``Origin``), it must be
  this site.
"""

from __future__ import annotations

import secrets
import urllib.parse

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from hogo.api.deps import SESSION_COOKIE
from hogo.bootstrap import Hogo
from hogo.crypto import constant_time_equal

__all__ = ["SESSION_COOKIE"]
LOGIN_CSRF_COOKIE = "hogo_login_csrf"
LANG_COOKIE = "hogo_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_MAX_AGE_S = 15 * 60
LANG_MAX_AGE_S = 365 * 24 * 3600


def cookie_secure(hogo: Hogo, request: Request) -> bool:
    """``Secure`` as configured. Chromium and Firefox accept Secure cookies from http://localhost
    and http://127.0.0.1 (potentially trustworthy origins), so local use over plain HTTP works."""
    return bool(hogo.settings.cookie_secure)


def set_session_cookie(response: Response, hogo: Hogo, request: Request, token: str) -> None:
    # A browser-session cookie: the server enforces idle and absolute timeouts (ANON-21).
    response.set_cookie(
        SESSION_COOKIE, token, path="/", httponly=True, samesite="strict",
        secure=cookie_secure(hogo, request),
    )


def clear_session_cookie(response: Response, hogo: Hogo, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_secure(hogo, request)
    )


def session_csrf_token(hogo: Hogo, session_id: str) -> str:
    return hogo.keyring.mac("csrf", session_id.encode())


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def set_login_csrf_cookie(response: Response, hogo: Hogo, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE, value, max_age=LOGIN_CSRF_MAX_AGE_S, path="/", httponly=True,
        samesite="strict", secure=cookie_secure(hogo, request),
    )


def clear_login_csrf_cookie(response: Response, hogo: Hogo, request: Request) -> None:
    response.delete_cookie(
        LOGIN_CSRF_COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_secure(hogo, request)
    )


def origin_ok(request: Request) -> bool:
    """Where a POST comes from, as far as the browser tells: ``Sec-Fetch-Site`` (sent by current
    browsers) must be ``same-origin``; ``Origin``, when it names a site, must be this host (the scheme
    is not compared: a TLS-terminating proxy may sit in front).

    ``Origin: null`` is what Chromium sends for same-origin form posts under ``Referrer-Policy:
    no-referrer`` (which hogo sets), and no ``Origin`` is what some older browsers send: the CSRF
    token then decides alone."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    host = request.headers.get("host")
    if not host:
        return False
    netloc = urllib.parse.urlsplit(origin).netloc
    return bool(netloc) and netloc.lower() == host.lower()


def submitted_csrf(request: Request, form: FormData) -> str:
    value = form.get(CSRF_FIELD)
    if isinstance(value, str) and value:
        return value
    return request.headers.get(CSRF_HEADER, "")


def session_csrf_ok(hogo: Hogo, request: Request, form: FormData, session_id: str | None) -> bool:
    if session_id is None or not origin_ok(request):
        return False
    given = submitted_csrf(request, form)
    return bool(given) and constant_time_equal(given, session_csrf_token(hogo, session_id))


def secure_cookie_lost(hogo: Hogo, request: Request) -> bool:
    """The login CSRF cookie is missing on a plain-HTTP request while cookies are ``Secure``: the
    browser dropped it (it keeps Secure cookies over http only for localhost / 127.0.0.1)."""
    return (hogo.settings.cookie_secure and request.url.scheme == "http"
            and LOGIN_CSRF_COOKIE not in request.cookies)


def login_csrf_ok(request: Request, form: FormData) -> bool:
    if not origin_ok(request):
        return False
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = form.get(CSRF_FIELD)
    if not cookie or not isinstance(given, str) or not given:
        return False
    return constant_time_equal(cookie, given)


def safe_next(path: str | None) -> str:
    """Only local paths (no scheme, no host, no ``//``): never an open redirect."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    parts = urllib.parse.urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return parts.path or "/"
