"""/api/v1 routes for a file's marks (SEC-46(3)) and temporary working copies (ANON-17).

* ``POST /files/{code}/marks`` revises the marks (levels given replace; ``restrict`` / ``unrestrict`` add and
  remove restrictions; ``reason`` is required): 403 ``marks_change_refused`` for anyone but the decider,
  their successor or superior (logged). ``GET /files/{code}/marks/history``: every change, oldest first.
* ``POST /workcopies`` creates a working copy of some fields of a file's records for the purpose in
  ``X-Hogo-Purpose`` (``where`` conditions in the body, never in a URL); 403 ``working_copy_refused`` when the
  marks forbid it. ``GET /workcopies`` (live ones; ``?all=true`` with disposed), ``GET /workcopies/report``,
  ``GET /workcopies/{id}``, ``GET /workcopies/{id}/data`` (the holder only), ``POST /workcopies/{id}/dispose``,
  ``POST /workcopies/{id}/confirm`` (the file's protection manager checks erasure).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hogo.api.data_routes import FileOut, PurposeHeader, PurposeQuery, _purpose
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx
from hogo.domain.dates import to_instant
from hogo.services import marks, workcopies

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MarksIn(In):
    confidentiality: int | None = Field(default=None, ge=1, le=3)
    integrity: int | None = Field(default=None, ge=1, le=2)
    availability: int | None = Field(default=None, ge=1, le=2)
    restrict: list[str] = Field(default_factory=list, max_length=10)
    unrestrict: list[str] = Field(default_factory=list, max_length=10)
    reason: str = Field(max_length=1000)


class MarksChangeOut(Out):
    id: int
    file: str
    version: int
    before: dict[str, Any]
    after: dict[str, Any]
    changed_by: str
    basis: str
    reason: str
    changed_at: dt.datetime


class CopyIn(In):
    file: str = Field(max_length=63)
    fields: list[str] = Field(min_length=1, max_length=200)
    where: dict[str, str] = Field(default_factory=dict, max_length=10)
    expires_at: dt.datetime


class CopyOut(Out):
    id: str
    file: str
    department: str
    holder: str
    purpose: str
    fields: list[str]
    where_fields: list[str]
    records: int
    marks: dict[str, Any]
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime
    disposed_at: dt.datetime | None
    disposed_by: str | None
    disposal_reason: str | None
    confirmed_at: dt.datetime | None
    confirmed_by: str | None
    confirmation_note: str | None
    key_destroyed: bool
    data_present: bool


class CopyDataOut(Out):
    working_copy: CopyOut
    rows: list[dict[str, Any]]


class ReportOut(Out):
    outstanding: list[CopyOut]
    awaiting_confirmation: list[CopyOut]


class ConfirmIn(In):
    note: str | None = Field(default=None, max_length=1000)


@router.post("/files/{code}/marks", response_model=FileOut, tags=["files"])
def change_marks(code: str, body: MarksIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> FileOut:
    """Revise the file's marks (SEC-46(3)): a new definition version, its history and a log entry."""
    f = marks.change_marks(hogo, principal, code, confidentiality=body.confidentiality, integrity=body.integrity,
                           availability=body.availability, restrict=body.restrict, unrestrict=body.unrestrict,
                           reason=body.reason, ctx=ctx)
    return FileOut.model_validate(f)


@router.get("/files/{code}/marks/history", response_model=list[MarksChangeOut], tags=["files"])
def marks_history(code: str, hogo: HogoDep, principal: PrincipalDep) -> list[MarksChangeOut]:
    return [MarksChangeOut.model_validate(h) for h in marks.history(hogo, principal, code)]


@router.post("/workcopies", response_model=CopyOut, status_code=201, tags=["workcopies"])
def create_copy(body: CopyIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                purpose_h: PurposeHeader = None, purpose_q: PurposeQuery = None) -> CopyOut:
    expires = to_instant(body.expires_at, hogo.settings.timezone)
    assert expires is not None
    c = workcopies.create_copy(hogo, principal, body.file, fields=body.fields, where=body.where,
                               purpose=_purpose(purpose_h, purpose_q), expires_at=expires, ctx=ctx)
    return CopyOut.model_validate(c)


@router.get("/workcopies", response_model=list[CopyOut], tags=["workcopies"])
def list_copies(hogo: HogoDep, principal: PrincipalDep, all: bool = False) -> list[CopyOut]:
    return [CopyOut.model_validate(c) for c in workcopies.list_copies(hogo, principal, include_disposed=all)]


@router.get("/workcopies/report", response_model=ReportOut, tags=["workcopies"])
def copies_report(hogo: HogoDep, principal: PrincipalDep) -> ReportOut:
    rep = workcopies.report(hogo, principal)
    return ReportOut(outstanding=[CopyOut.model_validate(c) for c in rep["outstanding"]],
                     awaiting_confirmation=[CopyOut.model_validate(c) for c in rep["awaiting_confirmation"]])


@router.get("/workcopies/{copy_id}", response_model=CopyOut, tags=["workcopies"])
def show_copy(copy_id: str, hogo: HogoDep, principal: PrincipalDep) -> CopyOut:
    return CopyOut.model_validate(workcopies.show_copy(hogo, principal, copy_id))


@router.get("/workcopies/{copy_id}/data", response_model=CopyDataOut, tags=["workcopies"])
def read_copy(copy_id: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> CopyDataOut:
    got = workcopies.read_copy(hogo, principal, copy_id, ctx=ctx)
    return CopyDataOut(working_copy=CopyOut.model_validate(got.working_copy), rows=got.rows)


@router.post("/workcopies/{copy_id}/dispose", response_model=CopyOut, tags=["workcopies"])
def dispose_copy(copy_id: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> CopyOut:
    return CopyOut.model_validate(workcopies.dispose_copy(hogo, principal, copy_id, ctx=ctx))


@router.post("/workcopies/{copy_id}/confirm", response_model=CopyOut, tags=["workcopies"])
def confirm_disposal(copy_id: str, body: ConfirmIn, hogo: HogoDep, principal: PrincipalDep,
                     ctx: ActorCtx) -> CopyOut:
    return CopyOut.model_validate(workcopies.confirm_disposal(hogo, principal, copy_id, note=body.note, ctx=ctx))
