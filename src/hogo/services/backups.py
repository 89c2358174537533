"""Backups (ANON-19, SEC-51, SEC-151(3)): consistent online backups of the database, encrypted and
signed, kept in one or more places apart from the instance, with a catalog, retention and disposal.

What a backup is — a directory ``<target>/<backup id>/`` with three files:

* ``data.enc``: the database's content, encrypted as a stream of AES-256-GCM chunks under a random
  content key of the backup's own (``hogo.crypto.backup``);
* ``manifest.json``: format, instance, engine, method, schema revision, when, by whom, the log's size,
  size and SHA-256 of every chunk and of the whole, and the content key wrapped by the instance KEK
  through the key provider (key file or PKCS#11);
* ``manifest.sig``: a signed note (C2SP) by the log's signing key over ``hogo-backup-manifest/1`` and
  the manifest's SHA-256 (a format name of its own: a checkpoint or an audit bundle's signature is
  not a backup's).

``verify`` and ``restore`` check the signature with the pinned (or the instance's own) public key
before anything else: a backup re-signed by another key, or a manifest changed after signing, is
refused. Then every chunk is compared with its signed hash (a flipped byte, a truncated, removed or
reordered chunk is named), and only then decrypted (each chunk authenticated again by GCM with its
index and final flag).

Consistency. SQLite: the sqlite3 online backup API copies one snapshot of the database (writers go
on) to a staging file in the data directory, which is then encrypted. PostgreSQL: every table is
copied out (``COPY … TO STDOUT``) inside one REPEATABLE READ, READ ONLY transaction, with the
sequences' positions — one snapshot of the whole database, with no external binary whose version
must match the server's (pg_dump refuses a newer server), and the same rows come back through
``COPY … FROM STDIN`` into a schema Alembic built at the backup's revision. Either way the
tamper-evident log comes back entry for entry, so it verifies after a restore.

What a backup never holds: key material. The wrapped data keys are kept beside the KEK (the key
store), so an earlier backup cannot be decrypted once a key has been destroyed (crypto-shredding).
The keys directory is backed up on its own (``backup_keys``), sealed under a passphrase given
through a separate channel, with a short retention of its own (SEC-151(3)).

Crash safety: a backup is written under a temporary name (``.<id>.partial``) in every target and
published by renaming it; the catalog entry is written only once every target holds it. A failure
anywhere removes what was written and records the failure in the log.

Retention (SEC-51): each backup is kept for the days its importance gives (or ``retention_days``);
``dispose_expired`` deletes an expired backup from every target and records what was deleted where
in the catalog and the log.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import getpass
import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import struct
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.engine import make_url

from hogo.crypto import backup as bc
from hogo.crypto import checkpoint as notes
from hogo.crypto.keys import SealError
from hogo.domain.events import Event, Outcome
from hogo.errors import ConfigurationError, HogoError, NotFound, ValidationFailed
from hogo.services import audit, audit_tree, audit_verify, runlock
from hogo.services.audit import RequestContext
from hogo.store import db as store_db
from hogo.store.models_backups import Backup

if TYPE_CHECKING:
    from hogo.bootstrap import Hogo
    from hogo.services.auth import Principal

FORMAT = "hogo-backup/1"
SIGNED_FORMAT = "hogo-backup-manifest/1"
KEYS_FORMAT = "hogo-key-backup/1"
KEYS_SIGNED_FORMAT = "hogo-key-backup-manifest/1"
METHOD_SQLITE = "sqlite3 online backup API (one snapshot); AES-256-GCM chunks; Ed25519-signed manifest"
METHOD_PG = "COPY of every table in one REPEATABLE READ READ ONLY transaction; AES-256-GCM chunks; " \
            "Ed25519-signed manifest"
METHOD_KEYS = "tar of the keys directory; Argon2id(passphrase) + AES-256-GCM; Ed25519-signed manifest"
# SEC-51(1): how long a backup is kept follows the importance of what it holds.
IMPORTANCE_RETENTION_DAYS = {"critical": 365, "high": 90, "normal": 30, "low": 7}
KEY_BACKUP_RETENTION_DAYS = 7  # key backups: short, on their own (SEC-151(3))
MAX_RETENTION_DAYS = 3660
SAMPLE_RECORDS = 20
LOCAL_CTX = RequestContext(client_addr="local", user_agent="hogo-cli")

_FRAME = struct.Struct(">cQ")  # PostgreSQL content: frame type, payload length


class BackupRefused(HogoError):
    """A backup that is not to be trusted (signature, hashes, decryption) or does not fit this instance."""

    status = 422
    code = "backup_refused"


def _stage(name: str) -> None:
    """A point in ``create_backup`` where tests inject a crash (monkeypatch this)."""


# ----------------------------------------------------------------------------------------- who


@dataclasses.dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    ctx: RequestContext

    @classmethod
    def of(cls, principal: Principal | None, ctx: RequestContext | None) -> Actor:
        if principal is None:  # a local command on the server's host (restore, key backups)
            return cls(None, f"local:{_os_user()}", ctx or LOCAL_CTX)
        from hogo.domain.roles import Permission

        principal.require(Permission.BACKUP_MANAGE)
        return cls(principal.user_id, principal.username, ctx or LOCAL_CTX)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())


def _log(hogo: Hogo, actor: Actor, event: Event, outcome: Outcome, *, target: str | None,
         details: dict[str, Any], reason: str | None = None, work: Callable[[Any], None] | None = None) -> None:
    with hogo.unit_of_work() as s:
        if work is not None:
            work(s)
        audit.record(s, now=hogo.clock.now(), event=event, outcome=outcome, ctx=actor.ctx, actor_id=actor.user_id,
                     actor_name=actor.name, target=target, reason=reason, details=details)


# ----------------------------------------------------------------------------------------- targets


def _check_targets(hogo: Hogo, targets: list[Path]) -> list[Path]:
    if not targets:
        raise ValidationFailed("give at least one target directory for the backup", field="targets",
                               requirement="ANON-19")
    data_dir = hogo.settings.data_dir.resolve()
    out: list[Path] = []
    for t in targets:
        if not t.is_absolute():
            raise ValidationFailed(f"the target {t} is not an absolute path", field="targets")
        t = t.resolve()
        if t == data_dir or data_dir in t.parents:
            raise ValidationFailed(
                f"the target {t} is inside the instance's data directory: a backup must be stored apart from "
                "the original (ANON-19)", field="targets", requirement="ANON-19")
        if t in out:
            raise ValidationFailed(f"the target {t} is given twice", field="targets")
        try:
            t.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationFailed(f"cannot create the target {t}: {exc.strerror}", field="targets") from None
        if not os.access(t, os.W_OK):
            raise ValidationFailed(f"the target {t} is not writable", field="targets")
        out.append(t)
    return out


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_id(now: dt.datetime, kind: str) -> str:
    return f"{'keys' if kind == 'keys' else 'db'}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _ts(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _retention(importance: str, retention_days: int | None) -> int:
    if importance not in IMPORTANCE_RETENTION_DAYS:
        raise ValidationFailed(f"importance must be one of {', '.join(IMPORTANCE_RETENTION_DAYS)}, not "
                               f"{importance!r}", field="importance", requirement="SEC-51")
    days = IMPORTANCE_RETENTION_DAYS[importance] if retention_days is None else retention_days
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValidationFailed(f"retention_days must be between 1 and {MAX_RETENTION_DAYS}", field="retention_days")
    return days


# ----------------------------------------------------------------------------------------- signing


def _sign(hogo: Hogo, signed_format: str, manifest_bytes: bytes) -> str:
    key = audit_tree.log_key(hogo)
    body = f"{signed_format}\n{hashlib.sha256(manifest_bytes).hexdigest()}\n"
    return notes.sign_note(body, key.name, key.sign, key.public)


def _key_from_text(text_: str) -> tuple[str, Any]:
    try:
        return notes.parse_public_key_text(text_.strip())
    except ValueError as exc:
        raise ValidationFailed(f"the verifier key is not a hogo log key: {exc}", field="key") from None


def instance_key(hogo: Hogo) -> tuple[str, Any]:
    key = audit_tree.log_key(hogo)
    return key.name, key.public


def read_manifest(directory: Path, key: tuple[str, Any], *, signed_format: str = SIGNED_FORMAT,
                  fmt: str = FORMAT) -> dict[str, Any]:
    """The manifest of the backup in ``directory``, once its signature by ``key`` is checked (first of all)."""
    name, public = key
    try:
        note = (directory / "manifest.sig").read_bytes()
        data = (directory / "manifest.json").read_bytes()
    except FileNotFoundError as exc:
        raise BackupRefused(f"{directory} is not a hogo backup: {Path(exc.filename or '').name} is missing",
                            code="backup_incomplete") from None
    except OSError as exc:
        raise BackupRefused(f"cannot read the backup in {directory}: {exc.strerror}",
                            code="backup_unreadable") from None
    try:
        signed = notes.open_note(note, name, public)
    except notes.CheckpointError as exc:
        raise BackupRefused(
            f"the backup's manifest is not signed by this instance's key {name} (re-signed by another key, or "
            f"not a hogo backup): {exc}", code="backup_bad_signature", requirement="ANON-19") from None
    lines = signed.split("\n")
    if len(lines) != 3 or lines[0] != signed_format:
        raise BackupRefused(f"the signature is not over a {signed_format} manifest (another kind of signed "
                            "document)", code="backup_bad_signature")
    if hashlib.sha256(data).hexdigest() != lines[1]:
        raise BackupRefused("manifest.json was changed after it was signed (its hash differs from the signed one)",
                            code="backup_tampered", requirement="ANON-19")
    manifest: dict[str, Any] = json.loads(data)
    if manifest.get("format") != fmt:
        raise BackupRefused(f"not a {fmt} backup (format {manifest.get('format')!r})", code="backup_format")
    return manifest


# ----------------------------------------------------------------------------------------- create


def default_importance(hogo: Hogo) -> str:
    """SEC-51(1), by classification: ``high`` when the instance holds a file of availability 2 (要安定情報),
    else ``normal``."""
    from sqlalchemy import func

    from hogo.store.models import PersonalDataFile

    with hogo.unit_of_work(readonly=True) as s:
        top = s.scalar(select(func.max(PersonalDataFile.availability)))
    return "high" if (top or 0) >= 2 else "normal"


def create_backup(hogo: Hogo, principal: Principal | None, targets: list[Path], *, importance: str | None = None,
                  retention_days: int | None = None, ctx: RequestContext | None = None) -> dict[str, Any]:
    """Back the database up into every target (ANON-19, SEC-51). ``principal`` None: a local operator.
    ``importance`` (the retention) defaults to what the files' classification asks for."""
    actor = Actor.of(principal, ctx)
    importance = importance or default_importance(hogo)
    days = _retention(importance, retention_days)
    roots = _check_targets(hogo, targets)
    _remove_stale(hogo, roots)
    now = hogo.clock.now()
    backup_id = _new_id(now, "database")
    partials = [r / f".{backup_id}.partial" for r in roots]
    finals = [r / backup_id for r in roots]
    published: list[Path] = []
    try:
        first = partials[0]
        first.mkdir(mode=0o700)
        content_key = bc.new_content_key()
        wrapped = hogo.key_provider.wrap(content_key, aad=bc.wrap_aad(backup_id))
        with (first / "data.enc").open("wb") as f:
            writer = bc.ChunkWriter(f, content_key, backup_id)
            if hogo.settings.is_sqlite:
                facts = _dump_sqlite(hogo, writer, backup_id)
            else:
                facts = _dump_postgresql(hogo.engine, writer)
            _stage("data")
            writer.close()
            f.flush()
            os.fsync(f.fileno())
        del content_key
        expires = now + dt.timedelta(days=days)
        manifest = {
            "format": FORMAT, "backup_id": backup_id, "instance": hogo.settings.instance_name,
            "log_origin": audit_tree.log_key(hogo).name, "engine": hogo.engine.dialect.name,
            "method": METHOD_SQLITE if hogo.settings.is_sqlite else METHOD_PG,
            "schema_revision": facts["revision"], "log_size": facts["log_size"], "created_at": _ts(now),
            "created_by": actor.name, "importance": importance, "retention_days": days, "expires_at": _ts(expires),
            "chunk_bytes": bc.CHUNK_BYTES, "chunks": writer.chunk_hashes,
            "size": writer.size, "plain_size": writer.plain_size,
            "content_key": {"algorithm": "aes-256-gcm", "provider": hogo.key_provider.name,
                            "kek_id": hogo.key_provider.kek_id, "wrapped": base64.b64encode(wrapped).decode()},
            "contains": "the database only; no key material (keys are backed up separately, SEC-151(3))",
        }
        data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        _write_synced(first / "manifest.json", data)
        _write_synced(first / "manifest.sig", _sign(hogo, SIGNED_FORMAT, data).encode("utf-8"))
        _fsync_dir(first)
        for other in partials[1:]:
            other.mkdir(mode=0o700)
            for name in ("data.enc", "manifest.json", "manifest.sig"):
                _copy_synced(first / name, other / name)
            _fsync_dir(other)
        _stage("publish")
        for p, final in zip(partials, finals, strict=True):
            os.rename(p, final)
            published.append(final)
            _fsync_dir(final.parent)
        _stage("catalog")
        row = Backup(id=backup_id, kind="database", engine=manifest["engine"], method=manifest["method"],
                     schema_revision=facts["revision"], importance=importance, size_bytes=writer.size + len(data),
                     sha256=hashlib.sha256(data).hexdigest(), targets=[str(p) for p in finals],
                     log_size=facts["log_size"], status="complete", created_at=now, created_by=actor.name,
                     retention_days=days, expires_at=expires)
        _log(hogo, actor, Event.BACKUP_CREATED, Outcome.SUCCESS, target=backup_id,
             details={"targets": row.targets, "engine": row.engine, "size": row.size_bytes, "log_size": row.log_size,
                      "importance": importance, "retention_days": days, "expires_at": _ts(expires)},
             work=lambda s: s.add(row))
    except BaseException as exc:
        for p in [*partials, *published]:
            shutil.rmtree(p, ignore_errors=True)
        with contextlib.suppress(Exception):
            _log(hogo, actor, Event.BACKUP_FAILED, Outcome.FAILURE, target=backup_id,
                 reason=f"{type(exc).__name__}: {str(exc)[:300]}", details={"targets": [str(r) for r in roots]})
        raise
    return catalog_view(row)


STALE_AFTER_S = 6 * 3600


def _remove_stale(hogo: Hogo, roots: list[Path]) -> None:
    """What a backup killed outright (power cut, SIGKILL) left behind, hours old: its staging copy of the
    database (as sensitive as the database) and its unpublished ``.partial`` directories."""
    import time

    cutoff = time.time() - STALE_AFTER_S
    places: list[Path] = [p for r in roots for p in r.glob(".db-*.partial")]
    if hogo.settings.is_sqlite:
        places += list(_sqlite_path(hogo.settings.database_url).parent.glob(".db-*.staging.db"))
    for p in places:
        with contextlib.suppress(OSError):
            if p.stat().st_mtime < cutoff:
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _copy_synced(src: Path, dst: Path) -> None:
    with src.open("rb") as a, dst.open("wb") as b:
        shutil.copyfileobj(a, b, 1 << 20)
        b.flush()
        os.fsync(b.fileno())


def _sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise ConfigurationError("an in-memory SQLite database cannot be backed up or restored")
    return Path(path)


def _dump_sqlite(hogo: Hogo, writer: bc.ChunkWriter, backup_id: str) -> dict[str, Any]:
    """One snapshot of the database through the online backup API, into a staging file beside the
    database (as protected as the database itself; removed at once), then encrypted."""
    src_path = _sqlite_path(hogo.settings.database_url)
    staging = src_path.parent / f".{backup_id}.staging.db"
    try:
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(staging)
        try:
            src.backup(dst, pages=0)  # one step: a consistent snapshot even while writers go on
            dst.execute("PRAGMA journal_mode=DELETE")
            facts = {"revision": _scalar(dst, "SELECT version_num FROM alembic_version"),
                     "log_size": int(_scalar(dst, "SELECT size FROM audit_head WHERE id = 1") or 0)}
        finally:
            dst.close()
            src.close()
        with staging.open("rb", buffering=0) as f:
            while piece := f.read(bc.CHUNK_BYTES):
                writer.write(piece)
        return facts
    finally:
        staging.unlink(missing_ok=True)


def _scalar(conn: sqlite3.Connection, sql: str) -> Any:
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _pg_tables(conn: Connection) -> list[str]:
    return [r for (r,) in conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version' "
        "ORDER BY tablename"))]


def _pg_columns(conn: Connection, table: str) -> list[str]:
    return [r for (r,) in conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = :t ORDER BY ordinal_position"), {"t": table})]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _frame(kind: bytes, payload: bytes) -> bytes:
    return _FRAME.pack(kind, len(payload)) + payload


def _dump_postgresql(engine: Engine, writer: bc.ChunkWriter) -> dict[str, Any]:
    """Every table (COPY, text format) and sequence position, in one REPEATABLE READ READ ONLY snapshot."""
    with store_db.read_snapshot(engine) as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        log_size = int(conn.execute(text("SELECT size FROM audit_head WHERE id = 1")).scalar() or 0)
        writer.write(_frame(b"H", json.dumps({"revision": revision, "log_size": log_size}).encode()))
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for table in _pg_tables(conn):
            cols = _pg_columns(conn, table)
            writer.write(_frame(b"T", json.dumps({"table": table, "columns": cols}).encode()))
            with cur.copy(f"COPY {_q(table)} ({', '.join(map(_q, cols))}) TO STDOUT") as copy:
                for block in copy:
                    writer.write(_frame(b"D", bytes(block)))
            writer.write(_frame(b"E", b""))
        seqs = {}
        for (name,) in conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")):
            last, called = conn.execute(text(f"SELECT last_value, is_called FROM {_q(name)}")).one()  # noqa: S608
            seqs[name] = [int(last), bool(called)]
        writer.write(_frame(b"S", json.dumps(seqs).encode()))
        writer.write(_frame(b"Z", b""))
    return {"revision": revision, "log_size": log_size}


# ----------------------------------------------------------------------------------------- opening


@dataclasses.dataclass
class Opened:
    directory: Path
    manifest: dict[str, Any]
    content_key: bytes

    def chunks(self, f: BinaryIO) -> Iterator[bytes]:
        return bc.decrypt_stream(f, self.content_key, self.manifest["backup_id"], self.manifest["chunks"])


def open_backup(hogo: Hogo, directory: Path, *, public_key_text: str | None = None) -> Opened:
    """Signature first (the pinned key, else the instance's), then every chunk against its signed hash,
    then the content key unwrapped by this instance's KEK. BackupRefused with the reason otherwise."""
    key = _key_from_text(public_key_text) if public_key_text else instance_key(hogo)
    manifest = read_manifest(directory, key)
    # Every chunk is compared with its signed hash as it is read for decryption (one pass, not two); a
    # restore replaces nothing until the last chunk has passed (SQLite: a staging file; PostgreSQL: one
    # transaction). ``check_backup_stream`` does the same comparison without a key.
    if not (directory / "data.enc").is_file():
        raise BackupRefused(f"{directory} has no data.enc (incomplete backup)", code="backup_incomplete")
    ck = manifest["content_key"]
    provider = hogo.key_provider
    if ck.get("provider") != provider.name or ck.get("kek_id") != provider.kek_id:
        raise BackupRefused(f"the backup's content key is wrapped by {ck.get('provider')}/{ck.get('kek_id')}, not "
                            f"by this instance's {provider.name}/{provider.kek_id}", code="backup_foreign_key")
    try:
        content_key = provider.unwrap(base64.b64decode(ck["wrapped"]), aad=bc.wrap_aad(manifest["backup_id"]))
    except SealError:
        raise BackupRefused("the backup's content key does not unwrap under this instance's KEK (another instance's "
                            "backup, or altered)", code="backup_foreign_key") from None
    return Opened(directory, manifest, content_key)


def check_backup_stream(directory: Path, public_key_text: str) -> dict[str, Any]:
    """Without the instance's keys (an auditor's check, with the pinned public key): the signature and
    every chunk's hash. BackupRefused with the reason otherwise."""
    manifest = read_manifest(directory, _key_from_text(public_key_text))
    try:
        with (directory / "data.enc").open("rb") as f:
            bc.check_stream(f, manifest["chunks"])
    except FileNotFoundError:
        raise BackupRefused(f"{directory} has no data.enc (incomplete backup)", code="backup_incomplete") from None
    except bc.BackupCryptoError as exc:
        raise BackupRefused(f"the backup's data is {exc.kind}: {exc}", code=f"backup_{exc.kind}",
                            requirement="ANON-19") from None
    return {"backup_id": manifest["backup_id"], "chunks": len(manifest["chunks"]), "size": manifest["size"]}


def _decrypt_to_file(opened: Opened, path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, (opened.directory / "data.enc").open("rb") as f:
            for piece in opened.chunks(f):
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
    except bc.BackupCryptoError as exc:
        path.unlink(missing_ok=True)
        raise BackupRefused(f"the backup's data is {exc.kind}: {exc}", code=f"backup_{exc.kind}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _check_sqlite_file(path: Path, manifest: dict[str, Any]) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupRefused("the restored database fails SQLite's integrity check", code="backup_corrupt")
        if _scalar(conn, "SELECT version_num FROM alembic_version") != manifest["schema_revision"]:
            raise BackupRefused("the restored database's schema revision differs from the manifest's",
                                code="backup_corrupt")
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"the restored file is not a SQLite database ({exc})", code="backup_corrupt") from None
    finally:
        conn.close()


def _check_revision(revision: str | None) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(store_db.alembic_config("sqlite://"))
    try:
        if revision is None or script.get_revision(revision) is None:
            raise ValueError
    except Exception:
        raise BackupRefused(f"the backup's schema revision {revision!r} is unknown to this version of hogo (made by "
                            "a newer one?)", code="backup_schema_unknown") from None


def _load_postgresql(conn: Connection, url: str, opened: Opened) -> None:
    """Into the (empty or replaced) current schema of ``conn``: drop what is there, build the schema at the
    backup's revision, copy every table in with its foreign keys off, put them back, set the sequences."""
    from alembic import command

    # A server still connected (from another host, say) holds locks: fail with a reason, do not hang.
    conn.execute(text("SET LOCAL lock_timeout = '30s'"))
    for table in [*_pg_tables(conn), "alembic_version"]:
        conn.execute(text(f"DROP TABLE IF EXISTS {_q(table)} CASCADE"))
    for name, args in conn.execute(text(
            "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE n.nspname = current_schema() AND p.proname LIKE 'hogo\\_%'")).all():
        conn.execute(text(f"DROP FUNCTION IF EXISTS {_q(name)}({args}) CASCADE"))
    cfg = store_db.alembic_config(url)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, opened.manifest["schema_revision"])
    fks = conn.execute(text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace")).all()
    for table, name, _ in fks:
        conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {_q(name)}"))
    # Plain indexes are built once after the copy (as pg_restore does), not row by row during it.
    indexes = conn.execute(text(
        "SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
        "WHERE ic.relnamespace = current_schema()::regnamespace "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)")).all()
    for name, _ in indexes:
        conn.execute(text(f"DROP INDEX {_q(name)}"))
    for table in _pg_tables(conn):  # rows a migration seeded (the log's head, say) come from the backup instead
        # Names come from the catalog of the database itself, quoted.
        if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {_q(table)})")).scalar():  # noqa: S608
            conn.execute(text(f"DELETE FROM {_q(table)}"))  # noqa: S608
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with (opened.directory / "data.enc").open("rb") as f:
        reader = bc.ChunkReader(opened.chunks(f))
        seen_end = False
        while not seen_end:
            kind, payload = _read_frame(reader)
            if kind == b"H":
                continue
            if kind == b"T":
                head = json.loads(payload)
                cols = ", ".join(map(_q, head["columns"]))
                with cur.copy(f"COPY {_q(head['table'])} ({cols}) FROM STDIN") as copy:
                    while True:
                        k, block = _read_frame(reader)
                        if k == b"E":
                            break
                        if k != b"D":
                            raise BackupRefused("the backup's content is malformed (table data expected)",
                                                code="backup_corrupt")
                        copy.write(block)
            elif kind == b"S":
                for name, (last, called) in json.loads(payload).items():
                    conn.execute(text("SELECT setval(:s, :v, :c)"), {"s": _q(name), "v": last, "c": called})
            elif kind == b"Z":
                seen_end = True
            else:
                raise BackupRefused(f"the backup's content is malformed (frame {kind!r})", code="backup_corrupt")
        if reader.read(1):
            raise BackupRefused("the backup's content goes on after its end mark", code="backup_corrupt")
    for _, definition in indexes:
        conn.execute(text(definition))
    for table, name, definition in fks:
        conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {_q(name)} {definition}"))


def _read_frame(reader: bc.ChunkReader) -> tuple[bytes, bytes]:
    try:
        kind, n = _FRAME.unpack(reader.read_exact(_FRAME.size, lambda: "a frame header"))
        return kind, reader.read_exact(n, lambda: "a frame")
    except bc.BackupCryptoError as exc:
        raise BackupRefused(f"the backup's data is {exc.kind}: {exc}", code=f"backup_{exc.kind}") from None


def _scratch_pg_url(url: str, schema: str) -> str:
    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return u.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@contextlib.contextmanager
def _scratch(hogo: Hogo, opened: Opened) -> Iterator[Engine]:
    """The backup restored into a scratch place: a file in a private directory beside the database
    (SQLite), a schema of its own in the instance's database (PostgreSQL). Removed afterwards."""
    if opened.manifest["engine"] != hogo.engine.dialect.name:
        raise BackupRefused(f"a {opened.manifest['engine']} backup cannot be checked on a "
                            f"{hogo.engine.dialect.name} instance", code="backup_engine")
    _check_revision(opened.manifest["schema_revision"])
    if hogo.settings.is_sqlite:
        place = Path(tempfile.mkdtemp(prefix=".backup-verify-", dir=_sqlite_path(hogo.settings.database_url).parent))
        try:
            path = place / "scratch.db"
            _decrypt_to_file(opened, path)
            _check_sqlite_file(path, opened.manifest)
            engine = store_db.make_engine(f"sqlite:///{path}")
            try:
                yield engine
            finally:
                engine.dispose()
        finally:
            shutil.rmtree(place, ignore_errors=True)
        return
    schema = "hogo_verify_" + uuid.uuid4().hex[:12]
    with hogo.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {_q(schema)}"))
    try:
        url = _scratch_pg_url(hogo.settings.database_url, schema)
        engine = store_db.make_engine(url, pool_size=1, max_overflow=2)
        try:
            with engine.begin() as conn:
                _load_postgresql(conn, url, opened)
            yield engine
        finally:
            engine.dispose()
    finally:
        with hogo.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {_q(schema)} CASCADE"))


# ----------------------------------------------------------------------------------------- verify


def _find(hogo: Hogo, backup_id: str) -> tuple[Backup, Path]:
    with hogo.unit_of_work(readonly=True) as s:
        row = s.get(Backup, backup_id)
    if row is None:
        raise NotFound(f"no backup {backup_id!r} in the catalog", code="backup_not_found")
    if row.status == "disposed":
        raise NotFound(f"backup {backup_id} was disposed of on {_ts(row.disposed_at or row.created_at)}",
                       code="backup_disposed")
    for t in row.targets:
        if (Path(t) / "manifest.json").exists():
            return row, Path(t)
    raise NotFound(f"backup {backup_id} is in none of its places any more: {', '.join(row.targets)}",
                   code="backup_missing")


def verify_backup(hogo: Hogo, principal: Principal | None, *, backup_id: str | None = None,
                  directory: Path | None = None, public_key_text: str | None = None, sample: int = SAMPLE_RECORDS,
                  ctx: RequestContext | None = None) -> dict[str, Any]:
    """Restore into a scratch place and check it: the signature, every chunk, the database's integrity,
    the tamper-evident log (entries, tree, signed checkpoints) and a sample of records decrypting."""
    actor = Actor.of(principal, ctx)
    if directory is None:
        if backup_id is None:
            raise ValidationFailed("give a backup ID or a directory", field="backup_id")
        row, directory = _find(hogo, backup_id)
        if row.kind == "keys":
            raise ValidationFailed(f"{backup_id} is a key backup: it opens only with its passphrase (hogo backup "
                                   "restore-keys), not here", field="backup_id", code="key_backup")
    started = hogo.clock.now()
    try:
        opened = open_backup(hogo, directory, public_key_text=public_key_text)
        backup_id = opened.manifest["backup_id"]
        with _scratch(hogo, opened) as engine:
            report = _check_restored(hogo, engine, opened.manifest, sample)
    except BackupRefused as exc:
        result = {"ok": False, "backup_id": backup_id, "directory": str(directory), "checked_at": _ts(started),
                  "problems": [{"code": exc.code, "message": exc.message}]}
        _record_verification(hogo, actor, backup_id, result)
        raise
    result = {**report, "backup_id": backup_id, "directory": str(directory), "checked_at": _ts(started)}
    _record_verification(hogo, actor, backup_id, result)
    return result


def _check_restored(hogo: Hogo, engine: Engine, manifest: dict[str, Any], sample: int) -> dict[str, Any]:
    name, public = instance_key(hogo)
    problems: list[dict[str, Any]] = []
    log = audit_verify.verify_database(engine, key_name=name, public_key=public, deep=False)
    if not log.ok:
        first = log.first
        problems.append({"code": "log_failed", "message": f"the restored log does not verify: "
                                                          f"{first.kind if first else '?'} "
                                                          f"{first.message if first else ''}"})
    with engine.connect() as conn:
        size = int(conn.execute(text("SELECT size FROM audit_head WHERE id = 1")).scalar() or 0)
    if size != manifest["log_size"]:
        problems.append({"code": "log_size", "message": f"the restored log has {size} entries, the manifest says "
                                                        f"{manifest['log_size']}"})
    records = _sample_records(hogo, engine, sample)
    if records["failed"]:
        problems.append({"code": "records_failed", "message": f"{records['failed']} of {records['sampled']} sampled "
                                                              "records failed to decrypt"})
    return {"ok": not problems, "log": {"ok": log.ok, "entries": size, "checkpoints": len(log.as_dict().get(
        "checkpoints", []) or [])}, "records": records, "problems": problems,
        "engine": manifest["engine"], "schema_revision": manifest["schema_revision"]}


def _sample_records(hogo: Hogo, engine: Engine, n: int) -> dict[str, Any]:
    """Decrypt ``n`` records picked at random (values are not kept: only whether they open).

    The wrapped keys come from the key store beside the KEK when the instance has one (so a record whose
    key was destroyed after the backup — crypto-shredding — counts as ``key_destroyed``, not as damage),
    else from the restored database's own ``file_keys`` (instances from before the key store)."""
    from hogo.crypto.envelope import WrappedKey, blob_key_version, unwrap_file_keys

    ok = failed = key_gone = 0
    with engine.connect() as conn:
        rows = _random_rows(conn, n)
        keys: dict[int, Any] = {}
        for file_id, record_id, blob in rows:
            if file_id not in keys:
                wrapped = hogo.keystore.get(file_id)
                if not wrapped:
                    wrapped = [WrappedKey(v, p, pr, k, bytes(w)) for v, p, pr, k, w in conn.execute(text(
                        "SELECT version, purpose, provider, kek_id, wrapped FROM file_keys WHERE file_id = :f"),
                        {"f": file_id})]
                try:
                    keys[file_id] = unwrap_file_keys(hogo.key_provider, file_id, wrapped) if wrapped else None
                except SealError:
                    keys[file_id] = False
            fk = keys[file_id]
            blob = bytes(blob)
            if fk is None or (fk is not False and blob_key_version(blob) not in fk.versions):
                key_gone += 1
                continue
            if fk is False:
                failed += 1
                continue
            try:
                fk.open_record(record_id, blob)
                ok += 1
            except (SealError, ValueError, struct.error):
                failed += 1
    return {"sampled": len(rows), "decrypted": ok, "failed": failed, "key_destroyed": key_gone}


def _random_rows(conn: Connection, n: int) -> list[Any]:
    """Up to ``n`` distinct records picked at random through the primary key (``ORDER BY random()`` would
    read every record of a large database)."""
    import random

    low, high = conn.execute(text("SELECT min(id), max(id) FROM records")).one()
    if low is None or n <= 0:
        return []
    rng = random.SystemRandom()
    picked: dict[int, Any] = {}
    for _ in range(n * 3):
        if len(picked) >= n:
            break
        row = conn.execute(text("SELECT id, file_id, record_id, blob FROM records WHERE id >= :r ORDER BY id "
                                "LIMIT 1"), {"r": rng.randint(int(low), int(high))}).one_or_none()
        if row is not None:
            picked[row[0]] = row[1:]
    return list(picked.values())


def _record_verification(hogo: Hogo, actor: Actor, backup_id: str | None, result: dict[str, Any]) -> None:
    def work(s: Any) -> None:
        row = s.get(Backup, backup_id) if backup_id else None
        if row is not None and row.status != "disposed":
            row.verified_at = hogo.clock.now()
            row.verification = result
            row.status = "verified" if result["ok"] else "failed"

    _log(hogo, actor, Event.BACKUP_VERIFIED, Outcome.SUCCESS if result["ok"] else Outcome.FAILURE,
         target=backup_id, details={"ok": result["ok"], "directory": result["directory"],
                                    "problems": [p["code"] for p in result.get("problems", [])],
                                    "records": result.get("records")}, work=work)


# ----------------------------------------------------------------------------------------- restore


def restore_backup(hogo: Hogo, directory: Path, *, confirm: bool, public_key_text: str | None = None
                   ) -> dict[str, Any]:
    """Replace the instance's database with the backup in ``directory`` (local; the server stopped).

    Nothing is touched until the signature and every chunk have been checked; SQLite: the database file
    is replaced at once by a fully decrypted and checked file; PostgreSQL: one transaction (a failure
    leaves the database as it was). The restore is then recorded in the restored log."""
    if not confirm:
        raise ValidationFailed("a restore replaces the instance's database with the backup: confirm it with --yes",
                               field="confirm", code="confirmation_required")
    settings = hogo.settings
    with runlock.stopped(settings.data_dir, "restoring a backup"):  # and no server starts meanwhile
        return _restore_locked(hogo, directory, public_key_text)


def _restore_locked(hogo: Hogo, directory: Path, public_key_text: str | None) -> dict[str, Any]:
    settings = hogo.settings
    actor = Actor.of(None, None)
    opened = open_backup(hogo, directory, public_key_text=public_key_text)
    manifest = opened.manifest
    if manifest["engine"] != hogo.engine.dialect.name:
        raise BackupRefused(f"a {manifest['engine']} backup cannot be restored into a {hogo.engine.dialect.name} "
                            "instance", code="backup_engine")
    _check_revision(manifest["schema_revision"])
    hogo.engine.dispose()
    if settings.is_sqlite:
        target = _sqlite_path(settings.database_url)
        staging = target.parent / f".{manifest['backup_id']}.restore.db"
        staging.unlink(missing_ok=True)
        _decrypt_to_file(opened, staging)
        try:
            _check_sqlite_file(staging, manifest)
            for suffix in ("-wal", "-shm", "-journal"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            os.replace(staging, target)
            _fsync_dir(target.parent)
        finally:
            staging.unlink(missing_ok=True)
    else:
        with hogo.engine.begin() as conn:
            _load_postgresql(conn, settings.database_url, opened)
    hogo.engine.dispose()
    hogo.file_keys.clear()
    hogo.tree_cache.clear()
    _after_restore(hogo, actor, manifest, directory)
    return {"backup_id": manifest["backup_id"], "engine": manifest["engine"], "created_at": manifest["created_at"],
            "schema_revision": manifest["schema_revision"], "log_size": manifest["log_size"],
            "migrate_needed": manifest["schema_revision"] != store_db.head_revision()}


def _after_restore(hogo: Hogo, actor: Actor, manifest: dict[str, Any], directory: Path) -> None:
    """Record the restore in the restored log, and put back into the restored catalog the backups it does
    not know: this one (made after the snapshot it holds) and every other backup of this instance in the
    same place (made later), so that they are still disposed of when they expire (SEC-51(3))."""
    has_catalog = False
    with hogo.engine.connect() as conn:
        has_catalog = hogo.engine.dialect.has_table(conn, "backups")
    found = [(directory, manifest)]
    if has_catalog:
        key = instance_key(hogo)
        for other in sorted(directory.parent.iterdir()):
            if other != directory and other.is_dir() and not other.name.startswith("."):
                with contextlib.suppress(BackupRefused, ValueError, KeyError, OSError):
                    found.append((other, read_manifest(other, key)))

    def work(s: Any) -> None:
        if not has_catalog:
            return
        for place, m in found:
            if s.get(Backup, m["backup_id"]) is None:
                s.add(_row_from_manifest(place, m))

    _log(hogo, actor, Event.BACKUP_RESTORED, Outcome.SUCCESS, target=manifest["backup_id"],
         details={"from": str(directory), "created_at": manifest["created_at"], "log_size": manifest["log_size"],
                  "schema_revision": manifest["schema_revision"],
                  "backups_in_place": [m["backup_id"] for _, m in found]}, work=work)


def _row_from_manifest(place: Path, m: dict[str, Any]) -> Backup:
    return Backup(id=m["backup_id"], kind="database", engine=m["engine"], method=m["method"],
                  schema_revision=m["schema_revision"], importance=m["importance"], size_bytes=m["size"],
                  sha256=hashlib.sha256((place / "manifest.json").read_bytes()).hexdigest(), targets=[str(place)],
                  log_size=m["log_size"], status="complete", created_at=_parse_ts(m["created_at"]),
                  created_by=m["created_by"], retention_days=m["retention_days"],
                  expires_at=_parse_ts(m["expires_at"]))


def _parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# ----------------------------------------------------------------------------------------- catalog


def catalog_view(row: Backup) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "engine": row.engine, "method": row.method,
            "schema_revision": row.schema_revision, "importance": row.importance, "size_bytes": row.size_bytes,
            "sha256": row.sha256, "targets": list(row.targets), "log_size": row.log_size, "status": row.status,
            "created_at": row.created_at, "created_by": row.created_by, "retention_days": row.retention_days,
            "expires_at": row.expires_at, "verified_at": row.verified_at, "verification": row.verification,
            "disposed_at": row.disposed_at, "disposal": row.disposal}


def list_backups(hogo: Hogo, principal: Principal | None, *, include_disposed: bool = True,
                 ctx: RequestContext | None = None) -> list[dict[str, Any]]:
    Actor.of(principal, ctx)
    with hogo.unit_of_work(readonly=True) as s:
        q = select(Backup).order_by(Backup.created_at.desc(), Backup.id.desc())
        if not include_disposed:
            q = q.where(Backup.status != "disposed")
        return [catalog_view(r) for r in s.scalars(q)]


SCHEDULER = Actor(None, "hogo:scheduler", RequestContext(client_addr=None, user_agent="hogo-background"))


def dispose_expired(hogo: Hogo, principal: Principal | None, *, ctx: RequestContext | None = None,
                    scheduled: bool = False) -> dict[str, Any]:
    """SEC-51(3): delete every expired backup from each of its places, and record what was deleted where.
    ``scheduled``: the server's daily run (no principal)."""
    actor = SCHEDULER if scheduled else Actor.of(principal, ctx)
    now = hogo.clock.now()
    with hogo.unit_of_work(readonly=True) as s:
        ids = list(s.scalars(select(Backup.id).where(Backup.status != "disposed", Backup.expires_at <= now)
                             .order_by(Backup.expires_at)))
    done = []
    for backup_id in ids:
        with hogo.unit_of_work(readonly=True) as s:
            row = s.get(Backup, backup_id)
            assert row is not None
            targets = list(row.targets)
        done.append(_dispose_one(hogo, actor, backup_id, targets))
    return {"disposed": [d for d in done if d["disposed"]], "failed": [d for d in done if not d["disposed"]]}


def _dispose_one(hogo: Hogo, actor: Actor, backup_id: str, targets: list[str], *, reason: str | None = None,
                 details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Delete one backup from each of its places, then record what was deleted where (catalog and log, in
    one transaction); it counts as disposed only when no place still holds it."""
    results = [_remove_backup_dir(Path(t), backup_id) for t in targets]
    ok = all(r["result"] in ("deleted", "absent") for r in results)
    now = hogo.clock.now()
    disposal: dict[str, Any] = {"at": _ts(now), "by": actor.name, "places": results}
    if reason is not None:
        disposal["reason"] = reason

    def work(s: Any) -> None:
        r = s.get(Backup, backup_id)
        r.disposal = disposal
        if ok:
            r.status, r.disposed_at = "disposed", now

    _log(hogo, actor, Event.BACKUP_DISPOSED, Outcome.SUCCESS if ok else Outcome.FAILURE, target=backup_id,
         details={"places": results, **(details or {})},
         reason=reason if reason is not None or ok else "some places could not be emptied", work=work)
    return {"id": backup_id, "disposed": ok, "places": results}


def dispose_key_backups_before(hogo: Hogo, when: dt.datetime, *, reason: str,
                               ctx: RequestContext | None = None) -> dict[str, Any]:
    """Dispose of every key backup made before ``when``, expired or not, and record it.

    For crypto-shredding: a key backup older than an erasure still holds the destroyed key, and with it
    the erased records of every database backup (the deletion certificate names such key backups)."""
    actor = Actor.of(None, ctx)
    with hogo.unit_of_work(readonly=True) as s:
        rows = [(r.id, list(r.targets)) for r in s.scalars(select(Backup).where(
            Backup.kind == "keys", Backup.status != "disposed", Backup.created_at < when))]
    done = [_dispose_one(hogo, actor, backup_id, targets, reason=reason, details={"kind": "keys"})
            for backup_id, targets in rows]
    return {"disposed": [d for d in done if d["disposed"]], "failed": [d for d in done if not d["disposed"]]}


def _remove_backup_dir(path: Path, backup_id: str) -> dict[str, Any]:
    if not path.exists():
        return {"place": str(path), "result": "absent"}
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("backup_id") != backup_id:
            return {"place": str(path), "result": "refused", "error": "the directory holds another backup"}
    except (OSError, ValueError):
        return {"place": str(path), "result": "refused", "error": "not a hogo backup directory"}
    try:
        shutil.rmtree(path)
        _fsync_dir(path.parent)
    except OSError as exc:
        return {"place": str(path), "result": "error", "error": exc.strerror or type(exc).__name__}
    return {"place": str(path), "result": "deleted"}


# ----------------------------------------------------------------------------------------- key material


def backup_keys(hogo: Hogo, out: Path, passphrase: str, *, retention_days: int | None = None) -> dict[str, Any]:
    """SEC-151(3): every file of the keys directory, sealed under ``passphrase`` (Argon2id + AES-256-GCM),
    into ``out/<id>/``; signed like a database backup; catalogued with its own short retention. Local."""
    actor = Actor.of(None, None)
    days = KEY_BACKUP_RETENTION_DAYS if retention_days is None else retention_days
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValidationFailed(f"retention_days must be between 1 and {MAX_RETENTION_DAYS}", field="retention_days")
    if len(passphrase) < bc.PASSPHRASE_MIN_LENGTH:
        raise ValidationFailed(f"the key backup passphrase must be at least {bc.PASSPHRASE_MIN_LENGTH} characters",
                               field="passphrase", requirement="SEC-151")
    (root,) = _check_targets(hogo, [out])
    keys_dir = hogo.settings.keys_dir
    with hogo.unit_of_work(readonly=True) as s:
        db_roots = {str(Path(t).parent) for ts in s.scalars(select(Backup.targets).where(
            Backup.kind == "database", Backup.status != "disposed")) for t in ts}
    if str(root) in db_roots:
        raise ValidationFailed(f"{root} holds database backups: keep key backups apart from them (SEC-151(3))",
                               field="out", requirement="SEC-151")
    now = hogo.clock.now()
    backup_id = _new_id(now, "keys")
    buf = io.BytesIO()
    names = []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(keys_dir.rglob("*")):
            if not p.is_file() or p.name.endswith(_SQLITE_SIDE_FILES) or p.name.startswith(".key-backup-"):
                continue
            rel = p.relative_to(keys_dir).as_posix()
            names.append(rel)
            with _consistent_copy(p) as content:
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(content), 0o600, int(p.stat().st_mtime)
                tar.addfile(info, io.BytesIO(content))
    if not names:
        raise ConfigurationError(f"{keys_dir} holds no key material to back up")
    sealed = bc.seal_with_passphrase(buf.getvalue(), passphrase, context=backup_id)
    buf.seek(0)
    buf.truncate()
    partial, final = root / f".{backup_id}.partial", root / backup_id
    expires = now + dt.timedelta(days=days)
    try:
        partial.mkdir(mode=0o700)
        _write_synced(partial / "keys.sealed", sealed)
        manifest = {"format": KEYS_FORMAT, "backup_id": backup_id, "instance": hogo.settings.instance_name,
                    "log_origin": audit_tree.log_key(hogo).name, "created_at": _ts(now), "created_by": actor.name,
                    "files": names, "sealed_sha256": hashlib.sha256(sealed).hexdigest(), "method": METHOD_KEYS,
                    "retention_days": days, "expires_at": _ts(expires)}
        data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        _write_synced(partial / "manifest.json", data)
        _write_synced(partial / "manifest.sig", _sign(hogo, KEYS_SIGNED_FORMAT, data).encode("utf-8"))
        _fsync_dir(partial)
        os.rename(partial, final)
        _fsync_dir(root)
        row = Backup(id=backup_id, kind="keys", engine="-", method=METHOD_KEYS, schema_revision=None,
                     importance="critical", size_bytes=len(sealed) + len(data), sha256=hashlib.sha256(data).hexdigest(),
                     targets=[str(final)], log_size=None, status="complete", created_at=now, created_by=actor.name,
                     retention_days=days, expires_at=expires)
        _log(hogo, actor, Event.KEYS_BACKED_UP, Outcome.SUCCESS, target=backup_id,
             details={"place": str(final), "files": len(names), "retention_days": days, "expires_at": _ts(expires)},
             work=lambda s: s.add(row))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    return catalog_view(row)


_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


@contextlib.contextmanager
def _consistent_copy(path: Path) -> Iterator[bytes]:
    """A file's content; for an SQLite database (the key store) one consistent snapshot through the backup
    API, never a copy torn by a writer. The snapshot passes through a 0600 file in the keys directory."""
    with path.open("rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    if not is_sqlite:
        yield path.read_bytes()
        return
    snap = path.parent / f".key-backup-{secrets.token_hex(6)}.db"
    fd = os.open(snap, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(snap)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
            src.close()
        yield snap.read_bytes()
    finally:
        snap.unlink(missing_ok=True)


def restore_keys(keys_dir: Path, directory: Path, passphrase: str, *, confirm: bool,
                 public_key_text: str | None = None, replace: bool = False) -> dict[str, Any]:
    """Put the key files of a key backup back into ``keys_dir`` (local). With ``public_key_text`` the
    signature is checked first; without it (the keys are lost, so the instance's key is too) the sealed
    archive's authentication under the passphrase is what vouches for it."""
    if not confirm:
        raise ValidationFailed("restoring keys writes key material into the keys directory: confirm it with --yes",
                               field="confirm", code="confirmation_required")
    if public_key_text:
        manifest = read_manifest(directory, _key_from_text(public_key_text), signed_format=KEYS_SIGNED_FORMAT,
                                 fmt=KEYS_FORMAT)
    else:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != KEYS_FORMAT:
            raise BackupRefused(f"{directory} is not a hogo key backup", code="backup_format")
    sealed = (directory / "keys.sealed").read_bytes()
    if hashlib.sha256(sealed).hexdigest() != manifest["sealed_sha256"]:
        raise BackupRefused("keys.sealed does not match its manifest (altered)", code="backup_tampered")
    try:
        plain = bc.open_with_passphrase(sealed, passphrase, context=manifest["backup_id"])
    except bc.BackupCryptoError as exc:
        raise BackupRefused(str(exc), code=f"backup_{exc.kind}") from None
    written = []
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        members = tar.getmembers()
        for m in members:
            dest = (keys_dir / m.name).resolve()
            if not m.isfile() or keys_dir.resolve() not in dest.parents:
                raise BackupRefused(f"the key backup holds an unexpected entry {m.name!r}", code="backup_corrupt")
            if dest.exists() and not replace:
                raise ValidationFailed(f"{dest} exists; pass --replace to overwrite key material", field="replace")
        keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(keys_dir, 0o700)
        for m in members:
            dest = keys_dir / m.name
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            src = tar.extractfile(m)
            assert src is not None
            tmp = dest.with_name(dest.name + ".restoring")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                shutil.copyfileobj(src, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
            written.append(m.name)
    return {"backup_id": manifest["backup_id"], "files": written, "signature_checked": bool(public_key_text)}


__all__ = [
    "BackupRefused", "backup_keys", "create_backup", "dispose_expired", "list_backups", "open_backup",
    "restore_backup", "restore_keys", "verify_backup",
]
