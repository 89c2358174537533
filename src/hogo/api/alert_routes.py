"""/api/v1/alerts and /api/v1/analysis: the alert inbox and the log analysis (ANON-13, ANON-12, SEC-132,
SEC-107(2), MN-6c, SEC-84).

For auditors, SIRT and the general protection manager (``audit:alert:read`` / ``audit:alert:write``);
the thresholds are changed by the general protection manager and SIRT (``audit:analysis:configure``).
Everyone else gets 403 ``forbidden`` naming the permission. Listings carry the analysis's own warnings
(an overdue review of the thresholds, analysis not running, failed deliveries).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from hogo.api import schemas as S
from hogo.api.deps import HogoDep, PrincipalDep
from hogo.api.routes import ERRORS, ActorCtx, _instant
from hogo.errors import ValidationFailed
from hogo.services import alerts, analysis

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AlertOut(Out):
    id: int
    rule: str
    severity: str
    status: str
    title_ja: str
    title_en: str
    summary_ja: str
    summary_en: str
    subject: str
    subject_key: str
    subject_user_id: int | None
    window_start: dt.datetime
    window_end: dt.datetime
    params: dict[str, Any]
    event_count: int
    first_seq: int
    last_seq: int
    opened_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    ack_note: str | None
    closed_at: dt.datetime | None
    closed_by: str | None
    resolution: str | None
    notified_at: dt.datetime | None
    notify_pending: list[str]
    notify_error: str | None


class WarningOut(Out):
    code: str
    ja: str
    en: str
    due: dt.datetime | None = None


class AlertListOut(Out):
    alerts: list[AlertOut]
    warnings: list[WarningOut]


class AlertDetailOut(Out):
    alert: AlertOut
    events: list[S.AuditEventOut]
    linked: int


class AckIn(In):
    note: str | None = Field(default=None, max_length=alerts.MAX_NOTE)


class CloseIn(In):
    resolution: str = Field(min_length=1, max_length=alerts.MAX_NOTE)


class RunIn(In):
    from_seq: int | None = Field(default=None, ge=0, description="analyse again from this log index")


class DeliveryOut(Out):
    alert_id: int
    sink: str
    error: str | None


class RunOut(Out):
    status: str
    trigger: str
    run_id: int | None
    from_seq: int
    to_seq: int
    events: int
    config_version: int
    raised: list[int]
    updated: list[int]
    deliveries: list[DeliveryOut]
    more: bool
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class ConfigVersionOut(Out):
    version: int
    note: str | None
    created_at: dt.datetime | None
    created_by: str | None
    reviewed_at: dt.datetime | None
    reviewed_by: str | None
    review_note: str | None
    review_due_at: dt.datetime | None


class ConfigOut(ConfigVersionOut):
    settings: dict[str, dict[str, Any]]
    defaults: dict[str, dict[str, Any]]
    review_overdue: bool
    history: list[ConfigVersionOut]
    warnings: list[WarningOut]


class ConfigIn(In):
    changes: dict[str, Any] = Field(min_length=1, max_length=200,
                                    description='e.g. {"bulk.max_records": 2000, "working_hours.end": "21:00"}')
    note: str = Field(min_length=1, max_length=500, description="why (kept with the version and logged)")


class ReviewIn(In):
    note: str | None = Field(default=None, max_length=500)


class ReportOut(Out):
    report: dict[str, Any]
    markdown: str


def alert_out(a: alerts.AlertView) -> AlertOut:
    return AlertOut(
        id=a.id, rule=a.rule, severity=a.severity, status=a.status, title_ja=a.title_ja, title_en=a.title_en,
        summary_ja=a.summary_ja, summary_en=a.summary_en, subject=a.subject, subject_key=a.subject_key,
        subject_user_id=a.subject_user_id, window_start=a.window_start, window_end=a.window_end, params=a.params,
        event_count=a.event_count, first_seq=a.first_seq, last_seq=a.last_seq, opened_at=a.opened_at,
        updated_at=a.updated_at, acknowledged_at=a.acknowledged_at, acknowledged_by=a.acknowledged_by,
        ack_note=a.ack_note, closed_at=a.closed_at, closed_by=a.closed_by, resolution=a.resolution,
        notified_at=a.notified_at, notify_pending=list(a.notify_pending), notify_error=a.notify_error,
    )


def _warnings(ws: list[analysis.AnalysisWarning]) -> list[WarningOut]:
    return [WarningOut(code=w.code, ja=w.ja, en=w.en, due=w.due) for w in ws]


def _version(c: analysis.Config) -> dict[str, Any]:
    return {"version": c.version, "note": c.note, "created_at": c.created_at, "created_by": c.created_by,
            "reviewed_at": c.reviewed_at, "reviewed_by": c.reviewed_by, "review_note": c.review_note,
            "review_due_at": c.review_due_at}


def config_out(view: analysis.ConfigView) -> ConfigOut:
    return ConfigOut(**_version(view.config), settings=view.config.settings, defaults=view.defaults,
                     review_overdue=view.review_overdue,
                     history=[ConfigVersionOut(**_version(c)) for c in view.history],
                     warnings=_warnings(view.warnings))


# ------------------------------------------------------------------------------------ alerts


@router.get("/alerts", response_model=AlertListOut, tags=["alerts"])
def list_alerts(
    hogo: HogoDep,
    principal: PrincipalDep,
    status: Annotated[str, Query(pattern="^(active|open|acknowledged|closed|all)$",
                                 description="active = open or acknowledged")] = "active",
    rule: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    before: Annotated[int | None, Query(ge=1, description="only alerts with a smaller id (paging)")] = None,
) -> AlertListOut:
    """Newest first, with the analysis's own warnings (ANON-13: an overdue review of the thresholds)."""
    rows = alerts.list_alerts(hogo, principal, status=status, rule=rule, limit=limit, before_id=before)
    return AlertListOut(alerts=[alert_out(a) for a in rows],
                        warnings=_warnings(analysis.current_warnings(hogo, principal)))


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, tags=["alerts"])
def get_alert(alert_id: int, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> AlertDetailOut:
    """The alert and the log entries behind it (reading them is logged, ANON-12)."""
    d = alerts.get_alert(hogo, principal, alert_id, ctx=ctx)
    events = [S.AuditEventOut.model_validate({**{c: getattr(e, c) for c in S.AuditEventOut.model_fields
                                                 if c != "expired"}, "expired": e.entry is None})
              for e in d.events]
    return AlertDetailOut(alert=alert_out(d.alert), events=events, linked=d.linked)


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, tags=["alerts"])
def acknowledge(alert_id: int, body: AckIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> AlertOut:
    """Take an open alert up. Not an alert about yourself (SEC-19)."""
    return alert_out(alerts.acknowledge(hogo, principal, alert_id, note=body.note, ctx=ctx))


@router.post("/alerts/{alert_id}/close", response_model=AlertOut, tags=["alerts"])
def close(alert_id: int, body: CloseIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> AlertOut:
    """Close an alert with what was found and done. Not an alert about yourself (SEC-19)."""
    return alert_out(alerts.close(hogo, principal, alert_id, resolution=body.resolution, ctx=ctx))


# ---------------------------------------------------------------------------------- analysis


@router.post("/analysis/run", response_model=RunOut, tags=["analysis"])
def run_analysis(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx, body: RunIn | None = None) -> RunOut:
    """Analyse the log now (it also runs on a schedule). ``busy`` when another run holds the lease."""
    r = analysis.run(hogo, trigger="manual", principal=principal, ctx=ctx,
                     from_seq=body.from_seq if body is not None else None)
    return RunOut(status=r.status, trigger=r.trigger, run_id=r.run_id, from_seq=r.from_seq, to_seq=r.to_seq,
                  events=r.events, config_version=r.config_version, raised=list(r.raised), updated=list(r.updated),
                  deliveries=[DeliveryOut(alert_id=d.alert_id, sink=d.sink, error=d.error) for d in r.deliveries],
                  more=r.more, started_at=r.started_at, finished_at=r.finished_at)


@router.get("/analysis/config", response_model=ConfigOut, tags=["analysis"])
def get_config(hogo: HogoDep, principal: PrincipalDep) -> ConfigOut:
    """The thresholds in force, their review status and their recent versions."""
    return config_out(analysis.show_config(hogo, principal))


@router.put("/analysis/config", response_model=ConfigOut, tags=["analysis"])
def put_config(body: ConfigIn, hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx) -> ConfigOut:
    """A new version of the thresholds (changes applied to the current ones); logged with the reason (SEC-84)."""
    analysis.set_config(hogo, principal, body.changes, note=body.note, ctx=ctx)
    return config_out(analysis.show_config(hogo, principal))


@router.post("/analysis/config/review", response_model=ConfigOut, tags=["analysis"])
def review_config(hogo: HogoDep, principal: PrincipalDep, ctx: ActorCtx, body: ReviewIn | None = None) -> ConfigOut:
    """Record the periodic review of the thresholds (ANON-13); not by whoever made this version (SEC-19)."""
    analysis.review_config(hogo, principal, note=body.note if body is not None else None, ctx=ctx)
    return config_out(analysis.show_config(hogo, principal))


@router.get("/analysis/report", response_model=ReportOut, tags=["analysis"],
            responses={200: {"content": {"text/markdown": {}}}})
def get_report(
    hogo: HogoDep,
    principal: PrincipalDep,
    ctx: ActorCtx,
    period: Annotated[str | None, Query(max_length=7, description="a month, YYYY-MM")] = None,
    since: Annotated[S.DateOrDateTime | None, Query(description="a date or a date-time")] = None,
    until: Annotated[S.DateOrDateTime | None, Query(description="a date counts in full")] = None,
    format: Annotated[str, Query(pattern="^(json|markdown)$")] = "json",
) -> Any:
    """The periodic report (MN-6c, SEC-132): a month (``period``) or ``since``–``until``. Generating it is logged."""
    if period:
        if since is not None or until is not None:
            raise ValidationFailed("give a period or since/until, not both", field="period")
        start, end = analysis.month_period(period, hogo.settings.timezone)
    else:
        if since is None or until is None:
            raise ValidationFailed("give a period (YYYY-MM) or both since and until", field="period")
        first, last = _instant(hogo, since), _instant(hogo, until, end=True)
        assert first is not None and last is not None
        start, end = first, last
    rep = analysis.report(hogo, principal, start, end, ctx=ctx)
    if format == "markdown":
        return Response(rep.to_markdown(), media_type="text/markdown; charset=utf-8")
    return ReportOut(report=rep.to_dict(), markdown=rep.to_markdown())
