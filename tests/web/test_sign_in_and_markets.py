"""Sign-in, sign-out and the markets page: the session cookie, the shell, live quotes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.conftest import TEST_SECRET
from tests.web.conftest import Dashboard, User, open_page


def test_sign_in_with_the_form_then_sign_out(page: Page, dashboard: Dashboard, user: User) -> None:
    page.goto(dashboard.base + "/trading")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Ftrading$"))
    page.get_by_label("Email").first.fill(user.email)
    page.get_by_label("Password").first.fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-form .form-error")).to_contain_text("password")
    page.get_by_label("Password").first.fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/trading$"))
    expect(page.locator("#user-email")).to_have_text(user.email)
    # The tokens are HttpOnly: no script of the page can read them.
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["qd_access"]["httpOnly"]
    assert cookies["qd_refresh"]["httpOnly"]
    assert "qd_access" not in page.evaluate("document.cookie")
    assert page.evaluate("JSON.stringify(localStorage)").find("eyJ") == -1
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(dashboard.base + "/markets")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fmarkets$"))


def test_register_from_the_sign_in_page(page: Page, dashboard: Dashboard) -> None:
    page.goto(dashboard.base + "/login")
    page.get_by_role("button", name="Create one").click()
    form = page.locator("#register-form")
    form.get_by_label("Email").fill("new-web-user@example.com")
    form.get_by_label("Password").fill("another long passphrase")
    form.get_by_role("button", name="Create account and sign in").click()
    expect(page).to_have_url(re.compile(r"/markets$"))
    expect(page.locator("#user-email")).to_have_text("new-web-user@example.com")


def test_next_never_leaves_the_site(page: Page, dashboard: Dashboard, user: User) -> None:
    page.goto(dashboard.base + "/login?next=//example.com/phish")
    page.get_by_label("Email").first.fill(user.email)
    page.get_by_label("Password").first.fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(dashboard.base + "/markets")


def test_a_quote_ticks_on_the_watchlist(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, "/markets")
    expect(page.locator("#stream-status")).to_have_text("live")
    last = page.locator("#watchlist tr[data-instrument='SIM:ALPHA'] [data-field=last]")
    expect(last).not_to_have_text("—")
    assert re.fullmatch(r"[\d,]+\.\d+", last.inner_text())
    # The simulated exchange is always open, but each of its ticks moves only some
    # instruments: wait until any row of the watchlist shows a newer quote than it had.
    before = page.eval_on_selector_all(
        "#watchlist tr[data-instrument]", "rows => rows.map(r => r.dataset.updated || '')"
    )
    page.wait_for_function(
        """before => [...document.querySelectorAll('#watchlist tr[data-instrument]')]
            .some((row, i) => (row.dataset.updated || '') > before[i])""",
        arg=before,
        timeout=30_000,
    )


def test_search_and_add_to_the_watchlist(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, "/markets")
    page.get_by_label("Search the instrument master").fill("RELI")
    results = page.locator("#search-results tbody")
    expect(results).to_contain_text("NSE:RELIANCE")
    page.locator("#watch-input").fill("NFO:NIFTY26DECFUT")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#watchlist tr[data-instrument='NFO:NIFTY26DECFUT']")).to_be_visible()
    page.locator("#watch-input").fill("NSE:NOSUCH")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#watch-form .form-error")).to_be_visible()
    # The list survives a reload (kept in this browser, not on the server).
    open_page(page, dashboard, "/markets")
    expect(page.locator("#watchlist tr[data-instrument='NFO:NIFTY26DECFUT']")).to_be_visible()


def test_pages_carry_a_strict_policy_and_no_secret(page: Page, dashboard: Dashboard) -> None:
    answer = page.request.get(dashboard.base + "/markets")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in answer.text()  # every script is a file
    assert TEST_SECRET not in answer.text()


def test_the_harness_refuses_what_leaves_loopback(page: Page, dashboard: Dashboard) -> None:
    """The guard every test here relies on (conftest's ``page``): a host that only looks like
    loopback is refused too, and each refusal is recorded for the fixture to fail on.  (From
    the blank page a tab opens on: the dashboard's own policy would stop them first.)"""
    port = urlsplit(dashboard.base).port
    urls = ["https://example.com/x", f"http://127.0.0.1.example.com:{port}/health/live"]
    outcomes = page.evaluate(
        "urls => Promise.all(urls.map(u => fetch(u).then(() => 'answered', () => 'refused')))",
        urls,
    )
    assert outcomes == ["refused", "refused"]
    offsite: list[str] = page.watch.offsite  # type: ignore[attr-defined]
    assert sorted(offsite) == sorted(urls)
    offsite.clear()  # refused as they should be: not this test's failure
    open_page(page, dashboard, "/login")  # while loopback is let through
