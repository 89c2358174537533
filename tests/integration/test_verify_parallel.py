"""The fast log verification split between this process and a worker process (SEC-132, MLIT-9.5.8,
MN-6c: tamper evidence must not depend on how the check is run).

On SQLite a long log is checked in two halves, the first by a worker process on its own read
snapshot. Whatever the damage and wherever it is, the split check must give exactly the report of
one pass over the whole log — the same problems, in the same order, naming the same first bad
entry — and it must not consider entries appended, or payloads removed, after the run started.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from hogo.domain import merkle
from hogo.domain.auditlog import LogEntry, decode, encode
from hogo.services import audit, audit_access, audit_tree, audit_verify
from support import Instance, attacker

SIZES = (700, 2100, 3000)  # entries appended before each signed checkpoint


def append(inst: Instance, n: int) -> None:
    now = inst.clock.now()
    for start in range(0, n, 500):
        entries = [LogEntry(ts=now, event="test:bulk:append", outcome="success", actor_id=7, actor="clerk.ito",
                            file="payroll-mynumber", purpose="源泉徴収票作成事務", records=(f"E{start + i}",),
                            client="127.0.0.1", details={"i": start + i})
                   for i in range(min(500, n - start))]
        with inst.hogo.engine.begin() as conn:
            audit.append(conn, entries)


@pytest.fixture
def log(inst: Instance) -> Instance:
    done = 0
    for target in SIZES:
        append(inst, target - done)
        done = target
        audit_tree.checkpoint(inst.hogo, anchor=False)
    return inst


def head(inst: Instance) -> int:
    with inst.hogo.engine.connect() as conn:
        return int(conn.execute(text("SELECT size FROM audit_head")).scalar_one())


def half(inst: Instance) -> int:
    """Where the worker's half ends."""
    return int(head(inst) * audit_verify._WORKER_SHARE) >> 8 << 8


def entry_at(conn: Connection, seq: int) -> bytes:
    return bytes(conn.execute(text("SELECT entry FROM audit_events WHERE seq = :s"), {"s": seq}).scalar_one())


def run(inst: Instance, monkeypatch: pytest.MonkeyPatch, *, parallel: bool, batch: int = 8192, deep: bool = False,
        ) -> tuple[audit_verify.Report, bool]:
    """The check, split or in one pass; and whether a worker's half was used."""
    key = audit_tree.log_key(inst.hogo)
    starts: list[int] = []  # where the scans in this process began
    real = audit_verify._scan_here

    def scan_here(conn: Connection, start: int, *args: Any) -> Any:
        starts.append(start)
        return real(conn, start, *args)

    with monkeypatch.context() as m:
        m.setattr(audit_verify, "PARALLEL_MIN_ENTRIES", 0 if parallel else 10**12)
        m.setattr(audit_verify, "_BATCH", batch)
        m.setattr(audit_verify, "_scan_here", scan_here)
        report = audit_verify.verify_database(inst.hogo.engine, key_name=key.name, public_key=key.public, deep=deep)
    return report, 0 not in starts


def same(inst: Instance, monkeypatch: pytest.MonkeyPatch) -> tuple[audit_verify.Report, bool]:
    """The split check's report is the one-pass report (also with batches that split blocks), for the
    fast check and the deep one; and the deep one names the same first problem."""
    one, _ = run(inst, monkeypatch, parallel=False)
    small, _ = run(inst, monkeypatch, parallel=False, batch=300)
    split, used = run(inst, monkeypatch, parallel=True)
    assert split.as_dict() == one.as_dict() == small.as_dict()
    assert split.latest_checkpoint == one.latest_checkpoint
    deep, _ = run(inst, monkeypatch, parallel=False, deep=True)
    deep_split, deep_used = run(inst, monkeypatch, parallel=True, deep=True)
    assert deep_split.as_dict() == deep.as_dict() and deep_used == used
    assert deep.entries_checked == split.entries_checked
    if split.first is not None:  # (the deep check alone also compares the search columns)
        assert deep.first is not None and (deep.first.kind, deep.first.seq) == (split.first.kind, split.first.seq)
    return split, used


def sqlite(inst: Instance) -> bool:
    return inst.hogo.engine.dialect.name == "sqlite"


# ------------------------------------------------------------------------------------ intact


def test_an_intact_log_verifies_the_same_split_in_two_processes_SEC_132(log: Instance,
                                                                         monkeypatch: pytest.MonkeyPatch):
    report, used = same(log, monkeypatch)
    assert report.ok, report.problems
    assert report.entries_checked == head(log) and report.checkpoints_verified == len(SIZES)
    assert used == sqlite(log)  # the worker runs on SQLite files only


def test_every_checkpoint_size_is_checked_wherever_it_falls(inst: Instance, monkeypatch: pytest.MonkeyPatch):
    """Checkpoints inside the worker's half, on block boundaries, around its end and beyond it."""
    cuts = [256, 512, 513, 1024, 1279, 1280, 1281, 1700, 2600]
    for cut in cuts:
        append(inst, cut - head(inst))
        audit_tree.checkpoint(inst.hogo, anchor=False)
    append(inst, 3)
    assert half(inst) == 1280
    report, used = same(inst, monkeypatch)
    assert report.ok, report.problems
    assert report.checkpoints_verified == len(cuts)
    assert used == sqlite(inst)


# ------------------------------------------------------------------------------------ damage


def modify(inst: Instance, seq: int, *, leaf: bool) -> None:
    with attacker(inst) as conn:
        s, e = decode(entry_at(conn, seq))
        forged = encode(s, dataclasses.replace(e, outcome="failure"))
        values: dict[str, Any] = {"e": forged, "s": seq}
        sql = "UPDATE audit_events SET entry = :e"
        if leaf:
            sql += ", leaf_hash = :l"
            values["l"] = merkle.leaf_hash(forged)
        conn.execute(text(sql + " WHERE seq = :s"), values)


@pytest.mark.parametrize("where", ["first", "second"])
def test_a_modified_entry_is_named_in_either_half_MLIT_9_5_8(log: Instance, monkeypatch: pytest.MonkeyPatch,
                                                             where: str):
    seq = half(log) - 5 if where == "first" else half(log) + 300
    modify(log, seq, leaf=False)
    report, used = same(log, monkeypatch)
    assert report.first is not None and (report.first.kind, report.first.seq) == ("modified", seq)
    assert used == sqlite(log)


@pytest.mark.parametrize("where", ["first", "second"])
def test_a_rehashed_entry_is_found_by_the_tree_in_either_half(log: Instance, monkeypatch: pytest.MonkeyPatch,
                                                              where: str):
    seq = 300 if where == "first" else half(log) + 300
    modify(log, seq, leaf=True)
    report, _ = same(log, monkeypatch)
    assert report.first is not None and report.first.kind == "modified"
    assert report.first.seq == seq >> 8 << 8  # the 256-leaf block holding it differs from its stored node


@pytest.mark.parametrize("where", ["first", "second"])
def test_a_deleted_entry_is_missing_in_either_half(log: Instance, monkeypatch: pytest.MonkeyPatch, where: str):
    seq = 400 if where == "first" else half(log) + 10
    with attacker(log) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": seq})
    report, used = same(log, monkeypatch)
    assert report.first is not None and (report.first.kind, report.first.seq) == ("modified", seq >> 8 << 8)
    assert ("missing", seq) in [(p.kind, p.seq) for p in report.problems]  # and the block's node differs
    if where == "first":
        assert not used  # positions after the gap depend on it: the whole log is read again here


@pytest.mark.parametrize("where", ["first", "second"])
def test_swapped_entries_are_reordered_in_either_half(log: Instance, monkeypatch: pytest.MonkeyPatch, where: str):
    a = 100 if where == "first" else half(log) + 100
    with attacker(log) as conn:
        ea, eb = entry_at(conn, a), entry_at(conn, a + 1)
        for seq, e in ((a, eb), (a + 1, ea)):
            conn.execute(text("UPDATE audit_events SET entry = :e, leaf_hash = :l WHERE seq = :s"),
                         {"e": e, "l": merkle.leaf_hash(e), "s": seq})
    report, _ = same(log, monkeypatch)
    assert report.first is not None and report.first.kind in ("modified", "reordered")
    assert any(p.kind == "reordered" and p.seq == a for p in report.problems)


def test_an_entry_slipped_in_before_the_split_is_inserted(log: Instance, monkeypatch: pytest.MonkeyPatch):
    with attacker(log) as conn:
        if log.hogo.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DROP CONSTRAINT pk_audit_events CASCADE"))
        else:  # the primary key stays: move every later entry up one, then reuse the freed index
            conn.execute(text("UPDATE audit_events SET seq = -seq - 1 WHERE seq >= 200"))
            conn.execute(text("UPDATE audit_events SET seq = -seq WHERE seq < 0"))
        conn.execute(text("INSERT INTO audit_events (seq, ts, event, record_count, entry, leaf_hash) "
                          "SELECT 200, ts, event, record_count, entry, leaf_hash FROM audit_events WHERE seq = 10"))
    report, _ = same(log, monkeypatch)
    assert ("inserted", 200) in [(p.kind, p.seq) for p in report.problems]


def test_a_changed_search_column_is_named_by_the_deep_check_in_the_workers_half(log: Instance,
                                                                                monkeypatch: pytest.MonkeyPatch):
    with attacker(log) as conn:
        conn.execute(text("UPDATE audit_events SET actor_name = 'someone.else' WHERE seq = 333"))
    fast, _ = same(log, monkeypatch)
    assert fast.ok
    deep, used = run(log, monkeypatch, parallel=True, deep=True)
    assert deep.first is not None and (deep.first.kind, deep.first.seq) == ("modified", 333)
    assert "actor_name" in deep.first.message and used == sqlite(log)


def test_a_changed_tree_node_is_named_in_the_workers_half(log: Instance, monkeypatch: pytest.MonkeyPatch):
    with attacker(log) as conn:
        conn.execute(text("UPDATE audit_nodes SET hash = :h WHERE level = 8 AND idx = 2"), {"h": b"\x00" * 32})
    report, used = same(log, monkeypatch)
    assert report.first is not None and (report.first.kind, report.first.seq) == ("modified", 512)
    assert used == sqlite(log)


def test_a_truncated_log_is_truncated(log: Instance, monkeypatch: pytest.MonkeyPatch):
    end = head(log)
    with attacker(log) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": end - 40})
    report, _ = same(log, monkeypatch)
    assert report.first is not None and (report.first.kind, report.first.seq) == ("truncated", end - 40)


# ------------------------------------------------------------------------------------ retention


def test_payloads_removed_by_retention_are_accepted_and_others_are_not_ANON_12(log: Instance,
                                                                              monkeypatch: pytest.MonkeyPatch):
    log.clock.advance(days=8 * 366)
    assert audit_access.run_retention(log.hogo)["expired"] > 0
    report, used = same(log, monkeypatch)
    assert report.ok, report.problems
    assert used == sqlite(log)
    append(log, 5)  # fresh entries, not yet due
    seq = head(log) - 2
    with attacker(log) as conn:
        conn.execute(text("UPDATE audit_events SET entry = NULL, expired_at = :t WHERE seq = :s"),
                     {"t": dt.datetime.now(dt.UTC), "s": seq})
    report, _ = same(log, monkeypatch)
    assert report.first is not None and (report.first.kind, report.first.seq) == ("modified", seq)


# ------------------------------------------------------------------------------------ one snapshot


def started(monkeypatch: pytest.MonkeyPatch, before: Callable[[], None]) -> None:
    """Runs ``before`` after this process's snapshot is taken and before the worker takes its own."""
    real = audit_verify._Worker.start

    def start(conn: Connection, total: int, sizes: list[int], deep: bool) -> Any:
        before()
        return real(conn, total, sizes, deep)

    monkeypatch.setattr(audit_verify._Worker, "start", staticmethod(start))


def test_entries_appended_during_the_run_are_not_considered(log: Instance, monkeypatch: pytest.MonkeyPatch):
    if not sqlite(log):
        pytest.skip("the worker runs on SQLite only")
    size = head(log)
    started(monkeypatch, lambda: append(log, 600))
    report, used = run(log, monkeypatch, parallel=True)
    assert report.ok, report.problems
    assert used and report.entries_checked == report.size == size


def test_a_retention_run_during_the_run_is_not_mistaken_for_damage(log: Instance, monkeypatch: pytest.MonkeyPatch):
    """The worker, looking later, sees payloads removed whose retention record is beyond this
    snapshot's head: its half is checked again here, where the payloads are still present."""
    if not sqlite(log):
        pytest.skip("the worker runs on SQLite only")
    size = head(log)
    log.clock.advance(days=8 * 366)
    started(monkeypatch, lambda: audit_access.run_retention(log.hogo))
    report, used = run(log, monkeypatch, parallel=True)
    assert report.ok, report.problems
    assert not used and report.entries_checked == size and report.expired == 0
    after, used = run(log, monkeypatch, parallel=True)
    assert after.ok and used and after.expired > 0


def test_a_worker_that_fails_hangs_or_cannot_start_leaves_its_half_to_this_process(
        log: Instance, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    if not sqlite(log):
        pytest.skip("the worker runs on SQLite only")
    modify(log, 300, leaf=False)
    expected, _ = run(log, monkeypatch, parallel=False)
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    for executable in ("/bin/false", "/nonexistent/python", str(hang)):
        with monkeypatch.context() as m:
            m.setattr(sys, "executable", executable)
            m.setattr(audit_verify, "_WORKER_GRACE", 0.3)
            t0 = time.monotonic()
            report, used = run(log, monkeypatch, parallel=True)
        assert not used and report.as_dict() == expected.as_dict()
        assert time.monotonic() - t0 < 30  # the hung worker was not waited for


def test_a_scan_survives_the_trip_between_processes():
    scan = audit_verify._Scan(0, 600, [300, 513])
    rows = []
    for i in range(600):
        e = b"hogo-log/1 %d {}" % (i if i != 7 else 8)
        rows.append((i, e, merkle.leaf_hash(e), None))
    scan.feed(rows)
    back = audit_verify._Scan.from_json(scan.to_json())
    for name in ("start", "total", "position", "gap", "blocks", "pending", "tails", "problems", "expired"):
        assert getattr(back, name) == getattr(scan, name), name
    assert [p[1:3] for p in scan.problems] == [("reordered", 7)]
    assert sorted(scan.tails) == [300, 513] and len(scan.blocks) == 2
