"""Web pages for the tamper-evident log: search, one entry with its inclusion proof, activity charts
and on-demand verification (SEC-107(2)(3), MN-3b, ANON-12, MLIT-9.5.4, SEC-132); installed by
``hogo.web.routes.install``. The pages call ``hogo.services.audit_access``; no rule lives here.

* SEC-107(2), MN-3b, SEC-132: the log is searched by user, file, record (person), event, outcome and
  period. Auditors, the CSIRT and the general protection manager (``audit:event:read``) read all of
  it; everyone else reads their own history (the service decides, the page says so).
* ANON-12: reading the log is itself logged (by the service; the activity page records its own read).
  Search values (user names, record IDs) travel in POST bodies only, never in a URL or the history.
* SEC-107(3), MLIT-9.5.4: every entry comes with an RFC 9162 inclusion proof under a signed
  checkpoint, the public key to check it offline, and a "verify now" that recomputes the whole log.
* The activity page aggregates with GROUP BY over the (event, ts) index: bounded work on large logs.
  Charts are SVG rendered here, coloured by CSS classes (CSP: no inline style or script).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from hogo.bootstrap import Hogo
from hogo.crypto import checkpoint as notes
from hogo.domain import merkle
from hogo.domain.dates import to_instant
from hogo.errors import HogoError, NotFound, ValidationFailed
from hogo.services import audit_access
from hogo.services.audit_access import SearchFilter
from hogo.services.auth import Principal
from hogo.store.models import AuditEvent
from hogo.web import (
    i18n_audit,  # noqa: F401  (adds the audit pages' texts to MESSAGES)
    i18n_backups,  # noqa: F401  (names the backup events)
)
from hogo.web.i18n import MESSAGES, Translator
from hogo.web.routes import (
    WebDenied,
    _actor_ctx,
    _field,
    _hogo,
    _no_store,
    _t,
    csrf_form,
    ready_principal,
    render,
)

router = APIRouter(include_in_schema=False)

PAGE = 50
OUTCOMES = audit_access.OUTCOMES
# The event filter of the search form: common prefixes and the single data-access events.
EVENT_PREFIXES = ("data:record:", "data:record:read", "data:record:reveal", "data:record:search",
                  "data:record:create", "data:record:update", "data:record:delete", "data:record:import",
                  "data:grant:", "data:file:", "auth:login:", "auth:", "account:", "audit:log:", "crypto:", "system:")
SEARCH_FIELDS = ("user", "file", "record", "event", "outcome", "since", "until")
ACTIVITY_DAYS = (1, 2, 7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
_SEQ_RE = re.compile(r"[0-9]{1,18}")


# ------------------------------------------------------------------------------ presentation


class AuditLabels:
    """Words and times for the log's codes: event names, outcomes, the organisation's zone."""

    def __init__(self, t: Translator, tz_name: str) -> None:
        self.t = t
        self.tz_name = tz_name
        self.tz = ZoneInfo(tz_name)

    def event(self, name: str) -> str:
        key = "event." + name
        return self.t(key) if key in MESSAGES else name

    def prefix(self, value: str) -> str:
        key = "audit.prefix." + value
        if key in MESSAGES:
            return self.t(key)
        return f"{self.event(value)} ({value})"

    def outcome(self, value: str | None) -> str:
        return self.t("outcome." + value) if value in OUTCOMES else self.t("audit.expired")

    def time(self, ts: dt.datetime | None) -> str:
        return "—" if ts is None else ts.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")


def _ui(request: Request) -> AuditLabels:
    return AuditLabels(_t(request), _hogo(request).settings.timezone)


async def auditor_principal(principal: Principal = Depends(ready_principal)) -> Principal:
    """The whole log: ``audit:event:read`` only (SEC-107(2)); default deny."""
    if not audit_access.may_read_all(principal):
        raise WebDenied("audit.denied")
    return principal


def _not_found(request: Request, principal: Principal) -> Response:
    return render(request, "error.html", principal=principal, status=404, message_key="audit.entry_not_found",
                  title_key="error.title")


# ----------------------------------------------------------------------------------- search


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _search_filter(hogo: Hogo, principal: Principal, values: dict[str, str], before: int | None
                   ) -> tuple[SearchFilter | None, dict[str, str]]:
    """The filter from the form's values, or the keys of the fields that are wrong."""
    errors: dict[str, str] = {}
    if values["event"] and values["event"] not in EVENT_PREFIXES:
        errors["event"] = "audit.err.bad_choice"
    if values["outcome"] and values["outcome"] not in OUTCOMES:
        errors["outcome"] = "audit.err.bad_choice"
    days: dict[str, dt.date | None] = {}
    for name in ("since", "until"):
        days[name] = _day(values[name]) if values[name] else None
        if values[name] and days[name] is None:
            errors[name] = "audit.err.bad_date"
    since, until = days["since"], days["until"]
    if since and until and until < since:
        errors["until"] = "audit.err.range"
    if errors:
        return None, errors
    tz = hogo.settings.timezone
    return SearchFilter(
        user=(values["user"] or None) if audit_access.may_read_all(principal) else None,
        file=values["file"] or None, record=values["record"] or None, event=values["event"] or None,
        outcome=values["outcome"] or None, since=to_instant(since, tz), until=to_instant(until, tz, end_of_day=True),
        limit=PAGE + 1, before=before,
    ), {}


def _search_page(request: Request, principal: Principal, values: dict[str, str], before: int | None) -> Response:
    hogo = _hogo(request)
    t = _t(request)
    f, error_keys = _search_filter(hogo, principal, values, before)
    errors = {k: t(v) for k, v in error_keys.items()}
    rows: list[AuditEvent] | None = None
    status = 422 if errors else 200
    if f is not None:
        try:
            rows = audit_access.search(hogo, principal, f, ctx=_actor_ctx(request, principal))
        except ValidationFailed as exc:
            field = exc.details.get("field")
            key = field if isinstance(field, str) and field in values else "form"
            errors[key] = t("audit.err.record_needs_file") if key == "record" else t.error(exc)
            status = exc.status
        except NotFound as exc:
            errors["user" if exc.code == "user_not_found" else "form"] = (
                t("audit.err.user_not_found") if exc.code == "user_not_found" else t.error(exc))
            status = exc.status
    more = rows is not None and len(rows) > PAGE
    shown = rows[:PAGE] if rows is not None else None
    return render(
        request, "audit/search.html", principal=principal, status=status, values=values, errors=errors,
        rows=shown, more=more, next_before=shown[-1].seq if more and shown else None, paged=before is not None,
        may_all=audit_access.may_read_all(principal), prefixes=EVENT_PREFIXES, outcomes=OUTCOMES, ui=_ui(request),
    )


@router.get("/audit")
def audit_page(request: Request, principal: Principal = Depends(ready_principal)) -> Response:
    """The newest entries (auditors: all; everyone else: their own history). SEC-107(2), MN-3b."""
    return _search_page(request, principal, dict.fromkeys(SEARCH_FIELDS, ""), None)


@router.post("/audit")
def audit_search(request: Request, principal: Principal = Depends(ready_principal),
                 form: FormData = Depends(csrf_form)) -> Response:
    """A search, or the next page of one (``before``). A POST: user names and record IDs stay out of
    URLs, access logs and the browser history (SEC-45); the service logs the search (ANON-12)."""
    values = {name: _field(form, name).strip() for name in SEARCH_FIELDS}
    before_text = _field(form, "before").strip()
    before = int(before_text) if _SEQ_RE.fullmatch(before_text) else None
    return _search_page(request, principal, values, before)


# ------------------------------------------------------------------------------- one entry


def _checks(hogo: Hogo, seq: int, logged: dict[str, Any], proof: dict[str, Any] | None) -> dict[str, bool | None]:
    """The server's own check of what it shows (SEC-107(3)); an auditor repeats it offline with the key."""
    out: dict[str, bool | None] = {"leaf": None, "signature": None, "path": None}
    leaf = bytes.fromhex(logged["leaf_hash"])
    if logged["entry"] is not None:
        out["leaf"] = merkle.leaf_hash(logged["entry"].encode("utf-8")) == leaf
    if proof is None:
        return out
    name, public = notes.parse_public_key_text(audit_access.public_key(hogo))
    try:
        cp = notes.verify_note(proof["checkpoint"], name, public, origin=name)
    except notes.CheckpointError:
        out["signature"] = False
        return out
    out["signature"] = cp.size == proof["size"] and cp.root.hex() == proof["root"]
    out["path"] = merkle.verify_inclusion(seq, cp.size, leaf, [bytes.fromhex(h) for h in proof["proof"]], cp.root)
    return out


@router.get("/audit/entries/{seq}")
def entry_page(request: Request, seq: str, principal: Principal = Depends(ready_principal)) -> Response:
    """One entry as logged, its leaf hash and an inclusion proof under the latest signed checkpoint
    (SEC-107(3), MLIT-9.5.4), with how to check it offline. Your own entries, or any with
    ``audit:event:read``; both reads are logged by the service (ANON-12)."""
    if not _SEQ_RE.fullmatch(seq):
        return _not_found(request, principal)
    hogo = _hogo(request)
    t = _t(request)
    index = int(seq)
    ctx = _actor_ctx(request, principal)
    try:
        logged = audit_access.entry(hogo, principal, index, ctx=ctx)
    except NotFound:
        return _not_found(request, principal)
    proof: dict[str, Any] | None = None
    proof_error: str | None = None
    try:
        proof = audit_access.prove(hogo, principal, index, ctx=ctx)
    except HogoError as exc:
        proof_error = t.error(exc)
    summary = logged["logged"]
    return render(
        request, "audit/entry.html", principal=principal, seq=index, logged=logged, summary=summary,
        pretty=json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) if summary else None,
        when=_parse_ts(summary["ts"]) if summary else None, proof=proof, proof_error=proof_error,
        checks=_checks(hogo, index, logged, proof), may_all=audit_access.may_read_all(principal), ui=_ui(request),
    )


def _parse_ts(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@router.get("/audit/public-key")
def public_key(request: Request, principal: Principal = Depends(ready_principal)) -> Response:
    """The log's verifier key as text, to pin and to verify proofs and bundles with offline."""
    text = audit_access.public_key(_hogo(request)) + "\n"
    return _no_store(PlainTextResponse(text, headers={
        "Content-Disposition": 'inline; filename="hogo-log-public-key.txt"'}))


# ------------------------------------------------------------------------------ verification


@router.get("/audit/verify")
def verify_get(principal: Principal = Depends(auditor_principal)) -> Response:
    """Verifying is a POST (it writes its own log entry): a bookmark leads back to the log."""
    return _no_store(RedirectResponse("/audit", status_code=303))


@router.post("/audit/verify")
def verify_submit(request: Request, principal: Principal = Depends(auditor_principal),
                  form: FormData = Depends(csrf_form)) -> Response:
    """Recompute every entry, hash, node and checkpoint now (SEC-107(3), MLIT-9.5.4); the service
    records the run and its result."""
    report = audit_access.verify(_hogo(request), principal, ctx=_actor_ctx(request, principal))
    return render(request, "audit/verify.html", principal=principal, report=report, first=report.first,
                  ui=_ui(request))


# -------------------------------------------------------------------------------- activity


# SVG geometry (viewBox units); colours come from audit.css by class.
CHART_W, CHART_H = 960, 260
PAD_L, PAD_R, PAD_T, PAD_B = 52, 12, 14, 30
STACK = ("success", "failure", "denied")  # bottom to top


def _nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 × 10^k not below ``value`` (at least 1)."""
    if value <= 1:
        return 1
    exp: int = 10 ** math.floor(math.log10(value))
    return next(m * exp for m in (1, 2, 5, 10) if m * exp >= value)


def chart(buckets: list[audit_access.Bucket], ui: AuditLabels) -> dict[str, Any]:
    """Bars, stacked segments, axis ticks and labels, as numbers the template writes into SVG."""
    n = max(len(buckets), 1)
    plot_w, plot_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B
    slot = plot_w / n
    width = max(slot * 0.72, 1.0)
    top = _nice_max(max((b.total for b in buckets), default=0))
    scale = plot_h / top
    base = PAD_T + plot_h
    every = max(1, math.ceil(n / 16))
    bars = []
    for i, b in enumerate(buckets):
        x = PAD_L + i * slot + (slot - width) / 2
        y = float(base)
        segments = []
        for outcome in STACK:
            count = b.counts.get(outcome, 0)
            if count:
                h = count * scale
                y -= h
                segments.append({"cls": outcome, "x": round(x, 2), "y": round(y, 2), "w": round(width, 2),
                                 "h": round(h, 2), "count": count})
        bars.append({"bucket": b, "segments": segments, "label_x": round(PAD_L + (i + 0.5) * slot, 2),
                     "show_label": i % every == 0,
                     "title": ui.t("audit.activity.bar", label=b.title, total=b.total, **b.counts)})
    ticks = sorted({0, top // 2, top}) if top > 1 else [0, 1]
    return {"w": CHART_W, "h": CHART_H, "left": PAD_L, "right": CHART_W - PAD_R, "base": base,
            "label_y": base + 18, "bars": bars,
            "ticks": [{"value": v, "y": round(base - v * scale, 2)} for v in ticks]}


@router.get("/audit/activity")
def activity_page(request: Request, principal: Principal = Depends(auditor_principal),
                  days: str | None = None) -> Response:
    """Timeline and charts for auditors (SEC-107(2), MN-3b, SEC-132). ``days`` is the only
    parameter: a plain GET, it carries no personal data."""
    t = _t(request)
    ui = _ui(request)
    text = (days or "").strip()[:5] or str(DEFAULT_DAYS)
    error: str | None = None
    try:
        n = int(text)
        if not 1 <= n <= MAX_DAYS:
            raise ValueError(text)
    except ValueError:
        n, error = DEFAULT_DAYS, t("audit.activity.bad_days", max=MAX_DAYS)
    act = audit_access.activity(_hogo(request), principal, n, ctx=_actor_ctx(request, principal))
    return render(
        request, "audit/activity.html", principal=principal, status=422 if error else 200, error=error,
        days=n, choices=sorted({*ACTIVITY_DAYS, n}), act=act, totals=act.totals(), chart=chart(act.buckets, ui),
        ui=ui,
    )
