"""Exports and take-out packages (SEC-46..49, MN-5c, MN-6d, ANON-7, SEC-5 table 1).

Both go through the guard's one bulk-export path (``guard.export_records``): the export grant decides, the file's
marks decide whether this use is allowed at all (a refusal is logged with its reason), and one access entry
listing every record is committed before any value is decrypted.

* ``write_csv`` — a plain CSV for files whose marks allow an unencrypted copy (``hogo record export``); the marks
  go with it (明示, SEC-46(1)).
* ``build_package`` — an encrypted, signed package (hogo.crypto.package) for one recipient, built for an approved
  take-out (services of the take-out workflow call it; there is deliberately no route that builds a package
  without one).

Packages are tracked by their tracking ID: it is in the access entry of the export (``details.package``), in the
signed manifest, and in the caller's take-out record together with the package's SHA-256 returned here.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from hogo.bootstrap import Hogo
from hogo.crypto import package as pkg
from hogo.domain import handling
from hogo.errors import ValidationFailed
from hogo.services import audit_tree, guard
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal

CSV_ENCODINGS = {"utf-8": "utf-8", "utf-8-bom": "utf-8-sig", "utf-8-sig": "utf-8-sig", "shift_jis": "cp932",
                 "sjis": "cp932", "cp932": "cp932"}
PACKAGE_SUFFIX = ".hogopkg"
_ROWS_PER_PIECE = 1000


def csv_pieces(stream: guard.ExportStream, *, encoding: str = "utf-8") -> Iterator[bytes]:
    """The export as CSV bytes, a batch of rows at a time (header first: ``record_id`` and the fields).

    ``encoding``: utf-8, utf-8-bom (for spreadsheet programs) or shift_jis (CP932); a value that Shift_JIS cannot
    represent stops the export with the record and field named, rather than writing a '?'."""
    codec = CSV_ENCODINGS.get(encoding.strip().lower())
    if codec is None:
        raise ValidationFailed(f"unknown encoding {encoding!r} (use utf-8, utf-8-bom or shift_jis)", field="encoding")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(stream.columns)
    first = True
    for n, row in enumerate(stream.rows(), 1):
        w.writerow(row)
        if n % _ROWS_PER_PIECE == 0:
            yield _encode(buf, codec, first, stream.columns)
            first = False
    yield _encode(buf, codec, first, stream.columns)


def _encode(buf: io.StringIO, codec: str, first: bool, columns: Sequence[str]) -> bytes:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    try:
        data = text.encode("utf-8" if codec == "utf-8-sig" else codec)
    except UnicodeEncodeError as exc:
        line = text[:exc.start].count("\n")
        raise ValidationFailed(f"a value cannot be written in Shift_JIS (row {line} of this batch); "
                               "export in UTF-8 instead", field="encoding") from None
    return (b"\xef\xbb\xbf" + data) if (first and codec == "utf-8-sig") else data


def marks_document(stream: guard.ExportStream, *, exported_by: str, exported_at: dt.datetime,
                   **more: Any) -> dict[str, Any]:
    """What goes with every copy (the ``.marks.json`` sidecar, the API's X-Hogo-Marks): the marks (明示)."""
    m: handling.Marks = stream.marks
    return {"file": stream.file, "file_name": stream.file_name, "marks": m.to_dict(), "label": m.label,
            "label_ja": m.label_ja, "open_once": m.open_once, "purpose": stream.purpose, "fields": list(stream.fields),
            "masked": list(stream.masked), "record_count": stream.count, "exported_by": exported_by,
            "exported_at": exported_at.isoformat(), **more}


# ------------------------------------------------------------------------------------------- packages


@dataclasses.dataclass(frozen=True)
class PackageInfo:
    tracking_id: str
    path: Path
    sha256: str  # of the whole package file, for the take-out record
    size: int
    record_count: int
    marks: handling.Marks
    manifest: dict[str, Any]
    verifier_key: str  # hogo's log key, which the recipient pins to verify the package


def new_tracking_id(now: dt.datetime) -> str:
    return f"PKG-{now.astimezone(dt.UTC):%Y%m%d}-{secrets.token_hex(5).upper()}"


def _recipient(recipient: str | pkg.Recipient, kind: str | None) -> pkg.Recipient:
    if isinstance(recipient, pkg.Recipient):
        return recipient
    if kind is None:
        kind = "key" if recipient.strip().startswith(pkg.PUBLIC_KEY_PREFIX + "+") else "passphrase"
    try:
        if kind == "key":
            return pkg.Recipient.of(recipient)
        if kind == "passphrase":
            return pkg.Recipient(passphrase=recipient)
    except pkg.PackageError as exc:
        raise ValidationFailed(str(exc), field="recipient") from None
    raise ValidationFailed("the recipient kind is 'key' or 'passphrase'", field="recipient")


def build_package(hogo: Hogo, principal: Principal, file_code: str, *, fields: Sequence[str] | None,
                  selection: guard.ExportSelection | Sequence[str] | Mapping[str, str] | None, purpose: str,
                  recipient: str | pkg.Recipient, out_path: Path, takeout_id: int | str | None = None,
                  due: dt.date | dt.datetime | None = None, outside_scope: bool = False, ctx: RequestContext,
                  recipient_kind: str | None = None, recipient_name: str | None = None,
                  reveal: Sequence[str] = ()) -> PackageInfo:
    """Build an encrypted, signed take-out package of records (SEC-47, SEC-48(2), SEC-49, MN-5c, MN-6d).

    Stable signature — the take-out workflow calls exactly this once a take-out is approved:

    * ``fields`` — the columns (None: every field the requester's export grants cover);
    * ``selection`` — record IDs (a list), exact-match conditions on indexed fields (a mapping), a
      ``guard.ExportSelection``, or None for every record in the requester's scope;
    * ``purpose`` — the declared purpose (must be the file's and granted);
    * ``recipient`` — a recipient public key text (``hogo-p256+…``, from ``hogo package keygen``) or a passphrase
      to be handed over through another channel (at least 12 characters); ``recipient_kind`` ('key' or
      'passphrase') forces the reading, else a text starting with ``hogo-p256+`` is a key;
    * ``out_path`` — where the package is written (atomically: a temporary file renamed when complete; nothing
      is left on failure; an existing file is not overwritten);
    * ``takeout_id``, ``due`` (return/disposal date), ``recipient_name`` — recorded in the signed manifest;
    * ``outside_scope`` — the package goes outside the information's viewing scope (provision): no-distribution
      marks refuse it.

    The guard decides with the ``export`` action, enforces the marks with ``Use.PACKAGE, encrypted=True`` (no-copy
    and no-take-out refuse; the refusal is logged) and records one access entry (``data:record:export``, details
    ``use=package``, ``package=<tracking ID>``, ``takeout``) listing every record before anything is decrypted.
    The manifest carries the marks, ``open_once`` for destroy-after-reading, and is signed with hogo's log key.
    Raises guard.ExportRefused (Forbidden) when the marks forbid it, Forbidden when the grants do, ValidationFailed
    for bad input. Returns the tracking ID, path, SHA-256, size, record count and marks."""
    who = _recipient(recipient, recipient_kind)
    out_path = Path(out_path)
    if out_path.exists():
        raise ValidationFailed(f"{out_path} exists already; refusing to overwrite it", field="out_path")
    if not out_path.parent.is_dir():
        raise ValidationFailed(f"no directory {out_path.parent}", field="out_path")
    now = hogo.clock.now()
    tracking = new_tracking_id(now)
    details: dict[str, Any] = {"package": tracking, "recipient": who.description}
    if takeout_id is not None:
        details["takeout"] = takeout_id
    stream = guard.export_records(hogo, principal, file_code, fields=fields, selection=selection, purpose=purpose,
                                  use=handling.Use.PACKAGE, encrypted=True, outside_scope=outside_scope,
                                  reveal=reveal, ctx=ctx, extra=details)
    key = audit_tree.log_key(hogo)
    manifest = {
        **marks_document(stream, exported_by=principal.username, exported_at=now),
        "marks_label": stream.marks.label, "marks_label_ja": stream.marks.label_ja,
        "tracking_id": tracking, "created": now.isoformat(), "created_by": principal.username,
        "recipient": {"kind": "key" if who.public_key is not None else "passphrase", "id": who.description,
                      "name": recipient_name},
        "due": due.isoformat() if due is not None else None,
        "takeout_id": takeout_id, "content_type": "text/csv; charset=utf-8", "columns": list(stream.columns),
        "revealed": list(stream.revealed), "signed_by": key.name,
    }
    tmp = out_path.with_name(f".{out_path.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            written = write_package(out, stream, package_id=tracking, recipient=who, manifest=manifest, signer=key)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, out_path)  # fails rather than overwrite a file that appeared meanwhile
        except FileExistsError:
            raise ValidationFailed(f"{out_path} exists already; refusing to overwrite it", field="out_path") from None
        except OSError:  # no hard links (e.g. FAT removable media): rename, after checking again
            if out_path.exists():
                raise ValidationFailed(f"{out_path} exists already; refusing to overwrite it",
                                       field="out_path") from None
            os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return PackageInfo(tracking, out_path, written.sha256, written.size, written.manifest["record_count"],
                       stream.marks, written.manifest, key.verifier_key)


def write_package(out: BinaryIO, stream: guard.ExportStream, *, package_id: str, recipient: pkg.Recipient,
                  manifest: Mapping[str, Any], signer: pkg.LogSigner, chunk_size: int = pkg.CHUNK_SIZE
                  ) -> pkg.Written:
    """Stream an export into a package (the CSV in UTF-8 with BOM, so spreadsheet programs read it)."""
    w = pkg.PackageWriter(out, package_id=package_id, recipient=recipient, chunk_size=chunk_size)
    for piece in csv_pieces(stream, encoding="utf-8-bom"):
        w.write(piece)
    # The rows written (a record deleted after the export was decided is not in it).
    return w.finish({**manifest, "record_count": stream.exported}, signer)


__all__ = ["CSV_ENCODINGS", "PACKAGE_SUFFIX", "PackageInfo", "build_package", "csv_pieces", "marks_document",
           "new_tracking_id", "write_package"]
