"""The ASGI application: REST API under /api/v1 and the web UI at /, over one ``Hogo``."""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hogo import __version__
from hogo.api.alert_routes import router as alert_router
from hogo.api.approval_routes import router as approval_router
from hogo.api.audit_routes import router as audit_router
from hogo.api.backup_routes import router as backup_router
from hogo.api.data_routes import router as data_router
from hogo.api.erasure_routes import router as erasure_router
from hogo.api.export_routes import router as export_router
from hogo.api.marks_routes import router as marks_router
from hogo.api.routes import router as api_router
from hogo.api.takeout_routes import router as takeout_router
from hogo.bootstrap import Hogo, build, check_ready_to_serve
from hogo.config import load_settings
from hogo.errors import HogoError
from hogo.services import runlock
from hogo.services.background import BackgroundJobs
from hogo.store.db import BackgroundCheckpointer
from hogo.web.routes import install as install_web

log = logging.getLogger("hogo.api")

HTTP_CODES = {
    400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "body_too_large",
    415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
}


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v})
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="hogo"'
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    """Name every bad field and why; never echo the submitted values (they may be passwords)."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        kind = err.get("type", "")
        msg = err.get("msg", "invalid")
        if kind == "extra_forbidden":
            msg = "unknown field"
        elif kind == "json_invalid":
            field, msg = "body", "the body is not valid JSON"
        problems.append({"field": field, "reason": msg})
    text = "; ".join(f"{p['field']}: {p['reason']}" for p in problems) or "invalid request"
    return text, problems


def _no_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry (in releases that have it) stays off: its request spans and metrics
    carry paths, with file codes and record IDs, to whatever exporter the environment configures
    (``FASTAPI_OTEL_AUTO_CONFIGURE``, a global provider) — a flow of personal-data metadata out of
    hogo that nobody approved. Off, it also stops looking for a provider on every request."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}}
    return {}


class SecurityHeaders:
    """The security headers on every response (and ``Cache-Control: no-store`` on the API's), unless
    the response set its own. Plain ASGI: Starlette's ``BaseHTTPMiddleware`` runs each request
    through an extra task and memory streams, which costs every request more than its routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers + ([(b"cache-control", b"no-store")] if scope["path"].startswith("/api/") else [])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                if added:
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuse bodies over the limit before reading them whole (413), chunked or not."""

    def __init__(self, app: ASGIApp, max_bytes: int, import_max_bytes: int) -> None:
        self.app = app
        self.default_max = max_bytes
        self.import_max = import_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Bulk imports are large by nature; everything else is small.
        limit = self.import_max if scope["path"].endswith("/records/import") else self.default_max
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._reject(scope, receive, send, limit)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        resp = error_response(413, "body_too_large", f"the request body exceeds {limit} bytes")
        await resp(scope, receive, send)


class _TooLarge(Exception):
    pass


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


def create_app(hogo: Hogo, *, background_checkpoints: bool = False, background_jobs: bool | None = None,
               freeze_heap: bool | None = None) -> FastAPI:
    """``background_checkpoints`` (servers on SQLite): WAL checkpoints from a thread, not in requests.
    ``background_jobs`` (servers; default: as ``background_checkpoints``): signed log checkpoints and
    their off-host anchoring, the scheduled log analysis and payload retention.
    ``freeze_heap`` (servers; default: as ``background_checkpoints``): once started, what startup built
    (the app, its schemas, the tables' metadata …, which live as long as the process) is moved out of the
    garbage collector's sight (``gc.freeze``). Otherwise every full collection walks all of it, and a
    request that triggers one waits: at saturation, p99 of the record read 70 ms instead of 15 ms."""
    run_jobs = background_checkpoints if background_jobs is None else background_jobs
    freeze = background_checkpoints if freeze_heap is None else freeze_heap

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from hogo.services.files import move_keys_out_of_database

        move_keys_out_of_database(hogo)  # wrapped keys an older instance kept in the database (issue 5)
        checkpointer = None
        if background_checkpoints and hogo.settings.is_sqlite:
            checkpointer = BackgroundCheckpointer(hogo.engine)
            checkpointer.start()
        jobs = BackgroundJobs(hogo) if run_jobs else None
        if jobs is not None:
            jobs.start()
        if freeze:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if jobs is not None:
                jobs.stop()
            if checkpointer is not None:
                checkpointer.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="hogo",
        version=__version__,
        summary="Personal data kept inside, safety management measures (安全管理措置) enforced.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        **_no_telemetry(),
    )
    app.state.hogo = hogo

    @app.exception_handler(HogoError)
    async def _hogo_error(_: Request, exc: HogoError) -> JSONResponse:
        if exc.status >= 500:
            log.error("server error: %s", exc.code)
        return error_response(exc.status, exc.code, exc.message, requirement=exc.requirement, details=exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        text, problems = _validation_message(exc)
        return error_response(422, "validation_failed", text, details={"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never echo internals (they may hold data); the type alone goes to the server log.
        log.error("unexpected %s", type(exc).__name__)
        return error_response(500, "internal_error", "an internal error occurred; it has been logged")

    # The data routes first: FastAPI tries the routes in order, and reading a record is the most
    # frequent request (no path of the other routers overlaps theirs).
    app.include_router(data_router)
    app.include_router(api_router)
    app.include_router(export_router)
    app.include_router(audit_router)
    app.include_router(alert_router)
    app.include_router(approval_router)
    app.include_router(marks_router)
    app.include_router(takeout_router)
    app.include_router(erasure_router)
    app.include_router(backup_router)
    install_web(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=hogo.settings.max_body_bytes,
                       import_max_bytes=hogo.settings.import_max_bytes)
    if background_checkpoints:  # a server: it marks its data directory as served (a restore refuses meanwhile)
        app.router.lifespan_context = runlock.served_lifespan(app.router.lifespan_context, hogo.settings.data_dir)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory hogo.api.app:app_from_environment`` (reads $HOGO_DATA_DIR)."""
    hogo = build(load_settings())
    check_ready_to_serve(hogo)
    return create_app(hogo, background_checkpoints=True)
