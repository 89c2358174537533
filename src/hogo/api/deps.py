"""Request-scoped dependencies shared by the API and the web UI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection

from hogo.bootstrap import Hogo
from hogo.errors import SessionExpired
from hogo.services import auth
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.authz_cache import Snapshot

SESSION_COOKIE = "hogo_session"


def get_hogo(request: Request) -> Hogo:
    hogo: Hogo = request.app.state.hogo
    return hogo


def client_address(request: Request) -> str | None:
    hogo = get_hogo(request)
    if hogo.settings.trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.client.host if request.client else None


def request_context(request: Request) -> RequestContext:
    return RequestContext(
        client_addr=client_address(request),
        user_agent=(request.headers.get("user-agent") or "")[:300] or None,
    )


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def api_authenticator(request: Request) -> Callable[[Connection | None, Snapshot | None], Principal]:
    """The authentication of an API request, to run where the caller does its other blocking work
    (e.g. in the guard's worker thread: one trip through the thread pool for both, and one read
    transaction, given as the argument). A request without a bearer token is refused here, before
    anything is looked up."""
    token = bearer_token(request)
    if token is None:
        raise SessionExpired("sign in first (Authorization: Bearer <token>)", code="not_authenticated")
    hogo, ctx = get_hogo(request), request_context(request)

    def authenticate(conn: Connection | None = None, cached: Snapshot | None = None) -> Principal:
        principal = auth.authenticate(hogo, token, ctx, conn=conn, cached=cached)
        request.state.principal = principal
        return principal

    return authenticate


def api_principal(request: Request) -> Principal:
    """The API authenticates with ``Authorization: Bearer`` only (never cookies: no CSRF surface)."""
    return api_authenticator(request)(None, None)


async def _hogo_dependency(request: Request) -> Hogo:
    return get_hogo(request)


async def _context_dependency(request: Request) -> RequestContext:
    return request_context(request)


# Dependencies that do no I/O are ``async``: FastAPI runs them on the event loop. A plain ``def``
# dependency costs every request a round trip through the thread pool.
HogoDep = Annotated[Hogo, Depends(_hogo_dependency)]
CtxDep = Annotated[RequestContext, Depends(_context_dependency)]
PrincipalDep = Annotated[Principal, Depends(api_principal)]
