"""Guarded bulk export and take-out packages on real SQLite and PostgreSQL: SEC-46(1)(2), SEC-47, SEC-48(1)(2),
SEC-49, MN-5c, MN-6d, ANON-7, MN-6a, SEC-5 table 1."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import select

from hogo.crypto import package as pkg
from hogo.domain.events import Event, Outcome
from hogo.domain.handling import Use
from hogo.errors import Forbidden, ValidationFailed
from hogo.services import analysis, files, grants, guard, packages
from hogo.store.models import AuditEvent
from support import CTX, Instance, Org, make_org, payroll_spec

P1 = "源泉徴収票作成事務"
MN = "123456789018"
OPEN = "staff-open"  # C2, no restrictions: plain export allowed
SECRET = "staff-secret"  # C3: encryption required (SEC-48(2)): package only
LOCKED = "payroll-mynumber"  # C3, no_copy, no_take_out
PUBLIC = "staff-public"  # C1: may be published


def _define(org: Org, code: str, confidentiality: int, restrictions: list[str]) -> None:
    spec = payroll_spec()
    spec.update(code=code, classification={"confidentiality": confidentiality, "integrity": 1, "availability": 1},
                restrictions=restrictions)
    if confidentiality < 3:  # not a My Number file: an identification code held as text, masked all the same
        spec["kind"] = "personal_information"
        spec["fields"] = [{**f, "type": "text", "sensitivity": "individual_identification_code"}
                          if f["name"] == "my_number" else f for f in spec["fields"]]
    files.create_file(org.inst.hogo, org.p("pm.takahashi"), spec, ctx=CTX)


def _grant(org: Org, code: str, who: str = "clerk.ito", actions=("create", "export"), **kw):
    return grants.create_grant(org.inst.hogo, org.p("pm.takahashi"), code, user=who, actions=list(actions),
                               purposes=[P1], ctx=CTX, **kw)


def _people(n: int, dept: str = "KYUYO") -> list[dict[str, str]]:
    return [{"employee_no": f"E{i:04d}", "name": f"社員 {i}", "my_number": MN, "department": dept}
            for i in range(n)]


def _fill(org: Org, code: str, rows: list[dict[str, str]]) -> None:
    body = io.StringIO()
    w = csv.DictWriter(body, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    report = guard.import_records(org.inst.hogo, org.p("clerk.ito"), code, io.BytesIO(body.getvalue().encode()),
                                  purpose=P1, ctx=CTX)
    assert report.imported == len(rows)


@pytest.fixture
def org(inst: Instance) -> Org:
    o = make_org(inst)
    _define(o, OPEN, 2, [])
    _define(o, SECRET, 3, [])
    _define(o, PUBLIC, 1, [])
    return o


def _entries(org: Org, event: str = Event.RECORDS_EXPORTED.value) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.seq)))


def _payload(e: AuditEvent) -> dict:
    return json.loads(e.entry.decode().split(" ", 2)[2]) if isinstance(e.entry, bytes) else json.loads(
        e.entry.split(" ", 2)[2])


def test_export_needs_an_export_grant_and_the_denial_is_logged_ANON_7(org: Org):
    """ANON-7, SEC-131: reading is not exporting — without an export grant the export is refused and recorded."""
    _grant(org, OPEN, actions=("create", "read"))
    _fill(org, OPEN, _people(3))
    with pytest.raises(Forbidden) as e:
        guard.export_records(org.inst.hogo, org.p("clerk.ito"), OPEN, fields=["name"], purpose=P1, ctx=CTX)
    assert e.value.code == "denied_action_not_granted"
    [entry] = _entries(org)
    assert entry.outcome == Outcome.DENIED.value


def test_one_access_entry_lists_every_record_before_values_flow_and_codes_stay_masked_MN_6a(org: Org):
    """ANON-7, MN-6a: one entry with every exported record ID is committed before the first row is decrypted;
    My Numbers are masked unless a reveal grant covers them and the caller asked to reveal."""
    _grant(org, OPEN)
    _fill(org, OPEN, _people(2500))
    hogo = org.inst.hogo
    stream = guard.export_records(hogo, org.p("clerk.ito"), OPEN, fields=["employee_no", "my_number"], purpose=P1,
                                  ctx=CTX)
    [entry] = _entries(org)  # on record before any row was produced
    assert entry.outcome == "success" and entry.record_count == 2500
    body = _payload(entry)
    assert set(body["records"]) == set(stream.record_ids) and len(stream.record_ids) == 2500
    assert body["details"]["use"] == "export" and body["fields"] == ["employee_no", "my_number"]
    # Decrypted a batch at a time: each batch is one fetch, and nothing is read before the consumer asks.
    fetches = 0
    real = hogo.unit_of_work

    def counting(*a, **kw):
        nonlocal fetches
        fetches += 1
        return real(*a, **kw)

    hogo.unit_of_work = counting  # type: ignore[method-assign]
    try:
        it = stream.rows(batch=700)
        assert fetches == 0
        first = next(it)
        assert fetches == 1 and stream.exported == 1
        rows = [first, *it]
    finally:
        del hogo.unit_of_work
    assert fetches == 4  # 2500 records in batches of 700
    assert len(rows) == 2500 and stream.exported == 2500
    assert {r[2] for r in rows} == {"********9018"} and stream.masked == ("my_number",)
    # Reveal needs a reveal grant …
    with pytest.raises(Forbidden) as e:
        guard.export_records(hogo, org.p("clerk.ito"), OPEN, fields=["my_number"], purpose=P1, reveal=["my_number"],
                             ctx=CTX)
    assert e.value.code == "denied_action_not_granted"
    _grant(org, OPEN, actions=("reveal",), fields=["my_number"])
    shown = guard.export_records(hogo, org.p("clerk.ito"), OPEN, fields=["my_number"], purpose=P1,
                                 reveal=["my_number"], ctx=CTX)
    assert {r[1] for r in shown.rows()} == {MN} and shown.masked == ()


def test_selection_by_ids_where_and_scope_MN_6a(org: Org):
    _grant(org, OPEN, actions=("create",))
    _grant(org, OPEN, who="clerk.tanaka", actions=("export",), segments=["$own_department"])
    _fill(org, OPEN, _people(5) + [{**p, "employee_no": "J" + p["employee_no"]} for p in _people(3, "JINJI")])
    hogo, tanaka = org.inst.hogo, org.p("clerk.tanaka")  # in JINJI
    everything = guard.export_records(hogo, tanaka, OPEN, fields=["employee_no"], purpose=P1, ctx=CTX)
    assert sorted(r[1] for r in everything.rows()) == ["JE0000", "JE0001", "JE0002"]
    one = guard.export_records(hogo, tanaka, OPEN, fields=["employee_no"], purpose=P1,
                               selection={"employee_no": "JE0001"}, ctx=CTX)
    assert [r[1] for r in one.rows()] == ["JE0001"]
    with pytest.raises(Forbidden) as e:  # an explicit record outside scope refuses the export
        guard.export_records(hogo, tanaka, OPEN, fields=["employee_no"], purpose=P1,
                             selection=[*everything.record_ids, "no-such-record"], ctx=CTX)
    assert e.value.code == "denied_record_out_of_scope"
    with pytest.raises(ValidationFailed):
        guard.export_records(hogo, tanaka, OPEN, fields=["nope"], purpose=P1, ctx=CTX)


def test_marks_refuse_copies_and_the_refusal_is_logged_with_its_reason_SEC_47_SEC_48(org: Org):
    """SEC-47, SEC-48(2), SEC-5 table 1: no-copy refuses every copy; confidentiality 3 (encryption required)
    refuses a plain export with "use a package", in Japanese and English; publishing is only for C1."""
    hogo = org.inst.hogo
    for code in (LOCKED, SECRET, PUBLIC, OPEN):
        _grant(org, code)
    with pytest.raises(guard.ExportRefused) as e:
        guard.export_records(hogo, org.p("clerk.ito"), LOCKED, fields=["name"], purpose=P1, ctx=CTX)
    assert e.value.code == "export_restricted" and "複製禁止" in e.value.message and "no-copy" in e.value.message
    with pytest.raises(guard.ExportRefused) as e:
        guard.export_records(hogo, org.p("clerk.ito"), SECRET, fields=["name"], purpose=P1, ctx=CTX)
    assert "use a take-out package" in e.value.message and "暗号化必須" in e.value.message
    assert e.value.details["refusals"][0]["restriction"] == "encryption_required"
    # … while an encrypted package of the C3 file is allowed
    guard.export_records(hogo, org.p("clerk.ito"), SECRET, fields=["name"], purpose=P1, use=Use.PACKAGE,
                         encrypted=True, ctx=CTX)
    with pytest.raises(guard.ExportRefused) as e:  # SEC-48(1): publish only confidentiality 1
        guard.export_records(hogo, org.p("clerk.ito"), OPEN, fields=["name"], purpose=P1, use=Use.PUBLISH, ctx=CTX)
    assert e.value.requirement == "SEC-48"
    guard.export_records(hogo, org.p("clerk.ito"), PUBLIC, fields=["name"], purpose=P1, use=Use.PUBLISH, ctx=CTX)
    denied = [(e, _payload(e)) for e in _entries(org) if e.outcome == "denied"]
    assert len(denied) == 3
    assert all(p["reason"] == "restricted" and p["details"]["refusals"] for _, p in denied)
    assert denied[0][1]["details"]["marks"].startswith("C3-I2-A1")


def test_build_package_round_trip_with_marks_and_tracking_SEC_49_MN_5c_MN_6d(org: Org, tmp_path):
    """SEC-49, MN-5c, MN-6d, SEC-46(1): a package of a C3 file is encrypted for the recipient, carries its marks
    and tracking ID in the signed manifest, is recorded with its tracking ID, and opens to the exported rows."""
    _grant(org, SECRET)
    _fill(org, SECRET, _people(1200))
    idfile = tmp_path / "recipient.key"
    public = pkg.write_identity(idfile)
    hogo = org.inst.hogo
    info = packages.build_package(hogo, org.p("clerk.ito"), SECRET, fields=["employee_no", "name", "my_number"],
                                  selection=None, purpose=P1, recipient=public, out_path=tmp_path / "out.hogopkg",
                                  takeout_id=7, due=dt.date(2026, 5, 1), ctx=CTX)
    assert info.record_count == 1200 and info.marks.classification.confidentiality == 3
    assert info.path.stat().st_size == info.size and not list(tmp_path.glob(".*part"))
    [entry] = _entries(org)
    body = _payload(entry)
    assert body["details"]["package"] == info.tracking_id and body["details"]["use"] == "package"
    assert body["details"]["takeout"] == 7 and entry.record_count == 1200
    v = pkg.verify_package(info.path, info.verifier_key)
    assert v.manifest["tracking_id"] == info.tracking_id and v.manifest["marks"]["label"].startswith("C3")
    assert "暗号化必須" in v.manifest["marks_label"] and v.manifest["due"] == "2026-05-01"
    assert v.manifest["takeout_id"] == 7 and v.manifest["created_by"] == "clerk.ito"
    opened = pkg.open_package(info.path, public_key_text=info.verifier_key, out_dir=tmp_path / "opened",
                              identity=pkg.load_identity(idfile.read_bytes()))
    rows = list(csv.reader(io.StringIO(opened.data_path.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["record_id", "employee_no", "name", "my_number"] and len(rows) == 1201
    assert {r[3] for r in rows[1:]} == {"********9018"}
    with pytest.raises(ValidationFailed):  # never overwritten
        packages.build_package(hogo, org.p("clerk.ito"), SECRET, fields=["name"], selection=None, purpose=P1,
                               recipient=public, out_path=info.path, ctx=CTX)


def test_package_refused_by_no_take_out_and_open_once_disposes_SEC_47(org: Org, tmp_path):
    """SEC-47: no-copy / no-take-out refuse a package; destroy-after-reading marks make it open once."""
    _grant(org, LOCKED)
    with pytest.raises(guard.ExportRefused) as e:
        packages.build_package(org.inst.hogo, org.p("clerk.ito"), LOCKED, fields=["name"], selection=None,
                               purpose=P1, recipient="a passphrase long enough", out_path=tmp_path / "x", ctx=CTX)
    assert "持出禁止" in e.value.message and not (tmp_path / "x").exists()
    _define(org, "staff-once", 2, ["destroy_after_reading"])
    _grant(org, "staff-once")
    _fill(org, "staff-once", _people(3))
    info = packages.build_package(org.inst.hogo, org.p("clerk.ito"), "staff-once", fields=["name"], selection=None,
                                  purpose=P1, recipient="a passphrase long enough", out_path=tmp_path / "o.hogopkg",
                                  ctx=CTX)
    assert info.manifest["open_once"] is True
    opened = pkg.open_package(info.path, public_key_text=info.verifier_key, out_dir=tmp_path / "d",
                              passphrase="a passphrase long enough")
    assert opened.disposed and not info.path.exists()


def test_exports_count_toward_the_bulk_export_alert_MN_3b(org: Org):
    """MN-3b, ANON-13: the export entry is what the exports rule counts (records and operations)."""
    _grant(org, OPEN)
    _fill(org, OPEN, _people(60))
    guard.export_records(org.inst.hogo, org.p("clerk.ito"), OPEN, fields=["name"], purpose=P1, ctx=CTX)
    sections = {r: {"enabled": False} for r in analysis.RULES}
    sections["exports"] = {"enabled": True, "window_minutes": 1440, "max_records": 50, "max_exports": 10}
    cfg = analysis.Config(1, analysis.validate(sections))
    now = org.inst.hogo.clock.now()
    with org.inst.hogo.unit_of_work(readonly=True) as db:
        found = analysis.evaluate(db, new_from=now - dt.timedelta(hours=1), new_until=now + dt.timedelta(hours=1),
                                  config=cfg, tz_name="Asia/Tokyo")
    assert [f.subject_name for f in found if f.rule == "exports"] == ["clerk.ito"]


def test_export_over_http_streams_the_csv_with_its_marks_and_refuses_before_any_data_SEC_46_SEC_47(
        client, org: Org):
    """SEC-46(1): the marks travel with the CSV (X-Hogo-Marks); SEC-47: a refused export is a 403 with the
    reasons, and no package can be made over the API (only an approved take-out makes one)."""
    from urllib.parse import quote

    from support import bearer

    _grant(org, OPEN)
    _grant(org, SECRET)
    _fill(org, OPEN, _people(5))
    h = {**bearer(org.token("clerk.ito")), "X-Hogo-Purpose": quote(P1)}
    r = client.post(f"/api/v1/files/{OPEN}/records/export", headers=h,
                    json={"fields": ["employee_no", "my_number"], "encoding": "utf-8-bom"})
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"\xef\xbb\xbf") and r.headers["x-hogo-record-count"] == "5"
    marks = json.loads(r.headers["x-hogo-marks"])
    assert marks["label"] == "C2-I1-A1" and marks["label_ja"].startswith("機密性2情報")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 6 and rows[1][2] == "********9018"
    r = client.post(f"/api/v1/files/{SECRET}/records/export", headers=h, json={"fields": ["name"]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "export_restricted"
    assert "use a take-out package" in r.json()["error"]["message"]
    paths = {getattr(route, "path", "") for route in client.app.routes}
    assert not any("package" in p for p in paths)
