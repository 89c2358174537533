"""Classification marks and the handling restrictions they impose (SEC-5 table 1, SEC-46..49, ANON-17).

Pure rules, no I/O. A :class:`Marks` is what every file, export, package, working copy and derived
file carries: the classification (confidentiality 1–3, integrity 1–2, availability 1–2) and the
handling restrictions. :func:`strictest` gives the marks of information derived from several
sources (SEC-46(2)); :func:`refusals` says why a use of marked information is not allowed — the
services call it before any copy leaves the guard, so restrictions are enforced, not displayed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import StrEnum

from hogo.domain.files import Classification, FileSpec, Restriction

RESTRICTION_LABELS_JA: dict[Restriction, str] = {
    Restriction.NO_COPY: "複製禁止",
    Restriction.NO_TAKE_OUT: "持出禁止",
    Restriction.NO_DISTRIBUTION: "配付禁止",
    Restriction.ENCRYPTION_REQUIRED: "暗号化必須",
    Restriction.DESTROY_AFTER_READING: "読後廃棄",
}
RESTRICTION_LABELS_EN: dict[Restriction, str] = {
    Restriction.NO_COPY: "no copy",
    Restriction.NO_TAKE_OUT: "no take-out",
    Restriction.NO_DISTRIBUTION: "no distribution",
    Restriction.ENCRYPTION_REQUIRED: "encryption required",
    Restriction.DESTROY_AFTER_READING: "destroy after reading",
}
_CONFIDENTIALITY_JA = {3: "機密性3情報", 2: "機密性2情報", 1: "機密性1情報"}
_INTEGRITY_JA = {2: "完全性2情報", 1: "完全性1情報"}
_AVAILABILITY_JA = {2: "可用性2情報", 1: "可用性1情報"}


class Use(StrEnum):
    """What is about to be done with marked information."""

    EXPORT = "export"  # a copy written out of hogo by its user (CSV, JSON)
    WORKING_COPY = "working_copy"  # a temporary copy for processing (ANON-17)
    PACKAGE = "package"  # a take-out or provision package leaving hogo (SEC-47, SEC-48)
    PUBLISH = "publish"  # an unencrypted copy for the public (SEC-48(1))


@dataclasses.dataclass(frozen=True)
class Marks:
    """格付と取扱制限: what a piece of information carries wherever it goes (明示, SEC-46)."""

    classification: Classification
    restrictions: frozenset[Restriction] = frozenset()

    def __post_init__(self) -> None:
        c = self.classification
        if c.confidentiality not in (1, 2, 3) or c.integrity not in (1, 2) or c.availability not in (1, 2):
            raise ValueError(f"invalid classification {c.label}")
        if c.confidentiality == 3 and Restriction.ENCRYPTION_REQUIRED not in self.restrictions:
            # Confidentiality 3 is always encrypted when it leaves hogo (SEC-48(2)).
            object.__setattr__(self, "restrictions", self.restrictions | {Restriction.ENCRYPTION_REQUIRED})

    @classmethod
    def of(cls, spec: FileSpec) -> Marks:
        return cls(spec.classification, frozenset(spec.restrictions))

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> Marks:
        c = raw["classification"]
        if not isinstance(c, dict):
            raise ValueError("classification must be an object")
        restrictions = raw.get("restrictions", [])
        if not isinstance(restrictions, list):
            raise ValueError("restrictions must be a list")
        return cls(Classification(int(c["confidentiality"]), int(c["integrity"]), int(c["availability"])),
                   frozenset(Restriction(r) for r in restrictions))

    def to_dict(self) -> dict[str, object]:
        c = self.classification
        return {"classification": {"confidentiality": c.confidentiality, "integrity": c.integrity,
                                   "availability": c.availability},
                "label": c.label, "restrictions": sorted(r.value for r in self.restrictions)}

    @property
    def label(self) -> str:
        """One line for CLI output, file headers and the UI: ``C3-I2-A1 [暗号化必須 / encryption required, …]``."""
        rs = sorted(self.restrictions, key=lambda r: list(Restriction).index(r))
        inner = ", ".join(f"{RESTRICTION_LABELS_JA[r]} / {RESTRICTION_LABELS_EN[r]}" for r in rs)
        return f"{self.classification.label} [{inner}]" if inner else self.classification.label

    @property
    def label_ja(self) -> str:
        c = self.classification
        parts = [_CONFIDENTIALITY_JA[c.confidentiality], _INTEGRITY_JA[c.integrity], _AVAILABILITY_JA[c.availability]]
        rs = sorted(self.restrictions, key=lambda r: list(Restriction).index(r))
        return "・".join(parts) + ("（" + "・".join(RESTRICTION_LABELS_JA[r] for r in rs) + "）" if rs else "")

    @property
    def must_encrypt(self) -> bool:
        return Restriction.ENCRYPTION_REQUIRED in self.restrictions

    @property
    def open_once(self) -> bool:
        """Destroy after reading: a package or reveal may be opened once, then is disposed of."""
        return Restriction.DESTROY_AFTER_READING in self.restrictions


def strictest(marks: Iterable[Marks]) -> Marks:
    """Marks of information derived from all of ``marks`` (SEC-46(2)): the highest of each level and
    every restriction of every source."""
    items = list(marks)
    if not items:
        raise ValueError("derived information needs at least one source")
    return Marks(Classification(max(m.classification.confidentiality for m in items),
                                max(m.classification.integrity for m in items),
                                max(m.classification.availability for m in items)),
                 frozenset().union(*(m.restrictions for m in items)))


@dataclasses.dataclass(frozen=True)
class Refusal:
    restriction: str  # a Restriction value, or "confidentiality"
    reason_ja: str
    reason_en: str

    def __str__(self) -> str:
        return f"{self.reason_en} ({self.reason_ja})"


def refusals(marks: Marks, use: Use, *, encrypted: bool, outside_scope: bool = False) -> list[Refusal]:
    """Every reason the restrictions forbid ``use``; empty when it is allowed.

    ``encrypted``: the copy leaves hogo encrypted (a package). ``outside_scope``: it goes to someone
    outside the information's viewing scope (provision, 提供)."""
    out: list[Refusal] = []
    rs = marks.restrictions
    if use in (Use.EXPORT, Use.WORKING_COPY, Use.PACKAGE, Use.PUBLISH) and Restriction.NO_COPY in rs:
        out.append(Refusal(Restriction.NO_COPY, "複製禁止の情報は複製（エクスポート・作業用コピー・持出し）できません",
                           "the information is marked no-copy: no export, working copy or package"))
    if use in (Use.PACKAGE, Use.PUBLISH) and Restriction.NO_TAKE_OUT in rs:
        out.append(Refusal(Restriction.NO_TAKE_OUT, "持出禁止の情報は持ち出せません",
                           "the information is marked no-take-out: it may not leave hogo"))
    if (outside_scope or use is Use.PUBLISH) and Restriction.NO_DISTRIBUTION in rs:
        out.append(Refusal(Restriction.NO_DISTRIBUTION, "配付禁止の情報は閲覧範囲外に提供できません",
                           "the information is marked no-distribution: it may not go outside its viewing scope"))
    if use in (Use.EXPORT, Use.PACKAGE, Use.PUBLISH) and not encrypted and marks.must_encrypt:
        out.append(Refusal(Restriction.ENCRYPTION_REQUIRED, "暗号化必須の情報は暗号化せずに持ち出せません",
                           "the information must be encrypted when it leaves hogo"))
    if use is Use.PUBLISH and marks.classification.confidentiality != 1:
        out.append(Refusal("confidentiality", "公開できるのは機密性1情報だけです",
                           "only confidentiality-1 information may be published"))
    return out
