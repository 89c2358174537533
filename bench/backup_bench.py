"""Benchmark of backups (ANON-19, SEC-51): making, verifying and restoring the backup of a 1 GB instance.

The instance: hogo's schema (migrations), an administrator, a payroll file defined through the services,
and then, straight into the database, records sealed with the file's real data key (one ~3 KB value
each, so every record decrypts in the verification's sample) up to the size asked for (default 1 GiB),
plus 200,000 realistic log entries (40,000 below 512 MiB) appended through ``audit.append``
(``log_bench.log_entries``) and a signed checkpoint, so the log verified after the restore is a real one.

Measured, each on the same instance and reported in MB/s of database (the SQLite file's size):

* ``create``: ``backups.create_backup`` into one target (online snapshot through the sqlite3 backup API,
  AES-256-GCM chunks, signed manifest, fsync, catalog);
* ``verify``: ``backups.verify_backup`` (signature, every chunk's hash, decryption into a scratch file,
  integrity check, the whole log verified with ``deep=False``, 20 records decrypted);
* ``restore``: ``backups.restore_backup`` (the same checks, decryption, atomic replacement, the restore
  recorded in the log), then the log verified again (``verified restore``);
* baselines in the same run: ``cp`` of the database file (``shutil.copyfile`` + fsync), the sqlite3 backup
  API alone, and AES-256-GCM over the file's bytes in 4 MiB chunks (no I/O).

The instance is cached, keyed by size and schema revision, in ``$HOGO_BENCH_CACHE`` (default
``${XDG_CACHE_HOME:-~/.cache}/hogo-bench``) as ``backup-<MiB>-<revision>-v1/`` (the data directory:
hogo.toml, keys/, hogo.db); reruns copy it instead of building it (``rm -r`` it to drop it).

PostgreSQL (``--pg URL``, else ``HOGO_BENCH_PG_URL``): the same rows are copied into a fresh schema and the
backup (COPY of every table in one REPEATABLE READ snapshot), verify (into a scratch schema) and restore are
timed there too; skipped, and said so, without a URL.

Standalone: ``.venv/bin/python bench/backup_bench.py [--size-mb N] [--quick] [--pg URL] [--keep]``;
``--quick`` is 128 MiB. A full run (1 GiB, SQLite) takes a few minutes once the fixture is cached.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import BENCH_DIR, log

REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests"))
FIXTURE_VERSION = "v1"
ADMIN = "admin"
ADMIN_PASSWORD = "Bench-Kanri-Sekinin-2026!"
PM_PASSWORD = "Bench-Hogo-Kanrisha-2026!"
LOG_ENTRIES = 200_000
VALUE_CHARS = 3000
BATCH = 5000


def cache_dir() -> Path:
    if d := os.environ.get("HOGO_BENCH_CACHE"):
        return Path(d)
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "hogo-bench"


def _settings(data_dir: Path, database_url: str = "") -> Any:
    from hogo.config import Argon2Params, Settings

    return Settings(data_dir=data_dir, database_url=database_url,
                    argon2=Argon2Params(time_cost=1, memory_cost_kib=64, parallelism=1))


def _mb(n: float) -> float:
    return n / 1e6


# ------------------------------------------------------------------------------------ fixture


def _define_file(hogo: Any) -> int:
    """A department, a protection manager (password and TOTP set) and the payroll file; the file's ID."""
    import pyotp
    import yaml

    from hogo.services import accounts, auth, files
    from hogo.services.audit import RequestContext

    ctx = RequestContext(client_addr="127.0.0.1", user_agent="bench")
    accounts.create_department(hogo, None, code="KYUYO", name="給与厚生課", ctx=ctx)
    accounts.create_user(hogo, None, username="pm.takahashi", department="KYUYO", roles=["protection_manager"],
                         password=PM_PASSWORD, ctx=ctx)
    p = auth.login(hogo, username="pm.takahashi", password=PM_PASSWORD, ctx=ctx).principal
    enrol = auth.start_mfa_enrolment(hogo, p, ctx)
    auth.confirm_mfa_enrolment(hogo, p, pyotp.TOTP(enrol.secret).now(), ctx)
    hogo.clock = _Later(hogo.clock)  # the next TOTP step: codes are single use
    pm = auth.login(hogo, username="pm.takahashi", password=PM_PASSWORD, totp=pyotp.TOTP(enrol.secret).at(
        hogo.clock.now()), ctx=ctx).principal
    spec = yaml.safe_load((REPO / "tests" / "data" / "payroll-spec.yaml").read_text(encoding="utf-8"))
    view = files.create_file(hogo, pm, spec, ctx=ctx)
    from sqlalchemy import select

    from hogo.store.models import PersonalDataFile

    with hogo.unit_of_work(readonly=True) as s:
        return int(s.scalar(select(PersonalDataFile.id).where(PersonalDataFile.code == view.code)))


class _Later:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def now(self) -> dt.datetime:
        return self.inner.now() + dt.timedelta(seconds=31)


def _fill_records(hogo: Any, file_id: int, db_path: Path, size_bytes: int) -> int:
    """Sealed records, inserted straight into the database until its file reaches ``size_bytes``."""
    from hogo.services import files

    with hogo.unit_of_work(readonly=True) as s:
        keys = files.file_keys(hogo, s, file_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    n = 0
    alphabet = "あいうえおかきくけこさしすせそABCDEFGHIJ0123456789"
    rnd = os.urandom
    while db_path.stat().st_size + _wal_size(db_path) < size_bytes:
        batch = []
        for i in range(BATCH):
            raw = rnd(VALUE_CHARS)
            value = "".join(alphabet[b % len(alphabet)] for b in raw[:64]) + raw.hex()[: VALUE_CHARS - 64]
            batch.append((f"R{n + i:09d}", {"name": value, "employee_no": f"E{n + i:07d}"}))
        version, blobs = keys.seal_records(batch)
        conn.executemany(
            "INSERT INTO records (file_id, record_id, segment, key_version, blob, revision, created_at, "
            "updated_at) VALUES (?, ?, 'KYUYO', ?, ?, 1, ?, ?)",
            [(file_id, rid, version, blob, now, now) for (rid, _), blob in zip(batch, blobs, strict=True)])
        conn.commit()
        n += BATCH
        if n % 50_000 == 0:
            log(f"  {n:,} records ({_mb(db_path.stat().st_size + _wal_size(db_path)):.0f} MB)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return n


def _wal_size(db_path: Path) -> int:
    wal = Path(f"{db_path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def build_fixture(target: Path, size_mb: int) -> dict[str, Any]:
    from hogo.bootstrap import build
    from hogo.services import audit_tree, instance

    sys.path.insert(0, str(BENCH_DIR))
    import log_bench

    t0 = time.perf_counter()
    settings = _settings(target)
    instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD)
    hogo = build(settings)
    try:
        file_id = _define_file(hogo)
        entries = LOG_ENTRIES if size_mb >= 512 else LOG_ENTRIES // 5
        log(f"  appending {entries:,} log entries")
        log_bench._fill_log(hogo, entries)
        audit_tree.checkpoint(hogo, anchor=False)
        db_path = target / "hogo.db"
        records = _fill_records(hogo, file_id, db_path, size_mb * 1024 * 1024)
        audit_tree.checkpoint(hogo, anchor=False)
    finally:
        hogo.close()
    info = {"records": records, "log_entries": entries, "db_bytes": (target / "hogo.db").stat().st_size,
            "build_s": round(time.perf_counter() - t0, 1)}
    (target / "fixture.json").write_text(json.dumps(info), encoding="utf-8")
    return info


def fixture(size_mb: int, work: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the cached instance in ``work``; built (and cached) first when missing."""
    from hogo.store import db

    cached = cache_dir() / f"backup-{size_mb}-{db.head_revision()}-{FIXTURE_VERSION}"
    if not (cached / "fixture.json").exists():
        log(f"building the {size_mb} MiB instance (cached in {cached})")
        tmp = cached.with_name(cached.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        build_fixture(tmp, size_mb)
        tmp.rename(cached)
    data_dir = work / "data"
    shutil.copytree(cached, data_dir)
    os.chmod(data_dir / "keys", 0o700)
    return data_dir, json.loads((cached / "fixture.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ measuring


def _fsynced_copy(src: Path, dst: Path) -> None:
    with src.open("rb") as a, dst.open("wb") as b:
        shutil.copyfileobj(a, b, 1 << 20)
        b.flush()
        os.fsync(b.fileno())


def _drop_caches_hint() -> str:
    return "page cache warm (the database was just copied): figures are CPU- and write-bound, not read-bound"


def baselines(db_path: Path, work: Path) -> dict[str, Any]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    size = db_path.stat().st_size
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    _fsynced_copy(db_path, work / "copy.db")
    out["cp_fsync_s"] = time.perf_counter() - t0
    (work / "copy.db").unlink()
    t0 = time.perf_counter()
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    dst = sqlite3.connect(work / "api.db")
    src.backup(dst)
    dst.close()
    src.close()
    out["sqlite_backup_api_s"] = time.perf_counter() - t0
    (work / "api.db").unlink()
    aead = AESGCM(os.urandom(32))
    t0 = time.perf_counter()
    with db_path.open("rb") as f:
        i = 0
        while piece := f.read(4 * 1024 * 1024):
            aead.encrypt(i.to_bytes(12, "big"), piece, b"bench")
            i += 1
    out["aes_gcm_s"] = time.perf_counter() - t0
    return {k: {"s": round(v, 2), "mb_s": round(_mb(size) / v, 1)} for k, v in out.items()}


def run_sqlite(size_mb: int, keep: bool) -> dict[str, Any]:
    from hogo.bootstrap import build
    from hogo.services import audit_access, backups

    with tempfile.TemporaryDirectory(prefix="hogo-backup-bench-", dir=os.environ.get("HOGO_BENCH_TMP")) as tmp:
        work = Path(tmp)
        data_dir, info = fixture(size_mb, work)
        db_path = data_dir / "hogo.db"
        size = db_path.stat().st_size
        log(f"instance: {_mb(size):.0f} MB, {info['records']:,} records, {info['log_entries']:,}+ log entries")
        result: dict[str, Any] = {"engine": "sqlite", "db_mb": round(_mb(size), 1), "records": info["records"],
                                  "note": _drop_caches_hint()}
        result["baselines"] = baselines(db_path, work)
        hogo = build(_settings(data_dir))
        try:
            t0 = time.perf_counter()
            made = backups.create_backup(hogo, None, [work / "bk"])
            t_create = time.perf_counter() - t0
            log(f"  create: {t_create:.1f} s")
            directory = Path(made["targets"][0])
            t0 = time.perf_counter()
            checked = backups.verify_backup(hogo, None, directory=directory)
            t_verify = time.perf_counter() - t0
            assert checked["ok"], checked
            log(f"  verify: {t_verify:.1f} s (records {checked['records']})")
            hogo.close()
            t0 = time.perf_counter()
            backups.restore_backup(hogo, directory, confirm=True)
            t_restore = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = audit_access.verify(hogo, None, deep=False)
            t_log = time.perf_counter() - t0
            assert report.ok, report.as_dict()
            log(f"  restore: {t_restore:.1f} s, then log verified in {t_log:.1f} s")
        finally:
            hogo.close()
        result.update({
            "backup_mb": round(_mb(made["size_bytes"]), 1),
            "create": {"s": round(t_create, 2), "mb_s": round(_mb(size) / t_create, 1)},
            "verify": {"s": round(t_verify, 2), "mb_s": round(_mb(size) / t_verify, 1)},
            "restore": {"s": round(t_restore, 2), "mb_s": round(_mb(size) / t_restore, 1)},
            "verified_restore": {"s": round(t_restore + t_log, 2), "mb_s": round(_mb(size) / (t_restore + t_log), 1)},
        })
        if keep:
            kept = cache_dir() / "backup-bench-last"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(directory, kept)
        return result


@contextlib.contextmanager
def _pg_schema(base_url: str) -> Iterator[str]:
    import urllib.parse
    import uuid

    from sqlalchemy import create_engine, text

    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    parts = urllib.parse.urlsplit(base_url)
    query = [*urllib.parse.parse_qsl(parts.query), ("options", f"-csearch_path={schema}")]
    try:
        yield urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_postgresql(size_mb: int, pg: str) -> dict[str, Any]:
    """The cached SQLite instance's rows copied into a fresh PostgreSQL schema (same keys), then timed."""
    from sqlalchemy import text

    from hogo.bootstrap import build
    from hogo.services import audit_access, backups
    from hogo.store import db

    with tempfile.TemporaryDirectory(prefix="hogo-backup-bench-pg-") as tmp, _pg_schema(pg) as url:
        work = Path(tmp)
        data_dir, _info = fixture(size_mb, work)
        engine = db.make_engine(url)
        db.upgrade(engine)
        src = sqlite3.connect(data_dir / "hogo.db")
        t0 = time.perf_counter()
        with engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            cur = raw.cursor()  # type: ignore[union-attr]
            tables = [t for (t,) in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> "
                "'alembic_version'"))]
            fks = conn.execute(text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace")).all()
            for t, name, _ in fks:
                conn.execute(text(f'ALTER TABLE {t} DROP CONSTRAINT "{name}"'))
            for t in tables:
                conn.execute(text(f'ALTER TABLE "{t}" DISABLE TRIGGER USER'))
                conn.execute(text(f'DELETE FROM "{t}"'))
            for t in tables:
                cols = [c for (c,) in conn.execute(text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = :t ORDER BY ordinal_position"), {"t": t})]
                types = dict(conn.execute(text(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                    "current_schema() AND table_name = :t"), {"t": t}).all())
                rows = src.execute(f'SELECT {", ".join(cols)} FROM "{t}"')
                with cur.copy(f'COPY "{t}" ({", ".join(cols)}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row([_pg_value(v, types[c]) for v, c in zip(row, cols, strict=True)])
            for t in tables:
                conn.execute(text(f'ALTER TABLE "{t}" ENABLE TRIGGER USER'))
            for t, name, definition in fks:
                conn.execute(text(f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {definition}'))
            for (seq,) in conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = "
                                            "current_schema()")).all():
                tbl, col = conn.execute(text(
                    "SELECT d.refobjid::regclass::text, a.attname FROM pg_depend d JOIN pg_attribute a ON "
                    "a.attrelid = d.refobjid AND a.attnum = d.refobjsubid WHERE d.objid = CAST(:s AS regclass)"),
                    {"s": seq}).one()
                conn.execute(text(f"SELECT setval(:s, coalesce((SELECT max({col}) FROM {tbl}), 0) + 1, false)"),
                             {"s": seq})
        src.close()
        load_s = time.perf_counter() - t0
        with engine.connect() as conn:
            size = int(conn.execute(text("SELECT sum(pg_total_relation_size(format('%I.%I', schemaname, "
                                         "tablename))) FROM pg_tables WHERE schemaname = current_schema()"))
                       .scalar() or 0)
        engine.dispose()
        log(f"  PostgreSQL: rows loaded in {load_s:.0f} s ({_mb(size):.0f} MB of tables and indexes)")
        hogo = build(_settings(data_dir, url))
        try:
            assert audit_access.verify(hogo, None, deep=False).ok
            t0 = time.perf_counter()
            made = backups.create_backup(hogo, None, [work / "bk"])
            t_create = time.perf_counter() - t0
            directory = Path(made["targets"][0])
            log(f"  create: {t_create:.1f} s")
            t0 = time.perf_counter()
            checked = backups.verify_backup(hogo, None, directory=directory)
            t_verify = time.perf_counter() - t0
            assert checked["ok"], checked
            log(f"  verify: {t_verify:.1f} s")
            t0 = time.perf_counter()
            backups.restore_backup(hogo, directory, confirm=True)
            t_restore = time.perf_counter() - t0
            t0 = time.perf_counter()
            assert audit_access.verify(hogo, None, deep=False).ok
            t_log = time.perf_counter() - t0
            log(f"  restore: {t_restore:.1f} s, then log verified in {t_log:.1f} s")
        finally:
            hogo.close()
        plain = made["size_bytes"]
        return {"engine": "postgresql", "db_mb": round(_mb(size), 1), "dump_mb": round(_mb(plain), 1),
                "create": {"s": round(t_create, 2), "mb_s": round(_mb(size) / t_create, 1)},
                "verify": {"s": round(t_verify, 2), "mb_s": round(_mb(size) / t_verify, 1)},
                "restore": {"s": round(t_restore, 2), "mb_s": round(_mb(size) / t_restore, 1)},
                "verified_restore": {"s": round(t_restore + t_log, 2),
                                     "mb_s": round(_mb(size) / (t_restore + t_log), 1)},
                "note": "MB/s of the tables and indexes (pg_total_relation_size); the test server runs with fsync off"}


def _pg_value(v: Any, data_type: str) -> Any:
    if v is None:
        return None
    if data_type == "boolean":
        return bool(v)
    if data_type.startswith("timestamp") and isinstance(v, str):
        return dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC)
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the instance's database (MiB)")
    ap.add_argument("--quick", action="store_true", help="128 MiB")
    ap.add_argument("--pg", default=os.environ.get("HOGO_BENCH_PG_URL"), help="PostgreSQL URL (else skipped)")
    ap.add_argument("--pg-size-mb", type=int, default=None, help="size for PostgreSQL (default: as --size-mb)")
    ap.add_argument("--engines", default="sqlite,postgresql", help="which to run (comma-separated)")
    ap.add_argument("--keep", action="store_true", help="keep the last backup in the cache directory")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    size_mb = 128 if args.quick else args.size_mb
    results: dict[str, Any] = {}
    if "sqlite" in args.engines.split(","):
        results["sqlite"] = run_sqlite(size_mb, args.keep)
        log(json.dumps(results["sqlite"]))
    if "postgresql" not in args.engines.split(","):
        pass
    elif args.pg:
        results["postgresql"] = run_postgresql(args.pg_size_mb or size_mb, args.pg)
    else:
        results["postgresql"] = {"skipped": "no PostgreSQL URL (--pg or HOGO_BENCH_PG_URL)"}
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for engine, r in results.items():
            if "skipped" in r:
                print(f"{engine}: skipped ({r['skipped']})")
                continue
            print(f"{engine}: database {r['db_mb']} MB")
            for k in ("create", "verify", "restore", "verified_restore"):
                print(f"  {k:17} {r[k]['s']:8.2f} s  {r[k]['mb_s']:8.1f} MB/s")
            for k, v in r.get("baselines", {}).items():
                print(f"  baseline {k:19} {v['s']:6.2f} s  {v['mb_s']:8.1f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
