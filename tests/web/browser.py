"""Real Chromium (Playwright) for the web tests: the browser, fresh tabs and the password
sign-in a person types.

``tests/web/conftest.py`` registers the fixtures for the whole folder. Each tab is a fresh
browser context presenting its own client address (X-Forwarded-For, which uvicorn trusts
from 127.0.0.1), so the per-address sign-in limiter of one test never counts another's.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    async_playwright,
)

from tests.conftest import OrgHandle
from tests.web.flows import PASSWORD, fresh_address

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@dataclass
class Tab:
    """One page in a fresh browser context, with what the browser logged."""

    page: Page
    base_url: str
    logged: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        url = message.location.get("url", "") if message.location else ""
        self.logged.append(f"{message.type} {url}: {message.text}")

    def on_page_error(self, error: Error) -> None:
        self.logged.append(f"pageerror {self.page.url}: {error}")

    def csp_complaints(self) -> list[str]:
        return [
            line
            for line in self.logged
            if "Content Security Policy" in line or "Content-Security-Policy" in line
        ]

    async def land(self, url_path: str, shots: Path, name: str) -> None:
        """Wait for ``url_path`` (a path, or a regex over it when it starts with ^) and check it:
        a screenshot under ``shots`` and no Content-Security-Policy complaint so far."""
        if url_path.startswith("^"):
            await self.page.wait_for_url(re.compile(re.escape(self.base_url) + url_path[1:]))
        else:
            await self.page.wait_for_url(f"{self.base_url}{url_path}")
        await self.page.wait_for_load_state("load")
        await self.page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert (shots / f"{name}.png").stat().st_size > 0
        assert self.csp_complaints() == [], self.logged


class OpenTab(Protocol):
    """What the ``tabs`` fixture yields: opens one more tab (one more person)."""

    async def __call__(
        self, *, javascript: bool = True, bypass_csp: bool = False, timezone_id: str | None = None
    ) -> Tab: ...


@pytest.fixture
async def tabs(chromium: Browser, live_server: str) -> AsyncIterator[OpenTab]:
    """Opens a tab in a fresh browser context per call (one per person), each from its own
    client address; ``javascript=False`` for a browser with scripts off; ``bypass_csp=True``
    lets a test inject a script of its own (axe-core); ``timezone_id`` sets the browser's
    time zone (default: the machine's). All are closed at the end of the test."""
    contexts: list[BrowserContext] = []

    async def open_tab(
        *, javascript: bool = True, bypass_csp: bool = False, timezone_id: str | None = None
    ) -> Tab:
        context = await chromium.new_context(
            timezone_id=timezone_id,
            extra_http_headers={"X-Forwarded-For": fresh_address()},
            viewport={"width": 1366, "height": 900},
            java_script_enabled=javascript,
            bypass_csp=bypass_csp,
            accept_downloads=True,
        )
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        tab = Tab(page, live_server)
        page.on("console", tab.on_console)
        page.on("pageerror", tab.on_page_error)
        return tab

    try:
        yield open_tab
    finally:
        for context in contexts:
            await context.close()


@pytest.fixture
async def tab(tabs: OpenTab) -> Tab:
    """One tab, for a test with one person in it."""
    return await tabs()


async def sign_in_with_password(tab: Tab, org: OrgHandle, email: str) -> None:
    """Type ``email`` and ``PASSWORD`` into the organisation's sign-in page and submit it;
    where the app sends the browser next is for the caller to check (``tab.land``)."""
    page = tab.page
    await page.goto(f"{tab.base_url}/login/{org.slug}")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in with password").click()
