"""``hogo record import`` against a real server whose imports go through the sealing worker process
(services/import_sealer.py; ``import_parallel_min_bytes = 0``, batches of 3 rows): a Shift_JIS CSV
with good and bad rows imports exactly the good ones, names every bad row with its field and reason
without echoing a value, writes the rejects file 0600, and the records are found by their blind
index (ANON-5, MN-6a, SEC-45, MN-3b)."""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_data_support import (
    BAD_MN,
    FILE,
    HEADER,
    ITO,
    P1,
    PM,
    DataOrg,
    my_number,
    seed,
    write_csv,
)
from cli_support import ADMIN, ADMIN_PASSWORD, Cli

from live import init_data_dir, secret_of, start_server


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    data = tmp_path / "data"
    res = init_data_dir(data, admin=ADMIN, admin_password=ADMIN_PASSWORD, import_parallel_min_bytes=0,
                        import_batch_rows=3)  # kept in hogo.toml: the server imports through the worker
    assert res.otpauth_uri is not None
    codes = seed(data)
    o = DataOrg(cli, start_server(data), secret_of(res.otpauth_uri), codes)
    try:
        for name in (PM, ITO):
            o.login(name)
        yield o
    finally:
        o.server.stop()


def test_a_shift_jis_import_through_the_worker_names_bad_rows_and_keeps_good_ones(org: DataOrg, tmp_path: Path):
    org.define_file()
    org.grant()
    rows = [[f"W{i:02d}", f"E{i:04d}", f"髙橋 {i}", my_number(f"{50_000_000_000 + i:011d}"), "KYUYO"]
            for i in range(1, 11)]
    rows[3][3] = BAD_MN
    rows[6][0] = "W02"  # W02 twice
    src = write_csv(tmp_path, "payroll.csv", rows, encoding="cp932")
    r = org.cli.json("record", "import", FILE, "--csv", str(src), "--purpose", P1, "--encoding", "shift_jis",
                     as_=ITO)
    assert (r["total"], r["imported"], r["rejected_rows"]) == (10, 8, 2)
    assert [(p["row"], p["field"]) for p in r["rejected"]] == [(4, "my_number"), (7, "record_id")]
    assert BAD_MN not in str(r)
    rejects = Path(r["rejects_file"])
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    back = list(csv.reader(io.StringIO(rejects.read_bytes().decode("cp932"), newline="")))
    assert back[0] == [*HEADER, "hogo_reject_reason"] and [b[:5] for b in back[1:]] == [rows[3], rows[6]]
    found = org.cli.json("record", "find", FILE, "--where", "employee_no=E0010", "--purpose", P1, as_=ITO)
    assert [x["values"]["name"] for x in found] == ["髙橋 10"]
    assert org.cli.json("file", "show", FILE, as_=PM)["records"] == 8
