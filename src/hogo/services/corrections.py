"""Corrections (訂正, ANON-8): errors in a record are corrected on the manager's instruction.

Someone who may read the record and the fields concerned, for a declared purpose, requests a correction
(``request_correction``): the guard checks the read and validates the new values with the file's field
rules, and seals them under the file's data key (they are never plaintext in the request or the log).
The request is an approval request of kind ``correction`` (services/approvals.py) with one step: the
protection manager (保護管理者) of the file's department, escalated to the superior when conflicted
(SEC-19). Once approved, it is applied through the guard (``guard.apply_correction``): the previous
version of the record is kept, encrypted, and the log names the request, the approver, the fields and
the revisions. A record that changed after the request is not overwritten; the request fails with
``revision_conflict`` and must be made again on the current record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from hogo.bootstrap import Hogo
from hogo.domain.roles import Role
from hogo.errors import ValidationFailed
from hogo.services import approvals, guard
from hogo.services.alerts import clean_note
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import User

KIND = "correction"
MAX_FIELDS = 200


def _apply(hogo: Hogo, approver: Principal, request_id: int, ctx: RequestContext) -> dict[str, Any]:
    return guard.apply_correction(hogo, approver, request_id, ctx=ctx)


approvals.register_kind(approvals.Kind(KIND, "訂正", "correction", apply=_apply))


def steps_for(department: str) -> list[approvals.Level]:
    """A correction needs the protection manager of the file's department (ANON-8)."""
    return [approvals.Level(Role.PROTECTION_MANAGER.value, department)]


def request_correction(hogo: Hogo, principal: Principal, file_code: str, record_id: str,
                       values: Mapping[str, Any], *, reason: str, purpose: str | None, ctx: RequestContext,
                       subject_user: str | None = None) -> approvals.RequestView:
    """Request a correction of some fields of a record (an empty value clears a field). ``subject_user``:
    the hogo account of the person the record is about, if they have one (they may not approve it)."""
    if not values:
        raise ValidationFailed("give at least one FIELD=VALUE to correct", field="values")
    if len(values) > MAX_FIELDS:
        raise ValidationFailed(f"at most {MAX_FIELDS} fields per correction", field="values")
    text = clean_note(reason, field="reason", required=True)
    assert text is not None
    prepared = guard.prepare_correction(hogo, principal, file_code, record_id, values, purpose=purpose, ctx=ctx)
    with hogo.unit_of_work() as db:
        subject_id = None
        if subject_user:
            subject_id = db.scalar(select(User.id).where(User.username == subject_user.strip()))
            if subject_id is None:
                raise ValidationFailed(f"no user {subject_user!r}", field="subject_user")
        r = approvals.create(
            db, hogo, principal, kind=KIND, steps=steps_for(prepared.department), reason=text, ctx=ctx,
            file_id=prepared.file_id, file_code=prepared.file_code, record_id=prepared.record_id,
            purpose=guard._purpose(purpose), fields=prepared.fields, base_revision=prepared.revision,
            payload=prepared.sealed, payload_binding=prepared.binding, subject_user_id=subject_id)
        request_id = r.id
    return approvals.get_request(hogo, principal, request_id)


__all__ = ["KIND", "request_correction", "steps_for"]
