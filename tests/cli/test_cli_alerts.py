"""``hogo alerts`` and the analysis commands of ``hogo audit`` against a real server (ANON-13, ANON-12,
SEC-132, MN-6c, SEC-84, SEC-19): run the analysis, list the alert a bulk download raised, show it with
the log entries behind it, acknowledge and close it; change and review the thresholds; write the
monthly report to a private file. Clerks are refused (exit code 4)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cli_support import ADMIN, ADMIN_PASSWORD, Cli

from hogo.bootstrap import build
from hogo.cli.alerts import register_audit_commands
from hogo.cli.audit import audit_app
from hogo.config import load_settings
from hogo.domain.events import Event, Outcome
from hogo.services import accounts, analysis, audit, auth
from hogo.services.audit import RequestContext
from live import LiveServer, init_data_dir, start_server

CTX = RequestContext(client_addr="127.0.0.1", user_agent="pytest")
PASSWORD = "Sakura-Kumo-Umi-47"
USERS = {"gpm.sato": "general_protection_manager", "auditor.watanabe": "auditor", "sirt.kobayashi": "sirt",
         "clerk.ito": "clerk"}

# ``hogo audit`` gets these commands from ``hogo.cli.audit`` once it registers them; until then, here.
if not any(c.name == "analyze" for c in audit_app.registered_commands):
    register_audit_commands(audit_app)


def prepare(data_dir: Path) -> dict[str, list[str]]:
    """Through the services, before the server starts: the four people (MFA enrolled), small thresholds
    set by the general protection manager, and twelve reads by the clerk a minute ago. Returns each
    person's recovery codes."""
    init_data_dir(data_dir, admin=ADMIN, admin_password=ADMIN_PASSWORD)
    hogo = build(load_settings(data_dir))
    codes: dict[str, list[str]] = {}
    try:
        accounts.create_department(hogo, None, code="KANSA", name="監査室", ctx=CTX)
        for name, role in USERS.items():
            accounts.create_user(hogo, None, username=name, department="KANSA", roles=[role], password=PASSWORD,
                                 ctx=CTX)
            p = auth.login(hogo, username=name, password=PASSWORD, ctx=CTX).principal
            enrol = auth.start_mfa_enrolment(hogo, p, CTX)
            codes[name] = list(auth.confirm_mfa_enrolment(hogo, p, pyotp.TOTP(enrol.secret).now(), CTX))
        gpm = auth.login(hogo, username="gpm.sato", password=PASSWORD, recovery_code=codes["gpm.sato"].pop(),
                         ctx=CTX).principal
        analysis.set_config(hogo, gpm, {"bulk.max_records": 10, "bulk.max_persons": 1000, "off_hours.enabled": False,
                                        "new_address.enabled": False}, note="試験環境のしきい値", ctx=CTX)
        with hogo.unit_of_work() as db:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            uid = _user_id(db, "clerk.ito")
            for i in range(12):
                audit.record(db, now=start + dt.timedelta(seconds=i), event=Event.RECORD_READ,
                             outcome=Outcome.SUCCESS, ctx=CTX, actor_id=uid, actor_name="clerk.ito",
                             file_code="payroll-mynumber", purpose="源泉徴収票作成事務", records=[f"E{i:04d}"])
    finally:
        hogo.close()
    return codes


def _user_id(db: Any, name: str) -> int:
    from sqlalchemy import select

    from hogo.store.models import User

    return int(db.scalar(select(User.id).where(User.username == name)))


class Org:
    def __init__(self, cli: Cli, server: LiveServer, codes: dict[str, list[str]]) -> None:
        self.cli, self.server, self.codes = cli, server, codes

    def login(self, name: str) -> None:
        pw = self.cli.write(f"{name}-pw", PASSWORD + "\n")
        r = self.cli("login", "--url", self.server.url, "--user", name, "--password-file", pw,
                     "--recovery-code", self.codes[name].pop(), as_=name)
        assert r.exit_code == 0, (r.stdout, r.stderr)


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[Org]:
    codes = prepare(tmp_path / "data")
    server = start_server(tmp_path / "data")
    try:
        o = Org(cli, server, codes)
        for name in USERS:
            o.login(name)
        yield o
    finally:
        server.stop()


def wait_for_alert(cli: Cli, who: str, rule: str = "bulk") -> dict[str, Any]:
    """The server also analyses on its own schedule (right after it starts): whichever run raised it."""
    deadline = time.monotonic() + 30
    while True:
        listed = cli.json("alerts", "list", as_=who)
        found = [a for a in listed["alerts"] if a["rule"] == rule]
        if found or time.monotonic() > deadline:
            assert found, listed
            return found[0]
        time.sleep(0.3)


def test_analyze_list_show_ack_and_close_an_alert_ANON_13(org: Org):
    """ANON-13 (大量ダウンロードの警告), SEC-132: ``hogo audit analyze`` runs the analysis; the bulk download
    shows in ``hogo alerts list`` with the analysis's own warnings on stderr; ``show`` lists the log
    entries behind it; the auditor acknowledges it and SIRT closes it with a resolution (MN-6c)."""
    cli = org.cli
    r = cli("audit", "analyze", as_="auditor.watanabe")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    alert = wait_for_alert(cli, "auditor.watanabe")
    assert alert["status"] == "open" and alert["subject"] == "clerk.ito" and alert["event_count"] == 12
    assert alert["title_ja"] == "大量ダウンロードの警告"

    r = cli("alerts", "list", as_="auditor.watanabe")
    assert r.exit_code == 0 and "大量ダウンロードの警告" in r.stdout and "clerk.ito" in r.stdout
    assert "alert_sinks" in r.stderr  # no sinks configured: said where alerts are listed

    r = cli("alerts", "show", str(alert["id"]), as_="auditor.watanabe")
    assert r.exit_code == 0, r.stderr
    assert "clerk.ito が 60 分以内に 12 件" in r.stdout and "data:record:read" in r.stdout
    shown = cli.json("alerts", "show", str(alert["id"]), as_="auditor.watanabe")
    assert shown["linked"] == 12 and len(shown["events"]) == 12

    acked = cli.json("alerts", "ack", str(alert["id"]), "--note", "伊藤さんに確認中", as_="auditor.watanabe")
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "auditor.watanabe"
    again = cli.json("alerts", "ack", str(alert["id"]), as_="sirt.kobayashi", expect=6)
    assert again["error"]["code"] == "alert_not_open"
    r = cli("alerts", "close", str(alert["id"]), "--resolution", "年末調整の一括処理。問題なし。", as_="sirt.kobayashi")
    assert r.exit_code == 0 and "Closed alert" in r.stdout, r.stderr
    closed = cli.json("alerts", "list", "--status", "closed", as_="gpm.sato")["alerts"]
    assert [(a["id"], a["closed_by"], a["resolution"]) for a in closed] == [
        (alert["id"], "sirt.kobayashi", "年末調整の一括処理。問題なし。")]
    assert [a for a in cli.json("alerts", "list", as_="gpm.sato")["alerts"] if a["rule"] == "bulk"] == []


def test_clerks_cannot_read_alerts_and_usage_errors_are_named(org: Org):
    """SEC-132: the alerts are for auditors, SIRT and the general protection manager: a clerk gets exit
    code 4 and the permission named. A close without a resolution is a usage error."""
    cli = org.cli
    err = cli.json("alerts", "list", as_="clerk.ito", expect=4)["error"]
    assert err["code"] == "forbidden" and "audit:alert:read" in err["message"]
    r = cli("alerts", "close", "1", as_="sirt.kobayashi")
    assert r.exit_code == 2 and "--resolution" in r.stderr
    r = cli("audit", "report", as_="auditor.watanabe")
    assert r.exit_code == 2 and "--period" in r.stderr


def test_thresholds_are_set_and_reviewed_and_the_report_is_written_privately_SEC_84_MN_6c(
        org: Org, tmp_path: Path):
    """SEC-84: ``hogo audit analysis set`` makes a new version with its reason; the auditor may not set
    thresholds but reviews them (ANON-13), never whoever made the version (SEC-19). MN-6c: ``hogo audit
    report --period`` writes the month's report (Japanese headings first) to a file only its owner reads."""
    cli = org.cli
    shown = cli.json("audit", "analysis", "show", as_="auditor.watanabe")
    assert shown["version"] == 1 and shown["settings"]["bulk"]["max_records"] == 10
    cfg = cli.json("audit", "analysis", "set", "bulk.max_records=500", "working_hours.end=21:00", "--note",
                   "繁忙期の業務量に合わせる", as_="sirt.kobayashi")
    assert cfg["version"] == 2 and cfg["settings"]["bulk"]["max_records"] == 500
    assert cfg["created_by"] == "sirt.kobayashi" and cfg["note"] == "繁忙期の業務量に合わせる"
    err = cli.json("audit", "analysis", "set", "bulk.max_records=5", "--note", "x", as_="auditor.watanabe",
                   expect=4)["error"]
    assert "audit:analysis:configure" in err["message"]
    err = cli.json("audit", "analysis", "set", "bulk.max_records=lots", "--note", "x", as_="gpm.sato",
                   expect=7)["error"]
    assert err["details"]["field"] == "bulk.max_records"
    err = cli.json("audit", "analysis", "review", as_="sirt.kobayashi", expect=4)["error"]
    assert err["requirement"] == "SEC-19"
    reviewed = cli.json("audit", "analysis", "review", "--note", "妥当", as_="auditor.watanabe")
    assert reviewed["reviewed_by"] == "auditor.watanabe" and reviewed["review_overdue"] is False
    r = cli("audit", "analysis", "show", as_="gpm.sato")
    assert r.exit_code == 0 and "bulk.max_records" in r.stdout and "default 1000" in r.stdout

    month = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).strftime("%Y-%m")
    target = tmp_path / "report.md"
    r = cli("audit", "report", "--period", month, "--out", str(target), as_="auditor.watanabe")
    assert r.exit_code == 0, r.stderr
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# アクセス記録の分析報告 (Access record analysis report)")
    assert "| payroll-mynumber | 12 | 12 | 1 | 0 |" in text
    data = json.loads(cli("audit", "report", "--period", month, "--json", as_="gpm.sato").stdout)
    assert data["files"][0]["file"] == "payroll-mynumber" and data["config_version"] == 2
