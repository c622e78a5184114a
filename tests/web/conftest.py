"""The dashboard in a real browser: Debian's Chromium driven by Playwright (no browser
download), against a real ``quantdesk serve`` on the demo data, as ``make run`` serves it.

One server per test process, one browser per module, serving its own copy of the run's
demo-loaded database (``tests/support/demo_database.py``).  Every test gets
its own browser context and its own freshly registered user, so no test sees another's data.
Any request that leaves loopback is refused and fails the test, as does any
Content-Security-Policy violation or uncaught script error; a failing test leaves a
screenshot under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from tests.conftest import TEST_SECRET
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, LOOPBACK, MAYBE_OFFSITE
from tests.support.demo_database import copy_demo_database
from tests.support.servers import serve_quantdesk

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
PASSWORD = "a long enough passphrase"


@dataclass
class Dashboard:
    base: str
    env: dict[str, str]

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)


def _dashboard_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'dashboard.db'}",
        "QUANTDESK_VAR_DIR": str(tmp),
        "QUANTDESK_DEMO_DATA": "true",
        "QUANTDESK_DEMO_TICK_INTERVAL_S": "0.25",
        "QUANTDESK_LOG_LEVEL": "WARNING",
        # One server for every test of this process, each test registering its own user
        # from one address: the real budgets (10 registrations an hour) are checked in
        # tests/security, not here.
        "QUANTDESK_RATE_LIMIT_REGISTER_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_LOGIN_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_AUTH_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_UNAUTHENTICATED_IP": "100000/minute",
    }


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    tmp: Path = tmp_path_factory.mktemp("dashboard")
    env = _dashboard_env(tmp)
    copy_demo_database(tmp_path_factory, tmp / "dashboard.db")
    with serve_quantdesk(env, tmp, "--no-migrate") as base:
        yield Dashboard(base, env)


# Per module, not per session: while Playwright's sync API is open it runs an event loop in
# this thread, and every async test that ran meanwhile in this process would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What went wrong in the page while the test ran."""

    offsite: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class User:
    email: str
    password: str = PASSWORD


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


def _refuse_offsite(watch: Watch) -> Callable[[Route], None]:
    def route(route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            watch.offsite.append(route.request.url)
            route.abort()

    return route


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(
    context: BrowserContext, dashboard: Dashboard, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page of the dashboard, watched for offsite requests, CSP violations and errors."""
    watch = Watch()
    # Only what may leave loopback comes to this process: a handler call per request
    # (hundreds per test, all loopback) made every page load wait on this process.
    context.route(MAYBE_OFFSITE, _refuse_offsite(watch))
    tab = context.new_page()
    tab.set_default_timeout(15_000)

    def on_console(message: object) -> None:
        text = getattr(message, "text", "")
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            watch.csp.append(text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: watch.errors.append(str(error)))
    tab.watch = watch  # type: ignore[attr-defined]
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    assert not watch.offsite, f"requests left loopback: {watch.offsite}"
    assert not watch.csp, f"Content-Security-Policy violations: {watch.csp}"
    assert not watch.errors, f"uncaught script errors: {watch.errors}"


@pytest.fixture
def new_user(dashboard: Dashboard) -> Callable[[], User]:
    """Register a fresh user through the API (each test sees only its own data)."""

    def make() -> User:
        user = User(f"web-{uuid.uuid4().hex[:12]}@example.com")
        with dashboard.api() as client:
            answer = client.post(
                "/api/v1/auth/register", json={"email": user.email, "password": user.password}
            )
        assert answer.status_code == 201, answer.text
        return user

    return make


@pytest.fixture
def user(new_user: Callable[[], User]) -> User:
    return new_user()


def sign_in(page: Page, dashboard: Dashboard, user: User) -> None:
    """Sign in as the dashboard does, without the form (the sign-in test uses the form)."""
    answer = page.request.post(
        dashboard.base + "/api/v1/auth/login",
        data={"email": user.email, "password": user.password, "cookie": True},
    )
    assert answer.ok, answer.text()


def open_page(page: Page, dashboard: Dashboard, path: str) -> None:
    """Go to a page and wait until its module has loaded what it shows first."""
    page.goto(dashboard.base + path)
    page.wait_for_selector("body[data-ready=true]")


@pytest.fixture
def signed_in(page: Page, dashboard: Dashboard, user: User) -> Page:
    sign_in(page, dashboard, user)
    return page
