"""In-process A/B of the record read against the bare endpoint, without HTTP or a load generator.

Drives the two ASGI apps directly — hogo's (``hogo.api.app.create_app`` on an instance made like
``bench_data.prepare_instance``, with records imported through the guard) and ``bare_app.py``'s —
with ``-c`` concurrent tasks on one event loop, and reports the process CPU time per request
(user + system time of every thread, the log writer's included) and the ratio bare/hogo (medians).
Rounds alternate hogo, bare, hogo, bare … so that noise from other work on the machine hits both.

    PYTHONPATH=src python bench/read_path_bench.py [-n 3000] [-c 16] [--rounds 3] [--rows 500] [--hogo-only]

``HOGO_BENCH_SYS=1`` also prints each round's user/system split and CPU by thread (event loop, worker
threads, log writer). ``--hogo-only`` drives hogo alone, e.g. under ``py-spy record``.

CPU time per request is far less noisy on a shared machine than wrk's requests per second; the
HTTP layer (uvicorn) costs both sides the same and is not included, so the ratio here is lower than
the one wrk measures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import bench_data  # noqa: E402

from hogo.crypto import totp  # noqa: E402


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }


async def call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, list[Any]]:
    scope = _scope(path, headers)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status = 0
    body = bytearray()
    resp_headers: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            resp_headers.extend(message.get("headers", []))
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body), resp_headers


async def drive(app: Any, path: str, headers: list[tuple[bytes, bytes]], n: int, conc: int) -> tuple[float, float]:
    """(CPU µs per request, wall µs per request) over ``n`` requests by ``conc`` tasks."""
    per = n // conc

    async def worker() -> None:
        for _ in range(per):
            status, body, _h = await call(app, path, headers)
            if status != 200:
                raise RuntimeError(f"{status}: {body[:300]!r}")

    th0 = thread_cpu()
    t0, w0 = os.times(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    t1, w1 = os.times(), time.perf_counter()
    done = per * conc
    c0, c1 = t0.user + t0.system, t1.user + t1.system
    if os.environ.get("HOGO_BENCH_SYS"):
        th1 = thread_cpu()
        print("  by thread (µs/req): " + ", ".join(f"{k} {(v - th0.get(k, 0.0)) / done * 1e6:.0f}"
                                                  for k, v in sorted(th1.items()) if v - th0.get(k, 0.0) > 0))
        print(f"  user {(t1.user - t0.user) / done * 1e6:.1f} µs, system {(t1.system - t0.system) / done * 1e6:.1f} µs")
    return (c1 - c0) / done * 1e6, (w1 - w0) / done * 1e6


def thread_cpu() -> dict[str, float]:
    """CPU seconds by thread kind (main loop, worker threads, log writer, others), from /proc."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), "?")
        kind = ("main" if name == "MainThread" else "writer" if "log-writer" in name
                else "worker" if name.startswith(("AnyIO", "hogo-read")) else name)
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def setup(tmp: Path, rows: int) -> tuple[Any, Any, str, list[tuple[bytes, bytes]], dict[str, Any]]:
    from hogo.api.app import create_app
    from hogo.bootstrap import build
    from hogo.config import Settings
    from hogo.services import auth, guard
    from hogo.services.audit import RequestContext

    data_dir = tmp / "data"
    clerk_secret = bench_data.prepare_instance(data_dir)
    hogo = build(Settings(data_dir=data_dir))
    ctx = RequestContext(client_addr="127.0.0.1", user_agent="hogo-bench")
    login = auth.login(hogo, username=bench_data.CLERK, password=bench_data.USER_PASSWORD,
                       totp=totp.current_code(clerk_secret, dt.datetime.now(dt.UTC)), ctx=ctx, kind="cli")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(bench_data.HEADER)
    w.writerows(bench_data.generate_rows(rows))
    guard.import_records(hogo, login.principal, bench_data.FILE, io.BytesIO(buf.getvalue().encode()),
                         purpose=bench_data.PURPOSE, ctx=ctx)
    found = guard.find_records(hogo, login.principal, bench_data.FILE, {"employee_no": f"E{min(rows, 4242):06d}"},
                               purpose=bench_data.PURPOSE, ctx=ctx)
    rid = found[0].record_id
    app = create_app(hogo)
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {login.token}".encode()),
               (b"x-hogo-purpose", urllib.parse.quote(bench_data.PURPOSE).encode()), (b"accept", b"*/*")]
    path = f"/api/v1/files/{bench_data.FILE}/records/{rid}"
    status, body, _h = asyncio.run(call(app, path, headers))
    assert status == 200, body
    record = json.loads(body)
    (tmp / "record.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    os.environ["HOGO_BENCH_RECORD_JSON"] = str(tmp / "record.json")
    import bare_app

    return hogo, app, path, headers, {"bare": bare_app.app, "record": record}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3000, help="requests per round and side")
    ap.add_argument("-c", type=int, default=16, help="concurrent tasks")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--hogo-only", action="store_true", help="only drive hogo (e.g. under py-spy)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hogo-readpath-") as d:
        tmp = Path(d)
        hogo, app, path, headers, extra = setup(tmp, args.rows)
        bare = extra["bare"]

        async def run() -> dict[str, list[float]]:
            st, body, _ = await call(bare, path, headers)
            assert st == 200 and json.loads(body) == extra["record"], "the bare endpoint must answer the same JSON"
            st, body2, _ = await call(app, path, headers)
            assert body2 == body, "hogo's body differs from the bare one (byte for byte)"
            await drive(app, path, headers, min(500, args.n), args.c)  # warm-up
            await drive(bare, path, headers, min(500, args.n), args.c)
            out: dict[str, list[float]] = {"hogo": [], "bare": [], "hogo_wall": [], "bare_wall": []}
            for r in range(args.rounds):
                for name, a in (("hogo", app), ("bare", bare)):
                    if args.hogo_only and name == "bare":
                        continue
                    cpu, wall = await drive(a, path, headers, args.n, args.c)
                    out[name].append(cpu)
                    out[name + "_wall"].append(wall)
                    print(f"round {r + 1} {name}: {cpu:8.1f} µs CPU/req  {wall:8.1f} µs wall/req", flush=True)
            return out

        try:
            res = asyncio.run(run())
        finally:
            hogo.close()
    if res["bare"]:
        h, b = statistics.median(res["hogo"]), statistics.median(res["bare"])
        print(json.dumps({"hogo_cpu_us": round(h, 1), "bare_cpu_us": round(b, 1), "ratio_cpu": round(b / h, 3),
                          "ratio_wall": round(statistics.median(res["bare_wall"]) / statistics.median(
                              res["hogo_wall"]), 3)}))


if __name__ == "__main__":
    main()
