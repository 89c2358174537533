"""The access decision: default deny; a grant must cover action × fields × purpose × records × time.

Pure and fast (no I/O): ``GrantIndex`` holds a file's grants keyed by grantee, ``decide`` looks only
at the requester's candidates. ANON-5, MN-6a, MLIT-9.5.2, SEC-45 (only within one's duties and the
declared purpose), SEC-131 (least privilege), SEC-130 (``manage`` to change grants).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence

from hogo.domain.files import Action
from hogo.domain.roles import Role

OWN_DEPARTMENT = "$own_department"  # a record scope meaning "the requester's own department(s)"


@dataclasses.dataclass(frozen=True)
class Grant:
    """アクセス権限: to a user, or to a role (optionally only as held in one department), on one file."""

    id: str
    file_id: int
    actions: frozenset[Action]
    purposes: frozenset[str]
    fields: frozenset[str] | None = None  # None: every field
    segments: frozenset[str] | None = None  # None: every record; may hold OWN_DEPARTMENT
    user_id: int | None = None
    role: Role | None = None
    role_department: str | None = None
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.role is None):
            raise ValueError("a grant names either a user or a role")

    def in_force(self, now: dt.datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )


@dataclasses.dataclass(frozen=True)
class Requester:
    user_id: int
    department: str | None
    roles: tuple[tuple[Role, str | None], ...]  # (role, department it is held in)

    @property
    def departments(self) -> frozenset[str]:
        out = {d for _, d in self.roles if d}
        if self.department:
            out.add(self.department)
        return frozenset(out)


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed" or why not, in words a person can read
    code: str  # machine-readable: allowed, purpose_not_of_file, no_grant, …
    fields: frozenset[str] = frozenset()  # the fields this decision covers …
    all_fields: bool = False  # … or every field of the file
    grant_ids: tuple[str, ...] = ()
    requirement: str | None = None


class GrantIndex:
    """A file's grants keyed by grantee, so a decision looks only at the requester's own."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        self.by_user: dict[int, list[Grant]] = {}
        self.by_role: dict[Role, list[Grant]] = {}
        for g in grants:
            if g.user_id is not None:
                self.by_user.setdefault(g.user_id, []).append(g)
            else:
                assert g.role is not None
                self.by_role.setdefault(g.role, []).append(g)

    def candidates(self, who: Requester) -> list[Grant]:
        out = list(self.by_user.get(who.user_id, ()))
        for role, dept in who.roles:
            for g in self.by_role.get(role, ()):
                if g.role_department is None or g.role_department == dept:
                    out.append(g)
        return out


def _segment_ok(g: Grant, segment: str | None, who: Requester) -> bool:
    if g.segments is None:
        return True
    if segment is None:
        return False
    if segment in g.segments:
        return True
    return OWN_DEPARTMENT in g.segments and segment in who.departments


def decide(
    who: Requester,
    index: GrantIndex | Sequence[Grant],
    *,
    action: Action,
    purpose: str,
    file_purposes: Iterable[str],
    now: dt.datetime,
    fields: Iterable[str] | None = None,
    segment: str | None = None,
    segment_applies: bool = True,
) -> Decision:
    """Allow only when grants in force cover every requested field for this action, purpose and record.

    ``fields=None`` asks "which fields may I?" and is allowed when at least one is covered.
    ``segment_applies=False`` for file-level actions (``manage``) where no record is involved.
    """
    if purpose not in file_purposes:
        return Decision(False, "the declared purpose is not a purpose of this file", "purpose_not_of_file",
                        requirement="SEC-45")
    candidates = index.candidates(who) if isinstance(index, GrantIndex) else GrantIndex(index).candidates(who)
    if not candidates:
        return Decision(False, "no grant on this file", "no_grant", requirement="ANON-5")
    live = [g for g in candidates if g.in_force(now)]
    if not live:
        return Decision(False, "every grant on this file has expired or is not yet valid", "grant_not_in_force",
                        requirement="SEC-131")
    acting = [g for g in live if action in g.actions]
    if not acting:
        return Decision(False, f"no grant allows '{action.value}'", "action_not_granted", requirement="SEC-131")
    for_purpose = [g for g in acting if purpose in g.purposes]
    if not for_purpose:
        return Decision(False, "no grant allows this action for the declared purpose", "purpose_not_granted",
                        requirement="SEC-45")
    in_scope = [g for g in for_purpose if not segment_applies or _segment_ok(g, segment, who)]
    if not in_scope:
        return Decision(False, "the record is outside the records your grants cover", "record_out_of_scope",
                        requirement="MN-6a")
    covered: set[str] = set()
    every_field = False
    for g in in_scope:
        if g.fields is None:
            every_field = True
        else:
            covered |= g.fields
    ids = tuple(g.id for g in in_scope)
    if fields is None:
        if not covered and not every_field:
            return Decision(False, "no field is granted", "field_not_granted", requirement="SEC-131")
        return Decision(True, "allowed", "allowed", frozenset(covered), all_fields=every_field, grant_ids=ids)
    wanted = frozenset(fields)
    if not every_field:
        missing = sorted(wanted - covered)
        if missing:
            return Decision(False, f"not granted for field(s): {', '.join(missing)}", "field_not_granted",
                            requirement="SEC-131")
    return Decision(True, "allowed", "allowed", wanted, grant_ids=ids)


def readable_fields(decision: Decision, all_fields: Sequence[str]) -> tuple[str, ...]:
    """The fields a "which fields may I?" decision covers, in the file's order."""
    if not decision.allowed:
        return ()
    if decision.all_fields:
        return tuple(all_fields)
    return tuple(f for f in all_fields if f in decision.fields)
