"""End to end, issue 5: a real hogo server driven by headless Chromium under the production CSP. The file
page shows its marks (格付と取扱制限) in Japanese first; the protection manager who defined the file revises
them through the form, with a reason, and the change is shown in the history at once (SEC-5, SEC-46(3))."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_support import SHOTS, Tab, expect, serve
from test_browser_data import FILE, prepare, sign_in_with

from live import LiveServer

pytestmark = pytest.mark.e2e


def test_the_protection_manager_sees_and_revises_the_marks_of_a_file_SEC_46(
        browser: object, tmp_path: Path, servers: list[LiveServer], db_url: str | None):
    data_dir = tmp_path / "data"
    codes = prepare(data_dir, db_url)
    server = serve(servers, data_dir)
    tab = Tab(browser, server.url)
    page = tab.page
    sign_in_with(tab, "pm.takahashi", codes["pm.takahashi"][1])
    page.goto(f"{server.url}/files/{FILE}")
    badge = page.get_by_test_id("marks-badge").first
    expect(badge).to_contain_text("機密性3情報")
    expect(badge).to_contain_text("複製禁止")
    expect(page.get_by_test_id("marks-en").first).to_contain_text("C3-I2-A1")
    form = page.get_by_test_id("marks-form")
    form.locator("input[name='r_destroy_after_reading']").check()
    form.locator("#marks-reason").fill("閲覧後は廃棄する運用に変更")
    page.get_by_test_id("marks-submit").click()
    expect(page.get_by_test_id("marks-notice")).to_contain_text("変更しました")
    history = page.get_by_test_id("marks-history")
    expect(history).to_contain_text("読後廃棄")
    expect(history).to_contain_text("閲覧後は廃棄する運用に変更")
    expect(page.get_by_test_id("marks-badge").first).to_contain_text("読後廃棄")
    expect(page).to_have_url(re.compile(rf"/files/{FILE}"))
    page.screenshot(path=str(SHOTS / "marks.png"), full_page=True)
    tab.assert_clean()
    tab.close()
    server.stop()
