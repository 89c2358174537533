"""A large import is validated and sealed by a worker process (services/import_sealer.py, issue 3).
Whatever path a CSV takes, the outcome is the same: every bad row reported with its row number, field
and reason; the good rows stored, readable and found by their blind index (ANON-5, MN-6a, SEC-45);
each batch recorded with the versions it wrote (MN-3b, SEC-133(2)); ``atomic`` all or nothing; buckets
never over their size (SEC-50). A worker that dies stops the import with whole batches only, and the
worker never hears of a key except over its pipe, nor says a value in its failure report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hogo.crypto.envelope import FileKeys
from hogo.domain.files import parse_spec
from hogo.services import files, grants, guard, import_sealer, integrity
from hogo.services.files import file_by_code, file_keys
from hogo.store.models import AuditEvent, Record
from support import CTX, Instance, Org, make_org, my_number, payroll_spec

FILE = "payroll-mynumber"
COPY = "payroll-copy"
P1 = "源泉徴収票作成事務"
HEADER = "record_id,employee_no,name,my_number,department,dependents"


def _mn(i: int) -> str:
    return my_number(4_000_000_000 + i)


@pytest.fixture
def org(inst: Instance, monkeypatch: pytest.MonkeyPatch) -> Org:
    inst.hogo.extras["bucket_records"] = 3  # buckets roll inside a batch
    o = make_org(inst)
    spec = payroll_spec()
    spec["code"] = COPY
    files.create_file(inst.hogo, o.p("pm.takahashi"), spec, ctx=CTX)
    for code in (FILE, COPY):
        grants.create_grant(inst.hogo, o.p("pm.takahashi"), code, user="clerk.ito", actions=["read", "create"],
                            purposes=[P1], ctx=CTX)
    monkeypatch.setattr(inst.hogo, "settings", dataclasses.replace(inst.hogo.settings, import_batch_rows=4))
    return o


def _parallel(org: Org, monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    monkeypatch.setattr(org.inst.hogo, "settings", dataclasses.replace(
        org.inst.hogo.settings, import_parallel_min_bytes=0 if on else 1 << 40))


def _import(org: Org, monkeypatch: pytest.MonkeyPatch, code: str, body: bytes, *, parallel: bool,
            **kw: Any) -> guard.ImportReport:
    _parallel(org, monkeypatch, parallel)
    return guard.import_records(org.inst.hogo, org.p("clerk.ito"), code, io.BytesIO(body), purpose=P1, ctx=CTX,
                                **kw)


def _messy_csv() -> str:
    rows = [f"R{i:03d},E{i:03d},山田 {i},{_mn(i)},KYUYO,{i % 3}" for i in range(1, 31)]
    rows[2] = f"R003,E003,山田 3,{_mn(3)[:-1]}{(int(_mn(3)[-1]) + 1) % 10},KYUYO,1"  # bad check digit
    rows[4] = "R005,E005,山田 5,１２３４５６７８９０１８,KYUYO,x"  # full-width digits (fine) and a bad number
    rows[6] = f"R007,E007,,{_mn(7)},KYUYO,1"  # a required name missing
    rows[8] = f"R002,E009,山田 9,{_mn(9)},KYUYO,1"  # R002 twice
    rows[10] = f"bad id!,E011,山田 11,{_mn(11)},KYUYO,1"
    rows[12] = "R013,E013,山田 13"  # too few columns
    rows[14] = f"R015,E015,山田 15,{_mn(15)},JINJI,1"  # another department
    rows[16] = f",E017,ＡＢＣ　太郎,{_mn(17)},KYUYO,2"  # no ID given: a new one; NFKC
    rows[18] = f"R900,E019,山田 19,{_mn(19)},KYUYO,1"  # exists already in the file
    rows[20] = f"R003,E021,山田 21,{_mn(21)},KYUYO,1"  # R003 again, but the first R003 was refused
    return "\n".join([HEADER, *rows]) + "\n"


def _stored(org: Org, code: str) -> dict[str, tuple[int, dict[str, str]]]:
    """employee_no → (key version, values) of every record of the file, decrypted."""
    hogo = org.inst.hogo
    with hogo.unit_of_work(readonly=True) as db:
        row = file_by_code(db, code)
        keys = file_keys(hogo, db, row.id)
        recs = db.execute(select(Record.record_id, Record.key_version, Record.blob)
                          .where(Record.file_id == row.id)).all()
        out = {}
        for rid, version, blob in recs:
            values = keys.open_record(rid, blob)
            out[values["employee_no"]] = (version, {"record_id": rid if rid.startswith("R") else "new", **values})
        return out


def _events(org: Org, code: str) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == "data:record:import",
                                                        AuditEvent.target == f"file:{code}")
                               .order_by(AuditEvent.seq)))


def _bucket_sizes(org: Org, code: str) -> list[int]:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        fid = file_by_code(db, code).id
        return [n for _, n in db.execute(select(Record.key_version, func.count()).where(Record.file_id == fid)
                                         .group_by(Record.key_version).order_by(Record.key_version)).all()]


@pytest.mark.parametrize(("encoding", "workers"), [("utf-8", 1), ("shift_jis", 1), ("utf-8", 2)])
@pytest.mark.parametrize("atomic", [False, True])
def test_the_worker_path_gives_what_the_serial_path_gives_ANON_5_MN_6a_SEC_45(
        org: Org, monkeypatch: pytest.MonkeyPatch, atomic: bool, encoding: str, workers: int):
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    monkeypatch.setattr(hogo, "settings", dataclasses.replace(hogo.settings, import_workers=workers))
    body = _messy_csv().encode("utf-8" if encoding == "utf-8" else "cp932")
    existing = f"R900,E900,既存,{_mn(900)},KYUYO,0\n".encode()
    reports = {}
    for code, parallel in ((FILE, False), (COPY, True)):
        _import(org, monkeypatch, code, HEADER.encode() + b"\n" + existing, parallel=False)
        reports[code] = _import(org, monkeypatch, code, body, parallel=parallel, atomic=atomic, encoding=encoding)
    serial, worker = reports[FILE], reports[COPY]
    assert (worker.total, worker.imported, worker.committed, worker.rejected) == (
        serial.total, serial.imported, serial.committed, serial.rejected)
    rows_rejected = {r.row for r in serial.rejected}
    assert {3, 5, 7, 9, 11, 13, 19} <= rows_rejected and 21 not in rows_rejected
    assert all(r.field and r.reason for r in serial.rejected)
    assert not any(_mn(i) in r.reason for r in worker.rejected for i in range(40))  # MN-6a
    assert serial.total == 30 and serial.committed is not atomic
    # The same records, values and all, as the serial path stored them.
    a, b = _stored(org, FILE), _stored(org, COPY)
    assert {k: v[1] for k, v in a.items()} == {k: v[1] for k, v in b.items()}
    assert len(b) == 1 + (0 if atomic else serial.imported)
    if not atomic:
        assert b["E017"][1]["name"] == "ABC 太郎"
        # Found by their blind index; no bucket over its size; each batch recorded with its records.
        found = guard.find_records(hogo, ito, COPY, {"employee_no": "E021"}, purpose=P1, ctx=CTX)
        assert [v.record_id for v in found] == ["R003"]
        assert max(_bucket_sizes(org, COPY)) <= 3
        events = _events(org, COPY)[1:]
        assert all(e.outcome == "success" for e in events)
        assert sum(e.record_count for e in events) == worker.imported
        # The versions the worker hashed are the ones the log vouches for (SEC-133(2)).
        for rid in ("R001", "R030"):
            rep = integrity.verify_record(hogo, ito, COPY, rid, purpose=P1, ctx=CTX)
            assert rep.status == "ok", rep.message
    else:
        assert [e.outcome for e in _events(org, COPY)] == ["success", "failure"]


def test_buckets_fill_to_their_size_on_the_worker_path_SEC_50(org: Org, monkeypatch: pytest.MonkeyPatch):
    rows = [f"E{i:03d},社員 {i},{_mn(i)},KYUYO" for i in range(1, 15)]
    body = ("employee_no,name,my_number,department\n" + "\n".join(rows) + "\n").encode()
    _import(org, monkeypatch, FILE, body, parallel=False)
    rep = _import(org, monkeypatch, COPY, body, parallel=True)
    assert rep.imported == 14
    assert _bucket_sizes(org, COPY) == _bucket_sizes(org, FILE) == [3, 3, 3, 3, 2]


@pytest.mark.parametrize("atomic", [False, True])
def test_a_worker_that_dies_stops_the_import_with_whole_batches_only(
        org: Org, monkeypatch: pytest.MonkeyPatch, atomic: bool):
    """Killed when its third answer is awaited: the default mode keeps the whole batches written before,
    each with its access record; ``atomic`` keeps nothing. The worker is gone either way (MN-3b)."""
    real = import_sealer.Sealer.result
    seen: dict[str, Any] = {"n": 0}

    def dying(self: import_sealer.Sealer) -> Any:
        seen["n"] += 1
        seen["pid"] = self.pid
        if seen["n"] == 3:
            os.kill(self.pid, signal.SIGKILL)
        return real(self)

    monkeypatch.setattr(import_sealer.Sealer, "result", dying)
    body = ("\n".join([HEADER, *[f"R{i:03d},E{i:03d},山田 {i},{_mn(i)},KYUYO,1" for i in range(1, 21)]])
            + "\n").encode()
    with pytest.raises(import_sealer.SealerFailed, match="sealing process stopped"):
        _import(org, monkeypatch, FILE, body, parallel=True, atomic=atomic)
    stored = _stored(org, FILE)
    events = _events(org, FILE)
    if atomic:
        assert stored == {} and events == []
    else:
        # The batches written before the worker died (its answers already in the pipe count too).
        assert 8 <= len(stored) < 20 and len(stored) % 4 == 0
        assert sorted(stored) == [f"E{i:03d}" for i in range(1, len(stored) + 1)]
        assert [e.record_count for e in events] == [4] * (len(stored) // 4)
    assert not Path(f"/proc/{seen['pid']}").exists()  # reaped, not left behind


def _sealer_for(tmp_path: Path) -> tuple[import_sealer.Sealer, FileKeys]:
    spec = parse_spec(payroll_spec())
    keys = FileKeys(7, {1: os.urandom(32)}, {1: os.urandom(32)})
    return import_sealer.Sealer(spec, list(spec.field_names), keys, "payroll"), keys


def test_the_worker_gets_keys_only_over_its_pipe_and_reports_failures_without_values_MN_6a(tmp_path: Path):
    sealer, keys = _sealer_for(tmp_path)
    try:
        proc = Path(f"/proc/{sealer.pid}")
        deadline = time.monotonic() + 10
        while b"-m" not in (argv := (proc / "cmdline").read_bytes().split(b"\0")) and time.monotonic() < deadline:
            time.sleep(0.01)  # between fork and exec
        assert argv[1:3] == [b"-m", b"hogo.services.import_sealer"] and argv[3:] == [b""]
        _, deks, index_keys, _ = keys.raw()
        secrets_ = [k for k in (*deks.values(), *index_keys.values())]
        environ = (proc / "environ").read_bytes()
        assert not any(k in environ or k.hex().encode() in environ for k in secrets_)
        # Good rows sealed as this process would seal them (they open with the same keys).
        spec = parse_spec(payroll_spec())
        cells = ["E001", "山田 太郎", "ヤマダ タロウ", _mn(1), "1980-01-02", "100-0001", "東京都", "03-1234-5678",
                 "KYUYO", "2"][:len(spec.field_names)]
        sealer.submit([("r1", cells)], None, dt.datetime.now(dt.UTC), keys)
        problems, good, index = sealer.result()
        assert problems == [] and len(good) == 1 and index
        assert keys.open_record("r1", good[0][2])["my_number"] == _mn(1)
        # A row the worker cannot handle (too few cells): it stops and says only what went wrong.
        sealer.submit([("r2", [_mn(2)])], None, dt.datetime.now(dt.UTC), keys)
        with pytest.raises(import_sealer.SealerFailed) as err:
            sealer.result()
        assert _mn(2) not in str(err.value) and "IndexError" in str(err.value)
    finally:
        sealer.close()
    assert not Path(f"/proc/{sealer.pid}").exists()
