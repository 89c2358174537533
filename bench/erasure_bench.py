"""Benchmark of crypto-shredding (issue 5; SEC-50, ANON-10): erasing a file of 1,000 and of 100,000
records on a real SQLite instance (``hogo.services.erasure``), and erasing one record of each.

For a file erase the time is split where it matters: ordering it (the deletion record, the file marked
erased and the log entry, committed), destroying every key of the file in the key store (from here on
no copy of the database, earlier or not, can be decrypted), purging the rows, then hogo's check and the
signed certificate. The claim: the time up to the purge does not grow with the record count (the key
store holds one data key and one index key per bucket of about 1,024 records, deleted by one
statement); the purge does. For a record erase the claim is O(bucket): the time to erase one record of
a 100,000-record file is about that of a 1,000-record file.

The records are imported through the guard (``guard.import_records``, as ``hogo record import`` does)
with valid My Numbers; the import time is printed too but is not the subject.

Standalone: ``.venv/bin/python bench/erasure_bench.py [--sizes 1000,100000] [--json]``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' organisation helpers (support.py)

P1 = "源泉徴収票作成事務"
FILE = "payroll-mynumber"


def _mn(i: int) -> str:
    from hogo.domain.identifiers import my_number_check_digit

    body = f"{i:011d}"
    return body + str(my_number_check_digit(body))


def _csv(n: int) -> bytes:
    lines = ["record_id,employee_no,name,my_number,department"]
    lines += [f"R{i:07d},E{i:07d},社員 {i},{_mn(i + 1)},KYUYO" for i in range(n)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def run_size(n: int, tmp: Path) -> dict[str, Any]:
    from hogo.bootstrap import build
    from hogo.clock import FakeClock
    from hogo.config import load_settings
    from hogo.services import erasure, grants, guard, instance
    from support import ADMIN, ADMIN_PASSWORD, CTX, TEST_ARGON2, Instance, make_org, secret_of

    settings = load_settings(tmp / f"data-{n}", database_url=f"sqlite:///{tmp / f'hogo-{n}.db'}", argon2=TEST_ARGON2)
    clock = FakeClock()
    res = instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD, clock=clock)
    assert res.otpauth_uri is not None
    hogo = build(settings, clock=clock)
    try:
        inst = Instance(hogo, clock, res.admin, ADMIN_PASSWORD, secret_of(res.otpauth_uri), res.recovery_codes)
        org = make_org(inst)
        pm = org.p("pm.takahashi")
        grants.create_grant(hogo, pm, FILE, user="clerk.ito", actions=["read", "create", "delete"], purposes=[P1],
                            ctx=CTX)
        ito = org.p("clerk.ito")
        t0 = time.perf_counter()
        rep = guard.import_records(hogo, ito, FILE, io.BytesIO(_csv(n)), purpose=P1, ctx=CTX)
        import_s = time.perf_counter() - t0
        assert rep.imported == n, rep.rejected[:3]
        buckets = len({v for p, v in hogo.keystore.versions(org_file_id(hogo)) if p == "data"})

        # One record, three times (each in another bucket): O(bucket), not O(file).
        record_s = []
        for rid in (f"R{0:07d}", f"R{n // 2:07d}", f"R{n - 1:07d}"):
            t0 = time.perf_counter()
            erasure.erase_records(hogo, ito, FILE, [rid], reason="本人からの削除請求", purpose=P1, ctx=CTX)
            record_s.append(time.perf_counter() - t0)

        # The whole file, timed step by step.
        marks: dict[str, float] = {}
        store = hogo.keystore
        real_destroy, real_purge, real_check = store.destroy, erasure.purge_file_rows, erasure._check

        def destroy(file_id: int, versions: Any = None) -> list[int]:
            marks["destroy_start"] = time.perf_counter()
            out = real_destroy(file_id, versions)
            marks["destroyed"] = time.perf_counter()
            return out

        def purge(h: Any, file_id: int, **kw: Any) -> int:
            marks["purge_start"] = time.perf_counter()
            out = real_purge(h, file_id, **kw)
            marks["purged"] = time.perf_counter()
            return out

        def check(h: Any, deletion_id: int) -> dict[str, Any]:
            marks["check_start"] = time.perf_counter()
            return real_check(h, deletion_id)

        store.destroy = destroy  # type: ignore[method-assign]
        erasure.purge_file_rows = purge  # type: ignore[assignment]
        erasure._check = check  # type: ignore[assignment]
        try:
            start = time.perf_counter()
            cert = erasure.erase_file(hogo, pm, FILE, reason="事務の廃止", ctx=CTX)
            end = time.perf_counter()
        finally:
            store.destroy = real_destroy  # type: ignore[method-assign]
            erasure.purge_file_rows = real_purge
            erasure._check = real_check
        assert cert.status == "complete" and cert.record_count == n - 3
        return {
            "records": n, "buckets": buckets, "import_s": round(import_s, 2),
            "record_erase_ms": [round(s * 1000, 1) for s in record_s],
            "record_erase_median_ms": round(statistics.median(record_s) * 1000, 1),
            "file_order_ms": round((marks["destroy_start"] - start) * 1000, 1),
            "file_destroy_keys_ms": round((marks["destroyed"] - marks["destroy_start"]) * 1000, 1),
            "file_until_keys_gone_ms": round((marks["destroyed"] - start) * 1000, 1),
            "file_purge_ms": round((marks["purged"] - marks["purge_start"]) * 1000, 1),
            "file_check_and_sign_ms": round((end - marks["check_start"]) * 1000, 1),
            "file_total_ms": round((end - start) * 1000, 1),
        }
    finally:
        hogo.close()


def org_file_id(hogo: Any) -> int:
    from sqlalchemy import select

    from hogo.store.models import PersonalDataFile

    with hogo.unit_of_work(readonly=True) as db:
        return int(db.scalar(select(PersonalDataFile.id).where(PersonalDataFile.code == FILE)))


def print_report(rows: list[dict[str, Any]]) -> None:
    print("Crypto-shredding (SQLite, keys in keys/keystore.db, buckets of ~1,024 records)")
    head = ["records", "buckets", "import s", "1 record erase ms (median)", "file: order ms",
            "destroy keys ms", "until keys gone ms", "purge ms", "check+sign ms", "total ms"]
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(x) for x in (
            r["records"], r["buckets"], r["import_s"], r["record_erase_median_ms"], r["file_order_ms"],
            r["file_destroy_keys_ms"], r["file_until_keys_gone_ms"], r["file_purge_ms"],
            r["file_check_and_sign_ms"], r["file_total_ms"])))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,100000", help="record counts, comma-separated")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hogo-erasure-bench-") as d:
        for n in (int(s) for s in args.sizes.split(",")):
            rows.append(run_size(n, Path(d)))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
