"""/api/v1 routes for personal-data files, grants and records. Record data only through the guard.

The purpose of every data request is declared in the ``X-Hogo-Purpose`` header (or the ``purpose``
query parameter). Searches are POSTed so that a My Number never appears in a URL or an access log.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import unquote

import yaml
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from hogo.api.deps import HogoDep, PrincipalDep, api_authenticator, get_hogo, request_context
from hogo.api.routes import ERRORS, ActorCtx
from hogo.domain.dates import to_instant
from hogo.errors import ValidationFailed
from hogo.services import files, grants, guard, integrity

router = APIRouter(prefix="/api/v1", responses=ERRORS)

# Percent-encoded: a 200-character Japanese purpose takes up to 200 × 9 characters here.
PurposeHeader = Annotated[str | None, Header(alias="X-Hogo-Purpose", max_length=2400,
                                             description="the business purpose of this access (利用目的)")]
PurposeQuery = Annotated[str | None, Query(alias="purpose", max_length=200)]


def _purpose(header: str | None, query: str | None) -> str | None:
    # HTTP headers are Latin-1; clients send Japanese purposes percent-encoded (RFC 3986).
    if header:
        return _unquoted(header)
    return query


@functools.lru_cache(maxsize=256)
def _unquoted(header: str) -> str:
    """A client declares the same few purposes over and over: each is decoded once."""
    return unquote(header)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=100_000)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FileOut(Out):
    code: str
    name: str
    kind: str
    department: str
    responsible: str
    version: int
    classification: str
    restrictions: list[str]
    purposes: list[str]
    records: int
    spec: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    marks: dict[str, Any]  # classification and restrictions (Marks.to_dict, label_ja): shown everywhere (SEC-46)
    erased_at: dt.datetime | None = None  # issue 5: keys destroyed and records purged; the entry stays


class GrantIn(In):
    user: str | None = Field(default=None, max_length=100)
    role: str | None = Field(default=None, max_length=100)
    actions: list[str] = Field(min_length=1, max_length=10)
    purposes: list[str] = Field(min_length=1, max_length=50)
    fields: list[str] | None = Field(default=None, max_length=200)
    segments: list[str] | None = Field(default=None, max_length=200)
    valid_from: dt.datetime | dt.date | None = None
    valid_until: dt.datetime | dt.date | None = None
    note: str | None = Field(default=None, max_length=500)


class GrantOut(Out):
    id: str
    file: str
    grantee: str
    actions: list[str]
    fields: list[str] | None
    purposes: list[str]
    segments: list[str] | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    note: str | None
    granted_by: str | None
    granted_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class ReviewOut(Out):
    grant: GrantOut
    findings: list[str]


class RecordIn(In):
    record_id: str | None = Field(default=None, max_length=64)
    values: dict[str, str | int | float | None]


class RecordPatchIn(In):
    values: dict[str, str | int | float | None]
    expected_revision: int | None = None


class SearchIn(In):
    where: dict[str, str] = Field(min_length=1, max_length=10)
    limit: int = Field(default=100, ge=1, le=1000)


class RecordOut(Out):
    record_id: str
    file: str
    segment: str | None
    revision: int
    values: dict[str, str]
    masked: list[str]
    revealed: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    classification: str
    restrictions: list[str]
    marks: dict[str, Any]  # the file's marks, with every record (SEC-46)


class RowProblemOut(Out):
    row: int
    field: str
    reason: str


class ImportOut(Out):
    file: str
    total: int
    imported: int
    rejected: list[RowProblemOut]
    atomic: bool
    committed: bool
    record_ids_sample: list[str]


async def _spec_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    try:
        data = yaml.safe_load(raw) if "yaml" in ctype else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"the spec is not valid {'YAML' if 'yaml' in ctype else 'JSON'}: {exc}",
                               field="spec") from None
    if not isinstance(data, dict):
        raise ValidationFailed("the spec must be an object (mapping)", field="spec")
    return data


# --------------------------------------------------------------------------- reading a record
# First in the router: FastAPI tries routes in order, and this is the most frequent request.

# A RecordView as JSON: the same bytes FastAPI makes of a RecordOut (same fields in the same order), without
# validating the guard's own output twice on the most frequent request.
_RECORD_JSON = TypeAdapter(guard.RecordView)


def record_json(r: guard.RecordView) -> bytes:
    return _RECORD_JSON.dump_json(r)


# The read's parameters, taken from the request directly: FastAPI's per-parameter machinery cost this
# request more than its routing. They are documented (``openapi_extra``) and checked as before: the
# same limits, the same 422 problems in the same order, and, as when they were declared parameters
# after the authentication dependency, a request that does not authenticate is answered 401 first.
_READ_LIMITS: tuple[tuple[tuple[str, str], TypeAdapter[Any]], ...] = (
    (("query", "purpose"), TypeAdapter(Annotated[str, Field(max_length=200)])),
    (("query", "reveal"), TypeAdapter(Annotated[list[str], Field(max_length=20)])),
    (("header", "X-Hogo-Purpose"), TypeAdapter(Annotated[str, Field(max_length=2400)])),
)
_READ_PARAMETERS: list[dict[str, Any]] = [
    {"name": "purpose", "in": "query", "required": False,
     "schema": {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}], "title": "Purpose"}},
    {"name": "reveal", "in": "query", "required": False,
     "schema": {"anyOf": [{"type": "array", "items": {"type": "string"}, "maxItems": 20}, {"type": "null"}],
                "title": "Reveal"}},
    {"name": "X-Hogo-Purpose", "in": "header", "required": False,
     "schema": {"anyOf": [{"type": "string", "maxLength": 2400}, {"type": "null"}],
                "description": "the business purpose of this access (利用目的)", "title": "X-Hogo-Purpose"},
     "description": "the business purpose of this access (利用目的)"},
]


def _read_params(request: Request) -> tuple[str | None, str | None, list[str] | None, list[dict[str, Any]]]:
    """(header purpose, query purpose, reveal, problems): the last query value wins, as with FastAPI."""
    query = request.query_params
    purpose, reveal, header = query.get("purpose"), query.getlist("reveal") or None, request.headers.get(
        "x-hogo-purpose")
    problems: list[dict[str, Any]] = []
    for (loc, check), value, limit in zip(_READ_LIMITS, (purpose, reveal, header), (200, 20, 2400), strict=True):
        if value is not None and len(value) > limit:
            try:
                check.validate_python(value)
            except ValidationError as exc:
                problems.extend({**e, "loc": (*loc, *e["loc"])} for e in exc.errors(include_url=False))
    return header, purpose, reveal, problems


class _ByHand(APIRoute):
    """A route documented from its endpoint's signature like any other, whose endpoint is called with
    the request and its path parameters as they are (strings) — no dependency solving, no parameter
    models: the endpoint reads and checks what it needs itself (FastAPI's custom route classes)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(request=request, **request.path_params)
            return response

        return handle


async def read_record(code: str, record_id: str, request: Request) -> Response:
    """One record. The request is authenticated and the read decided in one trip to a worker thread;
    the request then waits for its access record without holding a thread (``guard.read_record_async``).
    ``response_model`` documents the answer; it is returned ready-made (``record_json``)."""
    authenticate = api_authenticator(request)
    x_purpose, purpose, reveal, problems = _read_params(request)
    if problems:
        await run_in_threadpool(authenticate, None, None)
        raise RequestValidationError(problems)
    r = await guard.read_record_async(get_hogo(request), authenticate, code, record_id,
                                      purpose=_purpose(x_purpose, purpose), reveal=reveal or (),
                                      ctx=request_context(request))
    return Response(record_json(r), media_type="application/json")


router.add_api_route("/files/{code}/records/{record_id}", read_record, methods=["GET"], response_model=RecordOut,
                     tags=["records"], openapi_extra={"parameters": _READ_PARAMETERS}, route_class_override=_ByHand)


# ---------------------------------------------------------------------------------- files


@router.get("/files", response_model=list[FileOut], tags=["files"])
def list_files(hogo: HogoDep, principal: PrincipalDep) -> list[FileOut]:
    return [FileOut.model_validate(f) for f in files.list_files(hogo, principal)]


@router.post("/files", response_model=FileOut, status_code=201, tags=["files"])
async def create_file(request: Request, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> FileOut:
    """Define a file from a spec (JSON, or YAML with ``Content-Type: application/yaml``)."""
    spec = await _spec_body(request)
    return FileOut.model_validate(await run_in_threadpool(files.create_file, hogo, principal, spec, ctx=ctx))


@router.get("/files/{code}", response_model=FileOut, tags=["files"])
def show_file(code: str, hogo: HogoDep, principal: PrincipalDep) -> FileOut:
    return FileOut.model_validate(files.show_file(hogo, principal, code))


@router.put("/files/{code}", response_model=FileOut, tags=["files"])
async def update_file(code: str, request: Request, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> FileOut:
    """A new version of the definition (fields may be added, not removed or retyped)."""
    spec = await _spec_body(request)
    return FileOut.model_validate(await run_in_threadpool(files.update_file, hogo, principal, code, spec, ctx=ctx))


@router.get("/files/{code}/versions", tags=["files"])
def file_versions(code: str, hogo: HogoDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return files.file_versions(hogo, principal, code)


@router.post("/files/{code}/keys/rotate", tags=["files"])
def rotate_key(code: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> dict[str, int]:
    """A new data key version; every record is re-encrypted under it (SEC-133, SEC-151)."""
    return files.rotate_key(hogo, principal, code, ctx=ctx)


# --------------------------------------------------------------------------------- grants


@router.get("/files/{code}/grants", response_model=list[GrantOut], tags=["grants"])
def list_grants(code: str, hogo: HogoDep, principal: PrincipalDep, include_revoked: bool = False) -> list[GrantOut]:
    return [GrantOut.model_validate(g) for g in grants.list_grants(hogo, principal, code,
                                                                   include_revoked=include_revoked)]


@router.post("/files/{code}/grants", response_model=GrantOut, status_code=201, tags=["grants"])
def create_grant(code: str, body: GrantIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> GrantOut:
    tz = hogo.settings.timezone
    g = grants.create_grant(
        hogo, principal, code, user=body.user, role=body.role, actions=body.actions, purposes=body.purposes,
        fields=body.fields, segments=body.segments, valid_from=to_instant(body.valid_from, tz),
        valid_until=to_instant(body.valid_until, tz, end_of_day=True), note=body.note, ctx=ctx,
    )
    return GrantOut.model_validate(g)


@router.delete("/grants/{grant_id}", response_model=GrantOut, tags=["grants"])
def revoke_grant(grant_id: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> GrantOut:
    return GrantOut.model_validate(grants.revoke_grant(hogo, principal, grant_id, ctx=ctx))


@router.get("/grants/review", response_model=list[ReviewOut], tags=["grants"])
def review(hogo: HogoDep, principal: PrincipalDep, file: Annotated[str | None, Query(max_length=63)] = None,
           unused_days: Annotated[int, Query(ge=1, le=3650)] = 90) -> list[ReviewOut]:
    """The periodic check of unneeded rights (SEC-131(3))."""
    return [ReviewOut(grant=GrantOut.model_validate(i.grant), findings=list(i.findings))
            for i in grants.review(hogo, principal, file_code=file, unused_days=unused_days)]


# -------------------------------------------------------------------------------- records


@router.post("/files/{code}/records", response_model=RecordOut, status_code=201, tags=["records"])
def create_record(code: str, body: RecordIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                  x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> RecordOut:
    r = guard.create_record(hogo, principal, code, body.values, purpose=_purpose(x_purpose, purpose), ctx=ctx,
                            record_id=body.record_id)
    return RecordOut.model_validate(r)


@router.patch("/files/{code}/records/{record_id}", response_model=RecordOut, tags=["records"])
def update_record(code: str, record_id: str, body: RecordPatchIn, hogo: HogoDep, principal: PrincipalDep,
                  ctx: ActorCtx, x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> RecordOut:
    r = guard.update_record(hogo, principal, code, record_id, body.values, purpose=_purpose(x_purpose, purpose),
                            ctx=ctx, expected_revision=body.expected_revision)
    return RecordOut.model_validate(r)


@router.delete("/files/{code}/records/{record_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["records"])
def delete_record(code: str, record_id: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                  x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> Response:
    guard.delete_record(hogo, principal, code, record_id, purpose=_purpose(x_purpose, purpose), ctx=ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/files/{code}/records/{record_id}/verify", tags=["records"])
def verify_record(code: str, record_id: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                  x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> dict[str, Any]:
    """SEC-133(2): has the record changed since it was written? Its stored version's hash against the one
    logged, the log entry's inclusion proof against the latest signed checkpoint, and that checkpoint's
    signature (Ed25519, the key at ``/audit/public-key``). Needs a read grant; recorded like any access.
    ``ok`` false with ``status`` changed, not_logged or unverifiable; not_integrity_2 for other files."""
    return integrity.verify_record(hogo, principal, code, record_id, purpose=_purpose(x_purpose, purpose),
                                   ctx=ctx).as_dict()


@router.get("/crypto/algorithms", tags=["crypto"])
def crypto_algorithms(hogo: HogoDep, principal: PrincipalDep) -> dict[str, Any]:
    """SEC-133, SEC-134(2): every algorithm hogo uses, with key length and CRYPTREC status, and when the
    registry was last reviewed against the CRYPTREC list (due again a year later)."""
    from hogo.crypto import registry

    return registry.registry_view(hogo.clock.now().date())


@router.post("/files/{code}/records/search", response_model=list[RecordOut], tags=["records"])
def search_records(code: str, body: SearchIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                   x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> list[RecordOut]:
    """Exact match on indexed fields (a keyed blind index; nothing is decrypted to search)."""
    rows = guard.find_records(hogo, principal, code, body.where, purpose=_purpose(x_purpose, purpose), ctx=ctx,
                              limit=body.limit)
    return [RecordOut.model_validate(r) for r in rows]


@router.post("/files/{code}/records/import", response_model=ImportOut, tags=["records"])
async def import_records(
    code: str,
    request: Request,
    hogo: HogoDep,
    principal: PrincipalDep,
    ctx: ActorCtx,
    x_purpose: PurposeHeader = None,
    purpose: PurposeQuery = None,
    encoding: Annotated[str, Query(max_length=20)] = "utf-8",
    atomic: bool = False,
    id_column: Annotated[str, Query(max_length=63)] = "record_id",
    map: Annotated[list[str] | None, Query(max_length=200, description="CSV_COLUMN=FIELD")] = None,
) -> ImportOut:
    """Bulk import of a CSV body (``text/csv``; UTF-8 or Shift_JIS). The body is held in memory only:
    the plaintext never touches a temporary file."""
    mapping: dict[str, str] = {}
    for m in map or ():
        src, sep, dst = m.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValidationFailed(f"--map takes CSV_COLUMN=FIELD, not {m!r}", field="map")
        mapping[src.strip()] = dst.strip()
    body = await request.body()
    report = await run_in_threadpool(
        guard.import_records, hogo, principal, code, io.BytesIO(body), purpose=_purpose(x_purpose, purpose),
        ctx=ctx, encoding=encoding, atomic=atomic, mapping=mapping, id_column=id_column,
    )
    return ImportOut.model_validate(report)
