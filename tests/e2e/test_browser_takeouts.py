"""End to end, issue 5: take-outs in Debian's headless Chromium against a real server, under the production CSP.

A clerk requests a take-out of a confidentiality-2 file through the form (recipient passphrase, medium ID,
due date); the protection manager sees what leaves, to whom and until when in the approval inbox and approves
it (SEC-47, SEC-48(2)); the clerk downloads the encrypted package with the passphrase in the form body, and it
verifies against hogo's key (SEC-49, MN-5c); the register shows it taken out (MN-6d).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyotp
import pytest
from browser_support import SHOTS, Tab, expect, serve, sign_in

from live import LiveServer, init_data_dir
from support import payroll_spec

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "Kanri-Sekinin-2026!"
PASSWORD = "Hanami-Yozakura-Kaede-2026"
FILE = "kyuyo-contacts"
P1 = "源泉徴収票作成事務"
PASS = "kusunoki-no-ki-no-shita-de"


def prepare(data_dir: Path, db_url: str | None) -> dict[str, tuple[str, ...]]:
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.services import accounts, auth, files, grants, guard
    from hogo.services.audit import RequestContext

    init_data_dir(data_dir, admin="admin", admin_password=ADMIN_PASSWORD, database_url=db_url)
    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    ctx = RequestContext(client_addr="local", user_agent="e2e-prepare")
    codes: dict[str, tuple[str, ...]] = {}
    try:
        accounts.create_department(h, None, code="KYUYO", name="給与厚生課", ctx=ctx)
        for name, role in (("pm.takahashi", "protection_manager"), ("clerk.ito", "clerk")):
            accounts.create_user(h, None, username=name, department="KYUYO", roles=[role], password=PASSWORD, ctx=ctx)
            p = auth.login(h, username=name, password=PASSWORD, ctx=ctx).principal
            enrol = auth.start_mfa_enrolment(h, p, ctx)
            codes[name] = tuple(auth.confirm_mfa_enrolment(h, p, pyotp.TOTP(enrol.secret).now(), ctx))
        pm = auth.login(h, username="pm.takahashi", password=PASSWORD, recovery_code=codes["pm.takahashi"][0],
                        ctx=ctx).principal
        spec: dict[str, Any] = payroll_spec()
        spec.update(code=FILE, kind="personal_information", restrictions=[],
                    classification={"confidentiality": 2, "integrity": 1, "availability": 1})
        spec["fields"] = [f for f in spec["fields"] if f["name"] != "my_number"]
        files.create_file(h, pm, spec, ctx=ctx)
        grants.create_grant(h, pm, FILE, user="clerk.ito", actions=["create", "export"], purposes=[P1], ctx=ctx)
        ito = auth.login(h, username="clerk.ito", password=PASSWORD, recovery_code=codes["clerk.ito"][0],
                         ctx=ctx).principal
        for i in (1, 2):
            guard.create_record(h, ito, FILE, {"employee_no": f"E{i}", "name": f"社員 {i}", "department": "KYUYO"},
                                purpose=P1, ctx=ctx)
    finally:
        h.close()
    return codes


def verifier_key(data_dir: Path, db_url: str | None) -> str:
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.services import audit_tree

    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    try:
        return str(audit_tree.log_key(h).verifier_key)
    finally:
        h.close()


def test_request_approve_and_download_a_take_out_in_the_browser_SEC_47_SEC_49_MN_6d(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    server = serve(servers, data_dir)

    clerk = Tab(browser, server.url)
    page = clerk.page
    sign_in(clerk, "clerk.ito", PASSWORD, recovery_code=codes["clerk.ito"][1])
    page.get_by_test_id("nav-takeouts").click()
    expect(page).to_have_url(re.compile(r"/takeouts$"))
    expect(page.get_by_test_id("no-takeouts")).to_be_visible()
    page.get_by_test_id("new-takeout").click()
    page.select_option("#to-file", FILE)
    page.fill("#to-fields", "employee_no,name")
    page.fill("#to-purpose", P1)
    page.fill("#to-recipient", "税理士法人 みなと")
    page.check("input[name=passphrase_mode]")
    page.fill("#to-dest", "みなと事務所")
    page.select_option("#to-transport", "media")
    page.fill("#to-media", "USB-0042")
    page.get_by_test_id("submit-takeout").click()
    expect(page.get_by_test_id("takeout-status")).to_have_text("承認待ち")
    expect(page.get_by_test_id("notice")).to_contain_text("申請しました")
    page.screenshot(path=str(SHOTS / "takeout-requested.png"), full_page=True)
    takeout_url = page.url

    pm = Tab(browser, server.url)
    p2 = pm.page
    sign_in(pm, "pm.takahashi", PASSWORD, recovery_code=codes["pm.takahashi"][1])
    p2.get_by_test_id("nav-approvals").click()
    details = p2.get_by_test_id("takeout-details")
    expect(details).to_contain_text("税理士法人 みなと")
    expect(details).to_contain_text("USB-0042")
    p2.screenshot(path=str(SHOTS / "takeout-inbox.png"), full_page=True)
    p2.get_by_test_id("approve").click()
    expect(p2.get_by_test_id("notice")).to_contain_text("承認しました")

    page.goto(takeout_url)
    expect(page.get_by_test_id("takeout-status")).to_have_text("承認済（未持出し）")
    page.fill("input[name=passphrase]", PASS)
    with page.expect_download() as dl:
        page.get_by_test_id("download").click()
    saved = tmp_path / "got.hogopkg"
    dl.value.save_as(saved)
    page.get_by_test_id("nav-takeouts").click()
    row = page.get_by_test_id("takeout-row")
    expect(row).to_have_attribute("data-status", "taken_out")
    page.screenshot(path=str(SHOTS / "takeout-register.png"), full_page=True)
    clerk.assert_clean()
    pm.assert_clean()
    clerk.close()
    pm.close()
    server.stop()

    from hogo.crypto import package as pkg

    v = pkg.verify_package(saved, verifier_key(data_dir, db_url))
    assert v.manifest["record_count"] == 2 and v.manifest["fields"] == ["employee_no", "name"]
