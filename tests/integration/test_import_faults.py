"""A killed import: the server is SIGKILLed in the middle of a 50,000-row import, then restarted.

* ``atomic``: the file is as it was before (its one earlier record, nothing else; no import recorded).
* default: only whole batches of good rows (``import_batch_rows`` each, committed one by one), every
  record complete (all ten fields) and readable, and each committed batch has its
  ``data:record:import`` access event listing exactly that batch's record IDs (MN-3b: the access
  record and the data commit together or not at all). Importing the same CSV again then brings in
  exactly the rest.

The kill comes once the import is observably under way: for the default mode when the first batch
is visible; for ``atomic`` when the import's open transaction is seen — on SQLite the write lock
held for longer than any other write takes, on PostgreSQL the records' sequence moving (sequences
are not transactional) while no record is visible. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text

from hogo.domain.identifiers import my_number_check_digit
from hogo.services.files import file_keys, load_spec
from hogo.store.models import AuditEvent, PersonalDataFile, Record, RecordIndex
from live import LiveOrg, LiveServer, kill_server, prepare_org, sign_in_api, start_server

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
CLERK = "clerk.ito"
N_ROWS = 50_000
FIELDS = ["employee_no", "name", "name_kana", "my_number", "birth_date", "postal_code", "address", "phone",
          "department", "dependents"]
SURNAMES = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("渡辺", "ワタナベ")]
GIVEN = [("翔", "ショウ"), ("結衣", "ユイ"), ("健太", "ケンタ"), ("美咲", "ミサキ"), ("誠", "マコト"), ("陽菜", "ヒナ")]
DEADLINE_S = 90


def record_id(i: int) -> str:
    return f"imp-{i:05d}"


def values(i: int) -> dict[str, str]:
    """Row i, already in hogo's normalised form (so the stored values must equal it)."""
    sur, sur_kana = SURNAMES[i % len(SURNAMES)]
    given, given_kana = GIVEN[(i // len(SURNAMES)) % len(GIVEN)]
    first11 = f"{(i * 1_000_003 + 4_242_424_242) % 10**11:011d}"
    return {
        "employee_no": f"E{i:06d}",
        "name": f"{sur} {given}",
        "name_kana": f"{sur_kana} {given_kana}",
        "my_number": first11 + str(my_number_check_digit(first11)),
        "birth_date": (dt.date(1960, 1, 1) + dt.timedelta(days=(i * 97) % 14000)).isoformat(),
        "postal_code": f"{100 + i % 900:03d}-{i % 10000:04d}",
        "address": f"東京都千代田区霞が関{1 + i % 3}丁目{1 + i % 30}番{1 + i % 20}号",
        "phone": f"03-{(i * 7) % 10000:04d}-{(i * 13) % 10000:04d}",
        "department": "KYUYO",
        "dependents": str(i % 4),
    }


def csv_body(n: int) -> bytes:
    lines = [",".join(["record_id", *FIELDS])]
    lines += [",".join([record_id(i), *values(i).values()]) for i in range(n)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


@pytest.fixture(scope="module")
def body() -> bytes:
    return csv_body(N_ROWS)


class Live:
    def __init__(self, org: LiveOrg, server: LiveServer, database_url: str) -> None:
        self.org, self.server, self.database_url = org, server, database_url
        self.token = sign_in_api(server.url, CLERK, org.password, org.secrets[CLERK])
        self.engine = create_engine(database_url)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Hogo-Purpose": urllib.parse.quote(P1)}

    def api(self, path: str = "") -> str:
        return f"{self.server.url}/api/v1/files/{FILE}{path}"

    def visible_records(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM records")).scalar_one())

    @property
    def sqlite_path(self) -> str | None:
        if not self.database_url.startswith("sqlite"):
            return None
        return self.database_url.removeprefix("sqlite:///")

    def sqlite_write_locked(self) -> bool:
        """Whether some connection holds SQLite's write lock (an open write transaction)."""
        assert self.sqlite_path is not None
        conn = sqlite3.connect(self.sqlite_path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc) or "busy" in str(exc), exc
            return True
        finally:
            conn.close()

    def pg_records_sequence(self) -> int:
        with self.engine.connect() as conn:
            seq = conn.execute(text("SELECT pg_get_serial_sequence('records', 'id')")).scalar_one()
            row = conn.execute(text(f"SELECT last_value, is_called FROM {seq}")).one()
        return int(row.last_value) if row.is_called else 0

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def live(tmp_path: Path, database_url: str) -> Iterator[Live]:
    org = prepare_org(tmp_path / "data", database_url=None if database_url.startswith("sqlite") else database_url,
                      grants=[{"user": CLERK, "actions": ["read", "create"], "purposes": [P1]}])
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{org.data_dir / 'hogo.db'}"
    server = start_server(org.data_dir)
    lv = Live(org, server, database_url)
    try:
        yield lv
    finally:
        lv.server.stop()
        lv.close()


def start_import(lv: Live, body: bytes, *, atomic: bool) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            r = httpx.post(lv.api("/records/import"), content=body, params={"atomic": str(atomic).lower()},
                           headers={**lv.headers(), "Content-Type": "text/csv"}, timeout=DEADLINE_S)
            outcome["status"] = r.status_code
            outcome["body"] = r.text[:500]
        except httpx.HTTPError as exc:
            outcome["error"] = repr(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, outcome


def wait_until(cond: Any, what: str, outcome: dict[str, Any], server: LiveServer) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if cond():
            return
        if outcome:
            pytest.fail(f"the import ended before {what}: {outcome}")
        if server.proc.poll() is not None:
            pytest.fail(f"the server died by itself:\n{server.log()}")
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


def restart(lv: Live) -> None:
    lv.server = start_server(lv.org.data_dir)


def import_events(hogo: Any) -> list[AuditEvent]:
    with hogo.unit_of_work(readonly=True) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == "data:record:import",
                                                        AuditEvent.target == f"file:{FILE}")
                               .order_by(AuditEvent.seq)))


def create_one(lv: Live) -> str:
    v = values(N_ROWS + 1)
    r = httpx.post(lv.api("/records"), json={"record_id": "before-1", "values": v}, headers=lv.headers(), timeout=30)
    assert r.status_code == 201, r.text
    return "before-1"


def test_killed_atomic_import_leaves_the_file_as_before(live: Live, body: bytes):
    lv = live
    before = create_one(lv)
    assert lv.visible_records() == 1
    seq0 = lv.pg_records_sequence() if lv.sqlite_path is None else 0
    thread, outcome = start_import(lv, body, atomic=True)
    if lv.sqlite_path is not None:
        # The import's transaction holds the write lock from its first batch to its commit; every
        # other write holds it for milliseconds. Seen held for 300 ms running: the import is under way.
        held_since: list[float] = []

        def importing() -> bool:
            if not lv.sqlite_write_locked():
                held_since.clear()
                return False
            held_since.append(time.monotonic())
            return held_since[-1] - held_since[0] >= 0.3

        wait_until(importing, "the import's transaction was seen", outcome, lv.server)
    else:
        # At least a batch inserted (the sequence moved on), none of it visible.
        wait_until(lambda: lv.pg_records_sequence() >= seq0 + 2000, "a batch was inserted", outcome, lv.server)
        assert lv.visible_records() == 1
    kill_server(lv.server)
    thread.join(timeout=30)
    assert "status" not in outcome, f"the import finished before the kill: {outcome}"
    if lv.sqlite_path is None:
        print(f"killed with {lv.pg_records_sequence() - seq0} rows inserted in the open transaction")

    restart(lv)
    r = httpx.get(lv.api(), headers=lv.headers(), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["records"] == 1
    assert lv.visible_records() == 1
    r = httpx.get(lv.api(f"/records/{before}"), headers=lv.headers(), timeout=30)
    assert r.status_code == 200 and r.json()["values"]["name"] == values(N_ROWS + 1)["name"]
    hogo = lv.org.build()
    try:
        assert [e for e in import_events(hogo) if e.outcome == "success"] == []
    finally:
        hogo.close()
    if lv.sqlite_path is not None:
        with sqlite3.connect(lv.sqlite_path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_killed_default_import_keeps_only_whole_batches_each_recorded_MN_3b(live: Live, body: bytes):
    lv = live
    hogo = lv.org.build()
    batch = hogo.settings.import_batch_rows
    hogo.close()
    assert N_ROWS // batch >= 10, "the import must take many batches for a kill to land in the middle"
    thread, outcome = start_import(lv, body, atomic=False)
    wait_until(lambda: lv.visible_records() > 0, "the first batch was committed", outcome, lv.server)
    kill_server(lv.server)
    thread.join(timeout=30)
    assert "status" not in outcome, f"the import finished before the kill: {outcome}"

    restart(lv)
    committed = lv.visible_records()
    assert committed % batch == 0, f"{committed} records: not a whole number of {batch}-row batches"
    k = committed // batch
    print(f"killed after {k} of {N_ROWS // batch} batches")
    assert 1 <= k < N_ROWS // batch
    expected_ids = [record_id(i) for i in range(committed)]  # batches commit in CSV order

    hogo = lv.org.build()
    try:
        with hogo.unit_of_work(readonly=True) as db:
            f = db.scalar(select(PersonalDataFile).where(PersonalDataFile.code == FILE))
            assert f is not None
            keys = file_keys(hogo, db, f.id)
            recs = db.execute(select(Record.record_id, Record.blob).where(Record.file_id == f.id)).all()
            n_index = db.scalar(select(func.count()).select_from(RecordIndex).where(RecordIndex.file_id == f.id))
            indexed = [x.name for x in load_spec(hogo, f).fields if x.indexed]
        assert indexed and n_index == committed * len(indexed)  # every record's blind-index rows, no more
        assert sorted(r.record_id for r in recs) == sorted(expected_ids)
        for rid, blob in recs:
            got = keys.open_record(rid, blob)  # authenticated decryption of every field
            assert got == values(int(rid.removeprefix("imp-"))), rid  # complete: all ten fields, as sent

        events = import_events(hogo)
        assert [e.outcome for e in events] == ["success"] * k
        for j, e in enumerate(events):
            assert e.details is not None
            assert list(e.logged.records) == expected_ids[j * batch:(j + 1) * batch], f"batch {j}"
            assert e.purpose == P1 and e.actor_name == CLERK
    finally:
        hogo.close()

    # Readable through the guard, whole and masked; the first row after the last batch is not there.
    for rid in (expected_ids[0], expected_ids[-1]):
        r = httpx.get(lv.api(f"/records/{rid}"), headers=lv.headers(), timeout=30)
        assert r.status_code == 200, r.text
        assert set(r.json()["values"]) == set(FIELDS) and r.json()["masked"] == ["my_number"]
    r = httpx.get(lv.api(f"/records/{record_id(committed)}"), headers=lv.headers(), timeout=30)
    assert r.status_code == 404

    # Importing the same CSV again brings in exactly the rest (the committed rows are refused as existing).
    r = httpx.post(lv.api("/records/import"), content=body, headers={**lv.headers(), "Content-Type": "text/csv"},
                   timeout=DEADLINE_S)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["imported"] == N_ROWS - committed
    assert lv.visible_records() == N_ROWS
