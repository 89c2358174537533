"""``hogo alerts`` (the alert inbox) and the analysis commands of ``hogo audit`` (ANON-13, ANON-12,
SEC-132, SEC-107(2), MN-6c, SEC-84), all through the REST API.

``hogo alerts list|show|ack|close`` read and handle the alerts the log analysis raises. ``hogo audit
analyze`` runs the analysis now (it also runs on the server's schedule), ``hogo audit report`` writes the
periodic report (Markdown, Japanese headings first; or JSON), and ``hogo audit analysis show|set|review``
shows the thresholds, makes a new version of them (with the reason, logged) and records their periodic
review. Warnings of the analysis itself (an overdue review, analysis not running, failed deliveries)
go to stderr wherever alerts are listed.

``alerts_app`` is registered in ``hogo.cli.main``; ``register_audit_commands(audit_app)`` adds
``analyze``, ``report`` and ``analysis`` to ``hogo audit``. Exit codes are those of ``hogo.cli.client``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from hogo.cli.client import path, usage_error
from hogo.cli.command import JsonOpt, api, command, command_group, opt
from hogo.cli.output import DASH, Output, fmt, fmt_time, kv_table, table

alerts_app = command_group("alerts", "Alerts raised by the log analysis: list, show, acknowledge, close (ANON-13).")
analysis_app = command_group(
    "analysis", "The log analysis's thresholds: show, change (versioned, logged) and review them (ANON-13, SEC-84).")

SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "dim"}
SEVERITY_JA = {"high": "高", "medium": "中", "low": "低"}
STATUS_JA = {"open": "未対応", "acknowledged": "対応中", "closed": "完了"}

IdArg = Annotated[int, typer.Argument(metavar="ID", help="The alert's number.")]





def _warn_all(out: Output, warnings: list[dict[str, Any]]) -> None:
    for w in warnings:
        out.warn(f"{w.get('ja')} / {w.get('en')}")


def _severity(value: str) -> Text:
    return Text(f"{SEVERITY_JA.get(value, value)} {value}", style=SEVERITY_STYLE.get(value, ""))


def _status(value: str) -> str:
    return f"{STATUS_JA.get(value, value)} {value}"


def _window(a: dict[str, Any]) -> str:
    return f"{fmt_time(a.get('window_start'))} – {fmt_time(a.get('window_end'))}"


def _alert_rows(a: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("Alert (警告)", f"#{a['id']}"),
        ("Rule (規則)", f"{a['title_ja']} / {a['title_en']} ({a['rule']})"),
        ("Severity (重要度)", _severity(str(a["severity"]))),
        ("Status (状態)", _status(str(a["status"]))),
        ("Subject (対象)", a.get("subject")),
        ("Summary (概要)", f"{a['summary_ja']}\n{a['summary_en']}"),
        ("Window (期間)", _window(a)),
        ("Log entries (記録)", f"{a['event_count']} (#{a['first_seq']}–#{a['last_seq']})"),
        ("Raised (検知)", fmt_time(a.get("opened_at"))),
    ]
    if a.get("acknowledged_at"):
        rows.append(("Acknowledged (対応開始)", f"{fmt_time(a['acknowledged_at'])} by {a.get('acknowledged_by')}"))
        rows.append(("Note (メモ)", a.get("ack_note")))
    if a.get("closed_at"):
        rows.append(("Closed (完了)", f"{fmt_time(a['closed_at'])} by {a.get('closed_by')}"))
        rows.append(("Resolution (対応結果)", a.get("resolution")))
    if a.get("notified_at"):
        rows.append(("Notified (通知)", fmt_time(a["notified_at"])))
    elif a.get("notify_error"):
        rows.append(("Notification failed (通知失敗)", a["notify_error"]))
    return rows


def _show_alert(out: Output, a: dict[str, Any], message: str | None = None) -> None:
    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        c.print(kv_table(_alert_rows(a)))

    out.emit(a, human)


# ------------------------------------------------------------------------------------ alerts


@command(alerts_app, "list")
def alerts_list(
    status: Annotated[str, opt("--status", metavar="STATUS", show_default=True,
                               help="active (open or acknowledged), open, acknowledged, closed or all.")] = "active",
    rule: Annotated[str | None, opt("--rule", metavar="RULE", help="Only this rule, e.g. bulk.")] = None,
    limit: Annotated[int, opt("--limit", metavar="N", help="At most this many (1–1000).", show_default=True)] = 200,
    before: Annotated[int | None, opt("--before", metavar="ID", help="Only alerts with a smaller ID (paging).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The alerts, newest first (by default those still open or being handled)."""
    out = Output(json_out)
    with api() as client:
        data = client.get("/alerts", params={"status": status, "rule": rule, "limit": limit, "before": before},
                          options={"status": "--status", "rule": "--rule", "limit": "--limit", "before": "--before"})
    _warn_all(out, data.get("warnings") or [])
    rows = data.get("alerts") or []

    def human(c: Console) -> None:
        if not rows:
            out.say("No alerts (警告はありません).")
            return
        c.print(table(
            ["ID", "Severity", "Rule", "Subject", "Raised", "Window", "Entries", "Status"],
            [[a["id"], _severity(str(a["severity"])), a["title_ja"], a.get("subject"), fmt_time(a.get("opened_at")),
              _window(a), a.get("event_count"), _status(str(a["status"]))] for a in rows],
        ))

    out.emit(data, human)


@command(alerts_app, "show")
def alerts_show(alert_id: IdArg, json_out: JsonOpt = False) -> None:
    """One alert and the log entries behind it (looking at them is logged, ANON-12)."""
    out = Output(json_out)
    with api() as client:
        data = client.get(path("/alerts/{}", str(alert_id)))
    a, events = data["alert"], data.get("events") or []

    def human(c: Console) -> None:
        c.print(kv_table(_alert_rows(a)))
        c.print(table(
            ["Seq", "Time", "Event", "Outcome", "Actor", "File", "Records", "From"],
            [[e["seq"], fmt_time(e["ts"]), e["event"], e.get("outcome"), e.get("actor_name"), e.get("file_code"),
              e.get("record_count"), e.get("client_addr")] for e in events],
            title="Log entries behind the alert (根拠となる記録)",
        ))
        if data.get("linked", 0) < a.get("event_count", 0):
            out.say(f"Showing {len(events)} of {a['event_count']} entries: hogo audit events --user "
                    f"{a.get('subject')} --since/--until finds the rest.")

    out.emit(data, human)


@command(alerts_app, "ack")
def alerts_ack(
    alert_id: IdArg,
    note: Annotated[str | None, opt("--note", metavar="TEXT", help="What you are doing about it (kept).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Acknowledge an open alert: you are handling it. Not an alert about yourself (SEC-19)."""
    out = Output(json_out)
    with api() as client:
        a = client.post(path("/alerts/{}/ack", str(alert_id)), body={"note": note}, options={"note": "--note"})
    _show_alert(out, a, f"Acknowledged alert #{a['id']} (対応中).")


@command(alerts_app, "close")
def alerts_close(
    alert_id: IdArg,
    resolution: Annotated[str, opt("--resolution", metavar="TEXT",
                                   help="What was found and done (required, kept and logged).")],
    json_out: JsonOpt = False,
) -> None:
    """Close an alert with its resolution. Not an alert about yourself (SEC-19)."""
    out = Output(json_out)
    with api() as client:
        a = client.post(path("/alerts/{}/close", str(alert_id)), body={"resolution": resolution},
                        options={"resolution": "--resolution"})
    _show_alert(out, a, f"Closed alert #{a['id']} (完了).")


# ----------------------------------------------------------------------------- hogo audit …


def audit_analyze(
    from_seq: Annotated[int | None, opt("--from-seq", metavar="SEQ",
                                        help="Analyse again from this log index (nothing is raised twice).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Analyse the log now (ANON-12, SEC-132); the server also does so on its schedule."""
    out = Output(json_out)
    with api() as client:
        r = client.post("/analysis/run", body={"from_seq": from_seq} if from_seq is not None else None,
                        options={"from_seq": "--from-seq"})

    def human(c: Console) -> None:
        if r["status"] == "busy":
            out.warn("another analysis is running right now; try again in a moment")
            return
        raised, updated = r.get("raised") or [], r.get("updated") or []
        span = f"#{r['from_seq']}–#{r['to_seq']}" if r["to_seq"] >= r["from_seq"] else "none new"
        out.say(f"Analysed {r['events']} log entries ({span}) with thresholds version {r['config_version']}: "
                f"{len(raised)} new alert(s){' ' + ', '.join(f'#{i}' for i in raised) if raised else ''}, "
                f"{len(updated)} updated.", style="green" if not raised else "bold yellow")
        for d in r.get("deliveries") or []:
            if d.get("error"):
                out.warn(f"alert #{d['alert_id']} not delivered to {d['sink']}: {d['error']}")
        if r.get("more"):
            out.say("More entries wait: run it again (or let the schedule catch up).")
        if raised:
            out.say("See them with: hogo alerts list")

    out.emit(r, human)


_MONTH = re.compile(r"^\d{4}-\d{1,2}$")


def audit_report(
    period: Annotated[str | None, opt("--period", metavar="YYYY-MM", help="A month, e.g. 2026-10.")] = None,
    since: Annotated[str | None, opt("--since", metavar="DATE", help="Or from this date (or date-time)…")] = None,
    until: Annotated[str | None, opt("--until", metavar="DATE", help="…through this date.")] = None,
    out_file: Annotated[Path | None, opt("--out", metavar="FILE",
                                         help="Write the report to FILE (created 0600) instead of stdout.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The periodic report (MN-6c, SEC-132): accesses per file and per user, denials, alerts and how they
    were closed, and the review of the thresholds. Markdown (Japanese headings first), or JSON with
    --json. Generating it is logged."""
    out = Output(json_out)
    if (period is None) == (since is None and until is None):
        raise usage_error("give --period YYYY-MM, or --since DATE and --until DATE")
    if period is not None and not _MONTH.match(period.strip()):
        raise usage_error("--period takes a month YYYY-MM, e.g. 2026-10")
    if period is None and (since is None or until is None):
        raise usage_error("give both --since and --until")
    with api() as client:
        data = client.get("/analysis/report", params={"period": period, "since": since, "until": until},
                          options={"period": "--period", "since": "--since", "until": "--until"})
    text = (json.dumps(data["report"], ensure_ascii=False, indent=2) + "\n") if json_out else data["markdown"]
    if out_file is not None:
        _write_private(out_file, text)
        if json_out:
            out.emit({"written": str(out_file)})
        else:
            out.say(f"Wrote the report to {out_file}.", style="green")
        return
    if json_out:
        out.emit(data["report"])
    else:
        typer.echo(text, nl=not text.endswith("\n"))


def _write_private(target: Path, text: str) -> None:
    """The report names people and what they accessed: readable by its owner only."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(target, 0o600)
    except OSError as exc:
        raise usage_error(f"cannot write {target}: {exc.strerror or type(exc).__name__}", code="bad_file") from None


# --------------------------------------------------------------------------- hogo audit analysis


def _config_rows(cfg: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for section, values in cfg["settings"].items():
        for name, value in values.items():
            default = cfg["defaults"].get(section, {}).get(name)
            rows.append([f"{section}.{name}", fmt(value), "" if value == default else f"default {fmt(default)}"])
    return rows


def _show_config(out: Output, cfg: dict[str, Any], message: str | None = None) -> None:
    _warn_all(out, cfg.get("warnings") or [])

    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        due = fmt_time(cfg.get("review_due_at")) if cfg.get("review_due_at") else "now (never reviewed)"
        c.print(kv_table([
            ("Version (版)", cfg["version"] or "0 (built-in defaults)"),
            ("Made (作成)", f"{fmt_time(cfg.get('created_at'))} by {cfg.get('created_by') or DASH}"
             if cfg.get("created_at") else DASH),
            ("Reason (理由)", cfg.get("note")),
            ("Reviewed (見直し)", f"{fmt_time(cfg['reviewed_at'])} by {cfg.get('reviewed_by')}"
             if cfg.get("reviewed_at") else "not yet"),
            ("Review due (次回期限)", Text(due + (" — OVERDUE 期限切れ" if cfg.get("review_overdue") else ""),
                                           style="bold red" if cfg.get("review_overdue") else "")),
        ]))
        c.print(table(["Setting", "Value", ""], _config_rows(cfg), title="Thresholds (しきい値)"))

    out.emit(cfg, human)


@command(analysis_app, "show")
def analysis_show(json_out: JsonOpt = False) -> None:
    """The thresholds in force and when their review is due (ANON-13)."""
    out = Output(json_out)
    with api() as client:
        cfg = client.get("/analysis/config")
    _show_config(out, cfg)


@command(analysis_app, "set")
def analysis_set(
    settings: Annotated[list[str], typer.Argument(metavar="SETTING=VALUE...",
                                                  help="e.g. bulk.max_records=2000 working_hours.end=21:00")],
    note: Annotated[str, opt("--note", metavar="TEXT", help="Why (required; kept with the version and logged).")],
    json_out: JsonOpt = False,
) -> None:
    """A new version of the thresholds (SEC-84): the general protection manager and SIRT only."""
    out = Output(json_out)
    changes: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise usage_error(f"{item!r}: write SETTING=VALUE, e.g. bulk.max_records=2000")
        if key.strip() in changes:
            raise usage_error(f"{key.strip()} is given twice")
        changes[key.strip()] = value.strip()
    with api() as client:
        cfg = client.put("/analysis/config", body={"changes": changes, "note": note},
                         options={"changes": "SETTING=VALUE", "note": "--note"})
    _show_config(out, cfg, f"Thresholds version {cfg['version']} is in force.")


@command(analysis_app, "review")
def analysis_review(
    note: Annotated[str | None, opt("--note", metavar="TEXT", help="What you checked (kept and logged).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Record the periodic review of the thresholds in force (ANON-13); not by whoever made them (SEC-19)."""
    out = Output(json_out)
    with api() as client:
        cfg = client.post("/analysis/config/review", body={"note": note}, options={"note": "--note"})
    _show_config(out, cfg, f"Reviewed thresholds version {cfg['version']}; next review due "
                           f"{fmt_time(cfg.get('review_due_at'))}.")


def register_audit_commands(audit_app: typer.Typer) -> None:
    """Add ``analyze``, ``report`` and the ``analysis`` group to ``hogo audit``."""
    command(audit_app, "analyze")(audit_analyze)
    command(audit_app, "report")(audit_report)
    audit_app.add_typer(analysis_app)
