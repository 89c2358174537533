"""Grants on personal-data files (アクセス権限): who may do what, to which fields and records, for
which purposes, until when — and the periodic review of unneeded rights.

SEC-130: only holders of ``manage`` on the file, or the protection manager of its department,
change its grants. SEC-19: nobody grants anything to themselves (nor to a role they hold).
SEC-131(3): ``review`` lists rights unused, expired, or held by disabled or expired accounts.
Every change is recorded with who made it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.domain.access import account_state
from hogo.domain.events import Event, Outcome
from hogo.domain.files import Action, FileSpec
from hogo.domain.policy import OWN_DEPARTMENT, Grant
from hogo.domain.roles import DEPARTMENT_SCOPED, REQUIRES_END_DATE, Permission, Role, parse_role
from hogo.domain.text import nfkc
from hogo.errors import Forbidden, NotFound, ValidationFailed
from hogo.services import audit
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.services.files import file_by_code, load_spec
from hogo.store.fastsql import FastSelect
from hogo.store.models import Department, FileGrant, PersonalDataFile, User


@dataclasses.dataclass(frozen=True)
class GrantView:
    id: str
    file: str
    grantee: str  # "user:tanaka" | "role:clerk" | "role:clerk@JINJI"
    actions: tuple[str, ...]
    fields: tuple[str, ...] | None
    purposes: tuple[str, ...]
    segments: tuple[str, ...] | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    note: str | None
    granted_by: str | None
    granted_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


_LIVE_GRANTS = (
    select(FileGrant.id, FileGrant.actions, FileGrant.purposes, FileGrant.fields, FileGrant.segments,
           FileGrant.user_id, FileGrant.role, Department.code, FileGrant.valid_from, FileGrant.valid_until)
    .outerjoin(Department, Department.id == FileGrant.role_department_id)
    .where(FileGrant.file_id == bindparam("file_id"), FileGrant.revoked_at.is_(None))
)
_CANDIDATES: dict[int, FastSelect] = {}  # by the number of roles (a handful at most)


def _candidates(roles: int) -> FastSelect:
    """The prebuilt statement for a requester with ``roles`` distinct roles, run on the driver's cursor
    (store/fastsql.py: this is on every record access)."""
    fast = _CANDIDATES.get(roles)
    if fast is None:
        by_user = FileGrant.user_id == bindparam("user_id")
        who = by_user | FileGrant.role.in_([bindparam(f"role_{i}") for i in range(roles)]) if roles else by_user
        fast = _CANDIDATES.setdefault(roles, FastSelect(_LIVE_GRANTS.where(who)))
    return fast


def candidate_grants(db: Session | Connection, file_id: int, principal: Principal) -> list[Grant]:
    """The live (unrevoked) grants that could apply to this requester: by user or by one of its roles.
    One prebuilt Core statement, run on the connection (this is on every record access)."""
    conn = db.connection() if isinstance(db, Session) else db
    roles = sorted({g.role.value for g in principal.roles})
    params: dict[str, Any] = {"file_id": file_id, "user_id": principal.user_id}
    params.update((f"role_{i}", r) for i, r in enumerate(roles))
    rows = _candidates(len(roles)).all(conn, params)
    return [
        Grant(id=gid, file_id=file_id, actions=frozenset(Action(a) for a in actions), purposes=frozenset(purposes),
              fields=None if fields is None else frozenset(fields),
              segments=None if segments is None else frozenset(segments), user_id=user_id,
              role=Role(role) if role else None, role_department=dept, valid_from=vf, valid_until=vu)
        for gid, actions, purposes, fields, segments, user_id, role, dept, vf, vu in rows
    ]


def _may_manage(db: Session, hogo: Hogo, actor: Principal, row: PersonalDataFile, spec: FileSpec) -> None:
    if actor.pending_steps:
        actor.require(Permission.SELF_WRITE)
    if actor.credential != "session":
        raise Forbidden("grants are changed from a signed-in session, not with an API token", requirement="SEC-130")
    if any(g.role is Role.PROTECTION_MANAGER and g.department == spec.department for g in actor.roles):
        return
    now = hogo.clock.now()
    if any(Action.MANAGE in g.actions and g.in_force(now) for g in candidate_grants(db, row.id, actor)):
        return
    raise Forbidden("only holders of 'manage' on this file or its protection manager change its grants",
                    code="not_file_manager", requirement="SEC-130")


def _clean_list(values: Iterable[str] | None, field: str) -> list[str]:
    out = []
    for v in values or ():
        v = nfkc(str(v)).strip()
        if not v:
            raise ValidationFailed("must not contain empty entries", field=field)
        if v not in out:
            out.append(v)
    return out


def create_grant(hogo: Hogo, actor: Principal, file_code: str, **kw: Any) -> GrantView:
    """Every refused grant change is recorded too (in its own transaction, after the refusal)."""
    try:
        return _create_grant(hogo, actor, file_code, **kw)
    except Forbidden as exc:
        _record_denied(hogo, actor, file_code, exc, kw["ctx"])
        raise


def _create_grant(
    hogo: Hogo,
    actor: Principal,
    file_code: str,
    *,
    user: str | None = None,
    role: str | None = None,
    actions: Iterable[str],
    purposes: Iterable[str],
    fields: Iterable[str] | None = None,
    segments: Iterable[str] | None = None,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    note: str | None = None,
    ctx: RequestContext,
) -> GrantView:
    if (user is None) == (role is None):
        raise ValidationFailed("grant to a user or to a role (one of them)", field="user")
    with hogo.unit_of_work() as db:
        row = file_by_code(db, file_code)
        spec = load_spec(hogo, row)
        _may_manage(db, hogo, actor, row, spec)
        now = hogo.clock.now()
        acts = _clean_list(actions, "actions")
        if not acts:
            raise ValidationFailed("give at least one action", field="actions")
        for a in acts:
            if a not in {x.value for x in Action}:
                raise ValidationFailed(f"unknown action {a!r} (known: {', '.join(x.value for x in Action)})",
                                       field="actions")
        purps = _clean_list(purposes, "purposes")
        if not purps:
            raise ValidationFailed("give at least one purpose", field="purposes")
        for p in purps:
            if p not in spec.purposes:
                raise ValidationFailed(f"{p!r} is not a purpose of this file ({', '.join(spec.purposes)})",
                                       field="purposes", requirement="SEC-45")
        flds = None if fields is None else _clean_list(fields, "fields")
        if flds is not None:
            if not flds:
                raise ValidationFailed("give at least one field, or none for every field", field="fields")
            for f in flds:
                if f not in spec.field_names:
                    raise ValidationFailed(f"no field {f!r} in this file", field="fields")
        segs = None if segments is None else _clean_list(segments, "segments")
        if segs is not None:
            if spec.segment_field is None:
                raise ValidationFailed("this file has no segment_field, so grants cannot be scoped to records",
                                       field="segments")
            if not segs:
                raise ValidationFailed("give at least one segment, or none for every record", field="segments")
        if valid_from is not None and valid_until is not None and valid_until <= valid_from:
            raise ValidationFailed("the end must be after the start", field="valid_until")
        grantee_user: User | None = None
        role_obj: Role | None = None
        role_dept: Department | None = None
        if user is not None:
            grantee_user = db.scalar(select(User).where(User.username == nfkc(user).strip().lower()))
            if grantee_user is None:
                raise NotFound(f"no user named {user!r}", code="user_not_found")
            if grantee_user.id == actor.user_id:
                raise Forbidden("you cannot grant rights to yourself", code="self_approval_forbidden",
                                requirement="SEC-19")
            state = account_state(now=now, valid_from=grantee_user.valid_from, valid_until=grantee_user.valid_until,
                                  disabled_at=grantee_user.disabled_at)
            if state in ("disabled", "expired"):
                raise ValidationFailed(f"the account {grantee_user.username!r} is {state}", field="user")
            is_contractor = any(r.role in {x.value for x in REQUIRES_END_DATE} for r in grantee_user.roles)
            if grantee_user.valid_until is not None and (valid_until is None or valid_until > grantee_user.valid_until):
                # A grant never outlives the account; contractors' grants always end (narrow, expiring).
                valid_until = grantee_user.valid_until
            if is_contractor and valid_until is None:
                raise ValidationFailed("contractor grants need an end date", field="valid_until")
        else:
            assert role is not None
            role_text, _, dept_text = role.partition("@")
            try:
                role_obj = parse_role(role_text)
            except ValueError as exc:
                raise ValidationFailed(str(exc), field="role") from None
            if dept_text:
                if role_obj not in DEPARTMENT_SCOPED:
                    raise ValidationFailed(f"role {role_obj.value!r} is organisation-wide", field="role")
                role_dept = db.scalar(select(Department).where(Department.code == nfkc(dept_text).strip().upper()))
                if role_dept is None:
                    raise NotFound(f"no department {dept_text!r}", code="department_not_found")
            if role_obj is Role.CONTRACTOR and valid_until is None:
                raise ValidationFailed("contractor grants need an end date", field="valid_until")
            held = any(g.role is role_obj and (role_dept is None or g.department == role_dept.code)
                       for g in actor.roles)
            if held:
                raise Forbidden("you hold this role yourself: granting to it would grant to you",
                                code="self_approval_forbidden", requirement="SEC-19")
        g = FileGrant(
            id=str(uuid.uuid4()), file_id=row.id, user_id=grantee_user.id if grantee_user else None,
            role=role_obj.value if role_obj else None, role_department_id=role_dept.id if role_dept else None,
            actions=acts, fields=flds, purposes=purps, segments=segs, valid_from=valid_from, valid_until=valid_until,
            note=(nfkc(note).strip()[:500] or None) if note else None, granted_by_id=actor.user_id, granted_at=now,
        )
        db.add(g)
        db.flush()
        view = _grant_view(db, g, row.code)
        audit.record(
            db, now=now, event=Event.GRANT_CREATED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
            actor_name=actor.username, subject_user_id=grantee_user.id if grantee_user else None,
            target=f"file:{row.code}",
            details={"grant": g.id, "grantee": view.grantee, "actions": acts, "fields": flds, "purposes": purps,
                     "segments": segs, "valid_until": valid_until.isoformat() if valid_until else None},
        )
        return view


def _record_denied(hogo: Hogo, actor: Principal, code: str, exc: Forbidden, ctx: RequestContext) -> None:
    with hogo.unit_of_work() as db:
        audit.record(db, now=hogo.clock.now(), event=Event.GRANT_DENIED, outcome=Outcome.DENIED, ctx=ctx,
                     actor_id=actor.user_id, actor_name=actor.username, target=f"file:{code}", reason=exc.code)


def revoke_grant(hogo: Hogo, actor: Principal, grant_id: str, *, ctx: RequestContext) -> GrantView:
    with hogo.unit_of_work() as db:
        g = db.get(FileGrant, grant_id)
        if g is None:
            raise NotFound("no such grant", code="grant_not_found")
        row = db.get(PersonalDataFile, g.file_id)
        assert row is not None
        _may_manage(db, hogo, actor, row, load_spec(hogo, row))
        now = hogo.clock.now()
        if g.revoked_at is None:
            g.revoked_at = now
            g.revoked_by_id = actor.user_id
        audit.record(
            db, now=now, event=Event.GRANT_REVOKED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
            actor_name=actor.username, subject_user_id=g.user_id, target=f"file:{row.code}",
            details={"grant": g.id},
        )
        db.flush()
        return _grant_view(db, g, row.code)


def list_grants(hogo: Hogo, actor: Principal, file_code: str, *, include_revoked: bool = False) -> list[GrantView]:
    with hogo.unit_of_work(readonly=True) as db:
        row = file_by_code(db, file_code)
        spec = load_spec(hogo, row)
        if not actor.can(Permission.FILE_READ):
            _may_manage(db, hogo, actor, row, spec)
        q = select(FileGrant).where(FileGrant.file_id == row.id)
        if not include_revoked:
            q = q.where(FileGrant.revoked_at.is_(None))
        return [_grant_view(db, g, row.code) for g in db.scalars(q.order_by(FileGrant.granted_at))]


def _grant_view(db: Session, g: FileGrant, code: str) -> GrantView:
    if g.user_id is not None:
        u = db.get(User, g.user_id)
        grantee = f"user:{u.username if u else g.user_id}"
    else:
        dept = db.get(Department, g.role_department_id) if g.role_department_id else None
        grantee = f"role:{g.role}" + (f"@{dept.code}" if dept else "")
    by = db.get(User, g.granted_by_id) if g.granted_by_id else None
    return GrantView(
        id=g.id, file=code, grantee=grantee, actions=tuple(g.actions),
        fields=None if g.fields is None else tuple(g.fields), purposes=tuple(g.purposes),
        segments=None if g.segments is None else tuple(g.segments), valid_from=g.valid_from,
        valid_until=g.valid_until, note=g.note, granted_by=by.username if by else None, granted_at=g.granted_at,
        revoked_at=g.revoked_at, last_used_at=g.last_used_at,
    )


@dataclasses.dataclass(frozen=True)
class ReviewItem:
    grant: GrantView
    findings: tuple[str, ...]  # unused, never_used, expired, not_yet_valid, holder_disabled, holder_expired


def review(hogo: Hogo, actor: Principal, *, file_code: str | None = None, unused_days: int = 90
           ) -> list[ReviewItem]:
    """SEC-131(3): the periodic check of unneeded rights, per file. Managers of the file, the general
    protection manager and auditors may run it."""
    if unused_days < 1:
        raise ValidationFailed("unused_days must be at least 1", field="unused_days")
    now = hogo.clock.now()
    cutoff = now - dt.timedelta(days=unused_days)
    with hogo.unit_of_work(readonly=True) as db:
        q = select(PersonalDataFile).order_by(PersonalDataFile.code)
        if file_code:
            q = q.where(PersonalDataFile.code == file_code.strip().lower())
        files = db.scalars(q).all()
        if file_code and not files:
            raise NotFound(f"no personal-data file {file_code!r}", code="file_not_found")
        out: list[ReviewItem] = []
        for row in files:
            if not actor.can(Permission.FILE_READ):
                _may_manage(db, hogo, actor, row, load_spec(hogo, row))
            for g in db.scalars(select(FileGrant).where(FileGrant.file_id == row.id, FileGrant.revoked_at.is_(None))
                                .order_by(FileGrant.granted_at)):
                findings = []
                if g.valid_until is not None and now >= g.valid_until:
                    findings.append("expired")
                if g.valid_from is not None and now < g.valid_from:
                    findings.append("not_yet_valid")
                if g.last_used_at is None:
                    if g.granted_at < cutoff:
                        findings.append("never_used")
                elif g.last_used_at < cutoff:
                    findings.append("unused")
                if g.user_id is not None:
                    u = db.get(User, g.user_id)
                    if u is not None:
                        state = account_state(now=now, valid_from=u.valid_from, valid_until=u.valid_until,
                                              disabled_at=u.disabled_at)
                        if state in ("disabled", "expired"):
                            findings.append(f"holder_{state}")
                out.append(ReviewItem(_grant_view(db, g, row.code), tuple(findings)))
        return out


__all__ = ["OWN_DEPARTMENT", "GrantView", "ReviewItem", "candidate_grants", "create_grant", "list_grants",
           "review", "revoke_grant"]
