"""Web pages of the take-out register (持出管理簿, SEC-47..49, MN-6d); installed by ``hogo.web.routes.install``.
No rule lives here: the pages show what ``hogo.services.takeouts`` answers and its refusals with the reason.

* ``/takeouts``: the register (open take-outs, or all), newest first, with status, file, recipient,
  transport, due date and flags (emergency, provision).
* ``/takeouts/new``: the request form (file, fields, records, purpose, recipient key or passphrase,
  destination, transport and medium, due date); its approval goes through ``/approvals``.
* ``/takeouts/{id}``: one entry, its approval steps and what became of it; the requester downloads the
  package (a passphrase in the form body, never a URL), the taker declares it returned or disposed of, and
  the file's manager confirms (plain forms, CSRF-checked).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.datastructures import FormData

from hogo.errors import HogoError, NotFound, ValidationFailed
from hogo.services import files, takeouts
from hogo.services.auth import Principal
from hogo.web import i18n_takeouts  # noqa: F401  (adds the register's texts to MESSAGES)
from hogo.web.data_routes import _message
from hogo.web.routes import _actor_ctx, _field, _hogo, _no_store, _t, csrf_form, ready_principal, render

router = APIRouter(include_in_schema=False)

FILTERS = ("open", "overdue", "taken_out", "requested", "all")
STATUS_BADGE = {"requested": "pending", "approved": "pending", "rejected": "denied", "cancelled": "muted-badge",
                "taken_out": "pending", "overdue": "failure", "returned": "success", "disposed": "success",
                "expired": "muted-badge"}


@router.get("/takeouts")
def register(request: Request, principal: Principal = Depends(ready_principal), status: str = "open") -> Response:
    """The take-out register, newest first."""
    status = status if status in FILTERS else "open"
    hogo = _hogo(request)
    rows = takeouts.list_takeouts(hogo, principal, status=status)
    # The reminder (督促): the viewer's own copies past their due date, whatever the filter shows.
    overdue = [x for x in takeouts.list_takeouts(hogo, principal, status="overdue", mine=True) if x.can_declare]
    return render(request, "takeouts/list.html", principal=principal, takeouts=rows, status_filter=status,
                  filters=FILTERS, badges=STATUS_BADGE, overdue=overdue)


def _form_page(request: Request, principal: Principal, *, error: str | None = None,
               values: dict[str, str] | None = None, code: int = 200) -> Response:
    hogo = _hogo(request)
    file_rows = files.list_files(hogo, principal)
    default_due = (hogo.clock.now() + dt.timedelta(days=14)).date().isoformat()
    return render(request, "takeouts/new.html", principal=principal, status=code, files=file_rows,
                  page_error=error, values=values or {}, default_due=default_due,
                  transports=list(takeouts.TRANSPORTS), emergency_allowed=hogo.settings.takeout_emergency_allowed)


@router.get("/takeouts/new")
def new_form(request: Request, principal: Principal = Depends(ready_principal), file: str = "") -> Response:
    return _form_page(request, principal, values={"file": file[:63]})


def _where(text: str) -> dict[str, dict[str, str]] | None:
    pairs = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
    if not pairs:
        return None
    out: dict[str, str] = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise ValidationFailed("records are selected as FIELD=VALUE", field="selection")
        out[k.strip()] = v.strip()
    return {"where": out}


@router.post("/takeouts")
def create(request: Request, principal: Principal = Depends(ready_principal),
           form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    values = {k: _field(form, k) for k in ("file", "fields", "where", "purpose", "recipient", "recipient_key",
                                           "destination", "transport", "media_id", "due", "note")}
    try:
        try:
            due = dt.date.fromisoformat(values["due"])
        except ValueError:
            raise ValidationFailed("the due date is YYYY-MM-DD", field="due") from None
        passphrase = _field(form, "passphrase_mode") == "1"
        r = takeouts.request_takeout(
            _hogo(request), principal, values["file"], fields=values["fields"].split(","), purpose=values["purpose"],
            recipient=values["recipient"], destination=values["destination"], transport=values["transport"],
            due=due, ctx=_actor_ctx(request, principal), recipient_key=None if passphrase else values["recipient_key"],
            passphrase=passphrase, media_id=values["media_id"] or None, selection=_where(values["where"]),
            outside_scope=_field(form, "outside_scope") == "1", emergency=_field(form, "emergency") == "1",
            note=values["note"] or None)
    except HogoError as exc:
        return _form_page(request, principal, error=_message(t, exc), values=values, code=exc.status)
    return _no_store(RedirectResponse(f"/takeouts/{r.id}?requested=1", status_code=303))


def _detail(request: Request, principal: Principal, takeout_id: int, *, notice: str | None = None,
            error: str | None = None, code: int = 200) -> Response:
    try:
        t = takeouts.get_takeout(_hogo(request), principal, takeout_id)
    except NotFound:
        return render(request, "error.html", principal=principal, status=404, message_key="error.not_found",
                      title_key="error.title")
    return render(request, "takeouts/detail.html", principal=principal, status=code, x=t, notice=notice,
                  page_error=error, badges=STATUS_BADGE)


@router.get("/takeouts/{takeout_id}")
def detail(request: Request, takeout_id: int, principal: Principal = Depends(ready_principal),
           requested: str = "") -> Response:
    notice = _t(request)("takeouts.requested_msg", id=takeout_id) if requested else None
    return _detail(request, principal, takeout_id, notice=notice)


@router.post("/takeouts/{takeout_id}/download")
async def download(request: Request, takeout_id: int, principal: Principal = Depends(ready_principal),
                   form: FormData = Depends(csrf_form)) -> Response:
    tmp = Path(tempfile.mkdtemp(prefix="hogo-takeout-"))
    out = tmp / f"takeout-{takeout_id}.hogopkg"
    try:
        await run_in_threadpool(takeouts.download, _hogo(request), principal, takeout_id, out_path=out,
                                passphrase=_field(form, "passphrase") or None, ctx=_actor_ctx(request, principal))
    except HogoError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return _detail(request, principal, takeout_id, error=_message(_t(request), exc), code=exc.status)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(out, media_type="application/octet-stream", filename=out.name,
                        headers={"Cache-Control": "no-store"},
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.post("/takeouts/{takeout_id}/{kind}")
def close(request: Request, takeout_id: int, kind: str, principal: Principal = Depends(ready_principal),
          form: FormData = Depends(csrf_form)) -> Response:
    t = _t(request)
    closing = {"return": "returned", "dispose": "disposed"}.get(kind)
    if closing is None:
        return _detail(request, principal, takeout_id, error=t("error.not_found_title"), code=404)
    try:
        x = takeouts.close_copy(_hogo(request), principal, takeout_id, kind=closing, note=_field(form, "note") or None,
                                ctx=_actor_ctx(request, principal))
    except HogoError as exc:
        return _detail(request, principal, takeout_id, error=_message(t, exc), code=exc.status)
    label = t("takeouts." + closing)
    notice = (t("takeouts.confirmed_msg", id=x.id, kind=label) if x.status == closing
              else t("takeouts.declared_msg", id=x.id, kind=label))
    return _detail(request, principal, takeout_id, notice=notice)
