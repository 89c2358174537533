"""Approvals and corrections on real SQLite and PostgreSQL: SEC-19 (nobody approves their own request; a
conflicted approver escalates to the superior, recorded), ANON-8 (corrections approved by the file's
protection manager, applied through the guard with the previous version kept), MN-3b (every request,
decision and escalation is logged, never the values)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from hogo.domain.events import Event
from hogo.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hogo.services import accounts, approvals, corrections, files, grants, guard, integrity
from hogo.store.models import ApprovalRequest, AuditEvent, RecordVersion
from support import CTX, Instance, Org, active_user, make_org

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
MN = "123456789018"
ITO = {"employee_no": "E0001", "name": "伊藤 翔", "my_number": MN, "department": "KYUYO", "birth_date": "1990-04-01"}
NEW_NAME = "伊藤 翔太郎"


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    o.secrets["gpm.sato"] = active_user(inst, o.admin, "gpm.sato", ["general_protection_manager"])
    return o


def grant(org: Org, who: str = "clerk.ito", *, actions=("read", "create", "update"), **kw):
    return grants.create_grant(org.inst.hogo, org.p("pm.takahashi"), FILE, user=who, actions=list(actions),
                               purposes=[P1], ctx=CTX, **kw)


def record(org: Org) -> str:
    grant(org)
    return guard.create_record(org.inst.hogo, org.p("clerk.ito"), FILE, ITO, purpose=P1, ctx=CTX).record_id


def entries(org: Org, prefix: str) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event.startswith(prefix)).order_by(AuditEvent.seq)))


def test_correction_approved_by_the_protection_manager_is_applied_with_before_and_after_ANON_8(org: Org):
    hogo = org.inst.hogo
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME, "name_kana": "イトウ"},
                                         reason="戸籍謄本による氏名の訂正", purpose=P1, ctx=CTX)
    assert req.status == "pending" and req.kind == "correction" and req.base_revision == 1
    assert req.fields == ("name", "name_kana")
    assert [(s.role, s.department) for s in req.steps] == [("protection_manager", "KYUYO")]
    # Until approved nothing changes; the new values are sealed in the request, never plaintext.
    assert guard.read_record(hogo, org.p("clerk.ito"), FILE, rid, purpose=P1, ctx=CTX).values["name"] == "伊藤 翔"
    with hogo.unit_of_work() as db:
        row = db.get(ApprovalRequest, req.id)
        assert row is not None and row.payload is not None
        assert NEW_NAME.encode() not in row.payload and "イトウ".encode() not in row.payload
    pm = org.p("pm.takahashi")
    assert approvals.get_request(hogo, pm, req.id).can_decide
    done = approvals.decide(hogo, pm, req.id, approve=True, reason="確認済み", ctx=CTX)
    assert done.status == "applied" and done.outcome == {"revision_before": 1, "revision_after": 2}
    assert done.steps[0].decision is not None and done.steps[0].decision.approver == "pm.takahashi"
    after = guard.read_record(hogo, org.p("clerk.ito"), FILE, rid, purpose=P1, ctx=CTX)
    assert after.values["name"] == NEW_NAME and after.values["name_kana"] == "イトウ" and after.revision == 2
    assert after.values["birth_date"] == "1990-04-01"  # fields not corrected are kept
    # The previous version is kept, encrypted as the record was, with the request that replaced it.
    with hogo.unit_of_work() as db:
        old = db.scalar(select(RecordVersion).where(RecordVersion.record_id == rid))
        assert old is not None and old.revision == 1 and old.request_id == req.id
        assert "伊藤".encode() not in old.blob
        keys = files.file_keys(hogo, db, old.file_id)
        assert keys.open_record(rid, old.blob)["name"] == "伊藤 翔"
        kept = db.get(ApprovalRequest, req.id)  # the requested values stay sealed: what the correction set
        assert kept is not None and kept.payload is not None and NEW_NAME.encode() not in kept.payload
    (corrected,) = entries(org, Event.RECORD_CORRECTED.value)
    logged = corrected.logged
    assert logged is not None and logged.records == (rid,) and logged.fields == ("name", "name_kana")
    assert logged.actor == "pm.takahashi" and logged.purpose == P1
    assert logged.details is not None and logged.details["request"] == req.id
    assert logged.details["requester"] == "clerk.ito" and logged.details["approver"] == "pm.takahashi"
    assert (logged.details["revision_before"], logged.details["revision_after"]) == (1, 2)
    kinds = [e.event for e in entries(org, "approval:")]
    assert kinds == [Event.APPROVAL_REQUESTED.value, Event.APPROVAL_APPROVED.value]
    for e in entries(org, ""):  # no value in any entry
        assert e.entry is not None and NEW_NAME.encode() not in e.entry and "イトウ".encode() not in e.entry


def test_requester_never_approves_own_request_and_a_sole_approver_escalates_SEC_19(org: Org):
    """The protection manager asks for a correction of their own file: they hold the only approver level,
    so the step escalates at once to the general protection manager, recorded; their own approval is
    refused (SEC-19) and logged as denied."""
    hogo = org.inst.hogo
    rid = record(org)
    # Nobody grants themselves: a second KYUYO manager grants the read, then leaves (disabled accounts
    # approve nothing), so pm.takahashi is the department's only protection manager.
    org.secrets["pm.kato"] = active_user(org.inst, org.admin, "pm.kato", ["protection_manager"], "KYUYO")
    grants.create_grant(hogo, org.p("pm.kato"), FILE, user="pm.takahashi", actions=["read"], purposes=[P1], ctx=CTX)
    accounts.disable_user(hogo, org.admin, "pm.kato", reason="異動", ctx=CTX)
    req = corrections.request_correction(hogo, org.p("pm.takahashi"), FILE, rid, {"name": NEW_NAME},
                                         reason="誤記", purpose=P1, ctx=CTX)
    step = req.steps[0]
    assert (step.role, step.department) == ("general_protection_manager", None)
    assert (step.required_role, step.required_department) == ("protection_manager", "KYUYO")
    assert step.escalations[0]["cause"] == "requester"
    with pytest.raises(Forbidden) as e:
        approvals.decide(hogo, org.p("pm.takahashi"), req.id, approve=True, reason=None, ctx=CTX)
    assert e.value.code == "own_request" and e.value.requirement == "SEC-19"
    with pytest.raises(NotFound):  # nor a clerk, who cannot even see it
        approvals.decide(hogo, org.p("clerk.ito"), req.id, approve=True, reason=None, ctx=CTX)
    done = approvals.decide(hogo, org.p("gpm.sato"), req.id, approve=True, reason=None, ctx=CTX)
    assert done.status == "applied"
    assert done.steps[0].decision is not None and done.steps[0].decision.role == "general_protection_manager"
    log = [(e.event, e.outcome, e.reason) for e in entries(org, "approval:")]
    assert log == [
        (Event.APPROVAL_REQUESTED.value, "success", None),
        (Event.APPROVAL_ESCALATED.value, "success", "requester"),
        (Event.APPROVAL_APPROVED.value, "denied", "own_request"),
        (Event.APPROVAL_APPROVED.value, "success", None),
    ]


def test_a_conflicted_approver_escalates_to_the_parent_departments_manager_SEC_19(org: Org):
    """KYUYO sits under SOMU. A second KYUYO protection manager is the person the record is about: their
    attempt is refused and the step moves up to SOMU's protection manager (the superior), recorded; the
    other KYUYO manager can then no longer decide it."""
    hogo, admin = org.inst.hogo, org.admin
    accounts.create_department(hogo, admin, code="SOMU", name="総務課", ctx=CTX)
    with hogo.unit_of_work() as db:
        from hogo.store.models import Department

        kyuyo = db.scalar(select(Department).where(Department.code == "KYUYO"))
        somu = db.scalar(select(Department).where(Department.code == "SOMU"))
        assert kyuyo is not None and somu is not None
        kyuyo.parent_id = somu.id
    org.secrets["pm.kato"] = active_user(org.inst, admin, "pm.kato", ["protection_manager"], "KYUYO")
    org.secrets["pm.somu"] = active_user(org.inst, admin, "pm.somu", ["protection_manager"], "SOMU")
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME}, reason="誤記",
                                         purpose=P1, ctx=CTX, subject_user="pm.kato")
    assert (req.steps[0].role, req.steps[0].department) == ("protection_manager", "KYUYO")  # takahashi is free
    with pytest.raises(Forbidden) as e:
        approvals.decide(hogo, org.p("pm.kato"), req.id, approve=True, reason=None, ctx=CTX)
    assert e.value.code == "conflicted" and e.value.details["escalated_to"] == ["protection_manager@SOMU"]
    now = approvals.get_request(hogo, org.p("pm.somu"), req.id)
    assert (now.steps[0].role, now.steps[0].department) == ("protection_manager", "SOMU") and now.can_decide
    with pytest.raises(Forbidden) as e:
        approvals.decide(hogo, org.p("pm.takahashi"), req.id, approve=True, reason=None, ctx=CTX)
    assert e.value.code == "not_an_approver"
    assert approvals.decide(hogo, org.p("pm.somu"), req.id, approve=True, reason=None, ctx=CTX).status == "applied"
    (esc,) = entries(org, Event.APPROVAL_ESCALATED.value)
    assert esc.actor_name == "pm.kato" and esc.reason == "subject"
    assert esc.details is not None and esc.details["to"] == "protection_manager@SOMU"


def test_rejection_needs_a_reason_and_discards_the_proposed_values_SEC_19(org: Org):
    hogo = org.inst.hogo
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME}, reason="誤記",
                                         purpose=P1, ctx=CTX)
    pm = org.p("pm.takahashi")
    with pytest.raises(ValidationFailed) as e:
        approvals.decide(hogo, pm, req.id, approve=False, reason="  ", ctx=CTX)
    assert e.value.field == "reason"
    done = approvals.decide(hogo, pm, req.id, approve=False, reason="根拠資料がない", ctx=CTX)
    assert done.status == "rejected" and done.steps[0].decision is not None
    assert done.steps[0].decision.reason == "根拠資料がない"
    with hogo.unit_of_work() as db:
        assert db.get(ApprovalRequest, req.id).payload is None  # type: ignore[union-attr]
    with pytest.raises(Conflict) as c:
        approvals.decide(hogo, pm, req.id, approve=True, reason=None, ctx=CTX)
    assert c.value.code == "approval_not_pending"
    assert guard.read_record(hogo, org.p("clerk.ito"), FILE, rid, purpose=P1, ctx=CTX).values["name"] == "伊藤 翔"


def test_a_record_changed_since_the_request_is_not_overwritten_ANON_8(org: Org):
    hogo = org.inst.hogo
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME}, reason="誤記",
                                         purpose=P1, ctx=CTX)
    guard.update_record(hogo, org.p("clerk.ito"), FILE, rid, {"phone": "03-1234-5678"}, purpose=P1, ctx=CTX)
    with pytest.raises(Conflict) as e:
        approvals.decide(hogo, org.p("pm.takahashi"), req.id, approve=True, reason=None, ctx=CTX)
    assert e.value.code == "revision_conflict" and e.value.details == {"base_revision": 1, "revision": 2}
    got = approvals.get_request(hogo, org.p("clerk.ito"), req.id)
    assert got.status == "failed" and got.outcome is not None and got.outcome["error"] == "revision_conflict"
    rec = guard.read_record(hogo, org.p("clerk.ito"), FILE, rid, purpose=P1, ctx=CTX)
    assert rec.values["name"] == "伊藤 翔" and rec.revision == 2
    assert [e.reason for e in entries(org, Event.APPROVAL_FAILED.value)] == ["revision_conflict"]


def test_requester_needs_read_access_and_the_values_pass_the_field_rules_ANON_8_SEC_45(org: Org):
    hogo = org.inst.hogo
    rid = record(org)
    with pytest.raises(Forbidden) as e:  # no grant at all
        corrections.request_correction(hogo, org.p("clerk.tanaka"), FILE, rid, {"name": NEW_NAME}, reason="誤記",
                                       purpose=P1, ctx=CTX)
    assert e.value.code == "denied_no_grant"
    grant(org, "clerk.tanaka", actions=("read",), fields=["employee_no", "name"])
    with pytest.raises(Forbidden) as e:  # a field they cannot read
        corrections.request_correction(hogo, org.p("clerk.tanaka"), FILE, rid, {"birth_date": "1991-01-01"},
                                       reason="誤記", purpose=P1, ctx=CTX)
    assert e.value.code == "denied_field_not_granted"
    with pytest.raises(ValidationFailed) as v:  # a My Number with a wrong check digit
        corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"my_number": "123456789012"},
                                       reason="誤記", purpose=P1, ctx=CTX)
    assert v.value.field == "my_number" and "123456789012" not in v.value.message
    with pytest.raises(ValidationFailed):  # a required field cannot be cleared
        corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": ""}, reason="誤記",
                                       purpose=P1, ctx=CTX)
    with pytest.raises(ValidationFailed):  # the reason is required
        corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME}, reason=" ",
                                       purpose=P1, ctx=CTX)
    denied = [e for e in entries(org, Event.RECORD_CORRECTED.value)]
    assert [e.outcome for e in denied] == ["denied", "denied"]
    with hogo.unit_of_work() as db:
        assert db.scalar(select(ApprovalRequest.id)) is None


def test_requests_are_visible_to_requester_approvers_and_auditors_only_SEC_19(org: Org):
    hogo = org.inst.hogo
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME}, reason="誤記",
                                         purpose=P1, ctx=CTX)
    for who in ("clerk.ito", "pm.takahashi", "auditor.watanabe"):
        assert [r.id for r in approvals.list_requests(hogo, org.p(who))] == [req.id], who
    assert approvals.list_requests(hogo, org.p("clerk.tanaka")) == []
    with pytest.raises(Exception) as e:
        approvals.get_request(hogo, org.p("clerk.tanaka"), req.id)
    assert getattr(e.value, "code", None) == "approval_not_found"
    # The requester may withdraw it while pending; nobody else may.
    with pytest.raises(Forbidden):
        approvals.cancel(hogo, org.p("pm.takahashi"), req.id, reason=None, ctx=CTX)
    assert approvals.cancel(hogo, org.p("clerk.ito"), req.id, reason=None, ctx=CTX).status == "cancelled"
    assert approvals.list_requests(hogo, org.p("clerk.ito")) == []
    assert [r.status for r in approvals.list_requests(hogo, org.p("clerk.ito"), status="all")] == ["cancelled"]


def test_a_corrected_integrity_2_record_verifies_against_the_signed_log_ANON_8_SEC_133(org: Org):
    """The payroll file is of integrity 2: the correction's log entry carries the new stored version's hash,
    so ``record verify`` proves the corrected record (SEC-133(2))."""
    hogo = org.inst.hogo
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME}, reason="誤記",
                                         purpose=P1, ctx=CTX)
    approvals.decide(hogo, org.p("pm.takahashi"), req.id, approve=True, reason=None, ctx=CTX)
    report = integrity.verify_record(hogo, org.p("clerk.ito"), FILE, rid, purpose=P1, ctx=CTX)
    assert report.ok and report.event == Event.RECORD_CORRECTED.value and report.logged_revision == 2


def test_requester_and_approver_see_before_and_after_others_do_not_ANON_8(org: Org):
    """The protection manager judges a correction by its values: before and after, for the corrected fields
    only, My Numbers masked; the read is logged. The auditor and other clerks see fields, not values."""
    hogo = org.inst.hogo
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid,
                                         {"name": NEW_NAME, "my_number": "987654321018"}, reason="誤記",
                                         purpose=P1, ctx=CTX)
    pending = guard.correction_changes(hogo, org.p("pm.takahashi"), req.id, ctx=CTX)
    assert pending.before == {"name": "伊藤 翔", "my_number": "********9018"}
    assert pending.after == {"name": NEW_NAME, "my_number": "********1018"}
    assert pending.revision_before == 1 and pending.revision_after is None and pending.masked == ("my_number",)
    for who in ("auditor.watanabe", "clerk.tanaka"):
        with pytest.raises(Forbidden):
            guard.correction_changes(hogo, org.p(who), req.id, ctx=CTX)
    approvals.decide(hogo, org.p("pm.takahashi"), req.id, approve=True, reason=None, ctx=CTX)
    guard.update_record(hogo, org.p("clerk.ito"), FILE, rid, {"name": "別人"}, purpose=P1, ctx=CTX)
    applied = guard.correction_changes(hogo, org.p("clerk.ito"), req.id, ctx=CTX)
    assert applied.before["name"] == "伊藤 翔" and applied.after is not None and applied.after["name"] == NEW_NAME
    assert (applied.revision_before, applied.revision_after) == (1, 2)
    reads = [e for e in entries(org, Event.RECORD_READ.value) if (e.details or {}).get("correction") == req.id]
    assert [e.actor_name for e in reads] == ["pm.takahashi", "clerk.ito"]


def test_an_approval_whose_application_is_refused_for_a_passing_reason_stays_approved_and_is_retried_ANON_8(
        org: Org):
    """An approver's API token without the data-write scope cannot apply the correction: the request stays
    approved (not failed) and the approver applies it later from a session (SEC-19: only an approver)."""
    hogo = org.inst.hogo
    rid = record(org)
    req = corrections.request_correction(hogo, org.p("clerk.ito"), FILE, rid, {"name": NEW_NAME}, reason="誤記",
                                         purpose=P1, ctx=CTX)
    scoped = dataclasses.replace(org.p("pm.takahashi"), scopes=frozenset({"self:account:read", "self:account:write"}))
    with pytest.raises(Forbidden):
        approvals.decide(hogo, scoped, req.id, approve=True, reason=None, ctx=CTX)
    assert approvals.get_request(hogo, org.p("clerk.ito"), req.id).status == "approved"
    with pytest.raises(Forbidden):  # the requester is no approver
        guard.apply_correction(hogo, org.p("clerk.ito"), req.id, ctx=CTX)
    assert approvals.retry(hogo, org.p("pm.takahashi"), req.id, ctx=CTX).status == "applied"
    with pytest.raises(Conflict):
        approvals.retry(hogo, org.p("pm.takahashi"), req.id, ctx=CTX)


def test_a_kind_needing_two_approvers_gets_two_different_people_SEC_19(org: Org):
    """A kind may need several approver levels (a confidentiality-3 take-out will need the information-
    security officer and the manager, SEC-47(2), SEC-48(3)): each step needs its own approver; one person
    holding both levels decides only one of them."""
    hogo = org.inst.hogo
    approvals.register_kind(approvals.Kind("test-two-step", "二段階の試験", "two-step test"))
    org.secrets["pm.both"] = active_user(org.inst, org.admin, "pm.both",
                                         ["protection_manager", "general_protection_manager"], "KYUYO")
    with hogo.unit_of_work() as db:
        r = approvals.create(db, hogo, org.p("clerk.ito"), kind="test-two-step", reason="試験", ctx=CTX,
                             steps=[approvals.Level("protection_manager", "KYUYO"),
                                    approvals.Level("general_protection_manager")])
        request_id = r.id
    first = approvals.decide(hogo, org.p("pm.both"), request_id, approve=True, reason=None, ctx=CTX)
    assert first.status == "pending" and first.steps[0].decision is not None and first.steps[1].decision is None
    with pytest.raises(Forbidden) as e:
        approvals.decide(hogo, org.p("pm.both"), request_id, approve=True, reason=None, ctx=CTX)
    assert e.value.code == "already_decided"
    done = approvals.decide(hogo, org.p("gpm.sato"), request_id, approve=True, reason=None, ctx=CTX)
    assert done.status == "approved"  # a kind without an apply step ends approved
    assert [s.decision.approver for s in done.steps if s.decision] == ["pm.both", "gpm.sato"]
