"""Changing a file's marks (格付と取扱制限の見直し, SEC-46(3)) and their history.

Who may revise a file's marks. SEC-46(3): the person who decided them, their successor, or their
superior. In hogo:

* **decider** — the file's creator (``personal_data_files.created_by_id``: marks are decided when the
  file is defined), while they still hold a role that decides marks (``file:definition:write``: a
  protection manager or the general protection manager). A creator who has left that role has a
  successor, who decides from then on;
* **successor** — a protection manager of the file's *current* department (the role that decides the
  marks of that department's files: whoever holds it now has succeeded the decider);
* **superior** — the general protection manager (総括保護管理者), above every protection manager.

Everyone else is refused, and the refusal is logged. My Number files stay confidentiality 3 (the
spec's rule: ``parse_spec`` refuses anything lower), and confidentiality 3 keeps "encryption required".

Marks live in the file's definition (its spec has ``classification`` and ``restrictions``), so a
change of marks is a new definition version: the spec and the marks can never disagree, ``file
versions`` shows the marks of every version, and raising a file to integrity 2 logs its records'
versions exactly as a definition update does (services/files.py ``write_version``). Each change also
gets a row in ``marks_changes`` (before, after, who, on which basis, why, when) and a log entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hogo.bootstrap import Hogo
from hogo.domain.events import Event, Outcome
from hogo.domain.files import Classification, Restriction, SpecError, parse_spec
from hogo.domain.handling import Marks
from hogo.domain.roles import Permission, Role
from hogo.domain.text import has_control_chars, nfkc
from hogo.errors import Forbidden, NotFound, ValidationFailed
from hogo.services import audit, files
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import Department, PersonalDataFile
from hogo.store.models_marks import MarksChange

BASIS_LABELS = {"decider": ("決定者", "decider"), "successor": ("後任者", "successor"),
                "superior": ("上位者", "superior")}


@dataclasses.dataclass(frozen=True)
class MarksChangeView:
    id: int
    file: str
    version: int
    before: dict[str, Any]
    after: dict[str, Any]
    changed_by: str
    basis: str
    reason: str
    changed_at: dt.datetime


def revision_basis(db: Session, actor: Principal, row: PersonalDataFile) -> str | None:
    """On what basis ``actor`` may revise the file's marks (SEC-46(3)): ``decider``, ``successor``,
    ``superior``, or None (refused)."""
    if row.created_by_id is not None and row.created_by_id == actor.user_id and actor.can(Permission.FILE_DEFINE):
        return "decider"
    dept = db.get(Department, row.department_id)
    if dept is not None and any(g.role is Role.PROTECTION_MANAGER and g.department == dept.code
                                for g in actor.roles):
        return "successor"
    if Role.GENERAL_PROTECTION_MANAGER in actor.role_set:
        return "superior"
    return None


def record_change(hogo: Hogo, db: Session, actor: Principal, row: PersonalDataFile, before: Marks, after: Marks, *,
                  basis: str, reason: str, ctx: RequestContext) -> MarksChange:
    """Keep one revision of the marks (the row has already taken the new definition version) and log it."""
    now = hogo.clock.now()
    change = MarksChange(file_id=row.id, file_code=row.code, version=row.version, before=before.to_dict(),
                         after=after.to_dict(), changed_by_id=actor.user_id, changed_by_name=actor.username,
                         basis=basis, reason=reason, changed_at=now)
    db.add(change)
    audit.record(db, now=now, event=Event.MARKS_CHANGED, outcome=Outcome.SUCCESS, ctx=ctx, actor_id=actor.user_id,
                 actor_name=actor.username, target=f"file:{row.code}", file_code=row.code,
                 details={"version": row.version, "before": before.label, "after": after.label, "basis": basis,
                          "reason": reason})
    from hogo.services import workcopies

    workcopies.follow_source_marks(hogo, db, row.id, after, ctx)  # copies keep up with their source (SEC-46(2))
    return change


def _reason(text: str | None) -> str:
    value = nfkc(text or "").strip()
    if not value:
        raise ValidationFailed("give the reason for changing the marks (--reason)", field="reason",
                               requirement="SEC-46")
    if len(value) > 1000 or has_control_chars(value):
        raise ValidationFailed("the reason must be at most 1000 characters, without control characters",
                               field="reason")
    return value


def _restriction_list(values: Iterable[str], option: str) -> set[Restriction]:
    out: set[Restriction] = set()
    for v in values:
        try:
            out.add(Restriction(v.strip().lower().replace("-", "_")))
        except ValueError:
            raise ValidationFailed(f"{option}: {v!r} is not a restriction (one of "
                                   f"{', '.join(r.value for r in Restriction)})", field=option) from None
    return out


def proposed_marks(current: Marks, *, confidentiality: int | None = None, integrity: int | None = None,
                   availability: int | None = None, restrict: Iterable[str] = (), unrestrict: Iterable[str] = ()
                   ) -> Marks:
    """The marks after the requested change (levels given replace, restrictions are added or removed)."""
    add = _restriction_list(restrict, "restrict")
    remove = _restriction_list(unrestrict, "unrestrict")
    both = add & remove
    if both:
        raise ValidationFailed(f"{', '.join(sorted(r.value for r in both))}: both added and removed",
                               field="restrict")
    c = current.classification
    levels = Classification(c.confidentiality if confidentiality is None else confidentiality,
                            c.integrity if integrity is None else integrity,
                            c.availability if availability is None else availability)
    for name, value, top in (("confidentiality", levels.confidentiality, 3), ("integrity", levels.integrity, 2),
                             ("availability", levels.availability, 2)):
        if not 1 <= value <= top:
            raise ValidationFailed(f"{name} must be 1–{top}", field=name)
    return Marks(levels, frozenset((current.restrictions | add) - remove))


def _refuse(hogo: Hogo, actor: Principal, code: str, ctx: RequestContext, reason: str) -> None:
    with hogo.unit_of_work() as db:
        audit.record(db, now=hogo.clock.now(), event=Event.MARKS_CHANGED, outcome=Outcome.DENIED, ctx=ctx,
                     actor_id=actor.user_id, actor_name=actor.username, target=f"file:{code}", file_code=code,
                     reason="not_decider", details={"requirement": "SEC-46", "reason": reason})


def change_marks(hogo: Hogo, actor: Principal, code: str, *, confidentiality: int | None = None,
                 integrity: int | None = None, availability: int | None = None, restrict: Iterable[str] = (),
                 unrestrict: Iterable[str] = (), reason: str | None, ctx: RequestContext) -> files.FileView:
    """Revise the file's marks (SEC-46(3)): a new definition version with the new classification and
    restrictions, its history row and a log entry, in one transaction. A refusal is logged."""
    actor.require(Permission.SELF_READ)
    why = _reason(reason)
    with hogo.unit_of_work() as db:
        row = files.file_by_code(db, code)
        file_code = row.code
        basis = revision_basis(db, actor, row)
        if basis is not None:
            before = files.marks_of(row)
            after = proposed_marks(before, confidentiality=confidentiality, integrity=integrity,
                                   availability=availability, restrict=restrict, unrestrict=unrestrict)
            if after == before:
                raise ValidationFailed("these are the file's marks already: nothing to change", field="marks")
            raw = dict(row.spec)
            raw["classification"] = {"confidentiality": after.classification.confidentiality,
                                     "integrity": after.classification.integrity,
                                     "availability": after.classification.availability}
            raw["restrictions"] = sorted(r.value for r in after.restrictions)
            try:
                spec = parse_spec(raw)  # the spec's rules hold: a My Number file stays confidentiality 3
            except SpecError as exc:
                raise files.spec_problems_error(exc) from None
            after = Marks.of(spec)
            files.write_version(hogo, db, actor, row, spec, ctx)
            record_change(hogo, db, actor, row, before, after, basis=basis, reason=why, ctx=ctx)
            db.flush()
            return files.file_view(db, row)
    _refuse(hogo, actor, file_code, ctx, why)
    raise Forbidden("only the person who decided this file's marks (its creator, while a protection manager), "
                    "their successor (a protection manager of the file's department) or their superior (the "
                    "general protection manager) may change them", code="marks_change_refused",
                    requirement="SEC-46")


def history(hogo: Hogo, actor: Principal, code: str) -> list[MarksChangeView]:
    """Every change of the file's marks, oldest first (for those who may see the file)."""
    files.show_file(hogo, actor, code)  # the same visibility as the file's ledger entry
    with hogo.unit_of_work(readonly=True) as db:
        row = files.file_by_code(db, code)
        rows = db.scalars(select(MarksChange).where(MarksChange.file_id == row.id).order_by(MarksChange.id)).all()
        return [MarksChangeView(r.id, r.file_code, r.version, r.before, r.after, r.changed_by_name, r.basis,
                                r.reason, r.changed_at) for r in rows]


def file_marks(hogo: Hogo, code: str) -> Marks:
    """The file's current marks (no access check: for services that have checked already)."""
    with hogo.unit_of_work(readonly=True) as db:
        row = db.scalar(select(PersonalDataFile).where(PersonalDataFile.code == code.strip().lower()))
        if row is None:
            raise NotFound(f"no personal-data file {code!r}", code="file_not_found")
        return files.marks_of(row)
