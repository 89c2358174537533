"""``hogo audit``: the tamper-evident log (SEC-107(2)(3), MN-3b, ANON-12, MLIT-9.5.8).

Searching, proving and exporting go through the server (auditors and SIRT see everything; others
their own history). ``verify`` also works offline: on a stopped instance's data directory, or on an
exported bundle with nothing but the log's public key. A checkpoint kept with ``--checkpoint FILE``
is the auditor's memory: verification refuses a log that does not extend it, and the file is moved
forward to the newest checkpoint that verified.

Registered in ``hogo.cli.main`` (``app.add_typer``); the exit codes are those of ``hogo.cli.client``
(10: the log failed verification).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Annotated, Any

import typer

from hogo.cli.alerts import register_audit_commands
from hogo.cli.client import EXIT_TAMPERED, EXIT_UNAVAILABLE, CliError, path, usage_error
from hogo.cli.command import JsonOpt, api, command, command_group, opt
from hogo.cli.output import DASH, Output, fmt_time, kv_table, table

audit_app = command_group("audit", "The tamper-evident log: search, prove, verify, export (SEC-107, MN-3b).")
register_audit_commands(audit_app)  # analyze, report, analysis show|set|review (ANON-13)





def _read_text(p: Path, what: str) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise usage_error(f"cannot read the {what} {p}: {exc.strerror}") from None


def _key_text(key: str | None) -> str | None:
    """``--key``: the verifier key itself, or a file holding it."""
    if key is None:
        return None
    p = Path(key)
    return _read_text(p, "key file").strip() if p.exists() else key.strip()


def _parse_key(text: str) -> Any:
    from hogo.crypto import checkpoint as notes

    try:
        return notes.parse_public_key_text(text)
    except ValueError as exc:
        raise usage_error(f"--key is not a verifier key of this log's kind: {exc}", code="bad_key") from None


def _remembered(p: Path | None) -> str | None:
    if p is None or not p.exists():
        return None
    return _read_text(p, "checkpoint file")


def _remember(p: Path | None, note: str | None, size: int) -> None:
    """Move the kept checkpoint forward (never back)."""
    if p is None or not note:
        return
    old = _remembered(p)
    if old:
        from hogo.crypto.checkpoint import parse_note

        try:
            if parse_note(old)[0].size >= size:
                return
        except ValueError:
            pass
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(note, encoding="utf-8")
    os.replace(tmp, p)


@command(audit_app, "search")
def audit_search(
    user: Annotated[str | None, opt("--user", metavar="NAME", help="Events by or about this user.")] = None,
    file: Annotated[str | None, opt("--file", metavar="FILE", help="Events about this personal-data file.")] = None,
    record: Annotated[str | None, opt("--record", metavar="ID",
                                      help="Events that touched this record (person) of --file.")] = None,
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
    """Search the log, newest first (auditors: everything; others: their own history)."""
    out = Output(json_out)
    params = {"user": user, "file": file, "record": record, "event": event, "outcome": outcome, "since": since,
              "until": until, "limit": limit, "before": before}
    with api() as client:
        rows = client.get("/audit/events", params=params, options={
            "user": "--user", "file": "--file", "record": "--record", "event": "--event", "outcome": "--outcome",
            "since": "--since", "until": "--until", "limit": "--limit", "before": "--before"})
    out.emit(rows, lambda c: c.print(table(
        ["Seq", "Time", "Event", "Outcome", "Actor", "File", "Records", "Purpose", "Reason", "From"],
        [[e["seq"], fmt_time(e["ts"]), e["event"], e["outcome"] or "(expired)", e.get("actor_name"),
          e.get("file_code"), e.get("record_count") or DASH, e.get("purpose"), e.get("reason"),
          e.get("client_addr")] for e in rows],
    )))


command(audit_app, "events", hidden=True, help="Same as 'search' (kept for scripts).")(audit_search)




@command(audit_app, "prove")
def audit_prove(
    seq: Annotated[int, typer.Argument(metavar="ENTRY", help="The entry's index (Seq).")],
    key: Annotated[str | None, opt("--key", metavar="KEY|FILE",
                                   help="The log's verifier key you pinned (default: ask the server).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Prove that an entry is in the log: an RFC 9162 inclusion proof in the latest signed
    checkpoint, checked here (signature, then the path from the entry to the root)."""
    from hogo.crypto import checkpoint as notes
    from hogo.domain import merkle

    out = Output(json_out)
    with api() as client:
        proof = client.get(path("/audit/entries/{}/proof", str(seq)))
        key_text = _key_text(key) or client.get("/audit/public-key", raw=True).decode("utf-8").strip()
    name, public = _parse_key(key_text)
    try:
        cp = notes.verify_note(proof["checkpoint"], name, public, origin=name)
    except notes.CheckpointError as exc:
        raise CliError(f"the server's checkpoint is not signed by this key: {exc}", exit_code=EXIT_TAMPERED,
                       code="bad_signature") from None
    leaf = bytes.fromhex(proof["leaf_hash"])
    entry_ok = proof["entry"] is None or merkle.leaf_hash(proof["entry"].encode("utf-8")) == leaf
    ok = entry_ok and cp.size == proof["size"] and merkle.verify_inclusion(
        seq, cp.size, leaf, [bytes.fromhex(h) for h in proof["proof"]], cp.root)
    result = {**proof, "verified": ok, "key_pinned": key is not None}
    out.emit(result, lambda c: c.print(kv_table([
        ("Entry", str(seq)), ("Tree size", str(cp.size)), ("Root", cp.root.hex()), ("Leaf hash", proof["leaf_hash"]),
        ("Proof", "\n".join(proof["proof"]) or DASH),
        ("Verified", "yes" if ok else "NO — the proof does not lead to the signed root"),
        ("Key", "pinned (--key)" if key else "from the server (pin it with --key)"),
    ])))
    if not ok:
        raise typer.Exit(EXIT_TAMPERED)


@command(audit_app, "checkpoint")
def audit_checkpoint(
    out_file: Annotated[Path, opt("--out", metavar="FILE", help="Where to save the signed checkpoint.")],
    fresh: Annotated[bool, opt("--fresh", help="Have the server sign a new one first.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Save the latest signed checkpoint, to compare the log against later (verify --checkpoint)."""
    from hogo.crypto import checkpoint as notes

    out = Output(json_out)
    with api() as client:
        note = client.get("/audit/checkpoint", params={"fresh": fresh or None}, raw=True).decode("utf-8")
    cp, _ = notes.parse_note(note)
    out_file.write_text(note, encoding="utf-8")
    out.emit({"size": cp.size, "root": cp.root.hex(), "origin": cp.origin, "out": str(out_file)},
             lambda c: out.say(f"checkpoint of {cp.size} entries saved to {out_file}"))


@command(audit_app, "public-key")
def audit_public_key(
    out_file: Annotated[Path | None, opt("--out", metavar="FILE", help="Save it to this file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The log's verifier key: pin it (compare it through a second channel) and verify with it."""
    out = Output(json_out)
    with api() as client:
        text = client.get("/audit/public-key", raw=True).decode("utf-8").strip()
    if out_file is not None:
        out_file.write_text(text + "\n", encoding="utf-8")
    out.emit({"key": text}, lambda c: c.print(text, markup=False, highlight=False, soft_wrap=True))


@command(audit_app, "verify")
def audit_verify(
    bundle: Annotated[Path | None, opt("--bundle", metavar="DIR", help="Verify an exported bundle, offline.")] = None,
    data_dir: Annotated[Path | None, opt("--data-dir", metavar="DIR",
                                         help="Verify a stopped instance's data directory, offline.")] = None,
    checkpoint_file: Annotated[Path | None, opt(
        "--checkpoint", metavar="FILE",
        help="A checkpoint you kept: the log must extend it; moved forward when the log verifies.")] = None,
    key: Annotated[str | None, opt("--key", metavar="KEY|FILE",
                                   help="The verifier key you pinned (bundles: default the bundle's own).")] = None,
    fast: Annotated[bool, opt("--fast", help="Skip comparing the search columns with each entry (entries, "
                                             "hashes, indices, tree and checkpoints are still all checked).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Recompute the log: every entry, hash, tree node and signed checkpoint. Exit 0 when intact,
    10 with the first bad entry and the kind of damage otherwise."""
    out = Output(json_out)
    if bundle is not None and data_dir is not None:
        raise usage_error("give --bundle or --data-dir, not both")
    remembered = _remembered(checkpoint_file)
    if bundle is not None:
        from hogo.services.audit_verify import verify_bundle

        checked = verify_bundle(bundle, public_key_text=_key_text(key), remembered=remembered)
        report = {**checked.as_dict(), "latest_checkpoint": checked.latest_checkpoint}
        where = f"bundle {bundle}"
    elif data_dir is not None:
        report = _verify_data_dir(data_dir, remembered, _key_text(key), deep=not fast)
        where = f"data directory {data_dir}"
    else:
        with api() as client:
            report = client.post("/audit/verify", body={"checkpoint": remembered, "fast": fast}, timeout=3600.0)
            where = client.base_url
            key_text = _key_text(key) or client.get("/audit/public-key", raw=True).decode("utf-8").strip()
        latest = report.get("latest_checkpoint")
        if latest:  # remember only what this side can check: a checkpoint signed by the (pinned) key
            from hogo.crypto import checkpoint as notes

            name, public = _parse_key(key_text)
            try:
                notes.verify_note(latest, name, public, origin=name)
            except notes.CheckpointError as exc:
                report["ok"] = False
                report["problems"].append({"kind": "forked", "seq": None,
                                           "message": f"the server's checkpoint is not signed by the key ({exc})"})
                report["first_problem"] = report["problems"][0]
    if report["ok"]:
        _remember(checkpoint_file, report.get("latest_checkpoint"), int(report.get("latest_size") or 0))
    report.pop("latest_checkpoint", None)
    out.emit({**report, "source": where}, lambda c: _show_report(out, report, where))
    if not report["ok"]:
        raise typer.Exit(EXIT_TAMPERED)


def _verify_data_dir(data_dir: Path, remembered: str | None, key_text: str | None, *,
                     deep: bool) -> dict[str, Any]:
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.crypto.keys import is_sealed
    from hogo.services import audit_access

    settings = load_settings(data_dir)
    if not (settings.keys_dir).exists():
        raise CliError(f"no hogo instance in {settings.data_dir}", exit_code=EXIT_UNAVAILABLE, code="not_initialised")
    passphrase = os.environ.get("HOGO_KEY_PASSPHRASE") if is_sealed(settings.keys_dir) else None
    hogo = build(settings, passphrase=passphrase)
    try:
        if key_text is not None and audit_access.public_key(hogo) != key_text:
            raise CliError("the instance's key is not the one you pinned (--key): this is another log, or its "
                           "key was replaced", exit_code=EXIT_TAMPERED, code="key_mismatch")
        report = audit_access.verify(hogo, None, remembered=remembered, deep=deep)
        return {**report.as_dict(), "latest_checkpoint": report.latest_checkpoint}
    finally:
        hogo.close()


def _show_report(out: Output, report: dict[str, Any], where: str) -> None:
    first = report.get("first_problem") or {}
    if report["ok"]:
        out.say(f"intact: {report['entries_checked']} entries of {where}, "
                f"{report['checkpoints_verified']} signed checkpoint(s) verified"
                + (f", {report['expired']} expired payload(s)" if report.get("expired") else ""))
        return
    out.console.print(f"[bold red]NOT INTACT[/] ({where}): {first['kind']}"
                      + (f" at entry {first['seq']}" if first.get("seq") is not None else ""))
    out.console.print(table(["Kind", "Entry", "What"], [[p["kind"], DASH if p["seq"] is None else p["seq"],
                                                         p["message"]] for p in report["problems"][:20]]))


@command(audit_app, "export")
def audit_export(
    out_dir: Annotated[Path, opt("--out", metavar="DIR", help="An empty or new directory for the bundle.")],
    since: Annotated[str | None, opt("--since", metavar="DATE", help="From this date or date-time.")] = None,
    until: Annotated[str | None, opt("--until", metavar="DATE", help="Up to this date (inclusive) or date-time.")
                     ] = None,
    json_out: JsonOpt = False,
) -> None:
    """A signed bundle for auditors: entries, leaf hashes, checkpoint, proofs and the public key.
    Verify it anywhere with 'hogo audit verify --bundle DIR'."""
    out = Output(json_out)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise usage_error(f"{out_dir} is not empty", code="not_empty")
    with api() as client:
        data = client.post("/audit/export", body={"since": since, "until": until}, raw=True, timeout=3600.0,
                           options={"since": "--since", "until": "--until"})
    out_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            if not member.isfile() or "/" in member.name or member.name.startswith("."):
                raise CliError(f"the server's bundle holds an unexpected member {member.name!r}", code="bad_bundle")
        tar.extractall(out_dir, filter="data")
    import json

    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    info = {"out": str(out_dir), "first": manifest["first"], "end": manifest["end"], "size": manifest["size"]}
    out.emit(info, lambda c: out.say(
        f"bundle of entries {manifest['first']}–{manifest['end'] - 1} (log size {manifest['size']}) in {out_dir}"))


@command(audit_app, "retention")
def audit_retention(
    data_dir: Annotated[Path | None, opt("--data-dir", metavar="DIR", help="Instance data directory.")] = None,
    dry_run: Annotated[bool, opt("--dry-run", help="Only say what would be removed.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove the payloads of entries past their retention period (local; the server also does this
    daily). Leaf hashes stay, so the log still verifies; the removal is itself logged."""
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.crypto.keys import is_sealed
    from hogo.services import audit_access

    out = Output(json_out)
    settings = load_settings(data_dir)
    passphrase = os.environ.get("HOGO_KEY_PASSPHRASE") if is_sealed(settings.keys_dir) else None
    hogo = build(settings, passphrase=passphrase)
    try:
        result = audit_access.run_retention(hogo, dry_run=dry_run)
    finally:
        hogo.close()
    out.emit(result, lambda c: out.say(
        ("would remove" if dry_run else "removed") + f" the payloads of {result['expired']} entr"
        + ("y" if result["expired"] == 1 else "ies")))
