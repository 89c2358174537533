"""/api/v1 erasure, deletion certificates (消去証明) and retention (ANON-10, SEC-50, MN-5d, MN-3c).

``POST /files/{code}/records/{id}/erase`` erases a record irrecoverably (a 'delete' grant for the purpose in
``X-Hogo-Purpose``; the reason in the body); ``POST /files/{code}/erase`` erases a whole file (its
protection manager or the general protection manager). Both answer with the signed certificate.
``/certificates`` lists and shows them (protection managers and the audit roles; a certificate holds no
personal data), ``…/export`` gives what ``hogo certificate verify`` checks offline, and
``…/attachments`` takes a contractor's certificate (the file as the body; ANON-10). ``POST
/retention/run?dry_run=true`` previews what is due, per file, without erasing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from hogo.api.data_routes import PurposeHeader, PurposeQuery, _purpose
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx
from hogo.errors import ValidationFailed
from hogo.services import erasure

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class CertificateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    status: str
    file: str
    file_name: str
    record_count: int
    created_at: dt.datetime
    completed_at: dt.datetime | None
    ordered_by: str
    reason: str
    certificate: dict[str, Any] | None
    signature: str | None
    attachments: list[dict[str, Any]]
    confirmed_by: str | None = None
    confirmed_at: dt.datetime | None = None
    confirmation: str | None = None


def cert_out(c: erasure.Certificate) -> CertificateOut:
    return CertificateOut.model_validate({**c.__dict__, "attachments": list(c.attachments)})


@router.post("/files/{code}/records/{record_id}/erase", response_model=CertificateOut, tags=["erasure"])
def erase_record(code: str, record_id: str, body: EraseIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                 x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> CertificateOut:
    """Erase a record irrecoverably (crypto-shredding) and return its signed deletion certificate."""
    return cert_out(erasure.erase_records(hogo, principal, code, [record_id], reason=body.reason,
                                          purpose=_purpose(x_purpose, purpose), ctx=ctx))


@router.post("/files/{code}/erase", response_model=CertificateOut, tags=["erasure"])
def erase_file(code: str, body: EraseIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> CertificateOut:
    """Erase a whole file: every key destroyed, every row purged; the ledger entry stays, marked erased."""
    return cert_out(erasure.erase_file(hogo, principal, code, reason=body.reason, ctx=ctx))


@router.get("/certificates", response_model=list[CertificateOut], tags=["erasure"])
def list_certificates(hogo: HogoDep, principal: PrincipalDep,
                      file: Annotated[str | None, Query(max_length=63)] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[CertificateOut]:
    return [cert_out(c) for c in erasure.list_certificates(hogo, principal, file=file, limit=limit)]


@router.get("/certificates/{deletion_id}", response_model=CertificateOut, tags=["erasure"])
def show_certificate(deletion_id: int, hogo: HogoDep, principal: PrincipalDep) -> CertificateOut:
    return cert_out(erasure.show(hogo, principal, deletion_id))


@router.get("/certificates/{deletion_id}/export", tags=["erasure"])
def export_certificate(deletion_id: int, hogo: HogoDep, principal: PrincipalDep) -> dict[str, Any]:
    """The certificate and its signed note, as ``hogo certificate verify FILE --key KEY`` checks them offline
    (the key: ``/api/v1/audit/public-key``)."""
    return erasure.show(hogo, principal, deletion_id).export()


@router.post("/certificates/{deletion_id}/confirm", response_model=CertificateOut, tags=["erasure"])
def confirm(deletion_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> CertificateOut:
    """A second person confirms a completed erasure (never the one who ordered it); signed like the certificate."""
    return cert_out(erasure.confirm(hogo, principal, deletion_id, ctx=ctx))


@router.post("/certificates/{deletion_id}/attachments", status_code=201, tags=["erasure"])
async def attach(deletion_id: int, request: Request, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                 contractor: Annotated[str, Query(min_length=1, max_length=200)],
                 filename: Annotated[str, Query(min_length=1, max_length=255)]) -> dict[str, Any]:
    """A contractor's deletion certificate (ANON-10): the file is the request body."""
    content = await request.body()
    if not content:
        raise ValidationFailed("send the contractor's certificate file as the request body", field="file")
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(erasure.attach, hogo, principal, deletion_id, contractor=contractor,
                                   filename=filename, content=content, ctx=ctx)


@router.post("/retention/run", tags=["erasure"])
def retention_run(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                  dry_run: Annotated[bool, Query(description="list what is due, erase nothing")] = False
                  ) -> dict[str, Any]:
    """Dispose of the records past their retention in the files the caller may define (counts per file
    only; with ``dry_run`` nothing is erased)."""
    return erasure.retention_run(hogo, principal, dry_run=dry_run, ctx=ctx)
