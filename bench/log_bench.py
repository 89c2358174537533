"""Benchmarks of the tamper-evident log, run by ``bench/run.py`` (``make bench``). Each figure is
reported with a plain baseline measured in the same run:

6. Durable appends with group commit. K threads (default 16) each append one entry per durable commit
   through ``Hogo.write_together(entries=[audit.entry(…)])`` on a real instance, against the same
   threads doing ``write_together`` with plain driver-level INSERTs of the same rows without hashing:
   the entry's row (the same column values, a precomputed payload, a zero leaf hash) into a plain
   table with audit_events' columns and indexes, and its record reference (the same record ID) into a
   plain table with audit_record_refs' columns and indexes, neither with triggers — no encoding,
   hashing, head update or tiles. A second, stricter baseline inserts the entry's row alone ("events
   only": no record reference). Then an async mode: N tasks (default 256) on one event loop, each
   awaiting ``Hogo.write_together_async`` of one entry (as the API's record read records its access),
   against the same tasks inserting the plain rows with the driver's own execute. Then a batch mode:
   one thread, 1,000 entries per transaction, for all three. Alternated A B C A B C. SQLite as
   ``hogo.store.db.make_engine`` configures it (WAL, synchronous=FULL); PostgreSQL when a URL is given
   (``--pg``, ``HOGO_BENCH_PG_URL``, else ``HOGO_TEST_PG_URL`` as ``eval "$(.ci/start-postgres)"``
   sets it — that throw-away server runs with fsync off, which the report flags); otherwise skipped,
   and said so.
7. Verifying a log of 1,000,000 entries (realistic entries appended by ``audit.append`` in
   transactions of 10,000, then a signed checkpoint): ``audit_verify.verify_database`` with
   ``deep=False`` (three runs, the median counts) and ``deep=True`` (one run), against ``hashlib.sha256``
   over the same entry bytes (read into memory first) in the same process. On SQLite the verifier
   hands half of the log to a worker process; each run's CPU seconds here and in the worker and the
   load average are printed too, since a busy machine moves the wall-clock figure (the target's).
8. Inclusion proofs in a log of 1,000,000 entries (10,000,000 with ``--full``): p50/p99 to produce
   (``TreeReader.inclusion_proof``, with a fresh node cache per proof — cold — and with a shared
   one — warm) and to verify (``merkle.verify_inclusion``), against one ``sha256`` call and a
   SELECT of one leaf by seq. The fixture is a SQLite file with hogo's schema (migrations), the six
   search indexes of audit_events dropped (proofs never read them; they would triple the file),
   random 32-byte leaf hashes and minimal columns (no payloads), and the 256-wide subtree roots
   (levels 8, 16, …) computed with ``merkle.root_of_leaves``; the root is cross-checked with the
   independent in-memory tile store of ``bench/merkle_bench.py`` when the fixture is built. The file is
   read once into the OS page cache before the measurement (this machine reclaims idle pages).

   The fixture is cached, keyed by size and schema revision, in ``$HOGO_BENCH_CACHE`` (default
   ``${XDG_CACHE_HOME:-~/.cache}/hogo-bench``) as ``log-proofs-<size>-<revision>-v1.db`` with a
   ``.json`` beside it (size, root, build time): reruns reuse it (about 120 MB per million entries;
   ``rm -r ~/.cache/hogo-bench`` to drop it). ``make clean`` leaves it alone.
9. The bulk-download rule over 1,000,000 events: ``bench/analysis_bench.py``'s ``bench_bulk_rule`` when that
   file is there (it is written separately; skipped, and said so, when it is not).

Standalone: ``.venv/bin/python bench/log_bench.py [--quick] [--full] [--pg URL] [--only append,verify,proofs,bulk]
[--profile]``; ``--profile`` also prints where the time of verifying and of batch appends goes (cProfile).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import datetime as dt
import gc
import hashlib
import io
import itertools
import json
import os
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import BENCH_DIR, log, percentile

REPO = BENCH_DIR.parent
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost_kib": 64, "parallelism": 1}  # as tests/support.TEST_ARGON2
ADMIN = "admin"
ADMIN_PASSWORD = "Bench-Kanri-Sekinin-2026!"
FIXTURE_VERSION = "v1"
TARGETS = {
    "append_sqlite_entries_per_s": 20_000, "append_ratio_min": 0.5, "verify_entries_per_s": 500_000,
    "proof_prove_p99_ms": 5.0, "proof_verify_p99_ms": 1.0,
}


@dataclasses.dataclass
class LogOptions:
    threads: int = 16
    async_callers: int = 256  # tasks on one event loop (concurrent requests), each awaiting one entry per commit
    duration: float = 3.0  # seconds per measured run
    rounds: int = 2  # A B rounds
    batch: int = 1000  # entries per transaction in the batch mode
    verify_entries: int = 1_000_000
    proof_size: int = 1_000_000
    proof_samples: int = 1000
    pg_url: str | None = None
    cache_dir: Path | None = None
    profile: bool = False
    bulk_entries: int = 1_000_000
    only: frozenset[str] = frozenset({"append", "verify", "proofs", "bulk"})


def pg_url_from_env() -> str | None:
    return os.environ.get("HOGO_BENCH_PG_URL") or os.environ.get("HOGO_TEST_PG_URL") or None


def cache_dir() -> Path:
    if d := os.environ.get("HOGO_BENCH_CACHE"):
        return Path(d)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hogo-bench"


def _ms(samples_ns: list[int]) -> dict[str, float]:
    return {"n": len(samples_ns), "p50": round(percentile(samples_ns, 50) / 1e6, 4),
            "p99": round(percentile(samples_ns, 99) / 1e6, 4), "max": round(max(samples_ns) / 1e6, 4),
            "mean": round(statistics.fmean(samples_ns) / 1e6, 4)}


# ------------------------------------------------------------------------------ instances


def _settings(data_dir: Path, database_url: str = "") -> Any:
    from hogo.config import Argon2Params, Settings

    return Settings(data_dir=data_dir, database_url=database_url, argon2=Argon2Params(**CHEAP_ARGON2))


def _new_instance(data_dir: Path, database_url: str = "") -> Any:
    from hogo.bootstrap import build
    from hogo.services import instance

    settings = _settings(data_dir, database_url)
    instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD)
    return build(settings)


@contextlib.contextmanager
def _pg_schema(base_url: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL database at ``base_url`` (dropped afterwards); the URL that uses it."""
    from sqlalchemy import text

    from hogo.store import db

    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = db.make_engine(base_url)
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


def _pg_durability(engine: Any) -> dict[str, str]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return {k: str(conn.execute(text(f"SHOW {k}")).scalar()) for k in
                ("server_version", "fsync", "synchronous_commit", "full_page_writes")}


# ---------------------------------------------------------------------------- 6. appends


def _plain_table(engine: Any, model: Any, name: str) -> Any:
    """``model``'s table (columns and indexes) under another name, without its triggers."""
    from sqlalchemy import MetaData

    from hogo.store.models import Base

    md = MetaData(naming_convention=dict(Base.metadata.naming_convention))
    table = model.__table__.to_metadata(md, name=name)
    table.primary_key.name = "pk_" + name
    for ix in table.indexes:
        ix.name = name + "_" + str(ix.name)
    md.create_all(engine)
    return table


class _Access:
    """One access to one record, as the record-read path records it: the same entry for both sides."""

    def __init__(self) -> None:
        from hogo.domain.events import Event, Outcome
        from hogo.services.audit import RequestContext

        self.ctx = RequestContext(client_addr="10.20.30.40", user_agent="hogo-bench",
                                  session_id="2b7c9b8e-0f7e-4d53-9a53-0c3c5d1f7a11")
        self.kw: dict[str, Any] = {
            "event": Event.RECORD_READ, "outcome": Outcome.SUCCESS, "actor_id": 7, "actor_name": "clerk.ito",
            "file_code": "payroll-mynumber", "purpose": "源泉徴収票作成事務", "fields": ("name", "address", "phone"),
        }

    def entry(self, hogo: Any, i: int) -> Any:
        from hogo.services import audit

        return audit.entry(now=hogo.clock.now(), ctx=self.ctx, records=(f"R{i:09d}",), **self.kw)

    def plain_row(self, now: dt.datetime, sqlite: bool) -> tuple[Any, ...]:
        """The values ``audit.append`` would insert for this access (seq first, set per row), with a
        precomputed payload and leaf, stored as the column types store them."""
        from hogo.domain.auditlog import LogEntry, encode

        k = self.kw
        e = LogEntry(ts=now, event=k["event"].value, outcome=k["outcome"].value, actor_id=k["actor_id"],
                     actor=k["actor_name"], file=k["file_code"], purpose=k["purpose"], records=("R000000000",),
                     fields=tuple(sorted(k["fields"])), client=self.ctx.client_addr, session=self.ctx.session_id)
        ts = now.astimezone(dt.UTC)
        return (0, ts.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else ts, e.event, e.outcome, None, e.actor_id,
                e.actor, None, None, e.file, e.purpose, 1, e.client, e.session, None, encode(0, e), bytes(32))


def _plain_insert_sql(dialect: Any) -> tuple[str, str]:
    """Driver-level INSERTs into the plain tables (the fastest plain path, as ``audit.append`` uses):
    the entry's row, and its record reference."""
    cols = ("seq, ts, event, outcome, reason, actor_id, actor_name, subject_user_id, target, file_code, purpose, "
            "record_count, client_addr, session_id, details, entry, leaf_hash")
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    return ("INSERT INTO bench_plain_events (" + cols + ") VALUES (" + ", ".join([mark] * 17) + ")",
            f"INSERT INTO bench_plain_refs (seq, record_id, file_code) VALUES ({mark}, {mark}, {mark})")


def _run_threads(k: int, duration: float, call: Callable[[int, int], None]) -> tuple[int, float]:
    """``k`` threads calling ``call(thread, n)`` until ``duration`` has passed; (calls completed, seconds)."""
    stop = threading.Event()
    counts = [0] * k
    errors: list[BaseException] = []
    start = threading.Barrier(k + 1)

    def worker(j: int) -> None:
        n = 0
        start.wait()
        try:
            while not stop.is_set():
                call(j, n)
                n += 1
        except BaseException as exc:  # reported below: the measurement is void
            errors.append(exc)
        counts[j] = n

    threads = [threading.Thread(target=worker, args=(j,), name=f"bench-append-{j}") for j in range(k)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} appending threads failed; the measurement is void") from errors[0]
    return sum(counts), elapsed


def _run_async(k: int, duration: float, call: Callable[[int, int], Any]) -> tuple[int, float]:
    """``k`` tasks on one event loop, each awaiting ``call(task, n)`` until ``duration`` has passed (as
    an async server's request handlers await their log entries); (calls completed, seconds)."""
    import asyncio

    async def main() -> tuple[int, float]:
        stop = asyncio.Event()
        counts = [0] * k

        async def worker(j: int) -> None:
            n = 0
            while not stop.is_set():
                await call(j, n)
                n += 1
            counts[j] = n

        tasks = [asyncio.create_task(worker(j)) for j in range(k)]
        t0 = time.perf_counter()
        await asyncio.sleep(duration)
        stop.set()
        await asyncio.gather(*tasks)  # an error here voids the measurement
        return sum(counts), time.perf_counter() - t0

    return asyncio.run(main())


def _append_modes(hogo: Any, opts: LogOptions) -> dict[str, Callable[[float], dict[str, Any]]]:
    from sqlalchemy import event, func, select

    from hogo.store.models import AuditEvent, AuditHead, AuditRecordRef

    access = _Access()
    plain = _plain_table(hogo.engine, AuditEvent, "bench_plain_events")
    _plain_table(hogo.engine, AuditRecordRef, "bench_plain_refs")
    template = access.plain_row(hogo.clock.now(), hogo.engine.dialect.name == "sqlite")
    plain_sql, refs_sql = _plain_insert_sql(hogo.engine.dialect)
    file_code = access.kw["file_code"]
    seqs = itertools.count()
    commits = [0]
    event.listen(hogo.engine, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    k, batch = opts.threads, opts.batch

    def head() -> int:
        with hogo.engine.connect() as conn:
            return int(conn.execute(select(AuditHead.size).where(AuditHead.id == 1)).scalar_one())

    def plain_count() -> int:
        with hogo.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(plain)).scalar_one())

    def measured(threads: int, per_call: int, call: Callable[[int, int], Any], count: Callable[[], int],
                 duration: float, run: Callable[..., tuple[int, float]] = _run_threads) -> dict[str, Any]:
        before, c0 = count(), commits[0]
        calls, elapsed = run(threads, duration, call)
        entries = calls * per_call
        if count() - before != entries:
            raise AssertionError(f"{entries} entries acknowledged but {count() - before} stored")
        n_commits = commits[0] - c0
        return {"entries": entries, "seconds": round(elapsed, 3), "entries_per_s": round(entries / elapsed, 1),
                "commits": n_commits, "entries_per_commit": round(entries / max(n_commits, 1), 2)}

    # Entry i names record R<i>: hogo's entry, and the plain record reference of the same access.
    def rows(i: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        seq = next(seqs)
        return (seq, *template[1:]), (seq, f"R{i:09d}", file_code)

    def hogo_one(j: int, n: int) -> None:
        hogo.write_together(entries=[access.entry(hogo, j * 10**7 + n)])

    def plain_one(j: int, n: int, refs: bool = True) -> None:
        row, ref = rows(j * 10**7 + n)

        def work(db: Any) -> None:
            conn = db.connection()
            conn.exec_driver_sql(plain_sql, row)
            if refs:
                conn.exec_driver_sql(refs_sql, ref)
        hogo.write_together(work)

    def hogo_async(j: int, n: int) -> Any:
        return hogo.write_together_async(entries=[access.entry(hogo, j * 10**7 + n)])

    def plain_async(j: int, n: int, refs: bool = True) -> Any:
        row, ref = rows(j * 10**7 + n)

        def work(db: Any) -> None:
            # the driver's own execute: the cheapest plain insert there is
            raw = db.connection().connection.driver_connection
            raw.execute(plain_sql, row)
            if refs:
                raw.execute(refs_sql, ref)
        return hogo.write_together_async(work)

    def hogo_batch(j: int, n: int) -> None:
        hogo.write_together(entries=[access.entry(hogo, j * 10**7 + n * batch + i) for i in range(batch)])

    def plain_batch(j: int, n: int, refs: bool = True) -> None:
        both = [rows(j * 10**7 + n * batch + i) for i in range(batch)]

        def work(db: Any) -> None:
            conn = db.connection()
            conn.exec_driver_sql(plain_sql, [r for r, _ in both])
            if refs:
                conn.exec_driver_sql(refs_sql, [f for _, f in both])
        hogo.write_together(work)

    def events_only(fn: Callable[..., Any]) -> Callable[[int, int], Any]:
        return lambda j, n: fn(j, n, refs=False)

    a = opts.async_callers
    return {
        "concurrent hogo": lambda d: measured(k, 1, hogo_one, head, d),
        "concurrent plain": lambda d: measured(k, 1, plain_one, plain_count, d),
        "concurrent plain events only": lambda d: measured(k, 1, events_only(plain_one), plain_count, d),
        "async hogo": lambda d: measured(a, 1, hogo_async, head, d, _run_async),
        "async plain": lambda d: measured(a, 1, plain_async, plain_count, d, _run_async),
        "async plain events only": lambda d: measured(a, 1, events_only(plain_async), plain_count, d, _run_async),
        "batch hogo": lambda d: measured(1, batch, hogo_batch, head, d),
        "batch plain": lambda d: measured(1, batch, plain_batch, plain_count, d),
        "batch plain events only": lambda d: measured(1, batch, events_only(plain_batch), plain_count, d),
    }


def _bench_appends_on(hogo: Any, opts: LogOptions) -> dict[str, Any]:
    modes = _append_modes(hogo, opts)
    warm = min(1.0, opts.duration / 3)
    for fn in modes.values():
        fn(warm)
    runs: list[dict[str, Any]] = []
    for r in range(1, opts.rounds + 1):
        for name, fn in modes.items():
            log(f"  round {r}: {name} ({opts.duration:g} s)")
            runs.append({"round": r, "mode": name, **fn(opts.duration)})
    out: dict[str, Any] = {"runs": runs}

    def mean(mode: str) -> float:
        return statistics.fmean(x["entries_per_s"] for x in runs if x["mode"] == mode)

    for kind in ("concurrent", "async", "batch"):
        h, p, pe = mean(f"{kind} hogo"), mean(f"{kind} plain"), mean(f"{kind} plain events only")
        epc = statistics.fmean(x["entries_per_commit"] for x in runs if x["mode"] == f"{kind} hogo")
        out[kind] = {"hogo_entries_per_s": round(h, 1), "plain_entries_per_s": round(p, 1),
                     "ratio_hogo_over_plain": round(h / p, 3) if p else None,
                     "plain_events_only_entries_per_s": round(pe, 1),
                     "ratio_hogo_over_plain_events_only": round(h / pe, 3) if pe else None,
                     "hogo_entries_per_commit": round(epc, 2)}
    return out


def bench_appends(opts: LogOptions) -> dict[str, Any]:
    out: dict[str, Any] = {
        "threads": opts.threads, "batch_entries": opts.batch, "duration_s": opts.duration, "rounds": opts.rounds,
        "async_callers": opts.async_callers,
        "order": "concurrent hogo, plain, plain events only; async the same; batch the same; per round",
        "entry": "data:record:read of one record (file, purpose, 3 fields, client, session): one entry, one ref",
        "plain": "the same rows without hashing: the entry's row into a plain table with audit_events' columns "
                 "and indexes (payload precomputed, zero leaf hash) and its record reference into a plain table "
                 "with audit_record_refs' columns and indexes; no triggers, encoding, hashing, head update or tiles",
        "plain_events_only": "stricter: the entry's row alone, no record reference",
    }
    with tempfile.TemporaryDirectory(prefix="hogo-bench-log-") as tmp:
        log("log appends: SQLite (WAL, synchronous=FULL) …")
        hogo = _new_instance(Path(tmp) / "sqlite")
        try:
            out["sqlite"] = {"database": "sqlite (WAL, synchronous=FULL)", **_bench_appends_on(hogo, opts)}
        finally:
            hogo.close()
        if not opts.pg_url:
            log("log appends: PostgreSQL skipped (no --pg, HOGO_BENCH_PG_URL or HOGO_TEST_PG_URL)")
            out["postgresql"] = {"skipped": "no PostgreSQL URL (--pg, HOGO_BENCH_PG_URL or HOGO_TEST_PG_URL)"}
        else:
            log("log appends: PostgreSQL …")
            with _pg_schema(opts.pg_url) as url:
                hogo = _new_instance(Path(tmp) / "pg", url)
                try:
                    server = _pg_durability(hogo.engine)
                    durable = server["fsync"] == "on" and server["synchronous_commit"] != "off"
                    out["postgresql"] = {"database": "postgresql", "server": server, "durable": durable,
                                         **_bench_appends_on(hogo, opts)}
                finally:
                    hogo.close()
    # The target is judged on the async mode: many concurrent requests on one server, each awaiting its
    # own entry's durable commit (as the record read does), so the groups are as large as the crowd. The
    # threaded mode's 16 callers make groups of at most 16, and its rate is the disk's commit latency.
    s = out["sqlite"]
    a = s["async"]
    goal, floor = TARGETS["append_sqlite_entries_per_s"], TARGETS["append_ratio_min"]
    out["target"] = {"sqlite_entries_per_s": goal, "ratio_min": floor, "mode": "async"}
    out["met"] = {"sqlite_entries_per_s": a["hogo_entries_per_s"] >= goal,
                  "ratio": (a["ratio_hogo_over_plain"] or 0) >= floor,
                  "ratio_events_only": (a["ratio_hogo_over_plain_events_only"] or 0) >= floor,
                  **{f"{kind}_{what}": ok for kind in ("concurrent", "batch") for what, ok in (
                      ("entries_per_s", s[kind]["hogo_entries_per_s"] >= goal),
                      ("ratio", (s[kind]["ratio_hogo_over_plain"] or 0) >= floor))}}
    return out


# ----------------------------------------------------------------------------- 7. verify


def log_entries(n: int, start: int = 0, seed: int = 4242) -> Iterator[Any]:
    """Realistic entries: record reads (most), searches over a few records, sign-ins, failed sign-ins."""
    from hogo.domain.auditlog import LogEntry

    rng = random.Random(seed + start)
    base = dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)
    users = [(100 + u, f"user.{u:04d}", f"10.{u % 250}.{u // 250}.{1 + u % 249}", str(uuid.UUID(int=u + 1)))
             for u in range(400)]
    names = ("address", "birth_date", "dependents", "my_number", "name", "name_kana", "phone")
    field_sets = [tuple(sorted(random.Random(k).sample(names, 2 + k % 4))) for k in range(64)]
    file, purpose = "payroll-mynumber", "源泉徴収票作成事務"
    step = dt.timedelta(milliseconds=50)
    for i in range(start, start + n):
        ts = base + step * i
        uid, name, client, session = users[int(rng.random() * 400)]
        x = rng.random()
        if x < 0.7:
            yield LogEntry(ts=ts, event="data:record:read", outcome="success", actor_id=uid, actor=name, file=file,
                           purpose=purpose, records=(f"R{int(x * 1e9):09d}",), fields=field_sets[i % 64],
                           client=client, session=session)
        elif x < 0.85:
            yield LogEntry(ts=ts, event="data:record:search", outcome="success", actor_id=uid, actor=name, file=file,
                           purpose=purpose, records=tuple(f"R{(i * 7919 + k * 104729) % 10**9:09d}"
                                                          for k in range(1 + i % 5)),
                           fields=("name",), client=client, session=session, details={"query": "name:佐藤"})
        elif x < 0.97:
            yield LogEntry(ts=ts, event="auth:login:succeeded", outcome="success", actor_id=uid, actor=name,
                           subject_user_id=uid, client=client, session=session, details={"mfa": "totp"})
        else:
            yield LogEntry(ts=ts, event="auth:login:failed", outcome="failure", actor=name, client=client,
                           reason="bad_password", details={"attempt": 1 + i % 5})


def _fill_log(hogo: Any, n: int, batch: int = 10_000) -> float:
    """Append ``n`` entries through ``audit.append`` in transactions of ``batch``; seconds taken."""
    from hogo.services import audit

    t0 = time.perf_counter()
    done = 0
    while done < n:
        entries = list(log_entries(min(batch, n - done), start=done))
        with hogo.engine.begin() as conn:
            audit.append(conn, entries)
        done += len(entries)
        if done % 200_000 == 0:
            log(f"  {done:,} entries appended ({time.perf_counter() - t0:.0f} s)")
    return time.perf_counter() - t0


def _append_batches(hogo: Any, batches: list[list[Any]]) -> None:
    from hogo.services import audit

    for entries in batches:
        with hogo.engine.begin() as conn:
            audit.append(conn, entries)


def _profile(fn: Callable[[], Any], limit: int = 18) -> tuple[Any, str]:
    prof = cProfile.Profile()
    value = prof.runcall(fn)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(limit)
    return value, out.getvalue()


def _children_cpu() -> float:
    """CPU seconds used by this process's finished children (the verifier's worker process)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_verify(opts: LogOptions) -> dict[str, Any]:
    from sqlalchemy import select

    from hogo.services import audit_tree
    from hogo.services.audit_verify import verify_database
    from hogo.store.models import AuditEvent

    n = opts.verify_entries
    with tempfile.TemporaryDirectory(prefix="hogo-bench-verify-") as tmp:
        hogo = _new_instance(Path(tmp) / "data")
        try:
            log(f"log verify: appending {n:,} entries with audit.append (10,000 per transaction) …")
            fill_s = _fill_log(hogo, n)
            cp = audit_tree.checkpoint(hogo, anchor=False)
            key = audit_tree.log_key(hogo)
            db_bytes = sum(p.stat().st_size for p in (Path(tmp) / "data").iterdir() if p.name.startswith("hogo.db"))

            # Baseline: the same entry bytes, in memory, hashed once each.
            t0 = time.perf_counter()
            with hogo.engine.connect() as conn:
                entries = [bytes(e) for e in conn.execute(select(AuditEvent.entry).order_by(AuditEvent.seq)).scalars()]
            read_s = time.perf_counter() - t0
            size = len(entries)
            sha = hashlib.sha256
            gc.collect()
            t0 = time.perf_counter()
            for e in entries:
                sha(e).digest()
            sha_s = time.perf_counter() - t0
            payload = sum(map(len, entries))
            del entries
            gc.collect()

            out: dict[str, Any] = {
                "entries": size, "checkpoint_size": cp.size, "database": "sqlite (WAL, synchronous=FULL)",
                "fill_seconds": round(fill_s, 1), "fill_entries_per_s": round(size / fill_s, 1),
                "database_bytes": db_bytes, "payload_bytes": payload, "mean_entry_bytes": round(payload / size, 1),
                "read_entries_seconds": round(read_s, 3),
                "sha256_seconds": round(sha_s, 3), "sha256_entries_per_s": round(size / sha_s, 1),
            }
            for deep in (False, True):
                # The fast check three times (the median counts: the machine may be shared), the deep one once.
                runs: list[dict[str, float]] = []
                for _ in range(1 if deep else 3):
                    log(f"log verify: verify_database(deep={deep}) over {size:,} entries …")
                    load = os.getloadavg()[0]
                    cpu0, kids0 = time.process_time(), _children_cpu()
                    t0 = time.perf_counter()
                    report = verify_database(hogo.engine, key_name=key.name, public_key=key.public, deep=deep)
                    s = time.perf_counter() - t0
                    runs.append({"seconds": round(s, 3), "cpu_self_seconds": round(time.process_time() - cpu0, 3),
                                 "cpu_worker_seconds": round(_children_cpu() - kids0, 3), "load_average_1m": load})
                    if not report.ok or report.entries_checked != size or not report.checkpoints_verified:
                        raise AssertionError(f"verification failed on an untouched log: {report.as_dict()}")
                s = statistics.median(r["seconds"] for r in runs)
                name = "deep" if deep else "shallow"
                out[name] = {"seconds": round(s, 2), "entries_per_s": round(size / s, 1),
                             "ratio_over_sha256": round(sha_s / s, 3),
                             "checkpoints_verified": report.checkpoints_verified, "runs": runs}
            out["cores"] = os.cpu_count()
            if opts.profile:
                log("log verify: profiling verify_database(deep=False) and a batch append …")
                for deep in (False, True):
                    _, out[f"profile_verify_{'deep' if deep else 'shallow'}"] = _profile(
                        lambda deep=deep: verify_database(hogo.engine, key_name=key.name, public_key=key.public,
                                                          deep=deep))
                more = [list(log_entries(1000, start=size + k * 1000)) for k in range(50)]
                _, out["profile_fill"] = _profile(lambda: _append_batches(hogo, more))
        finally:
            hogo.close()
    rate = out["shallow"]["entries_per_s"]
    out["target"] = {"entries_per_s": TARGETS["verify_entries_per_s"]}
    out["met"] = {"shallow": rate >= TARGETS["verify_entries_per_s"],
                  "deep": out["deep"]["entries_per_s"] >= TARGETS["verify_entries_per_s"]}
    return out


# ----------------------------------------------------------------------------- 8. proofs


def _fixture_paths(size: int) -> tuple[Path, Path]:
    from hogo.store import db

    rev = db.head_revision() or "none"
    d = cache_dir()
    stem = f"log-proofs-{size}-{rev}-{FIXTURE_VERSION}"
    return d / f"{stem}.db", d / f"{stem}.json"


def _build_fixture(path: Path, size: int, seed: int = 9162) -> dict[str, Any]:
    """A SQLite file with hogo's schema holding ``size`` random leaves and their stored subtree roots."""
    from merkle_bench import TileStore

    from hogo.domain import merkle
    from hogo.domain.auditlog import TILE_HEIGHT
    from hogo.store import db

    t0 = time.perf_counter()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")  # a scratch file, rebuilt if anything goes wrong
        conn.execute("PRAGMA cache_size=-262144")
        dropped = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='audit_events' AND sql IS NOT NULL")]
        for name in dropped:
            conn.execute(f'DROP INDEX "{name}"')
        rng = random.Random(seed)
        all_leaves = bytearray()
        level: list[bytes] = []
        width = 1 << TILE_HEIGHT
        chunk = 1 << 18  # a multiple of 256: blocks never straddle chunks
        sql = ("INSERT INTO audit_events (seq, ts, event, record_count, leaf_hash) "
               "VALUES (?, '2026-04-01 00:00:00.000000', 'bench:leaf:random', 0, ?)")
        conn.execute("BEGIN")
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            blob = rng.randbytes(n * 32)
            all_leaves += blob
            leaves = [blob[i:i + 32] for i in range(0, n * 32, 32)]
            conn.executemany(sql, zip(range(start, start + n), leaves, strict=True))
            level.extend(merkle.root_of_leaves(leaves[b:b + width]) for b in range(0, n - width + 1, width))
            if (start // chunk) % 8 == 7:
                log(f"  {start + n:,} leaves ({time.perf_counter() - t0:.0f} s)")
        height = TILE_HEIGHT
        nodes = 0
        while level:
            conn.executemany("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)",
                             ((height, i, h) for i, h in enumerate(level)))
            nodes += len(level)
            level = [merkle.root_of_leaves(level[b:b + width]) for b in range(0, len(level) - width + 1, width)]
            height += TILE_HEIGHT
        conn.execute("UPDATE audit_head SET size = ? WHERE id = 1", (size,))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    build_s = time.perf_counter() - t0
    store = TileStore(all_leaves)  # independent: bench/merkle_bench.py's own tile hashing
    expected = store.subtree(0, size)
    del store, all_leaves
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        from hogo.services.audit_tree import TreeReader

        with engine.connect() as c, c.begin():
            got = TreeReader(c).root(size)
    finally:
        engine.dispose()
    if got != expected:
        raise AssertionError("the fixture's stored subtree roots do not give the tree's root")
    return {"size": size, "seed": seed, "root": expected.hex(), "build_seconds": round(build_s, 1),
            "stored_nodes": nodes, "dropped_indexes": dropped, "bytes": path.stat().st_size}


def proof_fixture(size: int) -> tuple[Path, dict[str, Any], bool]:
    """The cached fixture for ``size`` (built when missing); (path, its description, reused?)."""
    path, meta_path = _fixture_paths(size)
    if path.exists() and meta_path.exists():
        with contextlib.suppress(ValueError, KeyError):
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta["size"] == size:
                return path, meta, True
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"log proofs: building the {size:,}-leaf fixture in {path} (cached for later runs) …")
    tmp = path.with_name(path.name + ".building")
    meta = _build_fixture(tmp, size)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.replace(path)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path, meta, False


def _time_ns(fn: Callable[[], Any]) -> tuple[Any, int]:
    t0 = time.perf_counter_ns()
    value = fn()
    return value, time.perf_counter_ns() - t0


def bench_proofs(opts: LogOptions) -> dict[str, Any]:
    from sqlalchemy import select

    from hogo.domain import merkle
    from hogo.services.audit_tree import TreeReader
    from hogo.store import db
    from hogo.store.models import AuditEvent

    size, samples = opts.proof_size, opts.proof_samples
    path, meta, reused = proof_fixture(size)
    # The file is read once into the OS page cache first, as a serving instance's log is: this machine
    # reclaims pages nobody touched lately (DAMON), so after the earlier parts of a full run a proof
    # would otherwise wait for the disk. "Cold" below is the reader's own node cache, fresh per proof.
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass
    prewarm_s = time.perf_counter() - t0
    engine = db.make_engine(f"sqlite:///{path}")
    rng = random.Random(size)
    # What the earlier parts of this run left alive (the verify part's million entries, say) is moved
    # out of the collector's view, so its full collections do not land in this part's tail latency.
    gc.collect()
    gc.freeze()
    try:
        with engine.connect() as conn, conn.begin():
            reader = TreeReader(conn)
            if reader.size() != size:
                raise AssertionError(f"the fixture {path} holds {reader.size()} leaves, not {size}")
            root = reader.root(size)
            if root.hex() != meta["root"]:
                raise AssertionError(f"the fixture {path} does not give the root it was built with; delete it")

            def leaf(i: int) -> bytes:
                return bytes(conn.execute(select(AuditEvent.leaf_hash).where(AuditEvent.seq == i)).scalar_one())

            for i in (rng.randrange(size) for _ in range(50)):  # warm-up: statement cache, first pages
                TreeReader(conn).inclusion_proof(i, size)
                leaf(i)

            def run(cache: dict[tuple[int, int], bytes] | None) -> tuple[list[int], list[int], int]:
                prove: list[int] = []
                check: list[int] = []
                longest = 0
                for i in (rng.randrange(size) for _ in range(samples)):
                    tree = TreeReader(conn, cache if cache is not None else {})
                    proof, ns = _time_ns(lambda tree=tree, i=i: tree.inclusion_proof(i, size))
                    h = leaf(i)
                    ok, vns = _time_ns(lambda i=i, h=h, proof=proof: merkle.verify_inclusion(i, size, h, proof, root))
                    if not ok:
                        raise AssertionError(f"the inclusion proof of leaf {i} did not verify")
                    prove.append(ns)
                    check.append(vns)
                    longest = max(longest, len(proof))
                return prove, check, longest

            cold_prove, cold_check, longest = run(None)
            shared: dict[tuple[int, int], bytes] = {}
            TreeReader(conn, shared).root(size)  # as a process that has signed a checkpoint holds
            warm_prove, warm_check, _ = run(shared)
            select_ns = [_time_ns(lambda i=i: leaf(i))[1] for i in (rng.randrange(size) for _ in range(samples))]
    finally:
        engine.dispose()
        gc.unfreeze()
    node_input = b"\x01" + bytes(range(64))
    sha = hashlib.sha256
    sha_ns = [_time_ns(lambda: sha(node_input).digest())[1] for _ in range(10_000)]
    check_all = cold_check + warm_check
    out = {
        "size": size, "samples": samples, "fixture": str(path), "fixture_reused": reused,
        "fixture_build_seconds": meta["build_seconds"], "fixture_bytes": meta.get("bytes"),
        "fixture_note": "random leaf hashes, no payloads; audit_events' search indexes dropped",
        "longest_proof": longest,
        "prove_cold_ms": _ms(cold_prove), "prove_warm_ms": _ms(warm_prove), "verify_ms": _ms(check_all),
        "select_one_leaf_ms": _ms(select_ns), "sha256_one_node_ms": _ms(sha_ns),
        "timer": "time.perf_counter_ns around each call; cold = a fresh TreeReader cache per proof (SQLite's "
                 "page cache as it comes; the OS page cache holds the file, read once first), warm = one cache "
                 "shared by all, holding the root's nodes",
        "os_cache_prewarm_s": round(prewarm_s, 2),
    }
    out["ratio_prove_cold_p99_over_select_p99"] = round(
        out["prove_cold_ms"]["p99"] / out["select_one_leaf_ms"]["p99"], 1)
    out["ratio_verify_p99_over_sha256_p99"] = round(out["verify_ms"]["p99"] / out["sha256_one_node_ms"]["p99"], 1)
    out["target"] = {"prove_p99_ms": TARGETS["proof_prove_p99_ms"], "verify_p99_ms": TARGETS["proof_verify_p99_ms"],
                     "size": 10_000_000}
    out["met"] = {"prove_cold": out["prove_cold_ms"]["p99"] < TARGETS["proof_prove_p99_ms"],
                  "prove_warm": out["prove_warm_ms"]["p99"] < TARGETS["proof_prove_p99_ms"],
                  "verify": out["verify_ms"]["p99"] < TARGETS["proof_verify_p99_ms"],
                  "at_target_size": size >= 10_000_000}
    return out


# ------------------------------------------------------------------- 9. the bulk rule


def bench_bulk_rule(n: int = 1_000_000) -> dict[str, Any]:
    """``bench/analysis_bench.py``'s ``bench_bulk_rule(n)`` when that file is there (written separately)."""
    import importlib.util

    if importlib.util.find_spec("analysis_bench") is None:
        log("bulk rule: skipped (no bench/analysis_bench.py)")
        return {"skipped": "bench/analysis_bench.py is not there"}
    import analysis_bench

    log(f"bulk rule: evaluate_bulk over {n:,} entries (bench/analysis_bench.py) …")
    r: dict[str, Any] = analysis_bench.bench_bulk_rule(n)
    r["ratio_best_over_limit"] = round(r["best_s"] / r["limit_s"], 3)
    r["entries_per_s"] = round(r["entries"] / r["best_s"], 1) if r["best_s"] else None
    return r


# ---------------------------------------------------------------------------------- all


def bench_log(opts: LogOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "append" in opts.only:
        out["log_append"] = bench_appends(opts)
    if "verify" in opts.only:
        out["log_verify"] = bench_verify(opts)
    if "proofs" in opts.only:
        out["log_proofs"] = bench_proofs(opts)
    if "bulk" in opts.only:
        out["bulk_rule"] = bench_bulk_rule(opts.bulk_entries)
    return out


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_log_report(res: dict[str, Any]) -> None:
    if ap := res.get("log_append"):
        print(f"\n6. Log appends: {ap['entry']}; {ap['threads']} threads × write_together (one entry per durable "
              f"commit), {ap.get('async_callers', '?')} tasks on one event loop × write_together_async (one entry "
              f"per durable commit), and one thread × {ap['batch_entries']} entries per transaction; "
              f"{ap['duration_s']:g} s per run, {ap['rounds']} round(s)")
        print(f"   plain = {ap['plain']}")
        if ap.get("plain_events_only"):
            print(f"   events only = {ap['plain_events_only']}")
        print(f"   {'database':<11} {'mode':<11} {'hogo entries/s':>15} {'plain entries/s':>16} {'hogo/plain':>11} "
              f"{'events only/s':>14} {'hogo/ev.only':>13} {'entries/commit':>15}")
        for key in ("sqlite", "postgresql"):
            d = ap.get(key)
            if not d:
                continue
            if "skipped" in d:
                print(f"   {key:<11} skipped: {d['skipped']}")
                continue
            for kind in ("concurrent", "async", "batch"):
                m = d[kind]
                print(f"   {key:<11} {kind:<11} {m['hogo_entries_per_s']:15,.0f} {m['plain_entries_per_s']:16,.0f} "
                      f"{m['ratio_hogo_over_plain']:11.3f} {m.get('plain_events_only_entries_per_s', 0):14,.0f} "
                      f"{m.get('ratio_hogo_over_plain_events_only') or 0:13.3f} {m['hogo_entries_per_commit']:15.1f}")
            if key == "postgresql":
                srv = d["server"]
                print(f"   PostgreSQL {srv['server_version']}: fsync={srv['fsync']}, synchronous_commit="
                      f"{srv['synchronous_commit']}" + ("" if d["durable"] else
                                                         "  — NOT durable: these commits do not wait for the disk"))
        met = ap["met"]
        print(f"   targets on SQLite, async mode: ≥ {ap['target']['sqlite_entries_per_s']:,} entries/s "
              f"{_met(met['sqlite_entries_per_s'])}, hogo/plain ≥ {ap['target']['ratio_min']} {_met(met['ratio'])} "
              f"(against events only: {_met(met['ratio_events_only'])}); threads: "
              f"{_met(met['concurrent_entries_per_s'])}, {_met(met['concurrent_ratio'])}; batch: "
              f"{_met(met['batch_entries_per_s'])}, {_met(met['batch_ratio'])}")
    if vf := res.get("log_verify"):
        n = vf["entries"]
        print(f"\n7. Verify a log of {n:,} entries ({vf['mean_entry_bytes']:.0f} bytes each on average, "
              f"{vf['database_bytes'] / 1e6:.0f} MB of SQLite), appended in {vf['fill_seconds']:.0f} s "
              f"({vf['fill_entries_per_s']:,.0f} entries/s, 10,000 per transaction)")
        print(f"   {'':<38} {'seconds':>8} {'entries/s':>12} {'sha256/verify':>14}")
        print(f"   {'sha256 of every entry (in memory)':<38} {vf['sha256_seconds']:8.2f} "
              f"{vf['sha256_entries_per_s']:12,.0f} {1:14.3f}")
        for name, label in (("shallow", "verify_database(deep=False)"), ("deep", "verify_database(deep=True)")):
            v = vf[name]
            print(f"   {label:<38} {v['seconds']:8.2f} {v['entries_per_s']:12,.0f} {v['ratio_over_sha256']:14.3f}")
        print(f"   (reading the entries into memory took {vf['read_entries_seconds']:.2f} s)")
        for name in ("shallow", "deep"):
            runs = vf[name].get("runs") or []
            if runs:
                print(f"   deep={name == 'deep'}: " + "; ".join(
                    f"{r['seconds']:.2f} s (CPU {r['cpu_self_seconds']:.2f} s here + {r['cpu_worker_seconds']:.2f} s "
                    f"in the worker, load average {r['load_average_1m']:.1f} on {vf.get('cores')} cores)"
                    for r in runs) + (" — the median counts" if len(runs) > 1 else ""))
        print(f"   target ≥ {vf['target']['entries_per_s']:,} entries/s: deep=False {_met(vf['met']['shallow'])}, "
              f"deep=True {_met(vf['met']['deep'])}" + ("" if n >= 1_000_000 else f" (at {n:,}, not 1,000,000)"))
        for key in ("profile_verify_shallow", "profile_verify_deep", "profile_fill"):
            if key in vf:
                print(f"\n   cProfile, {key}:\n" + "\n".join("   " + line for line in vf[key].splitlines()[:40]))
    if pr := res.get("log_proofs"):
        reuse = "reused" if pr["fixture_reused"] else "built"
        print(f"\n8. Inclusion proofs, {pr['size']:,}-entry log on SQLite ({pr['samples']} random leaves; fixture "
              f"{reuse}, built in {pr['fixture_build_seconds']:.0f} s: {pr['fixture']}; {pr['fixture_note']}; "
              f"file read into the OS page cache first in {pr.get('os_cache_prewarm_s', 0):.1f} s)")
        for label, key in (("prove, cold (fresh TreeReader cache)", "prove_cold_ms"),
                           ("prove, warm (shared cache)", "prove_warm_ms"),
                           ("verify_inclusion", "verify_ms"),
                           ("baseline: SELECT one leaf by seq", "select_one_leaf_ms"),
                           ("baseline: one sha256 of a node", "sha256_one_node_ms")):
            s = pr[key]
            print(f"   {label:<38} p50 {s['p50']:8.4f} ms   p99 {s['p99']:8.4f} ms   max {s['max']:8.3f} ms")
        print(f"   prove p99 / SELECT p99 = {pr['ratio_prove_cold_p99_over_select_p99']}×, verify p99 / sha256 p99 = "
              f"{pr['ratio_verify_p99_over_sha256_p99']}×; longest proof {pr['longest_proof']} hashes")
        met = pr["met"]
        size_note = "" if met["at_target_size"] else " — at 1/10 of the target size: run with --full for 10,000,000"
        print(f"   targets: prove p99 < {pr['target']['prove_p99_ms']:g} ms {_met(met['prove_cold'])} (cold), "
              f"{_met(met['prove_warm'])} (warm); verify p99 < {pr['target']['verify_p99_ms']:g} ms "
              f"{_met(met['verify'])}{size_note}")


    if bk := res.get("bulk_rule"):
        if "skipped" in bk:
            print(f"\n9. Bulk-download rule: skipped ({bk['skipped']})")
        else:
            print(f"\n9. Bulk-download rule (analysis.evaluate_bulk, bench/analysis_bench.py) over {bk['entries']:,} "
                  f"entries on SQLite: best {bk['best_s']:.3f} s, median {bk['median_s']:.3f} s "
                  f"({bk['entries_per_s']:,.0f} entries/s), {bk['findings']} finding(s); best / limit = "
                  f"{bk['ratio_best_over_limit']:.3f}; target < {bk['limit_s']:g} s {_met(bk['ok'])}"
                  + ("" if bk["entries"] >= 1_000_000 else " (below 1,000,000 entries)")
                  + " — no plain baseline in analysis_bench.py")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the log benchmarks on their own (make bench runs them too)")
    p.add_argument("--quick", action="store_true", help="1 s runs, 100,000 entries to verify, 100,000-leaf proofs")
    p.add_argument("--full", action="store_true", help="proofs over 10,000,000 entries (default 1,000,000)")
    p.add_argument("--pg", default=None, help="PostgreSQL URL (default HOGO_BENCH_PG_URL, then HOGO_TEST_PG_URL)")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--async-callers", type=int, default=LogOptions.async_callers,
                   help="tasks on one event loop for the async append mode")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only", default="append,verify,proofs,bulk")
    p.add_argument("--profile", action="store_true", help="also profile verify_database and batch appends")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here too")
    args = p.parse_args(argv)
    opts = LogOptions(threads=args.threads, async_callers=args.async_callers, duration=args.duration,
                      rounds=args.rounds,
                      pg_url=args.pg or pg_url_from_env(), profile=args.profile,
                      only=frozenset(s.strip() for s in args.only.split(",") if s.strip()))
    if args.quick:
        opts.duration, opts.rounds, opts.verify_entries, opts.proof_size = 1.0, 1, 100_000, 100_000
        opts.bulk_entries = 100_000
    if args.full:
        opts.proof_size = 10_000_000
    res = bench_log(opts)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_log_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
