"""The bulk-download rule (ANON-13) over a million log entries: must finish in under two seconds.

``bench_bulk_rule(n)`` makes a fresh SQLite database with the real schema (migrations), fills it with
``n`` synthetic entries in one ``INSERT … SELECT`` (a month of activity by 200 users: reads, searches,
reveals, sign-ins and record changes, one person per read, plus two users who download in bulk), and
times ``hogo.services.analysis.evaluate_bulk`` over the whole month, the default thresholds (more than
1,000 records or 300 persons within an hour). Run: ``python bench/analysis_bench.py [N]``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from hogo.services import analysis
from hogo.store import db

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
DAYS = 30
USERS = 200
BULK_USERS = (9001, 9002)  # one reads 5,000 persons in an hour; one searches 2,000 records in 40 minutes
LIMIT_S = 2.0


def _fill(conn: Any, n: int) -> None:
    step = DAYS * 86400 / n  # seconds between entries
    conn.execute(text(
        "WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x < :last) "
        "INSERT INTO audit_events (seq, ts, event, outcome, actor_id, actor_name, file_code, record_count, "
        "client_addr, leaf_hash) "
        "SELECT x, strftime('%Y-%m-%d %H:%M:%f000', :start, '+' || CAST(x * :step AS INTEGER) || ' seconds'), "
        "CASE x % 10 WHEN 0 THEN 'data:record:search' WHEN 1 THEN 'data:record:search' "
        "WHEN 2 THEN 'data:record:reveal' WHEN 3 THEN 'auth:login:succeeded' WHEN 4 THEN 'data:record:update' "
        "WHEN 5 THEN 'data:record:create' ELSE 'data:record:read' END, "
        "CASE WHEN x % 97 = 0 THEN 'denied' ELSE 'success' END, x % :users, 'user' || (x % :users), "
        "CASE WHEN x % 10 = 3 THEN NULL ELSE 'payroll' END, "
        "CASE WHEN x % 10 IN (0, 1) THEN 1 + x % 20 WHEN x % 10 = 3 THEN 0 ELSE 1 END, "
        "'10.0.' || (x % 7) || '.' || (x % :users), zeroblob(32) FROM i"),
        {"last": n - 1, "start": START.strftime("%Y-%m-%d %H:%M:%S"), "step": step, "users": USERS})
    # One person per read and reveal (the searches' records are left out: the rule needs their count only).
    conn.execute(text(
        "INSERT INTO audit_record_refs (seq, record_id, file_code) SELECT seq, 'E' || (seq % 50000), 'payroll' "
        "FROM audit_events WHERE event IN ('data:record:read', 'data:record:reveal')"))
    # The bulk downloaders, on day 15: seqs after the synthetic ones.
    t0 = START + dt.timedelta(days=15, hours=2)
    rows = [{"seq": n + i, "ts": (t0 + dt.timedelta(seconds=i * 0.7)).strftime("%Y-%m-%d %H:%M:%S.%f"),
             "event": "data:record:read", "actor": BULK_USERS[0], "rc": 1} for i in range(5000)]
    rows += [{"seq": n + 5000 + i, "ts": (t0 + dt.timedelta(days=1, seconds=i * 24)).strftime("%Y-%m-%d %H:%M:%S.%f"),
              "event": "data:record:search", "actor": BULK_USERS[1], "rc": 20} for i in range(100)]
    conn.execute(text(
        "INSERT INTO audit_events (seq, ts, event, outcome, actor_id, actor_name, file_code, record_count, leaf_hash) "
        "VALUES (:seq, :ts, :event, 'success', :actor, 'bulk' || :actor, 'payroll', :rc, zeroblob(32))"), rows)
    conn.execute(text(
        "INSERT INTO audit_record_refs (seq, record_id, file_code) "
        "SELECT seq, 'B' || seq, 'payroll' FROM audit_events WHERE actor_id = :a"), {"a": BULK_USERS[0]})
    conn.execute(text("UPDATE audit_head SET size = (SELECT count(*) FROM audit_events)"))


def bench_bulk_rule(n: int = 1_000_000, *, repeat: int = 3) -> dict[str, Any]:
    """Fill a fresh database with ``n`` entries and time the bulk rule over all of them (seconds)."""
    with tempfile.TemporaryDirectory(prefix="hogo-analysis-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            t = time.perf_counter()
            with engine.begin() as conn:
                # Indexes are built once after the fill (much faster than row by row), as they were.
                ddl = [sql for (sql,) in conn.execute(text(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                    "AND tbl_name IN ('audit_events', 'audit_record_refs')"))]
                for (name,) in conn.execute(text(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                        "AND tbl_name IN ('audit_events', 'audit_record_refs')")).all():
                    conn.execute(text(f'DROP INDEX "{name}"'))
                _fill(conn, n)
                for sql in ddl:
                    conn.execute(text(sql))
            fill_s = time.perf_counter() - t
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
            times: list[float] = []
            cpu: list[float] = []
            findings: list[analysis.Finding] = []
            for _ in range(repeat):
                with engine.connect() as conn:
                    t, c = time.perf_counter(), time.process_time()
                    findings = analysis.evaluate_bulk(conn, START, START + dt.timedelta(days=DAYS + 2), None)
                    times.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
        finally:
            engine.dispose()
    subjects = sorted(f.subject_user_id or 0 for f in findings)
    assert subjects == sorted(BULK_USERS), f"the bulk rule found {subjects}, expected {BULK_USERS}"
    return {"entries": n + 5100, "fill_s": round(fill_s, 2), "best_s": round(min(times), 3),
            "median_s": round(statistics.median(times), 3), "cpu_s": round(min(cpu), 3), "limit_s": LIMIT_S,
            "findings": len(findings), "ok": min(times) < LIMIT_S}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    r = bench_bulk_rule(n)
    print(f"bulk-download rule over {r['entries']:,} log entries: best {r['best_s']:.3f} s, median "
          f"{r['median_s']:.3f} s, CPU {r['cpu_s']:.3f} s (limit {LIMIT_S:.0f} s; filling took {r['fill_s']:.1f} s); "
          f"{r['findings']} finding(s): {'OK' if r['ok'] else 'TOO SLOW'}")
    sys.exit(0 if r["ok"] else 1)


if __name__ == "__main__":
    main()
