"""The periodic analysis of the access record on real SQLite and PostgreSQL (ANON-12, ANON-13, SEC-132,
MN-6c, MLIT-9.5.8, SEC-135, SEC-84, SEC-19).

Each rule fires on a constructed scenario and stays quiet just below its threshold; runs are idempotent
(re-analysing raises nothing twice) and safe from two processes at once; the thresholds are versioned,
every change is logged and their periodic review is tracked; alerts reach an SMTP server, and a failing
sink never loses one. Log entries are made with ``audit.record`` inside ``Hogo.unit_of_work`` (appended
at commit, like every other entry), at the times each scenario needs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import http.server
import threading
import types
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from hogo.bootstrap import build
from hogo.domain.events import Event, Outcome
from hogo.errors import Forbidden, ValidationFailed
from hogo.services import accounts, alerts, analysis, audit
from hogo.services.audit import RequestContext
from hogo.services.auth import Principal
from hogo.store.models import Alert, AlertEvent, AnalysisRun, AuditEvent, User
from live import free_port
from support import CTX, Instance, active_user, sign_in

JST = dt.timezone(dt.timedelta(hours=9))
TUESDAY = dt.datetime(2026, 4, 7, 10, 0, tzinfo=JST)  # a working day, 10:00 in Tokyo
FILE = "payroll-mynumber"


# ------------------------------------------------------------------------------------ helpers


def record(inst: Instance, entries: Sequence[dict[str, Any]]) -> None:
    """Append log entries through the log's own path (indices, leaf hashes), each at its ``ts``. Event
    names not (yet) in ``Event``, such as exports, are given as strings."""
    with inst.hogo.unit_of_work() as db:
        for e in entries:
            e = dict(e)
            ts = e.pop("ts")
            addr = e.pop("addr", "127.0.0.1")
            event = e.pop("event", Event.RECORD_READ)
            if not isinstance(event, Event):
                event = types.SimpleNamespace(value=event)
            audit.record(db, now=ts, event=event, outcome=e.pop("outcome", Outcome.SUCCESS),
                         ctx=RequestContext(client_addr=addr), **e)


def reads(uid: int | None, name: str | None, start: dt.datetime, n: int, *, every: dt.timedelta = dt.timedelta(
        seconds=30), event: Event = Event.RECORD_READ, persons: Sequence[str] | None = None, per: int = 1,
          outcome: Outcome = Outcome.SUCCESS, **kw: Any) -> list[dict[str, Any]]:
    """``n`` entries by ``uid`` from ``start``, each touching ``per`` persons (distinct unless ``persons``)."""
    out = []
    for i in range(n):
        recs = [persons[(i * per + j) % len(persons)] if persons else f"{name}-{i}-{j}" for j in range(per)]
        out.append({"ts": start + i * every, "event": event, "outcome": outcome, "actor_id": uid, "actor_name": name,
                    "file_code": FILE, "purpose": "源泉徴収票作成事務", "records": recs, **kw})
    return out


def user(inst: Instance, name: str, roles: Sequence[str] = ("clerk",), **kw: Any) -> int:
    admin = inst.admin_principal()
    if "clerk" in roles or "contractor" in roles:
        with contextlib.suppress(Exception):
            accounts.create_department(inst.hogo, admin, code="KYUYO", name="給与厚生課", ctx=CTX)
        kw.setdefault("department", "KYUYO")
    accounts.create_user(inst.hogo, admin, username=name, roles=list(roles), password="Sakura-Kumo-Umi-47", ctx=CTX,
                         **kw)
    with inst.hogo.unit_of_work(readonly=True) as db:
        return int(db.scalar(select(User.id).where(User.username == name)))


def config(**sections: dict[str, Any]) -> analysis.Config:
    return analysis.Config(1, analysis.validate(sections))


def findings(inst: Instance, cfg: analysis.Config, since: dt.datetime, until: dt.datetime,
             rule: str | None = None) -> list[analysis.Finding]:
    with inst.hogo.unit_of_work(readonly=True) as db:
        out = analysis.evaluate(db, new_from=since, new_until=until, config=cfg, tz_name="Asia/Tokyo")
    return [f for f in out if rule is None or f.rule == rule]


def subjects(fs: Sequence[analysis.Finding]) -> set[str | None]:
    return {f.subject_name for f in fs}


def alert_rows(inst: Instance) -> list[Alert]:
    with inst.hogo.unit_of_work(readonly=True) as db:
        return list(db.scalars(select(Alert).order_by(Alert.id)))


def events(inst: Instance, event: Event) -> list[AuditEvent]:
    with inst.hogo.unit_of_work(readonly=True) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event.value).order_by(AuditEvent.seq)))


def people(inst: Instance) -> dict[str, Principal]:
    """A general protection manager, an auditor, a SIRT member and a clerk, signed in."""
    admin = inst.admin_principal()
    accounts.create_department(inst.hogo, admin, code="KANSA", name="監査室", ctx=CTX)
    out = {}
    for name, role in (("gpm.sato", "general_protection_manager"), ("auditor.watanabe", "auditor"),
                       ("sirt.kobayashi", "sirt"), ("clerk.ito", "clerk")):
        secret = active_user(inst, admin, name, [role], "KANSA")
        out[name] = sign_in(inst, name, secret).principal
    return out


def quiet(**keep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every rule off except those given (with their settings)."""
    sections: dict[str, dict[str, Any]] = {r: {"enabled": False} for r in analysis.RULES}
    for rule, values in keep.items():
        sections[rule] = {"enabled": True, **values}
    return sections


# -------------------------------------------------------------------------------------- rules


def test_bulk_download_fires_above_records_or_persons_and_not_at_the_threshold_ANON_13(inst: Instance):
    """ANON-13 (一定数以上の大量ダウンロード警告): more than N records or more than P persons read, searched
    or exported by one user within W minutes is a finding; exactly N records, exactly P persons, or the
    same volume spread over a longer time, are not."""
    ids = {n: user(inst, n) for n in ("rec.over", "rec.at", "per.over", "per.at", "slow")}
    ten, twenty = [f"P{i}" for i in range(10)], [f"P{i}" for i in range(20)]
    t = TUESDAY
    record(inst, reads(ids["rec.over"], "rec.over", t, 6, event=Event.RECORD_SEARCHED, persons=twenty, per=20)
           + reads(ids["rec.at"], "rec.at", t, 5, event=Event.RECORD_SEARCHED, persons=twenty, per=20)
           + reads(ids["per.over"], "per.over", t, 51, every=dt.timedelta(seconds=40))
           + reads(ids["per.at"], "per.at", t, 50, every=dt.timedelta(seconds=40))
           + reads(ids["slow"], "slow", t, 12, every=dt.timedelta(minutes=20), event=Event.RECORD_SEARCHED,
                   persons=ten, per=10))
    cfg = config(bulk={"window_minutes": 60, "max_records": 100, "max_persons": 50})
    found = findings(inst, cfg, t, t + dt.timedelta(hours=5), "bulk")
    assert subjects(found) == {"rec.over", "per.over"}
    by = {f.subject_name: f for f in found}
    assert by["rec.over"].params["records"] == 120 and by["rec.over"].params["persons"] == 20
    assert by["per.over"].params["persons"] == 51 and by["per.over"].severity == "high"
    assert by["rec.over"].window_start <= t < by["rec.over"].window_end
    assert by["rec.over"].window_end - by["rec.over"].window_start <= dt.timedelta(minutes=90)
    # The benchmark's entry point gives the same answer.
    with inst.hogo.unit_of_work(readonly=True) as db:
        direct = analysis.evaluate_bulk(db, t - dt.timedelta(hours=1), t + dt.timedelta(hours=5), cfg)
    assert subjects(direct) == {"rec.over", "per.over"}


def test_bulk_window_is_found_across_the_half_hour_boundary_ANON_13(inst: Instance):
    """ANON-13: more than N records within any W minutes is seen, however the burst lies across the
    clock's half hours (the window slides)."""
    uid = user(inst, "edge")
    start = TUESDAY.replace(minute=20)  # 10:20–11:10, across 10:30 and 11:00
    record(inst, reads(uid, "edge", start, 101, every=dt.timedelta(seconds=29)))
    found = findings(inst, config(bulk={"max_records": 100, "max_persons": 1000}), start, start + dt.timedelta(hours=2),
                     "bulk")
    assert subjects(found) == {"edge"} and len(found) == 1


def test_off_hours_access_fires_outside_working_hours_days_and_holidays(inst: Instance):
    """SEC-132, MN-6c: access outside the working hours (Asia/Tokyo), at weekends and on holidays is a
    finding, one per user and day; access at 19:59 on a working day is not."""
    ids = {n: user(inst, n) for n in ("late", "sat", "holiday", "normal")}
    evening = TUESDAY.replace(hour=21)
    saturday = TUESDAY + dt.timedelta(days=4)
    golden = dt.datetime(2026, 4, 29, 10, 0, tzinfo=JST)  # 昭和の日, a Wednesday
    record(inst, reads(ids["late"], "late", evening, 3)
           + reads(ids["sat"], "sat", saturday, 1)
           + reads(ids["holiday"], "holiday", golden, 1)
           + reads(ids["normal"], "normal", TUESDAY.replace(hour=19, minute=59), 1)
           + reads(ids["normal"], "normal", golden - dt.timedelta(days=1), 1))
    cfg = config(**quiet(off_hours={"min_events": 1}), working_hours={"holidays": ["2026-04-29"]})
    found = findings(inst, cfg, TUESDAY.replace(hour=0), golden + dt.timedelta(days=1), "off_hours")
    assert subjects(found) == {"late", "sat", "holiday"}
    late = next(f for f in found if f.subject_name == "late")
    assert late.params["events"] == 3 and late.params["first_time"] == "21:00"
    assert late.params["working_hours"] == "08:00–20:00" and late.params["date"] == "2026-04-07"
    # Working hours are a setting: from 22:00 the evening reads are inside them.
    cfg2 = config(**quiet(off_hours={}), working_hours={"start": "08:00", "end": "22:00", "holidays": ["2026-04-29"]})
    assert subjects(findings(inst, cfg2, TUESDAY.replace(hour=0), golden + dt.timedelta(days=1))) == {"sat",
                                                                                                       "holiday"}


def test_many_distinct_persons_in_a_day_fires_only_above_the_threshold(inst: Instance):
    """SEC-107(2) (improper operations by authorised users) and SEC-132: the records of more than P persons
    opened by one user within W; P persons exactly is not a finding."""
    ids = {n: user(inst, n) for n in ("browser", "steady")}
    record(inst, reads(ids["browser"], "browser", TUESDAY, 21, every=dt.timedelta(minutes=20))
           + reads(ids["steady"], "steady", TUESDAY, 20, every=dt.timedelta(minutes=20))
           + reads(ids["steady"], "steady", TUESDAY + dt.timedelta(hours=7), 20, every=dt.timedelta(minutes=1),
                   persons=[f"steady-{i}-0" for i in range(20)]))
    cfg = config(**quiet(persons={"window_minutes": 1440, "max_persons": 20}))
    found = findings(inst, cfg, TUESDAY, TUESDAY + dt.timedelta(days=1), "persons")
    assert subjects(found) == {"browser"}
    assert found[0].params["persons"] == 21


def test_repeated_denials_by_a_user_or_an_address_fire_from_k_MN_6c(inst: Instance):
    """MN-6c (unauthorised access), SEC-107(2): K refusals within W minutes by one user, or from one
    address without a user, is probing; K-1 is not."""
    ids = {n: user(inst, n) for n in ("prober", "clumsy")}
    denied = {"event": Event.RECORD_READ, "outcome": Outcome.DENIED, "reason": "no_grant"}
    record(inst, reads(ids["prober"], "prober", TUESDAY, 5, every=dt.timedelta(seconds=50), **denied)
           + reads(ids["clumsy"], "clumsy", TUESDAY, 4, every=dt.timedelta(seconds=50), **denied)
           + [{"ts": TUESDAY + dt.timedelta(seconds=i), "event": Event.LOGIN_FAILED, "outcome": Outcome.DENIED,
               "addr": "203.0.113.9", "reason": "mfa_not_enrolled_remote"} for i in range(5)]
           + [{"ts": TUESDAY + dt.timedelta(seconds=i), "event": Event.LOGIN_FAILED, "outcome": Outcome.DENIED,
               "addr": "203.0.113.10"} for i in range(4)])
    cfg = config(**quiet(denials={"window_minutes": 10, "min_denials": 5}))
    found = findings(inst, cfg, TUESDAY, TUESDAY + dt.timedelta(hours=1), "denials")
    assert {f.subject_key for f in found} == {f"user:{ids['prober']}", "addr:203.0.113.9"}
    assert all(f.params["denials"] == 5 for f in found)


def test_access_by_disabled_or_expired_accounts_and_by_ending_contractors(inst: Instance):
    """SEC-129 checked after the fact (SEC-107(2)): anything recorded for an account after it was
    disabled, or after its end date, is a finding (before, it is not); so is a contractor's access to
    personal data in the last D days of its term (not earlier)."""
    admin = inst.admin_principal()
    gone = user(inst, "gone")
    expired = user(inst, "expired", valid_until=TUESDAY - dt.timedelta(days=1))
    ending = user(inst, "itaku.ending", roles=("contractor",), valid_until=TUESDAY + dt.timedelta(days=10))
    later = user(inst, "itaku.later", roles=("contractor",), valid_until=TUESDAY + dt.timedelta(days=30))
    inst.clock.set(TUESDAY.astimezone(dt.UTC))
    accounts.disable_user(inst.hogo, admin, "gone", reason="退職", ctx=CTX)
    record(inst, reads(gone, "gone", TUESDAY - dt.timedelta(hours=1), 1)  # before it was disabled
           + reads(gone, "gone", TUESDAY + dt.timedelta(hours=1), 2)
           + [{"ts": TUESDAY + dt.timedelta(hours=2), "event": Event.LOGIN_SUCCEEDED, "actor_id": expired,
               "actor_name": "expired"}]
           + reads(ending, "itaku.ending", TUESDAY + dt.timedelta(hours=3), 1)
           + reads(later, "itaku.later", TUESDAY + dt.timedelta(hours=3), 1))
    cfg = config(**quiet(inactive_account={}, contractor_ending={"days": 14}))
    found = findings(inst, cfg, TUESDAY - dt.timedelta(hours=2), TUESDAY + dt.timedelta(hours=4))
    inactive = {f.subject_name: f for f in found if f.rule == "inactive_account"}
    assert set(inactive) == {"gone", "expired"}
    assert inactive["gone"].params["state"] == "disabled" and inactive["gone"].params["events"] == 2
    assert inactive["expired"].params["state"] == "expired"
    contractors = [f for f in found if f.rule == "contractor_ending"]
    assert subjects(contractors) == {"itaku.ending"} and contractors[0].params["days"] == 10
    assert alerts.describe("inactive_account", inactive["gone"].params, "gone").startswith("状態が「無効」")


def test_many_my_number_reveals_fire_above_the_threshold_MN_6a(inst: Instance):
    """MN-6a, SEC-107(2): more than R My Number reveals (data:record:reveal, or a read whose details
    list revealed fields) by one user within W; R is not a finding."""
    ids = {n: user(inst, n) for n in ("revealer", "careful")}
    record(inst, reads(ids["revealer"], "revealer", TUESDAY, 3, event=Event.RECORD_REVEALED,
                       details={"revealed": ["my_number"]})
           + reads(ids["revealer"], "revealer", TUESDAY + dt.timedelta(minutes=5), 1,
                   details={"revealed": ["my_number"]})
           + reads(ids["careful"], "careful", TUESDAY, 3, event=Event.RECORD_REVEALED,
                   details={"revealed": ["my_number"]})
           + reads(ids["careful"], "careful", TUESDAY, 3, details={"revealed": []}))
    found = findings(inst, config(**quiet(reveals={"window_minutes": 60, "max_reveals": 3})), TUESDAY,
                     TUESDAY + dt.timedelta(hours=1), "reveals")
    assert subjects(found) == {"revealer"} and found[0].params["reveals"] == 4


def test_exports_fire_on_volume_or_count_of_take_outs_MN_3b(inst: Instance):
    """MN-3b (output and take-out recorded and checked), ANON-13: more than N records or more than M
    exports or take-out packages within W; exactly N records in exactly M operations is not a finding."""
    ids = {n: user(inst, n) for n in ("big", "many", "fine")}
    record(inst, reads(ids["big"], "big", TUESDAY, 1, event="data:record:export", per=51)  # type: ignore[arg-type]
           + reads(ids["many"], "many", TUESDAY, 4, event="data:package:created")  # type: ignore[arg-type]
           + reads(ids["fine"], "fine", TUESDAY, 1, event="data:record:export", per=48)  # type: ignore[arg-type]
           + reads(ids["fine"], "fine", TUESDAY, 2, event="data:package:created"))  # 50 records, 3 operations
    found = findings(inst, config(**quiet(exports={"window_minutes": 1440, "max_records": 50, "max_exports": 3})),
                     TUESDAY, TUESDAY + dt.timedelta(hours=1), "exports")
    assert subjects(found) == {"big", "many"}


def test_sign_in_from_a_new_address_fires_once_per_address(inst: Instance):
    """SEC-132 (intrusion): a sign-in from an address the user has not used in the lookback period; a
    user's very first sign-in and sign-ins from known addresses are not findings."""
    ids = {n: user(inst, n) for n in ("mover", "newcomer")}

    def login(uid: int, name: str, ts: dt.datetime, addr: str) -> dict[str, Any]:
        return {"ts": ts, "event": Event.LOGIN_SUCCEEDED, "actor_id": uid, "actor_name": name,
                "subject_user_id": uid, "addr": addr}

    record(inst, [login(ids["mover"], "mover", TUESDAY - dt.timedelta(days=3), "192.0.2.10")])
    record(inst, [login(ids["mover"], "mover", TUESDAY, "192.0.2.10"),
                  login(ids["mover"], "mover", TUESDAY + dt.timedelta(hours=1), "198.51.100.7"),
                  login(ids["mover"], "mover", TUESDAY + dt.timedelta(hours=2), "198.51.100.7"),
                  login(ids["newcomer"], "newcomer", TUESDAY, "198.51.100.8")])
    found = findings(inst, config(**quiet(new_address={"lookback_days": 90})), TUESDAY,
                     TUESDAY + dt.timedelta(hours=3), "new_address")
    assert [(f.subject_name, f.params["address"]) for f in found] == [("mover", "198.51.100.7")]


# --------------------------------------------------------------------------------------- runs


def set_thresholds(inst: Instance, gpm: Principal, changes: dict[str, Any]) -> analysis.Config:
    return analysis.set_config(inst.hogo, gpm, changes, note="試験用のしきい値", ctx=CTX)


def quiet_changes(**keep: dict[str, Any]) -> dict[str, Any]:
    return analysis.flatten(quiet(**keep))


def test_run_raises_each_alert_once_and_reanalysis_does_not_duplicate_ANON_12(inst: Instance):
    """ANON-12 (analysed periodically), ANON-13: a run analyses the entries since the last one and raises
    an alert, recorded in the log; re-running, or re-analysing from the start of the log, raises none
    again; more downloads in the same incident extend the alert instead of repeating it."""
    p = people(inst)
    set_thresholds(inst, p["gpm.sato"], quiet_changes(bulk={"max_records": 10, "max_persons": 1000}))
    uid = user(inst, "downloader")
    record(inst, reads(uid, "downloader", TUESDAY, 11))
    first = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=10))
    assert first.status == "done" and len(first.raised) == 1 and not first.updated
    [a] = alert_rows(inst)
    assert (a.rule, a.subject_name, a.status, a.event_count) == ("bulk", "downloader", "open", 11)
    with inst.hogo.unit_of_work(readonly=True) as db:
        linked = db.scalars(select(AlertEvent.seq).where(AlertEvent.alert_id == a.id).order_by(AlertEvent.seq)).all()
    assert len(linked) == 11 and linked[-1] == a.last_seq
    raised = events(inst, Event.ALERT_RAISED)
    assert len(raised) == 1 and raised[0].target == f"alert:{a.id}" and raised[0].subject_user_id == uid
    assert events(inst, Event.ANALYSIS_RUN)[-1].details["raised"] == [a.id]

    assert analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=15)).status == "idle"
    again = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=20), trigger="manual",
                         principal=p["auditor.watanabe"], from_seq=0)
    assert again.status == "done" and again.raised == () and again.updated == ()
    assert len(alert_rows(inst)) == 1

    record(inst, reads(uid, "downloader", TUESDAY + dt.timedelta(minutes=20), 5))
    more = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=30))
    assert more.raised == () and more.updated == (a.id,)
    [a2] = alert_rows(inst)
    assert a2.event_count == 16 and a2.params["records"] == 16 and a2.opened_at == a.opened_at
    assert len(events(inst, Event.ALERT_UPDATED)) == 1


def test_a_closed_incident_and_new_activity_later_make_a_new_alert(inst: Instance):
    """ANON-13: once an alert is closed, a new burst (in a later window) is a new alert; the closed one
    keeps its resolution."""
    p = people(inst)
    set_thresholds(inst, p["gpm.sato"], quiet_changes(bulk={"max_records": 10, "max_persons": 1000}))
    uid = user(inst, "again")
    record(inst, reads(uid, "again", TUESDAY, 11))
    analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=10))
    [a] = alert_rows(inst)
    alerts.close(inst.hogo, p["sirt.kobayashi"], a.id, resolution="年末調整の一括処理。上長確認済み。", ctx=CTX)
    record(inst, reads(uid, "again", TUESDAY + dt.timedelta(hours=3), 11))
    r = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(hours=4))
    assert len(r.raised) == 1
    rows = alert_rows(inst)
    assert [x.status for x in rows] == ["closed", "open"] and rows[0].resolution.startswith("年末調整")


def test_two_processes_running_at_once_raise_each_alert_once_ANON_12(inst: Instance):
    """ANON-12: two processes (two engines on one database) analysing at the same moment: the lease in
    the database lets one of them analyse; every alert is raised exactly once."""
    p = people(inst)
    set_thresholds(inst, p["gpm.sato"], quiet_changes(bulk={"max_records": 10, "max_persons": 1000},
                                                      denials={"min_denials": 3}))
    ids = [user(inst, f"u{i}") for i in range(3)]
    for i, uid in enumerate(ids):
        record(inst, reads(uid, f"u{i}", TUESDAY, 11)
               + reads(uid, f"u{i}", TUESDAY, 3, outcome=Outcome.DENIED, event=Event.RECORD_READ))
    others = [build(inst.hogo.settings, clock=inst.clock) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[analysis.RunResult] = []
    errors: list[BaseException] = []

    def go(h: Any) -> None:
        try:
            barrier.wait()
            results.append(analysis.run(h, now=TUESDAY + dt.timedelta(minutes=10)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=go, args=(h,)) for h in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for h in others:
            h.close()
    assert not errors, errors
    assert sorted(r.status for r in results) in (["busy", "done"], ["done", "idle"])
    rows = alert_rows(inst)
    assert sorted((a.rule, a.subject_name) for a in rows) == sorted(
        [("bulk", f"u{i}") for i in range(3)] + [("denials", f"u{i}") for i in range(3)])
    assert len(events(inst, Event.ALERT_RAISED)) == 6
    with inst.hogo.unit_of_work(readonly=True) as db:
        assert db.scalar(select(func.count()).select_from(AnalysisRun).where(AnalysisRun.status == "done")) == 1


def test_the_scheduler_works_off_a_backlog_in_batches_across_runs_MN_6c(inst: Instance,
                                                                        monkeypatch: pytest.MonkeyPatch):
    """MN-6c (analysed periodically), ANON-12: the scheduled analysis takes the backlog in batches; a
    burst split across batches is still found (each batch sees the window before it), once."""
    p = people(inst)
    set_thresholds(inst, p["gpm.sato"], quiet_changes(bulk={"max_records": 10, "max_persons": 1000}))
    uid = user(inst, "batched")
    record(inst, reads(uid, "batched", TUESDAY, 25))
    monkeypatch.setattr(analysis, "SCHEDULED_BATCH", 7)
    result = analysis.run_scheduled(inst.hogo)
    assert result is not None and not result.more
    [a] = alert_rows(inst)
    assert (a.rule, a.subject_name, a.event_count) == ("bulk", "batched", 25)
    with inst.hogo.unit_of_work(readonly=True) as db:
        runs = db.execute(select(AnalysisRun.from_seq, AnalysisRun.to_seq).order_by(AnalysisRun.id)).all()
        head = db.scalar(select(func.max(AuditEvent.seq)))
    assert len(runs) > 3 and all(r.to_seq - r.from_seq < 7 for r in runs)
    assert [r.from_seq for r in runs[1:]] == [r.to_seq + 1 for r in runs[:-1]]
    assert runs[-1].to_seq < head  # the run's own entries come after it
    assert analysis.run_scheduled(inst.hogo).status == "idle"  # type: ignore[union-attr]


def test_a_run_holding_the_lease_makes_others_wait_until_it_expires(inst: Instance):
    """ANON-12: a run that died while holding the lease blocks others only until the lease expires."""
    with inst.hogo.unit_of_work() as db:
        state = analysis._state(db)
        state.lease_run_id, state.lease_until = 999, TUESDAY + dt.timedelta(minutes=15)
    assert analysis.run(inst.hogo, now=TUESDAY).status == "busy"
    assert analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=16)).status in ("done", "idle")


# ------------------------------------------------------------------------------ configuration


def test_threshold_changes_are_versioned_logged_and_reviewed_periodically_ANON_13_SEC_84(inst: Instance):
    """SEC-84 (configuration changes traceable): every change is a new version, recorded in the log with
    the old and new values and the reason. ANON-13 (the setting is checked periodically): the built-in
    defaults show as never reviewed; a version falls due for review a year after it was made or last
    reviewed; an overdue review shows as a warning; the reviewer is not whoever made the version (SEC-19)."""
    p = people(inst)
    now = inst.clock.now()
    assert "config_never_reviewed" in {w.code for w in analysis.current_warnings(inst.hogo, p["auditor.watanabe"])}
    v1 = analysis.set_config(inst.hogo, p["gpm.sato"], {"bulk.max_records": "2000", "off_hours.enabled": "false",
                                                         "working_hours.weekdays": "0,1,2,3,4,5"},
                             note="土曜も業務日とする", ctx=CTX)
    assert v1.version == 1 and v1.rule("bulk")["max_records"] == 2000 and v1.settings["working_hours"]["weekdays"] \
        == [0, 1, 2, 3, 4, 5]
    assert v1.review_due_at == now + dt.timedelta(days=365) and v1.reviewed_at is None
    [changed] = events(inst, Event.ANALYSIS_CONFIG_CHANGED)
    assert changed.actor_name == "gpm.sato" and changed.details["note"] == "土曜も業務日とする"
    assert changed.details["changes"]["bulk.max_records"] == [1000, 2000]
    assert changed.details["changes"]["off_hours.enabled"] == [True, False]
    v2 = analysis.set_config(inst.hogo, p["sirt.kobayashi"], {"bulk": {"window_minutes": 30}}, note="窓を短く", ctx=CTX)
    assert v2.version == 2 and v2.rule("bulk")["max_records"] == 2000 and v2.rule("bulk")["window_minutes"] == 30
    view = analysis.show_config(inst.hogo, p["auditor.watanabe"])
    assert [c.version for c in view.history] == [2, 1] and view.config.version == 2

    with pytest.raises(Forbidden) as e:
        analysis.review_config(inst.hogo, p["sirt.kobayashi"], note="確認", ctx=CTX)
    assert e.value.requirement == "SEC-19"
    inst.clock.advance(days=30)
    reviewed = analysis.review_config(inst.hogo, p["auditor.watanabe"], note="しきい値は妥当", ctx=CTX)
    assert reviewed.reviewed_by == "auditor.watanabe" and reviewed.review_due_at == inst.clock.now() + dt.timedelta(
        days=365)
    assert events(inst, Event.ANALYSIS_CONFIG_REVIEWED)[-1].details["version"] == 2
    inst.clock.advance(days=366)
    warnings = {w.code: w for w in analysis.current_warnings(inst.hogo, p["auditor.watanabe"])}
    assert "config_review_overdue" in warnings and "ANON-13" in warnings["config_review_overdue"].ja


def test_settings_are_checked_and_only_the_right_roles_change_them(inst: Instance):
    """SEC-84: bad values are refused naming the setting; auditors and clerks cannot change thresholds
    (the auditor reviews them); a change needs a reason."""
    p = people(inst)
    for changes, field in (({"bulk.max_records": 0}, "bulk.max_records"), ({"bulk.nope": 1}, "bulk.nope"),
                           ({"working_hours.start": "08:10"}, "working_hours.start"),
                           ({"bulk.severity": "urgent"}, "bulk.severity"), ({"x.y": 1}, "x")):
        with pytest.raises(ValidationFailed) as e:
            analysis.set_config(inst.hogo, p["gpm.sato"], changes, note="x", ctx=CTX)
        assert e.value.field == field, (changes, e.value.field)
    with pytest.raises(ValidationFailed):
        analysis.set_config(inst.hogo, p["gpm.sato"], {"bulk.max_records": 5}, note=" ", ctx=CTX)
    for who in ("auditor.watanabe", "clerk.ito"):
        with pytest.raises(Forbidden):
            analysis.set_config(inst.hogo, p[who], {"bulk.max_records": 5}, note="x", ctx=CTX)
    with pytest.raises(Forbidden):
        analysis.run(inst.hogo, trigger="manual", principal=p["clerk.ito"])
    with pytest.raises(Forbidden):
        analysis.show_config(inst.hogo, inst.admin_principal())


# ---------------------------------------------------------------------------------- delivery


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


def test_a_new_alert_is_mailed_in_japanese_first_ANON_13_MLIT_9_5_8(inst: Instance):
    """ANON-13 (the warning reaches people), MLIT-9.5.8: each new alert is e-mailed through a real SMTP
    server, subject 【hogo】大量ダウンロードの警告…, body Japanese then English; the delivery is logged."""
    p = people(inst)
    set_thresholds(inst, p["gpm.sato"], quiet_changes(bulk={"max_records": 10, "max_persons": 1000}))
    uid = user(inst, "mailed")
    record(inst, reads(uid, "mailed", TUESDAY, 11))
    with smtp_server() as (port, box):
        inst.hogo.settings = inst.hogo.settings.with_(
            alert_sinks=(f"smtp://127.0.0.1:{port}?to=sirt@example.jp&from=hogo@example.jp&starttls=0",))
        r = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=10))
    assert [d.error for d in r.deliveries] == [None]
    [msg] = box.messages
    assert str(msg["Subject"]).startswith("【hogo】大量ダウンロードの警告")
    assert "mailed" in str(msg["Subject"]) and "Bulk download warning" in str(msg["Subject"])
    body = msg.get_content()
    assert body.index("mailed が 60 分以内に 11 件") < body.index("mailed read, searched or exported 11 records")
    [a] = alert_rows(inst)
    assert a.notified_at is not None and a.notify_pending is None
    [delivered] = events(inst, Event.ALERT_DELIVERED)
    assert delivered.outcome == "success" and delivered.details["sinks"] == ["smtp 127.0.0.1:" + str(port)]


def test_a_failing_sink_never_loses_the_alert_and_is_retried(inst: Instance):
    """ANON-13: the alert is committed before it is sent; a sink that fails (and one that is
    misconfigured) is recorded as a failed delivery and shown as a warning; later runs retry only the
    failed sinks (the working one is not sent the message twice) until each has it."""
    p = people(inst)
    set_thresholds(inst, p["gpm.sato"], quiet_changes(bulk={"max_records": 10, "max_persons": 1000}))
    uid = user(inst, "kept")
    record(inst, reads(uid, "kept", TUESDAY, 11))
    with smtp_server() as (port, box), flaky_webhook(fail=1) as (hook_port, hits):
        good = f"smtp://127.0.0.1:{port}?to=sirt@example.jp&from=hogo@example.jp&starttls=0"
        hook = f"http://127.0.0.1:{hook_port}/hook"
        inst.hogo.settings = inst.hogo.settings.with_(alert_sinks=(good, hook, "gopher://nowhere"))
        r = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=10))
        assert r.status == "done" and len(r.raised) == 1
        assert [d.error is None for d in r.deliveries] == [False, True, False]  # invalid first, then in order
        [a] = alert_rows(inst)
        assert a.status == "open" and a.notified_at is None and len(a.notify_pending or []) == 2
        assert "HTTP 503" in (a.notify_error or "") and "gopher" in (a.notify_error or "")
        [failed] = events(inst, Event.ALERT_DELIVERED)
        assert failed.outcome == "failure" and len(failed.details["failed"]) == 2
        assert "delivery_failing" in {w.code for w in analysis.current_warnings(inst.hogo, p["auditor.watanabe"])}

        r2 = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=20))  # nothing new but the retry
        assert r2.status == "done" and sorted((d.sink, d.error is None) for d in r2.deliveries) == [
            ("alert_sinks[2]", False), (f"webhook http://127.0.0.1:{hook_port}/…", True)]
        [a] = alert_rows(inst)
        assert a.notify_attempts == 2 and a.notify_pending == ["alert_sinks[2]"] and a.notified_at is None

        inst.hogo.settings = inst.hogo.settings.with_(alert_sinks=(good, hook))  # the bad one is fixed (removed)
        r3 = analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=30))
        assert r3.deliveries == ()
        assert analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=40)).status == "idle"
    assert len(box.messages) == 1 and len(hits) == 2
    [a] = alert_rows(inst)
    assert a.notified_at is not None and a.notify_pending is None
    assert [e.outcome for e in events(inst, Event.ALERT_DELIVERED)] == ["failure", "failure"]


@contextlib.contextmanager
def flaky_webhook(*, fail: int) -> Iterator[tuple[int, list[bytes]]]:
    """A webhook receiver answering 503 to the first ``fail`` requests, then 204."""
    hits: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(503 if len(hits) <= fail else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# ------------------------------------------------------------------------------------- report


def test_periodic_report_covers_access_denials_alerts_and_review_MN_6c_SEC_132(inst: Instance):
    """MN-6c, SEC-132 (a function to inspect and analyse the logs periodically): the monthly report
    gives accesses per file and per user, denials, alerts raised and how they were closed, and the
    review status of the settings; Japanese headings first; generating it is itself logged."""
    p = people(inst)
    set_thresholds(inst, p["gpm.sato"], quiet_changes(bulk={"max_records": 10, "max_persons": 1000}))
    uid = user(inst, "reported")
    record(inst, reads(uid, "reported", TUESDAY, 11)
           + reads(uid, "reported", TUESDAY, 2, outcome=Outcome.DENIED, reason="no_grant"))
    analysis.run(inst.hogo, now=TUESDAY + dt.timedelta(minutes=10))
    [a] = alert_rows(inst)
    inst.clock.set(TUESDAY.astimezone(dt.UTC) + dt.timedelta(hours=1))
    alerts.close(inst.hogo, p["sirt.kobayashi"], a.id, resolution="本人に確認。業務上の必要あり。", ctx=CTX)
    since, until = analysis.month_period("2026-04", "Asia/Tokyo")
    rep = analysis.report(inst.hogo, p["auditor.watanabe"], since, until, ctx=CTX)
    assert [(f.file, f.events, f.records, f.denied) for f in rep.files] == [(FILE, 13, 13, 2)]
    assert ("reported", 13, 13, 2, 0) in [(u.user, u.events, u.records, u.denied, u.reveals) for u in rep.users]
    assert [(d.user, d.reason, d.count) for d in rep.denials] == [("reported", "no_grant", 2)]
    assert [(c.rule, c.raised, c.closed) for c in rep.alerts] == [("bulk", 1, 1)]
    assert rep.closed[0].resolution.startswith("本人に確認") and rep.closed[0].closed_by == "sirt.kobayashi"
    md = rep.to_markdown()
    assert md.startswith("# アクセス記録の分析報告 (Access record analysis report)")
    for heading in ("## ファイル別アクセス (Accesses per file)", "## 利用者別アクセス (Accesses per user)",
                    "## 拒否 (Denials)", "## 警告 (Alerts)", "## 分析設定の見直し (Review of the analysis settings)"):
        assert heading in md
    assert "大量ダウンロードの警告" in md and "本人に確認。業務上の必要あり。" in md
    assert rep.to_dict()["files"][0]["file"] == FILE
    [generated] = events(inst, Event.REPORT_GENERATED)
    assert generated.actor_name == "auditor.watanabe"
    with pytest.raises(Forbidden):
        analysis.report(inst.hogo, p["clerk.ito"], since, until)
    assert analysis.month_period("2026-12", "Asia/Tokyo")[1] == dt.datetime(2027, 1, 1, tzinfo=JST)

