"""``hogo record export`` (through the server) and ``hogo package`` (offline): copies of records that leave hogo
and the marks that go with them (SEC-46(1), SEC-47, SEC-48, SEC-49, MN-5c, MN-6d).

* ``hogo record export FILE --purpose P --fields a,b --out PATH`` — a plain CSV, when the file's marks allow an
  unencrypted copy. The marks are printed and written next to it (``PATH.marks.json``, 明示). Refused with the
  reason (Japanese and English) when a restriction forbids it; confidentiality 3 and encryption-required files
  leave hogo only as a package of an approved take-out.
* ``hogo package keygen|verify|open`` — for the recipient of a package, no server needed. ``verify`` and ``open``
  pin hogo's verifier key (``--key``, or ``HOGO_VERIFIER_KEY``): the ``hogo.log/…`` key that signs the log, shown by
  ``hogo audit`` and the administrator (README "Verifying records of integrity-2 files"); a package re-signed
  with any other key is refused. The passphrase of a passphrase package is read from a file or asked for, never
  taken on the command line.

Registered in ``hogo.cli.main``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.text import Text

from hogo.cli.client import EXIT_TAMPERED, CliError, path, usage_error
from hogo.cli.command import JsonOpt, api, command, command_group
from hogo.cli.data import FileArg, PurposeOpt, _pairs, marking, purpose_header, record_app
from hogo.cli.output import Output, kv_table

package_app = command_group("package", "Take-out packages (持出しパッケージ): make a recipient key, verify and open a "
                                       "package — offline, no server needed (SEC-47, SEC-49).")
EXPORT_TIMEOUT = httpx.Timeout(1800.0, connect=30.0)


class ExportEncoding(StrEnum):
    UTF8 = "utf-8"
    UTF8_BOM = "utf-8-bom"
    SHIFT_JIS = "shift_jis"


def _marks_line(label: str, label_ja: str | None = None) -> Text:
    line = Text("格付・取扱制限 marks: ", style="bold")
    line.append(label, style="bold red")
    if label_ja:
        line.append(f"\n  {label_ja}", style="red")
    return line


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@command(record_app, "export")
def record_export(
    file: FileArg,
    purpose: PurposeOpt,
    out_path: Annotated[Path, typer.Option("--out", "-o", metavar="PATH", help="The CSV to write (created 0600; "
                                                                                "never overwritten).")],
    fields: Annotated[list[str] | None, typer.Option(
        "--fields", "-f", metavar="A,B", help="The fields to export (comma-separated or repeated; default: every "
                                              "field your export grant covers).")] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", "-w", metavar="FIELD=VALUE", help="Only records whose indexed field equals VALUE (repeatable; "
                                                     "sent in the request body).")] = None,
    records: Annotated[list[str] | None, typer.Option(
        "--record", metavar="ID", help="Only these records (comma-separated or repeated).")] = None,
    reveal: Annotated[list[str] | None, typer.Option(
        "--reveal", metavar="FIELD", help="Export this identification code unmasked (needs a 'reveal' grant).")
    ] = None,
    encoding: Annotated[ExportEncoding, typer.Option("--encoding", case_sensitive=False, show_default=True,
                                                     help="utf-8, utf-8-bom (for spreadsheets) or shift_jis.")
                        ] = ExportEncoding.UTF8,
    publish: Annotated[bool, typer.Option("--publish", help="An unencrypted copy for the public: only for "
                                                            "confidentiality-1 files (SEC-48(1)).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """A CSV of FILE's records for PURPOSE, through the guard (needs an 'export' grant, ANON-7). The marks are
    shown and written to PATH.marks.json (明示, SEC-46(1)); a file whose marks forbid an unencrypted copy is
    refused with the reason (SEC-47, SEC-48(2)). The export is recorded with every record ID (MN-3b)."""
    out = Output(json_out)
    marks_path = out_path.with_name(out_path.name + ".marks.json")
    for p in (out_path, marks_path):
        if p.exists() or p.is_symlink():
            raise usage_error(f"{p} exists already; choose another --out", code="bad_file")
    if not out_path.parent.is_dir() or not os.access(out_path.parent, os.W_OK | os.X_OK):
        raise usage_error(f"cannot write in {out_path.parent}", code="bad_file")
    body: dict[str, Any] = {"fields": _split(fields) or None, "where": _pairs(where or [], "--where",
                                                                            allow_empty_value=False) or None,
                            "record_ids": _split(records) or None, "reveal": _split(reveal),
                            "encoding": encoding.value, "publish": publish}
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh, api() as client:
            headers = client.download("POST", path("/files/{}/records/export", file), fh.write, body=body,
                                      headers=purpose_header(purpose), timeout=EXPORT_TIMEOUT,
                                      options={"purpose": "--purpose", "header": "--purpose", "fields": "--fields",
                                               "where": "--where", "record_ids": "--record", "reveal": "--reveal",
                                               "encoding": "--encoding"})
            fh.flush()
            os.fsync(fh.fileno())
        marks = json.loads(headers.get("X-Hogo-Marks") or "{}")
        if not marks.get("marks"):
            raise CliError("the server sent no marks with the export; nothing was kept", code="bad_response")
        fd2 = os.open(marks_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd2, "w", encoding="utf-8") as mf:
            json.dump(marks, mf, ensure_ascii=False, indent=1, sort_keys=True)
        try:
            os.link(tmp, out_path)  # never over a file that appeared meanwhile
        except FileExistsError:
            raise usage_error(f"{out_path} exists already; choose another --out", code="bad_file") from None
        except OSError:  # no hard links on this file system (e.g. FAT media)
            os.replace(tmp, out_path)
    except BaseException:
        with contextlib.suppress(OSError):
            if marks_path.exists() and not out_path.exists():
                marks_path.unlink()
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    data = {"file": marks["file"], "path": str(out_path), "marks_file": str(marks_path),
            "records": marks["record_count"], "marks": marks["marks"], "label": marks["label"],
            "label_ja": marks["label_ja"], "masked": marks["masked"]}

    def human(c: Console) -> None:
        c.print(_marks_line(marks["label"], marks["label_ja"]), soft_wrap=True)
        m = marks["marks"]
        c.print(marking(m["label"], m["restrictions"]), soft_wrap=True)
        out.say(f"{marks['record_count']} record(s) of {marks['file']} exported to {out_path} "
                f"(marks in {marks_path.name}).")
        if marks["masked"]:
            out.say(f"Masked: {', '.join(marks['masked'])}.")

    out.emit(data, human)


# ------------------------------------------------------------------------------------------- packages

KeyOpt = Annotated[str | None, typer.Option(
    "--key", metavar="KEY|FILE", envvar="HOGO_VERIFIER_KEY",
    help="hogo's verifier key (hogo.log/…+…+…), or a file holding it; a package signed by another key is refused.")]


def _verifier_key(value: str | None) -> str:
    if not value:
        raise usage_error("give hogo's verifier key with --key (or HOGO_VERIFIER_KEY): without it a re-signed "
                          "package cannot be told from a genuine one")
    candidate = Path(value)
    with contextlib.suppress(OSError):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").strip()
    return value.strip()


def _package_error(exc: Exception) -> CliError:
    from hogo.crypto.package import PackageError

    what = exc.what if isinstance(exc, PackageError) else "package"
    return CliError(f"the package is refused — {exc}", exit_code=EXIT_TAMPERED, code=f"package_{what}".replace(
        " ", "_"), details={"failed": what},
                    hint="do not use its content; ask the sender for a new package")


def _manifest_rows(m: dict[str, Any]) -> list[tuple[str, Any]]:
    r = m.get("recipient") or {}
    return [("Tracking ID 管理番号", m.get("tracking_id")), ("File", f"{m.get('file')} {m.get('file_name') or ''}"),
            ("Marks 格付・取扱制限", m.get("marks_label")), ("", m.get("marks_label_ja")),
            ("Purpose 利用目的", m.get("purpose")), ("Records", m.get("record_count")),
            ("Fields", ", ".join(m.get("fields") or [])), ("Masked", ", ".join(m.get("masked") or []) or "-"),
            ("Created", f"{m.get('created')} by {m.get('created_by')}"),
            ("Recipient", f"{r.get('id')}" + (f" ({r['name']})" if r.get("name") else "")),
            ("Take-out", m.get("takeout_id") or "-"), ("Due 返却・廃棄期限", m.get("due") or "-"),
            ("Open once 読後廃棄", "yes" if m.get("open_once") else "no"), ("Signed by", m.get("signed_by"))]


@command(package_app, "keygen")
def package_keygen(
    out_path: Annotated[Path, typer.Option("--out", "-o", metavar="KEY", help="Where to write the private key "
                                                                                "(created 0600, never overwritten).")],
    json_out: JsonOpt = False,
) -> None:
    """A recipient key pair (P-256): the private key in KEY (keep it; it opens the packages made for you) and the
    public key, printed and written to KEY.pub, to give to the sender of a take-out."""
    from hogo.crypto import package as pkg

    out = Output(json_out)
    pub_path = out_path.with_name(out_path.name + ".pub")
    for p in (out_path, pub_path):
        if p.exists() or p.is_symlink():
            raise usage_error(f"{p} exists already; refusing to overwrite key material", code="bad_file")
    try:
        public = pkg.write_identity(out_path)
        pub_path.write_text(public + "\n", encoding="utf-8")
    except OSError as exc:
        raise usage_error(f"cannot write {out_path}: {exc.strerror or type(exc).__name__}", code="bad_file") from None
    data = {"private_key": str(out_path), "public_key": public, "public_key_file": str(pub_path)}

    def human(c: Console) -> None:
        out.say(f"Private key written to {out_path} (0600). Keep it secret; it opens your packages.")
        out.secret("Public key (give this to the sender)", public)

    out.emit(data, human)


@command(package_app, "verify")
def package_verify(
    package: Annotated[Path, typer.Argument(metavar="PATH", help="The package file.")],
    key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a package without opening it: hogo's signature (pinned --key), the manifest and every chunk. Exit 10
    with the reason when anything was altered, cut off, reordered or re-signed."""
    from hogo.crypto import package as pkg

    out = Output(json_out)
    pinned = _verifier_key(key)
    try:
        v = pkg.verify_package(package, pinned)
    except FileNotFoundError:
        raise usage_error(f"no file {package}", code="bad_file") from None
    except pkg.PackageError as exc:
        raise _package_error(exc) from None
    data = {"valid": True, "path": str(package), "size": v.size, "manifest": v.manifest}

    def human(c: Console) -> None:
        out.say("The package is intact and signed by hogo.", style="bold green")
        c.print(kv_table(_manifest_rows(v.manifest)))

    out.emit(data, human)


@command(package_app, "open")
def package_open(
    package: Annotated[Path, typer.Argument(metavar="PATH", help="The package file.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Where to write the CSV and its marks.")],
    identity: Annotated[Path | None, typer.Option("--identity", "-i", metavar="KEY",
                                                  help="Your private key (hogo package keygen).")] = None,
    passphrase_file: Annotated[Path | None, typer.Option(
        "--passphrase-file", metavar="F", help="A file holding the passphrase (its first line).")] = None,
    ask_passphrase: Annotated[bool, typer.Option("--ask-passphrase", help="Ask for the passphrase.")] = False,
    key: KeyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify, then decrypt a package into DIR: the CSV and its marks (.marks.json). Nothing is written unless
    every check holds. A package marked destroy-after-reading (読後廃棄) is deleted once opened — hogo trusts
    you, the recipient, to dispose of the CSV as its marks say."""
    from hogo.crypto import package as pkg

    out = Output(json_out)
    pinned = _verifier_key(key)
    given = [x for x in (identity is not None, passphrase_file is not None, ask_passphrase) if x]
    if len(given) != 1:
        raise usage_error("give exactly one of --identity, --passphrase-file or --ask-passphrase")
    try:
        private = pkg.load_identity(identity.read_bytes()) if identity is not None else None
        secret: str | None = None
        if passphrase_file is not None:
            secret = passphrase_file.read_text(encoding="utf-8").splitlines()[0] if passphrase_file.stat(
            ).st_size else ""
        elif ask_passphrase:
            if not sys.stdin.isatty():
                secret = sys.stdin.readline().rstrip("\r\n")
            else:
                secret = getpass.getpass("Package passphrase: ")
        opened = pkg.open_package(package, public_key_text=pinned, out_dir=out_dir, identity=private,
                                  passphrase=secret)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise usage_error(f"cannot read {exc.filename}", code="bad_file") from None
    except pkg.PackageError as exc:
        if exc.what in ("identity", "recipient", "output", "passphrase"):
            raise CliError(str(exc), code=f"package_{exc.what}", details={"failed": exc.what}) from None
        raise _package_error(exc) from None
    m = opened.manifest
    data = {"path": str(opened.data_path), "marks_file": str(opened.marks_path), "disposed": opened.disposed,
            "manifest": m}

    def human(c: Console) -> None:
        c.print(_marks_line(str(m.get("marks_label")), m.get("marks_label_ja")), soft_wrap=True)
        out.say(f"{m.get('record_count')} record(s) of {m.get('file')} written to {opened.data_path} "
                f"(marks in {opened.marks_path.name}).")
        if m.get("due"):
            out.say(f"Return or dispose of it by {m['due']} (返却・廃棄期限).")
        if opened.disposed:
            out.say("The package was destroy-after-reading (読後廃棄): it has been deleted.", style="bold")

    out.emit(data, human)


__all__ = ["package_app", "record_export"]
