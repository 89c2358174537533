"""``hogo approval`` (the approval inbox, SEC-19) and ``hogo record correct`` (corrections, ANON-8), through
the REST API.

``hogo record correct FILE ID --set FIELD=VALUE … --reason … --purpose P`` requests a correction: the
values are POSTed (``FIELD=-`` reads one from standard input), never printed back; it prints the request's
``id``. The file's protection manager then runs ``hogo approval list`` / ``show ID`` / ``approve ID`` or
``reject ID --reason …``; the last approval applies the correction (exit 6 ``revision_conflict`` if the
record changed meanwhile: request it again). Deciding your own request is refused (exit 4, SEC-19).

``approval_app`` is registered in ``hogo.cli.main``; importing this module also adds ``correct`` to
``hogo record`` (``hogo.cli.data.record_app``). Exit codes are those of ``hogo.cli.client``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from hogo.cli.client import path
from hogo.cli.command import JsonOpt, api, command, command_group, opt
from hogo.cli.data import PURPOSE_OPTIONS, FileArg, PurposeOpt, RecordArg, SetOpt, _pairs, purpose_header, record_app
from hogo.cli.output import DASH, Output, fmt_time, kv_table, table

approval_app = command_group("approval", "Approval requests (承認): list, show, approve, reject (SEC-19).")

STATUS_JA = {"pending": "承認待ち", "approved": "承認済", "rejected": "却下", "applied": "反映済", "failed": "失敗",
             "cancelled": "取消"}
DECISION_JA = {"approve": "承認", "reject": "却下"}

IdArg = Annotated[int, typer.Argument(metavar="ID", help="The request's number.")]


def _status(value: str) -> str:
    return f"{STATUS_JA.get(value, value)} {value}"


def _level(role: str, department: str | None) -> str:
    return f"{role}@{department}" if department else role


def _subject(r: dict[str, Any]) -> str:
    if r.get("file"):
        return f"{r['file']} / {r.get('record_id') or DASH}"
    return DASH


def _steps(r: dict[str, Any]) -> str:
    lines = []
    for s in r.get("steps") or []:
        line = f"{s['index'] + 1}. {_level(s['role'], s.get('department'))}"
        if (s["role"], s.get("department")) != (s["required_role"], s.get("required_department")):
            line += f" (required {_level(s['required_role'], s.get('required_department'))})"
        for e in s.get("escalations") or []:
            line += (f"\n   escalated (上位者へ回付) {_level(**e['from'])} → {_level(**e['to'])}: {e['cause']}"
                     f" ({e.get('by')}, {fmt_time(e.get('at'))})")
        d = s.get("decision")
        if d:
            line += (f"\n   {DECISION_JA.get(d['decision'], d['decision'])} {d['decision']} by {d['approver']}"
                     f" {fmt_time(d.get('decided_at'))}" + (f": {d['reason']}" if d.get("reason") else ""))
        else:
            line += "\n   waiting (未決)"
        lines.append(line)
    return "\n".join(lines)


def _rows(r: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("Request (申請)", f"#{r['id']}"),
        ("Kind (種別)", f"{r['kind_ja']} {r['kind']}"),
        ("Status (状態)", _status(str(r["status"]))),
        ("Requester (申請者)", r["requester"]),
        ("Subject (対象)", _subject(r)),
        ("Fields (項目)", ", ".join(r.get("fields") or ()) or DASH),
        ("Purpose (利用目的)", r.get("purpose") or DASH),
        ("Based on revision (基準版)", r.get("base_revision") if r.get("base_revision") is not None else DASH),
        ("Reason (理由)", r["reason"]),
        ("Steps (承認経路)", _steps(r)),
        ("Requested (申請日時)", fmt_time(r.get("created_at"))),
    ]
    if r.get("subject_user"):
        rows.insert(5, ("About user (本人)", r["subject_user"]))
    d = r.get("details") or {}
    if r.get("kind") == "takeout" and d:  # a take-out: what leaves, to whom, how, until when
        rows[4:4] = [
            ("Take-out (持出し)", f"#{d.get('takeout')} ({d.get('takeout_status')})"
             + ("  緊急・事後報告 emergency, reported afterwards" if d.get("emergency") else "")),
            ("Marks (格付・取扱制限)", d.get("marks") or DASH),
            ("Recipient (宛先)", f"{d.get('recipient')} ({d.get('recipient_mode')})"
             + ("  提供 outside the viewing scope" if d.get("outside_scope") else "")),
            ("Destination (持出先)", d.get("destination") or DASH),
            ("Transport (方法)", f"{d.get('transport')}" + (f" medium {d['media_id']}" if d.get("media_id") else "")),
            ("Due back (返却・廃棄期限)", d.get("due_date") or fmt_time(d.get("due_at"))),
        ]
    outcome = r.get("outcome") or {}
    if "revision_after" in outcome:
        rows.append(("Applied (反映)", f"{fmt_time(r.get('applied_at'))}: revision {outcome['revision_before']} → "
                                       f"{outcome['revision_after']}"))
    elif outcome.get("error"):
        rows.append(("Failed (失敗)", f"{outcome['error']}: {outcome.get('message', '')}"))
    if r.get("can_decide"):
        rows.append(("You may decide (決裁可)", f"hogo approval approve {r['id']} / hogo approval reject {r['id']} "
                                             "--reason …"))
    return rows


def _show(out: Output, r: dict[str, Any], message: str | None = None) -> None:
    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        c.print(kv_table(_rows(r)))

    out.emit(r, human)


@command(approval_app, "list")
def approval_list(
    status: Annotated[str, opt("--status", metavar="STATUS", show_default=True,
                               help="open (pending or approved), all, pending, approved, rejected, applied, failed "
                                    "or cancelled.")] = "open",
    kind: Annotated[str | None, opt("--kind", metavar="KIND", help="Only this kind, e.g. correction.")] = None,
    mine: Annotated[bool, opt("--mine", help="Only requests you made.")] = False,
    limit: Annotated[int, opt("--limit", metavar="N", help="At most this many (1–1000).", show_default=True)] = 200,
    json_out: JsonOpt = False,
) -> None:
    """Requests you may see, newest first: your own, those you may decide or have decided."""
    out = Output(json_out)
    with api() as client:
        data = client.get("/approvals", params={"status": status, "kind": kind, "mine": mine or None, "limit": limit},
                          options={"status": "--status", "kind": "--kind", "limit": "--limit"})
    rows = data.get("requests") or []

    def human(c: Console) -> None:
        if not rows:
            out.say("No requests (申請はありません).")
            return
        c.print(table(
            ["ID", "Kind", "Status", "Requester", "Subject", "Fields", "Waiting for", "Requested", "Yours"],
            [[r["id"], r["kind_ja"], _status(str(r["status"])), r["requester"], _subject(r),
              ", ".join(r.get("fields") or ()),
              ", ".join(_level(s["role"], s.get("department")) for s in r.get("steps") or [] if not s.get("decision"))
              or DASH, fmt_time(r.get("created_at")), "decide" if r.get("can_decide") else ""] for r in rows],
        ))

    out.emit(data, human)


@command(approval_app, "show")
def approval_show(request_id: IdArg, json_out: JsonOpt = False) -> None:
    """One request: what it asks, its approval steps, escalations and decisions."""
    out = Output(json_out)
    with api() as client:
        r = client.get(path("/approvals/{}", str(request_id)))
    _show(out, r)


@command(approval_app, "changes")
def approval_changes(request_id: IdArg, json_out: JsonOpt = False) -> None:
    """What a correction changes: each field before and after (for its requester and approvers; the read
    is recorded, My Numbers stay masked)."""
    out = Output(json_out)
    with api() as client:
        c = client.get(path("/approvals/{}/changes", str(request_id)))

    def human(con: Console) -> None:
        after = c.get("after")
        con.print(table(
            ["Field (項目)", f"Before (訂正前, rev {c.get('revision_before') or DASH})",
             f"After (訂正後{', rev ' + str(c['revision_after']) if c.get('revision_after') else ''})"],
            [[n, c["before"].get(n, DASH), DASH if after is None else (after.get(n) or "(cleared)")]
             for n in c.get("fields") or []],
            title=f"Correction #{c['request_id']}: {c['file']} / {c['record_id']}",
        ))
        if after is None:
            out.say("The requested values are no longer kept (the request was refused or withdrawn).")

    out.emit(c, human)


def _decide(action: str, request_id: int, reason: str | None, json_out: bool,
            message: Callable[[dict[str, Any]], str]) -> None:
    """POST /approvals/ID/ACTION with the reason, and show the request as it now stands."""
    out = Output(json_out)
    with api() as client:
        r = client.post(path("/approvals/{}/" + action, str(request_id)), body={"reason": reason},
                        options={"reason": "--reason"})
    _show(out, r, message(r))


@command(approval_app, "approve")
def approval_approve(
    request_id: IdArg,
    reason: Annotated[str | None, opt("--reason", metavar="TEXT", help="Why (kept with the decision).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve your step of a request; the last approval applies it. Never your own request (SEC-19)."""
    _decide("approve", request_id, reason, json_out,
            lambda r: f"Approved request #{r['id']}: now {_status(str(r['status']))}.")


@command(approval_app, "reject")
def approval_reject(
    request_id: IdArg,
    reason: Annotated[str, opt("--reason", metavar="TEXT", help="Why (required, kept with the decision).")],
    json_out: JsonOpt = False,
) -> None:
    """Reject a request, saying why."""
    _decide("reject", request_id, reason, json_out, lambda r: f"Rejected request #{r['id']}.")


@command(approval_app, "apply")
def approval_apply(request_id: IdArg, json_out: JsonOpt = False) -> None:
    """Apply an approved request again, after its application was refused for a passing reason (e.g. the
    log could not be anchored); its approvers only."""
    out = Output(json_out)
    with api() as client:
        r = client.post(path("/approvals/{}/apply", str(request_id)))
    _show(out, r, f"Request #{r['id']}: now {_status(str(r['status']))}.")


@command(approval_app, "cancel")
def approval_cancel(
    request_id: IdArg,
    reason: Annotated[str | None, opt("--reason", metavar="TEXT", help="Why (optional).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw a pending request you made."""
    _decide("cancel", request_id, reason, json_out, lambda r: f"Cancelled request #{r['id']}.")


@command(record_app, "correct")
def record_correct(
    file: FileArg,
    record_id: RecordArg,
    purpose: PurposeOpt,
    set_: SetOpt,
    reason: Annotated[str, opt("--reason", metavar="TEXT",
                               help="Why the record is wrong (required; do not quote the values).")],
    subject_user: Annotated[str | None, opt("--subject-user", metavar="USER",
                                            help="The account of the person the record is about, if any "
                                                 "(they may not approve it).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Request a correction (訂正) of a record (ANON-8): FIELD=VALUE sets a field, FIELD= clears one,
    FIELD=- reads the value from standard input. Needs read access to the record and those fields for
    PURPOSE; the file's protection manager approves it (hogo approval approve ID). Prints the request ID."""
    out = Output(json_out)
    values = _pairs(set_, "--set", allow_empty_value=True)
    body: dict[str, Any] = {"values": values, "reason": reason,
                            **({"subject_user": subject_user} if subject_user else {})}
    with api() as client:
        r = client.post(path("/files/{}/records/{}/corrections", file, record_id), body=body,
                        headers=purpose_header(purpose),
                        options={**PURPOSE_OPTIONS, "values": "--set", "reason": "--reason",
                                 "subject_user": "--subject-user"})
    waiting = ", ".join(_level(s["role"], s.get("department")) for s in r.get("steps") or [])
    _show(out, r, f"Requested correction #{r['id']} of {file}/{record_id}: waiting for {waiting} (承認待ち).")


__all__ = ["approval_app", "record_correct"]
