"""The account page (two-factor set-up, sessions, API keys, export, erasure) and the admin
page (users, security events, the kill switch), driven in the browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import APIResponse, Browser, Locator, Page, Route, expect

from tests.web.conftest import Dashboard, User, open_page, sign_in

API = "/api/v1"


def send(page: Page, dashboard: Dashboard, method: str, path: str, data: Any = None) -> APIResponse:
    """An unsafe API request with the page's cookie session (CSRF token and Origin set)."""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "qd_csrf")
    headers = {"X-CSRF-Token": csrf, "Origin": dashboard.base}
    return page.request.fetch(dashboard.base + path, method=method, headers=headers, data=data)


def totp_code(secret: str, *, steps_ahead: int = 0) -> str:
    # The server accepts a code one 30 s step either side of its clock, and only for a step
    # later than the last one accepted: the next step's code is how a test signs in again
    # right after confirming, without waiting for the clock.
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def confirm(page: Page, button: str) -> None:
    """Answer the page's confirmation dialog with its confirming button."""
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=button, exact=True).click()
    expect(dialog).to_be_hidden()


def make_admin(dashboard: Dashboard) -> User:
    """The first admin as an operator makes one: `quantdesk admin create-user` on the server's
    database (there is no "first registered user is admin" rule)."""
    admin = User(f"web-admin-{uuid.uuid4().hex[:10]}@example.com")
    quantdesk = str(Path(sys.executable).with_name("quantdesk"))
    command = [quantdesk, "admin", "create-user", "--email", admin.email, "--role", "admin"]
    done = subprocess.run(
        [*command, "--password-stdin"],
        input=admin.password + "\n",
        text=True,
        env=dashboard.env,
        cwd=dashboard.env["QUANTDESK_VAR_DIR"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "created admin " in done.stdout
    return admin


def bearer(dashboard: Dashboard, user: User) -> dict[str, str]:
    """A program's sign-in (token in the body, no cookie): for setting up state."""
    with dashboard.api() as client:
        answer = client.post(
            f"{API}/auth/login", json={"email": user.email, "password": user.password}
        )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def fact(page: Page, field: str) -> Locator:
    return page.locator(f"#profile [data-field={field}]")


# -- account ---------------------------------------------------------------------------------


def test_set_up_mfa_then_sign_in_with_a_code(
    signed_in: Page, dashboard: Dashboard, user: User
) -> None:
    page = signed_in
    open_page(page, dashboard, "/account")
    expect(fact(page, "email")).to_have_text(user.email)
    expect(fact(page, "role")).to_have_text("trader")
    expect(fact(page, "mfa")).to_have_text("Off")

    page.get_by_role("button", name="Set up an authenticator").click()
    qr = page.get_by_role("img", name="QR code to scan with an authenticator app")
    expect(qr).to_be_visible()
    assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 100  # the SVG drew
    secret = page.locator("#mfa-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    # The QR code and the link carry the same secret the page prints.
    link = page.get_by_role("link", name="Open it in the authenticator app")
    assert pyotp.parse_uri(link.get_attribute("href") or "").secret == secret

    wrong = "000000" if totp_code(secret) != "000000" else "111111"
    page.get_by_label("Code from the app").fill(wrong)
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.locator("#mfa-confirm-form .form-error")).to_contain_text("not valid")
    page.get_by_label("Code from the app").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on two-factor authentication").click()

    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    expect(page.locator("#mfa-codes")).to_contain_text("shown only this once")
    recovery = codes.all_inner_texts()
    assert all(re.fullmatch(r"[2-9A-Z]{4}(-[2-9A-Z]{4}){3}", code) for code in recovery)
    expect(fact(page, "mfa")).to_have_text("On")
    page.get_by_role("button", name="I have stored them").click()
    expect(page.locator("#mfa-codes")).to_be_hidden()
    expect(page.locator("#recovery-codes li")).to_have_count(0)  # gone from the page
    expect(page.locator("#mfa-on")).to_be_visible()

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount$"))
    page.wait_for_selector("body[data-ready=true]")  # the sign-in module is listening
    page.get_by_label("Email").first.fill(user.email)
    page.get_by_label("Password").first.fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#mfa-form")).to_be_visible()
    page.locator("#mfa-form").get_by_label("Code").fill(totp_code(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    page.wait_for_selector("body[data-ready=true]")
    expect(fact(page, "mfa")).to_have_text("On")
    this = page.locator("#sessions tr[data-current=true]")
    expect(this).to_contain_text("This session")
    expect(this.locator("td").nth(4)).to_have_text("yes")  # signed in with the second factor

    # Off again, with the password and one of the recovery codes shown once.
    page.get_by_text("Turn two-factor authentication off").click()
    form = page.locator("#mfa-disable-form")
    form.get_by_label("Password").fill(user.password)
    form.get_by_label("Authenticator or recovery code").fill(recovery[0])
    form.get_by_role("button", name="Turn off").click()
    expect(fact(page, "mfa")).to_have_text("Off")
    expect(page.locator("#mfa-off")).to_be_visible()


def test_an_api_key_is_shown_once_works_and_is_revoked(
    signed_in: Page, dashboard: Dashboard, user: User
) -> None:
    page = signed_in
    open_page(page, dashboard, "/account")
    expect(page.locator("#keys tbody")).to_contain_text("No API key yet.")
    form = page.locator("#key-form")
    form.get_by_label("Name").fill("browser test bot")
    expect(form.get_by_label("read")).to_be_checked()
    form.get_by_label("trade").check()
    expect(form.get_by_label("admin")).to_have_count(0)  # a trader cannot grant admin
    form.get_by_role("button", name="Create key").click()

    shown = page.locator("#new-key")
    expect(shown).to_be_visible()
    expect(shown).to_contain_text("It is shown only once")
    key = page.get_by_label("Key", exact=True).input_value()
    prefix = re.match(r"qd_[0-9a-f]+_", key)
    assert prefix is not None
    assert len(key) > len(prefix[0]) + 20
    row = page.locator("#keys tbody tr", has_text="browser test bot")
    expect(row).to_have_attribute("data-status", "live")
    expect(row).to_contain_text("read, trade")
    expect(row).to_contain_text(prefix[0])  # the prefix, never the secret
    assert key not in row.inner_text()

    with httpx.Client(base_url=dashboard.base, timeout=30) as program:
        answer = program.get(f"{API}/users/me", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["email"] == user.email
        page.get_by_role("button", name="Done").click()
        expect(shown).to_be_hidden()
        assert key not in page.content()
        assert key not in page.evaluate(
            "JSON.stringify(localStorage) + JSON.stringify(sessionStorage)"
        )

        open_page(page, dashboard, "/account")
        row = page.locator("#keys tbody tr", has_text="browser test bot")
        expect(row.locator("td").nth(5)).not_to_have_text("never")  # last used: just now
        assert key not in page.content()
        page.get_by_role("button", name="Revoke browser test bot").click()
        confirm(page, "Revoke")
        expect(row).to_have_attribute("data-status", "revoked")
        expect(row.get_by_role("button")).to_have_count(0)
        answer = program.get(f"{API}/users/me", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 401


def test_revoke_another_session_then_sign_out_everywhere(
    signed_in: Page, browser: Browser, dashboard: Dashboard, user: User
) -> None:
    page = signed_in
    other = browser.new_context(user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    try:
        elsewhere = other.new_page()
        sign_in(elsewhere, dashboard, user)
        assert elsewhere.request.get(dashboard.base + f"{API}/users/me").ok

        open_page(page, dashboard, "/account")
        rows = page.locator("#sessions tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator("#sessions tr[data-current=true]")).to_contain_text("This session")
        second = page.locator("#sessions tr[data-current=false]")
        expect(second).to_contain_text("Firefox 128 on Linux")
        second.get_by_role("button", name="Revoke").click()
        expect(rows).to_have_count(1)
        expect(page.locator("#sessions tr[data-current=true]")).to_be_visible()
        assert elsewhere.request.get(dashboard.base + f"{API}/users/me").status == 401

        # Everywhere means this session too, and every API key.
        created = send(
            page, dashboard, "POST", f"{API}/api-keys", {"name": "k", "scopes": ["read"]}
        )
        assert created.status == 201, created.text()
        key = created.json()["key"]
        page.get_by_role("button", name="Sign out everywhere").click()
        confirm(page, "Sign out everywhere")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount$"))
        assert page.request.get(dashboard.base + f"{API}/users/me").status == 401
        with httpx.Client(base_url=dashboard.base, timeout=30) as program:
            gone = program.get(f"{API}/users/me", headers={"Authorization": f"Bearer {key}"})
        assert gone.status_code == 401
    finally:
        other.close()


def test_export_my_data_and_delete_the_account(
    signed_in: Page, dashboard: Dashboard, user: User
) -> None:
    page = signed_in
    open_page(page, dashboard, "/account")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export my data (JSON)").click()
    assert re.fullmatch(
        r"quantdesk-export-\d{4}-\d{2}-\d{2}\.json", download.value.suggested_filename
    )
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["user"]["email"] == user.email
    assert [s["current"] for s in exported["sessions"]] == [True]
    assert "registered" in {e["event_type"] for e in exported["security_events"]}

    page.get_by_text("Delete my account", exact=True).first.click()  # the <summary>
    form = page.locator("#delete-form")
    form.get_by_label("Password").fill(user.password)
    form.get_by_label("I understand that this cannot be undone").check()
    form.get_by_role("button", name="Delete my account").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(user.email)
    dialog.get_by_role("button", name="Cancel").click()  # changing one's mind keeps it
    assert page.request.get(dashboard.base + f"{API}/users/me").ok
    form.get_by_role("button", name="Delete my account").click()
    confirm(page, "Delete my account")
    expect(page).to_have_url(re.compile(r"/login$"))
    with dashboard.api() as client:
        answer = client.post(
            f"{API}/auth/login", json={"email": user.email, "password": user.password}
        )
    assert answer.status_code == 401


# -- admin -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_user(dashboard: Dashboard) -> User:
    """The module's admin, made once: each `make_admin` starts a Python process (1-3 s)."""
    return make_admin(dashboard)


@pytest.fixture
def admin(dashboard: Dashboard, admin_user: User) -> Iterator[tuple[User, dict[str, str]]]:
    """An admin and a bearer token of theirs; whatever happens in the test, no trading halt
    outlives it (other tests place orders)."""
    made = admin_user
    headers = bearer(dashboard, made)
    yield made, headers
    with dashboard.api() as client:
        for halt in client.get(f"{API}/admin/trading-halts", headers=headers).json()["items"]:
            client.post(f"{API}/admin/trading-halts/{halt['id']}/resume", headers=headers)


def test_admin_manages_users_reads_events_and_halts_trading(
    page: Page, dashboard: Dashboard, user: User, admin: tuple[User, dict[str, str]]
) -> None:
    admin_user, headers = admin
    # The other user locks their account: five wrong passwords at a re-authentication.
    target = bearer(dashboard, user)
    with dashboard.api() as client:
        for _ in range(5):
            wrong = client.post(
                f"{API}/users/me/password",
                headers=target,
                json={"current_password": "not my password at all", "new_password": "x" * 20},
            )
            assert wrong.status_code == 401, wrong.text

    sign_in(page, dashboard, admin_user)
    open_page(page, dashboard, "/markets")
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    page.wait_for_selector("body[data-ready=true]")

    mine = page.locator(f"#users tr[data-email='{admin_user.email}']")
    expect(mine).to_contain_text("you")
    expect(mine.get_by_role("combobox")).to_be_disabled()
    row = page.locator(f"#users tr[data-email='{user.email}']")
    role = row.get_by_role("combobox", name=f"Role of {user.email}")
    expect(role).to_have_value("trader")
    expect(row).to_have_attribute("data-locked", "true")
    expect(row).to_contain_text("locked")

    row.get_by_role("button", name="Unlock").click()
    expect(row).to_have_attribute("data-locked", "false")
    role.select_option("viewer")
    confirm(page, "Change role")
    expect(page.locator("#notices")).to_contain_text(f"{user.email} is now a viewer")
    expect(role).to_have_value("viewer")
    row.get_by_role("button", name="Disable").click()
    confirm(page, "Disable")
    expect(row).to_have_attribute("data-active", "false")
    expect(row).to_contain_text("disabled")
    with dashboard.api() as client:
        stored = client.get(f"{API}/admin/users/{row.get_attribute('data-user')}", headers=headers)
    assert stored.json()["role"] == "viewer"
    assert stored.json()["is_active"] is False
    assert stored.json()["locked_until"] is None
    row.get_by_role("button", name="Enable").click()
    expect(row).to_have_attribute("data-active", "true")
    # The notices stay 6 s over the events' page buttons below; clicks go through them.
    expect(page.locator("#notices")).to_contain_text(f"{user.email} enabled.")

    # The security log: filtered by type, then by user across pages.
    events = page.locator("#events tbody tr")
    expect(events.first).to_be_visible()
    page.get_by_role("combobox", name="Event").select_option("role_changed")
    page.get_by_role("button", name="Show").click()
    changed = page.locator("#events tbody tr[data-event=role_changed]", has_text=user.email)
    expect(changed).to_contain_text("from: trader")
    expect(changed).to_contain_text(f"by: {admin_user.email}")
    expect(page.locator("#events tbody tr:not([data-event=role_changed])")).to_have_count(0)

    row.get_by_role("button", name="Events").click()
    expect(page.locator("#events-user")).to_have_value(row.get_attribute("data-user") or "")
    page.get_by_label("Per page").select_option("10")
    page.get_by_role("button", name="Show").click()
    expect(events).to_have_count(10)
    expect(events.first).to_have_attribute("data-event", "user_enabled")  # newest first
    first_page = events.all_inner_texts()
    page.get_by_role("button", name="Older").click(timeout=2_000)
    expect(page.locator("#events-page")).to_have_text("Page 2")
    expect(page.locator("#events tbody tr[data-event=registered]")).to_have_count(1)  # the oldest
    assert not set(events.all_inner_texts()) & set(first_page)
    page.get_by_role("button", name="Newer").click()
    expect(events.first).to_have_attribute("data-event", "user_enabled")
    expect(page.get_by_role("button", name="Newer")).to_be_disabled()

    # The kill switch: an order on the halted instrument is refused until it resumes.
    account = send(page, dashboard, "POST", f"{API}/accounts", {"name": "halt check"})
    assert account.status == 201, account.text()
    orders = f"{API}/accounts/{account.json()['id']}/orders"
    order = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": "1", "type": "market"}

    state = page.locator("#halt-state")
    expect(state).to_have_text("Trading is allowed.")
    page.locator("#halt-form").get_by_label("Halt").select_option("instrument")
    page.get_by_label("Exchange or instrument").fill("sim:alpha")
    page.get_by_label("Reason").fill("browser test: bad prices")
    page.get_by_role("button", name="Halt trading").click()
    confirm(page, "Halt trading")
    expect(state).to_have_text("Halted: instrument SIM:ALPHA.")
    halt = page.locator("#halts tbody tr[data-active=true]")
    expect(halt).to_contain_text("browser test: bad prices")
    refused = send(page, dashboard, "POST", orders, order)
    assert refused.status == 409, refused.text()
    assert "halt" in refused.text().lower()

    halt.get_by_role("button", name="Resume instrument SIM:ALPHA").click()
    expect(state).to_have_text("Trading is allowed.")
    expect(page.locator("#halts tbody")).to_contain_text("None: trading is allowed.")
    placed = send(page, dashboard, "POST", orders, order)
    assert placed.status == 201, placed.text()
    page.get_by_label("Show lifted halts too").check()
    lifted = page.locator("#halts tbody tr[data-active=false]", has_text="bad prices")
    expect(lifted).to_contain_text("lifted")

    page.get_by_role("combobox", name="Event").select_option("trading_resumed")
    page.locator("#events-user").select_option("")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#events tbody tr[data-event=trading_resumed]").first).to_be_visible()


def test_a_non_admin_sees_no_admin_page(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, "/markets")
    expect(page.get_by_role("link", name="Account")).to_be_visible()
    expect(page.get_by_role("link", name="Admin")).to_be_hidden()
    open_page(page, dashboard, "/admin")
    denied = page.get_by_role("alert").filter(has_text="Admins only")
    expect(denied).to_be_visible()
    expect(denied).to_contain_text("403")
    expect(page.locator("#admin-content")).to_be_hidden()
    expect(page.locator("#users tbody tr")).to_have_count(0)


def test_a_late_answer_never_replaces_a_newer_search_of_the_security_log(
    page: Page, dashboard: Dashboard, user: User, admin: tuple[User, dict[str, str]]
) -> None:
    """Two searches in quick succession whose answers arrive in the opposite order (a slow
    network, a busy server): the table shows the second search's answer, not the late one."""
    sign_in(page, dashboard, admin[0])
    open_page(page, dashboard, "/admin")
    held: list[Route] = []

    def hold_the_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)  # answered after the next search's answer

    page.route(re.compile(r".*/api/v1/admin/security-events\?.*"), hold_the_first)
    # The user's "Events" button searches at once (the form is free for the next search).
    page.locator(f"#users tr[data-email='{user.email}']").get_by_role(
        "button", name="Events"
    ).click()
    page.get_by_role("combobox", name="Event").select_option("account_erased")  # none of theirs
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#events tbody")).to_contain_text("No event matches.")
    assert len(held) == 1
    with page.expect_response(lambda r: "event_type" not in r.url) as late:
        held[0].continue_()
    assert late.value.ok
    # The page has read the late answer by the time two frames have been drawn after it.
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    expect(page.locator("#events tbody tr[data-event]")).to_have_count(0)
    expect(page.locator("#events tbody")).to_contain_text("No event matches.")


def test_a_halt_shows_on_the_trading_page_as_it_happens(
    signed_in: Page, dashboard: Dashboard, admin: tuple[User, dict[str, str]]
) -> None:
    page = signed_in
    _, headers = admin
    open_page(page, dashboard, "/trading")
    expect(page.locator("#stream-status")).to_have_text("live")
    # (SIM:GAMMA: no other browser test trades it, and halts are for everyone.)
    with dashboard.api() as client:
        made = client.post(
            f"{API}/admin/trading-halts",
            headers=headers,
            json={"scope": "instrument", "target": "SIM:GAMMA", "reason": "banner check"},
        )
        assert made.status_code == 201, made.text
        halt_id = made.json()["id"]
        banner = page.locator(f"#trading-halts p[data-halt-id='{halt_id}']")
        expect(banner).to_contain_text("New orders are halted for SIM:GAMMA: banner check")
        expect(page.locator("#trading-halts")).to_be_visible()
        # A reload gets it from the snapshot of the halts in force.
        open_page(page, dashboard, "/trading")
        expect(banner).to_contain_text("banner check")
        lifted = client.post(f"{API}/admin/trading-halts/{halt_id}/resume", headers=headers)
        assert lifted.status_code == 200, lifted.text
    expect(banner).to_have_count(0)
