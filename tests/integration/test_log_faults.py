"""The tamper-evident log under faults (SEC-107(2)(3), ANON-12, MN-3b): a real server SIGKILLed under
heavy concurrent access, several server processes appending to one log, a full disk, and an
off-host sink that stops taking checkpoints.

What must hold every time:

* no acknowledged access is missing from the log: every HTTP 200 a client received for a record read
  has its ``data:record:read`` entry, committed before the response was sent (MN-3b);
* the log is one gapless line: ``audit_head.size == count(*) == max(seq) + 1``, each row's entry claims
  its own index and hashes to its stored leaf (``sha256(0x00 || entry)``: nothing half-written), and
  the whole verifies — entries, tree nodes and signed checkpoints (SEC-107(3), ANON-12);
* an access whose entry cannot be written, or while the log cannot be anchored off-host, is refused
  and nothing is served or changed (fail closed).

On SQLite and, with ``HOGO_TEST_PG_URL``, PostgreSQL (the full-disk case is SQLite only).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import random
import sqlite3
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from hogo.api.app import create_app
from hogo.config import load_settings, write_settings
from hogo.domain.auditlog import entry_seq
from hogo.domain.identifiers import my_number_check_digit
from hogo.services import audit_access, audit_tree, audit_verify, grants, guard
from live import LiveOrg, kill_server, prepare_org, sign_in_api, start_server
from support import CTX, Instance, Org, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
CLERK = "clerk.ito"
READ = "data:record:read"


def person(i: int) -> dict[str, str]:
    first11 = f"{23456789000 + i:011d}"
    return {"employee_no": f"E{i:05d}", "name": f"試験 太郎{i}", "department": "KYUYO",
            "my_number": first11 + str(my_number_check_digit(first11))}


# ------------------------------------------------------------------------------------ helpers


@dataclasses.dataclass
class LogState:
    head: int
    rows: int
    max_seq: int | None
    bad_leaves: list[int]  # rows whose leaf_hash is not sha256(0x00 || entry), or with no entry
    bad_claims: list[int]  # rows whose entry claims another index (or none)


def log_state(engine: Engine) -> LogState:
    with engine.connect() as conn:
        head = int(conn.execute(text("SELECT size FROM audit_head WHERE id = 1")).scalar_one())
        rows, max_seq = conn.execute(text("SELECT count(*), max(seq) FROM audit_events")).one()
        bad_leaves: list[int] = []
        bad_claims: list[int] = []
        for seq, entry, leaf in conn.execute(text("SELECT seq, entry, leaf_hash FROM audit_events ORDER BY seq")):
            if entry is None or hashlib.sha256(b"\x00" + bytes(entry)).digest() != bytes(leaf):
                bad_leaves.append(seq)
                continue
            try:
                if entry_seq(bytes(entry)) != seq:
                    bad_claims.append(seq)
            except Exception:
                bad_claims.append(seq)
    return LogState(head, int(rows), None if max_seq is None else int(max_seq), bad_leaves, bad_claims)


def assert_log_intact(hogo: Any) -> LogState:
    """Gapless, nothing half-written, and the whole log verifies (with the sinks' checkpoints)."""
    st = log_state(hogo.engine)
    assert st.head == st.rows == (st.max_seq or 0) + 1, f"not gapless: {st}"
    assert st.bad_leaves == [] and st.bad_claims == [], st
    report = audit_access.verify(hogo, None)
    assert report.ok, [p.as_dict() for p in report.problems[:5]]
    assert report.size == st.head
    return st


def reads_by_record(engine: Engine, user: str = CLERK) -> Counter[str]:
    """Successful ``data:record:read`` entries of ``user``, by the record they name."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.record_id, count(*) FROM audit_events e JOIN audit_record_refs r ON r.seq = e.seq "
            "WHERE e.event = :ev AND e.outcome = 'success' AND e.actor_name = :u AND r.file_code = :f "
            "GROUP BY r.record_id"), {"ev": READ, "u": user, "f": FILE}).all()
    return Counter({rid: int(n) for rid, n in rows})


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Hogo-Purpose": urllib.parse.quote(P1)}


def create_records(url: str, token: str, ids: list[str]) -> None:
    with httpx.Client(base_url=url, headers=headers(token), timeout=30) as c:
        for i, rid in enumerate(ids):
            r = c.post(f"/api/v1/files/{FILE}/records", json={"record_id": rid, "values": person(i)})
            assert r.status_code == 201, r.text


@dataclasses.dataclass
class Reader:
    """A client thread reading one record over and over on one server until stopped or cut off."""

    url: str
    token: str
    record_id: str
    stop: threading.Event
    sent: int = 0  # requests started (each writes at most one read entry)
    acked: int = 0  # 200 responses received whole: accesses the server said happened
    refused: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    cut_off: str | None = None
    thread: threading.Thread | None = None

    def start(self) -> Reader:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers=headers(self.token), timeout=30) as c:
            while not self.stop.is_set():
                self.sent += 1
                try:
                    r = c.get(f"/api/v1/files/{FILE}/records/{self.record_id}")
                except httpx.TransportError as exc:  # the server is gone (killed)
                    self.cut_off = type(exc).__name__
                    return
                if r.status_code == 200 and r.json()["record_id"] == self.record_id:
                    self.acked += 1
                else:
                    self.refused.append((r.status_code, r.text[:300]))
                    return

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), f"reader of {self.record_id} hangs"


def flowing(readers: list[Reader], n: int) -> bool:
    """At least ``n`` reads acknowledged in all, or some reader has stopped (refused or cut off)."""
    return sum(x.acked for x in readers) >= n or any(x.refused or x.cut_off for x in readers)


def wait_for(cond: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def cli_verify(org: LiveOrg) -> dict[str, Any]:
    """``hogo audit verify --data-dir`` as an operator runs it on the stopped instance."""
    from typer.testing import CliRunner

    from hogo.cli.main import app

    env = {"NO_COLOR": "1", "HOGO_DATA_DIR": None, "HOGO_DATABASE_URL": org.database_url}
    res = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(org.data_dir), "--json"], env=env,
                             catch_exceptions=False)
    assert res.exit_code == 0, (res.exit_code, res.output[-2000:])
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def sqlite_file(org: LiveOrg) -> Path | None:
    return None if org.database_url else org.data_dir / "hogo.db"


def org_for(tmp_path: Path, database_url: str) -> LiveOrg:
    return prepare_org(tmp_path / "data", database_url=None if database_url.startswith("sqlite") else database_url,
                       grants=[{"user": CLERK, "actions": ["read", "create"], "purposes": [P1]}])


@contextlib.contextmanager
def built(org: LiveOrg) -> Iterator[Any]:
    hogo = org.build()
    try:
        yield hogo
    finally:
        hogo.close()


# --------------------------------------------------------------------- 1. SIGKILL under load

ROUNDS = 5
THREADS = 8


def test_sigkill_under_concurrent_reads_loses_no_acknowledged_access_SEC_107_MN_3b(tmp_path: Path,
                                                                                   database_url: str) -> None:
    """SEC-107(2)(3), ANON-12, MN-3b. Five times: eight clients read records over HTTP as fast as the
    server answers, and the server is SIGKILLed at a random moment once reads are flowing. Each
    (round, client) reads its own record, so its entries are counted exactly: at least the 200s the
    client received (no acknowledged access is missing), at most the requests it sent. After every
    kill the log is gapless, has no half-written entry and verifies; at the end the operator's
    ``hogo audit verify --data-dir`` agrees."""
    rng = random.Random(107)
    org = org_for(tmp_path, database_url)
    server = start_server(org.data_dir)
    try:
        token = sign_in_api(server.url, CLERK, org.password, org.secrets[CLERK])
        ids = [[f"K{r}-{t}" for t in range(THREADS)] for r in range(ROUNDS)]
        create_records(server.url, token, [rid for row in ids for rid in row])
        with built(org) as hogo:
            for r in range(ROUNDS):
                t0 = time.monotonic()
                before = reads_by_record(hogo.engine)
                stop = threading.Event()
                readers = [Reader(server.url, token, rid, stop).start() for rid in ids[r]]
                wait_for(functools.partial(flowing, readers, 50), "reads to flow")
                time.sleep(rng.uniform(0.2, 1.0))
                kill_server(server)
                for x in readers:
                    x.join()
                assert [x.refused for x in readers if x.refused] == [], "refused before the kill"
                after = reads_by_record(hogo.engine)
                for x in readers:
                    logged = after[x.record_id] - before[x.record_id]
                    assert x.acked <= logged <= x.sent, (r, x.record_id, x.acked, logged, x.sent)
                if (db := sqlite_file(org)) is not None:
                    with contextlib.closing(sqlite3.connect(db)) as conn:
                        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                st = assert_log_intact(hogo)
                acked = sum(x.acked for x in readers)
                print(f"round {r} ({time.monotonic() - t0:.1f} s): {acked} acknowledged reads, "
                      f"{sum(after[x.record_id] - before[x.record_id] for x in readers)} logged, "
                      f"log size {st.head}")
                server = start_server(org.data_dir)
            # The restarted server serves and logs again.
            r_ = httpx.get(f"{server.url}/api/v1/files/{FILE}/records/{ids[0][0]}", headers=headers(token), timeout=30)
            assert r_.status_code == 200, r_.text
        server.stop()
        out = cli_verify(org)
        assert out["ok"] is True and out["problems"] == [], out
    finally:
        server.stop()


# ------------------------------------------------------------- 2. several servers, one log


def test_two_servers_on_one_database_append_to_one_gapless_log_SEC_107(tmp_path: Path, database_url: str) -> None:
    """SEC-107(3), ANON-12, MN-3b. Two server processes on one database (on SQLite one file, in WAL
    mode with a busy timeout) serve reads concurrently; every access on either is one entry of one
    linear log. Then: no request refused, the read entries are exactly the acknowledged reads (each
    server's clients read their own records), the two servers' entries interleave, everything else
    appended meanwhile is the servers' own housekeeping, and the log is gapless and verifies.

    Meanwhile an auditor verifies the live log over and over, as ``POST /api/v1/audit/verify`` does:
    each run must see one consistent state and find nothing wrong."""
    org = org_for(tmp_path, database_url)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: start_server(org.data_dir), range(2))
    try:
        token = sign_in_api(a.url, CLERK, org.password, org.secrets[CLERK])
        ids = {"A": [f"A{t}" for t in range(4)], "B": [f"B{t}" for t in range(4)]}
        create_records(a.url, token, ids["A"] + ids["B"])
        with built(org) as hogo:
            start = log_state(hogo.engine).head
            stop = threading.Event()
            readers = ([Reader(a.url, token, rid, stop).start() for rid in ids["A"]]
                       + [Reader(b.url, token, rid, stop).start() for rid in ids["B"]])
            wait_for(functools.partial(flowing, readers, 20), "reads to flow")
            live_reports: list[audit_verify.Report] = []
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                live_reports.append(audit_access.verify(hogo, None))
                time.sleep(0.05)
            stop.set()
            for x in readers:
                x.join()
            a.stop()
            b.stop()
            assert [(x.record_id, x.refused, x.cut_off) for x in readers if x.refused or x.cut_off] == []
            assert all(x.acked > 0 for x in readers), [(x.record_id, x.acked) for x in readers]
            with hogo.engine.connect() as conn:
                new = conn.execute(text(
                    "SELECT e.seq, e.event, e.outcome, e.actor_name, r.record_id FROM audit_events e "
                    "LEFT JOIN audit_record_refs r ON r.seq = e.seq WHERE e.seq >= :s ORDER BY e.seq"),
                    {"s": start}).all()
            st = assert_log_intact(hogo)
        reads = [row for row in new if row.event == READ]
        others = Counter(row.event for row in new if row.event != READ)
        acked = Counter({x.record_id: x.acked for x in readers})
        assert all(row.outcome == "success" and row.actor_name == CLERK for row in reads)
        assert Counter(row.record_id for row in reads) == acked  # exactly: no request was cut off
        assert len(new) == st.head - start == sum(acked.values()) + sum(others.values())
        assert not [e for e in others if e.startswith("data:")], others  # the rest is housekeeping
        servers = [row.record_id[0] for row in reads]
        switches = sum(1 for p, q in itertools.pairwise(servers) if p != q)
        assert switches >= 2, f"the two servers' entries do not interleave ({switches} switches)"
        false_alarms = [p.as_dict() for rep in live_reports for p in rep.problems]
        print(f"{sum(acked.values())} acknowledged reads (A {sum(x.acked for x in readers[:4])}, "
              f"B {sum(x.acked for x in readers[4:])}), {switches} switches, other entries {dict(others)}; "
              f"{len(live_reports)} live verifications, {sum(not r.ok for r in live_reports)} not ok")
        # The live verifier reads one snapshot (REPEATABLE READ on PostgreSQL): appends between its
        # statements must not look like tampering.
        assert false_alarms == []
    finally:
        a.stop()
        b.stop()


# ------------------------------------------------------------------------------ 3. full disk


@pytest.fixture
def sqlite_only(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("a full disk is simulated with SQLite's max_page_count; PostgreSQL's disk cannot be "
                    "filled safely on a shared CI machine")


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user=CLERK, actions=["read", "create"],
                        purposes=[P1], ctx=CTX)
    clerk = o.p(CLERK)
    for i in range(5):
        guard.create_record(inst.hogo, clerk, FILE, person(i), purpose=P1, ctx=CTX, record_id=f"E{i}")
    return o


@contextlib.contextmanager
def disk_full(engine: Engine, *, spare_pages: int) -> Iterator[int]:
    """Every connection of ``engine`` may grow the database file by at most ``spare_pages`` pages
    beyond its size now; a write past that fails with SQLITE_FULL ("database or disk is full")."""
    with engine.connect() as conn:
        limit = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()) + spare_pages

    def cap(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA max_page_count = {limit}")
        cur.close()

    event.listen(engine, "connect", cap)
    engine.dispose()  # pooled connections made before would not have the cap
    try:
        yield limit
    finally:
        event.remove(engine, "connect", cap)
        engine.dispose()


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_a_full_disk_refuses_the_access_and_serves_nothing_MN_3b(sqlite_only: None, org: Org) -> None:
    """MN-3b, SEC-107(2), ANON-12. The database cannot grow (SQLite's page limit: SQLITE_FULL, as on a
    full disk). Reads go on while their entries fit; the first whose entry cannot be written raises,
    returns nothing and leaves the log as it was, and so does the same read again. Likewise the
    first create that does not fit leaves neither its record nor an entry. Over HTTP the read is a
    500 with nothing of the record in it. Once there is room again, the log verifies and access
    works."""
    inst = org.inst
    eng = inst.hogo.engine
    # As a server answers: an unexpected error is a 500 response, not an exception in the test.
    with TestClient(create_app(inst.hogo), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        clerk = org.p(CLERK)
        token = org.token(CLERK)
        secret_name = person(1)["name"]
        with disk_full(eng, spare_pages=2):
            ok = 0
            failure: BaseException | None = None
            for _ in range(5000):
                size = log_state(eng).head
                try:
                    view = guard.read_record(inst.hogo, clerk, FILE, "E1", purpose=P1, ctx=CTX)
                except Exception as exc:
                    failure = exc
                    assert log_state(eng).head == size  # nothing logged …
                    break
                assert view.values["name"] == secret_name and log_state(eng).head == size + 1  # … or one entry
                ok += 1
            assert failure is not None, "the page limit was never reached"
            assert "database or disk is full" in str(failure), repr(failure)
            print(f"{ok} reads before the disk was full: {type(failure).__name__}")
            size = log_state(eng).head
            for _ in range(3):  # the same access again: still refused, still nothing logged
                with pytest.raises(Exception, match="database or disk is full"):
                    guard.read_record(inst.hogo, clerk, FILE, "E1", purpose=P1, ctx=CTX)
            created = 0
            for i in range(100, 600):  # creates while they fit, then the first that does not
                try:
                    guard.create_record(inst.hogo, clerk, FILE, person(i), purpose=P1, ctx=CTX, record_id=f"F{i}")
                except Exception as exc:
                    assert "database or disk is full" in str(exc), repr(exc)
                    assert count(eng, "SELECT count(*) FROM records WHERE record_id = :r", r=f"F{i}") == 0
                    assert count(eng, "SELECT count(*) FROM audit_record_refs WHERE record_id = :r", r=f"F{i}") == 0
                    break
                created += 1
            else:
                pytest.fail("every create fitted")
            print(f"{created} creates fitted after that")
            assert log_state(eng).head == size + created
            r = client.get(f"/api/v1/files/{FILE}/records/E1", headers=headers(token))
            assert r.status_code >= 500, r.text
            assert secret_name not in r.text and person(1)["my_number"] not in r.text
            assert log_state(eng).head == size + created
        # Room again: the log is whole and access resumes.
        audit_tree.checkpoint(inst.hogo)
        assert_log_intact(inst.hogo)
        assert guard.read_record(inst.hogo, clerk, FILE, "E1", purpose=P1, ctx=CTX).values["name"] == secret_name
        guard.create_record(inst.hogo, clerk, FILE, person(999), purpose=P1, ctx=CTX, record_id="after-full")
        r = client.get(f"/api/v1/files/{FILE}/records/E1", headers=headers(token))
        assert r.status_code == 200 and r.json()["values"]["name"] == secret_name
        assert_log_intact(inst.hogo)


# ------------------------------------------------------------------------- 4. failing sink


def test_a_failing_log_sink_suspends_data_access_over_http_SEC_107(tmp_path: Path, database_url: str) -> None:
    """SEC-107(3), ANON-12. The instance anchors its checkpoints to a file sink in a directory that
    does not exist, and allows few unanchored entries. A live server's checkpointer fails to anchor
    (recorded in the log); meanwhile every read and create over HTTP is refused with 503
    ``log_unavailable`` and nothing is served or stored. When the sink works again the checkpoint is
    anchored, access resumes, and the log verifies against the sink's copy."""
    org = org_for(tmp_path, database_url)
    server = start_server(org.data_dir)
    try:
        token = sign_in_api(server.url, CLERK, org.password, org.secrets[CLERK])
        create_records(server.url, token, ["S0"])
        server.stop()
        sink = tmp_path / "missing-dir" / "anchors.log"
        s = load_settings(org.data_dir)
        write_settings(s.with_(audit_sinks=(f"file:{sink}",), audit_max_unanchored_entries=3))
        assert f"file:{sink}" in (org.data_dir / "hogo.toml").read_text(encoding="utf-8")
        server = start_server(org.data_dir)
        with built(org) as hogo:
            assert hogo.settings.audit_sinks == (f"file:{sink}",)

            def anchoring_failed() -> bool:
                return count(hogo.engine, "SELECT count(*) FROM audit_events WHERE event = 'audit:log:anchor_failed'"
                             ) > 0 and count(hogo.engine, "SELECT count(*) FROM audit_checkpoints") > 0

            wait_for(anchoring_failed, "the checkpointer to fail to anchor")
            assert count(hogo.engine, "SELECT count(*) FROM audit_checkpoints WHERE anchored_at IS NOT NULL") == 0
            api = f"{server.url}/api/v1/files/{FILE}/records"
            with httpx.Client(headers=headers(token), timeout=30) as c:
                reads_before = reads_by_record(hogo.engine)["S0"]
                r = c.get(f"{api}/S0")
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "log_unavailable"
                assert person(0)["name"] not in r.text and "values" not in r.json()
                r = c.post(api, json={"record_id": "S1", "values": person(1)})
                assert r.status_code == 503 and r.json()["error"]["code"] == "log_unavailable", r.text
                assert count(hogo.engine, "SELECT count(*) FROM records WHERE record_id = 'S1'") == 0
                assert reads_by_record(hogo.engine)["S0"] == reads_before

                sink.parent.mkdir()  # the sink works again: the checkpointer anchors within seconds
                wait_for(lambda: c.get(f"{api}/S0").status_code == 200, "access to resume")
                assert c.post(api, json={"record_id": "S1", "values": person(1)}).status_code == 201
            assert sink.exists() and sink.stat().st_size > 0
            server.stop()
            assert_log_intact(hogo)  # including the checkpoints the sink holds
    finally:
        server.stop()
