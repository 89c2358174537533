"""hogo benchmarks (``make bench``): what a sign-in costs, and what the authenticated request path costs.

1. Login latency with the PRODUCTION Argon2id parameters (``hogo.config.Argon2Params()`` defaults):
   ``hogo.services.auth.login`` with password + TOTP on a temporary SQLite instance, interleaved with a
   bare ``argon2`` verification at the same parameters, so the ratio shows what everything else
   (rate-limit query, TOTP, session row, audit event, commit) adds to the hash.
2. Throughput of ``GET /api/v1/auth/whoami`` with a Bearer session token against a bare FastAPI
   endpoint returning the same JSON (``bench/bare_app.py``), side by side in one run: both are real
   uvicorn servers (one worker each, same options) on loopback ports, driven from a separate process
   (``wrk`` when installed, else ``bench/loadgen.py``) with a fixed concurrency for a fixed time,
   alternated A B A B.
3. Bulk import of 100,000 payroll records (10 fields, a My Number) through the CLI against a real
   server on SQLite, against a plain unencrypted csv.reader + executemany insert of the same CSV.
4. Reading one record through the API (authenticated, purpose-checked, decrypted, recorded):
   throughput against a bare endpoint returning the same JSON, and latency at a fixed 200 req/s
   (open loop, no coordinated omission).
5. The policy decision over 10,000 grants in process, against a dict lookup.
(3–5 are in ``bench/bench_data.py``.)
6–8. The tamper-evident log: durable appends with group commit (SQLite, and PostgreSQL with ``--pg`` or
   ``HOGO_BENCH_PG_URL``/``HOGO_TEST_PG_URL``), verifying 1,000,000 entries, and inclusion proofs
   (1,000,000 entries; 10,000,000 with ``--full``, fixture cached): ``bench/log_bench.py``.
9. The bulk-download rule over 1,000,000 events (``bench/analysis_bench.py``, when it is there).
10–12. The information lifecycle (issue 5), each script in its own process: take-out packages of 100,000
   records against a plain CSV (``bench/package_bench.py``), crypto-shredding a file of 1,000 and of
   100,000 records (``bench/erasure_bench.py``), and backup, verify and restore of a 1 GiB instance
   (``bench/backup_bench.py``; 128 MiB with ``--quick``).

Prints a report and writes ``bench/results/latest.json``. Everything is bounded in time and runs on
127.0.0.1 only; the instances live in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import argon2
import bench_data
import httpx
import log_bench
from common import (
    BENCH_DIR,
    Server,
    affinity,
    clean_env,
    log,
    run_loadgen,
    run_wrk,
    secret_of,
    summary_ms,
    version_of,
)

from hogo.bootstrap import build
from hogo.clock import FakeClock
from hogo.config import Argon2Params, Settings
from hogo.crypto import totp
from hogo.services import auth, instance
from hogo.services.audit import RequestContext

RESULTS_DIR = BENCH_DIR / "results"
ADMIN = "admin"
ADMIN_PASSWORD = "Bench-Kanri-Sekinin-2026!"
CTX = RequestContext(client_addr="127.0.0.1", user_agent="hogo-bench")


# ------------------------------------------------------------------------------------- login


def bench_login(n: int, warmup: int) -> dict[str, Any]:
    """``auth.login`` (password + TOTP) vs a bare Argon2id verify, interleaved, production cost."""
    params = Argon2Params()
    bare = argon2.PasswordHasher(
        time_cost=params.time_cost, memory_cost=params.memory_cost_kib, parallelism=params.parallelism,
        hash_len=32, salt_len=16, type=argon2.Type.ID,
    )
    bare_hash = bare.hash(ADMIN_PASSWORD)
    clock = FakeClock()
    with tempfile.TemporaryDirectory(prefix="hogo-bench-login-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")  # production defaults, embedded SQLite
        assert settings.argon2 == params
        res = instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD, clock=clock)
        assert res.otpauth_uri is not None
        secret = secret_of(res.otpauth_uri)
        h = build(settings, clock=clock)
        login_s: list[float] = []
        verify_s: list[float] = []
        try:
            for i in range(warmup + n):
                clock.advance(seconds=30)  # TOTP codes are single use per 30-second step
                code = totp.current_code(secret, clock.now())
                t0 = time.perf_counter()
                result = auth.login(h, username=ADMIN, password=ADMIN_PASSWORD, totp=code, ctx=CTX)
                t1 = time.perf_counter()
                assert result.principal.mfa_verified
                ok = bare.verify(bare_hash, ADMIN_PASSWORD)
                t2 = time.perf_counter()
                assert ok
                if i >= warmup:
                    login_s.append(t1 - t0)
                    verify_s.append(t2 - t1)
        finally:
            h.close()
    login = summary_ms(login_s)
    verify = summary_ms(verify_s)
    return {
        "argon2": {"time_cost": params.time_cost, "memory_cost_kib": params.memory_cost_kib,
                   "parallelism": params.parallelism, "type": "argon2id"},
        "database": "sqlite",
        "logins": n,
        "warmup": warmup,
        "login_ms": login,
        "argon2_verify_ms": verify,
        "ratio_p50": round(login["p50"] / verify["p50"], 3),
        "overhead_p50_ms": round(login["p50"] - verify["p50"], 2),
    }


# -------------------------------------------------------------------------------------- http

@contextlib.contextmanager
def servers(tmp: Path, pin_server: Callable[[], None] | None) -> Iterator[tuple[Server, Server, str, Any]]:
    data = tmp / "data"
    settings = Settings(data_dir=data)  # production defaults (Argon2 too: login happens once)
    res = instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD)
    assert res.otpauth_uri is not None
    secret = secret_of(res.otpauth_uri)
    started: list[Server] = []
    try:
        hogo_srv = Server("hogo", ["--factory", "hogo.api.app:app_from_environment"],
                          clean_env(HOGO_DATA_DIR=str(data)), tmp / "hogo.log", pin_server)
        started.append(hogo_srv)
        hogo_srv.wait_ready()
        code = totp.current_code(secret, dt.datetime.now(dt.UTC))
        r = httpx.post(hogo_srv.base + "/api/v1/auth/login",
                       json={"username": ADMIN, "password": ADMIN_PASSWORD, "totp": code}, timeout=30)
        r.raise_for_status()
        token = r.json()["token"]
        me = httpx.get(hogo_srv.base + "/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        me.raise_for_status()
        body = tmp / "whoami.json"
        body.write_text(me.text, encoding="utf-8")
        bare_srv = Server("bare", ["--app-dir", str(BENCH_DIR), "bare_app:app"],
                          clean_env(HOGO_BENCH_WHOAMI_JSON=str(body)), tmp / "bare.log", pin_server)
        started.append(bare_srv)
        bare_srv.wait_ready()
        bare_body = httpx.get(bare_srv.base + "/api/v1/auth/whoami").json()
        assert bare_body == me.json(), "the bare endpoint must answer with the same JSON"
        yield hogo_srv, bare_srv, token, me.json()
    finally:
        for s in started:
            s.stop()


def bench_http(concurrency: int, duration: float, rounds: int, warmup: float, use_wrk: bool,
               pin: bool) -> dict[str, Any]:
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    pinned = pin and ncpu >= 2
    cpus = sorted(os.sched_getaffinity(0)) if pinned else []
    pin_server = affinity({cpus[0]}) if pinned else None
    pin_load = affinity(set(cpus[1:])) if pinned else None
    wrk = shutil.which("wrk") if use_wrk else None
    drive = run_wrk if wrk else run_loadgen
    generator = "wrk" if wrk else "bench/loadgen.py (asyncio keep-alive client)"
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hogo-bench-http-") as t, servers(Path(t), pin_server) as (
        hogo_srv, bare_srv, token, body,
    ):
        targets = {"hogo": hogo_srv.base, "bare": bare_srv.base}
        url = {k: v + "/api/v1/auth/whoami" for k, v in targets.items()}
        if warmup > 0:
            for name in ("hogo", "bare"):
                log(f"  warm-up {name} ({warmup:g} s)")
                drive(url[name], token, concurrency, warmup, pin_load)
        for r in range(1, rounds + 1):
            for name in ("hogo", "bare"):
                log(f"  round {r}: {name} ({duration:g} s, {concurrency} connections)")
                res = drive(url[name], token, concurrency, duration, pin_load)
                if res.get("non_2xx") or res.get("errors"):
                    raise RuntimeError(f"{name}: {res['non_2xx']} non-2xx answers, {res['errors']} errors; "
                                       f"the measurement is void:\n{(hogo_srv if name == 'hogo' else bare_srv).log()}")
                runs.append({"round": r, "server": name, **res})
        # The session must still be valid after the load: every request above was authenticated.
        check = httpx.get(url["hogo"], headers={"Authorization": f"Bearer {token}"})
        assert check.status_code == 200, check.text
    mean = {n: round(statistics.fmean(x["rps"] for x in runs if x["server"] == n), 1) for n in ("hogo", "bare")}
    return {
        "endpoint": "GET /api/v1/auth/whoami",
        "auth": "Authorization: Bearer <session token>",
        "database": "sqlite",
        "generator": generator,
        "concurrency": concurrency,
        "duration_s": duration,
        "rounds": rounds,
        "order": "A B " * rounds,
        "cpu_pinning": {"servers": cpus[:1], "load": cpus[1:]} if pinned else None,
        "uvicorn": "one worker, --log-level warning, --no-access-log, loopback",
        "response_bytes": len(json.dumps(body)),
        "runs": runs,
        "rps_mean": mean,
        "ratio_hogo_over_bare": round(mean["hogo"] / mean["bare"], 3) if mean["bare"] else None,
    }


# ------------------------------------------------------------------------------------ report


def environment() -> dict[str, Any]:
    wrk = shutil.which("wrk")
    wrk_version = None
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        wrk_version = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else None
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "system": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {d: version_of(d) for d in ("hogo", "fastapi", "starlette", "uvicorn", "uvloop",
                                                "httptools", "sqlalchemy", "argon2-cffi", "pydantic")},
        "wrk": wrk_version,
    }


def print_report(res: dict[str, Any]) -> None:
    env = res["environment"]
    load = env.get("loadavg")
    load_text = f", load average {load[0]:.2f} at start" if load else ""
    print(f"hogo bench — {env['when']} — {env['cpus']} CPUs{load_text}, Python {env['python']}, "
          f"SQLite {env['sqlite']}")
    if lg := res.get("login"):
        a = lg["argon2"]
        print(f"\n1. Login, production Argon2id (t={a['time_cost']}, m={a['memory_cost_kib']} KiB, "
              f"p={a['parallelism']}), {lg['logins']} logins on SQLite")
        for label, key in (("hogo.services.auth.login (password+TOTP)", "login_ms"),
                           ("argon2 verify alone", "argon2_verify_ms")):
            s = lg[key]
            print(f"   {label:<42} p50 {s['p50']:8.1f} ms   p95 {s['p95']:8.1f} ms   mean {s['mean']:8.1f} ms")
        print(f"   login / verify at p50: {lg['ratio_p50']:.2f}×  (everything but the hash: "
              f"{lg['overhead_p50_ms']:.1f} ms)")
    if ht := res.get("http"):
        pin = ht["cpu_pinning"]
        pin_text = f", servers on CPU {pin['servers']}, load on CPU {pin['load']}" if pin else ""
        print(f"\n2. {ht['endpoint']} ({ht['auth']}), {ht['generator']}, {ht['concurrency']} connections, "
              f"{ht['duration_s']:g} s per run, order {ht['order'].strip()}{pin_text}")
        for run in ht["runs"]:
            lat = run.get("latency_ms", {})
            p50 = lat.get("p50")
            p99 = lat.get("p99")
            print(f"   round {run['round']}  {run['server']:<5} {run['rps']:10.1f} req/s   "
                  f"p50 {p50} ms   p99 {p99} ms")
        busy = [r for r in ht["runs"] if (r.get("loadgen_cpu_fraction") or 0) >= 0.9]
        if busy:
            print("   warning: the load generator used a whole CPU in "
                  + ", ".join(f"round {r['round']} {r['server']}" for r in busy)
                  + ": those figures are lower bounds (install wrk)")
        m = ht["rps_mean"]
        print(f"   mean: hogo {m['hogo']:.1f} req/s, bare {m['bare']:.1f} req/s, "
              f"hogo/bare = {ht['ratio_hogo_over_bare']:.3f}")
    bench_data.print_data_report(res)
    log_bench.print_log_report(res)
    print_lifecycle_report(res)
    if "elapsed_s" in res:
        print(f"\n{res['elapsed_s']:.0f} s in all")
    print(f"written to {res['written_to']}")


def _json_of(cmd: list[str], what: str) -> Any:
    """Run one benchmark script in its own process (its memory and page cache use stay its own); the JSON
    it prints."""
    shown = [Path(c).name if c.endswith(".py") else c for c in cmd[1:]]
    shown = ["URL" if i and shown[i - 1] == "--pg" else c for i, c in enumerate(shown)]  # no password in logs
    log(f"{what}: {' '.join(shown)} …")
    done = subprocess.run(cmd, cwd=BENCH_DIR, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode not in (0, 1):  # package_bench exits 1 when its target is missed: still a measurement
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def bench_lifecycle(quick: bool, pg_url: str | None) -> dict[str, Any]:
    py = sys.executable
    out: dict[str, Any] = {}
    n = "10000" if quick else "100000"
    out["package"] = _json_of([py, str(BENCH_DIR / "package_bench.py"), n, "--repeat", "1" if quick else "3"],
                              "lifecycle: packages")
    out["erasure"] = _json_of([py, str(BENCH_DIR / "erasure_bench.py"), "--sizes", f"1000,{n}", "--json"],
                              "lifecycle: crypto-shredding")
    backup = [py, str(BENCH_DIR / "backup_bench.py"), "--json"] + (["--quick"] if quick else [])
    backup += ["--pg", pg_url] if pg_url else ["--engines", "sqlite"]
    out["backup"] = _json_of(backup, "lifecycle: backups")
    return out


def print_lifecycle_report(res: dict[str, Any]) -> None:
    lc = res.get("lifecycle")
    if not lc:
        return
    pk = lc["package"]
    w = pk["writer"]
    print(f"\n10. Take-out package, {pk['records']:,} records × {pk['fields']} fields: the writer {w['ratio']:.2f}× "
          f"csv.writer of the same rows (target ≤ {pk['target_ratio']:g})")
    if e2e := pk.get("end_to_end"):
        print(f"    end to end from the database through the guard: package {e2e['guard_package_s']:.2f} s, plain CSV "
              f"{e2e['guard_plain_csv_s']:.2f} s ({e2e['ratio_vs_guard_plain_csv']:.2f}×); against csv.writer of rows "
              f"already in memory {e2e['ratio_vs_memory_plain_csv']:.1f}× (the decryption of every value)")
    print("\n11. Crypto-shredding a file (SQLite): until its keys are gone, then the purge; one record's erasure")
    for r in lc["erasure"]:
        print(f"    {r['records']:>7,} records ({r['buckets']:>3} buckets): keys gone after "
              f"{r['file_until_keys_gone_ms']:6.1f} ms (order {r['file_order_ms']:.1f}, destroy "
              f"{r['file_destroy_keys_ms']:.1f}), purge {r['file_purge_ms']:8.1f} ms, one record "
              f"{r['record_erase_median_ms']:.0f} ms (median of {len(r['record_erase_ms'])})")
    print("\n12. Backups, MB/s of database")
    for engine, b in lc["backup"].items():
        if not isinstance(b, dict) or "create" not in b:
            print(f"    {engine}: {b}")
            continue
        base = b.get("baselines", {})
        extra = (f"; baselines cp+fsync {base['cp_fsync_s']['mb_s']:.0f}, sqlite3 backup API "
                 f"{base['sqlite_backup_api_s']['mb_s']:.0f}, AES-256-GCM alone {base['aes_gcm_s']['mb_s']:.0f}"
                 if base else "")
        print(f"    {engine:<10} {b['db_mb']:,.0f} MB: create {b['create']['mb_s']:.0f}, verify "
              f"{b['verify']['mb_s']:.0f}, verified restore {b['verified_restore']['mb_s']:.0f}{extra}")
        if b.get("note"):
            print(f"               ({b['note']})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="hogo benchmarks (make bench)")
    p.add_argument("--logins", type=int, default=30, help="measured logins (default 30)")
    p.add_argument("--login-warmup", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per load run (max 60)")
    p.add_argument("--rounds", type=int, default=2, help="A B rounds (default 2: A B A B)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load per server")
    p.add_argument("--no-wrk", action="store_true", help="use bench/loadgen.py even when wrk is installed")
    p.add_argument("--no-pin", action="store_true", help="do not pin servers and load to separate CPUs")
    p.add_argument("--skip-login", action="store_true")
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--skip-data", action="store_true", help="skip the import and record-read benchmarks")
    p.add_argument("--skip-policy", action="store_true")
    p.add_argument("--skip-log", action="store_true", help="skip the log benchmarks (appends, verify, proofs)")
    p.add_argument("--skip-lifecycle", action="store_true",
                   help="skip the issue-5 benchmarks (packages, crypto-shredding, backups)")
    p.add_argument("--full", action="store_true", help="inclusion proofs over 10,000,000 entries (default 1,000,000)")
    p.add_argument("--pg", default=None, help="PostgreSQL URL for the log appends (default HOGO_BENCH_PG_URL, "
                   "then HOGO_TEST_PG_URL; without one they are skipped)")
    p.add_argument("--import-rows", type=int, default=100_000, help="rows to import (default 100,000)")
    p.add_argument("--plain-rounds", type=int, default=3, help="runs of the plain insert baseline (median)")
    p.add_argument("--import-cpus", choices=("all", "one"), default="all",
                   help="CPUs of the import: 'all' (server, plain insert and CLI on every CPU; default) or 'one' "
                        "(server and plain insert on the first CPU, the CLI on the others)")
    p.add_argument("--rate", type=float, default=200.0, help="fixed request rate for the read latency (req/s)")
    p.add_argument("--rate-duration", type=float, default=20.0, help="seconds at the fixed rate per server")
    p.add_argument("--http-import", action="store_true",
                   help="import through POST …/records/import instead of 'hogo record import'")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 5 logins, 2 s × 1 round, 10,000 rows, 5 s at the fixed rate")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    args = p.parse_args(argv)
    if args.quick:
        args.logins, args.duration, args.rounds, args.warmup = 5, 2.0, 1, 1.0
        args.import_rows, args.plain_rounds, args.rate_duration = 10_000, 1, 5.0
    if not (1 <= args.logins <= 500 and 0 < args.duration <= 60 and 1 <= args.rounds <= 5
            and 1 <= args.concurrency <= 256 and 1_000 <= args.import_rows <= 1_000_000
            and 1 <= args.plain_rounds <= 9 and 0 < args.rate <= 5000 and 0 < args.rate_duration <= 120):
        p.error("out of bounds: logins 1–500, duration (0, 60], rounds 1–5, concurrency 1–256, import rows "
                "1,000–1,000,000, plain rounds 1–9, rate (0, 5000], rate duration (0, 120]")

    started = time.monotonic()
    result: dict[str, Any] = {"environment": environment()}
    if not args.skip_login:
        log(f"login: {args.logins} logins with production Argon2 …")
        result["login"] = bench_login(args.logins, args.login_warmup)
    if not args.skip_http:
        log("http: starting hogo and the bare baseline …")
        result["http"] = bench_http(args.concurrency, args.duration, args.rounds, args.warmup,
                                    use_wrk=not args.no_wrk, pin=not args.no_pin)
    if not args.skip_data:
        result.update(bench_data.bench_data(bench_data.DataOptions(
            rows=args.import_rows, plain_rounds=args.plain_rounds, concurrency=args.concurrency,
            duration=args.duration, rounds=args.rounds, warmup=args.warmup, rate=args.rate,
            rate_duration=args.rate_duration, use_wrk=not args.no_wrk, pin=not args.no_pin,
            http_import=args.http_import, import_cpus=args.import_cpus)))
    if not args.skip_policy:
        log("policy: decide() over 10,000 grants …")
        result["policy"] = bench_data.bench_policy()
    if not args.skip_log:
        opts = log_bench.LogOptions(pg_url=args.pg or log_bench.pg_url_from_env())
        if args.quick:
            opts.duration, opts.rounds, opts.verify_entries, opts.proof_size = 1.0, 1, 100_000, 100_000
            opts.bulk_entries = 100_000
        if args.full:
            opts.proof_size = 10_000_000
        result.update(log_bench.bench_log(opts))
    if not args.skip_lifecycle:
        result["lifecycle"] = bench_lifecycle(args.quick, args.pg or log_bench.pg_url_from_env())
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result["written_to"] = str(args.out)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
