"""End to end, issue 5: a real hogo server driven by headless Chromium under the production CSP. A record
erased (crypto-shredding) leaves a signed deletion certificate; the protection manager finds it under
消去証明 in the navigation and opens it: what, how, who, hogo's check and the signature, and never the
My Number or the person's name (ANON-10, MN-3c)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_support import SHOTS, Tab, expect, serve
from test_browser_data import FILE, MN, P1, PASSWORD, prepare, sign_in_with

from live import LiveServer

pytestmark = pytest.mark.e2e


def test_the_protection_manager_reads_a_deletion_certificate_in_japanese_ANON_10(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    from hogo.bootstrap import build
    from hogo.config import load_settings
    from hogo.services import auth, erasure, grants
    from hogo.services.audit import RequestContext

    h = build(load_settings(data_dir, **({"database_url": db_url} if db_url else {})))
    ctx = RequestContext(client_addr="local", user_agent="e2e-prepare")
    try:
        pm = auth.login(h, username="pm.takahashi", password=PASSWORD, recovery_code=codes["pm.takahashi"][2],
                        ctx=ctx).principal
        grants.create_grant(h, pm, FILE, user="clerk.ito", actions=["delete"], purposes=[P1], ctx=ctx)
        ito = auth.login(h, username="clerk.ito", password=PASSWORD, recovery_code=codes["clerk.ito"][2],
                         ctx=ctx).principal
        cert = erasure.erase_records(h, ito, FILE, ["E0001"], reason="本人からの削除請求", purpose=P1, ctx=ctx)
    finally:
        h.close()
    server = serve(servers, data_dir)
    tab = Tab(browser, server.url)
    page = tab.page
    sign_in_with(tab, "pm.takahashi", codes["pm.takahashi"][1])
    page.get_by_test_id("nav-certificates").click()
    expect(page).to_have_url(re.compile(r"/certificates$"))
    row = page.locator(f"tr[data-testid='certificate-row'][data-id='{cert.id}']")
    expect(row).to_contain_text("記録の消去")
    expect(row).to_contain_text("完了")
    row.get_by_role("link", name=f"#{cert.id}").click()
    expect(page).to_have_url(re.compile(rf"/certificates/{cert.id}$"))
    expect(page.get_by_test_id("record-count")).to_have_text("1")
    expect(page.get_by_test_id("certificate")).to_contain_text("crypto-shredding")
    expect(page.get_by_test_id("signature")).to_contain_text("hogo.log/")
    assert MN not in page.content() and "佐藤" not in page.content()
    page.screenshot(path=str(SHOTS / "certificate.png"), full_page=True)
    tab.assert_clean()
    tab.close()
    server.stop()
