"""End to end, issue 4: the audit-log pages on a real hogo server (uvicorn; SQLite, and PostgreSQL with
HOGO_TEST_PG_URL) driven by Debian's headless Chromium, under the production CSP.

The auditor searches the log by record (a POST: the record ID never enters a URL), opens an entry,
sees its inclusion proof under a signed checkpoint (SEC-107(3), MLIT-9.5.4) — which verifies here with
the public key the page offers — looks at the activity chart and has the log verified. A clerk sees
only their own history (SEC-107(2), MN-3b). Reading the log is itself logged (ANON-12).

The data is prepared through the services on the data directory before the server starts.
Chromium: /usr/bin/chromium; without it these tests skip, except in CI where they fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from browser_support import SHOTS, Tab, expect, serve, sign_in
from sqlalchemy import select

from live import LiveServer, init_data_dir
from support import payroll_spec

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "Kanri-Sekinin-2026!"
PASSWORD = "Hanami-Yozakura-Kaede-2026"
FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"


def prepare(data_dir: Path, db_url: str | None) -> dict[str, tuple[str, ...]]:
    """The payroll department with a protection manager and a clerk, an auditor, the payroll file, a
    grant letting the clerk read and create, two records and one read of E0001. Returns each
    person's recovery codes (TOTP codes are single use: the browser signs in with these)."""
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
        accounts.create_department(h, None, code="KANSA", name="監査室", ctx=ctx)
        for name, display, role, dept in (("pm.takahashi", "高橋 誠", "protection_manager", "KYUYO"),
                                          ("clerk.ito", "伊藤 美咲", "clerk", "KYUYO"),
                                          ("auditor.watanabe", "渡辺 恵", "auditor", "KANSA")):
            accounts.create_user(h, None, username=name, display_name=display, department=dept, roles=[role],
                                 password=PASSWORD, ctx=ctx)
            p = auth.login(h, username=name, password=PASSWORD, ctx=ctx).principal
            enrol = auth.start_mfa_enrolment(h, p, ctx)
            codes[name] = tuple(auth.confirm_mfa_enrolment(h, p, pyotp.TOTP(enrol.secret).now(), ctx))
        pm = auth.login(h, username="pm.takahashi", password=PASSWORD, recovery_code=codes["pm.takahashi"][0],
                        ctx=ctx).principal
        files.create_file(h, pm, payroll_spec(), ctx=ctx)
        grants.create_grant(h, pm, FILE, user="clerk.ito", actions=["read", "create"], purposes=[P1], ctx=ctx)
        ito = auth.login(h, username="clerk.ito", password=PASSWORD, recovery_code=codes["clerk.ito"][0],
                         ctx=ctx).principal
        guard.create_record(h, ito, FILE, {"employee_no": "E0001", "name": "佐藤 花子", "my_number": "123456789018",
                                           "department": "KYUYO"}, purpose=P1, ctx=ctx, record_id="E0001")
        guard.create_record(h, ito, FILE, {"employee_no": "E0002", "name": "鈴木 一郎", "my_number": "111111111118",
                                           "department": "KYUYO"}, purpose=P1, ctx=ctx, record_id="E0002")
        guard.read_record(h, ito, FILE, "E0001", purpose=P1, ctx=ctx)
    finally:
        h.close()
    return codes


def log_reads(data_dir: Path, db_url: str | None) -> list[tuple[str | None, str | None]]:
    """(actor, target) of every read of the log."""
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.store.models import AuditEvent

    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    try:
        with h.unit_of_work(readonly=True) as db:
            rows = db.scalars(select(AuditEvent).where(AuditEvent.event == "audit:log:read")
                              .order_by(AuditEvent.seq)).all()
            return [(r.actor_name, r.target) for r in rows]
    finally:
        h.close()


def about_whom(data_dir: Path, db_url: str | None, username: str, seqs: list[int]
               ) -> tuple[int, list[tuple[int | None, int | None]]]:
    """The user's ID, and (actor, subject) of each of the entries ``seqs``."""
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.store.models import AuditEvent, User

    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    try:
        with h.unit_of_work(readonly=True) as db:
            uid = db.scalar(select(User.id).where(User.username == username))
            assert uid is not None
            rows = db.execute(select(AuditEvent.actor_id, AuditEvent.subject_user_id)
                              .where(AuditEvent.seq.in_(seqs))).all()
            return uid, [(a, s) for a, s in rows]
    finally:
        h.close()


def test_the_auditor_finds_a_record_s_entries_and_sees_a_proof_and_a_clerk_only_their_own_SEC_107(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    from hogo.crypto import checkpoint as notes
    from hogo.domain import merkle

    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    server = serve(servers, data_dir)

    # --- the auditor searches by record (a POST form), opens an entry and sees its proof
    auditor = Tab(browser, server.url)
    page = auditor.page
    sign_in(auditor, "auditor.watanabe", PASSWORD, recovery_code=codes["auditor.watanabe"][0])
    expect(page).to_have_url(re.compile(r"/$"))
    page.get_by_test_id("nav-audit").click()
    expect(page).to_have_url(re.compile(r"/audit$"))
    expect(page.get_by_role("heading", name="監査ログ", exact=True)).to_be_visible()
    expect(page.get_by_test_id("own-only")).to_have_count(0)
    page.fill("#audit-file", FILE)
    page.fill("#audit-record", "E0001")
    page.get_by_test_id("audit-search-submit").click()
    rows = page.get_by_test_id("audit-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("記録の参照")
    expect(rows.nth(1)).to_contain_text("記録の登録")
    expect(rows.first).to_contain_text("clerk.ito")
    assert "E0001" not in page.url and page.url.endswith("/audit")
    page.screenshot(path=str(SHOTS / "audit-search.png"), full_page=True)

    rows.first.get_by_test_id("entry-link").click()
    expect(page).to_have_url(re.compile(r"/audit/entries/\d+$"))
    seq = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("entry-records")).to_contain_text("E0001")
    expect(page.get_by_test_id("proof-root")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    for check in ("leaf", "signature", "path"):
        expect(page.get_by_test_id(f"check-{check}")).to_contain_text("一致")
    expect(page.get_by_test_id("howto")).to_contain_text(f"hogo audit prove {seq}")
    page.screenshot(path=str(SHOTS / "audit-entry.png"), full_page=True)
    # What the page shows verifies here, with the key it offers (as an auditor would, offline).
    size = int(page.get_by_test_id("proof-size").inner_text())
    leaf = bytes.fromhex(page.get_by_test_id("proof-leaf").inner_text())
    path = [bytes.fromhex(h) for h in page.locator("[data-testid=proof-path] code").all_inner_texts()]
    note = page.get_by_test_id("proof-checkpoint").inner_text().rstrip("\n") + "\n"
    key = page.request.get("/audit/public-key")
    assert key.ok and key.headers["content-type"].startswith("text/plain")
    name, public = notes.parse_public_key_text(key.text().strip())
    cp = notes.verify_note(note, name, public, origin=name)
    assert cp.size == size and merkle.verify_inclusion(seq, size, leaf, path, cp.root)

    # --- the activity chart and "verify now"
    page.get_by_role("link", name="監査ログ", exact=True).first.click()
    page.get_by_test_id("activity-link").click()
    expect(page.get_by_test_id("activity-chart")).to_be_visible()
    expect(page.get_by_test_id("bar")).to_have_count(30)
    expect(page.get_by_test_id("top-user").first).to_contain_text("clerk.ito")
    page.screenshot(path=str(SHOTS / "audit-activity.png"), full_page=True)
    page.get_by_test_id("nav-audit").click()
    page.get_by_test_id("verify-now").click()
    expect(page.get_by_test_id("verify-ok")).to_be_visible()
    auditor.assert_clean()
    auditor.close()

    # --- the clerk sees only their own history
    clerk = Tab(browser, server.url)
    page = clerk.page
    sign_in(clerk, "clerk.ito", PASSWORD, recovery_code=codes["clerk.ito"][1])
    expect(page).to_have_url(re.compile(r"/$"))
    page.get_by_test_id("nav-audit").click()
    expect(page.get_by_test_id("own-only")).to_be_visible()
    expect(page.get_by_test_id("verify-now")).to_have_count(0)
    expect(page.get_by_test_id("activity-link")).to_have_count(0)
    rows = page.get_by_test_id("audit-row")
    expect(rows.first).to_be_visible()
    expect(page.get_by_test_id("audit-rows")).not_to_contain_text("auditor.watanabe")
    clerk_saw = [int(s) for s in rows.evaluate_all("rs => rs.map(r => r.dataset.seq)")]
    page.screenshot(path=str(SHOTS / "audit-own.png"), full_page=True)
    clerk.assert_clean()
    clerk.close()
    server.stop()

    # Every look at the log is on record (ANON-12).
    reads = log_reads(data_dir, db_url)
    assert ("auditor.watanabe", "log:search") in reads and ("auditor.watanabe", f"log:proof:{seq}") in reads
    assert ("auditor.watanabe", "log:activity") in reads and ("clerk.ito", "log:search") in reads
    # The clerk's page held only entries by the clerk or about the clerk's account (a grant to them, say).
    ito, about = about_whom(data_dir, db_url, "clerk.ito", clerk_saw)
    assert clerk_saw and all(ito in pair for pair in about), about
