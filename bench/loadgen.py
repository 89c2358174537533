"""A small HTTP/1.1 load generator, used by ``bench/run.py`` when ``wrk`` is not installed, and for
fixed-rate latency (which wrk cannot do; wrk2 is not in Debian). Bounded by time and by request
count; loopback targets only.

    python bench/loadgen.py http://127.0.0.1:8700/api/v1/auth/whoami -c 16 -d 10 -H "Authorization: Bearer …"
    python bench/loadgen.py URL --rate 200 -d 20 -c 64 -H …     # open loop, fixed rate

Closed loop (default): ``-c`` workers each send the next request as soon as the previous answer
arrived; the figure of merit is the throughput. Open loop (``--rate R``): request i is *scheduled*
at start + i/R whatever happened before, and its latency is measured from that scheduled time, not
from when it was actually sent, so a stall delays every request scheduled during it and shows in the
percentiles (no coordinated omission, as in wrk2). Up to ``-c`` keep-alive connections are used; a
request scheduled while all of them are busy waits for one, and that wait counts. ``late_sends``
says how many requests left more than 1 ms after their scheduled time.

Prints one JSON object: requests, non-2xx responses, errors, elapsed seconds, rps, latency percentiles,
and the share of one CPU this process used. Two clients: ``--client raw`` (default) keeps one
keep-alive connection per worker on plain asyncio streams (uvloop when installed), several times
faster than ``--client httpx``. Either is slower than wrk; when ``loadgen_cpu_fraction`` is near 1
the generator, not the server, set the pace, and the figure is only a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.parse

import httpx

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _raw_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive GET; the status code. Needs a Content-Length answer (uvicorn gives one)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(length)
    return status


def _request_bytes(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: hogo-bench\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    return host, port, request


async def run_fixed_rate(url: str, rate: float, duration: float, max_connections: int,
                         headers: dict[str, str]) -> dict[str, object]:
    """Open loop: request i is scheduled at start + i/rate; latency runs from the scheduled time."""
    host, port, request = _request_bytes(url, headers)
    total = int(rate * duration)
    latencies: list[float] = []
    service: list[float] = []  # from the actual send to the answer, for comparison
    counts = {"requests": 0, "non_2xx": 0, "errors": 0, "late_sends": 0, "connections_opened": 0,
              "resent_on_new_connection": 0}
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    slots = asyncio.Semaphore(max_connections)
    max_lag = 0.0

    async def one(scheduled: float) -> None:
        nonlocal max_lag
        async with slots:
            conn = idle.pop() if idle else None
            sent = time.perf_counter()
            lag = sent - scheduled
            max_lag = max(max_lag, lag)
            if lag > 0.001:
                counts["late_sends"] += 1
            for attempt in (1, 2):
                reused = conn is not None
                try:
                    if conn is None:
                        counts["connections_opened"] += 1
                        conn = await asyncio.open_connection(host, port)
                    status = await asyncio.wait_for(_raw_get(*conn, request), timeout=10)
                    break
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    # A keep-alive connection the server closed while it was idle (uvicorn: after
                    # 5 s): send again on a new one, as HTTP clients do. The wait still counts.
                    if reused and attempt == 1:
                        counts["resent_on_new_connection"] += 1
                        continue
                    counts["errors"] += 1
                    return
            done = time.perf_counter()
            assert conn is not None
            idle.append(conn)
        latencies.append(done - scheduled)
        service.append(done - sent)
        if not 200 <= status < 300:
            counts["non_2xx"] += 1

    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    cpu0 = time.process_time()
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        counts["requests"] += 1
        tasks.append(loop.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    for _, writer in idle:
        writer.close()

    def pct(values: list[float]) -> dict[str, float | None]:
        return {
            "p50": round(percentile(values, 50) * 1000, 3),
            "p90": round(percentile(values, 90) * 1000, 3),
            "p99": round(percentile(values, 99) * 1000, 3),
            "p99.9": round(percentile(values, 99.9) * 1000, 3),
            "max": round(max(values) * 1000, 3) if values else None,
            "mean": round(statistics.fmean(values) * 1000, 3) if values else None,
        }

    return {
        **counts,
        "mode": "open loop, fixed rate",
        "rate": rate,
        "completed": len(latencies),
        "elapsed_s": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "latency_ms": pct(latencies),
        "service_time_ms": pct(service),
        "max_send_lag_ms": round(max_lag * 1000, 3),
        "loadgen_cpu_fraction": round(cpu / elapsed, 2) if elapsed else None,
        "client": "raw",
    }


async def run(url: str, concurrency: int, duration: float, max_requests: int, headers: dict[str, str],
              client_kind: str = "raw") -> dict[str, object]:
    latencies: list[float] = []
    counts = {"requests": 0, "non_2xx": 0, "errors": 0}
    host, port, request = _request_bytes(url, headers)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=10.0) as client:
        start = time.perf_counter()
        deadline = start + duration

        def more() -> bool:
            return time.perf_counter() < deadline and counts["requests"] < max_requests

        async def record(status: int, t0: float) -> None:
            latencies.append(time.perf_counter() - t0)
            if not 200 <= status < 300:
                counts["non_2xx"] += 1

        async def httpx_worker() -> None:
            while more():
                counts["requests"] += 1
                t0 = time.perf_counter()
                try:
                    r = await client.get(url)
                    await r.aread()
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                await record(r.status_code, t0)

        async def raw_worker() -> None:
            conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
            while more():
                counts["requests"] += 1
                t0 = time.perf_counter()
                try:
                    if conn is None:
                        conn = await asyncio.open_connection(host, port)
                    status = await asyncio.wait_for(_raw_get(*conn, request), timeout=10)
                except (OSError, ValueError, asyncio.IncompleteReadError):  # OSError includes TimeoutError
                    counts["errors"] += 1
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    continue
                await record(status, t0)
            if conn is not None:
                conn[1].close()

        worker = raw_worker if client_kind == "raw" else httpx_worker
        cpu0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    done = len(latencies)
    return {
        **counts,
        "completed": done,
        "elapsed_s": round(elapsed, 3),
        "rps": round(done / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 2),
            "p90": round(percentile(latencies, 90) * 1000, 2),
            "p99": round(percentile(latencies, 99) * 1000, 2),
            "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        },
        "loadgen_cpu_fraction": round(cpu / elapsed, 2) if elapsed else None,
        "client": client_kind,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("url")
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("-d", "--duration", type=float, default=10.0, help="seconds (at most 120)")
    p.add_argument("-n", "--max-requests", type=int, default=500_000)
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    p.add_argument("--client", choices=("raw", "httpx"), default="raw")
    p.add_argument("--rate", type=float, default=None,
                   help="open loop: this many requests per second (at most 5000), latency from the scheduled time; "
                        "-c is then the most connections used")
    args = p.parse_args(argv)
    host = urllib.parse.urlsplit(args.url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        p.error("only loopback targets are allowed")
    if not 0 < args.duration <= 120 or not 0 < args.concurrency <= 256:
        p.error("duration must be in (0, 120] s and concurrency in (0, 256]")
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        uvloop.install()
    except ImportError:
        pass
    if args.rate is not None:
        if not 0 < args.rate <= 5000:
            p.error("--rate must be in (0, 5000]")
        result = asyncio.run(run_fixed_rate(args.url, args.rate, args.duration, args.concurrency, headers))
    else:
        result = asyncio.run(run(args.url, args.concurrency, args.duration, args.max_requests, headers,
                                 args.client))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
