"""The web UI for personal-data files, their records and grants (issue 3), over the same services as
the API: ``files`` for the ledger, ``grants`` for grants and the access review, and every record
access through ``hogo.services.guard``. No rule lives here: the pages show what the services answer,
and their refusals with the reason and the requirement.

* SEC-5: a file's classification (格付) and handling restrictions (取扱制限) are shown prominently.
* MN-6a: My Numbers come masked from the guard; "表示" asks the guard to reveal one field, which it
  allows only with a ``reveal`` grant and records either way (MN-3b).
* SEC-45: the purpose of every access is chosen in a form; search values and purposes travel in POST
  bodies only, never in a URL (nor, therefore, in an access log or the browser history).
* SEC-130 / SEC-19: grant changes by the file's managers, never for themselves.
* SEC-131(3): the periodic access review.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from hogo.domain.files import Action
from hogo.domain.roles import Permission, Role
from hogo.errors import Conflict, Forbidden, HogoError, NotFound, ValidationFailed
from hogo.services import accounts, files, grants, guard
from hogo.services.auth import Principal
from hogo.services.files import FileView
from hogo.services.guard import RecordView
from hogo.web.i18n import MESSAGES, Translator
from hogo.web.routes import (
    _actor_ctx,
    _date_field,
    _field,
    _hogo,
    _is_htmx,
    _no_store,
    _t,
    csrf_form,
    ready_principal,
    render,
)

router = APIRouter(include_in_schema=False)

_CLASSIFICATION_RE = re.compile(r"^C(\d)-I(\d)-A(\d)$")
_FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SEGMENT_SPLIT_RE = re.compile(r"[,、，\s]+")
MAX_LIST = 50  # checkboxes per group a form may send back
DEFAULT_UNUSED_DAYS = 90


# ------------------------------------------------------------------------------ presentation


class Labels:
    """Words for the codes the services use (kinds, restrictions, field types, actions, findings)."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def _or(self, key: str, fallback: str) -> str:
        return self.t(key) if key in MESSAGES else fallback

    def kind(self, kind: str) -> str:
        return self._or("kind." + kind, kind)

    def restriction(self, value: str) -> str:
        return self._or("restriction." + value, value)

    def field_type(self, value: str) -> str:
        return self._or("ftype." + value, value)

    def sensitivity(self, value: str) -> str:
        return self._or("sens." + value, value)

    def action(self, value: str) -> str:
        return self._or("action." + value, value)

    def finding(self, value: str, unused_days: int) -> str:
        key = "finding." + value
        return self.t(key, days=unused_days) if key in MESSAGES else value

    def level(self, label: str) -> str:
        """``c3`` / ``c2`` / ``c1``: the banner's colour follows the confidentiality level."""
        m = _CLASSIFICATION_RE.match(label)
        return f"c{m.group(1)}" if m else "c1"

    def classification_tags(self, label: str) -> list[str]:
        """SEC-5 table 1's words: 要機密 (C2–C3), 要保全 (I2), 要安定 (A2), 要保護 (any of these)."""
        m = _CLASSIFICATION_RE.match(label)
        if not m:
            return []
        c, i, a = (int(x) for x in m.groups())
        tags = [self.t(key) for key, on in (("cls.confidential", c >= 2), ("cls.integrity", i >= 2),
                                           ("cls.availability", a >= 2)) if on]
        return [*tags, self.t("cls.protect")] if tags else []

    def grantee(self, grantee: str) -> str:
        """``user:tanaka`` → 利用者 tanaka; ``role:clerk@JINJI`` → 役割 事務取扱担当者 @JINJI."""
        kind, _, rest = grantee.partition(":")
        if kind == "user":
            return self.t("grants.user", name=rest)
        role, _, dept = rest.partition("@")
        try:
            name = self.t.role(role)
        except ValueError:
            name = role
        return self.t("grants.role", role=name) + (f" @{dept}" if dept else "")


def _message(t: Translator, exc: HogoError) -> str:
    """The refusal in words, with the requirement it enforces (never a stack trace)."""
    if exc.code == "self_approval_forbidden":
        return t("grants.self")
    text = t.error(exc)
    if exc.requirement and exc.requirement not in text:
        ref = f"（{exc.requirement}）" if t.lang == "ja" else f" ({exc.requirement})"
        stop = "。" if t.lang == "ja" else "."
        text = text[: -len(stop)] + ref + stop if text.endswith(stop) else text + ref
    return text


def _status(request: Request, status: int) -> int:
    """htmx swaps 2xx and 403 answers only (base.html): an inline error goes back as 200 there."""
    if _is_htmx(request) and not (200 <= status < 300 or status == 403):
        return 200
    return status


def _fields(view: FileView) -> list[dict[str, Any]]:
    out = []
    for f in view.spec.get("fields", ()):
        ident = f.get("type") == "my_number" or f.get("sensitivity") == "individual_identification_code"
        out.append({**f, "identification_code": ident})
    return out


def _summary_fields(view: FileView) -> list[dict[str, Any]]:
    """The columns of a search result: enough to tell records apart (subject, name, identification
    codes masked, segment); the rest is on the record's own page."""
    spec = view.spec
    keep = {spec.get("subject_field"), spec.get("segment_field")}
    return [f for f in _fields(view) if f["name"] in keep or f.get("type") == "name" or f["identification_code"]]


def _base(request: Request) -> dict[str, Any]:
    return {"ui": Labels(_t(request))}


def _find_file(request: Request, principal: Principal, code: str) -> FileView | None:
    """The file's ledger entry, or None when it does not exist or this person may not see it."""
    try:
        return files.show_file(_hogo(request), principal, code)
    except NotFound:
        return None


def _not_found(request: Request, principal: Principal) -> Response:
    return render(request, "error.html", principal=principal, status=404, message_key="files.not_found",
                  title_key="error.title")


def _may_list_grants(request: Request, principal: Principal, code: str) -> bool:
    """Whether to offer the grants page: the grant service's own answer."""
    try:
        grants.list_grants(_hogo(request), principal, code)
    except (Forbidden, NotFound):
        return False
    return True


# ------------------------------------------------------------------------------------ files


@router.get("/files")
def files_page(request: Request, principal: Principal = Depends(ready_principal)) -> Response:
    """The files you may use (or, for managers and auditors, whose ledger entries you may read)."""
    views = files.list_files(_hogo(request), principal)
    return render(request, "files/list.html", principal=principal, files=views,
                  may_review=principal.can(Permission.FILE_READ), **_base(request))


def _file_page(request: Request, principal: Principal, view: FileView, *, status: int = 200,
               **context: Any) -> Response:
    context.setdefault("purpose", "")
    context.setdefault("search_values", {})
    context.setdefault("results", None)
    context.setdefault("search_error", None)
    context.setdefault("open_error", None)
    context.setdefault("record_id", "")
    from hogo.web.marks_routes import marks_context  # the marks section (SEC-46(3))

    context = {**marks_context(request, principal, view), **context}
    return render(request, "files/file.html", principal=principal, status=status, view=view,
                  fields=_fields(view), summary_fields=_summary_fields(view),
                  may_grants=_may_list_grants(request, principal, view.code), **_base(request), **context)


@router.get("/files/{code}")
def file_page(request: Request, code: str, principal: Principal = Depends(ready_principal)) -> Response:
    """The ledger entry (MN-3c) and the record lookup."""
    view = _find_file(request, principal, code)
    if view is None:
        return _not_found(request, principal)
    return _file_page(request, principal, view)


@router.post("/files/{code}/search")
def file_search(request: Request, code: str, principal: Principal = Depends(ready_principal),
                form: FormData = Depends(csrf_form)) -> Response:
    """Exact match on indexed fields, through the guard (blind index; recorded, MN-3b)."""
    t = _t(request)
    view = _find_file(request, principal, code)
    if view is None:
        return _not_found(request, principal)
    purpose = _field(form, "purpose").strip()
    fields = _fields(view)
    where = {f["name"]: v for f in fields if (v := _field(form, "q_" + f["name"]).strip())}
    results: list[RecordView] | None = None
    error: str | None = None
    status = 200
    try:
        results = guard.find_records(_hogo(request), principal, view.code, where, purpose=purpose or None,
                                     ctx=_actor_ctx(request, principal))
    except (Forbidden, ValidationFailed, NotFound) as exc:
        error, status = _message(t, exc), exc.status
    if _is_htmx(request):
        return render(request, "files/partials/results.html", principal=principal,
                      status=_status(request, status), view=view, purpose=purpose, results=results,
                      search_error=error, summary_fields=_summary_fields(view), **_base(request))
    # A typed identification code (My Number) is not echoed back into the page.
    echo = {f["name"]: where[f["name"]] for f in fields if f["name"] in where and not f["identification_code"]}
    return _file_page(request, principal, view, status=status, purpose=purpose, search_values=echo,
                      results=results, search_error=error)


# ---------------------------------------------------------------------------------- records


def _record_page(request: Request, principal: Principal, code: str, record_id: str, form: FormData,
                 *, reveal: tuple[str, ...] = ()) -> Response:
    """Read (or reveal) through the guard first — so every attempt is on record — then show it."""
    hogo = _hogo(request)
    purpose = _field(form, "purpose").strip()
    try:
        rec = guard.read_record(hogo, principal, code, record_id, purpose=purpose or None, reveal=reveal,
                                ctx=_actor_ctx(request, principal))
        view = files.show_file(hogo, principal, code)
    except (Forbidden, ValidationFailed, NotFound) as exc:
        return _refused(request, principal, exc, code=code, purpose=purpose,
                        record_id=record_id if reveal else None)
    return render(request, "files/record.html", principal=principal, view=view, rec=rec, purpose=purpose,
                  code=view.code, fields=[f for f in _fields(view) if f["name"] in rec.values], **_base(request))


def _refused(request: Request, principal: Principal, exc: HogoError, *, code: str, purpose: str,
             record_id: str | None = None, back: str | None = None) -> Response:
    """A refusal as a page: the reason and the requirement, and the way back."""
    return render(request, "files/refused.html", principal=principal, status=exc.status,
                  message=_message(_t(request), exc), code=code, purpose=purpose, record_id=record_id,
                  denied=isinstance(exc, Forbidden), back=back or f"/files/{code}", **_base(request))


@router.get("/files/{code}/records/{record_id}")
def record_get(code: str, record_id: str) -> Response:
    """Records open by POST (the purpose is chosen in a form): a bookmark or reload goes to the file."""
    return _no_store(RedirectResponse(f"/files/{code}", status_code=303))


@router.post("/files/{code}/records/{record_id}")
def record_page(request: Request, code: str, record_id: str, principal: Principal = Depends(ready_principal),
                form: FormData = Depends(csrf_form)) -> Response:
    return _record_page(request, principal, code, record_id, form)


@router.post("/files/{code}/open")
def record_open(request: Request, code: str, principal: Principal = Depends(ready_principal),
                form: FormData = Depends(csrf_form)) -> Response:
    """Open by record ID typed in a form (the ID, too, stays out of the URL)."""
    record_id = _field(form, "record_id").strip()
    if not record_id:
        view = _find_file(request, principal, code)
        if view is None:
            return _not_found(request, principal)
        return _file_page(request, principal, view, status=422, purpose=_field(form, "purpose").strip(),
                          open_error=_t(request)("err.required"))
    return _record_page(request, principal, code, record_id, form)


@router.post("/files/{code}/records/{record_id}/reveal")
def record_reveal(request: Request, code: str, record_id: str, principal: Principal = Depends(ready_principal),
                  form: FormData = Depends(csrf_form)) -> Response:
    """MN-6a: one masked field shown in full, if a ``reveal`` grant covers it; the guard records the
    reveal, or its refusal (MN-3b). With htmx the answer is the field's cell (or the refusal in it)."""
    name = _field(form, "field").strip()
    if not _is_htmx(request):
        return _record_page(request, principal, code, record_id, form, reveal=(name,))
    t = _t(request)
    hogo = _hogo(request)
    purpose = _field(form, "purpose").strip()
    try:
        rec = guard.read_record(hogo, principal, code, record_id, purpose=purpose or None, reveal=[name],
                                ctx=_actor_ctx(request, principal))
    except (Forbidden, ValidationFailed, NotFound) as exc:
        target = f"#reveal-msg-{name}" if _FIELD_NAME_RE.fullmatch(name) else "#main"
        return render(request, "files/partials/reveal_refused.html", principal=principal,
                      status=_status(request, exc.status), message=_message(t, exc),
                      denied=isinstance(exc, Forbidden),
                      headers={"HX-Retarget": target, "HX-Reswap": "innerHTML"})
    view = files.show_file(hogo, principal, code)
    f = next(f for f in _fields(view) if f["name"] == name)
    return render(request, "files/partials/value_cell.html", principal=principal, rec=rec, f=f, code=view.code,
                  purpose=purpose, **_base(request))


# ----------------------------------------------------------------------------------- grants


def _departments(request: Request, principal: Principal) -> list[accounts.DepartmentView]:
    try:
        return accounts.list_departments(_hogo(request), principal)
    except Forbidden:
        return []


def _grants_page(request: Request, principal: Principal, code: str, *, status: int = 200,
                 **context: Any) -> Response:
    """The grant service answers first: a refusal (SEC-130) is shown with its reason."""
    t = _t(request)
    try:
        listed = grants.list_grants(_hogo(request), principal, code)
    except Forbidden as exc:
        return _refused(request, principal, exc, code=code, purpose="", back="/files")
    except NotFound:
        return _not_found(request, principal)
    view = _find_file(request, principal, code)
    if view is None:
        return _not_found(request, principal)
    context.setdefault("values", {"actions": [], "purposes": [], "fields": []})
    context.setdefault("errors", {})
    context.setdefault("notice", None)
    context.setdefault("page_error", None)
    fields = _fields(view)
    name = "files/partials/grants_body.html" if _is_htmx(request) else "files/grants.html"
    return render(
        request, name, principal=principal, status=_status(request, status), view=view, grants=listed,
        fields=fields, field_labels={f["name"]: f["label"] for f in fields}, actions=[a.value for a in Action],
        roles=[{"value": r.value, "label": t.role(r)} for r in Role],
        departments=_departments(request, principal), **_base(request), **context,
    )


@router.get("/files/{code}/grants")
def grants_page(request: Request, code: str, principal: Principal = Depends(ready_principal)) -> Response:
    """For the file's protection manager and holders of ``manage`` (SEC-130); auditors and the
    general protection manager may look. Anyone else is refused with the reason."""
    return _grants_page(request, principal, code)


def _list(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name)[:MAX_LIST] if isinstance(v, str) and v.strip()]


@router.post("/files/{code}/grants")
def grants_create(request: Request, code: str, principal: Principal = Depends(ready_principal),
                  form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    labels = Labels(t)
    user = _field(form, "user").strip()
    role = _field(form, "role").strip()
    dept = _field(form, "role_department").strip()
    segments_text = _field(form, "segments").strip()
    values: dict[str, Any] = {
        "user": user, "role": role, "role_department": dept, "actions": _list(form, "actions"),
        "purposes": _list(form, "purposes"), "fields": _list(form, "fields"), "segments": segments_text,
        "valid_until": _field(form, "valid_until").strip(), "note": _field(form, "note").strip(),
    }
    segments = [s for s in _SEGMENT_SPLIT_RE.split(segments_text) if s]
    try:
        g = grants.create_grant(
            _hogo(request), principal, code, user=user or None,
            role=(f"{role}@{dept}" if dept else role) if role else None,
            actions=values["actions"], purposes=values["purposes"], fields=values["fields"] or None,
            segments=segments or None, valid_until=_date_field(request, form, "valid_until"),
            note=values["note"] or None, ctx=_actor_ctx(request, principal),
        )
    except (ValidationFailed, Forbidden, NotFound, Conflict) as exc:
        field = exc.details.get("field") if isinstance(exc.details.get("field"), str) else None
        if exc.code in ("user_not_found",):
            field = "user"
        elif exc.code == "department_not_found":
            field = "role"
        key = field if field in values else "form"
        return _grants_page(request, principal, code, status=exc.status, values=values,
                            errors={key: _message(t, exc)})
    return _grants_page(request, principal, code, status=201,
                        notice=t("grants.created", grantee=labels.grantee(g.grantee)))


@router.post("/files/{code}/grants/{grant_id}/revoke")
def grants_revoke(request: Request, code: str, grant_id: str, principal: Principal = Depends(ready_principal),
                  form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    try:
        grants.revoke_grant(_hogo(request), principal, grant_id, ctx=_actor_ctx(request, principal))
    except (Forbidden, NotFound) as exc:
        return _grants_page(request, principal, code, status=exc.status, page_error=_message(t, exc))
    return _grants_page(request, principal, code, notice=t("grants.revoked"))


# ----------------------------------------------------------------------------- access review


@router.get("/grants/review")
def review_page(request: Request, principal: Principal = Depends(ready_principal), file: str | None = None,
                unused_days: str | None = None) -> Response:
    """SEC-131(3): rights unused, expired, or held by disabled or expired accounts. The filter is a
    plain GET form: it carries no personal data."""
    t = _t(request)
    hogo = _hogo(request)
    file_code = (file or "").strip()[:63]
    days_text = (unused_days or "").strip()[:5] or str(DEFAULT_UNUSED_DAYS)
    items: list[grants.ReviewItem] | None = None
    error: str | None = None
    status = 200
    try:
        days = int(days_text)
        if not 1 <= days <= 3650:
            raise ValueError(days_text)
    except ValueError:
        days, error, status = DEFAULT_UNUSED_DAYS, t("review.bad_days"), 422
    if error is None:
        try:
            items = grants.review(hogo, principal, file_code=file_code or None, unused_days=days)
        except (Forbidden, NotFound, ValidationFailed) as exc:
            error, status = _message(t, exc), exc.status
    flagged = sum(1 for i in items or () if i.findings)
    return render(request, "files/review.html", principal=principal, status=status, items=items, error=error,
                  file_code=file_code, unused_days=days_text, days=days, flagged=flagged,
                  files=files.list_files(hogo, principal), **_base(request))
