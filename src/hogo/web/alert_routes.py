"""Web pages for the alert inbox (ANON-13, SEC-107(2), SEC-132, MN-6c); installed by
``hogo.web.routes.install``. No rule lives here: the pages show what ``hogo.services.alerts`` and
``hogo.services.analysis`` answer, and their refusals with the reason and the requirement.

* ``/alerts``: the alerts still open or being handled (or a chosen status), with severity, rule,
  subject, time and the number of log entries behind each; the analysis's own warnings on top (an
  overdue review of the thresholds, ANON-13); acknowledge and close in place (htmx, CSRF-checked).
* ``/alerts/{id}``: one alert and the log entries behind it; looking at them is logged (ANON-12).
* Nobody acknowledges or closes an alert about themselves (SEC-19): the service refuses, the page says why.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from hogo.domain.roles import Permission
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import alerts, analysis
from hogo.services.auth import Principal
from hogo.web import i18n_alerts  # noqa: F401  (adds the inbox's texts to MESSAGES)
from hogo.web.data_routes import _message, _status
from hogo.web.i18n import MESSAGES, Translator
from hogo.web.routes import _actor_ctx, _field, _hogo, _is_htmx, _no_store, _t, csrf_form, ready_principal, render

router = APIRouter(include_in_schema=False)

SEVERITY_BADGE = {"high": "failure", "medium": "pending", "low": "muted-badge"}
STATUS_BADGE = {"open": "denied", "acknowledged": "pending", "closed": "success"}


class AlertUi:
    """Words for the alerts' codes in the page's language."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def title(self, a: alerts.AlertView) -> str:
        return a.title(self.t.lang)

    def summary(self, a: alerts.AlertView) -> str:
        return a.summary(self.t.lang)

    def severity(self, value: str) -> str:
        return self.t("alerts.severity." + value) if "alerts.severity." + value in MESSAGES else value

    def status(self, value: str) -> str:
        return self.t("alerts.status." + value) if "alerts.status." + value in MESSAGES else value

    def severity_class(self, value: str) -> str:
        return SEVERITY_BADGE.get(value, "")

    def status_class(self, value: str) -> str:
        return STATUS_BADGE.get(value, "")

    def event(self, name: str) -> str:
        key = "event." + name
        return self.t(key) if key in MESSAGES else name

    def warning(self, w: analysis.AnalysisWarning) -> str:
        return w.ja if self.t.lang == "ja" else w.en


def _forbidden(request: Request, principal: Principal) -> Response:
    return render(request, "error.html", principal=principal, status=403, message_key="alerts.forbidden",
                  title_key="error.forbidden_title")


def _inbox(request: Request, principal: Principal, *, status: str = "active", notice: str | None = None,
           error: str | None = None, code: int = 200) -> Response:
    hogo = _hogo(request)
    if status not in alerts.STATUS_FILTERS:
        status = "active"
    try:
        rows = alerts.list_alerts(hogo, principal, status=status)
        warnings = analysis.current_warnings(hogo, principal)
    except Forbidden:
        return _forbidden(request, principal)
    return render(request, "alerts/list.html", principal=principal, status=code, alerts=rows, warnings=warnings,
                  status_filter=status, filters=alerts.STATUS_FILTERS, notice=notice, page_error=error,
                  may_act=principal.can(Permission.ALERT_WRITE), ui=AlertUi(_t(request)))


@router.get("/alerts")
def inbox(request: Request, principal: Principal = Depends(ready_principal), status: str = "active") -> Response:
    """The alerts still to be handled (or those of the chosen status), newest first."""
    return _inbox(request, principal, status=(status or "active")[:20])


@router.post("/alerts/run")
def run_now(request: Request, principal: Principal = Depends(ready_principal),
            form: FormData = Depends(csrf_form)) -> Response:
    """Analyse the log now (it also runs on the server's schedule)."""
    t = _t(request)
    try:
        r = analysis.run(_hogo(request), trigger="manual", principal=principal, ctx=_actor_ctx(request, principal))
    except Forbidden:
        return _forbidden(request, principal)
    notice = t("alerts.run_busy") if r.status == "busy" else t(
        "alerts.run_done", events=r.events, raised=len(r.raised), updated=len(r.updated))
    return _inbox(request, principal, notice=notice)


@router.get("/alerts/{alert_id}")
def detail(request: Request, alert_id: int, principal: Principal = Depends(ready_principal)) -> Response:
    """One alert and the log entries behind it (looking at them is logged, ANON-12)."""
    return _detail(request, principal, alert_id)


def _detail(request: Request, principal: Principal, alert_id: int, *, notice: str | None = None,
            error: str | None = None, code: int = 200) -> Response:
    try:
        d = alerts.get_alert(_hogo(request), principal, alert_id, ctx=_actor_ctx(request, principal))
    except Forbidden:
        return _forbidden(request, principal)
    except NotFound:
        return render(request, "error.html", principal=principal, status=404, message_key="err.alert_not_found",
                      title_key="error.title")
    return render(request, "alerts/detail.html", principal=principal, status=code, a=d.alert, events=d.events,
                  linked=d.linked, notice=notice, page_error=error, may_act=principal.can(Permission.ALERT_WRITE),
                  ui=AlertUi(_t(request)))


def _act(request: Request, principal: Principal, alert_id: int, form: FormData, action: str) -> Response:
    """Acknowledge or close; with htmx the answer is the alert's row (with the notice or the refusal)."""
    t = _t(request)
    hogo = _hogo(request)
    ctx = _actor_ctx(request, principal)
    done: alerts.AlertView | None = None
    notice: str | None = None
    error: str | None = None
    status = 200
    try:
        if action == "ack":
            done = alerts.acknowledge(hogo, principal, alert_id, note=_field(form, "note"), ctx=ctx)
            notice = t("alerts.acked_msg", id=done.id)
        else:
            done = alerts.close(hogo, principal, alert_id, resolution=_field(form, "resolution"), ctx=ctx)
            notice = t("alerts.closed_msg", id=done.id)
    except (Forbidden, Conflict, NotFound, ValidationFailed) as exc:
        error, status = _message(t, exc), exc.status
        if isinstance(exc, Forbidden) and exc.code == "forbidden":
            return _forbidden(request, principal)
    if not _is_htmx(request):
        if error is None and _field(form, "from") == "detail":
            return _no_store(RedirectResponse(f"/alerts/{alert_id}", status_code=303))
        if error is None:
            return _no_store(RedirectResponse("/alerts", status_code=303))
        if _field(form, "from") == "detail":
            return _detail(request, principal, alert_id, error=error, code=status)
        return _inbox(request, principal, error=error, code=status)
    a = done or _current(request, principal, alert_id)
    if a is None:
        return render(request, "partials/error_body.html", principal=principal, status=404,
                      message_key="err.alert_not_found", headers={"HX-Retarget": "#main", "HX-Reswap": "innerHTML"})
    return render(request, "alerts/partials/row.html", principal=principal, status=_status(request, status), a=a,
                  notice=notice, row_error=error, may_act=principal.can(Permission.ALERT_WRITE),
                  ui=AlertUi(t))


def _current(request: Request, principal: Principal, alert_id: int) -> alerts.AlertView | None:
    try:
        return alerts.get_alert(_hogo(request), principal, alert_id).alert
    except (NotFound, Forbidden):
        return None


@router.post("/alerts/{alert_id}/ack")
def acknowledge(request: Request, alert_id: int, principal: Principal = Depends(ready_principal),
                form: FormData = Depends(csrf_form)) -> Response:
    return _act(request, principal, alert_id, form, "ack")


@router.post("/alerts/{alert_id}/close")
def close(request: Request, alert_id: int, principal: Principal = Depends(ready_principal),
          form: FormData = Depends(csrf_form)) -> Response:
    return _act(request, principal, alert_id, form, "close")

