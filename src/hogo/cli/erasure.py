"""``hogo record erase``, ``hogo file erase``, ``hogo certificate`` and ``hogo retention``: irrecoverable
deletion (crypto-shredding) and its signed deletion certificates (消去証明), through the REST API
(ANON-10, SEC-50, MN-5d).

``hogo record erase FILE ID --reason … --purpose P`` and ``hogo file erase FILE --reason …`` print the
certificate. ``hogo certificate list|show ID [--out FILE]|attach ID --file PDF --contractor NAME`` talk to
the server; ``hogo certificate verify FILE --key KEY`` checks an exported certificate offline against the
pinned verifier key of the instance's log (``hogo audit public-key``): exit 10 with the reason if it was
changed or not signed by that key. ``hogo retention run [--dry-run]`` disposes of (or lists) the records
past their retention in the files you manage.

Importing this module adds ``erase`` to ``hogo record`` and ``hogo file``; ``certificate_app`` and
``retention_app`` are registered in ``hogo.cli.main``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hogo.cli.client import EXIT_TAMPERED, CliError, path, usage_error
from hogo.cli.command import JsonOpt, api, command, command_group, opt
from hogo.cli.data import PURPOSE_OPTIONS, FileArg, PurposeOpt, RecordArg, file_app, purpose_header, record_app
from hogo.cli.output import DASH, Output, fmt_time, kv_table, table

certificate_app = command_group("certificate",
                                "Deletion certificates (消去証明): list, show, verify, attach (ANON-10).")
retention_app = command_group("retention", "Retention (保存期間): dispose of records past it (SEC-50).")

ReasonOpt = Annotated[str, opt("--reason", metavar="TEXT",
                               help="Why (e.g. 本人からの削除請求); never a My Number or other personal data.")]
IdArg = Annotated[int, typer.Argument(metavar="ID", help="The deletion certificate's number.")]
KIND_JA = {"record": "記録の消去", "file": "ファイルの消去", "retention": "保存期間満了による廃棄"}
STATUS_JA = {"complete": "完了", "purged": "鍵の破棄待ち", "pending": "処理中"}


def _rows(d: dict[str, Any]) -> list[tuple[str, Any]]:
    cert = d.get("certificate") or {}
    checks = (cert.get("confirmed_by") or {}).get("checks") or {}
    rows: list[tuple[str, Any]] = [
        ("Certificate (消去証明)", f"#{d['id']}"),
        ("Kind (種別)", f"{KIND_JA.get(d['kind'], d['kind'])} {d['kind']}"),
        ("Status (状態)", f"{STATUS_JA.get(d['status'], d['status'])} {d['status']}"),
        ("File (ファイル)", f"{d['file']} {d.get('file_name') or ''}"),
        ("Records (件数)", d["record_count"]),
        ("Fields (項目)", ", ".join(cert.get("fields") or ()) or DASH),
        ("Method (方法)", cert.get("method") or DASH),
        ("Key versions destroyed (破棄した鍵)", ", ".join(str(v) for v in cert.get("key_versions_destroyed") or ())
         or DASH),
        ("Ordered by (指示者)", d["ordered_by"]),
        ("Reason (理由)", d["reason"]),
        ("Ordered (指示日時)", fmt_time(d.get("created_at"))),
        ("Completed (完了日時)", fmt_time(d.get("completed_at"))),
        ("Confirmed (確認)", ", ".join(f"{k}={v}" for k, v in checks.items()) or DASH),
        ("Confirmed by (確認者)", f"{d['confirmed_by']} {fmt_time(d.get('confirmed_at'))}" if d.get("confirmed_by")
         else "not yet (hogo certificate confirm ID)"),
    ]
    if cert.get("retention_rule"):
        rows.append(("Retention rule (保存期間)", json.dumps(cert["retention_rule"], ensure_ascii=False)))
    for a in d.get("attachments") or ():
        rows.append(("Contractor's certificate (委託先の証明)", f"{a['contractor']}: {a['filename']} "
                                                          f"sha256 {a['sha256']}"))
    return rows


def _show(out: Output, d: dict[str, Any], message: str | None = None) -> None:
    def human(c: Console) -> None:
        if message:
            out.say(message, style="green")
        c.print(kv_table(_rows(d)))

    out.emit(d, human)


@command(record_app, "erase")
def record_erase(file: FileArg, record_id: RecordArg, reason: ReasonOpt, purpose: PurposeOpt,
                 json_out: JsonOpt = False) -> None:
    """Erase a record irrecoverably (crypto-shredding; needs a 'delete' grant for PURPOSE) and print its
    signed deletion certificate."""
    out = Output(json_out)
    with api() as client:
        d = client.post(path("/files/{}/records/{}/erase", file, record_id), body={"reason": reason},
                        headers=purpose_header(purpose), options={**PURPOSE_OPTIONS, "reason": "--reason"})
    _show(out, d, f"Erased record {record_id} from {file}: certificate #{d['id']}.")


@command(file_app, "erase")
def file_erase(file: FileArg, reason: ReasonOpt,
               yes: Annotated[bool, opt("--yes", help="Do not ask for confirmation.")] = False,
               json_out: JsonOpt = False) -> None:
    """Erase a whole file: every key destroyed, every record purged (the ledger entry stays, marked erased);
    prints the signed deletion certificate. Its protection manager or the general protection manager only."""
    out = Output(json_out)
    if not yes and not json_out and os.isatty(0):
        typer.confirm(f"Erase every record of {file} irrecoverably?", abort=True)
    with api() as client:
        d = client.post(path("/files/{}/erase", file), body={"reason": reason}, options={"reason": "--reason"})
    _show(out, d, f"Erased file {file} ({d['record_count']} record(s)): certificate #{d['id']}.")


@command(certificate_app, "list")
def certificate_list(
    file: Annotated[str | None, opt("--file", metavar="FILE", help="Only this file's.")] = None,
    limit: Annotated[int, opt("--limit", metavar="N", help="At most this many (1–1000).", show_default=True)] = 200,
    json_out: JsonOpt = False,
) -> None:
    """Deletion certificates, newest first."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/certificates", params={"file": file, "limit": limit},
                          options={"file": "--file", "limit": "--limit"})

    def human(c: Console) -> None:
        if not rows:
            out.say("No deletion certificates (消去証明はありません).")
            return
        c.print(table(["ID", "Kind", "Status", "File", "Records", "Ordered by", "Completed"],
                      [[d["id"], KIND_JA.get(d["kind"], d["kind"]), d["status"], d["file"], d["record_count"],
                        d["ordered_by"], fmt_time(d.get("completed_at"))] for d in rows]))

    out.emit(rows, human)


@command(certificate_app, "show")
def certificate_show(
    deletion_id: IdArg,
    out_file: Annotated[Path | None, opt("--out", metavar="FILE",
                                         help="Also write the certificate and its signature to FILE, to verify "
                                              "offline with 'hogo certificate verify FILE --key KEY'.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """One deletion certificate."""
    out = Output(json_out)
    with api() as client:
        d = client.get(f"/certificates/{deletion_id}")
    if out_file is not None:
        if not d.get("certificate"):
            raise CliError(f"certificate #{deletion_id} is not signed yet (status {d['status']})",
                           code="not_complete", exit_code=6)
        exported = {"certificate": d["certificate"], "signature": d["signature"]}
        if d.get("confirmation"):
            exported["confirmation"] = d["confirmation"]
        out_file.write_text(json.dumps(exported, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    _show(out, d, f"Wrote {out_file}." if out_file else None)


@command(certificate_app, "verify")
def certificate_verify(
    cert_file: Annotated[Path, typer.Argument(metavar="FILE", help="A certificate from 'hogo certificate show "
                                                                   "ID --out FILE'.")],
    key: Annotated[str, opt("--key", metavar="KEY", help="The log's verifier key (or a file holding it), pinned "
                                                        "from 'hogo audit public-key'.")],
    json_out: JsonOpt = False,
) -> None:
    """Check a deletion certificate offline: its signature by the pinned key, and that its content is what
    was signed. Exit 10 with the reason if not."""
    from hogo.services.erasure import CertificateInvalid, verify_certificate

    out = Output(json_out)
    try:
        text = cert_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise usage_error(f"cannot read the certificate file {cert_file}: {exc}") from None
    kp = Path(key)
    try:
        key_text = kp.read_text(encoding="utf-8").strip() if kp.exists() else key.strip()
    except OSError as exc:
        raise usage_error(f"cannot read the key file {kp}: {exc.strerror}") from None
    try:
        res = verify_certificate(text, key_text)
    except CertificateInvalid as exc:
        raise CliError(f"the certificate is NOT valid: {exc}", code="certificate_invalid",
                       exit_code=EXIT_TAMPERED) from None
    confirmed = f"; confirmed by {res['confirmed_by']}" if res.get("confirmed_by") else ""
    out.emit(res, lambda c: out.say(
        f"OK: certificate #{res['id']} ({res['file']}, {res['record_count']} record(s), completed "
        f"{res['completed_at']}) is signed by {res['key']} and unchanged{confirmed}.", style="green"))


@command(certificate_app, "confirm")
def certificate_confirm(deletion_id: IdArg, json_out: JsonOpt = False) -> None:
    """Confirm a completed erasure as a second person (the file's protection manager, the general protection
    manager or an auditor; never the one who ordered it). hogo checks again and signs the confirmation."""
    out = Output(json_out)
    with api() as client:
        d = client.post(f"/certificates/{deletion_id}/confirm")
    _show(out, d, f"Confirmed deletion certificate #{deletion_id}.")


@command(certificate_app, "attach")
def certificate_attach(
    deletion_id: IdArg,
    file: Annotated[Path, opt("--file", metavar="PDF", help="The contractor's certificate file.")],
    contractor: Annotated[str, opt("--contractor", metavar="NAME", help="The contractor (委託先).")],
    json_out: JsonOpt = False,
) -> None:
    """Attach a contractor's deletion certificate (ANON-10): kept with its SHA-256, linked to this one."""
    out = Output(json_out)
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise usage_error(f"cannot read {file}: {exc.strerror}") from None
    with api() as client:
        d = client.post(f"/certificates/{deletion_id}/attachments", content=content,
                        params={"contractor": contractor, "filename": file.name},
                        headers={"Content-Type": "application/octet-stream"},
                        options={"contractor": "--contractor", "file": "--file"})
    out.emit(d, lambda c: out.say(f"Attached {d['filename']} from {d['contractor']} to certificate "
                                  f"#{deletion_id} (sha256 {d['sha256']}).", style="green"))


@command(retention_app, "run")
def retention_run(
    dry_run: Annotated[bool, opt("--dry-run", help="List what is due, per file; erase nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Dispose of the records past their retention in the files you manage, each batch with a certificate."""
    out = Output(json_out)
    with api() as client:
        d = client.post("/retention/run", params={"dry_run": "true" if dry_run else None})

    def human(c: Console) -> None:
        if not d["files"]:
            out.say(f"Nothing is due for disposal on {d['date']} (廃棄対象はありません).")
            return
        c.print(table(["File", "Name", "Due (件数)", "Retention"],
                      [[f["file"], f["name"], f["due"], f"{f['rule']['retention_days']} days from "
                        f"{f['rule']['runs_from']}"] for f in d["files"]]))
        if dry_run:
            out.say("Dry run: nothing was erased.")
        else:
            out.say(f"Erased {d['erased']} record(s); certificates: "
                    + ", ".join(f"#{i}" for i in d["certificates"]), style="green")

    out.emit(d, human)
