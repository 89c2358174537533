"""``hogo file marks`` / ``hogo file marks-history`` (revising a file's marks, SEC-46(3)) and ``hogo workcopy``
(temporary working copies, ANON-17), through the REST API.

``hogo file marks FILE [--confidentiality N] [--integrity N] [--availability N] [--restrict R …]
[--unrestrict R …] --reason TEXT`` revises the marks: only the person who decided them (the file's creator,
while a protection manager), their successor (a protection manager of the file's department) or their
superior (the general protection manager) may; others get exit 4 and the refusal is logged.

``hogo workcopy create FILE --fields a,b --purpose P [--where F=V …] --expires 2026-11-30T18:00`` makes a
working copy (a time without a zone is the organisation's); ``list``, ``show ID``, ``read ID`` (the holder
only; logged), ``dispose ID``, ``confirm ID`` (the file's protection manager checks erasure) and ``report``
(copies still outstanding, and disposed ones awaiting confirmation).

``workcopy_app`` is registered in ``hogo.cli.main``; importing this module adds ``marks`` and
``marks-history`` to ``hogo file`` (``hogo.cli.data.file_app``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from hogo.cli.client import path, usage_error
from hogo.cli.command import JsonOpt, api, command, command_group, opt
from hogo.cli.data import PURPOSE_OPTIONS, CodeArg, PurposeOpt, _pairs, _show_file, file_app, purpose_header
from hogo.cli.output import DASH, Output, fmt, fmt_time, kv_table, table

workcopy_app = command_group("workcopy", "Temporary working copies (作業用の一時的な複製, ANON-17): scoped, "
                                         "encrypted, holder-only, disposed of at their deadline.")

BASIS_JA = {"decider": "決定者", "successor": "後任者", "superior": "上位者"}
STATUS_JA = {"live": "保持中", "disposed": "廃棄済"}
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The working copy's ID (wc-…).")]


def _marks_text(m: dict[str, Any] | None) -> Text:
    if not m:
        return Text(DASH)
    return Text(f"{m.get('label_ja')}\n{m.get('label_full') or m.get('label')}", style="bold red")


# ------------------------------------------------------------------------------------ marks


@command(file_app, "marks")
def file_marks(
    code: CodeArg,
    reason: Annotated[str, opt("--reason", metavar="TEXT", help="Why the marks change (required, kept).")],
    confidentiality: Annotated[int | None, opt("--confidentiality", "-c", metavar="N", help="1–3.")] = None,
    integrity: Annotated[int | None, opt("--integrity", "-i", metavar="N", help="1–2.")] = None,
    availability: Annotated[int | None, opt("--availability", "-a", metavar="N", help="1–2.")] = None,
    restrict: Annotated[list[str] | None, opt("--restrict", metavar="R",
                                              help="Add a restriction (repeatable): no_copy, no_take_out, "
                                                   "no_distribution, encryption_required, destroy_after_reading."
                                              )] = None,
    unrestrict: Annotated[list[str] | None, opt("--unrestrict", metavar="R", help="Remove a restriction.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Revise a file's marks (格付と取扱制限, SEC-46(3)): a new definition version, kept with who, why and when.
    Only the decider, their successor or their superior may; a My Number file stays confidentiality 3."""
    out = Output(json_out)
    if confidentiality is None and integrity is None and availability is None and not restrict and not unrestrict:
        raise usage_error("give what changes: --confidentiality, --integrity, --availability, --restrict or "
                          "--unrestrict")
    body: dict[str, Any] = {"reason": reason, "restrict": restrict or [], "unrestrict": unrestrict or []}
    for name, value in (("confidentiality", confidentiality), ("integrity", integrity),
                        ("availability", availability)):
        if value is not None:
            body[name] = value
    with api() as client:
        f = client.post(path("/files/{}/marks", code), body=body)
    _show_file(out, f, f"Changed the marks of {f['code']}: now {f['marks']['label_full']} (version {f['version']}).")


@command(file_app, "marks-history")
def file_marks_history(code: CodeArg, json_out: JsonOpt = False) -> None:
    """Every change of a file's marks, oldest first: before, after, who (on which basis), why, when."""
    out = Output(json_out)
    with api() as client:
        rows = client.get(path("/files/{}/marks/history", code))

    def human(c: Console) -> None:
        if not rows:
            out.say("The marks have not changed since the file was defined.")
            return
        c.print(table(["When", "Version", "Before", "After", "By", "Basis", "Reason"],
                      [[fmt_time(h["changed_at"]), h["version"], _marks_text(h["before"] | _ja(h["before"])),
                        _marks_text(h["after"] | _ja(h["after"])), h["changed_by"],
                        f"{BASIS_JA.get(h['basis'], h['basis'])} {h['basis']}", h["reason"]] for h in rows]))

    out.emit(rows, human)


def _ja(m: dict[str, Any]) -> dict[str, Any]:
    """The Japanese label of a stored ``Marks.to_dict`` (history rows keep the dict only)."""
    from hogo.domain.handling import Marks

    try:
        marks = Marks.from_dict(m)
    except (KeyError, ValueError, TypeError):
        return {}
    return {"label_ja": marks.label_ja, "label_full": marks.label}


# ------------------------------------------------------------------------------------ working copies


def _copy_rows(w: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("ID", w["id"]),
        ("Marks (表示)", _marks_text(w.get("marks"))),
        ("Status (状態)", f"{STATUS_JA.get(w['status'], w['status'])} {w['status']}"),
        ("File", w["file"]),
        ("Holder (保持者)", w["holder"]),
        ("Purpose (利用目的)", w["purpose"]),
        ("Fields (項目)", ", ".join(w.get("fields") or ())),
        ("Selected by", ", ".join(w.get("where_fields") or ()) or "all records the grant covers"),
        ("Records", w["records"]),
        ("Created", fmt_time(w.get("created_at"))),
        ("Expires (期限)", fmt_time(w.get("expires_at"))),
        ("Disposed (廃棄)", f"{fmt_time(w['disposed_at'])} by {w.get('disposed_by')} ({w.get('disposal_reason')})"
         if w.get("disposed_at") else "no"),
        ("Key destroyed", w.get("key_destroyed")),
        ("Data present", w.get("data_present")),
        ("Erasure confirmed (消去確認)", f"{fmt_time(w['confirmed_at'])} by {w.get('confirmed_by')}"
         + (f": {w['confirmation_note']}" if w.get("confirmation_note") else "") if w.get("confirmed_at") else "no"),
    ]


def _show_copy(out: Output, w: dict[str, Any], message: str | None = None) -> None:
    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        c.print(kv_table(_copy_rows(w)))

    out.emit(w, human)


def _copies_table(rows: list[dict[str, Any]]) -> Any:
    return table(["ID", "File", "Holder", "Records", "Fields", "Marks", "Expires", "Status"],
                 [[w["id"], w["file"], w["holder"], w["records"], ", ".join(w.get("fields") or ()),
                   (w.get("marks") or {}).get("label_ja"), fmt_time(w.get("expires_at")),
                   STATUS_JA.get(w["status"], w["status"])] for w in rows])


def _expiry(text: str) -> str:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            day = dt.date.fromisoformat(text.strip())
        except ValueError:
            raise usage_error("--expires takes a date and time, e.g. 2026-11-30T18:00") from None
        value = dt.datetime(day.year, day.month, day.day, 23, 59)
    return value.isoformat()


@command(workcopy_app, "create")
def workcopy_create(
    file: Annotated[str, typer.Argument(metavar="FILE", help="The source file's code.")],
    fields: Annotated[str, opt("--fields", metavar="A,B", help="The fields to copy (only these).")],
    purpose: PurposeOpt,
    expires: Annotated[str, opt("--expires", metavar="WHEN",
                                help="Its deadline, e.g. 2026-11-30T18:00 (the organisation's time).")],
    where: Annotated[list[str] | None, opt("--where", "-w", metavar="FIELD=VALUE",
                                           help="Only records whose indexed field equals VALUE (repeatable).")
                     ] = None,
    json_out: JsonOpt = False,
) -> None:
    """A temporary working copy of some fields of FILE's records your grants cover for PURPOSE, kept encrypted
    inside hogo until it expires (ANON-17). Refused when the file's marks forbid copies (no_copy)."""
    out = Output(json_out)
    names = [f.strip() for f in fields.split(",") if f.strip()]
    if not names:
        raise usage_error("--fields names at least one field")
    conditions = _pairs(where or [], "--where", allow_empty_value=False)
    with api() as client:
        w = client.post("/workcopies", body={"file": file, "fields": names, "where": conditions,
                                             "expires_at": _expiry(expires)},
                        headers=purpose_header(purpose), options={**PURPOSE_OPTIONS, "where": "--where"})
    _show_copy(out, w, f"Created working copy {w['id']} ({w['records']} records); it is disposed of at "
                       f"{fmt_time(w['expires_at'])}.")


@command(workcopy_app, "list")
def workcopy_list(
    all_: Annotated[bool, opt("--all", help="Include disposed copies.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Working copies you hold (managers: those of their files; auditors: all)."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/workcopies", params={"all": "true" if all_ else None})
    out.emit(rows, lambda c: c.print(_copies_table(rows)) if rows else out.say("No working copies."))


@command(workcopy_app, "show")
def workcopy_show(copy_id: IdArg, json_out: JsonOpt = False) -> None:
    """One working copy's description and disposal record (never its rows)."""
    out = Output(json_out)
    with api() as client:
        w = client.get(path("/workcopies/{}", copy_id))
    _show_copy(out, w)


@command(workcopy_app, "read")
def workcopy_read(copy_id: IdArg, json_out: JsonOpt = False) -> None:
    """The rows of a working copy you hold (the read is logged)."""
    out = Output(json_out)
    with api() as client:
        data = client.get(path("/workcopies/{}/data", copy_id))

    def human(c: Console) -> None:
        w = data["working_copy"]
        c.print(Text("表示 marks: ", style="bold") + _marks_text(w.get("marks")))
        names = list(w.get("fields") or ())
        c.print(table(["Record ID", *names], [[r["record_id"], *[fmt(r["values"].get(n)) for n in names]]
                                              for r in data["rows"]]))
        out.say(f"{len(data['rows'])} record(s); held by {w['holder']} until {fmt_time(w['expires_at'])}.")

    out.emit(data, human)


@command(workcopy_app, "dispose")
def workcopy_dispose(copy_id: IdArg, json_out: JsonOpt = False) -> None:
    """Dispose of a working copy now (its holder or the file's protection manager): the key is destroyed."""
    out = Output(json_out)
    with api() as client:
        w = client.post(path("/workcopies/{}/dispose", copy_id), body={})
    _show_copy(out, w, f"Disposed of working copy {w['id']}: its key is destroyed and its data deleted.")


@command(workcopy_app, "confirm")
def workcopy_confirm(
    copy_id: IdArg,
    note: Annotated[str | None, opt("--note", metavar="TEXT", help="What was checked.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Confirm a disposed copy's erasure (the file's protection manager, ANON-17)."""
    out = Output(json_out)
    with api() as client:
        w = client.post(path("/workcopies/{}/confirm", copy_id), body={"note": note})
    _show_copy(out, w, f"Confirmed the erasure of working copy {w['id']}.")


@command(workcopy_app, "report")
def workcopy_report(json_out: JsonOpt = False) -> None:
    """Working copies still outstanding (live), and disposed ones whose erasure awaits confirmation."""
    out = Output(json_out)
    with api() as client:
        rep = client.get("/workcopies/report")

    def human(c: Console) -> None:
        c.print(Text("Outstanding working copies (保持中の作業用複製)", style="bold"))
        c.print(_copies_table(rep["outstanding"]) if rep["outstanding"] else Text("none"))
        c.print(Text("Disposed, awaiting confirmation (消去確認待ち)", style="bold"))
        c.print(_copies_table(rep["awaiting_confirmation"]) if rep["awaiting_confirmation"] else Text("none"))

    out.emit(rep, human)
