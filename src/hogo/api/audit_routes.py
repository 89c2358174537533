"""/api/v1/audit: the tamper-evident log (SEC-107(2)(3), MN-3b, ANON-12, MLIT-9.5.4, MLIT-9.5.8).

Log data is personal data too: auditors, SIRT and the general protection manager read it; everyone
else sees only their own history. Every read of the log is itself logged. The log leaves hogo only
as a signed bundle (``POST /audit/export``, a tar archive). The public key is public: verifiers
need it without an account.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hogo.api import schemas as S
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx, _instant
from hogo.services import audit_access

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["audit"])

_NOTE_MAX = 4096


@router.get("/audit/events", response_model=list[S.AuditEventOut])
def audit_events(
    hogo: HogoDep,
    principal: PrincipalDep,
    ctx: ActorCtx,
    user: Annotated[str | None, Query(max_length=100, description="events by or about this user")] = None,
    file: Annotated[str | None, Query(max_length=63, description="events about this personal-data file")] = None,
    record: Annotated[str | None, Query(max_length=64, description="events that touched this record (person)")] = None,
    event: Annotated[str | None, Query(max_length=80, description="event name or prefix, e.g. auth:login")] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|failure|denied)$")] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, description="only entries with a smaller index (paging)")] = None,
) -> list[S.AuditEventOut]:
    """Newest first. Auditors, SIRT and the general protection manager search everything; everyone
    else gets their own history (MN-3b, SEC-132). The search itself is logged."""
    f = audit_access.SearchFilter(user=user, file=file, record=record, event=event, outcome=outcome,
                                  since=_instant(hogo, since), until=_instant(hogo, until), limit=limit,
                                  before=before)
    rows = audit_access.search(hogo, principal, f, ctx=ctx)
    return [S.AuditEventOut.model_validate({**_columns(r), "expired": r.entry is None}) for r in rows]


def _columns(r: Any) -> dict[str, Any]:
    return {c: getattr(r, c) for c in S.AuditEventOut.model_fields if c != "expired"}


@router.get("/audit/entries/{seq}")
def audit_entry(seq: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> dict[str, Any]:
    """One entry exactly as logged (the bytes the leaf hash covers) and decoded."""
    return audit_access.entry(hogo, principal, seq, ctx=ctx)


@router.get("/audit/entries/{seq}/proof")
def audit_proof(seq: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of the entry in the latest signed checkpoint."""
    return audit_access.prove(hogo, principal, seq, ctx=ctx)


@router.get("/audit/consistency")
def audit_consistency(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                      old_size: Annotated[int, Query(ge=0)],
                      new_size: Annotated[int | None, Query(ge=0)] = None) -> dict[str, Any]:
    """An RFC 9162 consistency proof: the checkpoint of ``new_size`` extends the log of ``old_size``."""
    return audit_access.consistency(hogo, principal, old_size, new_size, ctx=ctx)


@router.get("/audit/public-key", response_class=Response)
def audit_public_key(hogo: HogoDep) -> Response:
    """The log's verifier key (signed-note format): pin it, and verify checkpoints and bundles with it."""
    return Response(audit_access.public_key(hogo) + "\n", media_type="text/plain; charset=utf-8")


@router.get("/audit/checkpoint", response_class=Response)
def audit_checkpoint(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                     fresh: Annotated[bool, Query(description="sign a new checkpoint first")] = False) -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint signed note), to keep and compare later."""
    note = audit_access.latest_checkpoint(hogo, principal, fresh=fresh, ctx=ctx)
    return Response(note, media_type="text/plain; charset=utf-8")


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint: str | None = Field(default=None, max_length=_NOTE_MAX,
                                   description="a checkpoint you kept: the log must extend it")
    fast: bool = Field(default=False, description="skip comparing the search columns with each entry; entries, "
                                                   "hashes, indices, tree and checkpoints are still all checked")


@router.post("/audit/verify")
async def audit_verify(body: VerifyIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> dict[str, Any]:
    """Recompute the whole log on the server: entries, hashes, tree, every checkpoint (SEC-107(3))."""
    report = await run_in_threadpool(audit_access.verify, hogo, principal, remembered=body.checkpoint, ctx=ctx,
                                     deep=not body.fast)
    return {**report.as_dict(), "latest_checkpoint": report.latest_checkpoint}


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: dt.datetime | dt.date | None = None
    until: dt.datetime | dt.date | None = None


@router.post("/audit/export", response_class=Response)
async def audit_export(body: ExportIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> Response:
    """A signed bundle of the entries in [since, until), as a tar archive (ANON-12)."""
    since, until = _instant(hogo, body.since), _instant(hogo, body.until, end=True)

    def build() -> bytes:
        with tempfile.TemporaryDirectory(prefix="hogo-bundle-") as tmp:
            directory = Path(tmp) / "bundle"
            audit_access.export_bundle(hogo, principal, directory, since=since, until=until, ctx=ctx)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                for path in sorted(directory.iterdir()):
                    tar.add(path, arcname=path.name)
            return buf.getvalue()

    data = await run_in_threadpool(build)
    return Response(data, media_type="application/x-tar",
                    headers={"Content-Disposition": 'attachment; filename="hogo-audit-bundle.tar"'})
