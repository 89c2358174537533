"""Marks and temporary working copies on real SQLite and PostgreSQL: SEC-5 / SEC-46(1) (marks shown with
every file and record), SEC-46(3) (only the decider, successor or superior revises marks; every change
versioned and logged), SEC-46(2) (a working copy carries the strictest marks of its sources), SEC-47 /
ANON-7 (a no-copy file refuses a working copy), ANON-17 (minimum scope, holder-only reads, disposal at
expiry by the background job, the manager confirms erasure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from hogo.domain.events import Event
from hogo.domain.handling import Marks, strictest
from hogo.errors import Conflict, Forbidden, ValidationFailed
from hogo.services import files, grants, guard, marks, workcopies
from hogo.services.background import BackgroundJobs
from hogo.store.models import AuditEvent, FileVersion
from hogo.store.models_marks import MarksChange, WorkingCopy, WorkingCopyData
from support import CTX, Instance, Org, active_user, make_org, payroll_spec

PAYROLL = "payroll-mynumber"
STAFF = "staff-list"
P1 = "源泉徴収票作成事務"
P_STAFF = "職員名簿の管理"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": "123456789018", "department": "KYUYO"}


def staff_spec() -> dict[str, Any]:
    spec = payroll_spec()
    spec.update(code=STAFF, name="職員名簿", kind="personal_information", purposes=[P_STAFF],
                classification={"confidentiality": 2, "integrity": 1, "availability": 1}, restrictions=[])
    for key in ("administrative_task", "legal_basis"):
        spec.pop(key)
    spec["fields"] = [f for f in spec["fields"] if f["name"] != "my_number"]
    return spec


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    o.secrets["gpm.sato"] = active_user(inst, o.admin, "gpm.sato", ["general_protection_manager"])
    o.secrets["gpm.kato"] = active_user(inst, o.admin, "gpm.kato", ["general_protection_manager"])
    o.secrets["pm.suzuki"] = active_user(inst, o.admin, "pm.suzuki", ["protection_manager"], "JINJI")
    return o


def staff_file(org: Org, creator: str = "pm.takahashi") -> None:
    hogo = org.inst.hogo
    files.create_file(hogo, org.p(creator), staff_spec(), ctx=CTX)
    grants.create_grant(hogo, org.p("pm.takahashi"), STAFF, user="clerk.ito", actions=["read", "create"],
                        purposes=[P_STAFF], ctx=CTX)
    ito = org.p("clerk.ito")
    for i, (name, dept) in enumerate((("伊藤 翔", "KYUYO"), ("佐藤 花子", "KYUYO"), ("鈴木 一郎", "JINJI"))):
        guard.create_record(hogo, ito, STAFF, {"employee_no": f"E{i:04}", "name": name, "department": dept,
                                               "birth_date": "1990-04-01"}, purpose=P_STAFF, ctx=CTX,
                            record_id=f"S{i}")


def log(org: Org, event: Event) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event.value).order_by(AuditEvent.seq)))


# ------------------------------------------------------------------------------------ marks shown


def test_every_file_and_record_view_carries_its_marks_SEC_5_SEC_46(org: Org):
    """SEC-5 table 1, SEC-46(1): the file's ledger entry and every record read or found show the marks
    (classification and restrictions) as ``Marks.to_dict()``, with the Japanese label."""
    hogo = org.inst.hogo
    expected = Marks.of(files.load_spec(hogo, _row(org, PAYROLL)))
    f = files.show_file(hogo, org.p("pm.takahashi"), PAYROLL)
    assert {k: f.marks[k] for k in expected.to_dict()} == expected.to_dict()
    assert f.marks["label_ja"] == expected.label_ja and "機密性3情報" in f.marks["label_ja"]
    assert f.marks["restrictions"] == ["encryption_required", "no_copy", "no_take_out"]
    assert all(v.marks == f.marks for v in files.list_files(hogo, org.p("pm.takahashi")) if v.code == PAYROLL)
    grants.create_grant(hogo, org.p("pm.takahashi"), PAYROLL, user="clerk.ito", actions=["read", "create"],
                        purposes=[P1], ctx=CTX)
    r = guard.create_record(hogo, org.p("clerk.ito"), PAYROLL, ITO, purpose=P1, ctx=CTX)
    read = guard.read_record(hogo, org.p("clerk.ito"), PAYROLL, r.record_id, purpose=P1, ctx=CTX)
    assert read.marks == f.marks
    (found,) = guard.find_records(hogo, org.p("clerk.ito"), PAYROLL, {"employee_no": "E0001"}, purpose=P1, ctx=CTX)
    assert found.marks == f.marks


def _row(org: Org, code: str) -> Any:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        row = files.file_by_code(db, code)
        db.expunge(row)
        return row


# ------------------------------------------------------------------------------------ changing marks


def test_only_the_decider_successor_or_superior_change_marks_each_change_versioned_and_logged_SEC_46(org: Org):
    """SEC-46(3): the file was defined by gpm.sato (its decider); pm.takahashi is the protection manager of its
    department (successor); gpm.kato is a general protection manager (superior). A clerk, even with a grant,
    and the protection manager of another department are refused, and each refusal is logged. Every change
    is a new definition version with a history row (before, after, who, basis, why, when) and a log entry."""
    hogo = org.inst.hogo
    staff_file(org, creator="gpm.sato")
    for who in ("clerk.ito", "pm.suzuki", "auditor.watanabe"):
        with pytest.raises(Forbidden) as exc:
            marks.change_marks(hogo, org.p(who), STAFF, confidentiality=3, reason="見直し", ctx=CTX)
        assert exc.value.requirement == "SEC-46"
    denied = [e for e in log(org, Event.MARKS_CHANGED) if e.outcome == "denied"]
    assert [e.actor_name for e in denied] == ["clerk.ito", "pm.suzuki", "auditor.watanabe"]
    assert files.show_file(hogo, org.p("pm.takahashi"), STAFF).version == 1  # nothing changed

    v = marks.change_marks(hogo, org.p("pm.takahashi"), STAFF, restrict=["no_take_out"], reason="持出し事案を受けて",
                           ctx=CTX)
    assert v.version == 2 and "no_take_out" in v.marks["restrictions"]
    v = marks.change_marks(hogo, org.p("gpm.kato"), STAFF, confidentiality=3, reason="要配慮情報を含むため", ctx=CTX)
    assert v.version == 3 and v.marks["classification"]["confidentiality"] == 3
    assert "encryption_required" in v.marks["restrictions"]  # confidentiality 3 is always encrypted
    v = marks.change_marks(hogo, org.p("gpm.sato"), STAFF, confidentiality=2, unrestrict=["no-take-out",
                           "encryption_required"], reason="誤って引き上げたため戻す", ctx=CTX)
    assert v.version == 4 and v.marks["classification"]["confidentiality"] == 2 and v.marks["restrictions"] == []

    hist = marks.history(hogo, org.p("pm.takahashi"), STAFF)
    assert [(h.changed_by, h.basis, h.version) for h in hist] == [
        ("pm.takahashi", "successor", 2), ("gpm.kato", "superior", 3), ("gpm.sato", "decider", 4)]
    assert hist[1].before["label"] == "C2-I1-A1" and hist[1].after["label"] == "C3-I1-A1"
    assert hist[1].reason == "要配慮情報を含むため"
    assert hist[0].changed_at < hist[1].changed_at < hist[2].changed_at <= org.inst.clock.now()
    # The spec and the marks never disagree: each version's spec has the marks it was changed to.
    with hogo.unit_of_work() as db:
        specs = {fv.version: fv.spec for fv in db.scalars(select(FileVersion).join(
            MarksChange, MarksChange.version == FileVersion.version).where(MarksChange.file_code == STAFF))}
    assert specs[3]["classification"]["confidentiality"] == 3 and "no_take_out" in specs[2]["restrictions"]
    done = [e for e in log(org, Event.MARKS_CHANGED) if e.outcome == "success"]
    assert [(e.actor_name, e.logged.details["basis"], e.logged.details["before"], e.logged.details["after"])
            for e in done][1] == ("gpm.kato", "superior", "C2-I1-A1 [持出禁止 / no take-out]",
                                 "C3-I1-A1 [持出禁止 / no take-out, 暗号化必須 / encryption required]")


def test_a_creator_who_left_the_deciding_role_has_a_successor_SEC_46(org: Org):
    """SEC-46(3): the creator decides only while in a role that decides marks; a reason is required."""
    hogo = org.inst.hogo
    staff_file(org, creator="pm.takahashi")
    with pytest.raises(ValidationFailed):
        marks.change_marks(hogo, org.p("pm.takahashi"), STAFF, integrity=2, reason=" ", ctx=CTX)
    with hogo.unit_of_work(readonly=True) as db:
        row = files.file_by_code(db, STAFF)
        clerk = org.p("clerk.ito")
        # The same person without a deciding role: no basis.
        assert marks.revision_basis(db, clerk, row) is None
        assert marks.revision_basis(db, org.p("pm.takahashi"), row) == "decider"


def test_my_number_file_cannot_drop_below_confidentiality_3_SEC_46(org: Org):
    """The spec rule holds through the marks path: a My Number file stays confidentiality 3."""
    with pytest.raises(ValidationFailed) as exc:
        marks.change_marks(org.inst.hogo, org.p("pm.takahashi"), PAYROLL, confidentiality=2, reason="誤り", ctx=CTX)
    assert "confidentiality" in exc.value.message
    assert files.show_file(org.inst.hogo, org.p("pm.takahashi"), PAYROLL).version == 1


def test_raising_integrity_through_marks_logs_the_records_versions_SEC_46_SEC_133(org: Org):
    """Integrity 2 has a side effect (the records' stored versions go into the log); the marks path keeps it."""
    staff_file(org)
    marks.change_marks(org.inst.hogo, org.p("pm.takahashi"), STAFF, integrity=2, reason="正確性が重要", ctx=CTX)
    (committed,) = log(org, Event.RECORDS_COMMITTED)
    assert committed.file_code == STAFF and sorted(committed.logged.records) == ["S0", "S1", "S2"]


# ------------------------------------------------------------------------------------ working copies


def _expires(org: Org, **kw: float) -> dt.datetime:
    return org.inst.clock.now() + dt.timedelta(**kw)


def test_a_no_copy_file_refuses_a_working_copy_and_the_refusal_is_logged_SEC_47_ANON_7(org: Org):
    """SEC-46(2), SEC-47, ANON-7: the payroll file is marked no-copy; a working copy of it is refused for
    everyone, even with a read grant, and the refusal is logged. Nothing is read from the file."""
    hogo = org.inst.hogo
    grants.create_grant(hogo, org.p("pm.takahashi"), PAYROLL, user="clerk.ito", actions=["read"], purposes=[P1],
                        ctx=CTX)
    with pytest.raises(Forbidden) as exc:
        workcopies.create_copy(hogo, org.p("clerk.ito"), PAYROLL, fields=["name"], purpose=P1,
                               expires_at=_expires(org, hours=4), ctx=CTX)
    assert exc.value.code == "working_copy_refused" and "no-copy" in exc.value.message
    (refused,) = log(org, Event.WORKCOPY_CREATED)
    assert refused.outcome == "denied" and refused.actor_name == "clerk.ito" and refused.reason == "no_copy"
    assert log(org, Event.RECORDS_COPIED) == []
    with hogo.unit_of_work() as db:
        assert db.scalars(select(WorkingCopy)).all() == []


def test_working_copy_minimum_scope_strictest_marks_sealed_and_holder_only_ANON_17(org: Org):
    """ANON-17: only the fields asked for, of the records the grant covers (and --where selects); the copy's
    marks are the strictest of its source (SEC-46(2)); its data is sealed (no plaintext at rest); only its
    holder reads it, every read and refusal logged."""
    hogo = org.inst.hogo
    staff_file(org)
    marks.change_marks(hogo, org.p("pm.takahashi"), STAFF, restrict=["no_distribution"], reason="配付禁止とする",
                       ctx=CTX)
    source = Marks.of(files.load_spec(hogo, _row(org, STAFF)))
    c = workcopies.create_copy(hogo, org.p("clerk.ito"), STAFF, fields=["name", "birth_date"], purpose=P_STAFF,
                               expires_at=_expires(org, days=2), ctx=CTX)
    assert c.status == "live" and c.records == 3 and c.fields == ("name", "birth_date") and c.holder == "clerk.ito"
    assert {k: c.marks[k] for k in source.to_dict()} == strictest([source]).to_dict()
    assert "no_distribution" in c.marks["restrictions"]
    with hogo.unit_of_work() as db:
        blob = db.get(WorkingCopyData, c.id)
        assert blob is not None and "伊藤".encode() not in blob.blob and b"1990-04-01" not in blob.blob
    (copied,) = log(org, Event.RECORDS_COPIED)
    assert copied.actor_name == "clerk.ito" and sorted(copied.logged.records) == ["S0", "S1", "S2"]
    assert copied.logged.details["copy"] == c.id and list(copied.logged.fields) == ["birth_date", "name"]

    got = workcopies.read_copy(hogo, org.p("clerk.ito"), c.id, ctx=CTX)
    assert got.rows[0]["values"] == {"name": "伊藤 翔", "birth_date": "1990-04-01"}
    assert all(set(r["values"]) <= {"name", "birth_date"} for r in got.rows)
    # A narrower copy: --where selects one record.
    one = workcopies.create_copy(hogo, org.p("clerk.ito"), STAFF, fields=["name"], purpose=P_STAFF,
                                 where={"employee_no": "E0002"}, expires_at=_expires(org, hours=1), ctx=CTX)
    assert one.records == 1 and one.where_fields == ("employee_no",)
    assert workcopies.read_copy(hogo, org.p("clerk.ito"), one.id, ctx=CTX).rows == [
        {"record_id": "S2", "values": {"name": "鈴木 一郎"}}]

    # Not the holder: refused even for the protection manager, and logged.
    with pytest.raises(Forbidden):
        workcopies.read_copy(hogo, org.p("pm.takahashi"), c.id, ctx=CTX)
    reads = log(org, Event.WORKCOPY_READ)
    assert [(e.actor_name, e.outcome) for e in reads] == [("clerk.ito", "success"), ("clerk.ito", "success"),
                                                     ("pm.takahashi", "denied")]
    # The manager sees the copy's description; another department's clerk does not see it at all.
    assert [v.id for v in workcopies.list_copies(hogo, org.p("pm.takahashi"))] == [c.id, one.id]
    assert workcopies.list_copies(hogo, org.p("clerk.tanaka")) == []


def test_fields_not_granted_are_refused_for_a_working_copy_ANON_17(org: Org):
    """Only what was granted: a grant limited to some fields cannot copy others (the denial is logged)."""
    hogo = org.inst.hogo
    staff_file(org)
    grants.create_grant(hogo, org.p("pm.takahashi"), STAFF, user="clerk.tanaka", actions=["read"],
                        purposes=[P_STAFF], fields=["employee_no", "name"], ctx=CTX)
    with pytest.raises(Forbidden):
        workcopies.create_copy(hogo, org.p("clerk.tanaka"), STAFF, fields=["name", "birth_date"], purpose=P_STAFF,
                               expires_at=_expires(org, hours=1), ctx=CTX)
    assert [e.outcome for e in log(org, Event.RECORDS_COPIED)] == ["denied"]
    with pytest.raises(ValidationFailed):  # a deadline beyond the maximum lifetime
        workcopies.create_copy(hogo, org.p("clerk.ito"), STAFF, fields=["name"], purpose=P_STAFF,
                               expires_at=_expires(org, days=31), ctx=CTX)


def test_expired_copies_are_disposed_of_by_the_background_job_and_the_manager_confirms_ANON_17(org: Org):
    """ANON-17: at its deadline the background job destroys the copy's key and deletes its data, keeping a
    disposal record; the outstanding report lists only live copies; the file's protection manager (not
    the holder) confirms the erasure; every step is logged."""
    hogo = org.inst.hogo
    staff_file(org)
    ito = org.p("clerk.ito")
    soon = workcopies.create_copy(hogo, ito, STAFF, fields=["name"], purpose=P_STAFF,
                                  expires_at=_expires(org, hours=2), ctx=CTX)
    later = workcopies.create_copy(hogo, ito, STAFF, fields=["name"], purpose=P_STAFF,
                                   expires_at=_expires(org, days=3), ctx=CTX)
    now_gone = workcopies.create_copy(hogo, ito, STAFF, fields=["name"], purpose=P_STAFF,
                                      expires_at=_expires(org, days=3), ctx=CTX)
    workcopies.dispose_copy(hogo, ito, now_gone.id, ctx=CTX)  # on demand, by the holder
    rep = workcopies.report(hogo, org.p("pm.takahashi"))
    assert [v.id for v in rep["outstanding"]] == [soon.id, later.id]
    assert [v.id for v in rep["awaiting_confirmation"]] == [now_gone.id]

    org.inst.clock.advance(hours=2, seconds=1)
    BackgroundJobs(hogo).run_once(force=True)
    gone = workcopies.show_copy(hogo, org.p("pm.takahashi"), soon.id)
    assert gone.status == "disposed" and gone.disposal_reason == "expired" and gone.disposed_by == "system"
    assert gone.key_destroyed and not gone.data_present
    with hogo.unit_of_work() as db:
        row = db.get(WorkingCopy, soon.id)
        assert row is not None and db.get(WorkingCopyData, soon.id) is None
    assert hogo.keystore.get_copy_key(soon.id) is None
    assert [v.id for v in workcopies.report(hogo, org.p("pm.takahashi"))["outstanding"]] == [later.id]
    with pytest.raises(Conflict):
        workcopies.read_copy(hogo, ito, soon.id, ctx=CTX)
    disposed = log(org, Event.WORKCOPY_DISPOSED)
    assert [(e.actor_name, e.logged.details["reason"]) for e in disposed] == [("clerk.ito", "on_demand"),
                                                                          ("system", "expired")]

    with pytest.raises(Forbidden):  # the holder does not confirm; a clerk of another department cannot see it
        workcopies.confirm_disposal(hogo, ito, soon.id, note=None, ctx=CTX)
    with pytest.raises(Conflict):  # a live copy has nothing to confirm
        workcopies.confirm_disposal(hogo, org.p("pm.takahashi"), later.id, note=None, ctx=CTX)
    ok = workcopies.confirm_disposal(hogo, org.p("pm.takahashi"), soon.id, note="鍵の破棄を確認", ctx=CTX)
    assert ok.confirmed_by == "pm.takahashi" and ok.confirmed_at is not None and ok.confirmation_note
    (confirmed,) = log(org, Event.WORKCOPY_CONFIRMED)
    assert confirmed.actor_name == "pm.takahashi" and confirmed.logged.details["copy"] == soon.id
    assert [v.id for v in workcopies.report(hogo, org.p("gpm.sato"))["awaiting_confirmation"]] == [now_gone.id]


def test_a_marks_change_through_a_definition_update_is_kept_in_the_history_SEC_46(org: Org):
    """SEC-46(3): ``file update`` with other marks is a marks change too: kept with its basis, logged."""
    hogo = org.inst.hogo
    staff_file(org)
    spec = staff_spec()
    spec["restrictions"] = ["no_distribution"]
    files.update_file(hogo, org.p("pm.takahashi"), STAFF, spec, ctx=CTX)
    spec["description"] = "説明だけの変更"
    files.update_file(hogo, org.p("pm.takahashi"), STAFF, spec, ctx=CTX)  # marks unchanged: no history row
    (h,) = marks.history(hogo, org.p("pm.takahashi"), STAFF)
    assert (h.version, h.basis, h.before["restrictions"], h.after["restrictions"]) == (
        2, "decider", [], ["no_distribution"])
    assert h.reason == "file definition updated (version 2)"
    assert [e.outcome for e in log(org, Event.MARKS_CHANGED)] == ["success"]


def test_live_copies_follow_their_sources_marks_and_a_no_copy_source_disposes_of_them_SEC_46_ANON_17(org: Org):
    """SEC-46(2): when the source's marks become stricter, its live copies take them (never laxer); once the
    source is marked no-copy, its copies are disposed of in the same transaction (logged)."""
    hogo = org.inst.hogo
    staff_file(org)
    c = workcopies.create_copy(hogo, org.p("clerk.ito"), STAFF, fields=["name"], purpose=P_STAFF,
                               expires_at=_expires(org, days=1), ctx=CTX)
    marks.change_marks(hogo, org.p("pm.takahashi"), STAFF, confidentiality=3, reason="引上げ", ctx=CTX)
    marks.change_marks(hogo, org.p("pm.takahashi"), STAFF, confidentiality=1, unrestrict=["encryption_required"],
                       reason="引下げ", ctx=CTX)
    v = workcopies.show_copy(hogo, org.p("clerk.ito"), c.id)
    assert v.status == "live" and v.marks["label"] == "C3-I1-A1"  # the copy keeps the stricter marks
    marks.change_marks(hogo, org.p("pm.takahashi"), STAFF, restrict=["no_copy"], reason="複製禁止", ctx=CTX)
    v = workcopies.show_copy(hogo, org.p("clerk.ito"), c.id)
    assert v.status == "disposed" and v.disposal_reason == "source_no_copy" and v.key_destroyed
    assert "no_copy" in v.marks["restrictions"]
    (disposed,) = log(org, Event.WORKCOPY_DISPOSED)
    assert disposed.logged.details["reason"] == "source_no_copy"


def test_erasing_records_or_the_file_disposes_of_its_working_copies_ANON_17_SEC_50(org: Org):
    """An erasure reaches every copy inside hogo: live working copies of the file, which may hold the erased
    records, are disposed of (key destroyed, data deleted) in the erasure's own transaction; so is every
    copy when the whole file is erased."""
    from hogo.services import erasure

    hogo = org.inst.hogo
    staff_file(org)
    grants.create_grant(hogo, org.p("pm.takahashi"), STAFF, user="clerk.tanaka", actions=["read", "delete"],
                        purposes=[P_STAFF], ctx=CTX)
    first = workcopies.create_copy(hogo, org.p("clerk.ito"), STAFF, fields=["name"], purpose=P_STAFF,
                                   expires_at=_expires(org, hours=4), ctx=CTX)
    erasure.erase_records(hogo, org.p("clerk.tanaka"), STAFF, ["S0"], reason="退職後の保存期間満了",
                          purpose=P_STAFF, ctx=CTX)
    with hogo.unit_of_work() as db:
        row = db.get(WorkingCopy, first.id)
        assert row is not None and row.status == "disposed" and row.disposal_reason == "source_erased"
        assert db.scalars(select(WorkingCopyData).where(WorkingCopyData.copy_id == first.id)).all() == []
    assert hogo.keystore.get_copy_key(first.id) is None
    second = workcopies.create_copy(hogo, org.p("clerk.ito"), STAFF, fields=["name"], purpose=P_STAFF,
                                    expires_at=_expires(org, hours=4), ctx=CTX)
    assert second.records == 2
    erasure.erase_file(hogo, org.p("pm.takahashi"), STAFF, reason="名簿の廃止", ctx=CTX)
    with hogo.unit_of_work() as db:
        assert db.get(WorkingCopy, second.id).status == "disposed"
    assert [e.details["reason"] for e in log(org, Event.WORKCOPY_DISPOSED)] == ["source_erased", "source_erased"]


def test_selections_by_indexed_field_find_records_in_every_key_bucket_ANON_17_SEC_49(org: Org):
    """Each key bucket has its own blind-index key (erasure): a working copy's or an export's selection by an
    indexed field computes one digest per bucket, so a record in an older bucket is found as a search finds it."""
    from hogo.domain.handling import Use

    hogo = org.inst.hogo
    hogo.extras["bucket_records"] = 1  # S0, S1 and S2 each in a bucket of its own
    staff_file(org)
    grants.create_grant(hogo, org.p("pm.takahashi"), STAFF, user="clerk.ito", actions=["export"],
                        purposes=[P_STAFF], ctx=CTX)
    ito = org.p("clerk.ito")
    for emp, rid in (("E0000", "S0"), ("E0002", "S2")):
        assert [v.record_id for v in guard.find_records(hogo, ito, STAFF, {"employee_no": emp}, purpose=P_STAFF,
                                                        ctx=CTX)] == [rid]
        copy = workcopies.create_copy(hogo, ito, STAFF, fields=["name"], purpose=P_STAFF,
                                      where={"employee_no": emp}, expires_at=_expires(org, hours=1), ctx=CTX)
        assert copy.records == 1
        stream = guard.export_records(hogo, ito, STAFF, fields=["name"], selection={"employee_no": emp},
                                      purpose=P_STAFF, use=Use.PACKAGE, encrypted=True, ctx=CTX)
        assert list(stream.record_ids) == [rid]
