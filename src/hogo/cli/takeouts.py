"""``hogo takeout``: take-outs and provisions (持出し・提供) and the take-out register (持出管理簿), through the
REST API.

``hogo takeout request FILE --fields F1,F2 --purpose P --recipient WHO --destination WHERE --due DATE
(--recipient-key KEY | --recipient-key-file F | --passphrase) [--transport download|media|transmission
--media-id ID] [--where FIELD=VALUE … | --records ID,…] [--outside-scope] [--emergency]`` prints the request's
``id``; the approvers decide it with ``hogo approval approve ID`` (the request number is shown). Then
``hogo takeout download ID --out PATH`` (the requester; a passphrase recipient's passphrase from
``--passphrase-file`` or a hidden prompt, never the command line), and ``hogo takeout return|dispose ID``: the
taker declares, the file's manager confirms. ``hogo takeout list`` / ``show ID`` read the register.

``takeout_app`` is registered in ``hogo.cli.main``. Exit codes are those of ``hogo.cli.client``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hogo.cli.client import path, usage_error
from hogo.cli.command import JsonOpt, api, command, command_group, opt
from hogo.cli.data import _pairs
from hogo.cli.output import DASH, Output, fmt_time, kv_table, table

takeout_app = command_group("takeout", "Take-outs and provisions (持出し・提供) and the take-out register "
                                       "(持出管理簿), SEC-47..49.")

IdArg = Annotated[int, typer.Argument(metavar="ID", help="The take-out's number (hogo takeout list).")]
NoteOpt = Annotated[str | None, opt("--note", metavar="TEXT", help="What was done (kept with the register).")]
OPTIONS = {"file": "FILE", "fields": "--fields", "purpose": "--purpose", "recipient": "--recipient",
           "recipient_key": "--recipient-key", "destination": "--destination", "transport": "--transport",
           "media_id": "--media-id", "due": "--due", "selection": "--where/--records", "note": "--note"}


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _steps(t: dict[str, Any]) -> str:
    lines = []
    for s in t.get("steps") or []:
        level = s["role"] + (f"@{s['department']}" if s.get("department") else "")
        d = s.get("decision")
        lines.append(f"{s['index'] + 1}. {level}: " + (f"{d['decision']} by {d['approver']} {fmt_time(d['decided_at'])}"
                                                       if d else "waiting (未決)"))
    return "\n".join(lines) or DASH


def _rows(t: dict[str, Any]) -> list[tuple[str, Any]]:
    sel = t.get("selection")
    rows: list[tuple[str, Any]] = [
        ("Take-out (持出し)", f"#{t['id']}" + ("  緊急 EMERGENCY" if t.get("emergency") else "")),
        ("Status (状態)", f"{t['status_ja']} {t['status']}"),
        ("File (ファイル)", f"{t['file']}  {t['marks_label']}"),
        ("Fields (項目)", ", ".join(t.get("fields") or ())),
        ("Records (対象)", DASH if not sel else ", ".join(f"{k}={v}" for k, v in (sel.get("where") or {}).items())
         or f"{len(sel.get('records') or [])} record IDs"),
        ("Purpose (利用目的)", t["purpose"]),
        ("Recipient (宛先)", f"{t['recipient']} ({'passphrase' if t['recipient_mode'] == 'passphrase' else 'key'})"
         + ("  提供 outside the viewing scope" if t.get("outside_scope") else "")),
        ("Destination (持出先)", t["destination"]),
        ("Transport (方法)", f"{t['transport_ja']} {t['transport']}" + (f" medium {t['media_id']}"
                                                                       if t.get("media_id") else "")),
        ("Due back (返却・廃棄期限)", t.get("due_date") or fmt_time(t.get("due_at"))),
        ("Approval (承認)", f"request #{t['request_id']} {t['approval_status']}\n{_steps(t)}"),
        ("Requested (申請)", f"{t['requester']} {fmt_time(t.get('created_at'))}"),
    ]
    if t.get("emergency"):
        rows.append(("Report due (事後報告期限)", f"{fmt_time(t.get('report_due_at'))} ({t.get('report_status')})"))
    if t.get("taken_out_at"):
        rows.append(("Taken out (持出し)", f"{fmt_time(t['taken_out_at'])}, {t['downloads']} download(s), "
                                          f"{t.get('record_count') if t.get('record_count') is not None else '?'} "
                                          f"records, package {t.get('package_id') or DASH}"))
    if t.get("overdue_at"):
        rows.append(("Overdue (期限超過)", f"since {fmt_time(t['overdue_at'])}, {t['reminders']} reminder(s)"))
    if t.get("declared"):
        rows.append(("Declared (申告)", f"{t['declared']} {fmt_time(t.get('declared_at'))}"
                                        + (f": {t['declared_note']}" if t.get("declared_note") else "")))
    if t.get("confirmed_by"):
        rows.append(("Confirmed (確認)", f"{t['status']} by {t['confirmed_by']} {fmt_time(t.get('closed_at'))}"
                                         + (f": {t['confirm_note']}" if t.get("confirm_note") else "")))
    if t.get("can_download"):
        rows.append(("You may download (持出し可)", f"hogo takeout download {t['id']} --out PATH"))
    if t.get("can_confirm"):
        rows.append(("You may confirm (確認可)", f"hogo takeout return {t['id']} / hogo takeout dispose {t['id']}"))
    return rows


def _show(out: Output, t: dict[str, Any], message: str | None = None) -> None:
    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        c.print(kv_table(_rows(t)))

    out.emit(t, human)


@command(takeout_app, "request")
def takeout_request(
    file: Annotated[str, typer.Argument(metavar="FILE", help="The file's code.")],
    fields: Annotated[list[str], opt("--fields", metavar="F1,F2", help="The fields to take out (repeatable).")],
    purpose: Annotated[str, opt("--purpose", metavar="PURPOSE", help="The purpose (one of the file's).")],
    recipient: Annotated[str, opt("--recipient", metavar="WHO", help="Who receives it (person, organisation).")],
    destination: Annotated[str, opt("--destination", metavar="WHERE", help="Where it goes (持出先).")],
    due: Annotated[str, opt("--due", metavar="DATE",
                            help="Returned or disposed of by this date (YYYY-MM-DD: the end of that day).")],
    recipient_key: Annotated[str | None, opt("--recipient-key", metavar="KEY",
                                             help="The recipient's public key (hogo package keygen prints it).")]
    = None,
    recipient_key_file: Annotated[Path | None, opt("--recipient-key-file", metavar="F",
                                                   help="Read the recipient's public key from a file.")] = None,
    passphrase: Annotated[bool, opt("--passphrase", help="Protect the package with a passphrase instead, given "
                                                         "at download and to the recipient by another channel.")]
    = False,
    transport: Annotated[str, opt("--transport", metavar="HOW", show_default=True,
                                  help="download, media or transmission.")] = "download",
    media_id: Annotated[str | None, opt("--media-id", metavar="ID", help="The medium's ID (transport media).")]
    = None,
    where: Annotated[list[str] | None, opt("--where", metavar="FIELD=VALUE",
                                           help="Only records whose FIELD is VALUE (repeatable).")] = None,
    records: Annotated[list[str] | None, opt("--records", metavar="ID,ID", help="Only these records.")] = None,
    outside_scope: Annotated[bool, opt("--outside-scope", help="A provision (提供) outside the viewing scope.")]
    = False,
    emergency: Annotated[bool, opt("--emergency", help="Without prior approval, where the instance allows it; "
                                                       "reported and approved afterwards (SEC-27).")] = False,
    note: NoteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Request a take-out (持出し) or provision (提供): checked against the file's marks and your export
    grant, then approved by the file's protection manager (and for confidentiality 3 the information-
    security officer). Prints the take-out's id."""
    out = Output(json_out)
    if recipient_key_file is not None:
        if recipient_key:
            raise usage_error("give --recipient-key or --recipient-key-file, not both")
        try:
            recipient_key = recipient_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise usage_error(f"cannot read {recipient_key_file}: {exc.strerror or type(exc).__name__}",
                              code="bad_file") from None
    if not passphrase and not recipient_key:
        raise usage_error("name the recipient: --recipient-key (or --recipient-key-file), or --passphrase")
    if where and records:
        raise usage_error("select records by --where or by --records, not both")
    selection: dict[str, Any] | None = None
    if where:
        selection = {"where": _pairs(where, "--where", allow_empty_value=False)}
    elif records:
        selection = {"records": _split(records)}
    body: dict[str, Any] = {
        "file": file, "fields": _split(fields), "purpose": purpose, "recipient": recipient,
        "recipient_key": recipient_key, "passphrase": passphrase, "destination": destination,
        "transport": transport, "media_id": media_id, "due": due, "selection": selection,
        "outside_scope": outside_scope, "emergency": emergency, "note": note}
    with api() as client:
        t = client.post("/takeouts", body=body, options=OPTIONS)
    waiting = ", ".join(s["role"] + (f"@{s['department']}" if s.get("department") else "")
                        for s in t.get("steps") or [])
    message = (f"Emergency take-out #{t['id']} recorded: download it now; request #{t['request_id']} must be "
               f"approved afterwards by {fmt_time(t.get('report_due_at'))} (事後報告)." if t.get("emergency") else
               f"Requested take-out #{t['id']} (approval request #{t['request_id']}): waiting for {waiting} "
               "(承認待ち).")
    _show(out, t, message)


@command(takeout_app, "list")
def takeout_list(
    status: Annotated[str, opt("--status", metavar="STATUS", show_default=True,
                               help="open (requested, approved, taken out, overdue), all, or one status.")] = "open",
    mine: Annotated[bool, opt("--mine", help="Only your own take-outs.")] = False,
    file: Annotated[str | None, opt("--file", metavar="FILE", help="Only take-outs of this file.")] = None,
    limit: Annotated[int, opt("--limit", metavar="N", help="At most this many (1–1000).", show_default=True)] = 200,
    json_out: JsonOpt = False,
) -> None:
    """The take-out register (持出管理簿), newest first."""
    out = Output(json_out)
    with api() as client:
        data = client.get("/takeouts", params={"status": status, "mine": mine or None, "file": file, "limit": limit},
                          options={"status": "--status", "file": "--file", "limit": "--limit"})
    rows = data.get("takeouts") or []

    def human(c: Console) -> None:
        if not rows:
            out.say("No take-outs (持出しはありません).")
            return
        c.print(table(
            ["ID", "Status", "File", "Requester", "Recipient", "Transport", "Due", "Flags"],
            [[t["id"], f"{t['status_ja']} {t['status']}", t["file"], t["requester"], t["recipient"],
              t["transport"] + (f" {t['media_id']}" if t.get("media_id") else ""), t.get("due_date") or DASH,
              " ".join(f for f, on in (("emergency", t.get("emergency")), ("provision", t.get("outside_scope")),
                                       ("download", t.get("can_download")), ("confirm", t.get("can_confirm")))
                       if on)] for t in rows]))
        overdue = [t for t in rows if t["status"] == "overdue" and t.get("can_declare")]
        for t in overdue:
            out.say(f"Reminder (督促): take-out #{t['id']} was due back by {t.get('due_date')}: return or "
                    f"dispose of it and run hogo takeout return|dispose {t['id']}.", style="red")

    out.emit(data, human)


@command(takeout_app, "show")
def takeout_show(takeout_id: IdArg, json_out: JsonOpt = False) -> None:
    """One entry of the register: what goes where, its approval, and what became of it."""
    out = Output(json_out)
    with api() as client:
        t = client.get(path("/takeouts/{}", str(takeout_id)))
    _show(out, t)


@command(takeout_app, "download")
def takeout_download(
    takeout_id: IdArg,
    out_path: Annotated[Path, opt("--out", metavar="PATH", help="Where to write the package (not overwritten).")],
    passphrase_file: Annotated[str | None, opt("--passphrase-file", metavar="F",
                                               help="The package passphrase (passphrase recipients), from a file "
                                                    "or - for stdin; else a hidden prompt.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Download an approved take-out as its package (the requester only; logged, and counted toward the
    bulk-export alerts). Destroy-after-reading information downloads once."""
    from hogo.cli.main import read_secret

    out = Output(json_out)
    if out_path.exists():
        raise usage_error(f"{out_path} exists: choose another --out (a package is never overwritten)",
                          code="exists")
    with api() as client:
        t = client.get(path("/takeouts/{}", str(takeout_id)))
        secret = None
        if t.get("recipient_mode") == "passphrase":
            secret = read_secret(passphrase_file, "package passphrase", confirm=passphrase_file is None)
        data = client.post(path("/takeouts/{}/download", str(takeout_id)), body={"passphrase": secret},
                           raw=True, timeout=600.0)
        partial = out_path.with_name(out_path.name + ".part")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(partial, out_path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise usage_error(f"cannot write {out_path}: {exc.strerror or type(exc).__name__}",
                              code="bad_file") from None
        t = client.get(path("/takeouts/{}", str(takeout_id)))
    result = {**t, "out": str(out_path), "bytes": len(data)}

    def human(c: Console) -> None:
        out.say(f"Wrote take-out #{t['id']} to {out_path} ({len(data):,} bytes, "
                f"{t.get('record_count') if t.get('record_count') is not None else '?'} records). Return or "
                f"dispose of it by {t.get('due_date')}.", style="green")

    out.emit(result, human)


def _close(kind: str, takeout_id: int, note: str | None, json_out: bool) -> None:
    out = Output(json_out)
    with api() as client:
        t = client.post(path("/takeouts/{}/" + ("return" if kind == "returned" else "dispose"), str(takeout_id)),
                        body={"note": note}, options={"note": "--note"})
    if t["status"] == kind:
        message = f"Confirmed: take-out #{t['id']} {kind} (確認済)."
    else:
        message = f"Declared take-out #{t['id']} {kind}; the file's manager confirms it (確認待ち)."
    _show(out, t, message)


@command(takeout_app, "return")
def takeout_return(takeout_id: IdArg, note: NoteOpt = None, json_out: JsonOpt = False) -> None:
    """The copy came back (返却): the taker declares it, the file's manager (not the taker) confirms it."""
    _close("returned", takeout_id, note, json_out)


@command(takeout_app, "dispose")
def takeout_dispose(takeout_id: IdArg, note: NoteOpt = None, json_out: JsonOpt = False) -> None:
    """The copy was disposed of (廃棄): the taker declares it, the file's manager (not the taker) confirms it."""
    _close("disposed", takeout_id, note, json_out)


__all__ = ["takeout_app"]
