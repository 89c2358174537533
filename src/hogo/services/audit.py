"""Recording security events into the append-only ``audit_events`` table (MN-3b, SEC-132, SEC-84).

``record`` adds the event to the caller's transaction: the change and its record commit together or
not at all. Never pass a secret in ``details``: the keys are checked against a deny-list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from hogo.domain.events import Event, Outcome
from hogo.store.models import AuditEvent

_AUDIT_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_FORBIDDEN_DETAIL_KEYS = ("password", "secret", "token", "totp", "code", "my_number", "mynumber")


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """Where a request came from: recorded with every event."""

    client_addr: str | None = None
    user_agent: str | None = None
    session_id: str | None = None


def record(
    db: Session,
    *,
    now: dt.datetime,
    event: Event,
    outcome: Outcome,
    ctx: RequestContext,
    actor_id: int | None = None,
    actor_name: str | None = None,
    subject_user_id: int | None = None,
    target: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    for key in details or {}:
        if any(bad in key.lower() for bad in _FORBIDDEN_DETAIL_KEYS):
            raise ValueError(f"audit details must not carry secrets (key {key!r})")
    # A Core insert: the ORM's unit of work (identity map, flush) is most of an event's cost, and
    # nobody reads the event back in the same transaction.
    db.execute(insert(_AUDIT_EVENTS), {
        "ts": now, "event": event.value, "outcome": outcome.value, "reason": reason, "actor_id": actor_id,
        "actor_name": actor_name, "subject_user_id": subject_user_id, "target": target,
        "client_addr": ctx.client_addr, "session_id": ctx.session_id, "details": details or None,
    })


def count_failures_from(db: Session, *, client_addr: str, since: dt.datetime) -> int:
    """Failed logins from one address since ``since`` (rate limit across all server processes)."""
    return int(
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.client_addr == client_addr,
                AuditEvent.event == Event.LOGIN_FAILED.value,
                AuditEvent.ts >= since,
            )
        )
        or 0
    )


def search(
    db: Session,
    *,
    actor_id: int | None = None,
    subject_user_id: int | None = None,
    event_prefix: str | None = None,
    outcome: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditEvent]:
    q = select(AuditEvent)
    if actor_id is not None:
        q = q.where(AuditEvent.actor_id == actor_id)
    if subject_user_id is not None:
        q = q.where(AuditEvent.subject_user_id == subject_user_id)
    if event_prefix:
        q = q.where(AuditEvent.event.startswith(event_prefix, autoescape=True))
    if outcome:
        q = q.where(AuditEvent.outcome == outcome)
    if since:
        q = q.where(AuditEvent.ts >= since)
    if until:
        q = q.where(AuditEvent.ts < until)
    if before_id:
        q = q.where(AuditEvent.id < before_id)
    return list(db.scalars(q.order_by(AuditEvent.id.desc()).limit(min(max(limit, 1), 1000))))
