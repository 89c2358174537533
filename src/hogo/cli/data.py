"""``hogo file``, ``hogo key``, ``hogo grant`` and ``hogo record``: personal-data files (個人情報ファイル),
their keys, their grants (アクセス権限) and their records, all through the REST API.

Every record command declares its business purpose (利用目的) with ``--purpose``; it is sent in the
``X-Hogo-Purpose`` header, percent-encoded (HTTP headers are Latin-1, purposes are usually Japanese),
and checked by the server against the file's purposes and the caller's grants (SEC-45). Values
used to find records (``--where``) go in a POSTed body, never in a URL. My Numbers are shown only
as the server returns them: masked unless a ``reveal`` grant covers them and ``--reveal`` asks
(MN-6a); the CLI writes them to no file except the rejects file of an import, created 0600.

Registered in ``hogo.cli.main`` (``app.add_typer``); the exit codes are those of ``hogo.cli.client``.
"""

from __future__ import annotations

import contextlib
import csv
import getpass
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

from hogo.cli.client import (
    EXIT_ERROR,
    EXIT_TAMPERED,
    EXIT_VALIDATION,
    ApiClient,
    CliError,
    path,
    usage_error,
)
from hogo.cli.command import JsonOpt, api, command, command_group
from hogo.cli.output import DASH, Output, fmt, fmt_time, kv_table, table

PURPOSE_HEADER = "X-Hogo-Purpose"
PURPOSE_OPTIONS = {"purpose": "--purpose", "header": "--purpose"}
IMPORT_TIMEOUT = httpx.Timeout(1800.0, connect=30.0)  # a large CSV is encrypted and indexed row by row
UPLOAD_CHUNK = 256 * 1024
REJECT_REASON_COLUMN = "hogo_reject_reason"

F = TypeVar("F", bound=Callable[..., Any])

file_app = command_group("file", "Personal-data files (個人情報ファイル): define them, and show their ledger (MN-3c).")
key_app = command_group("key", "The data keys of a file (SEC-133).")
grant_app = command_group("grant", "Grants on files (アクセス権限): who may do what, for which purpose, until when.")
record_app = command_group("record", "Records of a file; every access declares its purpose (--purpose, SEC-45).")


def purpose_header(purpose: str) -> dict[str, str]:
    """The purpose, percent-encoded (RFC 3986) because header values are Latin-1; the server unquotes it."""
    return {PURPOSE_HEADER: urllib.parse.quote(purpose.strip(), safe="")}


FileArg = Annotated[str, typer.Argument(metavar="FILE", help="The file's code, e.g. payroll-mynumber.")]
CodeArg = Annotated[str, typer.Argument(metavar="CODE", help="The file's code, e.g. payroll-mynumber.")]
RecordArg = Annotated[str, typer.Argument(metavar="ID", help="The record's ID.")]
SpecOpt = Annotated[Path, typer.Option("--spec", metavar="F", help="The file's definition: a YAML or JSON file.")]
PurposeOpt = Annotated[str, typer.Option(
    "--purpose", "-p", metavar="PURPOSE",
    help="The business purpose of this access (利用目的), one of the file's purposes you hold a grant for.")]


# ------------------------------------------------------------------------------------ display

KIND_LABELS = {
    "personal_information": "個人情報ファイル",
    "specific_personal_information": "特定個人情報ファイル",
    "anonymised": "匿名加工情報",
    "pseudonymised": "仮名加工情報",
}
RESTRICTION_LABELS = {
    "no_copy": "複製禁止",
    "no_take_out": "持出禁止",
    "no_distribution": "配付禁止",
    "encryption_required": "暗号化必須",
    "destroy_after_reading": "読後廃棄",
}
_CLASS_RE = re.compile(r"^C(\d)-I(\d)-A(\d)$")


def classification_text(label: str) -> str:
    """``C3-I2-A1 (要機密・要保全)`` (SEC-5 table 1)."""
    m = _CLASS_RE.match(label or "")
    if not m:
        return label or DASH
    c, i, a = (int(x) for x in m.groups())
    marks = [name for name, on in (("要機密", c >= 2), ("要保全", i >= 2), ("要安定", a >= 2)) if on]
    return f"{label} ({'・'.join(marks)})" if marks else label


def restrictions_text(restrictions: Sequence[str]) -> str:
    if not restrictions:
        return "none"
    return ", ".join(f"{RESTRICTION_LABELS.get(r, r)} {r}" for r in restrictions)


def marking(classification: str, restrictions: Sequence[str], marks: dict[str, Any] | None = None) -> Text:
    """The classification and handling restrictions, to be shown prominently (明示, SEC-5, SEC-46): in
    Japanese first (``marks.label_ja``), then in English."""
    line = Text()
    if marks and marks.get("label_ja"):
        line.append("表示 marks: ", style="bold")
        line.append(str(marks["label_ja"]), style="bold red")
        line.append("   ")
    line.append("格付 classification: ", style="bold")
    line.append(classification_text(classification), style="bold red")
    line.append("   取扱制限 restrictions: ", style="bold")
    line.append(restrictions_text(restrictions), style="bold red")
    return line


def _retention(days: Any) -> str:
    if not isinstance(days, int):
        return fmt(days)
    years = days // 365
    return f"{days} days (about {years} years)" if years else f"{days} days"


def _file_rows(f: dict[str, Any]) -> list[tuple[str, Any]]:
    spec: dict[str, Any] = f.get("spec") or {}
    kind = str(f.get("kind") or "")
    return [
        ("Code", f["code"]),
        ("Name (ファイルの名称)", f["name"]),
        ("Kind (種類)", f"{KIND_LABELS.get(kind, kind)} ({kind})"),
        ("Purposes (利用目的)", "\n".join(f.get("purposes") or ()) or DASH),
        ("Administrative task (事務)", spec.get("administrative_task")),
        ("Legal basis (根拠法令)", spec.get("legal_basis")),
        ("Responsible (責任者)", f.get("responsible")),
        ("Department (課室)", f.get("department")),
        ("Collection method (収集方法)", spec.get("collection_method")),
        ("Scope of individuals (本人の範囲)", spec.get("subjects_scope")),
        ("Retention (保存期間)", _retention(spec.get("retention_days"))),
        ("Classification (格付)", classification_text(str(f.get("classification") or ""))),
        ("Restrictions (取扱制限)", restrictions_text(f.get("restrictions") or ())),
        ("Subject field", spec.get("subject_field")),
        ("Segment field", spec.get("segment_field") or "none (grants cover all records)"),
        ("Description", spec.get("description")),
        ("Version", f.get("version")),
        ("Records", f.get("records")),
        ("Created", fmt_time(f.get("created_at"))),
        ("Updated", fmt_time(f.get("updated_at"))),
        *([("Erased (消去済)", f"{fmt_time(f['erased_at'])} — hogo certificate list --file {f['code']}")]
          if f.get("erased_at") else []),
    ]


def _is_masked_field(field: dict[str, Any]) -> bool:
    return field.get("type") == "my_number" or field.get("sensitivity") == "individual_identification_code"


def _fields_table(spec: dict[str, Any]) -> Any:
    return table(
        ["Field", "Label", "Type", "Sensitivity", "Required", "Indexed", "Masked"],
        [[fd.get("name"), fd.get("label"), fd.get("type"), fd.get("sensitivity"), bool(fd.get("required")),
          bool(fd.get("indexed")), _is_masked_field(fd)] for fd in spec.get("fields") or ()],
        title="Fields (記録項目)",
    )


def _show_file(out: Output, f: dict[str, Any], message: str | None = None) -> None:
    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        c.print(Panel(marking(str(f.get("classification") or ""), f.get("restrictions") or (), f.get("marks")),
                      title=f"{f['code']}", title_align="left", expand=False))
        c.print(kv_table(_file_rows(f)))
        c.print(_fields_table(f.get("spec") or {}))

    out.emit(f, human)


def _grantee(g: dict[str, Any]) -> str:
    return str(g.get("grantee") or DASH)


def _grant_rows(g: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("Grant ID", g["id"]),
        ("File", g["file"]),
        ("Grantee", _grantee(g)),
        ("Actions", g.get("actions")),
        ("Purposes", "\n".join(g.get("purposes") or ()) or DASH),
        ("Fields", g["fields"] if g.get("fields") is not None else "all fields"),
        ("Segments", g["segments"] if g.get("segments") is not None else "all records"),
        ("Valid from", fmt_time(g.get("valid_from")) if g.get("valid_from") else "now"),
        ("Valid until", fmt_time(g.get("valid_until")) if g.get("valid_until") else "no end date"),
        ("Note", g.get("note")),
        ("Granted by", g.get("granted_by")),
        ("Granted at", fmt_time(g.get("granted_at"))),
        ("Last used", fmt_time(g.get("last_used_at")) if g.get("last_used_at") else "never"),
        ("Revoked", fmt_time(g.get("revoked_at")) if g.get("revoked_at") else "no"),
    ]


def _pairs(items: Sequence[str], option: str, *, allow_empty_value: bool) -> dict[str, str]:
    """``FIELD=VALUE`` options; the value is never repeated in an error (it may be a My Number).

    ``FIELD=-`` reads the value from standard input (a hidden prompt at a terminal), so a My Number
    need not appear in the process list or the shell history."""
    out: dict[str, str] = {}
    stdin_used = False
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise usage_error(f"{option} takes FIELD=VALUE (a field name, '=', then the value)")
        if value == "-":
            if stdin_used:
                raise usage_error(f"only one {option} FIELD=- may read standard input")
            stdin_used = True
            value = (getpass.getpass(f"{key}: ") if sys.stdin.isatty() else sys.stdin.readline()).rstrip("\r\n")
        if not allow_empty_value and not value.strip():
            raise usage_error(f"{option} {key}=: the value is empty")
        if key in out:
            raise usage_error(f"{option} names field {key!r} twice")
        out[key] = value
    return out


# -------------------------------------------------------------------------------------- files


def _read_spec(spec: Path) -> tuple[bytes, str]:
    """The spec's bytes and Content-Type: by extension (.yaml/.yml, .json), else by content."""
    try:
        raw = spec.read_bytes()
    except OSError as exc:
        raise usage_error(f"cannot read the spec file {spec}: {exc.strerror or type(exc).__name__}",
                          code="bad_file") from None
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not raw.strip():
        raise usage_error(f"the spec file {spec} is empty", code="bad_file")
    suffix = spec.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return raw, "application/yaml"
    if suffix == ".json":
        return raw, "application/json"
    return raw, "application/json" if raw.lstrip().startswith(b"{") else "application/yaml"


def _send_spec(client: ApiClient, method: str, url_path: str, spec: Path) -> Any:
    raw, ctype = _read_spec(spec)
    try:
        return client.request(method, url_path, content=raw, headers={"Content-Type": ctype})
    except CliError as exc:
        if exc.exit_code == EXIT_VALIDATION and not exc.hint:
            exc.hint = f"fix the spec file {spec} and run the command again"
        raise


@command(file_app, "create")
def file_create(spec: SpecOpt, json_out: JsonOpt = False) -> None:
    """Define a personal-data file from a spec (YAML or JSON). Only a protection manager of its
    department (or the general one) may (SEC-130); defining it gives nobody access to its records."""
    out = Output(json_out)
    with api() as client:
        f = _send_spec(client, "POST", "/files", spec)
    _show_file(out, f, f"Created file {f['code']} (version {f['version']}). Nobody can use its records "
                       "until granted: hogo grant add.")


@command(file_app, "update")
def file_update(code: CodeArg, spec: SpecOpt, json_out: JsonOpt = False) -> None:
    """A new version of a file's definition: fields may be added, not removed or retyped."""
    out = Output(json_out)
    with api() as client:
        f = _send_spec(client, "PUT", path("/files/{}", code), spec)
    _show_file(out, f, f"Updated file {f['code']}: now version {f['version']}.")


@command(file_app, "list")
def file_list(json_out: JsonOpt = False) -> None:
    """The files you may see (managers and auditors: all of them; others: those they hold grants on)."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/files")

    def human(c: Console) -> None:
        if not rows:
            out.say("No files (or none you hold a grant on).")
            return
        c.print(table(
            ["Code", "Name", "Kind", "Dept", "Responsible", "Classification", "Restrictions", "Version", "Records"],
            [[f["code"], f["name"], KIND_LABELS.get(f["kind"], f["kind"]), f["department"], f["responsible"],
              Text(classification_text(f["classification"]) + "\n" + str((f.get("marks") or {}).get("label_ja") or ""),
                   style="bold"),
              Text(restrictions_text(f.get("restrictions") or ()), style="bold"), f["version"], f["records"]]
             for f in rows],
        ))

    out.emit(rows, human)


@command(file_app, "show")
def file_show(code: CodeArg, json_out: JsonOpt = False) -> None:
    """One file's ledger entry (MN-3c): name, kind, purposes, task, legal basis, responsible person,
    department, collection method, scope of individuals, retention, classification and restrictions
    (shown prominently, SEC-5), and its fields. Never any record."""
    out = Output(json_out)
    with api() as client:
        f = client.get(path("/files/{}", code))
    _show_file(out, f)


@command(file_app, "versions")
def file_versions(code: CodeArg, json_out: JsonOpt = False) -> None:
    """Every version of a file's definition, oldest first."""
    out = Output(json_out)
    with api() as client:
        rows = client.get(path("/files/{}/versions", code))

    def cls(spec: dict[str, Any]) -> str:
        c = spec.get("classification") or {}
        return f"C{c.get('confidentiality')}-I{c.get('integrity')}-A{c.get('availability')}" if c else DASH

    out.emit(rows, lambda c: c.print(table(
        ["Version", "Created", "Name", "Classification", "Restrictions", "Purposes", "Fields"],
        [[v["version"], fmt_time(v.get("created_at")), (v.get("spec") or {}).get("name"), cls(v.get("spec") or {}),
          (v.get("spec") or {}).get("restrictions"), "\n".join((v.get("spec") or {}).get("purposes") or ()),
          [fd.get("name") for fd in (v.get("spec") or {}).get("fields") or ()]] for v in rows],
    )))


@command(key_app, "rotate")
def key_rotate(file: FileArg, json_out: JsonOpt = False) -> None:
    """A new data key version for FILE; every record is re-encrypted under it (SEC-133, ANON-18)."""
    out = Output(json_out)
    with api() as client:
        data = client.post(path("/files/{}/keys/rotate", file))
    data = {"file": file, **data}
    out.emit(data, lambda c: out.say(
        f"Rotated the data key of {file}: now key version {data.get('key_version')}, "
        f"{data.get('reencrypted')} record(s) re-encrypted.", style="green"))


# ------------------------------------------------------------------------------------- grants

GRANT_FIELDS = {"user": "--user", "role": "--role", "actions": "--action", "purposes": "--purpose",
                "fields": "--field", "segments": "--segment", "valid_from": "--from", "valid_until": "--until",
                "note": "--note"}


@command(grant_app, "add")
def grant_add(
    file: FileArg,
    action: Annotated[list[str], typer.Option(
        "--action", "-a", metavar="ACTION",
        help="What the grantee may do (repeatable): read, create, update, delete, reveal, export, manage.")],
    purpose: Annotated[list[str], typer.Option(
        "--purpose", "-p", metavar="PURPOSE", help="A purpose of the file the grant is for (repeatable).")],
    user: Annotated[str | None, typer.Option("--user", "-u", metavar="U", help="Grant to this user.")] = None,
    role: Annotated[str | None, typer.Option(
        "--role", metavar="R[@DEPT]", help="Or grant to a role, e.g. clerk@KYUYO.")] = None,
    field: Annotated[list[str] | None, typer.Option(
        "--field", metavar="F", help="Only these fields (repeatable; default: every field).")] = None,
    segment: Annotated[list[str] | None, typer.Option(
        "--segment", metavar="S", help="Only records in these segments (repeatable; default: all records).")] = None,
    valid_from: Annotated[str | None, typer.Option("--from", metavar="DATE", help="Start (date or date-time).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="DATE", help="End: valid through this date (or until this date-time).")] = None,
    note: Annotated[str | None, typer.Option("--note", metavar="N", help="Why (kept with the grant).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Grant rights on FILE to a user or a role (MN-6a: narrow, by field, record and purpose).
    Only holders of 'manage' on the file or its protection manager may (SEC-130); never to
    yourself or a role you hold (SEC-19)."""
    out = Output(json_out)
    if (user is None) == (role is None):
        raise usage_error("give --user U or --role R[@DEPT] (one of them)")
    body: dict[str, Any] = {"user": user, "role": role, "actions": action, "purposes": purpose, "fields": field,
                            "segments": segment, "valid_from": valid_from, "valid_until": until, "note": note}
    with api() as client:
        g = client.post(path("/files/{}/grants", file), body={k: v for k, v in body.items() if v is not None},
                        options=GRANT_FIELDS)

    def human(c: Console) -> None:
        out.say(f"Granted {', '.join(g['actions'])} on {g['file']} to {_grantee(g)} "
                f"for {', '.join(g['purposes'])}.", style="green")
        c.print(kv_table(_grant_rows(g)))

    out.emit(g, human)


@command(grant_app, "list")
def grant_list(
    file: FileArg,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked grants.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """The grants on FILE (in force, or with --all also the revoked ones)."""
    out = Output(json_out)
    with api() as client:
        rows = client.get(path("/files/{}/grants", file), params={"include_revoked": all_ or None})

    def human(c: Console) -> None:
        if not rows:
            out.say(f"No grants on {file}: nobody can use its records.")
            return
        c.print(table(
            ["Grant ID", "Grantee", "Actions", "Purposes", "Fields", "Segments", "Valid until", "Granted by",
             "Last used", "Revoked"],
            [[g["id"], _grantee(g), g["actions"], "\n".join(g["purposes"]),
              g["fields"] if g.get("fields") is not None else "all",
              g["segments"] if g.get("segments") is not None else "all",
              fmt_time(g.get("valid_until")) if g.get("valid_until") else "no end date", g.get("granted_by"),
              fmt_time(g.get("last_used_at")) if g.get("last_used_at") else "never",
              fmt_time(g.get("revoked_at")) if g.get("revoked_at") else DASH] for g in rows],
        ))

    out.emit(rows, human)


@command(grant_app, "revoke")
def grant_revoke(
    grant_id: Annotated[str, typer.Argument(metavar="GRANT_ID", help="The grant's ID (hogo grant list FILE).")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a grant, at once (SEC-130)."""
    out = Output(json_out)
    with api() as client:
        g = client.delete(path("/grants/{}", grant_id))
    out.emit(g, lambda c: out.say(f"Revoked grant {g['id']} ({_grantee(g)} on {g['file']}).", style="green"))


FINDING_TEXT = {
    "unused": "unused",
    "never_used": "never used",
    "expired": "expired",
    "not_yet_valid": "not yet valid",
    "holder_disabled": "holder disabled",
    "holder_expired": "holder's account expired",
}


@command(grant_app, "review")
def grant_review(
    file: Annotated[str | None, typer.Option("--file", metavar="F", help="Only this file.")] = None,
    unused_days: Annotated[int, typer.Option(
        "--unused-days", metavar="N", help="A grant unused this many days is flagged.", show_default=True)] = 90,
    json_out: JsonOpt = False,
) -> None:
    """The periodic check of unneeded rights (SEC-131(3)): per file, each grant in force, when it was
    last used, and findings (unused, never_used, expired, not_yet_valid, holder_disabled,
    holder_expired). Revoke what is not needed: hogo grant revoke GRANT_ID."""
    out = Output(json_out)
    with api() as client:
        items = client.get("/grants/review", params={"file": file, "unused_days": unused_days},
                           options={"file": "--file", "unused_days": "--unused-days"})
    flagged = [i for i in items if i.get("findings")]

    def human(c: Console) -> None:
        if not items:
            out.say("No grants in force." if file is None else f"No grants in force on {file}.")
            return
        by_file: dict[str, list[dict[str, Any]]] = {}
        for i in items:
            by_file.setdefault(str(i["grant"]["file"]), []).append(i)
        for code, group in by_file.items():
            rows = []
            for i in group:
                g, findings = i["grant"], list(i.get("findings") or ())
                shown = Text(", ".join(f"{FINDING_TEXT.get(x, x)} ({x})" for x in findings), style="bold red") \
                    if findings else Text("ok", style="green")
                rows.append([g["id"], _grantee(g), g["actions"], "\n".join(g["purposes"]),
                             fmt_time(g.get("last_used_at")) if g.get("last_used_at") else "never",
                             fmt_time(g.get("valid_until")) if g.get("valid_until") else "no end date", shown])
            c.print(table(["Grant ID", "Grantee", "Actions", "Purposes", "Last used", "Valid until", "Findings"],
                          rows, title=f"{code}"))
        summary = f"{len(items)} grant(s) reviewed, {len(flagged)} with findings (unused = not used in " \
                  f"{unused_days} days)."
        out.say(summary, style="yellow bold" if flagged else "green")
        if flagged:
            out.say("Revoke the ones no longer needed: hogo grant revoke GRANT_ID")

    out.emit(items, human)


# ------------------------------------------------------------------------------------ records


def _labels(client: ApiClient, file: str) -> dict[str, str]:
    """Field labels from the file's ledger entry, for display (names only if it cannot be read)."""
    with contextlib.suppress(CliError):
        f = client.get(path("/files/{}", file))
        return {str(fd.get("name")): str(fd.get("label") or fd.get("name"))
                for fd in (f.get("spec") or {}).get("fields") or ()}
    return {}


def _record_header(r: dict[str, Any]) -> Text:
    line = Text(f"{r['file']} / {r['record_id']}", style="bold")
    line.append("   ")
    line.append_text(marking(str(r.get("classification") or ""), r.get("restrictions") or (), r.get("marks")))
    return line


def _value(r: dict[str, Any], name: str) -> Text:
    value = r["values"].get(name)
    text = Text(fmt(value))
    if name in (r.get("masked") or ()):
        text.append("  (masked)", style="dim")
    elif name in (r.get("revealed") or ()):
        text.append("  (revealed; this access is recorded)", style="yellow bold")
    return text


def _print_record(c: Console, r: dict[str, Any], labels: dict[str, str]) -> None:
    c.print(_record_header(r), soft_wrap=True)
    meta = Text(f"revision {r.get('revision')}, segment {r.get('segment') or DASH}, "
                f"updated {fmt_time(r.get('updated_at'))}", style="dim")
    c.print(meta)
    c.print(kv_table([(f"{labels.get(n, n)} ({n})" if labels.get(n, n) != n else n, _value(r, n))
                      for n in r.get("values") or {}]))


def _show_record(out: Output, client: ApiClient, r: dict[str, Any], message: str | None = None) -> None:
    labels = _labels(client, str(r["file"])) if not out.json_mode else {}

    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        _print_record(c, r, labels)

    out.emit(r, human)


@command(record_app, "get")
def record_get(
    file: FileArg,
    record_id: RecordArg,
    purpose: PurposeOpt,
    reveal: Annotated[list[str] | None, typer.Option(
        "--reveal", metavar="FIELD",
        help="Show this identification code (My Number) unmasked (repeatable; needs a 'reveal' grant).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """One record, for PURPOSE: its classification and restrictions, then its fields. My Numbers are
    masked unless --reveal asks and a grant allows it (MN-6a); every access is recorded (MN-3b)."""
    out = Output(json_out)
    with api() as client:
        r = client.get(path("/files/{}/records/{}", file, record_id), params={"reveal": reveal or None},
                       headers=purpose_header(purpose), options={**PURPOSE_OPTIONS, "reveal": "--reveal"})
        _show_record(out, client, r)


@command(record_app, "find")
def record_find(
    file: FileArg,
    where: Annotated[list[str], typer.Option(
        "--where", "-w", metavar="FIELD=VALUE",
        help="Exact match on an indexed field (repeatable; all must match). Sent in the request body.")],
    purpose: PurposeOpt,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="At most N records (1–1000).",
                                       show_default=True)] = 100,
    json_out: JsonOpt = False,
) -> None:
    """Records whose indexed fields equal the values given (through the blind index; the values are
    POSTed, never put in a URL). Only records your grants cover are returned (MN-6a)."""
    out = Output(json_out)
    conditions = _pairs(where, "--where", allow_empty_value=False)
    with api() as client:
        rows = client.post(path("/files/{}/records/search", file), body={"where": conditions, "limit": limit},
                           headers=purpose_header(purpose),
                           options={**PURPOSE_OPTIONS, "where": "--where", "limit": "--limit"})
        labels = _labels(client, file) if rows and not json_out else {}

    def human(c: Console) -> None:
        if not rows:
            out.say("No records match.")
            return
        c.print(marking(str(rows[0].get("classification") or ""), rows[0].get("restrictions") or (),
                        rows[0].get("marks")),
                soft_wrap=True)
        names: list[str] = []
        for r in rows:
            names += [n for n in r["values"] if n not in names]
        c.print(table(["Record ID", "Rev", *[labels.get(n, n) for n in names]],
                      [[r["record_id"], r["revision"], *[_value(r, n) if n in r["values"] else DASH for n in names]]
                       for r in rows]))
        out.say(f"{len(rows)} record(s) match" + (f" (the first {limit})" if len(rows) >= limit else "") + ".")

    out.emit(rows, human)


SetOpt = Annotated[list[str], typer.Option(
    "--set", "-s", metavar="FIELD=VALUE", help="A field's value (repeatable).")]


@command(record_app, "create")
def record_create(
    file: FileArg,
    purpose: PurposeOpt,
    set_: SetOpt,
    record_id: Annotated[str | None, typer.Option("--id", metavar="ID",
                                                  help="The record's ID (default: one is made).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a record (needs a 'create' grant for PURPOSE and every field set)."""
    out = Output(json_out)
    values = _pairs(set_, "--set", allow_empty_value=True)
    body: dict[str, Any] = {"values": values, **({"record_id": record_id} if record_id else {})}
    with api() as client:
        r = client.post(path("/files/{}/records", file), body=body, headers=purpose_header(purpose),
                        options={**PURPOSE_OPTIONS, "values": "--set", "record_id": "--id"})
        _show_record(out, client, r, f"Created record {r['record_id']} in {r['file']}.")


@command(record_app, "update")
def record_update(
    file: FileArg,
    record_id: RecordArg,
    purpose: PurposeOpt,
    set_: SetOpt,
    revision: Annotated[int | None, typer.Option(
        "--revision", metavar="N", help="Only if the record is still at revision N (else exit 6).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Change some fields of a record (FIELD= with nothing after '=' clears one)."""
    out = Output(json_out)
    values = _pairs(set_, "--set", allow_empty_value=True)
    body: dict[str, Any] = {"values": values, **({"expected_revision": revision} if revision is not None else {})}
    with api() as client:
        r = client.patch(path("/files/{}/records/{}", file, record_id), body=body, headers=purpose_header(purpose),
                         options={**PURPOSE_OPTIONS, "values": "--set", "expected_revision": "--revision"})
        _show_record(out, client, r, f"Updated record {r['record_id']}: now revision {r['revision']}.")


@command(record_app, "delete")
def record_delete(file: FileArg, record_id: RecordArg, purpose: PurposeOpt, json_out: JsonOpt = False) -> None:
    """Delete a record (needs a 'delete' grant for PURPOSE; recorded, MN-3b)."""
    out = Output(json_out)
    with api() as client:
        client.delete(path("/files/{}/records/{}", file, record_id), headers=purpose_header(purpose),
                      options=PURPOSE_OPTIONS)
    out.emit({"deleted": record_id, "file": file},
             lambda c: out.say(f"Deleted record {record_id} from {file}.", style="green"))


@command(record_app, "verify")
def record_verify(
    file: FileArg,
    record_id: RecordArg,
    purpose: PurposeOpt,
    key: Annotated[str | None, typer.Option(
        "--key", metavar="KEY|FILE",
        help="The log's public key you pinned (hogo audit public-key --out log.pub); default: the server's.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Prove that a record of an integrity-2 file has not changed since it was written (SEC-133(2)).

    The server compares the SHA-256 of the record's stored version with the one in the log entry that
    wrote it, and proves that entry is in the latest signed checkpoint; this command then checks the
    checkpoint's Ed25519 signature and the inclusion proof again here, with --key (SEC-134(1)). Exit
    0: unchanged (or the file is not integrity 2: nothing to verify, said so); 10: changed or not
    provable. Needs a 'read' grant for PURPOSE; the verification is recorded (MN-3b)."""
    from hogo.cli.audit import _key_text, _parse_key
    from hogo.crypto import checkpoint as notes
    from hogo.domain import merkle

    out = Output(json_out)
    with api() as client:
        rep = client.get(path("/files/{}/records/{}/verify", file, record_id), headers=purpose_header(purpose),
                         options=PURPOSE_OPTIONS)
    here: str | None = None  # what this command checked itself
    if rep.get("checkpoint") and rep.get("seq") is not None and rep.get("leaf_hash"):
        name, public = _parse_key(_key_text(key) or str(rep.get("public_key") or ""))
        try:
            cp = notes.verify_note(rep["checkpoint"], name, public, origin=name)
            proven = merkle.verify_inclusion(int(rep["seq"]), cp.size, bytes.fromhex(rep["leaf_hash"]),
                                             [bytes.fromhex(h) for h in rep.get("proof") or ()], cp.root)
            here = "ok" if proven else "the inclusion proof does not lead to the signed root"
        except notes.CheckpointError as exc:
            here = f"the checkpoint is not signed by this key: {exc}"
        if here != "ok" and rep.get("status") == "ok":
            rep["status"], rep["ok"] = "unverifiable", False
    rep["client_check"] = here
    rep["key_pinned"] = key is not None
    status = str(rep.get("status"))

    def human(c: Console) -> None:
        style = {"ok": "green", "not_integrity_2": "yellow"}.get(status, "bold red")
        c.print(Text(f"{file} {record_id}: {status.upper().replace('_', ' ')} — {rep.get('message')}", style=style))
        if status == "not_integrity_2":
            return
        rows: list[tuple[str, Any]] = [(ch["check"], ("ok  " if ch["ok"] else "FAIL ") + ch["detail"])
                                       for ch in rep.get("checks") or ()]
        rows += [("Log entry", fmt(rep.get("seq"))), ("Event", fmt(rep.get("event"))),
                 ("Checkpoint size", fmt(rep.get("checkpoint_size"))),
                 ("Revision (logged / stored)",
                  f"{fmt(rep.get('logged_revision'))} / {fmt(rep.get('stored_revision'))}"),
                 ("SHA-256 logged", fmt(rep.get("logged_sha256"))), ("SHA-256 stored", fmt(rep.get("stored_sha256"))),
                 ("Checked here", fmt(here)),
                 ("Key", "pinned (--key)" if key else "from the server (pin it with --key)")]
        c.print(kv_table(rows))

    out.emit(rep, human)
    if status not in ("ok", "not_integrity_2"):
        raise typer.Exit(EXIT_TAMPERED)


# ------------------------------------------------------------------------------------- import


class Encoding(StrEnum):
    UTF8 = "utf-8"
    SHIFT_JIS = "shift_jis"


CODECS = {Encoding.UTF8: "utf-8-sig", Encoding.SHIFT_JIS: "cp932"}  # as the server decodes them


def _upload(fh: IO[bytes], progress: Progress, task: Any) -> Iterator[bytes]:
    """The CSV in chunks, as httpx sends them (never the whole file in memory here)."""
    while chunk := fh.read(UPLOAD_CHUNK):
        yield chunk
        progress.advance(task, len(chunk))
    progress.update(task, description="Importing (the server encrypts and indexes each row)…")


def _row_reasons(rejected: Sequence[dict[str, Any]]) -> dict[int, str]:
    reasons: dict[int, list[str]] = {}
    for p in rejected:
        text = str(p["reason"]) if p.get("field") in (None, "", "*") else f"{p['field']}: {p['reason']}"
        reasons.setdefault(int(p["row"]), []).append(text)
    return {row: "; ".join(texts) for row, texts in reasons.items()}


def _original_rows(csv_path: Path, codec: str, wanted: set[int]) -> tuple[list[str], dict[int, list[str]]]:
    """The header and the rows numbered as the server numbers them (1-based data rows; blank rows
    and unparsable rows count), decoded as the server decodes them (undecodable bytes kept)."""
    found: dict[int, list[str]] = {}
    with csv_path.open("r", encoding=codec, errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except (StopIteration, csv.Error):
            return [], found
        n = 0
        while len(found) < len(wanted):
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error:
                cells = []
            n += 1
            if n in wanted:
                found[n] = cells
    return header, found


def _create_private(target: Path, encoding: str, write: Callable[[IO[str]], None]) -> None:
    """Write ``target`` created 0600 (it holds personal data), atomically, never briefly readable by others."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding=encoding, errors="surrogateescape", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_rejects(csv_path: Path, encoding: Encoding, rejected: Sequence[dict[str, Any]], target: Path) -> int:
    """The original rejected rows (the input's header plus ``hogo_reject_reason``), in the input's
    encoding so they can be fixed and imported again; the file is created 0600. Returns the rows written."""
    reasons = _row_reasons(rejected)
    codec = CODECS[encoding]
    header, rows = _original_rows(csv_path, codec, set(reasons))
    if encoding is Encoding.UTF8:
        with csv_path.open("rb") as fh:
            out_codec = "utf-8-sig" if fh.read(3) == b"\xef\xbb\xbf" else "utf-8"
    else:
        out_codec = codec

    def safe(text: str) -> str:  # a reason the output encoding cannot hold is written with '?'
        return text.encode(out_codec, "replace").decode(out_codec)

    def write(fh: IO[str]) -> None:
        w = csv.writer(fh)
        w.writerow([*header, REJECT_REASON_COLUMN])
        for row in sorted(reasons):
            w.writerow([*rows.get(row, []), safe(reasons[row])])

    _create_private(target, out_codec, write)
    return len(reasons)


def _import_summary(out: Output, c: Console, data: dict[str, Any]) -> None:
    rejected = data["rejected"]
    rows_rejected = len({p["row"] for p in rejected})
    if data["committed"]:
        out.say(f"Imported {data['imported']} of {data['total']} row(s) into {data['file']}"
                + (f"; {rows_rejected} row(s) rejected." if rows_rejected else "."),
                style="yellow" if rows_rejected else "green")
    else:
        out.say(f"Nothing was imported into {data['file']}: {rows_rejected} of {data['total']} row(s) rejected "
                "(--atomic: all rows or none).", style="red bold")
    if rejected:
        ordered = sorted(rejected, key=lambda p: int(p["row"]))
        c.print(table(["Row", "Field", "Reason"], [[p["row"], p["field"], p["reason"]] for p in ordered],
                      title="Rejected rows (data rows, counted from 1 after the header)"))
    if data.get("rejects_file"):
        out.say(f"The rejected rows are in {data['rejects_file']} (mode 0600: it holds personal data). Correct "
                f"them, remove the {REJECT_REASON_COLUMN} column and import that file; then delete it.",
                style="bold")


@command(record_app, "import")
def record_import(
    file: FileArg,
    csv_path: Annotated[Path, typer.Option("--csv", metavar="PATH", help="The CSV to import (header row first).")],
    purpose: PurposeOpt,
    encoding: Annotated[Encoding, typer.Option("--encoding", metavar="utf-8|shift_jis", case_sensitive=False,
                                               help="The CSV's encoding.", show_default=True)] = Encoding.UTF8,
    atomic: Annotated[bool, typer.Option("--atomic", help="All rows or none: nothing is imported if any row "
                                                          "is bad (exit 7).")] = False,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", metavar="CSV_COL=FIELD", help="Import a CSV column into a differently named field "
                                               "(repeatable).")] = None,
    id_column: Annotated[str, typer.Option("--id-column", metavar="COL", help="The column holding record IDs.",
                                           show_default=True)] = "record_id",
    rejects: Annotated[Path | None, typer.Option(
        "--rejects", metavar="PATH",
        help="Where to write the rejected rows (default: <csv>.rejects.csv; with --atomic only if given).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Bulk import of a CSV (UTF-8 or Shift_JIS) into FILE, streamed to the server, with every
    rejected row listed (row, field, reason). Good rows are imported and the rejected ones written,
    as they were, to a rejects file created 0600 (it holds personal data). With --atomic nothing is
    imported if any row is bad (exit 7). Needs a 'create' grant for PURPOSE (MN-6a, SEC-45); the
    import is recorded (MN-3b) and every value encrypted (ANON-18)."""
    out = Output(json_out)
    mapping = _pairs(map_ or [], "--map", allow_empty_value=False)
    target = rejects if rejects is not None else (
        None if atomic else csv_path.with_name(csv_path.name + ".rejects.csv"))
    if target is not None and target.exists() and target.resolve() == csv_path.resolve():
        raise usage_error("--rejects must not be the CSV being imported")
    if target is not None and not os.access(target.parent, os.W_OK | os.X_OK):
        # Found out before anything is imported, not after.
        raise usage_error(f"cannot write the rejects file in {target.parent} (pass --rejects PATH)", code="bad_file")
    try:
        size = csv_path.stat().st_size
        if not csv_path.is_file():
            raise usage_error(f"{csv_path} is not a file", code="bad_file")
        fh = csv_path.open("rb")
    except OSError as exc:
        raise usage_error(f"cannot read {csv_path}: {exc.strerror or type(exc).__name__}", code="bad_file") from None
    params = {"encoding": encoding.value, "atomic": atomic, "id_column": id_column,
              "map": [f"{k}={v}" for k, v in mapping.items()] or None}
    headers = {**purpose_header(purpose), "Content-Type": "text/csv", "Content-Length": str(size)}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                        disable=json_out or not sys.stderr.isatty())
    with fh, progress, api() as client:
        task = progress.add_task(f"Uploading {csv_path.name}", total=size)
        try:
            report = client.post(path("/files/{}/records/import", file), params=params, headers=headers,
                                 content=_upload(fh, progress, task), timeout=IMPORT_TIMEOUT,
                                 options={**PURPOSE_OPTIONS, "encoding": "--encoding", "map": "--map",
                                          "id_column": "--id-column", "csv": "--csv"})
        except CliError as exc:
            if exc.status == 413:
                exc.hint = "split the CSV into smaller files and import each"
            raise
    data: dict[str, Any] = {**report, "rejected_rows": len({p["row"] for p in report["rejected"]}),
                            "rejects_file": None}
    failure: CliError | None = None
    if report["rejected"] and target is not None:
        try:
            write_rejects(csv_path, encoding, report["rejected"], target)
            data["rejects_file"] = str(target)
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            failure = CliError(f"cannot write the rejects file {target}: {reason}", exit_code=EXIT_ERROR,
                               code="rejects_unwritable", details={"import": data},
                               hint="the listed rows were rejected; pass --rejects PATH to write them elsewhere")
    if not report["committed"]:
        failure = CliError(f"nothing was imported: {data['rejected_rows']} row(s) rejected and --atomic was given",
                           exit_code=EXIT_VALIDATION, code="import_rejected", details={"import": data},
                           hint="fix the listed rows and import again")
    if failure is not None:
        if not json_out:
            _import_summary(out, out.console, data)
        raise failure
    out.emit(data, lambda c: _import_summary(out, c, data))


__all__ = ["file_app", "grant_app", "key_app", "purpose_header", "record_app", "write_rejects"]
