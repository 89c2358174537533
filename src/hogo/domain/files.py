"""Personal-data files (個人情報ファイル / 特定個人情報ファイル): their definition and field values.

Pure. A file is defined by a spec (parsed from YAML or JSON by the adapters): name, kind, purposes
(利用目的), for My Number files the administrative task (事務) and legal basis, responsible person,
department, collection method, scope of individuals (本人の範囲), retention, classification (SEC-5)
and handling restrictions, and typed fields with a sensitivity. These are also the items of the
My Number file ledger (MN-3c): captured at definition, never containing a My Number.

``parse_spec`` collects every problem with its path (``fields[3].type``) rather than stopping at
the first; ``normalise_value`` validates one value of one field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from hogo.domain.identifiers import IdentifierError, normalise_corporate_number, normalise_my_number
from hogo.domain.text import has_control_chars, nfkc


class FileKind(StrEnum):
    PERSONAL = "personal_information"  # 個人情報ファイル
    SPECIFIC = "specific_personal_information"  # 特定個人情報ファイル (contains My Number)
    ANONYMISED = "anonymised"  # 匿名加工情報
    PSEUDONYMISED = "pseudonymised"  # 仮名加工情報


class FieldType(StrEnum):
    TEXT = "text"
    NAME = "name"
    NUMBER = "number"
    DATE = "date"
    MY_NUMBER = "my_number"  # 個人番号
    CORPORATE_NUMBER = "corporate_number"  # 法人番号
    EMAIL = "email"
    PHONE = "phone"
    POSTAL_CODE = "postal_code"
    ADDRESS = "address"


class Sensitivity(StrEnum):
    DIRECT_IDENTIFIER = "direct_identifier"  # 氏名など
    IDENTIFICATION_CODE = "individual_identification_code"  # 個人識別符号 (My Number …)
    SPECIAL_CARE = "special_care"  # 要配慮個人情報
    QUASI_IDENTIFIER = "quasi_identifier"
    OTHER = "other"


class Restriction(StrEnum):
    """Handling restrictions (取扱制限, SEC-5)."""

    NO_COPY = "no_copy"  # 複製禁止
    NO_TAKE_OUT = "no_take_out"  # 持出禁止
    NO_DISTRIBUTION = "no_distribution"  # 配付禁止
    ENCRYPTION_REQUIRED = "encryption_required"  # 暗号化必須
    DESTROY_AFTER_READING = "destroy_after_reading"  # 読後廃棄


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REVEAL = "reveal"  # see identification codes (My Number) unmasked
    EXPORT = "export"
    MANAGE = "manage"  # change the file's grants (SEC-130)


@dataclasses.dataclass(frozen=True)
class Classification:
    """格付 (SEC-5, table 1): confidentiality 3/2/1, integrity 2/1, availability 2/1."""

    confidentiality: int
    integrity: int
    availability: int

    @property
    def label(self) -> str:
        return f"C{self.confidentiality}-I{self.integrity}-A{self.availability}"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    type: FieldType
    sensitivity: Sensitivity
    required: bool = False
    indexed: bool = False  # exact-match search through a keyed blind index
    max_length: int = 1000

    @property
    def is_identification_code(self) -> bool:
        return self.type in (FieldType.MY_NUMBER,) or self.sensitivity is Sensitivity.IDENTIFICATION_CODE


@dataclasses.dataclass(frozen=True)
class FileSpec:
    code: str
    name: str
    kind: FileKind
    purposes: tuple[str, ...]
    department: str
    responsible: str
    collection_method: str
    subjects_scope: str
    retention_days: int
    classification: Classification
    restrictions: frozenset[Restriction]
    fields: tuple[FieldSpec, ...]
    subject_field: str
    segment_field: str | None = None
    administrative_task: str | None = None
    legal_basis: str | None = None
    description: str | None = None
    # Issue 5 (retention): a date field the retention period runs from (e.g. retirement); without it, from
    # the record's creation. A record whose field is empty has no due date yet.
    retention_from: str | None = None

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["restrictions"] = sorted(r.value for r in self.restrictions)
        return d


class SpecError(ValueError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {r}" for p, r in problems))
        self.problems = problems


_CODE_RE = re.compile(r"^[a-z][a-z0-9_-]{1,62}$")
_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_KNOWN_KEYS = {
    "code", "name", "kind", "purposes", "department", "responsible", "collection_method", "subjects_scope",
    "retention_days", "retention_years", "classification", "restrictions", "fields", "subject_field",
    "segment_field", "administrative_task", "legal_basis", "description", "retention_from",
}
_FIELD_KEYS = {"name", "label", "type", "sensitivity", "required", "indexed", "max_length"}


def parse_spec(raw: Mapping[str, Any]) -> FileSpec:
    """Validate a spec; raise SpecError listing every problem with its path."""
    problems: list[tuple[str, str]] = []

    def text(key: str, *, required: bool = True, max_length: int = 500) -> str | None:
        value = raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problems.append((key, "is required"))
            return None
        if not isinstance(value, str):
            problems.append((key, "must be text"))
            return None
        value = nfkc(value).strip()
        if has_control_chars(value):
            problems.append((key, "must not contain control characters"))
        if len(value) > max_length:
            problems.append((key, f"must be at most {max_length} characters"))
        return value

    if not isinstance(raw, Mapping):
        raise SpecError([("spec", "must be a mapping (YAML or JSON object)")])
    for key in raw:
        if key not in _KNOWN_KEYS:
            problems.append((str(key), "unknown key"))

    code = text("code", max_length=63)
    if code is not None and not _CODE_RE.fullmatch(code):
        problems.append(("code", "must be 2–63 characters: a–z, digits, '_' or '-', starting with a letter"))
    name = text("name", max_length=200)
    kind_text = text("kind")
    kind: FileKind | None = None
    if kind_text is not None:
        try:
            kind = FileKind(kind_text)
        except ValueError:
            problems.append(("kind", f"must be one of {', '.join(k.value for k in FileKind)}"))

    purposes_raw = raw.get("purposes")
    purposes: list[str] = []
    if not isinstance(purposes_raw, list) or not purposes_raw:
        problems.append(("purposes", "give at least one business purpose (利用目的) as a list"))
    else:
        for i, p in enumerate(purposes_raw):
            if not isinstance(p, str) or not p.strip():
                problems.append((f"purposes[{i}]", "must be non-empty text"))
            elif len(p) > 200 or has_control_chars(p):
                problems.append((f"purposes[{i}]", "must be at most 200 characters, no control characters"))
            else:
                purposes.append(nfkc(p).strip())
        if len(set(purposes)) != len(purposes):
            problems.append(("purposes", "must not repeat"))

    department = text("department", max_length=32)
    responsible = text("responsible", max_length=63)
    collection = text("collection_method")
    scope = text("subjects_scope")
    task = text("administrative_task", required=kind is FileKind.SPECIFIC)
    basis = text("legal_basis", required=kind is FileKind.SPECIFIC)
    description = text("description", required=False, max_length=2000)

    retention = _retention(raw, problems)
    classification = _classification(raw.get("classification"), problems)
    restrictions = _restrictions(raw.get("restrictions", []), problems)
    fields = _fields(raw.get("fields"), problems)

    names = [f.name for f in fields]
    subject = text("subject_field", max_length=63)
    if subject is not None and fields and subject not in names:
        problems.append(("subject_field", f"names no field (fields: {', '.join(names)})"))
    segment = text("segment_field", required=False, max_length=63)
    if segment is not None and fields:
        if segment not in names:
            problems.append(("segment_field", "names no field"))
        else:
            seg = next(f for f in fields if f.name == segment)
            if seg.sensitivity is not Sensitivity.OTHER or seg.type not in (FieldType.TEXT, FieldType.NUMBER):
                # The segment is kept in clear to scope grants without decrypting: it must not identify.
                problems.append(("segment_field", "must be a text or number field of sensitivity 'other'"))

    retention_from = text("retention_from", required=False, max_length=63)
    if retention_from is not None and fields:
        src = next((f for f in fields if f.name == retention_from), None)
        if src is None or src.type is not FieldType.DATE:
            problems.append(("retention_from", "must name a date field (the retention period runs from its date)"))

    has_my_number = any(f.type is FieldType.MY_NUMBER for f in fields)
    if kind is not None:
        if has_my_number and kind is not FileKind.SPECIFIC:
            problems.append(("kind", "a file with a my_number field is a specific_personal_information file"))
        if kind is FileKind.SPECIFIC and fields and not has_my_number:
            problems.append(("fields", "a specific_personal_information file has a my_number field"))
        if kind is FileKind.SPECIFIC and classification and classification.confidentiality < 3:
            problems.append(("classification.confidentiality", "My Number files are confidentiality 3"))
    if classification and classification.confidentiality == 3:
        restrictions = restrictions | {Restriction.ENCRYPTION_REQUIRED}

    if problems:
        raise SpecError(problems)
    assert code and name and kind and department and responsible and collection and scope and subject
    assert classification is not None and retention is not None
    return FileSpec(
        code=code, name=name, kind=kind, purposes=tuple(purposes), department=department.upper(),
        responsible=responsible.lower(), collection_method=collection, subjects_scope=scope,
        retention_days=retention, classification=classification, restrictions=frozenset(restrictions),
        fields=tuple(fields), subject_field=subject, segment_field=segment, administrative_task=task,
        legal_basis=basis, description=description, retention_from=retention_from,
    )


def _retention(raw: Mapping[str, Any], problems: list[tuple[str, str]]) -> int | None:
    days, years = raw.get("retention_days"), raw.get("retention_years")
    if days is None and years is None:
        problems.append(("retention_days", "give retention_days or retention_years"))
        return None
    if days is not None and years is not None:
        problems.append(("retention_days", "give retention_days or retention_years, not both"))
        return None
    value = days if days is not None else years
    key = "retention_days" if days is not None else "retention_years"
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        problems.append((key, "must be a positive whole number"))
        return None
    return value if days is not None else value * 365 + value // 4  # whole years, leap days included


def _classification(raw: Any, problems: list[tuple[str, str]]) -> Classification | None:
    if not isinstance(raw, Mapping):
        problems.append(("classification", "give confidentiality (1–3), integrity (1–2), availability (1–2)"))
        return None
    out = {}
    for key, top in (("confidentiality", 3), ("integrity", 2), ("availability", 2)):
        v = raw.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= top:
            problems.append((f"classification.{key}", f"must be 1–{top}"))
        else:
            out[key] = v
    for key in raw:
        if key not in ("confidentiality", "integrity", "availability"):
            problems.append((f"classification.{key}", "unknown key"))
    return Classification(**out) if len(out) == 3 else None


def _restrictions(raw: Any, problems: list[tuple[str, str]]) -> frozenset[Restriction]:
    if not isinstance(raw, list):
        problems.append(("restrictions", "must be a list"))
        return frozenset()
    out = set()
    for i, r in enumerate(raw):
        try:
            out.add(Restriction(r))
        except ValueError:
            problems.append((f"restrictions[{i}]", f"must be one of {', '.join(x.value for x in Restriction)}"))
    return frozenset(out)


def _fields(raw: Any, problems: list[tuple[str, str]]) -> list[FieldSpec]:
    if not isinstance(raw, list) or not raw:
        problems.append(("fields", "give at least one field"))
        return []
    if len(raw) > 200:
        problems.append(("fields", "at most 200 fields"))
        return []
    out: list[FieldSpec] = []
    seen: set[str] = set()
    for i, f in enumerate(raw):
        path = f"fields[{i}]"
        if not isinstance(f, Mapping):
            problems.append((path, "must be a mapping"))
            continue
        for key in f:
            if key not in _FIELD_KEYS:
                problems.append((f"{path}.{key}", "unknown key"))
        name = f.get("name")
        if not isinstance(name, str) or not _FIELD_RE.fullmatch(name):
            problems.append((f"{path}.name", "must be a–z, digits or '_', starting with a letter"))
            continue
        if name in seen:
            problems.append((f"{path}.name", f"{name!r} is defined twice"))
        seen.add(name)
        try:
            ftype = FieldType(f.get("type", "text"))
        except ValueError:
            problems.append((f"{path}.type", f"must be one of {', '.join(t.value for t in FieldType)}"))
            continue
        sens_default = Sensitivity.IDENTIFICATION_CODE if ftype is FieldType.MY_NUMBER else None
        try:
            sens = Sensitivity(f.get("sensitivity", sens_default))
        except ValueError:
            problems.append((f"{path}.sensitivity", f"must be one of {', '.join(s.value for s in Sensitivity)}"))
            continue
        if ftype is FieldType.MY_NUMBER and sens is not Sensitivity.IDENTIFICATION_CODE:
            problems.append((f"{path}.sensitivity", "a my_number field is an individual_identification_code"))
        label = f.get("label", name)
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            problems.append((f"{path}.label", "must be 1–200 characters"))
            label = name
        max_length = f.get("max_length", 1000)
        if not isinstance(max_length, int) or isinstance(max_length, bool) or not 1 <= max_length <= 100_000:
            problems.append((f"{path}.max_length", "must be 1–100000"))
            max_length = 1000
        flags = {}
        for flag in ("required", "indexed"):
            v = f.get(flag, False)
            if not isinstance(v, bool):
                problems.append((f"{path}.{flag}", "must be true or false"))
                v = False
            flags[flag] = v
        out.append(FieldSpec(
            name=name, label=nfkc(label).strip(), type=ftype, sensitivity=sens,
            required=flags["required"] or False,
            # Identification codes are always looked up through the blind index, never by scanning.
            indexed=flags["indexed"] or ftype in (FieldType.MY_NUMBER, FieldType.CORPORATE_NUMBER),
            max_length=max_length,
        ))
    return out


def check_evolution(old: FileSpec, new: FileSpec) -> list[tuple[str, str]]:
    """A new version may add fields and change descriptive items; it may not drop or retype a field
    (stored values would lose their meaning) nor change the code."""
    problems = []
    if old.code != new.code:
        problems.append(("code", "cannot change"))
    for f in old.fields:
        try:
            nf = new.field(f.name)
        except KeyError:
            problems.append(("fields", f"field {f.name!r} cannot be removed"))
            continue
        if nf.type is not f.type:
            problems.append(("fields", f"field {f.name!r} cannot change type ({f.type.value} → {nf.type.value})"))
        if f.indexed and not nf.indexed:
            problems.append(("fields", f"field {f.name!r} cannot stop being indexed"))
        if nf.indexed and not f.indexed:
            problems.append(("fields", f"field {f.name!r} cannot become indexed after records exist"))
    if old.segment_field != new.segment_field:
        problems.append(("segment_field", "cannot change"))
    if old.subject_field != new.subject_field:
        problems.append(("subject_field", "cannot change"))
    return problems


# ------------------------------------------------------------------------------------ values

_FREE_TEXT = frozenset({FieldType.TEXT, FieldType.NAME, FieldType.ADDRESS})
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_RE = re.compile(r"^\+?[0-9][0-9\-() ]{5,20}$")
_POSTAL_RE = re.compile(r"^(\d{3})-?(\d{4})$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # as hogo.domain.text.has_control_chars


def normalise_value(field: FieldSpec, raw: str) -> str:
    """The stored form of one value (NFKC; identifiers without separators; ISO dates), or ValueError
    with a reason that never repeats the value."""
    value = (raw if raw.isascii() else nfkc(raw)).strip()  # NFKC leaves ASCII as it is
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    if len(value) > field.max_length:
        raise ValueError(f"must be at most {field.max_length} characters")
    t = field.type
    if t in _FREE_TEXT:
        return value
    try:
        if t is FieldType.MY_NUMBER:
            return normalise_my_number(value)
        if t is FieldType.CORPORATE_NUMBER:
            return normalise_corporate_number(value)
    except IdentifierError as exc:
        raise ValueError(str(exc)) from None
    if t is FieldType.NUMBER:
        value = value.replace(",", "")
        if not _NUMBER_RE.fullmatch(value):
            raise ValueError("must be a number")
        return value
    if t is FieldType.DATE:
        try:
            return dt.date.fromisoformat(value.replace("/", "-")).isoformat()
        except ValueError:
            raise ValueError("must be a date YYYY-MM-DD") from None
    if t is FieldType.EMAIL:
        if not _EMAIL_RE.fullmatch(value):
            raise ValueError("must be an e-mail address")
        return value
    if t is FieldType.PHONE:
        if not _PHONE_RE.fullmatch(value):
            raise ValueError("must be a phone number")
        return value
    if t is FieldType.POSTAL_CODE:
        m = _POSTAL_RE.fullmatch(value.removeprefix("〒").strip())
        if not m:
            raise ValueError("must be a postal code NNN-NNNN")
        return f"{m.group(1)}-{m.group(2)}"
    return value


def normalise_record(spec: FileSpec, values: Mapping[str, str | None], *, partial: bool = False
                     ) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Validate a record's values: (normalised values, [(field, reason)…]). Unknown fields and missing
    required fields are problems; empty strings mean "no value"."""
    out: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    names = set(spec.field_names)
    for key in values:
        if key not in names:
            problems.append((key, "unknown field"))
    for f in spec.fields:
        raw = values.get(f.name)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if f.required and not partial:
                problems.append((f.name, "is required"))
            continue
        if not isinstance(raw, str):
            raw = str(raw)
        try:
            out[f.name] = normalise_value(f, raw)
        except ValueError as exc:
            problems.append((f.name, str(exc)))
    return out, problems


def value_normaliser(field: FieldSpec) -> Callable[[str], str]:
    """``normalise_value(field, ·)`` specialised once for the field: the type's branch is chosen here,
    not for every value. Same results and reasons (ValueError) as ``normalise_value``."""
    max_length = field.max_length
    too_long = f"must be at most {max_length} characters"
    t = field.type

    def text(raw: str) -> str:
        value = (raw if raw.isascii() else nfkc(raw)).strip()
        if _CONTROL_SEARCH(value):
            raise ValueError("must not contain control characters")
        if len(value) > max_length:
            raise ValueError(too_long)
        return value

    if t in _FREE_TEXT:
        return text
    if t is FieldType.MY_NUMBER or t is FieldType.CORPORATE_NUMBER:
        check = normalise_my_number if t is FieldType.MY_NUMBER else normalise_corporate_number

        def identifier(raw: str) -> str:
            try:
                return check(text(raw))
            except IdentifierError as exc:
                raise ValueError(str(exc)) from None

        return identifier
    if t is FieldType.NUMBER:
        def number(raw: str) -> str:
            value = text(raw).replace(",", "")
            if not _NUMBER_MATCH(value):
                raise ValueError("must be a number")
            return value

        return number
    if t is FieldType.DATE:
        def date(raw: str) -> str:
            value = text(raw)
            try:
                return dt.date.fromisoformat(value.replace("/", "-")).isoformat()
            except ValueError:
                raise ValueError("must be a date YYYY-MM-DD") from None

        return date
    if t in (FieldType.EMAIL, FieldType.PHONE):
        match = (_EMAIL_RE if t is FieldType.EMAIL else _PHONE_RE).fullmatch
        reason = "must be an e-mail address" if t is FieldType.EMAIL else "must be a phone number"

        def pattern(raw: str) -> str:
            value = text(raw)
            if not match(value):
                raise ValueError(reason)
            return value

        return pattern
    if t is FieldType.POSTAL_CODE:
        def postal(raw: str) -> str:
            m = _POSTAL_MATCH(text(raw).removeprefix("〒").strip())
            if not m:
                raise ValueError("must be a postal code NNN-NNNN")
            return f"{m.group(1)}-{m.group(2)}"

        return postal
    return lambda raw: normalise_value(field, raw)  # a type added later: the general path


_CONTROL_SEARCH = _CONTROL.search
_NUMBER_MATCH = _NUMBER_RE.fullmatch
_POSTAL_MATCH = _POSTAL_RE.fullmatch

RowCheck = Callable[[Sequence[str]], tuple[dict[str, str], list[tuple[str, str]]]]


def cells_normaliser(spec: FileSpec, columns: Sequence[str | None]) -> RowCheck:
    """For many rows with the same columns (a CSV import): validate one row given as its cells in
    the order of ``columns`` (``None``: a column that is not a field, skipped). Each field's
    validator is chosen once (``value_normaliser``). Same results as ``normalise_record`` of the
    row's fields with every field of the spec: (normalised values, [(field, reason)…]).

    Control characters are looked for once in the whole row; only a row that has any is checked
    value by value (a value may lose them to trimming). NFKC never makes a control character out
    of others, so a row without any yields values without any."""
    plan = [(i, f.name, value_normaliser(f)) for i, c in enumerate(columns)
            if c is not None and c in spec.field_names for f in (spec.field(c),)]
    # Free-text values only need trimming and their length checked when the row has no control
    # characters and the value is ASCII (NFKC leaves it as it is).
    lengths = {f.name: f.max_length for f in spec.fields}
    free = {f.name for f in spec.fields if f.type in _FREE_TEXT}
    fast = [(i, name, normalise, name in free, lengths[name]) for i, name, normalise in plan]
    required = [f.name for f in spec.fields if f.required]

    def run(cells: Sequence[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        out: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        clean_row = not _CONTROL_SEARCH("".join(cells))
        for i, name, normalise, is_free, max_length in fast:
            raw = cells[i]
            if not raw or raw.isspace():
                continue
            if is_free and clean_row and raw.isascii():
                value = raw.strip()
                if len(value) <= max_length:
                    out[name] = value
                    continue
            try:
                out[name] = normalise(raw)
            except ValueError as exc:
                problems.append((name, str(exc)))
        for name in required:
            if name not in out and not any(p[0] == name for p in problems):
                problems.append((name, "is required"))
        return out, problems

    return run


def row_normaliser(spec: FileSpec, columns: Sequence[str]) -> Callable[[Mapping[str, str]],
                                                                         tuple[dict[str, str], list[tuple[str, str]]]]:
    """``normalise_record`` for many rows with the same known columns, given as mappings (see
    ``cells_normaliser``). Same results as ``normalise_record``."""
    known = [c for c in columns if c in spec.field_names]
    check = cells_normaliser(spec, known)

    def run(values: Mapping[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        return check([values.get(c) or "" for c in known])

    return run
