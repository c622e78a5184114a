"""``/docs`` and ``/redoc`` render their operations in a real Chromium with no network
beyond loopback (issue 19: their assets came from a CDN, so the pages were blank offline).

Debian's ``chromium`` (scripts/ensure-services.sh installs it) driven by Playwright, against
a real ``quantdesk serve``.  Every request the pages make is intercepted: one that leaves
loopback is refused and fails the test, as does any Content-Security-Policy violation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, sync_playwright

from tests.conftest import TEST_SECRET
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, LOOPBACK, MAYBE_OFFSITE
from tests.support.servers import serve_quantdesk


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("docs-server")
    env = {
        **os.environ,
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'docs.db'}",
        "QUANTDESK_VAR_DIR": str(tmp),
        "QUANTDESK_DEMO_DATA": "false",
        "QUANTDESK_DOCS_ENABLED": "true",
        "QUANTDESK_LOG_LEVEL": "WARNING",
    }
    with serve_quantdesk(env, tmp, ready_within_s=90) as base:
        yield base


def _render(page: Page, url: str, operation_selector: str) -> int:
    page.goto(url, wait_until="load")
    page.wait_for_selector(operation_selector, timeout=20_000)
    return page.locator(operation_selector).count()


def test_docs_and_redoc_render_offline(served: str) -> None:
    outside: list[str] = []
    violations: list[str] = []

    def only_loopback(route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.route(MAYBE_OFFSITE, only_loopback)
            page = context.new_page()
            page.on(
                "console",
                lambda message: (
                    violations.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            swagger_operations = _render(page, served + "/docs", ".opblock")
            redoc_operations = _render(page, served + "/redoc", "[data-section-id*='operation/']")
        finally:
            browser.close()
    assert outside == []
    # ReDoc's sidebar footer names a logo on its vendor's CDN; the policy blocks it before any
    # request (the footer shows its text alone).  Any other violation fails.
    assert [v for v in violations if "cdn.redoc.ly/redoc/logo-mini.svg" not in v] == []
    assert swagger_operations > 20
    assert redoc_operations > 20
