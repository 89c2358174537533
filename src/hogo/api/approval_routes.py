"""/api/v1/approvals and record corrections: the approval workflow (SEC-19) and corrections (ANON-8).

``POST /files/{code}/records/{id}/corrections`` requests a correction (the purpose in ``X-Hogo-Purpose``;
the new values in the body, never in a URL; they are not echoed back). ``/approvals`` lists the requests
the caller may see (their own, those they may decide or have decided; every request for the audit
roles), shows one, and approves, rejects (a reason is required) or cancels it (the requester only).
Deciding your own request, or one about yourself, is refused with 403 and the rule (SEC-19); an approval
whose record changed meanwhile ends in 409 ``revision_conflict`` and the request is ``failed``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from hogo.api.data_routes import PurposeHeader, PurposeQuery, _purpose
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx
from hogo.services import approvals, corrections, guard

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=100_000)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DecisionOut(Out):
    decision: str
    role: str
    department: str | None
    approver: str
    reason: str | None
    decided_at: dt.datetime


class StepOut(Out):
    index: int
    role: str
    department: str | None
    required_role: str
    required_department: str | None
    escalations: list[dict[str, Any]]
    decision: DecisionOut | None


class RequestOut(Out):
    id: int
    kind: str
    kind_ja: str
    kind_en: str
    status: str
    status_ja: str
    requester: str
    subject_user: str | None
    file: str | None
    record_id: str | None
    purpose: str | None
    reason: str
    fields: list[str]
    base_revision: int | None
    steps: list[StepOut]
    outcome: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    decided_at: dt.datetime | None
    applied_at: dt.datetime | None
    can_decide: bool
    details: dict[str, Any] | None = None  # what the kind adds (a take-out's recipient, transport, due date)


class ChangesOut(Out):
    request_id: int
    file: str
    record_id: str
    fields: list[str]
    revision_before: int | None
    before: dict[str, str]
    revision_after: int | None
    after: dict[str, str] | None
    masked: list[str]


class RequestListOut(Out):
    requests: list[RequestOut]


class DecideIn(In):
    reason: str | None = Field(default=None, max_length=approvals.MAX_REASON)


class RejectIn(In):
    reason: str = Field(min_length=1, max_length=approvals.MAX_REASON)


class CorrectionIn(In):
    values: dict[str, str | None] = Field(min_length=1, max_length=corrections.MAX_FIELDS,
                                          description="FIELD: new value (empty or null clears the field)")
    reason: str = Field(min_length=1, max_length=approvals.MAX_REASON,
                        description="why (kept with the request; do not quote the values)")
    subject_user: str | None = Field(default=None, max_length=63,
                                     description="the account of the person the record is about, if any")


def request_out(r: approvals.RequestView) -> RequestOut:
    return RequestOut(
        id=r.id, kind=r.kind, kind_ja=r.kind_ja, kind_en=r.kind_en, status=r.status, status_ja=r.status_ja,
        requester=r.requester, subject_user=r.subject_user, file=r.file, record_id=r.record_id, purpose=r.purpose,
        reason=r.reason, fields=list(r.fields), base_revision=r.base_revision,
        steps=[StepOut(index=s.index, role=s.role, department=s.department, required_role=s.required_role,
                       required_department=s.required_department, escalations=list(s.escalations),
                       decision=None if s.decision is None else DecisionOut(
                           decision=s.decision.decision, role=s.decision.role, department=s.decision.department,
                           approver=s.decision.approver, reason=s.decision.reason,
                           decided_at=s.decision.decided_at))
               for s in r.steps],
        outcome=r.outcome, created_at=r.created_at, updated_at=r.updated_at, decided_at=r.decided_at,
        applied_at=r.applied_at, can_decide=r.can_decide, details=r.details)


@router.post("/files/{code}/records/{record_id}/corrections", response_model=RequestOut, status_code=201,
             tags=["approvals"])
def request_correction(code: str, record_id: str, body: CorrectionIn, hogo: HogoDep, principal: PrincipalDep,
                       ctx: ActorCtx, x_purpose: PurposeHeader = None, purpose: PurposeQuery = None) -> RequestOut:
    """Request a correction (ANON-8): needs read access to the record and the fields for the purpose; the
    file's protection manager approves it."""
    r = corrections.request_correction(hogo, principal, code, record_id, body.values, reason=body.reason,
                                       purpose=_purpose(x_purpose, purpose), ctx=ctx, subject_user=body.subject_user)
    return request_out(r)


@router.get("/approvals", response_model=RequestListOut, tags=["approvals"])
def list_requests(
    hogo: HogoDep,
    principal: PrincipalDep,
    status: Annotated[str, Query(pattern="^(open|all|pending|approved|rejected|applied|failed|cancelled)$",
                                 description="open = pending or approved")] = "open",
    kind: Annotated[str | None, Query(max_length=20)] = None,
    mine: Annotated[bool, Query(description="only requests you made")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> RequestListOut:
    """Newest first: the requests you may see."""
    rows = approvals.list_requests(hogo, principal, status=status, kind=kind, mine=mine, limit=limit)
    return RequestListOut(requests=[request_out(r) for r in rows])


@router.get("/approvals/{request_id}", response_model=RequestOut, tags=["approvals"])
def get_request(request_id: int, hogo: HogoDep, principal: PrincipalDep) -> RequestOut:
    return request_out(approvals.get_request(hogo, principal, request_id))


@router.get("/approvals/{request_id}/changes", response_model=ChangesOut, tags=["approvals"])
def correction_changes(request_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> ChangesOut:
    """A correction's fields before and after, for its requester and approvers (the read is recorded;
    identification codes masked)."""
    c = guard.correction_changes(hogo, principal, request_id, ctx=ctx)
    return ChangesOut(request_id=c.request_id, file=c.file, record_id=c.record_id, fields=list(c.fields),
                      revision_before=c.revision_before, before=c.before, revision_after=c.revision_after,
                      after=c.after, masked=list(c.masked))


@router.post("/approvals/{request_id}/approve", response_model=RequestOut, tags=["approvals"])
def approve(request_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
            body: DecideIn | None = None) -> RequestOut:
    """Approve your step; the last approval applies the request. Not your own request (SEC-19)."""
    return request_out(approvals.decide(hogo, principal, request_id, approve=True,
                                        reason=body.reason if body else None, ctx=ctx))


@router.post("/approvals/{request_id}/reject", response_model=RequestOut, tags=["approvals"])
def reject(request_id: int, body: RejectIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> RequestOut:
    """Reject the request, saying why (required)."""
    return request_out(approvals.decide(hogo, principal, request_id, approve=False, reason=body.reason, ctx=ctx))


@router.post("/approvals/{request_id}/apply", response_model=RequestOut, tags=["approvals"])
def apply(request_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> RequestOut:
    """Apply an approved request again after a passing refusal (its approvers only)."""
    return request_out(approvals.retry(hogo, principal, request_id, ctx=ctx))


@router.post("/approvals/{request_id}/cancel", response_model=RequestOut, tags=["approvals"])
def cancel(request_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
           body: DecideIn | None = None) -> RequestOut:
    """The requester withdraws a pending request."""
    return request_out(approvals.cancel(hogo, principal, request_id, reason=body.reason if body else None, ctx=ctx))
