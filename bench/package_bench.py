"""Take-out packages (issue 5, SEC-49): what encrypting, hashing and signing a package costs against writing the
same rows as a plain CSV, for 100,000 payroll records of 10 fields (``bench_data.generate_rows``). Target: ≤ 3×.

(a) The writer alone, from the same rows in memory: ``csv.writer`` to a file against ``services.packages``'
    CSV encoding + ``crypto.package.PackageWriter`` (AES-256-GCM in 1 MiB chunks, SHA-256 of the ciphertext and
    the plaintext, the manifest signed with Ed25519) to a file, alternated A B A B, medians.
(b) End to end, from the database through the guard: the records imported into a temporary SQLite instance
    (production settings), then ``build_package`` (decide, one access entry with 100,000 record IDs, decrypt
    batch by batch, package) against ``guard.export_records`` + the same CSV encoding to a plain file (the same
    decision, entry and decryption), and against csv.writer of the rows already in memory.

The file is the payroll spec with its My Number held as a masked identification code at confidentiality 2 and no
restrictions, so the same records can be exported both ways. The recipient is a P-256 key (a passphrase adds one
Argon2id derivation, about a third of a second, per package). Run: ``python bench/package_bench.py [N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_data
import yaml
from common import log, secret_of

from hogo.bootstrap import build
from hogo.clock import FakeClock
from hogo.config import Settings
from hogo.crypto import package as pkg
from hogo.crypto import totp
from hogo.services import accounts, audit_tree, auth, files, grants, guard, instance, packages
from hogo.services.audit import RequestContext

CTX = RequestContext(client_addr="127.0.0.1", user_agent="hogo-bench")
FILE = "staff-export"
PURPOSE = bench_data.PURPOSE
TARGET_RATIO = 3.0


class _Stream:
    """The in-memory rows as a guard.ExportStream stand-in for the CSV encoder (same code path as the guard's)."""

    def __init__(self, rows: list[list[str]]) -> None:
        self._rows = rows
        self.columns = ("record_id", *bench_data.HEADER)

    def rows(self) -> Any:
        for i, r in enumerate(self._rows):
            yield [f"R{i}", *r]


def plain_csv(rows: list[list[str]], path: Path) -> float:
    t0 = time.perf_counter()
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(("record_id", *bench_data.HEADER))
        w.writerows([f"R{i}", *r] for i, r in enumerate(rows))
    return time.perf_counter() - t0


def package_writer(rows: list[list[str]], path: Path, recipient: pkg.Recipient, signer: Any) -> float:
    t0 = time.perf_counter()
    with path.open("wb") as out:
        w = pkg.PackageWriter(out, package_id="PKG-BENCH", recipient=recipient)
        for piece in packages.csv_pieces(_Stream(rows), encoding="utf-8-bom"):  # type: ignore[arg-type]
            w.write(piece)
        w.finish({"file": FILE, "record_count": len(rows)}, signer)
    return time.perf_counter() - t0


def bench_writer(rows: list[list[str]], tmp: Path, repeat: int, signer: Any, recipient: pkg.Recipient
                 ) -> dict[str, Any]:
    plain, packed = [], []
    for i in range(repeat):
        p1, p2 = tmp / f"plain{i}.csv", tmp / f"pkg{i}.hogopkg"
        plain.append(plain_csv(rows, p1))
        packed.append(package_writer(rows, p2, recipient, signer))
        sizes = (p1.stat().st_size, p2.stat().st_size)
        p1.unlink()
        p2.unlink()
    a, b = statistics.median(plain), statistics.median(packed)
    return {"plain_csv_s": round(a, 3), "package_s": round(b, 3), "ratio": round(b / a, 2),
            "plain_bytes": sizes[0], "package_bytes": sizes[1], "runs": repeat}


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(bench_data.SPEC_PATH.read_text(encoding="utf-8"))
    spec.update(code=FILE, kind="personal_information", restrictions=[],
                classification={"confidentiality": 2, "integrity": 1, "availability": 1})
    spec["fields"] = [{**f, "type": "text", "sensitivity": "individual_identification_code"}
                      if f["name"] == "my_number" else f for f in spec["fields"]]
    return spec


def _instance(tmp: Path) -> tuple[Any, Any]:
    clock = FakeClock(dt.datetime.now(dt.UTC))
    settings = Settings(data_dir=tmp / "data")
    res = instance.init_instance(settings, admin=bench_data.ADMIN, admin_password=bench_data.ADMIN_PASSWORD,
                                 clock=clock)
    assert res.otpauth_uri is not None
    hogo = build(settings, clock=clock)
    clock.advance(seconds=30)
    admin = auth.login(hogo, username=bench_data.ADMIN, password=bench_data.ADMIN_PASSWORD,
                       totp=totp.current_code(secret_of(res.otpauth_uri), clock.now()), ctx=CTX).principal
    accounts.create_department(hogo, admin, code="KYUYO", name="給与厚生課", ctx=CTX)
    secrets_ = {name: bench_data._active_user(hogo, clock, admin, name, role, "KYUYO", CTX)
                for name, role in ((bench_data.MANAGER, "protection_manager"), (bench_data.CLERK, "clerk"))}

    def principal(name: str) -> Any:
        clock.advance(seconds=30)
        return auth.login(hogo, username=name, password=bench_data.USER_PASSWORD,
                          totp=totp.current_code(secrets_[name], clock.now()), ctx=CTX).principal

    pm = principal(bench_data.MANAGER)
    files.create_file(hogo, pm, _spec(), ctx=CTX)
    grants.create_grant(hogo, pm, FILE, user=bench_data.CLERK, actions=["create", "export"], purposes=[PURPOSE],
                        ctx=CTX)
    return hogo, principal(bench_data.CLERK)


def bench_end_to_end(rows: list[list[str]], tmp: Path, repeat: int, public: str) -> dict[str, Any]:
    hogo, clerk = _instance(tmp)
    try:
        body = io.StringIO()
        w = csv.writer(body, lineterminator="\r\n")
        w.writerow(bench_data.HEADER)
        w.writerows(rows)
        t0 = time.perf_counter()
        report = guard.import_records(hogo, clerk, FILE, io.BytesIO(body.getvalue().encode()), purpose=PURPOSE,
                                      ctx=CTX)
        log(f"  imported {report.imported} records in {time.perf_counter() - t0:.1f} s")
        del body
        through_plain, through_pkg, mem_plain = [], [], []
        for i in range(repeat):
            path = tmp / f"e2e{i}.csv"
            t0 = time.perf_counter()
            stream = guard.export_records(hogo, clerk, FILE, fields=None, purpose=PURPOSE, ctx=CTX)
            with path.open("wb") as fh:
                for piece in packages.csv_pieces(stream, encoding="utf-8-bom"):
                    fh.write(piece)
            through_plain.append(time.perf_counter() - t0)
            assert stream.exported == len(rows)
            path.unlink()
            t0 = time.perf_counter()
            info = packages.build_package(hogo, clerk, FILE, fields=None, selection=None, purpose=PURPOSE,
                                          recipient=public, out_path=tmp / f"e2e{i}.hogopkg", ctx=CTX)
            through_pkg.append(time.perf_counter() - t0)
            assert info.record_count == len(rows)
            info.path.unlink()
            mem_plain.append(plain_csv(rows, tmp / "mem.csv"))
        a, b, m = (statistics.median(x) for x in (through_plain, through_pkg, mem_plain))
        return {"guard_plain_csv_s": round(a, 3), "guard_package_s": round(b, 3),
                "ratio_vs_guard_plain_csv": round(b / a, 2), "memory_plain_csv_s": round(m, 3),
                "ratio_vs_memory_plain_csv": round(b / m, 2), "runs": repeat}
    finally:
        hogo.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-e2e", action="store_true")
    opts = ap.parse_args(argv)
    log(f"generating {opts.n} rows …")
    rows = list(bench_data.generate_rows(opts.n))
    _, public = pkg.generate_identity()
    recipient = pkg.Recipient.of(public)
    result: dict[str, Any] = {"records": opts.n, "fields": len(bench_data.HEADER), "target_ratio": TARGET_RATIO}
    with tempfile.TemporaryDirectory(prefix="hogo-pkg-bench-") as d:
        tmp = Path(d)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.from_private_bytes(os.urandom(32))
        signer = audit_tree.LogKey(key, key.public_key(), "hogo.log/bench")
        log("(a) writer: csv.writer vs package writer …")
        result["writer"] = bench_writer(rows, tmp, opts.repeat, signer, recipient)
        log(f"  {result['writer']}")
        if not opts.skip_e2e:
            log("(b) end to end through the guard …")
            result["end_to_end"] = bench_end_to_end(rows, tmp, opts.repeat, public)
            log(f"  {result['end_to_end']}")
    print(json.dumps(result, indent=1))
    return 0 if result["writer"]["ratio"] <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
