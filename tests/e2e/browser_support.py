"""Browser-test helpers shared by the e2e tests: Debian's Chromium under Playwright, live servers,
a tab that records console errors (CSP violations), and the sign-in form.

Chromium: /usr/bin/chromium (Debian package). Without it the tests skip, except in CI (``CI`` set)
where they fail. ``playwright install`` is never needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from live import LiveServer, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/hogo-shots")

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def launch_browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def stop_all(started: list[LiveServer]) -> None:
    for s in started:
        s.stop()


def serve(servers: list[LiveServer], data_dir: Path) -> LiveServer:
    server = start_server(data_dir)
    servers.append(server)
    return server


class Tab:
    """A browser context (its own cookies) with one page, recording console errors (CSP violations)."""

    def __init__(self, browser: object, base: str) -> None:
        self.context = browser.new_context(base_url=base, locale="ja-JP", timezone_id="Asia/Tokyo",  # type: ignore[attr-defined]
                                           viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.text} ({m.location.get('url')})")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("dialog", lambda d: d.accept())  # hx-confirm

    def close(self) -> None:
        self.context.close()

    def assert_clean(self, *, allow: tuple[str, ...] = ()) -> None:
        """No CSP violation, no script error, no failed load (except the ``allow``-ed messages)."""
        assert not [p for p in self.problems if "Content Security Policy" in p or "Refused" in p], self.problems
        unexpected = [p for p in self.problems if not any(a in p for a in allow)]
        assert not unexpected, unexpected

    def cookie(self, name: str) -> dict[str, object] | None:
        return next((c for c in self.context.cookies() if c["name"] == name), None)


def sign_in(tab: Tab, username: str, password: str, *, code: str | None = None,
            recovery_code: str | None = None) -> None:
    page = tab.page
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    if code:
        page.fill("#totp", code)
    if recovery_code:
        page.click("details.recovery summary")
        page.fill("#recovery_code", recovery_code)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
