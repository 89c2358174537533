"""Web pages for the approval inbox (SEC-19, ANON-8); installed by ``hogo.web.routes.install``. No rule
lives here: the page shows what ``hogo.services.approvals`` answers and its refusals with the reason.

* ``/approvals``: the requests the signed-in user may see (made, to decide, decided), with their steps,
  escalations and decisions; approve or reject in place (plain forms, CSRF-checked; a reason is required
  to reject). Values of a correction are never shown here: only the fields it changes.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from hogo.errors import HogoError
from hogo.services import approvals
from hogo.services.auth import Principal
from hogo.web import i18n_approvals  # noqa: F401  (adds the inbox's texts to MESSAGES)
from hogo.web.data_routes import _message
from hogo.web.routes import _actor_ctx, _field, _hogo, _no_store, _t, csrf_form, ready_principal, render

router = APIRouter(include_in_schema=False)

FILTERS = ("open", "pending", "applied", "rejected", "all")
STATUS_BADGE = {"pending": "pending", "approved": "pending", "rejected": "denied", "applied": "success",
                "failed": "failure", "cancelled": "muted-badge"}


def _inbox(request: Request, principal: Principal, *, status: str = "open", notice: str | None = None,
           error: str | None = None, code: int = 200) -> Response:
    if status not in FILTERS:
        status = "open"
    rows = approvals.list_requests(_hogo(request), principal, status=status)
    return render(request, "approvals/list.html", principal=principal, status=code, requests=rows,
                  status_filter=status, filters=FILTERS, notice=notice, page_error=error, badges=STATUS_BADGE)


@router.get("/approvals")
def inbox(request: Request, principal: Principal = Depends(ready_principal), status: str = "open") -> Response:
    """The requests the user may see, newest first (by default those not yet finished)."""
    return _inbox(request, principal, status=(status or "open")[:20])


def _decide(request: Request, principal: Principal, request_id: int, form: FormData, approve: bool) -> Response:
    t = _t(request)
    try:
        r = approvals.decide(_hogo(request), principal, request_id, approve=approve,
                             reason=_field(form, "reason") or None, ctx=_actor_ctx(request, principal))
    except HogoError as exc:
        return _inbox(request, principal, error=_message(t, exc), code=exc.status)
    notice = (t("approvals.approved_msg", id=r.id, status=t("approvals.status." + r.status)) if approve
              else t("approvals.rejected_msg", id=r.id))
    return _inbox(request, principal, notice=notice)


@router.post("/approvals/{request_id}/approve")
def approve(request: Request, request_id: int, principal: Principal = Depends(ready_principal),
            form: FormData = Depends(csrf_form)) -> Response:
    return _decide(request, principal, request_id, form, True)


@router.post("/approvals/{request_id}/reject")
def reject(request: Request, request_id: int, principal: Principal = Depends(ready_principal),
           form: FormData = Depends(csrf_form)) -> Response:
    return _decide(request, principal, request_id, form, False)


@router.get("/approvals/{request_id}")
def detail(request: Request, request_id: int, principal: Principal = Depends(ready_principal)) -> Response:
    return _no_store(RedirectResponse(f"/approvals?status=all#request-{request_id}", status_code=303))
