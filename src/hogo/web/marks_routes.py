"""Web pages for a file's marks (SEC-46) and temporary working copies (ANON-17); installed by
``hogo.web.routes.install``. No rule lives here: the pages show what ``hogo.services.marks`` and
``hogo.services.workcopies`` answer, and their refusals with the reason.

* Every file and record page shows the marks as a badge, Japanese first (``marks/badge.html``).
* The file page has a form to revise the marks (shown to those who define files; the service decides
  and logs a refusal) and the history of every change.
* ``/workcopies``: copies still outstanding and disposed ones awaiting the manager's confirmation of
  erasure, with dispose and confirm buttons; ``POST /workcopies/{id}/read`` shows the rows to the holder.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from hogo.domain.files import Restriction
from hogo.domain.roles import Permission
from hogo.errors import HogoError, NotFound
from hogo.services import marks, workcopies
from hogo.services.auth import Principal
from hogo.services.files import FileView
from hogo.web import i18n_marks  # noqa: F401  (adds the pages' texts to MESSAGES)
from hogo.web.data_routes import Labels, _file_page, _find_file, _message, _not_found
from hogo.web.routes import _actor_ctx, _field, _hogo, _t, csrf_form, ready_principal, render

router = APIRouter(include_in_schema=False)


def marks_context(request: Request, principal: Principal, view: FileView) -> dict[str, Any]:
    """What the file page's marks section needs: the history, and whether to offer the form."""
    try:
        history = marks.history(_hogo(request), principal, view.code)
    except NotFound:
        history = []
    return {"marks_history": [{**h.__dict__, "before_marks": _labels(h.before), "after_marks": _labels(h.after)}
                              for h in history],
            "may_change_marks": principal.can(Permission.FILE_DEFINE),
            "all_restrictions": [r.value for r in Restriction],
            "marks_notice": None, "marks_error": None}


def _labels(d: dict[str, Any]) -> dict[str, str]:
    from hogo.domain.handling import Marks

    m = Marks.from_dict(d)
    return {"label_ja": m.label_ja, "label_full": m.label}


def _level(form: FormData, name: str) -> int | None:
    value = _field(form, name).strip()
    return int(value) if value.isdigit() else None


@router.post("/files/{code}/marks")
def change_marks(request: Request, code: str, principal: Principal = Depends(ready_principal),
                 form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    view = _find_file(request, principal, code)
    if view is None:
        return _not_found(request, principal)
    wanted = {r.value for r in Restriction if _field(form, "r_" + r.value) == "on"}
    current = set(view.marks.get("restrictions") or ())
    try:
        after = marks.change_marks(
            _hogo(request), principal, view.code, confidentiality=_level(form, "confidentiality"),
            integrity=_level(form, "integrity"), availability=_level(form, "availability"),
            restrict=sorted(wanted - current), unrestrict=sorted(current - wanted),
            reason=_field(form, "reason"), ctx=_actor_ctx(request, principal))
    except HogoError as exc:
        return _file_page(request, principal, view, status=exc.status, marks_error=_message(t, exc))
    return _file_page(request, principal, after, marks_notice=t("marks.changed", version=after.version))


# ------------------------------------------------------------------------------------ working copies


def _copies_page(request: Request, principal: Principal, *, notice: str | None = None, error: str | None = None,
                 status: int = 200, contents: workcopies.CopyContents | None = None) -> Response:
    rep = workcopies.report(_hogo(request), principal)
    return render(request, "marks/workcopies.html", principal=principal, status=status,
                  outstanding=rep["outstanding"], awaiting=rep["awaiting_confirmation"], notice=notice,
                  page_error=error, contents=contents, ui=Labels(_t(request)))


@router.get("/workcopies")
def copies_page(request: Request, principal: Principal = Depends(ready_principal)) -> Response:
    """Copies still outstanding and those awaiting confirmation of erasure (ANON-17)."""
    return _copies_page(request, principal)


@router.post("/workcopies/{copy_id}/read")
def copy_read(request: Request, copy_id: str, principal: Principal = Depends(ready_principal),
              form: FormData = Depends(csrf_form)) -> Response:
    try:
        got = workcopies.read_copy(_hogo(request), principal, copy_id, ctx=_actor_ctx(request, principal))
    except HogoError as exc:
        return _copies_page(request, principal, error=_message(_t(request), exc), status=exc.status)
    return _copies_page(request, principal, contents=got)


@router.post("/workcopies/{copy_id}/dispose")
def copy_dispose(request: Request, copy_id: str, principal: Principal = Depends(ready_principal),
                 form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    try:
        w = workcopies.dispose_copy(_hogo(request), principal, copy_id, ctx=_actor_ctx(request, principal))
    except HogoError as exc:
        return _copies_page(request, principal, error=_message(t, exc), status=exc.status)
    return _copies_page(request, principal, notice=t("wc.disposed_msg", id=w.id))


@router.post("/workcopies/{copy_id}/confirm")
def copy_confirm(request: Request, copy_id: str, principal: Principal = Depends(ready_principal),
                 form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    try:
        w = workcopies.confirm_disposal(_hogo(request), principal, copy_id, note=_field(form, "note") or None,
                                        ctx=_actor_ctx(request, principal))
    except HogoError as exc:
        return _copies_page(request, principal, error=_message(t, exc), status=exc.status)
    return _copies_page(request, principal, notice=t("wc.confirmed_msg", id=w.id))
