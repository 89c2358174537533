"""/api/v1/takeouts: take-outs and provisions with approval, and the take-out register (持出管理簿).

``POST /takeouts`` requests one (file, fields, record selection, purpose, recipient, destination, transport,
due date); refused with 403 and the reason when the file's marks forbid it (SEC-47) or the requester's grants
do not cover the export (ANON-7). Its approval goes through ``/approvals`` (kind ``takeout``). ``GET
/takeouts`` lists the register, ``GET /takeouts/{id}`` shows one. ``POST /takeouts/{id}/download`` returns
the package (``application/octet-stream``; the requester only, once approved). A passphrase recipient's
passphrase comes in that request's body — never a URL — and is neither stored nor logged; the server keeps
no copy of the package once it is sent. ``POST /takeouts/{id}/return`` and ``/dispose``: the taker declares,
the file's manager (or the general protection manager, or the information-security officer) confirms.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from hogo.api.approval_routes import StepOut, request_out
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx
from hogo.services import approvals, takeouts

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectionIn(In):
    where: dict[str, str] | None = Field(default=None, max_length=20, description="FIELD: VALUE (exact match)")
    records: list[str] | None = Field(default=None, max_length=10_000, description="record IDs")


class TakeoutIn(In):
    file: str = Field(min_length=1, max_length=63)
    fields: list[str] = Field(min_length=1, max_length=takeouts.MAX_FIELDS)
    selection: SelectionIn | None = None
    purpose: str = Field(min_length=1, max_length=200)
    recipient: str = Field(min_length=1, max_length=takeouts.MAX_TEXT, description="who receives it")
    recipient_key: str | None = Field(default=None, max_length=takeouts.MAX_KEY,
                                      description="the recipient's public key (hogo package keygen)")
    passphrase: bool = Field(default=False, description="protect it with a passphrase given at download instead")
    destination: str = Field(min_length=1, max_length=takeouts.MAX_TEXT)
    transport: str = Field(pattern="^(download|media|transmission)$")
    media_id: str | None = Field(default=None, max_length=64)
    due: dt.date | dt.datetime = Field(description="returned or disposed of by (a date: the end of that day)")
    outside_scope: bool = Field(default=False, description="a provision outside the viewing scope (提供)")
    emergency: bool = Field(default=False, description="without prior approval, reported afterwards (SEC-27)")
    note: str | None = Field(default=None, max_length=approvals.MAX_REASON)


class DownloadIn(In):
    passphrase: str | None = Field(default=None, max_length=1024)


class NoteIn(In):
    note: str | None = Field(default=None, max_length=approvals.MAX_REASON)


class TakeoutOut(BaseModel):
    id: int
    request_id: int
    status: str
    status_ja: str
    file: str
    requester: str
    department: str
    fields: list[str]
    selection: dict[str, Any] | None
    purpose: str
    recipient: str
    recipient_mode: str
    recipient_key: str | None
    outside_scope: bool
    destination: str
    transport: str
    transport_ja: str
    media_id: str | None
    due_at: dt.datetime
    due_date: str
    marks: dict[str, Any]
    marks_label: str
    note: str | None
    emergency: bool
    report_due_at: dt.datetime | None
    report_status: str | None
    approval_status: str
    steps: list[StepOut]
    created_at: dt.datetime
    approved_at: dt.datetime | None
    taken_out_at: dt.datetime | None
    downloads: int
    package_id: str | None
    package_sha256: str | None
    record_count: int | None
    overdue_at: dt.datetime | None
    reminders: int
    declared: str | None
    declared_at: dt.datetime | None
    declared_note: str | None
    closed_at: dt.datetime | None
    confirmed_by: str | None
    confirm_note: str | None
    can_download: bool
    can_confirm: bool
    can_declare: bool


class TakeoutListOut(BaseModel):
    takeouts: list[TakeoutOut]


def takeout_out(t: takeouts.TakeoutView) -> TakeoutOut:
    fake = approvals.RequestView(  # the steps in the approval inbox's shape
        id=t.request_id, kind=takeouts.KIND, status=t.approval_status, requester=t.requester, subject_user=None,
        file=t.file, record_id=None, purpose=t.purpose, reason="", fields=t.fields, base_revision=None,
        steps=t.steps, outcome=None, created_at=t.created_at, updated_at=t.created_at, decided_at=None,
        applied_at=None, can_decide=False)
    return TakeoutOut(
        id=t.id, request_id=t.request_id, status=t.status, status_ja=t.status_ja, file=t.file, requester=t.requester,
        department=t.department, fields=list(t.fields), selection=t.selection, purpose=t.purpose,
        recipient=t.recipient, recipient_mode=t.recipient_mode, recipient_key=t.recipient_key,
        outside_scope=t.outside_scope, destination=t.destination, transport=t.transport,
        transport_ja=t.transport_ja, media_id=t.media_id, due_at=t.due_at, due_date=t.due_date, marks=t.marks,
        marks_label=t.marks_label,
        note=t.note, emergency=t.emergency, report_due_at=t.report_due_at, report_status=t.report_status,
        approval_status=t.approval_status, steps=request_out(fake).steps, created_at=t.created_at,
        approved_at=t.approved_at, taken_out_at=t.taken_out_at, downloads=t.downloads, package_id=t.package_id,
        package_sha256=t.package_sha256, record_count=t.record_count, overdue_at=t.overdue_at,
        reminders=t.reminders, declared=t.declared, declared_at=t.declared_at, declared_note=t.declared_note,
        closed_at=t.closed_at, confirmed_by=t.confirmed_by, confirm_note=t.confirm_note,
        can_download=t.can_download, can_confirm=t.can_confirm, can_declare=t.can_declare)


@router.post("/takeouts", response_model=TakeoutOut, status_code=201, tags=["takeouts"])
def request_takeout(body: TakeoutIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> TakeoutOut:
    """Request a take-out or provision (SEC-47..49): checked against the file's marks and your export
    grant, then approved by the file's protection manager (and for confidentiality 3 the information-
    security officer) through /approvals."""
    sel = body.selection.model_dump(exclude_none=True) if body.selection else None
    t = takeouts.request_takeout(
        hogo, principal, body.file, fields=body.fields, purpose=body.purpose, recipient=body.recipient,
        destination=body.destination, transport=body.transport, due=body.due, ctx=ctx,
        recipient_key=body.recipient_key, passphrase=body.passphrase, media_id=body.media_id, selection=sel,
        outside_scope=body.outside_scope, emergency=body.emergency, note=body.note)
    return takeout_out(t)


@router.get("/takeouts", response_model=TakeoutListOut, tags=["takeouts"])
def list_takeouts(
    hogo: HogoDep,
    principal: PrincipalDep,
    status: Annotated[str, Query(pattern="^(" + "|".join(takeouts.STATUS_FILTERS) + ")$",
                                 description="open = requested, approved, taken out or overdue")] = "open",
    mine: Annotated[bool, Query(description="only your own take-outs")] = False,
    file: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> TakeoutListOut:
    """The take-out register, newest first (what you may see)."""
    rows = takeouts.list_takeouts(hogo, principal, status=status, mine=mine, file_code=file, limit=limit)
    return TakeoutListOut(takeouts=[takeout_out(t) for t in rows])


@router.get("/takeouts/{takeout_id}", response_model=TakeoutOut, tags=["takeouts"])
def get_takeout(takeout_id: int, hogo: HogoDep, principal: PrincipalDep) -> TakeoutOut:
    return takeout_out(takeouts.get_takeout(hogo, principal, takeout_id))


@router.post("/takeouts/{takeout_id}/download", response_class=FileResponse, tags=["takeouts"],
             responses={200: {"content": {"application/octet-stream": {}}}})
async def download(takeout_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                   body: DownloadIn | None = None) -> FileResponse:
    """The approved take-out's package (the requester only). The passphrase (passphrase recipients) is in
    the body; it is neither kept nor logged. The server deletes its copy once sent."""
    tmp = Path(tempfile.mkdtemp(prefix="hogo-takeout-"))
    out = tmp / f"takeout-{takeout_id}.hogopkg"
    try:
        d = await run_in_threadpool(takeouts.download, hogo, principal, takeout_id, out_path=out,
                                    passphrase=body.passphrase if body else None, ctx=ctx)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    headers = {"X-Hogo-Takeout": str(takeout_id), "Cache-Control": "no-store"}
    if d.package_id:
        headers["X-Hogo-Package"] = str(d.package_id)
    if d.records is not None:
        headers["X-Hogo-Records"] = str(d.records)
    return FileResponse(out, media_type="application/octet-stream", filename=out.name, headers=headers,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.post("/takeouts/{takeout_id}/return", response_model=TakeoutOut, tags=["takeouts"])
def returned(takeout_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
             body: NoteIn | None = None) -> TakeoutOut:
    """The copy came back: the taker declares it; the file's manager (not the taker) confirms it."""
    return takeout_out(takeouts.close_copy(hogo, principal, takeout_id, kind="returned",
                                           note=body.note if body else None, ctx=ctx))


@router.post("/takeouts/{takeout_id}/dispose", response_model=TakeoutOut, tags=["takeouts"])
def disposed(takeout_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
             body: NoteIn | None = None) -> TakeoutOut:
    """The copy was disposed of: the taker declares it; the file's manager (not the taker) confirms it."""
    return takeout_out(takeouts.close_copy(hogo, principal, takeout_id, kind="disposed",
                                           note=body.note if body else None, ctx=ctx))
