"""The guard on real SQLite and PostgreSQL: ANON-5, ANON-14, MN-6a, MN-3b, MLIT-9.5.2, MLIT-9.5.3, SEC-45,
SEC-107, SEC-130, SEC-131, SEC-19, ANON-18, SEC-133."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import select, text, update

from hogo.domain.events import Event
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import files, grants, guard
from hogo.store.models import AuditEvent, Record
from support import CTX, Instance, Org, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
P2 = "年末調整事務"
MN = "123456789018"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": MN, "department": "KYUYO", "birth_date": "1990-04-01"}


@pytest.fixture
def org(inst: Instance) -> Org:
    return make_org(inst)


def grant(org: Org, who: str = "clerk.ito", *, actions=("read", "create", "update"), purposes=(P1,), **kw):
    return grants.create_grant(org.inst.hogo, org.p("pm.takahashi"), FILE, user=who, actions=list(actions),
                               purposes=list(purposes), ctx=CTX, **kw)


def access_events(org: Org, prefix: str = "data:record") -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event.startswith(prefix)).order_by(AuditEvent.seq)))


def test_default_deny_nobody_reads_without_a_grant_ANON_5(org: Org):
    for who in ("clerk.ito", "pm.takahashi", "auditor.watanabe"):
        with pytest.raises(Forbidden) as e:
            guard.read_record(org.inst.hogo, org.p(who), FILE, "E1", purpose=P1, ctx=CTX)
        assert e.value.code == "denied_no_grant"
    with pytest.raises(Forbidden):
        guard.create_record(org.inst.hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)


def test_administrator_has_no_data_access_and_cannot_get_it_by_role_SEC_107_ANON_14(org: Org):
    with pytest.raises(Forbidden) as e:
        guard.read_record(org.inst.hogo, org.admin, FILE, "E1", purpose=P1, ctx=CTX)
    assert e.value.code == "denied_no_grant"
    # Nor can the administrator define files or grant on them.
    with pytest.raises(Forbidden):
        grants.create_grant(org.inst.hogo, org.admin, FILE, user="clerk.ito", actions=["read"], purposes=[P1],
                            ctx=CTX)


def test_create_read_masked_and_reveal_with_grant_MN_6a(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, {**ITO, "my_number": "１２３４-５６７８-９０１８"}, purpose=P1, ctx=CTX)
    assert rec.values["my_number"] == "********9018" and rec.masked == ("my_number",)
    got = guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P1, ctx=CTX)
    assert got.values["name"] == "伊藤 翔" and got.values["my_number"] == "********9018"
    with pytest.raises(Forbidden) as e:
        guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P1, reveal=["my_number"], ctx=CTX)
    assert e.value.code == "denied_action_not_granted"
    grant(org, actions=("reveal",), fields=["my_number"])
    shown = guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P1, reveal=["my_number"], ctx=CTX)
    assert shown.values["my_number"] == MN and shown.revealed == ("my_number",)
    kinds = [e.event for e in access_events(org)]
    assert kinds == [Event.RECORD_CREATED.value, Event.RECORD_READ.value, Event.RECORD_REVEALED.value,
                     Event.RECORD_REVEALED.value]


def test_purpose_must_be_declared_of_the_file_and_granted_SEC_45(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    with pytest.raises(ValidationFailed) as e:
        guard.read_record(hogo, ito, FILE, rec.record_id, purpose="  ", ctx=CTX)
    assert e.value.field == "purpose"
    with pytest.raises(Forbidden) as e:
        guard.read_record(hogo, ito, FILE, rec.record_id, purpose="マーケティング", ctx=CTX)
    assert e.value.code == "denied_purpose_not_of_file" and e.value.requirement == "SEC-45"
    with pytest.raises(Forbidden) as e:
        guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P2, ctx=CTX)
    assert e.value.code == "denied_purpose_not_granted"


def test_field_restricted_grant_returns_only_those_fields_and_refuses_others_SEC_131(org: Org):
    grant(org, actions=("create",))
    grant(org, who="clerk.tanaka", actions=("read",), fields=["employee_no", "name"])
    hogo = org.inst.hogo
    rec = guard.create_record(hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)
    got = guard.read_record(hogo, org.p("clerk.tanaka"), FILE, rec.record_id, purpose=P1, ctx=CTX)
    assert set(got.values) == {"employee_no", "name"}
    with pytest.raises(Forbidden) as e:
        guard.find_records(hogo, org.p("clerk.tanaka"), FILE, {"my_number": MN}, purpose=P1, ctx=CTX)
    assert e.value.code == "denied_field_not_granted"


def test_record_scope_by_segment_own_department_MN_6a(org: Org):
    grant(org, actions=("create",), segments=["KYUYO", "JINJI"])
    grant(org, who="clerk.tanaka", actions=("read",), segments=["$own_department"])
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    kyuyo = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    jinji = guard.create_record(hogo, ito, FILE, {**ITO, "employee_no": "E0002", "department": "JINJI"}, purpose=P1,
                                ctx=CTX)
    tanaka = org.p("clerk.tanaka")  # in JINJI
    assert guard.read_record(hogo, tanaka, FILE, jinji.record_id, purpose=P1, ctx=CTX).values["department"] == "JINJI"
    with pytest.raises(Forbidden) as e:
        guard.read_record(hogo, tanaka, FILE, kyuyo.record_id, purpose=P1, ctx=CTX)
    assert e.value.code == "denied_record_out_of_scope"
    # A record that does not exist looks the same to a scoped reader: no oracle for other departments' IDs.
    with pytest.raises(Forbidden) as e:
        guard.read_record(hogo, tanaka, FILE, "no-such-record", purpose=P1, ctx=CTX)
    assert e.value.code == "denied_record_out_of_scope"
    with pytest.raises(Forbidden):
        guard.create_record(hogo, ito, FILE, {**ITO, "employee_no": "E3", "department": "SOMU"}, purpose=P1, ctx=CTX)
    found = guard.find_records(hogo, tanaka, FILE, {"my_number": MN}, purpose=P1, ctx=CTX)
    assert [r.record_id for r in found] == [jinji.record_id]  # the KYUYO record is not disclosed


def test_grants_expire_and_validity_is_checked_on_every_access_MLIT_9_5_3(org: Org):
    until = org.inst.clock.now() + dt.timedelta(hours=2)
    grant(org, valid_until=until)
    hogo = org.inst.hogo
    rec = guard.create_record(hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)
    org.inst.clock.set(until)
    with pytest.raises(Forbidden) as e:
        guard.read_record(hogo, org.p("clerk.ito"), FILE, rec.record_id, purpose=P1, ctx=CTX)
    assert e.value.code == "denied_grant_not_in_force"


def test_every_access_allowed_or_denied_is_recorded_with_purpose_fields_records_MN_3b(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P1, ctx=CTX)
    with pytest.raises(Forbidden):
        guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P2, ctx=CTX)
    with pytest.raises(Forbidden):
        guard.read_record(hogo, org.p("clerk.tanaka"), FILE, rec.record_id, purpose=P1, ctx=CTX)
    ev = access_events(org)
    read_ok, denied_purpose, denied_nogrant = ev[1], ev[2], ev[3]
    assert read_ok.outcome == "success" and read_ok.actor_name == "clerk.ito"
    assert read_ok.purpose == P1 and list(read_ok.logged.records) == [rec.record_id]
    assert "my_number" in read_ok.logged.fields and read_ok.details["decision"] == "allowed"
    assert denied_purpose.outcome == "denied" and denied_purpose.reason == "purpose_not_granted"
    assert denied_nogrant.outcome == "denied" and denied_nogrant.actor_name == "clerk.tanaka"
    # No value, and above all no My Number, is in the record of accesses.
    with hogo.engine.connect() as conn:
        dump = " ".join(str(r) for r in conn.execute(text("SELECT details, reason, target FROM audit_events")))
    assert MN not in dump and "伊藤" not in dump


def test_access_fails_closed_when_its_record_cannot_be_written_MN_3b(org: Org, monkeypatch):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    from hogo.services import audit

    def broken(*a, **kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "append", broken)  # the log's writes fail, whichever path reaches them
    with pytest.raises(RuntimeError):
        guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P1, ctx=CTX)
    with pytest.raises(RuntimeError):
        guard.create_record(hogo, ito, FILE, {**ITO, "employee_no": "E9"}, purpose=P1, ctx=CTX)
    monkeypatch.undo()
    with hogo.unit_of_work() as db:
        assert db.scalar(select(Record.id).where(Record.record_id != rec.record_id)) is None


def test_values_are_encrypted_and_bound_to_their_place_ANON_18_SEC_133(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    a = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    b = guard.create_record(hogo, ito, FILE, {**ITO, "employee_no": "E0002", "name": "田中 花子"}, purpose=P1,
                            ctx=CTX)
    with hogo.engine.connect() as conn:
        blobs = [bytes(r[0]) for r in conn.execute(text("SELECT blob FROM records ORDER BY id"))]
    assert all(MN.encode() not in x and "伊藤".encode() not in x for x in blobs)
    # Swap the two records' ciphertexts: both refuse to open.
    with hogo.unit_of_work() as db:
        db.execute(update(Record).where(Record.record_id == a.record_id).values(blob=blobs[1]))
    from hogo.errors import Unreadable

    with pytest.raises(Unreadable) as e:
        guard.read_record(hogo, ito, FILE, a.record_id, purpose=P1, ctx=CTX)
    assert e.value.code == "record_unreadable" and "tampered or moved" in e.value.message
    assert "伊藤" not in e.value.message and MN not in e.value.message
    assert guard.read_record(hogo, ito, FILE, b.record_id, purpose=P1, ctx=CTX).values["name"] == "田中 花子"


def test_key_rotation_keeps_every_record_readable_SEC_133(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    ids = [guard.create_record(hogo, ito, FILE, {**ITO, "employee_no": f"E{i}"}, purpose=P1, ctx=CTX).record_id
           for i in range(5)]
    result = files.rotate_key(hogo, org.p("pm.takahashi"), FILE, ctx=CTX, batch=2)
    assert result == {"key_version": 2, "reencrypted": 5}
    with hogo.unit_of_work() as db:
        assert set(db.scalars(select(Record.key_version))) == {2}
    hogo.file_keys.clear()  # a fresh process
    assert all(guard.read_record(hogo, ito, FILE, i, purpose=P1, ctx=CTX).values["my_number"].endswith("9018")
               for i in ids)
    assert guard.find_records(hogo, ito, FILE, {"employee_no": "E3"}, purpose=P1, ctx=CTX)[0].record_id == ids[3]


def test_search_needs_an_indexed_field_and_uses_the_blind_index(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    assert [r.record_id for r in guard.find_records(hogo, ito, FILE, {"my_number": "1234 5678 9018"}, purpose=P1,
                                                    ctx=CTX)] == [rec.record_id]
    with pytest.raises(ValidationFailed) as e:
        guard.find_records(hogo, ito, FILE, {"name": "伊藤 翔"}, purpose=P1, ctx=CTX)
    assert "not indexed" in e.value.message
    with pytest.raises(ValidationFailed):
        guard.find_records(hogo, ito, FILE, {"my_number": "123456789012"}, purpose=P1, ctx=CTX)  # bad check digit
    assert guard.find_records(hogo, ito, FILE, {"employee_no": "nobody"}, purpose=P1, ctx=CTX) == []


def test_update_and_delete(org: Org):
    grant(org, actions=("read", "create", "update", "delete"))
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    rec = guard.create_record(hogo, ito, FILE, ITO, purpose=P1, ctx=CTX)
    up = guard.update_record(hogo, ito, FILE, rec.record_id, {"name": "伊藤 翔太", "birth_date": ""}, purpose=P1,
                             ctx=CTX)
    assert up.revision == 2 and up.values["name"] == "伊藤 翔太" and "birth_date" not in up.values
    with pytest.raises(Conflict):
        guard.update_record(hogo, ito, FILE, rec.record_id, {"name": "x"}, purpose=P1, ctx=CTX, expected_revision=1)
    with pytest.raises(ValidationFailed):
        guard.update_record(hogo, ito, FILE, rec.record_id, {"my_number": ""}, purpose=P1, ctx=CTX)  # required
    guard.delete_record(hogo, ito, FILE, rec.record_id, purpose=P1, ctx=CTX)
    with pytest.raises(NotFound):
        guard.read_record(hogo, ito, FILE, rec.record_id, purpose=P1, ctx=CTX)
    assert guard.find_records(hogo, ito, FILE, {"my_number": MN}, purpose=P1, ctx=CTX) == []


def test_invalid_values_are_named_and_nothing_is_written(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    with pytest.raises(ValidationFailed) as e:
        guard.create_record(hogo, ito, FILE, {**ITO, "my_number": "123456789012", "birth_date": "1990-02-30",
                                              "salary": "1"}, purpose=P1, ctx=CTX)
    problems = {p["field"]: p["reason"] for p in e.value.details["problems"]}
    assert problems == {"salary": "unknown field", "my_number": "個人番号 (My Number) check digit does not match",
                        "birth_date": "must be a date YYYY-MM-DD"}
    assert "123456789012" not in e.value.message
    with hogo.unit_of_work() as db:
        assert db.scalar(select(Record.id)) is None


def test_only_managers_change_grants_and_never_for_themselves_SEC_130_SEC_19(org: Org):
    hogo = org.inst.hogo
    with pytest.raises(Forbidden) as e:
        grants.create_grant(hogo, org.p("clerk.ito"), FILE, user="clerk.tanaka", actions=["read"], purposes=[P1],
                            ctx=CTX)
    assert e.value.requirement == "SEC-130"
    with pytest.raises(Forbidden) as e:
        grants.create_grant(hogo, org.p("pm.takahashi"), FILE, user="pm.takahashi", actions=["read"], purposes=[P1],
                            ctx=CTX)
    assert e.value.requirement == "SEC-19"
    with pytest.raises(Forbidden) as e:
        grants.create_grant(hogo, org.p("pm.takahashi"), FILE, role="protection_manager@KYUYO", actions=["read"],
                            purposes=[P1], ctx=CTX)
    assert e.value.requirement == "SEC-19"
    # A holder of 'manage' may grant to others.
    grant(org, actions=("manage",))
    g = grants.create_grant(hogo, org.p("clerk.ito"), FILE, user="clerk.tanaka", actions=["read"], purposes=[P1],
                            ctx=CTX)
    assert g.grantee == "user:clerk.tanaka" and g.granted_by == "clerk.ito"
    grants.revoke_grant(hogo, org.p("pm.takahashi"), g.id, ctx=CTX)
    with pytest.raises(Forbidden):
        guard.read_record(hogo, org.p("clerk.tanaka"), FILE, "x", purpose=P1, ctx=CTX)
    changes = [e.event for e in access_events(org, "data:grant")]
    assert changes.count(Event.GRANT_CREATED.value) == 2 and Event.GRANT_REVOKED.value in changes
    assert Event.GRANT_DENIED.value in changes


def test_role_grants_follow_department_scope(org: Org):
    grants.create_grant(org.inst.hogo, org.p("pm.takahashi"), FILE, role="clerk@KYUYO", actions=["create", "read"],
                        purposes=[P1], ctx=CTX)
    hogo = org.inst.hogo
    rec = guard.create_record(hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)
    with pytest.raises(Forbidden):
        guard.read_record(hogo, org.p("clerk.tanaka"), FILE, rec.record_id, purpose=P1, ctx=CTX)  # clerk in JINJI


def test_access_review_lists_unneeded_rights_SEC_131(org: Org):
    hogo = org.inst.hogo
    grant(org)
    grant(org, who="clerk.tanaka", actions=("read",), valid_until=org.inst.clock.now() + dt.timedelta(days=1))
    guard.create_record(hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX)
    org.inst.clock.advance(days=100)
    from hogo.services import accounts

    accounts.disable_user(hogo, org.inst.admin_principal(), "clerk.ito", reason="退職", ctx=CTX)
    items = {i.grant.grantee: set(i.findings) for i in grants.review(hogo, org.p("pm.takahashi"), file_code=FILE,
                                                                   unused_days=90)}
    assert items["user:clerk.ito"] == {"unused", "holder_disabled"}
    assert items["user:clerk.tanaka"] == {"expired", "never_used"}


def test_csv_import_shift_jis_reports_every_bad_row_and_keeps_the_good(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    lines = ["record_id,employee_no,name,my_number,department,dependents",
             "R1,E1,伊藤 翔,123456789018,KYUYO,1",
             "R2,E2,髙橋 一郎,123456789012,KYUYO,x",
             "R3,E3,斎藤 ①,,KYUYO,0",
             "R1,E4,重複,123456789018,KYUYO,0",
             "R5,E5,佐藤 花子,123456789018,KYUYO,2"]
    data = ("\r\n".join(lines) + "\r\n").encode("cp932")
    rep = guard.import_records(hogo, ito, FILE, io.BytesIO(data), purpose=P1, encoding="shift_jis", ctx=CTX)
    assert (rep.total, rep.imported) == (5, 2)
    assert [(r.row, r.field) for r in rep.rejected] == [(2, "my_number"), (2, "dependents"), (3, "my_number"),
                                                          (4, "record_id")]
    assert guard.read_record(hogo, ito, FILE, "R5", purpose=P1, ctx=CTX).values["name"] == "佐藤 花子"


def test_atomic_import_is_all_or_nothing(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    csv = "record_id,employee_no,name,my_number,department\nA1,E1,a,123456789018,KYUYO\nA2,E2,b,1,KYUYO\n"
    rep = guard.import_records(hogo, ito, FILE, io.BytesIO(csv.encode()), purpose=P1, atomic=True, ctx=CTX)
    assert not rep.committed and rep.imported == 0 and rep.rejected[0].row == 2
    with hogo.unit_of_work() as db:
        assert db.scalar(select(Record.id)) is None
    good = csv.replace("A2,E2,b,1,KYUYO", "A2,E2,b,123456789018,KYUYO")
    rep = guard.import_records(hogo, ito, FILE, io.BytesIO(good.encode()), purpose=P1, atomic=True, ctx=CTX)
    assert rep.committed and rep.imported == 2


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"employee_no,salary\nE1,1\n", "unknown column"),
        (b"", "empty"),
        (b"record_id,employee_no\n" + "R1,伊藤".encode("cp932") + b"\n", None),  # cp932 bytes, read as utf-8
    ],
)
def test_bad_csv_input_gets_clear_errors(org: Org, payload, problem):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    if problem:
        with pytest.raises(ValidationFailed) as e:
            guard.import_records(hogo, ito, FILE, io.BytesIO(payload), purpose=P1, ctx=CTX)
        assert problem in e.value.message
    else:
        rep = guard.import_records(hogo, ito, FILE, io.BytesIO(payload), purpose=P1, encoding="utf-8", ctx=CTX)
        assert rep.imported == 0 and "not valid utf-8" in rep.rejected[0].reason


def test_file_spec_errors_are_named_and_definitions_are_versioned_MN_3c(org: Org):
    from support import payroll_spec

    hogo, pm = org.inst.hogo, org.p("pm.takahashi")
    bad = {**payroll_spec(), "code": "x2", "kind": "personal_information", "classification": {"confidentiality": 4}}
    with pytest.raises(ValidationFailed) as e:
        files.create_file(hogo, pm, bad, ctx=CTX)
    fields = {p["field"] for p in e.value.details["problems"]}
    assert {"kind", "classification.confidentiality", "classification.integrity"} <= fields
    spec = payroll_spec()
    spec["fields"].append({"name": "note", "type": "text", "sensitivity": "other"})
    v2 = files.update_file(hogo, pm, FILE, spec, ctx=CTX)
    assert v2.version == 2
    spec["fields"] = [f for f in spec["fields"] if f["name"] != "phone"]
    with pytest.raises(ValidationFailed) as e:
        files.update_file(hogo, pm, FILE, spec, ctx=CTX)
    assert "cannot be removed" in e.value.message
    assert [v["version"] for v in files.file_versions(hogo, pm, FILE)] == [1, 2]
    ledger = files.show_file(hogo, org.p("auditor.watanabe"), FILE)
    assert ledger.spec["administrative_task"] == P1 and ledger.spec["legal_basis"]
    assert ledger.classification == "C3-I2-A1" and "encryption_required" in ledger.restrictions


def test_only_the_departments_protection_manager_defines_its_files(org: Org):
    from support import payroll_spec

    with pytest.raises(Forbidden):
        files.create_file(org.inst.hogo, org.p("clerk.ito"), {**payroll_spec(), "code": "x3"}, ctx=CTX)
    with pytest.raises(Forbidden):
        files.create_file(org.inst.hogo, org.p("pm.takahashi"), {**payroll_spec(), "code": "x4", "department": "JINJI"},
                          ctx=CTX)


def test_a_corrected_rejects_file_imports_as_is(org: Org):
    grant(org)
    hogo, ito = org.inst.hogo, org.p("clerk.ito")
    csv = ("record_id,employee_no,name,my_number,department,hogo_reject_reason\n"
           "R2,E2,b,123456789018,KYUYO,my_number: …\n")
    rep = guard.import_records(hogo, ito, FILE, io.BytesIO(csv.encode()), purpose=P1, ctx=CTX)
    assert rep.imported == 1 and not rep.rejected


def test_a_destroy_after_reading_file_lets_each_person_reveal_a_record_once_SEC_5(org: Org):
    """読後廃棄 (destroy after reading, SEC-5 table 1): each person may reveal a record's My Number once; a
    second reveal is refused and logged as denied, while the masked record stays readable."""
    from support import payroll_spec

    hogo = org.inst.hogo
    spec = payroll_spec()
    spec.update(code="payroll-once", restrictions=["destroy_after_reading"])
    files.create_file(hogo, org.p("pm.takahashi"), spec, ctx=CTX)
    for who in ("clerk.ito", "clerk.tanaka"):
        grants.create_grant(hogo, org.p("pm.takahashi"), "payroll-once", user=who,
                            actions=["read", "create", "reveal"], purposes=[P1], ctx=CTX)
    ito = org.p("clerk.ito")
    rid = guard.create_record(hogo, ito, "payroll-once", ITO, purpose=P1, ctx=CTX).record_id
    other = guard.create_record(hogo, ito, "payroll-once", {**ITO, "employee_no": "E0002"}, purpose=P1,
                                ctx=CTX).record_id
    assert guard.read_record(hogo, ito, "payroll-once", rid, purpose=P1, reveal=["my_number"],
                             ctx=CTX).values["my_number"] == MN
    with pytest.raises(Forbidden) as e:
        guard.read_record(hogo, ito, "payroll-once", rid, purpose=P1, reveal=["my_number"], ctx=CTX)
    assert e.value.code == "denied_read_once"
    denied = [x for x in access_events(org) if x.event == Event.RECORD_REVEALED.value and x.outcome == "denied"]
    assert len(denied) == 1 and denied[0].reason == "read_once"
    assert guard.read_record(hogo, ito, "payroll-once", rid, purpose=P1, ctx=CTX).values["my_number"].endswith("9018")
    # Once per person and per record: another record, or another person, may still reveal once.
    guard.read_record(hogo, ito, "payroll-once", other, purpose=P1, reveal=["my_number"], ctx=CTX)
    guard.read_record(hogo, org.p("clerk.tanaka"), "payroll-once", rid, purpose=P1, reveal=["my_number"], ctx=CTX)
