"""Take-outs and provisions with approval, and the take-out register, on real SQLite and PostgreSQL:
SEC-47(2) and SEC-48(3) (confidentiality 3 needs the information-security officer and the manager), SEC-48(2)
(provision outside the viewing scope), SEC-49 / MN-5c / MN-6d (encrypted, tracked transport with a due date),
ANON-7 (only what the manager allows), ANON-22 / SEC-145 / SEC-147 (media of integrity-2 information), SEC-19
(the requester never decides; conflicts escalate), SEC-26..27 (emergency take-outs reported afterwards)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hogo.config import Settings
from hogo.crypto import package as pkg
from hogo.domain.events import Event
from hogo.errors import Conflict, Forbidden, ValidationFailed
from hogo.services import approvals, files, grants, guard, takeouts
from hogo.services.background import BackgroundJobs
from hogo.store.models import Alert, AuditEvent
from support import CTX, Instance, Org, active_user, bearer, make_org, payroll_spec

C3 = "payroll-takeout"
C2 = "kyuyo-contacts"
P1 = "源泉徴収票作成事務"
PASS = "kusunoki-no-ki-no-shita-de"
ROWS = [
    {"employee_no": f"E{i:04d}", "name": f"社員 {i}", "my_number": "123456789018", "department": "KYUYO"}
    for i in range(1, 4)
]


def _spec(code: str, confidentiality: int, integrity: int, restrictions: list[str]) -> dict[str, Any]:
    s = payroll_spec()
    s.update(code=code, classification={"confidentiality": confidentiality, "integrity": integrity,
                                        "availability": 1}, restrictions=restrictions)
    if confidentiality < 3:  # no My Numbers below confidentiality 3
        s["kind"] = "personal_information"
        s["fields"] = [f for f in s["fields"] if f["name"] != "my_number"]
    return s


def _row(code: str, row: dict[str, str]) -> dict[str, str]:
    return row if code == C3 else {k: v for k, v in row.items() if k != "my_number"}


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    o.secrets["gpm.sato"] = active_user(inst, o.admin, "gpm.sato", ["general_protection_manager"])
    o.secrets["iso.kimura"] = active_user(inst, o.admin, "iso.kimura", ["information_security_officer"])
    pm = o.p("pm.takahashi")
    files.create_file(inst.hogo, pm, _spec(C3, 3, 2, []), ctx=CTX)
    files.create_file(inst.hogo, pm, _spec(C2, 2, 1, []), ctx=CTX)
    for code in (C3, C2):
        grants.create_grant(inst.hogo, pm, code, user="clerk.ito", actions=["read", "create", "export"],
                            purposes=[P1], ctx=CTX)
        for row in ROWS:
            guard.create_record(inst.hogo, o.p("clerk.ito"), code, _row(code, row), purpose=P1, ctx=CTX)
    return o


def _verifier(org: Org) -> str:
    from hogo.services import audit_tree

    return str(audit_tree.log_key(org.inst.hogo).verifier_key)


def _due(org: Org, days: int = 7) -> dt.date:
    return (org.inst.clock.now() + dt.timedelta(days=days)).date()


def _request(org: Org, code: str = C3, who: str = "clerk.ito", **kw: Any) -> takeouts.TakeoutView:
    args: dict[str, Any] = dict(fields=["employee_no", "name"], purpose=P1, recipient="税理士法人 みなと",
                                destination="みなと事務所（東京都港区）", transport="download", due=_due(org),
                                passphrase=True, ctx=CTX)
    args.update(kw)
    return takeouts.request_takeout(org.inst.hogo, org.p(who), code, **args)


def _entries(org: Org, prefix: str) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event.startswith(prefix))
                               .order_by(AuditEvent.seq)))


def _approve(org: Org, who: str, t: takeouts.TakeoutView) -> approvals.RequestView:
    return approvals.decide(org.inst.hogo, org.p(who), t.request_id, approve=True, reason=None, ctx=CTX)


def _download(org: Org, t: takeouts.TakeoutView, tmp: Path, who: str = "clerk.ito",
              passphrase: str | None = PASS) -> takeouts.Downloaded:
    return takeouts.download(org.inst.hogo, org.p(who), t.id, out_path=tmp / f"t{t.id}.hogopkg",
                             passphrase=passphrase, ctx=CTX)


def test_confidentiality_3_needs_the_security_officer_and_the_manager_SEC_47_SEC_48(org: Org, tmp_path: Path):
    """SEC-47(2), SEC-48(3): a C3 take-out waits for both the information-security officer and the
    protection manager; one approval is not enough to download."""
    hogo = org.inst.hogo
    t = _request(org)
    assert t.status == "requested" and t.approval_status == "pending"
    assert t.due_date == _due(org).isoformat()  # the day as written, though due_at is the instant after it
    assert [s.required_role for s in t.steps] == ["protection_manager", "information_security_officer"]
    req = approvals.get_request(hogo, org.p("iso.kimura"), t.request_id)
    assert req.kind == "takeout" and req.can_decide and req.details is not None
    assert req.details["transport"] == "download" and req.details["recipient"] == "税理士法人 みなと"
    _approve(org, "pm.takahashi", t)
    with pytest.raises(Conflict) as e:
        _download(org, t, tmp_path)
    assert e.value.code == "takeout_not_approved"
    assert not (tmp_path / f"t{t.id}.hogopkg").exists()
    done = _approve(org, "iso.kimura", t)
    assert done.status == "applied"
    got = takeouts.get_takeout(hogo, org.p("clerk.ito"), t.id)
    assert got.status == "approved" and got.can_download
    d = _download(org, t, tmp_path)
    assert d.path.exists() and d.takeout.status == "taken_out" and d.records == len(ROWS)
    # The package verifies against hogo's log key, names the take-out and opens with the passphrase.
    key = _verifier(org)
    v = pkg.verify_package(d.path, key)
    assert v.manifest["takeout_id"] == t.id and v.manifest["tracking_id"] == d.package_id
    opened = pkg.open_package(d.path, public_key_text=key, out_dir=tmp_path / "opened", passphrase=PASS)
    rows = list(csv.reader(io.StringIO(opened.data_path.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["record_id", "employee_no", "name"] and len(rows) - 1 == d.records
    (taken,) = [e for e in _entries(org, Event.TAKEOUT_TAKEN_OUT.value) if e.outcome == "success"]
    assert taken.details is not None and taken.details["takeout"] == t.id and taken.details["records"] == len(ROWS)
    kinds = [e.event for e in _entries(org, "takeout:")]
    assert kinds[0] == Event.TAKEOUT_REQUESTED.value and Event.TAKEOUT_APPROVED.value in kinds


def test_confidentiality_2_needs_the_manager_only_SEC_48_ANON_7(org: Org, tmp_path: Path):
    t = _request(org, C2)
    assert [s.required_role for s in t.steps] == ["protection_manager"]
    assert _approve(org, "pm.takahashi", t).status == "applied"
    assert _download(org, t, tmp_path).takeout.status == "taken_out"


def test_integrity_2_on_media_also_needs_the_security_officer_SEC_145_SEC_147_ANON_22(org: Org):
    """Carrying integrity-2 information out on a medium needs the information-security officer too, and
    the medium is named (MN-6d: tracked transport)."""
    hogo = org.inst.hogo
    pm = org.p("pm.takahashi")
    files.create_file(hogo, pm, _spec("kyuyo-i2", 2, 2, []), ctx=CTX)
    grants.create_grant(hogo, pm, "kyuyo-i2", user="clerk.ito", actions=["export"], purposes=[P1], ctx=CTX)
    with pytest.raises(ValidationFailed) as e:
        _request(org, "kyuyo-i2", transport="media")
    assert e.value.details["field"] == "media_id"
    t = _request(org, "kyuyo-i2", transport="media", media_id="USB-0042")
    assert [s.required_role for s in t.steps] == ["protection_manager", "information_security_officer"]
    assert t.media_id == "USB-0042"
    t2 = _request(org, "kyuyo-i2", transport="transmission")
    assert [s.required_role for s in t2.steps] == ["protection_manager"]


def test_requester_cannot_approve_own_request_and_a_conflicted_approver_escalates_SEC_19(org: Org):
    hogo = org.inst.hogo
    # The security officer also holds a grant and asks for a take-out: their step goes to the general
    # protection manager at once, and they cannot decide their own request.
    grants.create_grant(hogo, org.p("pm.takahashi"), C3, user="iso.kimura", actions=["export"], purposes=[P1],
                        ctx=CTX)
    t = _request(org, who="iso.kimura")
    iso_step = t.steps[1]
    assert iso_step.required_role == "information_security_officer"
    assert iso_step.role == "general_protection_manager" and iso_step.escalations[0]["cause"] == "requester"
    with pytest.raises(Forbidden) as e:
        _approve(org, "iso.kimura", t)
    assert e.value.code == "own_request" and e.value.requirement == "SEC-19"
    _approve(org, "pm.takahashi", t)
    assert _approve(org, "gpm.sato", t).status == "applied"
    assert takeouts.get_takeout(hogo, org.p("iso.kimura"), t.id).status == "approved"
    # A clerk's own request: the clerk is no approver at all.
    t2 = _request(org)
    with pytest.raises(Forbidden) as e:
        _approve(org, "clerk.ito", t2)
    assert e.value.code == "own_request"


def test_rejected_take_out_cannot_be_downloaded_SEC_47(org: Org, tmp_path: Path):
    hogo = org.inst.hogo
    t = _request(org, C2)
    approvals.decide(hogo, org.p("pm.takahashi"), t.request_id, approve=False, reason="必要性が不明", ctx=CTX)
    got = takeouts.get_takeout(hogo, org.p("clerk.ito"), t.id)
    assert got.status == "rejected" and not got.can_download
    with pytest.raises(Conflict) as e:
        _download(org, t, tmp_path)
    assert e.value.code == "takeout_closed"
    denied = [e for e in _entries(org, Event.TAKEOUT_TAKEN_OUT.value) if e.outcome == "denied"]
    assert [e.reason for e in denied] == ["takeout_closed"]


def test_no_take_out_file_is_refused_at_the_request_with_the_reason_SEC_47(org: Org):
    """The payroll My Number file is marked no-copy and no-take-out: the request is refused, saying so,
    and the refusal is logged; no approval request is made."""
    hogo = org.inst.hogo
    grants.create_grant(hogo, org.p("pm.takahashi"), "payroll-mynumber", user="clerk.ito", actions=["export"],
                        purposes=[P1], ctx=CTX)
    with pytest.raises(Forbidden) as e:
        _request(org, "payroll-mynumber")
    assert e.value.code == "takeout_restricted"
    assert set(e.value.details["restrictions"]) == {"no_copy", "no_take_out"}
    assert "持出禁止" in " ".join(e.value.details["reasons_ja"])
    assert approvals.list_requests(hogo, org.p("clerk.ito"), status="all") == []
    (denied,) = _entries(org, Event.TAKEOUT_REQUESTED.value)
    assert denied.outcome == "denied" and denied.reason == "takeout_restricted"


def test_no_distribution_refuses_a_provision_outside_the_viewing_scope_SEC_48(org: Org):
    hogo = org.inst.hogo
    pm = org.p("pm.takahashi")
    files.create_file(hogo, pm, _spec("kyuyo-nd", 2, 1, ["no_distribution"]), ctx=CTX)
    grants.create_grant(hogo, pm, "kyuyo-nd", user="clerk.ito", actions=["export"], purposes=[P1], ctx=CTX)
    with pytest.raises(Forbidden) as e:
        _request(org, "kyuyo-nd", outside_scope=True)
    assert e.value.details["restrictions"] == ["no_distribution"] and e.value.requirement == "SEC-48"
    assert _request(org, "kyuyo-nd").status == "requested"  # within the viewing scope it may go


def test_the_requester_needs_an_export_grant_for_the_fields_and_purpose_ANON_7(org: Org):
    hogo = org.inst.hogo
    grants.create_grant(hogo, org.p("pm.takahashi"), C2, user="clerk.tanaka", actions=["read"], purposes=[P1],
                        ctx=CTX)
    with pytest.raises(Forbidden) as e:
        _request(org, C2, who="clerk.tanaka")
    assert e.value.code == "action_not_granted"
    with pytest.raises(ValidationFailed):
        _request(org, C2, fields=["salary"])
    with pytest.raises(ValidationFailed):  # the purpose must be one of the file's (SEC-45)
        _request(org, C2, purpose="")


def test_download_before_approval_and_by_others_is_refused_SEC_47(org: Org, tmp_path: Path):
    t = _request(org, C2)
    with pytest.raises(Conflict) as e:
        _download(org, t, tmp_path)
    assert e.value.code == "takeout_not_approved"
    _approve(org, "pm.takahashi", t)
    with pytest.raises(Forbidden) as f:
        _download(org, t, tmp_path, who="pm.takahashi")
    assert f.value.code == "not_requester"
    assert not list(tmp_path.glob("*.hogopkg"))


def test_destroy_after_reading_is_downloaded_once_SEC_47(org: Org, tmp_path: Path):
    hogo = org.inst.hogo
    pm = org.p("pm.takahashi")
    files.create_file(hogo, pm, _spec("kyuyo-once", 2, 1, ["destroy_after_reading"]), ctx=CTX)
    grants.create_grant(hogo, pm, "kyuyo-once", user="clerk.ito", actions=["export"], purposes=[P1], ctx=CTX)
    t = _request(org, "kyuyo-once")
    _approve(org, "pm.takahashi", t)
    _download(org, t, tmp_path)
    with pytest.raises(Conflict) as e:
        _download(org, t, tmp_path)
    assert e.value.code == "downloaded_once"


def test_overdue_job_marks_alerts_and_reminds_SEC_49_MN_6d(org: Org, tmp_path: Path):
    hogo, clock = org.inst.hogo, org.inst.clock
    t = _request(org, C2, due=_due(org, 2))
    never = _request(org, C2, due=_due(org, 2))
    _approve(org, "pm.takahashi", t)
    _approve(org, "pm.takahashi", never)
    _download(org, t, tmp_path)
    assert takeouts.run_overdue(hogo) == takeouts.SweepResult()
    clock.advance(days=4)
    res = takeouts.run_overdue(hogo)
    assert res.overdue == (t.id,) and res.reminded == (t.id,) and res.expired == (never.id,)
    got = takeouts.get_takeout(hogo, org.p("clerk.ito"), t.id)
    assert got.status == "overdue" and got.reminders == 1
    assert takeouts.get_takeout(hogo, org.p("clerk.ito"), never.id).status == "expired"
    with hogo.unit_of_work() as db:
        (alert,) = db.scalars(select(Alert).where(Alert.rule == "takeout_overdue")).all()
        assert alert.subject_name == "clerk.ito" and alert.severity == "high" and alert.params["takeout"] == t.id
    assert takeouts.run_overdue(hogo).reminded == ()  # at most one reminder a day …
    clock.advance(days=1, minutes=1)
    assert takeouts.run_overdue(hogo).reminded == (t.id,)  # … until it is closed
    with hogo.unit_of_work() as db:
        assert len(db.scalars(select(Alert).where(Alert.rule == "takeout_overdue")).all()) == 1
    assert [e.event for e in _entries(org, Event.TAKEOUT_OVERDUE.value)] == [Event.TAKEOUT_OVERDUE.value]
    assert len(_entries(org, Event.TAKEOUT_REMINDED.value)) == 2
    # The server's background loop runs the same job.
    clock.advance(days=1, minutes=1)
    BackgroundJobs(hogo).run_once(force=True)
    assert takeouts.get_takeout(hogo, org.p("clerk.ito"), t.id).reminders == 3


def test_return_and_disposal_are_confirmed_by_someone_other_than_the_taker_SEC_19_SEC_49(org: Org, tmp_path: Path):
    hogo = org.inst.hogo
    t = _request(org, C2)
    _approve(org, "pm.takahashi", t)
    with pytest.raises(Conflict):  # nothing is out yet
        takeouts.close_copy(hogo, org.p("pm.takahashi"), t.id, kind="returned", note=None, ctx=CTX)
    _download(org, t, tmp_path)
    declared = takeouts.close_copy(hogo, org.p("clerk.ito"), t.id, kind="disposed", note="シュレッダー処理",
                                   ctx=CTX)
    assert declared.status == "taken_out" and declared.declared == "disposed"  # the taker only declares
    with pytest.raises(Forbidden) as e:  # a clerk of another department is no confirmer (nor sees it)
        takeouts.close_copy(hogo, org.p("auditor.watanabe"), t.id, kind="disposed", note=None, ctx=CTX)
    assert e.value.code == "not_a_confirmer"
    done = takeouts.close_copy(hogo, org.p("pm.takahashi"), t.id, kind="disposed", note="廃棄証明書を確認", ctx=CTX)
    assert done.status == "disposed" and done.confirmed_by == "pm.takahashi" and done.closed_at is not None
    (c,) = _entries(org, Event.TAKEOUT_CONFIRMED.value)
    assert c.actor_name == "pm.takahashi" and c.details is not None and c.details["declared"] == "disposed"
    with pytest.raises(Conflict):
        takeouts.close_copy(hogo, org.p("pm.takahashi"), t.id, kind="returned", note=None, ctx=CTX)


def test_emergency_take_out_is_flagged_and_must_be_reported_afterwards_SEC_26_SEC_27(
        org: Org, tmp_path: Path, settings: Settings):
    """SEC-26..27: an emergency take-out proceeds only where configured, is flagged, raises an alert, and its
    after-the-fact report can neither be withdrawn nor left undone without an alert."""
    hogo, clock = org.inst.hogo, org.inst.clock
    with pytest.raises(Forbidden) as e:
        _request(org, C2, emergency=True)
    assert e.value.code == "emergency_not_allowed" and e.value.requirement == "SEC-27"
    hogo.settings = settings.with_(takeout_emergency_allowed=True, takeout_emergency_report_days=2)
    t = _request(org, C2, emergency=True)
    assert t.emergency and t.status == "approved" and t.report_status == "pending" and t.can_download
    _download(org, t, tmp_path)
    with pytest.raises(Forbidden) as e2:  # the report cannot be withdrawn
        approvals.cancel(hogo, org.p("clerk.ito"), t.request_id, reason=None, ctx=CTX)
    assert e2.value.code == "report_required"
    with hogo.unit_of_work() as db:
        rules = {a.rule for a in db.scalars(select(Alert))}
    assert rules == {"takeout_emergency"}
    clock.advance(days=3)
    assert takeouts.run_overdue(hogo).reports_overdue == (t.id,)
    assert takeouts.run_overdue(hogo).reports_overdue == ()
    with hogo.unit_of_work() as db:
        assert db.scalar(select(Alert).where(Alert.rule == "takeout_report_overdue")) is not None
    _approve(org, "pm.takahashi", t)
    got = takeouts.get_takeout(hogo, org.p("clerk.ito"), t.id)
    assert got.report_status == "applied" and got.status == "taken_out"
    # A report rejected afterwards raises a high alert: the copy is out without approval.
    t2 = _request(org, C2, emergency=True)
    approvals.decide(hogo, org.p("pm.takahashi"), t2.request_id, approve=False, reason="緊急性なし", ctx=CTX)
    with hogo.unit_of_work() as db:
        rejected = db.scalar(select(Alert).where(Alert.rule == "takeout_report_rejected"))
        assert rejected is not None and rejected.severity == "high" and rejected.params["takeout"] == t2.id


def test_public_key_recipient_and_a_record_selection_SEC_49_MN_5c(org: Org, tmp_path: Path):
    """SEC-49, MN-5c: a take-out for a recipient's public key (hogo package keygen) of the selected records
    only; a key that is not one is refused at the request, and a passphrase is refused for a key recipient."""
    idfile = tmp_path / "recipient.key"
    public = pkg.write_identity(idfile)
    with pytest.raises(ValidationFailed) as e:
        _request(org, C2, passphrase=False, recipient_key="hogo-p256+abc+xyz")
    assert e.value.details["field"] == "recipient_key"
    with pytest.raises(ValidationFailed):  # selections name indexed fields
        _request(org, C2, passphrase=False, recipient_key=public, selection={"where": {"name": "社員 1"}})
    t = _request(org, C2, passphrase=False, recipient_key=public, selection={"where": {"employee_no": "E0002"}})
    assert t.recipient_mode == "public_key" and t.selection == {"where": {"employee_no": "E0002"}}
    _approve(org, "pm.takahashi", t)
    with pytest.raises(ValidationFailed):
        _download(org, t, tmp_path, passphrase=PASS)
    d = _download(org, t, tmp_path, passphrase=None)
    assert d.records == 1
    opened = pkg.open_package(d.path, public_key_text=_verifier(org), out_dir=tmp_path / "o",
                              identity=pkg.load_identity(idfile.read_bytes()))
    rows = list(csv.reader(io.StringIO(opened.data_path.read_text(encoding="utf-8-sig"))))
    assert [r[1:] for r in rows[1:]] == [["E0002", "社員 2"]]


def test_over_the_api_the_passphrase_stays_in_the_body_and_out_of_the_log_SEC_49(client: TestClient, org: Org,
                                                                                tmp_path: Path):
    """SEC-49: the take-out API: request (201), approval through /approvals, download as an attachment with the
    passphrase in the body; the passphrase is in no log entry and the server keeps no copy of the package; the
    export is one guarded access entry naming the take-out (it counts toward the bulk-export alerts)."""
    ito, pm = bearer(org.token("clerk.ito")), bearer(org.token("pm.takahashi"))
    due = _due(org).isoformat()
    body = {"file": C2, "fields": ["employee_no", "name"], "purpose": P1, "recipient": "税理士法人 みなと",
            "passphrase": True, "destination": "みなと事務所", "transport": "transmission", "due": due}
    r = client.post("/api/v1/takeouts", json=body, headers=ito)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["status"] == "requested" and t["steps"][0]["required_role"] == "protection_manager"
    early = client.post(f"/api/v1/takeouts/{t['id']}/download", json={"passphrase": PASS}, headers=ito)
    assert early.status_code == 409 and early.json()["error"]["code"] == "takeout_not_approved"
    assert client.post(f"/api/v1/approvals/{t['request_id']}/approve", headers=pm).json()["status"] == "applied"
    got = client.post(f"/api/v1/takeouts/{t['id']}/download", json={"passphrase": PASS}, headers=ito)
    assert got.status_code == 200 and got.headers["x-hogo-records"] == str(len(ROWS))
    assert got.headers["cache-control"] == "no-store" and got.content.startswith(b"HOGOPKG1")
    assert not list(Path(tempfile.gettempdir()).glob(f"hogo-takeout-*/takeout-{t['id']}.hogopkg"))
    listed = client.get("/api/v1/takeouts?status=all", headers=pm).json()["takeouts"]
    assert [(x["id"], x["status"]) for x in listed] == [(t["id"], "taken_out")]
    with org.inst.hogo.unit_of_work() as db:
        entries = list(db.scalars(select(AuditEvent)))
    assert all(PASS.encode() not in (e.entry or b"") for e in entries)
    exported = [e for e in entries if e.event == "data:record:export" and e.outcome == "success"]
    assert len(exported) == 1 and exported[0].details is not None and exported[0].details["takeout"] == t["id"]
    assert exported[0].record_count == len(ROWS)
