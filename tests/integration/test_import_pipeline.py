"""The import writes its batches from one writer thread while the next batch is validated and
sealed (issue 3). What is stored, what is refused and what is recorded stay as before: every good
row, each batch with its access record (MN-3b, fail closed), every bad row with its row number,
field and reason, and ``atomic`` all or nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
import threading

import pytest
from sqlalchemy import func, select

from hogo.services import grants, guard
from hogo.store import bulk
from hogo.store.models import AuditEvent, Record
from support import CTX, Instance, Org, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
MN = "123456789018"
HEADER = "record_id,employee_no,name,my_number,department,dependents"


@pytest.fixture
def org(inst: Instance, monkeypatch: pytest.MonkeyPatch) -> Org:
    o = make_org(inst)
    grants.create_grant(inst.hogo, o.p("pm.takahashi"), FILE, user="clerk.ito", actions=["read", "create"],
                        purposes=[P1], ctx=CTX)
    # Batches of 4 rows: a 20-row CSV is five batches, so several are in flight one after another.
    monkeypatch.setattr(inst.hogo, "settings", dataclasses.replace(inst.hogo.settings, import_batch_rows=4))
    return o


def _csv(rows: list[str]) -> io.BytesIO:
    return io.BytesIO(("\n".join([HEADER, *rows]) + "\n").encode())


def _row(i: int, *, my_number: str = MN, dependents: str = "1") -> str:
    return f"R{i:03d},E{i:03d},山田 {i},{my_number},KYUYO,{dependents}"


def _import_events(org: Org) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == "data:record:import")
                               .order_by(AuditEvent.seq)))


def _stored(org: Org) -> int:
    with org.inst.hogo.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(Record)) or 0)


def test_many_batches_store_every_good_row_refuse_every_bad_one_and_record_each_batch_MN_3b(org: Org):
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    guard.import_records(hogo, ito, FILE, _csv([_row(9)]), purpose=P1, ctx=CTX)  # R009 exists already
    rows = [_row(i) for i in range(1, 21)]
    rows[2] = _row(3, my_number="123456789012")  # bad check digit
    rows[5] = _row(6, dependents="x")
    rows[16] = _row(17, my_number="")  # required
    rep = guard.import_records(hogo, ito, FILE, _csv(rows), purpose=P1, ctx=CTX)
    assert (rep.total, rep.imported, rep.committed) == (20, 16, True)
    # In row order, the database's refusal (row 9) among the validator's.
    assert [(r.row, r.field) for r in rep.rejected] == [(3, "my_number"), (6, "dependents"), (9, "record_id"),
                                                        (17, "my_number")]
    assert "already exists" in rep.rejected[2].reason
    assert _stored(org) == 1 + 16
    for i in (1, 2, 4, 10, 20):
        view = guard.read_record(hogo, ito, FILE, f"R{i:03d}", purpose=P1, ctx=CTX)
        assert view.values["name"] == f"山田 {i}" and view.values["employee_no"] == f"E{i:03d}"
    found = guard.find_records(hogo, ito, FILE, {"employee_no": "E020"}, purpose=P1, ctx=CTX)
    assert [v.record_id for v in found] == ["R020"]
    events = _import_events(org)[1:]
    # One success event per batch that wrote rows, with exactly the rows it wrote.
    assert [e.outcome for e in events] == ["success"] * 5
    assert sum(e.record_count for e in events) == 16


def test_atomic_over_many_batches_is_all_or_nothing(org: Org):
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    guard.import_records(hogo, ito, FILE, _csv([_row(18)]), purpose=P1, ctx=CTX)
    rep = guard.import_records(hogo, ito, FILE, _csv([_row(i) for i in range(1, 21)]), purpose=P1, atomic=True,
                               ctx=CTX)
    assert not rep.committed and rep.imported == 0 and [(r.row, r.field) for r in rep.rejected] == [(18, "record_id")]
    assert _stored(org) == 1
    assert _import_events(org)[-1].outcome == "failure"
    rep = guard.import_records(hogo, ito, FILE, _csv([_row(i) for i in range(21, 41)]), purpose=P1, atomic=True,
                               ctx=CTX)
    assert rep.committed and rep.imported == 20 and _stored(org) == 21


@pytest.mark.parametrize("atomic", [False, True])
def test_a_failing_write_stops_the_import_keeps_whole_batches_only_and_leaves_no_thread(
        org: Org, monkeypatch: pytest.MonkeyPatch, atomic: bool):
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    real = bulk.insert_many
    calls = {"records": 0}

    def failing(db, table, *args, **kwargs):
        if table.name == "records":
            calls["records"] += 1
            if calls["records"] == 3:
                raise RuntimeError("disk on fire")
        return real(db, table, *args, **kwargs)

    monkeypatch.setattr(guard, "insert_many", failing)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="disk on fire"):
        guard.import_records(hogo, ito, FILE, _csv([_row(i) for i in range(1, 21)]), purpose=P1, atomic=atomic,
                             ctx=CTX)
    assert not any(t.name.startswith("hogo-import-writer") for t in threading.enumerate() if t.name not in before)
    # Default: the two batches before the failure, each with its access record; atomic: nothing.
    assert _stored(org) == (0 if atomic else 8)
    assert len(_import_events(org)) == (0 if atomic else 2)
