"""/api/v1/backups: database backups on the server's side (ANON-19, SEC-51).

For administrators (``system:backup:manage``): a backup is ciphertext, so making, listing and verifying
one is administration, not data access (SEC-131). Targets are directories on the server's host, apart
from its data directory. Restoring is not here: it is a local command on a stopped server
(``hogo backup restore``), as is the backup of key material (``hogo backup keys``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx
from hogo.services import backups

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["backups"])


class BackupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)

    targets: list[str] = Field(min_length=1, max_length=8, description="absolute directories on the server's host")
    importance: str | None = Field(default=None, description="critical, high, normal or low: sets the retention "
                                   "(SEC-51); default: high when a file is of availability 2, else normal")
    retention_days: int | None = Field(default=None, ge=1, le=backups.MAX_RETENTION_DAYS)


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample: int = Field(default=backups.SAMPLE_RECORDS, ge=0, le=1000, description="records to decrypt")


class BackupOut(BaseModel):
    id: str
    kind: str
    engine: str
    method: str
    schema_revision: str | None
    importance: str
    size_bytes: int
    sha256: str
    targets: list[str]
    log_size: int | None
    status: str
    created_at: dt.datetime
    created_by: str
    retention_days: int
    expires_at: dt.datetime
    verified_at: dt.datetime | None
    verification: dict[str, Any] | None
    disposed_at: dt.datetime | None
    disposal: dict[str, Any] | None


@router.post("/backups", response_model=BackupOut, status_code=201)
def create_backup(body: BackupIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> dict[str, Any]:
    """A consistent online backup, encrypted and signed, into every target (ANON-19)."""
    return backups.create_backup(hogo, principal, [Path(t) for t in body.targets], importance=body.importance,
                                 retention_days=body.retention_days, ctx=ctx)


@router.get("/backups", response_model=list[BackupOut])
def list_backups(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> list[dict[str, Any]]:
    """The catalog: place, method, retention, status, verifications and disposals (SEC-51(2))."""
    return backups.list_backups(hogo, principal, ctx=ctx)


@router.post("/backups/{backup_id}/verify")
def verify_backup(backup_id: str, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx,
                  body: VerifyIn | None = None) -> dict[str, Any]:
    """Restore into a scratch place and check the signature, every chunk, the log and a sample of records."""
    return backups.verify_backup(hogo, principal, backup_id=backup_id, sample=(body or VerifyIn()).sample, ctx=ctx)


@router.post("/backups/dispose-expired")
def dispose_expired(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> dict[str, Any]:
    """Delete expired backups from every place they are kept, and record it (SEC-51(3))."""
    return backups.dispose_expired(hogo, principal, ctx=ctx)
