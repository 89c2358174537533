"""Helpers shared by the benchmarks (``bench/run.py``, ``bench/bench_data.py``): percentiles, real
uvicorn servers on loopback ports, the load generators (wrk, or ``bench/loadgen.py``) and CPU pinning."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 2),
        "p95": round(percentile(ms, 95), 2),
        "mean": round(statistics.fmean(ms), 2),
        "min": round(min(ms), 2),
        "max": round(max(ms), 2),
    }


def secret_of(uri: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------- http


class Server:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path,
                 pin: Callable[[], None] | None) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [sys.executable, "-m", "uvicorn", *args, "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", "1", "--log-level", "warning", "--no-access-log"]
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=pin)  # only sets the CPU affinity

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited ({self.proc.returncode}):\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/api/v1/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOGO_")}
    env.update(extra)
    return env


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk_ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(f"unparsable wrk latency {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _header_args(token: str, headers: Mapping[str, str] | None) -> list[str]:
    out = ["-H", f"Authorization: Bearer {token}"]
    for name, value in (headers or {}).items():
        out += ["-H", f"{name}: {value}"]
    return out


def run_wrk(url: str, token: str, concurrency: int, duration: float, pin: Callable[[], None] | None,
            headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    cmd = ["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{max(1, round(duration))}s", "--latency",
           "--timeout", "10s", *_header_args(token, headers), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True,
                         preexec_fn=pin).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    rps = float(found.group(1))
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    lat = dict(re.findall(r"^\s*(50|75|90|99)%\s+(\S+)\s*$", out, flags=re.M))
    return {
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "rps": rps,
        "latency_ms": {f"p{k}": round(wrk_ms(v), 3) for k, v in lat.items()},
    }


def run_loadgen(url: str, token: str, concurrency: int, duration: float, pin: Callable[[], None] | None,
                headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH_DIR / "loadgen.py"), url, "-c", str(concurrency), "-d", str(duration),
           *_header_args(token, headers)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True,
                         preexec_fn=pin).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def affinity(cpus: set[int]) -> Callable[[], None] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin

