"""Approvals (承認): requests that others must approve before they take effect (SEC-19).

A request has a *kind* (``correction`` now, ANON-8; ``takeout`` later). The kind declares the approval
*steps* it needs, each an approver level — a role, in a department for department-scoped roles — e.g. a
correction needs the protection manager of the file's department; a confidentiality-3 take-out will
need both the information-security officer and the manager (SEC-47(2), SEC-48(3)). Every step needs
its own approver: one person never decides two steps of a request. The request is ``pending`` until
every step is approved (then ``approved``, and the kind's ``apply`` runs: ``applied``, or ``failed``
with the reason) or one is rejected (``rejected``); the requester may cancel a pending request.

Separation of duties (SEC-19): the requester never decides their own request. An approver who is
conflicted — the requester, or the person the request is about — cannot decide: the step escalates to
the superior level (the protection manager of the parent department, then the general protection
manager) and the escalation is kept with the step and logged. A step whose every holder is conflicted
(or that nobody holds) escalates as the request is made.

Every request, decision, refused attempt, escalation and outcome is an entry of the tamper-evident log,
in the same transaction as the change. Entries name the request, the kind, the steps and the fields,
never values nor the free-text reasons (a reason might quote personal data; it stays in the request).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.domain.events import Event, Outcome
from hogo.domain.roles import DEPARTMENT_SCOPED, Permission, Role
from hogo.errors import Conflict, Forbidden, HogoError, NotFound, ValidationFailed
from hogo.services import audit
from hogo.services.alerts import clean_note
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import ApprovalDecision, ApprovalRequest, Department, User, UserRole

STATUSES = ("pending", "approved", "rejected", "applied", "failed", "cancelled")
STATUS_FILTERS = ("open", "all", *STATUSES)  # open = pending or approved (not yet applied)
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "pending": ("承認待ち", "pending"),
    "approved": ("承認済", "approved"),
    "rejected": ("却下", "rejected"),
    "applied": ("反映済", "applied"),
    "failed": ("失敗", "failed"),
    "cancelled": ("取消", "cancelled"),
}
MAX_REASON = 1000


@dataclasses.dataclass(frozen=True)
class Level:
    """Who may decide a step: holders of ``role`` (in ``department`` for department-scoped roles)."""

    role: str
    department: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"role": self.role, "department": self.department}

    @property
    def label(self) -> str:
        return f"{self.role}@{self.department}" if self.department else self.role


ApplyFn = Callable[[Hogo, Principal, int, RequestContext], dict[str, Any]]
# What a kind shows of a request beyond the common columns (e.g. a take-out's recipient and due date).
DetailsFn = Callable[[Session, ApprovalRequest], dict[str, Any] | None]
# Run in the transaction that rejects or cancels a request (e.g. to close a take-out's register entry).
ClosedFn = Callable[[Session, Hogo, ApprovalRequest, Principal, RequestContext], None]


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of request: its name, labels, and what runs once every step has approved it."""

    name: str
    label_ja: str
    label_en: str
    apply: ApplyFn | None = None
    details: DetailsFn | None = None
    closed: ClosedFn | None = None


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> None:
    KINDS[kind.name] = kind


def _kind(name: str) -> Kind:
    if name not in KINDS:  # kinds register themselves when their module is imported
        import hogo.services.corrections
        import hogo.services.takeouts  # noqa: F401
    kind = KINDS.get(name)
    if kind is None:
        raise ValidationFailed(f"unknown kind of request {name!r}", field="kind")
    return kind


# ------------------------------------------------------------------------------ hierarchy


def superior(db: Session, level: Level) -> Level | None:
    """The level above: a department's protection manager answers to the parent department's, the
    top department's to the general protection manager (総括保護管理者), who has none above; so does the
    information-security officer (情報セキュリティ責任者, a take-out's second step)."""
    if level.role == Role.GENERAL_PROTECTION_MANAGER.value:
        return None
    if level.role == Role.PROTECTION_MANAGER.value and level.department:
        parent = _parent(db, level.department)
        if parent:
            return Level(Role.PROTECTION_MANAGER.value, parent)
    return Level(Role.GENERAL_PROTECTION_MANAGER.value, None)


def _parent(db: Session, department: str) -> str | None:
    parent_id = db.scalar(select(Department.parent_id).where(Department.code == department))
    if parent_id is None:
        return None
    return db.scalar(select(Department.code).where(Department.id == parent_id))


def holders(db: Session, level: Level, now: dt.datetime) -> set[int]:
    """Active accounts that hold the level's role (in its department)."""
    q = select(User.id, User.valid_from, User.valid_until).join(UserRole, UserRole.user_id == User.id).where(
        UserRole.role == level.role, User.disabled_at.is_(None))
    if level.department is not None and Role(level.role) in DEPARTMENT_SCOPED:
        q = q.join(Department, Department.id == UserRole.department_id).where(Department.code == level.department)
    return {uid for uid, vf, vu in db.execute(q) if (vf is None or vf <= now) and (vu is None or vu > now)}


def holds(principal: Principal, level: Level) -> bool:
    return any(g.role.value == level.role and (level.department is None or Role(level.role) not in DEPARTMENT_SCOPED
                                               or g.department == level.department) for g in principal.roles)


# ---------------------------------------------------------------------------------- views


@dataclasses.dataclass(frozen=True)
class DecisionView:
    step: int
    decision: str
    role: str
    department: str | None
    approver: str
    reason: str | None
    decided_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class StepView:
    index: int
    role: str  # the level that decides now (after any escalation)
    department: str | None
    required_role: str  # the level the kind asked for
    required_department: str | None
    escalations: tuple[dict[str, Any], ...]
    decision: DecisionView | None


@dataclasses.dataclass(frozen=True)
class RequestView:
    id: int
    kind: str
    status: str
    requester: str
    subject_user: str | None
    file: str | None
    record_id: str | None
    purpose: str | None
    reason: str
    fields: tuple[str, ...]
    base_revision: int | None
    steps: tuple[StepView, ...]
    outcome: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    decided_at: dt.datetime | None
    applied_at: dt.datetime | None
    can_decide: bool  # the viewer may decide one of its open steps now
    details: dict[str, Any] | None = None  # what the kind adds (a take-out's recipient, transport, due date)

    @property
    def status_ja(self) -> str:
        return STATUS_LABELS.get(self.status, (self.status, self.status))[0]

    @property
    def kind_ja(self) -> str:
        k = KINDS.get(self.kind)
        return k.label_ja if k else self.kind

    @property
    def kind_en(self) -> str:
        k = KINDS.get(self.kind)
        return k.label_en if k else self.kind


def _decisions(db: Session, request_id: int) -> dict[int, ApprovalDecision]:
    return {d.step: d for d in db.scalars(select(ApprovalDecision).where(ApprovalDecision.request_id == request_id))}


def _view(db: Session, r: ApprovalRequest, viewer: Principal | None,
          decided: dict[int, ApprovalDecision] | None = None) -> RequestView:
    """``decided``: the request's decisions, when the caller has read them already."""
    if decided is None:
        decided = _decisions(db, r.id)
    steps = []
    for i, s in enumerate(r.steps):
        d = decided.get(i)
        steps.append(StepView(
            index=i, role=s["role"], department=s.get("department"), required_role=s["required_role"],
            required_department=s.get("required_department"), escalations=tuple(s.get("escalations") or ()),
            decision=None if d is None else DecisionView(d.step, d.decision, d.role, d.department, d.approver_name,
                                                         d.reason, d.decided_at)))
    subject = db.scalar(select(User.username).where(User.id == r.subject_user_id)) if r.subject_user_id else None
    can = viewer is not None and _open_step(r, decided, viewer) is not None
    kind = KINDS.get(r.kind) or _kind(r.kind)
    return RequestView(
        id=r.id, kind=r.kind, status=r.status, requester=r.requester_name, subject_user=subject, file=r.file_code,
        record_id=r.record_id, purpose=r.purpose, reason=r.reason, fields=tuple(r.fields),
        base_revision=r.base_revision,
        steps=tuple(steps), outcome=r.outcome, created_at=r.created_at, updated_at=r.updated_at,
        decided_at=r.decided_at, applied_at=r.applied_at, can_decide=can,
        details=kind.details(db, r) if kind.details else None)


def _open_step(r: ApprovalRequest, decided: dict[int, ApprovalDecision], p: Principal) -> int | None:
    """The first undecided step of a pending request that ``p`` may decide (None: none)."""
    if r.status != "pending" or p.user_id in (r.requester_id, r.subject_user_id):
        return None
    if any(d.approver_id == p.user_id for d in decided.values()):
        return None
    for i, s in enumerate(r.steps):
        if i not in decided and holds(p, Level(s["role"], s.get("department"))):
            return i
    return None


def _may_see(r: ApprovalRequest, decided: dict[int, ApprovalDecision], p: Principal) -> bool:
    return p.can(Permission.AUDIT_READ) or _involved(r, decided, p)


def _involved(r: ApprovalRequest, decided: dict[int, ApprovalDecision], p: Principal) -> bool:
    if p.user_id == r.requester_id or any(d.approver_id == p.user_id for d in decided.values()):
        return True
    return any(holds(p, Level(s["role"], s.get("department")))
               or holds(p, Level(s["required_role"], s.get("required_department"))) for s in r.steps)


def involved(db: Session, r: ApprovalRequest, p: Principal) -> bool:
    """The requester, an approver who decided it, or a holder of one of its steps' levels (not the audit
    roles merely by their role): who may see what a request carries, e.g. a correction's values."""
    return _involved(r, _decisions(db, r.id), p)


# ------------------------------------------------------------------------------- creating


def _log(db: Session, hogo: Hogo, actor: Principal, r: ApprovalRequest, event: Event, ctx: RequestContext, *,
         outcome: Outcome = Outcome.SUCCESS, reason: str | None = None, details: dict[str, Any] | None = None,
         ) -> None:
    audit.record(db, now=hogo.clock.now(), event=event, outcome=outcome, ctx=ctx, actor_id=actor.user_id,
                 actor_name=actor.username, subject_user_id=r.subject_user_id, target=f"approval:{r.id}",
                 reason=reason, details={"request": r.id, "kind": r.kind, "status": r.status, **(details or {})},
                 file_code=r.file_code, purpose=r.purpose, records=[r.record_id] if r.record_id else (),
                 fields=r.fields)


def _escalate(db: Session, hogo: Hogo, r: ApprovalRequest, index: int, cause: str, by: Principal,
              ctx: RequestContext) -> Level | None:
    """Move step ``index`` to the superior level; recorded with the step and in the log."""
    steps = [dict(s) for s in r.steps]
    step = steps[index]
    current = Level(step["role"], step.get("department"))
    up = superior(db, current)
    if up is None:
        return None
    now = hogo.clock.now()
    step["escalations"] = [*(step.get("escalations") or []), {
        "from": current.to_dict(), "to": up.to_dict(), "cause": cause, "by": by.username, "at": now.isoformat()}]
    step["role"], step["department"] = up.role, up.department
    steps[index] = step
    r.steps = steps
    r.updated_at = now
    _log(db, hogo, by, r, Event.APPROVAL_ESCALATED, ctx, reason=cause,
         details={"step": index, "from": current.label, "to": up.label})
    return up


def create(db: Session, hogo: Hogo, requester: Principal, *, kind: str, steps: Iterable[Level], reason: str,
           ctx: RequestContext, file_id: int | None = None, file_code: str | None = None,
           record_id: str | None = None, purpose: str | None = None, fields: Iterable[str] = (),
           base_revision: int | None = None, payload: bytes | None = None, payload_binding: str | None = None,
           subject_user_id: int | None = None) -> ApprovalRequest:
    """Make a request in the caller's transaction (the kind's module calls this), logged. A step that no
    unconflicted active account holds escalates at once (SEC-19)."""
    _kind(kind)
    levels = list(steps)
    if not levels:
        raise ValidationFailed("a request needs at least one approval step", field="steps")
    now = hogo.clock.now()
    r = ApprovalRequest(
        kind=kind, status="pending", requester_id=requester.user_id, requester_name=requester.username,
        subject_user_id=subject_user_id, file_id=file_id, file_code=file_code, record_id=record_id, purpose=purpose,
        reason=reason, fields=sorted(fields), base_revision=base_revision, payload=payload,
        payload_binding=payload_binding, created_at=now, updated_at=now,
        steps=[{"role": lv.role, "department": lv.department, "required_role": lv.role,
                "required_department": lv.department, "escalations": []} for lv in levels],
    )
    db.add(r)
    db.flush()
    _log(db, hogo, requester, r, Event.APPROVAL_REQUESTED, ctx,
         details={"steps": [lv.label for lv in levels], "base_revision": base_revision})
    conflicted = {requester.user_id, subject_user_id} - {None}
    for i in range(len(levels)):
        while True:
            s = r.steps[i]
            level = Level(s["role"], s.get("department"))
            able = holders(db, level, now)
            if able - conflicted:
                break
            cause = ("requester" if requester.user_id in able else "subject" if subject_user_id in able
                     else "no_approver")
            if _escalate(db, hogo, r, i, cause, requester, ctx) is None:
                break
    return r


# -------------------------------------------------------------------------------- reading


def _request(db: Session, request_id: int, *, lock: bool = False) -> ApprovalRequest:
    q = select(ApprovalRequest).where(ApprovalRequest.id == request_id)
    r = db.scalar(q.with_for_update() if lock else q)
    if r is None:
        raise NotFound(f"no approval request {request_id}", code="approval_not_found")
    return r


def list_requests(hogo: Hogo, principal: Principal, *, status: str = "open", kind: str | None = None,
                  mine: bool = False, limit: int = 200) -> list[RequestView]:
    """Newest first, those the viewer may see: their own, those they may decide or have decided, and
    every request for the audit roles. ``status``: open (pending or approved), all, or one status."""
    principal.require(Permission.SELF_READ)
    if status not in STATUS_FILTERS:
        raise ValidationFailed(f"status must be one of {', '.join(STATUS_FILTERS)}", field="status")
    q = select(ApprovalRequest)
    if status == "open":
        q = q.where(ApprovalRequest.status.in_(("pending", "approved")))
    elif status != "all":
        q = q.where(ApprovalRequest.status == status)
    if kind:
        q = q.where(ApprovalRequest.kind == kind)
    if mine:
        q = q.where(ApprovalRequest.requester_id == principal.user_id)
    out: list[RequestView] = []
    with hogo.unit_of_work(readonly=True) as db:
        for r in db.scalars(q.order_by(ApprovalRequest.id.desc()).limit(5000)):
            decided = _decisions(db, r.id)
            if _may_see(r, decided, principal):
                out.append(_view(db, r, principal, decided))
                if len(out) >= min(max(limit, 1), 1000):
                    break
    return out


def get_request(hogo: Hogo, principal: Principal, request_id: int) -> RequestView:
    principal.require(Permission.SELF_READ)
    with hogo.unit_of_work(readonly=True) as db:
        r = _request(db, request_id)
        decided = _decisions(db, r.id)
        if not _may_see(r, decided, principal):
            raise NotFound(f"no approval request {request_id}", code="approval_not_found")
        return _view(db, r, principal, decided)


# -------------------------------------------------------------------------------- deciding


def _clean_reason(reason: str | None, *, required: bool) -> str | None:
    return clean_note(reason, field="reason", required=required)


def decide(hogo: Hogo, principal: Principal, request_id: int, *, approve: bool, reason: str | None,
           ctx: RequestContext) -> RequestView:
    """Approve or reject one step of a pending request (a reason is required to reject). The last
    approval makes the request ``approved`` and runs the kind's ``apply``."""
    principal.require(Permission.SELF_WRITE)
    text = _clean_reason(reason, required=not approve)
    event = Event.APPROVAL_APPROVED if approve else Event.APPROVAL_REJECTED
    refusal: HogoError | None = None
    with hogo.unit_of_work() as db:
        r = _request(db, request_id, lock=True)
        decided = _decisions(db, r.id)
        if not _may_see(r, decided, principal):
            raise NotFound(f"no approval request {request_id}", code="approval_not_found")
        if r.status != "pending":
            raise Conflict(f"request {r.id} is {r.status}, not pending", code="approval_not_pending",
                           details={"status": r.status})
        refusal = _refusal(db, hogo, principal, r, decided, ctx)
        if refusal is not None:
            _log(db, hogo, principal, r, event, ctx, outcome=Outcome.DENIED, reason=refusal.code,
                 details={"requirement": "SEC-19"} if refusal.requirement else None)
        else:
            index = _open_step(r, decided, principal)
            assert index is not None
            step = r.steps[index]
            now = hogo.clock.now()
            db.add(ApprovalDecision(request_id=r.id, step=index, decision="approve" if approve else "reject",
                                    role=step["role"], department=step.get("department"),
                                    approver_id=principal.user_id, approver_name=principal.username, reason=text,
                                    decided_at=now))
            r.updated_at = now
            if not approve:
                r.status, r.decided_at, r.payload = "rejected", now, None  # the proposed values are not kept
                if (closed := _kind(r.kind).closed) is not None:
                    closed(db, hogo, r, principal, ctx)
            elif len(decided) + 1 == len(r.steps):
                r.status, r.decided_at = "approved", now
            _log(db, hogo, principal, r, event, ctx, details={"step": index, "level": Level(
                step["role"], step.get("department")).label, "escalated": bool(step.get("escalations"))})
            db.flush()
        status, kind = r.status, r.kind
    if refusal is not None:
        raise refusal
    if status == "approved":
        apply(hogo, principal, request_id, ctx=ctx, kind=kind)
    return get_request(hogo, principal, request_id)


def _refusal(db: Session, hogo: Hogo, p: Principal, r: ApprovalRequest, decided: dict[int, ApprovalDecision],
             ctx: RequestContext) -> HogoError | None:
    """Why ``p`` may not decide now (None: they may). A conflicted holder of an open step's level
    escalates that step to the superior level (kept, and logged, whatever the refusal)."""
    open_steps = [i for i, s in enumerate(r.steps)
                  if i not in decided and holds(p, Level(s["role"], s.get("department")))]
    conflict = ("requester" if p.user_id == r.requester_id else
                "subject" if r.subject_user_id is not None and p.user_id == r.subject_user_id else None)
    if conflict is not None:
        escalated = [up.label for i in open_steps if (up := _escalate(db, hogo, r, i, conflict, p, ctx)) is not None]
        if conflict == "requester":
            message = "you cannot decide your own request"
            code = "own_request"
        else:
            message = "you cannot decide a request about yourself"
            code = "conflicted"
        if escalated:
            message += f"; it has been escalated to {', '.join(escalated)}"
        return Forbidden(message, code=code, requirement="SEC-19", details={"escalated_to": escalated})
    if any(d.approver_id == p.user_id for d in decided.values()):
        return Forbidden("you have decided a step of this request already; another approver decides the rest",
                         code="already_decided", requirement="SEC-19")
    if not open_steps:
        return Forbidden("you are not an approver of this request", code="not_an_approver")
    return None


def approved_to_apply(db: Session, request_id: int, kind: str, approver: Principal, *, what: str
                      ) -> tuple[ApprovalRequest, list[str]]:
    """For a kind's ``apply``: the approved request of ``kind``, locked for this transaction, and the names of
    its approvers; only one of them applies it (SEC-19). ``what`` names the kind in the refusal."""
    r = db.scalar(select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update())
    if r is None or r.kind != kind:
        raise NotFound(f"no {what} request {request_id}", code="approval_not_found")
    if r.status != "approved":
        raise Conflict(f"request {r.id} is {r.status}, not approved", code="approval_not_approved")
    approved_by = db.execute(select(ApprovalDecision.approver_id, ApprovalDecision.approver_name).where(
        ApprovalDecision.request_id == r.id, ApprovalDecision.decision == "approve")).all()
    if approver.user_id not in {uid for uid, _ in approved_by}:
        raise Forbidden("only an approver of this request may apply it", code="not_an_approver",
                        requirement="SEC-19")
    return r, [name for _, name in approved_by]


def apply(hogo: Hogo, principal: Principal, request_id: int, *, ctx: RequestContext, kind: str | None = None) -> None:
    """Run the kind's ``apply`` for an approved request (``decide`` does so after the last approval; an
    approver may run it again with ``retry``). When the subject no longer allows it (Conflict: e.g. the
    record changed since the request; NotFound: it is gone) the request is marked ``failed`` with the
    reason, logged, and the error raised. Any other refusal (the log not anchored, a token without the
    data scope) leaves the request ``approved``, to be applied later."""
    if kind is None:
        with hogo.unit_of_work(readonly=True) as db:
            kind = _request(db, request_id).kind
    k = _kind(kind)
    if k.apply is None:
        return
    try:
        k.apply(hogo, principal, request_id, ctx)
    except (Conflict, NotFound) as exc:
        with hogo.unit_of_work() as db:
            r = _request(db, request_id, lock=True)
            if r.status == "approved":
                r.status, r.updated_at, r.payload = "failed", hogo.clock.now(), None
                r.outcome = {"error": exc.code, "message": exc.message}
                _log(db, hogo, principal, r, Event.APPROVAL_FAILED, ctx, outcome=Outcome.FAILURE, reason=exc.code)
        raise


def retry(hogo: Hogo, principal: Principal, request_id: int, *, ctx: RequestContext) -> RequestView:
    """Apply an approved request whose application was refused for a passing reason (by an approver)."""
    principal.require(Permission.SELF_WRITE)
    with hogo.unit_of_work(readonly=True) as db:
        r = _request(db, request_id)
        if not _may_see(r, _decisions(db, r.id), principal):
            raise NotFound(f"no approval request {request_id}", code="approval_not_found")
        if r.status != "approved":
            raise Conflict(f"request {r.id} is {r.status}, not approved", code="approval_not_approved",
                           details={"status": r.status})
        kind = r.kind
    apply(hogo, principal, request_id, ctx=ctx, kind=kind)
    return get_request(hogo, principal, request_id)


def cancel(hogo: Hogo, principal: Principal, request_id: int, *, reason: str | None,
           ctx: RequestContext) -> RequestView:
    """The requester withdraws a pending request."""
    principal.require(Permission.SELF_WRITE)
    text = _clean_reason(reason, required=False)
    with hogo.unit_of_work() as db:
        r = _request(db, request_id, lock=True)
        if r.requester_id != principal.user_id:
            raise Forbidden("only the requester may cancel a request", code="not_requester")
        if r.status != "pending":
            raise Conflict(f"request {r.id} is {r.status}, not pending", code="approval_not_pending",
                           details={"status": r.status})
        r.status, r.updated_at, r.payload = "cancelled", hogo.clock.now(), None
        r.outcome = {"cancelled": True, **({"note": text} if text else {})}
        if (closed := _kind(r.kind).closed) is not None:
            closed(db, hogo, r, principal, ctx)
        _log(db, hogo, principal, r, Event.APPROVAL_CANCELLED, ctx)
    return get_request(hogo, principal, request_id)


__all__ = ["KINDS", "STATUSES", "Kind", "Level", "RequestView", "apply", "cancel", "create", "decide",
           "get_request", "holders", "holds", "involved", "list_requests", "register_kind", "retry", "superior"]
