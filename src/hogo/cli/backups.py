"""``hogo backup``: backups of the database and, separately, of key material (ANON-19, SEC-51, SEC-151(3)).

``create``, ``list``, ``verify ID`` and ``prune`` go through the server (administrators; the targets are
directories on the server's host). ``restore``, ``verify --from DIR``, ``keys`` and ``restore-keys`` are
local, on the data directory (``--data-dir``): a restore only while no server runs on it. Passphrases
are read from a file (``-``: stdin) or a hidden prompt, never from the command line.

Exit codes are those of ``hogo.cli.client``; a backup refused as tampered, truncated or re-signed
exits with 10.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hogo.cli.client import EXIT_TAMPERED, EXIT_UNAVAILABLE, CliError, from_hogo_error, path, usage_error
from hogo.cli.command import JsonOpt, api, command, command_group, opt
from hogo.cli.output import DASH, Output, fmt_time, kv_table, table
from hogo.errors import HogoError

backup_app = command_group("backup", "Backups: encrypted, signed, kept apart, retained and disposed of "
                                     "(ANON-19, SEC-51); key material separately (SEC-151).")

DataDirOpt = Annotated[Path | None, opt("--data-dir", metavar="DIR",
                                        help="Instance data directory (default: $HOGO_DATA_DIR, else ./hogo-data).")]
PassphraseOpt = Annotated[str | None, opt(
    "--passphrase-file", metavar="FILE",
    help="The instance key file's passphrase, when it is sealed ('-' for stdin; else $HOGO_KEY_PASSPHRASE, "
         "else a prompt).")]
KeyOpt = Annotated[str | None, opt("--key", metavar="KEY|FILE",
                                   help="The instance's verifier key you pinned (default: the instance's own).")]


def _size(n: Any) -> str:
    if n is None:
        return DASH
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _show(out: Output, b: dict[str, Any], message: str | None = None) -> None:
    if message:
        out.say(message)
    v = b.get("verification") or {}
    out.console.print(kv_table([
        ("ID", b["id"]), ("Kind", b["kind"]), ("Status", b["status"]), ("Engine", b["engine"]),
        ("Method", b["method"]), ("Places", "\n".join(b["targets"])), ("Size", _size(b["size_bytes"])),
        ("Log entries", b.get("log_size") if b.get("log_size") is not None else DASH),
        ("Importance", b["importance"]), ("Created", f"{fmt_time(b['created_at'])} by {b['created_by']}"),
        ("Kept until", f"{fmt_time(b['expires_at'])} ({b['retention_days']} days)"),
        ("Verified", f"{fmt_time(b['verified_at'])}: {'ok' if v.get('ok') else 'FAILED'}" if b.get("verified_at")
         else DASH),
        ("Disposed", fmt_time(b["disposed_at"]) if b.get("disposed_at") else DASH),
    ]))


def _local(fn: Any) -> Any:
    try:
        return fn()
    except HogoError as exc:
        err = from_hogo_error(exc)
        if exc.code in ("backup_tampered", "backup_truncated", "backup_bad_signature", "backup_corrupt"):
            err.exit_code = EXIT_TAMPERED
        raise err from None


def _build(data_dir: Path | None, passphrase_file: str | None) -> Any:
    from hogo.bootstrap import build
    from hogo.cli.main import _key_passphrase, _settings
    from hogo.crypto.keys import is_sealed
    from hogo.services.instance import is_initialised

    settings = _settings(data_dir)
    if not is_initialised(settings):
        raise CliError(f"no hogo instance in {settings.data_dir}", exit_code=EXIT_UNAVAILABLE,
                       code="not_initialised", hint="pass --data-dir")
    passphrase = _key_passphrase(passphrase_file) if is_sealed(settings.keys_dir) else None
    return _local(lambda: build(settings, passphrase=passphrase))


def _key_text(key: str | None) -> str | None:
    if key is None:
        return None
    p = Path(key)
    return p.read_text(encoding="utf-8").strip() if p.exists() else key.strip()


def _backup_passphrase(source: str | None, *, confirm: bool) -> str:
    from hogo.cli.main import read_secret

    return read_secret(source, "key backup passphrase", confirm=confirm)


@command(backup_app, "create")
def backup_create(
    out_dirs: Annotated[list[Path], opt("--out", metavar="DIR",
                                        help="A directory to keep it in, on the server's host, apart from the data "
                                             "directory; repeat for more places (ANON-19).")],
    importance: Annotated[str | None, opt("--importance", metavar="LEVEL",
                                          help="critical (365 days), high (90), normal (30) or low (7): how long "
                                               "it is kept (SEC-51); default high when a file is of availability "
                                               "2, else normal.")] = None,
    retention_days: Annotated[int | None, opt("--retention-days", metavar="N",
                                              help="Keep it this many days instead.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Back the database up (online, one consistent snapshot), encrypted and signed, into every --out."""
    out = Output(json_out)
    body = {"targets": [str(d.expanduser().absolute()) for d in out_dirs], "importance": importance,
            "retention_days": retention_days}
    with api() as client:
        b = client.post("/backups", body=body, timeout=3600.0)
    out.emit(b, lambda c: _show(out, b, f"Backup {b['id']} made in {len(b['targets'])} place(s)."))


@command(backup_app, "list")
def backup_list(json_out: JsonOpt = False) -> None:
    """The catalog: every backup, where it is kept, until when, verified, disposed of (SEC-51)."""
    out = Output(json_out)
    with api() as client:
        rows = client.get("/backups")
    out.emit(rows, lambda c: c.print(table(
        ["ID", "Kind", "Status", "Created", "Size", "Kept until", "Places"],
        [[b["id"], b["kind"], b["status"], fmt_time(b["created_at"]), _size(b["size_bytes"]),
          fmt_time(b["expires_at"]), "\n".join(b["targets"])] for b in rows])))


def _show_verification(out: Output, r: dict[str, Any]) -> None:
    recs = r.get("records") or {}
    out.console.print(kv_table([
        ("Backup", r.get("backup_id") or DASH), ("Place", r.get("directory") or DASH),
        ("Result", "ok" if r["ok"] else "FAILED"),
        ("Log", f"{r['log']['entries']} entries, verified" if r.get("log", {}).get("ok") else "FAILED"),
        ("Records", f"{recs.get('decrypted', 0)} of {recs.get('sampled', 0)} sampled decrypted"
                    + (f", {recs['key_destroyed']} with their key destroyed" if recs.get("key_destroyed") else "")),
        ("Problems", "\n".join(p["message"] for p in r.get("problems", [])) or DASH),
    ]))


@command(backup_app, "verify")
def backup_verify(
    backup_id: Annotated[str | None, typer.Argument(metavar="ID", help="A backup of the catalog.")] = None,
    from_dir: Annotated[Path | None, opt(
        "--from", metavar="DIR", help="Verify the backup in this directory, locally (with --data-dir).")] = None,
    sample: Annotated[int, opt("--sample", metavar="N", help="Records to decrypt.", show_default=True)] = 20,
    data_dir: DataDirOpt = None,
    key: KeyOpt = None,
    passphrase_file: PassphraseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore into a scratch place and check it: signature, every chunk, the log, a sample of records."""
    out = Output(json_out)
    if (backup_id is None) == (from_dir is None):
        raise usage_error("give a backup ID (through the server) or --from DIR (locally)")
    if backup_id is not None:
        with api() as client:
            r = client.post(path("/backups/{}/verify", backup_id), body={"sample": sample}, timeout=3600.0)
    else:
        from hogo.services import backups

        hogo = _build(data_dir, passphrase_file)
        try:
            r = _local(lambda: backups.verify_backup(hogo, None, directory=from_dir, sample=sample,
                                                     public_key_text=_key_text(key)))
        finally:
            hogo.close()
    out.emit(r, lambda c: _show_verification(out, r))
    if not r["ok"]:
        raise typer.Exit(EXIT_TAMPERED)


@command(backup_app, "prune")
def backup_prune(json_out: JsonOpt = False) -> None:
    """Dispose of expired backups: delete them from every place, and record it (SEC-51(3))."""
    out = Output(json_out)
    with api() as client:
        r = client.post("/backups/dispose-expired", timeout=3600.0)

    def human(c: Any) -> None:
        if not r["disposed"] and not r["failed"]:
            out.say("No backup has expired.")
        for d in r["disposed"]:
            out.say(f"Disposed of {d['id']}: " + ", ".join(f"{p['place']} ({p['result']})" for p in d["places"]))
        for d in r["failed"]:
            out.warn(f"Could not dispose of {d['id']}: " + ", ".join(
                f"{p['place']} ({p['result']}: {p.get('error', '')})" for p in d["places"]))

    out.emit(r, human)
    if r["failed"]:
        raise typer.Exit(1)


@command(backup_app, "restore")
def backup_restore(
    from_dir: Annotated[Path, opt("--from", metavar="DIR", help="The backup's directory.")],
    yes: Annotated[bool, opt("--yes", help="Confirm: the instance's database is replaced by the backup's.")] = False,
    data_dir: DataDirOpt = None,
    key: KeyOpt = None,
    passphrase_file: PassphraseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replace the database with a backup (local; the server must be stopped). The signature and every
    chunk are checked before anything is touched."""
    from hogo.services import backups

    out = Output(json_out)
    hogo = _build(data_dir, passphrase_file)
    try:
        r = _local(lambda: backups.restore_backup(hogo, from_dir, confirm=yes, public_key_text=_key_text(key)))
    finally:
        hogo.close()

    def human(c: Any) -> None:
        out.say(f"Restored backup {r['backup_id']} of {fmt_time(r['created_at'])} ({r['log_size']} log entries).")
        if r["migrate_needed"]:
            out.warn("the backup's schema is older than this hogo's: run 'hogo migrate' before 'hogo serve'")

    out.emit(r, human)


@command(backup_app, "keys")
def backup_keys(
    out_dir: Annotated[Path, opt("--out", metavar="DIR",
                                 help="Where to keep it: apart from the database backups (SEC-151(3)).")],
    backup_passphrase_file: Annotated[str | None, opt(
        "--backup-passphrase-file", metavar="FILE",
        help="The passphrase that seals this key backup ('-' for stdin; else a prompt). Keep it apart from "
             "the backup.")] = None,
    retention_days: Annotated[int | None, opt("--retention-days", metavar="N",
                                              help="Keep it this many days (default 7).")] = None,
    data_dir: DataDirOpt = None,
    passphrase_file: PassphraseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Back up the key material (every file of the keys directory), sealed by a passphrase (local)."""
    from hogo.services import backups

    out = Output(json_out)
    hogo = _build(data_dir, passphrase_file)
    try:
        secret = _backup_passphrase(backup_passphrase_file, confirm=True)
        b = _local(lambda: backups.backup_keys(hogo, out_dir.expanduser().absolute(), secret,
                                               retention_days=retention_days))
    finally:
        hogo.close()
    out.emit(b, lambda c: _show(out, b, f"Key backup {b['id']} made; keep its passphrase apart from it."))


@command(backup_app, "restore-keys")
def backup_restore_keys(
    from_dir: Annotated[Path, opt("--from", metavar="DIR", help="The key backup's directory.")],
    yes: Annotated[bool, opt("--yes", help="Confirm: key files are written into the keys directory.")] = False,
    replace: Annotated[bool, opt("--replace", help="Overwrite key files that exist.")] = False,
    backup_passphrase_file: Annotated[str | None, opt(
        "--backup-passphrase-file", metavar="FILE", help="The key backup's passphrase ('-' for stdin).")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Put the key files of a key backup back (local). Pin --key to have its signature checked."""
    from hogo.cli.main import _settings
    from hogo.services import backups

    out = Output(json_out)
    settings = _settings(data_dir)
    secret = _backup_passphrase(backup_passphrase_file, confirm=False)
    r = _local(lambda: backups.restore_keys(settings.keys_dir, from_dir, secret, confirm=yes,
                                            public_key_text=_key_text(key), replace=replace))

    def human(c: Any) -> None:
        out.say(f"Restored {len(r['files'])} key file(s) of {r['backup_id']} into {settings.keys_dir}.")
        if not r["signature_checked"]:
            out.warn("the signature was not checked (no --key): the passphrase alone vouched for the backup")

    out.emit(r, human)
