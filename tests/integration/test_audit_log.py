"""The tamper-evident log on SQLite and PostgreSQL (SEC-107(2)(3), ANON-12, MN-3b, MLIT-9.5.4,
MLIT-9.5.8, SEC-132).

Every way of corrupting the database by hand — modifying, deleting, inserting, reordering entries,
truncating the tail, rolling the database back, forking history with the signing key — is done here
as someone who controls the database would (triggers off), and ``verify`` must name it. Data access
fails closed when its entry cannot be written or the log cannot be anchored off-host.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from hogo.bootstrap import build
from hogo.crypto import checkpoint as notes
from hogo.domain import merkle
from hogo.domain.auditlog import LogEntry, decode, encode
from hogo.domain.events import Event, Outcome
from hogo.domain.identifiers import my_number_check_digit
from hogo.errors import Forbidden, HogoError
from hogo.services import audit, audit_access, audit_tree, audit_verify, grants, guard
from hogo.services.delivery import FileSink
from hogo.store.models import AuditEvent
from support import CTX, Instance, Org, attacker, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"


def person(i: int) -> dict[str, str]:
    first11 = f"{12345678900 + i:011d}"
    return {"employee_no": f"E{i}", "name": f"氏名{i}", "department": "KYUYO",
            "my_number": first11 + str(my_number_check_digit(first11))}


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito", actions=["read", "create"],
                        purposes=[P1], ctx=CTX)
    clerk = o.p("clerk.ito")
    for i in range(5):
        guard.create_record(inst.hogo, clerk, FILE, person(i), purpose=P1, ctx=CTX, record_id=f"E{i}")
    for i in range(5):
        guard.read_record(inst.hogo, clerk, FILE, f"E{i}", purpose=P1, ctx=CTX)
    return o


def verify(inst: Instance, *, external: list[tuple[str, str]] | None = None) -> audit_verify.Report:
    """The full check; the fast one (hashes, indices, tree; not the search columns) must agree with it."""
    key = audit_tree.log_key(inst.hogo)
    full = audit_verify.verify_database(inst.hogo.engine, key_name=key.name, public_key=key.public,
                                        external=external or [])
    fast = audit_verify.verify_database(inst.hogo.engine, key_name=key.name, public_key=key.public,
                                        external=external or [], deep=False)
    assert fast.checkpoints_verified == full.checkpoints_verified and fast.entries_checked == full.entries_checked
    if fast.first is not None:
        assert full.first is not None and (fast.first.kind, fast.first.seq) == (full.first.kind, full.first.seq)
    column_only = {p.seq for p in full.problems if "indexed columns" in p.message}
    assert {(p.kind, p.seq) for p in full.problems if p.seq not in column_only} <= {
        (p.kind, p.seq) for p in fast.problems}
    return full


def size(inst: Instance) -> int:
    with inst.hogo.engine.connect() as conn:
        return int(conn.execute(text("SELECT size FROM audit_head")).scalar_one())


def row(conn: Connection, seq: int) -> tuple[bytes, bytes]:
    entry, leaf = conn.execute(text("SELECT entry, leaf_hash FROM audit_events WHERE seq = :s"), {"s": seq}).one()
    return bytes(entry), bytes(leaf)


def forge(entry: bytes, **changes: object) -> bytes:
    seq, e = decode(entry)
    return encode(seq, dataclasses.replace(e, **changes))


# ------------------------------------------------------------------------------------ intact


def test_every_access_is_an_entry_with_gapless_indices_and_the_log_verifies_SEC_107(org: Org):
    """MLIT-9.5.4 / MN-3b: who read which record, when, for what purpose — one entry each, indices
    0 … n-1 with no gaps, each entry hashing to its stored leaf, the whole signed and verified."""
    inst = org.inst
    with inst.hogo.unit_of_work(readonly=True) as db:
        rows = db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        reads = [r for r in rows if r.event == "data:record:read"]
    assert [r.seq for r in rows] == list(range(len(rows))) == list(range(size(inst)))
    assert len(reads) == 5 and reads[0].logged.records == ("E0",) and reads[0].purpose == P1
    assert reads[0].actor_name == "clerk.ito" and reads[0].logged.fields and reads[0].client_addr == "127.0.0.1"
    assert all(merkle.leaf_hash(r.entry) == r.leaf_hash for r in rows)
    cp = audit_tree.checkpoint(inst.hogo)
    assert cp.size == len(rows)
    key = audit_tree.log_key(inst.hogo)
    signed = notes.verify_note(cp.note, key.name, key.public, origin=key.name)
    assert signed.root == merkle.root_of_leaves([r.leaf_hash for r in rows])
    report = verify(inst)
    assert report.ok, report.problems
    assert report.entries_checked == len(rows) and report.checkpoints_verified == 1


def test_inclusion_and_consistency_proofs_verify_against_signed_checkpoints(org: Org):
    """RFC 9162 proofs from the database's stored nodes verify with the public key alone."""
    inst = org.inst
    auditor = org.p("auditor.watanabe")
    first = audit_tree.checkpoint(inst.hogo)
    guard.read_record(inst.hogo, org.p("clerk.ito"), FILE, "E1", purpose=P1, ctx=CTX)
    newest = size(inst) - 1  # no checkpoint covers it yet: proving it signs one
    uncovered = audit_access.prove(inst.hogo, auditor, newest, ctx=CTX)
    assert uncovered["size"] > newest
    p = audit_access.prove(inst.hogo, auditor, 3, ctx=CTX)
    key = audit_tree.log_key(inst.hogo)
    cp = notes.verify_note(p["checkpoint"], key.name, key.public)
    proof = [bytes.fromhex(h) for h in p["proof"]]
    assert merkle.verify_inclusion(3, cp.size, bytes.fromhex(p["leaf_hash"]), proof, cp.root)
    assert not merkle.verify_inclusion(4, cp.size, bytes.fromhex(p["leaf_hash"]), proof, cp.root)
    audit_tree.checkpoint(inst.hogo)
    c = audit_access.consistency(inst.hogo, auditor, first.size, None, ctx=CTX)
    new = notes.verify_note(c["checkpoint"], key.name, key.public)
    assert new.size > first.size
    assert merkle.verify_consistency(first.size, new.size, first.root, new.root,
                                     [bytes.fromhex(h) for h in c["proof"]])


def test_a_large_log_keeps_tiles_and_proofs_right(inst: Instance):
    """Past 256 and 65 536 entries the stored subtree roots (levels 8 and 16) take over; proofs and
    roots from them equal the ones computed from every leaf."""
    n = 256 * 256 + 300
    base = size(inst)
    now = inst.clock.now()
    with inst.hogo.engine.begin() as conn:
        for start in range(0, n, 5000):
            audit.append(conn, [LogEntry(ts=now, event="test:bulk:append", outcome="success", details={"i": i})
                                for i in range(start, min(n, start + 5000))])
    total = base + n
    with inst.hogo.engine.connect() as conn:
        leaves = [bytes(h) for h in conn.execute(text("SELECT leaf_hash FROM audit_events ORDER BY seq")).scalars()]
        tree = audit_tree.TreeReader(conn)
        assert tree.root(total) == merkle.root_of_leaves(leaves)
        level16 = conn.execute(text("SELECT hash FROM audit_nodes WHERE level = 16 AND idx = 0")).scalar_one()
        assert bytes(level16) == merkle.root_of_leaves(leaves[:65536])
        for i in (0, 255, 256, 65535, 65536, total - 1):
            proof = tree.inclusion_proof(i, total)
            assert merkle.verify_inclusion(i, total, leaves[i], proof, tree.root(total))
    audit_tree.checkpoint(inst.hogo)
    assert verify(inst).ok


def test_roots_and_proofs_of_every_prefix_match_the_leaves(inst: Instance):
    """SEC-107(3): the root of every earlier size, and inclusion proofs in it, come out of the stored
    blocks (each hashed once per reader, level by level) equal to the ones computed from the leaves —
    across partial blocks and block edges."""
    n = 256 * 3 + 77
    base = size(inst)
    now = inst.clock.now()
    with inst.hogo.engine.begin() as conn:
        audit.append(conn, [LogEntry(ts=now, event="test:bulk:append", outcome="success", details={"i": i})
                            for i in range(n)])
    total = base + n
    with inst.hogo.engine.connect() as conn:
        leaves = [bytes(h) for h in conn.execute(text("SELECT leaf_hash FROM audit_events ORDER BY seq")).scalars()]
        tree = audit_tree.TreeReader(conn)
        for m in sorted({1, 2, 3, 255, 256, 257, 511, 512, 513, 700, total - 1, total, *range(base + 1, total, 37)}):
            root = merkle.root_of_leaves(leaves[:m])
            assert tree.root(m) == root, m
            for i in {0, m // 2, m - 1}:
                assert merkle.verify_inclusion(i, m, leaves[i], tree.inclusion_proof(i, m), root), (i, m)


def test_a_tree_reader_refuses_a_range_the_log_does_not_hold(inst: Instance):
    """A proof over more entries than are stored is refused as unavailable, never made up."""
    total = size(inst)
    with inst.hogo.engine.connect() as conn, pytest.raises(audit_tree.LogUnavailable):
        audit_tree.TreeReader(conn).inclusion_proof(0, total + 300)


def test_appenders_in_many_threads_extend_one_gapless_line(inst: Instance):
    """Concurrent transactions (on PostgreSQL each its own connection) take the next indices in turn."""
    start = size(inst)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(25):
                with inst.hogo.unit_of_work() as db:
                    audit.record(db, now=inst.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS, ctx=CTX,
                                 details={"thread": t, "i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert size(inst) == start + 200
    audit_tree.checkpoint(inst.hogo)
    assert verify(inst).ok


def test_group_commit_appends_every_callers_entries_once_and_returns_after_commit_MN_3b(inst: Instance):
    """``write_together``: threads appending alone (entries only) and with work of their own share
    commits; each caller returns only once its entries are stored, none is lost or doubled."""
    hogo, start = inst.hogo, size(inst)
    errors: list[BaseException] = []
    seen_after_return: list[bool] = []

    def stored(marker: str) -> bool:
        with hogo.engine.connect() as conn:
            return conn.execute(select(AuditEvent.seq).where(AuditEvent.target == marker)).first() is not None

    def work(t: int) -> None:
        try:
            for i in range(30):
                marker = f"t{t}-{i}"
                e = audit.entry(now=inst.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS, ctx=CTX,
                                target=marker)
                if i % 5 == 0:  # some callers have work of their own: the group runs on a session
                    hogo.write_together(lambda db, e=e: audit.add(db, [e]))
                else:
                    hogo.write_together(entries=[e])
                seen_after_return.append(stored(marker))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(seen_after_return) and len(seen_after_return) == 360
    assert size(inst) == start + 360
    with hogo.engine.connect() as conn:
        targets = [r[0] for r in conn.execute(select(AuditEvent.target).where(AuditEvent.seq >= start))]
    assert sorted(targets) == sorted(f"t{t}-{i}" for t in range(12) for i in range(30))
    audit_tree.checkpoint(hogo)
    assert verify(inst).ok


def test_a_failing_group_fails_every_caller_in_it_and_nothing_is_stored(inst: Instance):
    """Fail closed: when the group's transaction fails, no caller of that group is told its entry was
    recorded, and none of the group's entries is stored; the next group works again."""
    hogo, start = inst.hogo, size(inst)
    release = threading.Event()
    results: dict[int, BaseException | None] = {}

    def blocker(_db: object) -> None:
        release.wait(5)  # holds the group open while others queue behind it

    def boom(_db: object) -> None:
        raise RuntimeError("disk full")

    def call(i: int) -> None:
        e = audit.entry(now=inst.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS, ctx=CTX, target=f"q{i}")
        try:
            if i == 0:
                hogo.write_together(boom, entries=[e])
            else:
                hogo.write_together(entries=[e])
            results[i] = None
        except BaseException as exc:
            results[i] = exc

    first = threading.Thread(target=hogo.write_together, args=(blocker,))
    first.start()
    waiting = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in waiting:
        t.start()
    while len(hogo._group_queue) < 6:
        threading.Event().wait(0.005)
    release.set()
    first.join()
    for t in waiting:
        t.join()
    # the six queued behind the blocker formed one group with the failing work: all failed together
    assert all(isinstance(r, RuntimeError) for r in results.values()), results
    assert size(inst) == start
    hogo.write_together(entries=[audit.entry(now=inst.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS,
                                             ctx=CTX, target="after")])
    assert size(inst) == start + 1


def test_async_callers_share_group_commits_with_threads_and_resume_only_after_commit_MN_3b(inst: Instance):
    """``write_together_async``: callers on an event loop (led by the log writer thread) and threads
    calling ``write_together`` share groups; every future completes only once its entry is stored,
    and no entry is lost or doubled."""
    import asyncio

    hogo, start = inst.hogo, size(inst)
    errors: list[BaseException] = []

    def stored(marker: str) -> bool:
        with hogo.engine.connect() as conn:
            return conn.execute(select(AuditEvent.seq).where(AuditEvent.target == marker)).first() is not None

    def entry(marker: str) -> Any:
        return audit.entry(now=inst.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS, ctx=CTX,
                           target=marker)

    async def caller(t: int) -> list[bool]:
        seen = []
        for i in range(25):
            marker = f"a{t}-{i}"
            if i % 7 == 0:
                await hogo.write_together_async(lambda db, e=entry(marker): audit.add(db, [e]))
            else:
                await hogo.write_together_async(entries=[entry(marker)])
            seen.append(stored(marker))
        return seen

    def thread(t: int) -> None:
        try:
            for i in range(25):
                hogo.write_together(entries=[entry(f"t{t}-{i}")])
        except BaseException as exc:
            errors.append(exc)

    async def main() -> list[list[bool]]:
        return list(await asyncio.gather(*(caller(t) for t in range(16))))

    threads = [threading.Thread(target=thread, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    seen = asyncio.run(main())
    for th in threads:
        th.join()
    assert not errors
    assert all(all(s) for s in seen) and sum(len(s) for s in seen) == 16 * 25
    assert size(inst) == start + 16 * 25 + 4 * 25
    with hogo.engine.connect() as conn:
        targets = [r[0] for r in conn.execute(select(AuditEvent.target).where(AuditEvent.seq >= start))]
    assert sorted(targets) == sorted([f"a{t}-{i}" for t in range(16) for i in range(25)]
                                     + [f"t{t}-{i}" for t in range(4) for i in range(25)])
    audit_tree.checkpoint(hogo)
    assert verify(inst).ok


def test_a_failing_group_fails_every_async_caller_in_it_and_nothing_is_stored(inst: Instance):
    """Fail closed for asynchronous callers too: each future of the failed group raises the group's
    error, none of its entries is stored, and the writer leads the next group normally."""
    import asyncio

    hogo, start = inst.hogo, size(inst)
    release = threading.Event()

    def blocker(_db: object) -> None:
        release.wait(5)

    def boom(_db: object) -> None:
        raise RuntimeError("disk full")

    def entry(i: int) -> Any:
        return audit.entry(now=inst.clock.now(), event=Event.LOG_READ, outcome=Outcome.SUCCESS, ctx=CTX,
                           target=f"q{i}")

    async def main() -> list[BaseException | None]:
        futures = [hogo.write_together_async(boom if i == 0 else None, entries=[entry(i)]) for i in range(6)]
        while len(hogo._group_queue) < 6:
            await asyncio.sleep(0.005)
        release.set()
        out = await asyncio.gather(*futures, return_exceptions=True)
        await hogo.write_together_async(entries=[entry(99)])
        return list(out)

    first = threading.Thread(target=hogo.write_together, args=(blocker,))
    first.start()
    while not hogo._group_leading:
        threading.Event().wait(0.005)
    results = asyncio.run(main())
    first.join()
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert size(inst) == start + 1


# --------------------------------------------------------------------------------- damage


def checkpointed(org: Org) -> audit_tree.StoredCheckpoint:
    return audit_tree.checkpoint(org.inst.hogo)


def test_a_modified_entry_is_named(org: Org):
    checkpointed(org)
    with attacker(org.inst) as conn:
        entry, _ = row(conn, 7)
        conn.execute(text("UPDATE audit_events SET entry = :e WHERE seq = 7"),
                     {"e": forge(entry, outcome="denied")})
    first = verify(org.inst).first
    assert first is not None and (first.kind, first.seq) == ("modified", 7)


def test_a_modified_entry_with_a_recomputed_leaf_breaks_the_signed_root(org: Org):
    cp = checkpointed(org)
    with attacker(org.inst) as conn:
        entry, _ = row(conn, 7)
        forged = forge(entry, actor="someone.else")
        conn.execute(text("UPDATE audit_events SET entry = :e, leaf_hash = :h, actor_name = 'someone.else' "
                          "WHERE seq = 7"), {"e": forged, "h": merkle.leaf_hash(forged)})
    report = verify(org.inst)
    assert not report.ok and {p.kind for p in report.problems} == {"modified"}
    assert any(f"up to {cp.size}" in p.message for p in report.problems)


def test_a_changed_search_column_is_named(org: Org):
    """The columns searches use must say what the entry says (a hidden denial is found)."""
    checkpointed(org)
    with attacker(org.inst) as conn:
        conn.execute(text("UPDATE audit_events SET outcome = 'failure', actor_name = 'x' WHERE seq = 9"))
    first = verify(org.inst).first
    assert first is not None and (first.kind, first.seq) == ("modified", 9)
    assert "outcome" in first.message and "actor_name" in first.message


def test_a_deleted_entry_is_named_missing(org: Org):
    checkpointed(org)
    with attacker(org.inst) as conn:
        conn.execute(text("DELETE FROM audit_record_refs WHERE seq = 11"))
        conn.execute(text("DELETE FROM audit_events WHERE seq = 11"))
    first = verify(org.inst).first
    assert first is not None and (first.kind, first.seq) == ("missing", 11)


def test_swapped_entries_are_named_reordered(org: Org):
    checkpointed(org)
    with attacker(org.inst) as conn:
        e5, h5 = row(conn, 5)
        e6, h6 = row(conn, 6)
        conn.execute(text("UPDATE audit_events SET entry = :e, leaf_hash = :h WHERE seq = 5"), {"e": e6, "h": h6})
        conn.execute(text("UPDATE audit_events SET entry = :e, leaf_hash = :h WHERE seq = 6"), {"e": e5, "h": h5})
    first = verify(org.inst).first
    assert first is not None and (first.kind, first.seq) == ("reordered", 5)


def test_an_inserted_entry_is_named(org: Org):
    checkpointed(org)
    n = size(org.inst)
    with attacker(org.inst) as conn:
        for seq in range(n - 1, 3, -1):  # make room at 4, as an attacker renumbering the tail would
            conn.execute(text("UPDATE audit_events SET seq = seq + 1 WHERE seq = :s"), {"s": seq})
        entry, _ = row(conn, 3)
        forged = encode(4, dataclasses.replace(decode(entry)[1], reason="inserted"))
        conn.execute(text(
            "INSERT INTO audit_events (seq, ts, event, outcome, reason, actor_id, actor_name, subject_user_id, "
            "target, file_code, purpose, record_count, client_addr, session_id, details, entry, leaf_hash) "
            "SELECT 4, ts, event, outcome, 'inserted', actor_id, actor_name, subject_user_id, target, file_code, "
            "purpose, record_count, client_addr, session_id, details, :e, :h FROM audit_events WHERE seq = 3"),
            {"e": forged, "h": merkle.leaf_hash(forged)})
        conn.execute(text("UPDATE audit_head SET size = size + 1"))
    first = verify(org.inst).first
    # Two entries now claim index 4: the second is where the line breaks.
    assert first is not None and first.kind == "inserted" and first.seq == 5


def test_a_truncated_tail_is_named(org: Org):
    cp = checkpointed(org)
    with attacker(org.inst) as conn:
        conn.execute(text("DELETE FROM audit_record_refs WHERE seq >= :s"), {"s": cp.size - 3})
        conn.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": cp.size - 3})
        conn.execute(text("UPDATE audit_head SET size = :s"), {"s": cp.size - 3})
    first = verify(org.inst).first
    assert first is not None and (first.kind, first.seq) == ("truncated", cp.size - 3)


def test_a_rollback_to_an_older_state_is_caught_by_the_off_host_anchor(org: Org, tmp_path: Path):
    """The database rolled back to an earlier, self-consistent state (as by restoring an old backup):
    only a checkpoint kept elsewhere can tell — the file sink, or the auditor's remembered one."""
    inst = org.inst
    sink = tmp_path / "anchors" / "checkpoints.log"
    sink.parent.mkdir()
    hogo = build(inst.hogo.settings.with_(audit_sinks=(f"file:{sink}",)), clock=inst.clock)
    try:
        old = audit_tree.checkpoint(hogo)
        guard.read_record(hogo, org.p("clerk.ito"), FILE, "E2", purpose=P1, ctx=CTX)
        new = audit_tree.checkpoint(hogo)
        assert new.anchored_at is not None and len(FileSink(sink).read_checkpoints()) == 2
        with attacker(inst) as conn:  # back to exactly the state of the old checkpoint
            conn.execute(text("DELETE FROM audit_record_refs WHERE seq >= :s"), {"s": old.size})
            conn.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": old.size})
            conn.execute(text("DELETE FROM audit_checkpoints WHERE size > :s"), {"s": old.size})
            conn.execute(text("UPDATE audit_head SET size = :s"), {"s": old.size})
        assert verify(inst).ok  # the database alone looks fine …
        report = audit_access.verify(hogo, None)  # … the anchor does not
        assert report.first is not None and report.first.kind == "rolled back"
        remembered = verify(inst, external=[("auditor", new.note)])
        assert remembered.first is not None and remembered.first.kind == "rolled back"
    finally:
        hogo.close()


def test_rewritten_history_signed_again_is_named_forked(org: Org):
    """Someone with the database and the signing key rewrites an entry, recomputes every hash and
    signs new checkpoints: the database is self-consistent, but an auditor's checkpoint disagrees."""
    inst = org.inst
    kept = checkpointed(org)
    with attacker(inst) as conn:
        entry, _ = row(conn, 8)
        forged = forge(entry, purpose="別の目的")
        conn.execute(text("UPDATE audit_events SET entry = :e, leaf_hash = :h, purpose = '別の目的' WHERE seq = 8"),
                     {"e": forged, "h": merkle.leaf_hash(forged)})
        conn.execute(text("DELETE FROM audit_nodes"))
        conn.execute(text("DELETE FROM audit_checkpoints"))
    with attacker(inst) as conn:  # rebuild the tiles as the attacker would
        leaves = [bytes(h) for h in conn.execute(text("SELECT leaf_hash FROM audit_events ORDER BY seq")).scalars()]
        audit.extend_tiles(conn, 0, len(leaves), leaves)
    audit_tree.checkpoint(inst.hogo)  # re-signed with the key
    assert verify(inst).ok
    report = verify(inst, external=[("the auditor's checkpoint", kept.note)])
    assert report.first is not None and report.first.kind == "forked"


def test_a_forged_checkpoint_is_refused(org: Org):
    cp = checkpointed(org)
    with attacker(org.inst) as conn:
        forged = cp.note.replace(f"\n{cp.size}\n", f"\n{cp.size - 1}\n")
        conn.execute(text("UPDATE audit_checkpoints SET note = :n WHERE size = :s"), {"n": forged, "s": cp.size})
    report = verify(org.inst)
    assert not report.ok and report.problems[0].kind == "modified"


# ---------------------------------------------------------------------------- fail closed


def test_no_entry_no_access_fail_closed_MN_3b(org: Org):
    """If the entry cannot be written, the access does not happen and nothing it changed stays."""
    inst = org.inst
    clerk_p = org.p("clerk.ito")
    with inst.hogo.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    with pytest.raises(Exception):
        org.p("clerk.ito")
    with inst.hogo.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_head (id, size) SELECT 1, COUNT(*) FROM audit_events"))
    with inst.hogo.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    before = size_or_rows(inst)
    with pytest.raises(Exception):
        guard.read_record(inst.hogo, clerk_p, FILE, "E1", purpose=P1, ctx=CTX)
    with pytest.raises(Exception):
        guard.create_record(inst.hogo, clerk_p, FILE, person(9), purpose=P1, ctx=CTX, record_id="E9")
    with inst.hogo.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM records WHERE record_id = 'E9'")).scalar_one() == 0
    assert size_or_rows(inst) == before


def size_or_rows(inst: Instance) -> int:
    with inst.hogo.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one())


def test_data_access_stops_when_the_log_cannot_be_anchored_SEC_107(org: Org, tmp_path: Path):
    """A failing off-host sink: past the bound, the guard refuses data access (503) rather than serve
    it with a log nobody outside can hold to account; once anchoring works again, access resumes."""
    inst = org.inst
    bad = tmp_path / "missing-dir" / "anchors.log"
    settings = inst.hogo.settings.with_(audit_sinks=(f"file:{bad}",), audit_max_unanchored_entries=5)
    hogo = build(settings, clock=inst.clock)
    try:
        audit_tree.checkpoint(hogo)  # the sink fails: not anchored
        clerk = org.p("clerk.ito")
        with pytest.raises(HogoError) as e:
            guard.read_record(hogo, clerk, FILE, "E1", purpose=P1, ctx=CTX)
        assert e.value.status == 503 and e.value.code == "log_unavailable"
        bad.parent.mkdir()
        hogo.extras.pop("anchor_state", None)
        audit_tree.checkpoint_if_due(hogo)
        hogo.extras.pop("anchor_state", None)
        assert guard.read_record(hogo, clerk, FILE, "E1", purpose=P1, ctx=CTX).record_id == "E1"
    finally:
        hogo.close()


# ---------------------------------------------------------------------------- who reads the log


def test_clerks_see_only_their_own_history_and_every_read_of_the_log_is_logged(org: Org):
    """Log data is personal data: auditors search all of it, a clerk only their own entries."""
    inst = org.inst
    auditor, clerk = org.p("auditor.watanabe"), org.p("clerk.ito")
    mine = audit_access.search(inst.hogo, clerk, audit_access.SearchFilter(limit=1000), ctx=CTX)
    assert mine and all(clerk.user_id in (r.actor_id, r.subject_user_id) for r in mine)
    by_record = audit_access.search(inst.hogo, auditor, audit_access.SearchFilter(file=FILE, record="E3"), ctx=CTX)
    assert {r.event for r in by_record} == {"data:record:create", "data:record:read"}
    with pytest.raises(Exception):
        audit_access.entry(inst.hogo, clerk, by_record[0].seq - 100 if by_record[0].seq > 100 else 0, ctx=CTX)
    reads = audit_access.search(inst.hogo, auditor, audit_access.SearchFilter(event="audit:log:read"), ctx=CTX)
    assert {r.actor_name for r in reads} >= {"clerk.ito", "auditor.watanabe"}
    with pytest.raises(Forbidden):
        audit_access.export_bundle(inst.hogo, clerk, Path("/nonexistent"), since=None, until=None, ctx=CTX)


# ---------------------------------------------------------------------------- bundles, retention


def test_an_exported_bundle_verifies_offline_and_any_change_to_it_is_found_ANON_12(org: Org, tmp_path: Path):
    inst = org.inst
    auditor = org.p("auditor.watanabe")
    kept = audit_tree.checkpoint(inst.hogo)
    out = tmp_path / "bundle"
    info = audit_access.export_bundle(inst.hogo, auditor, out, since=None, until=None, ctx=CTX)
    assert info["entries"] > 20
    key_text = audit_access.public_key(inst.hogo)
    ok = audit_verify.verify_bundle(out, public_key_text=key_text, remembered=kept.note)
    assert ok.ok, ok.problems
    # Any byte changed in an entry, even with the manifest re-digested, is found.
    entries = (out / "entries.log").read_bytes()
    (out / "entries.log").write_bytes(entries.replace(b'"outcome":"success"', b'"outcome":"failure"', 1))
    assert audit_verify.verify_bundle(out, public_key_text=key_text).problems[0].kind == "modified"
    # A remembered checkpoint larger than the bundle's log: rolled back.
    (out / "entries.log").write_bytes(entries)
    guard.read_record(inst.hogo, org.p("clerk.ito"), FILE, "E1", purpose=P1, ctx=CTX)
    later = audit_tree.checkpoint(inst.hogo, anchor=False)
    report = audit_verify.verify_bundle(out, public_key_text=key_text, remembered=later.note)
    assert report.first is not None and report.first.kind == "rolled back"


def test_retention_removes_payloads_but_the_tree_still_verifies_ANON_12(org: Org):
    inst = org.inst
    audit_tree.checkpoint(inst.hogo)
    n = size(inst)
    inst.clock.advance(days=8 * 366)
    result = audit_access.run_retention(inst.hogo)
    assert result["expired"] == n
    with inst.hogo.unit_of_work(readonly=True) as db:
        first = db.get(AuditEvent, 0)
        assert first is not None and first.entry is None and first.actor_name is None and first.leaf_hash
    audit_tree.checkpoint(inst.hogo)
    report = verify(inst)
    assert report.ok, report.problems
    assert report.expired == n
    # A payload removed by hand, outside a recorded retention run, is not accepted.
    guard.read_record(inst.hogo, org.p("clerk.ito"), FILE, "E1", purpose=P1, ctx=CTX)
    last = size(inst) - 1
    with attacker(inst) as conn:
        conn.execute(text("UPDATE audit_events SET entry = NULL, expired_at = :t WHERE seq = :s"),
                     {"t": dt.datetime.now(dt.UTC), "s": last})
    report = verify(inst)
    assert report.first is not None and (report.first.kind, report.first.seq) == ("modified", last)


def test_the_server_signs_checkpoints_every_n_entries_or_t_seconds(org: Org):
    """The background jobs sign a checkpoint when none exists, then only when the log has grown by
    ``audit_checkpoint_entries`` or ``audit_checkpoint_seconds`` have passed (SEC-107(3))."""
    from hogo.services.background import BackgroundJobs

    inst = org.inst
    hogo = build(inst.hogo.settings.with_(audit_checkpoint_entries=50, audit_checkpoint_seconds=60), clock=inst.clock)
    try:
        jobs = BackgroundJobs(hogo)
        jobs.run_once(force=True)
        with hogo.engine.connect() as conn:
            first = audit_tree.latest_checkpoint(conn)
        assert first is not None and first.size >= size(inst) - 2  # the analysis run may add its own entries
        guard.read_record(hogo, org.p("clerk.ito"), FILE, "E1", purpose=P1, ctx=CTX)
        assert audit_tree.checkpoint_if_due(hogo) is None  # a few entries, a few seconds: not yet
        inst.clock.advance(seconds=61)
        later = audit_tree.checkpoint_if_due(hogo)
        assert later is not None and later.size > first.size
        now = size(inst)
        with inst.hogo.engine.begin() as conn:
            audit.append(conn, [LogEntry(ts=inst.clock.now(), event="test:bulk:append", outcome="success")] * 50)
        grown = audit_tree.checkpoint_if_due(hogo)
        assert grown is not None and grown.size >= now + 50
    finally:
        hogo.close()
