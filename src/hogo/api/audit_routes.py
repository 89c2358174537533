"""/api/v1/audit: the tamper-evident log (SEC-107(2)(3), MN-3b, ANON-12, ANON-13, MLIT-9.5.8).

Log data is personal data too: auditors, SIRT and the general protection manager read it; everyone
else sees only their own history. Every read of the log is itself logged.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from hogo.api import schemas as S
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, _instant
from hogo.services import accounts

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/audit/events", response_model=list[S.AuditEventOut], tags=["audit"])
def audit_events(
    hogo: HogoDep,
    principal: PrincipalDep,
    user: Annotated[str | None, Query(max_length=100, description="events by or about this user")] = None,
    event: Annotated[str | None, Query(max_length=80, description="event name or prefix, e.g. auth:login")] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|failure|denied)$")] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> list[S.AuditEventOut]:
    """Auditors, SIRT and the general protection manager read the record (MN-3b, SEC-132)."""
    rows = accounts.search_events(
        hogo, principal, user=user, event_prefix=event, outcome=outcome,
        since=_instant(hogo, since), until=_instant(hogo, until), limit=limit, before_id=before,
    )
    return [S.AuditEventOut.model_validate(r) for r in rows]
