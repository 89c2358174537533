"""``hogo audit``: the tamper-evident log (SEC-107(2)(3), MN-3b, ANON-12, ANON-13).

Searching, proving and exporting go through the server (auditors and SIRT; clerks see their own
history). ``verify`` also works offline: on a stopped instance's data directory or on an exported
bundle, with nothing but the log's public key.

Registered in ``hogo.cli.main`` (``app.add_typer``); the exit codes are those of ``hogo.cli.client``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hogo.cli.command import command_group
from hogo.cli.data import JsonOpt, api, command
from hogo.cli.output import Output, fmt_time, table

audit_app = command_group("audit", "The tamper-evident log: search, prove, verify, export (SEC-107, MN-3b).")


def opt(*names: str, metavar: str | None = None, help: str | None = None, show_default: bool = False) -> Any:
    return typer.Option(*names, metavar=metavar, help=help, show_default=show_default)


@command(audit_app, "events")
def audit_events(
    user: Annotated[str | None, opt("--user", metavar="NAME", help="Events by or about this user.")] = None,
    event: Annotated[str | None, opt("--event", metavar="PREFIX",
                                     help="Event name or prefix, e.g. auth:login.")] = None,
    outcome: Annotated[str | None, opt("--outcome", metavar="OUTCOME", help="success, failure or denied.")] = None,
    since: Annotated[str | None, opt("--since", metavar="DATE", help="From this date or date-time.")] = None,
    until: Annotated[str | None, opt("--until", metavar="DATE", help="Before this date or date-time.")] = None,
    limit: Annotated[int, opt("--limit", metavar="N", help="At most this many (1–1000).", show_default=True)] = 100,
    before: Annotated[int | None, opt("--before", metavar="ID",
                                      help="Only events with a smaller ID (paging).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Search the audit record, newest first."""
    out = Output(json_out)
    params = {"user": user, "event": event, "outcome": outcome, "since": since, "until": until, "limit": limit,
              "before": before}
    with api() as client:
        rows = client.get("/audit/events", params=params, options={
            "user": "--user", "event": "--event", "outcome": "--outcome", "since": "--since", "until": "--until",
            "limit": "--limit", "before": "--before"})
    out.emit(rows, lambda c: c.print(table(
        ["Seq", "Time", "Event", "Outcome", "Actor", "Target", "Reason", "From"],
        [[e["seq"], fmt_time(e["ts"]), e["event"], e["outcome"], e.get("actor_name"), e.get("target"),
          e.get("reason"), e.get("client_addr")] for e in rows],
    )))


