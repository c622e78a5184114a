"""The paper-trading page in a real browser: accounts, the order ticket, the order book with
live status, positions with live P&L, fills, errors from the API, and isolation between users.

SIM instruments are always open and tick every quarter of a second, so orders on SIM:ALPHA
fill (or rest) right now, whatever the hour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import Dashboard, User, open_page, sign_in

INSTRUMENT = "SIM:ALPHA"
TICK = Decimal("0.05")


def unsafe_headers(page: Page, dashboard: Dashboard) -> dict[str, str]:
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return {"X-CSRF-Token": cookies["qd_csrf"], "Origin": dashboard.base}


def api_get(page: Page, dashboard: Dashboard, path: str) -> Any:
    answer = page.request.get(dashboard.base + path)
    assert answer.ok, answer.text()
    return answer.json()


def api_post(page: Page, dashboard: Dashboard, path: str, body: dict[str, Any]) -> Any:
    answer = page.request.post(
        dashboard.base + path, data=body, headers=unsafe_headers(page, dashboard)
    )
    assert answer.ok, answer.text()
    return answer.json()


def open_account(page: Page, dashboard: Dashboard, name: str = "Practice") -> str:
    account = api_post(
        page,
        dashboard,
        "/api/v1/accounts",
        {"name": name, "currency": "INR", "starting_cash": "500000"},
    )
    return str(account["id"])


def price_near(page: Page, dashboard: Dashboard, factor: str) -> str:
    """The last price of SIM:ALPHA times ``factor``, on its tick grid (within the 10% band)."""
    quote = api_get(page, dashboard, f"/api/v1/market/quotes?keys={INSTRUMENT}")["quotes"][0]
    steps = (Decimal(quote["last"]) * Decimal(factor) / TICK).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return str(steps * TICK)


def grouped(value: Decimal) -> str:
    """As the page shows an INR amount: two places, Indian grouping (12,34,567.89)."""
    text = f"{abs(value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)):.2f}"
    whole, fraction = text.split(".")
    if len(whole) > 3:
        head = re.sub(r"\B(?=(\d{2})+(?!\d))", ",", whole[:-3])
        whole = f"{head},{whole[-3:]}"
    negative = value < 0 and re.search(r"[1-9]", text)
    return ("-" if negative else "") + f"{whole}.{fraction}"


def order_rows(page: Page) -> Any:
    return page.locator("#orders tbody tr[data-order-id]")


def test_create_an_account_and_see_its_starting_cash(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, "/trading")
    form = page.locator("#account-form")
    # A user without an account is offered the form at once.
    expect(form).to_be_visible()
    expect(page.locator("#account-summary")).to_contain_text("No paper account")
    form.get_by_label("Name").fill("Swing book")
    form.get_by_label("Starting cash").fill("250000")
    form.get_by_role("button", name="Create account").click()
    funds = page.locator("#funds")
    expect(funds.locator("[data-field=starting_cash]")).to_have_text("2,50,000.00")
    expect(funds.locator("[data-field=cash]")).to_have_text("2,50,000.00")
    expect(funds.locator("[data-field=equity]")).to_have_text("2,50,000.00")
    expect(page.locator("#account-select option:checked")).to_have_text("Swing book · INR")
    expect(page.locator("#margins [data-field=available]")).to_have_text("2,50,000.00")
    accounts = api_get(page, dashboard, "/api/v1/accounts")["items"]
    assert [(a["name"], a["starting_cash"]) for a in accounts] == [("Swing book", "250000")]
    assert page.locator("body").get_attribute("data-account") == accounts[0]["id"]


def test_a_market_buy_fills_and_its_position_marks_live(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    account = open_account(page, dashboard)
    open_page(page, dashboard, "/trading")
    ticket = page.locator("#ticket")
    ticket.get_by_label("Instrument", exact=True).fill(INSTRUMENT)
    ticket.get_by_label("Quantity", exact=True).fill("7")
    # The charges preview answers before anything is placed.
    expect(page.locator("#charges [data-field=total]")).to_have_text(re.compile(r"^\d+\.\d\d$"))
    expect(page.locator("#charges [data-field=value]")).to_contain_text(" at ")
    ticket.get_by_role("button", name="Place buy order").click()

    order = order_rows(page).first
    expect(order.locator("[data-field=status] .badge")).to_have_text("filled")
    expect(order.locator("[data-field=filled]")).to_have_text("7")
    # In one fill or more: a market order takes what the ask displays (1-39 shares in the
    # demo's SIM quotes), and the rest at the next quotes.
    fill = page.locator("#fills tbody tr[data-execution-id]")
    bought = api_get(page, dashboard, f"/api/v1/accounts/{account}/fills")["items"]
    assert sum(Decimal(f["quantity"]) for f in bought) == 7
    assert {f["side"] for f in bought} == {"buy"}
    expect(fill).to_have_count(len(bought))
    # The same fills (the page and the API may list fills of the same time in either order).
    shown = fill.evaluate_all(
        "rows => rows.map(r => [r.dataset.executionId,"
        " r.querySelector('[data-field=quantity]').textContent,"
        " r.querySelector('[data-field=side]').textContent])"
    )
    assert sorted(map(tuple, shown)) == sorted(
        (f["execution_id"], f["quantity"], "buy") for f in bought
    )

    position = page.locator(f"#positions tbody tr[data-instrument='{INSTRUMENT}']")
    expect(position.locator("[data-field=quantity]")).to_have_text("7")
    pnl = position.locator("[data-field=unrealised]")
    expect(pnl).to_have_text(re.compile(r"^-?[\d,]+\.\d\d$"))
    # Live: the marks move with the ticks, and the P&L is exactly 7 x (last - average).
    first = pnl.inner_text()
    expect(pnl).not_to_have_text(first, timeout=20_000)
    # The funds follow the marks too (the server's, read again while the ticks move them):
    # once the ticks pause for the page's refresh, the funds value the position at the
    # row's last price, and the equity adds up.  (SIM:ALPHA's last moves a 0.05 tick every
    # few seconds, irregularly, so "the equity changed" alone could race the first read.)
    page.wait_for_function(
        """qty => {
          const cents = (el) => Math.round(Number(el.textContent.replaceAll(",", "")) * 100);
          const row = document.querySelector("#positions tbody tr[data-instrument='SIM:ALPHA']");
          const funds = (f) => cents(document.querySelector(`#funds [data-field=${f}]`));
          const value = funds("positions_value");
          return value === qty * cents(row.querySelector("[data-field=last]"))
            && funds("equity") === funds("cash") + funds("reserved") + funds("margin_used") + value;
        }""",
        arg=7,
        timeout=20_000,
    )
    cells = position.evaluate(
        "tr => ['last', 'average', 'unrealised'].map("
        "f => tr.querySelector(`[data-field=${f}]`).textContent)"
    )
    last, average = (Decimal(c.replace(",", "")) for c in cells[:2])
    assert grouped(Decimal(7) * (last - average)) == cells[2], cells

    # Close the position: a market sell of the whole quantity (in one fill or more, as the
    # displayed bid size allows).
    position.get_by_role("button", name=f"Close {INSTRUMENT} cnc").click()
    expect(position.locator("[data-field=quantity]")).to_have_text("0")
    expect(fill.first.locator("[data-field=side]")).to_have_text("sell")
    rest = api_get(page, dashboard, f"/api/v1/accounts/{account}/fills")["items"]
    assert sum(Decimal(f["quantity"]) for f in rest if f["side"] == "sell") == 7
    expect(fill).to_have_count(len(rest))
    held = api_get(page, dashboard, f"/api/v1/accounts/{account}/positions")["items"]
    assert all(p["quantity"] == "0" for p in held)


def test_a_resting_limit_is_modified_then_canceled(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    account = open_account(page, dashboard)
    open_page(page, dashboard, "/trading")
    ticket = page.locator("#ticket")
    ticket.locator("#ticket-type").select_option("limit")
    price = price_near(page, dashboard, "0.95")
    ticket.get_by_label("Limit price", exact=True).fill(price)
    ticket.get_by_label("Quantity", exact=True).fill("4")
    # The limit price is the preview's price.
    expect(page.locator("#charges [data-field=value]")).to_contain_text(f"at {price}")
    ticket.get_by_role("button", name="Place buy order").click()

    row = order_rows(page).first
    status = row.locator("[data-field=status] .badge")
    expect(status).to_have_text("new")
    expect(row.locator("[data-field=limit]")).to_have_text(price)
    # Cash is set aside for it.
    expect(page.locator("#funds [data-field=reserved]")).not_to_have_text("0.00")

    lower = str(Decimal(price) - TICK * 2)
    row.get_by_role("button", name=f"Modify buy 4 {INSTRUMENT}").click()
    modify = page.locator("#modify-form")
    modify.get_by_label("Limit price").fill(lower)
    modify.get_by_role("button", name="Save changes").click()
    expect(row.locator("[data-field=limit]")).to_have_text(lower)
    expect(modify).to_be_hidden()

    row.get_by_role("button", name=f"Cancel buy 4 {INSTRUMENT}").click()
    expect(status).to_have_text("canceled")
    expect(row.get_by_role("button", name=f"Cancel buy 4 {INSTRUMENT}")).to_be_hidden()
    order_id = row.get_attribute("data-order-id")
    order = api_get(page, dashboard, f"/api/v1/accounts/{account}/orders/{order_id}")
    assert order["status"] == "canceled"
    assert order["limit_price"] == lower
    expect(page.locator("#funds [data-field=reserved]")).to_have_text("0.00")


def test_a_bad_order_shows_the_api_error_and_creates_nothing(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    account = open_account(page, dashboard)
    open_page(page, dashboard, "/trading")
    ticket = page.locator("#ticket")
    error = ticket.locator(".form-error")
    ticket.locator("#ticket-type").select_option("limit")
    ticket.get_by_role("button", name="Place buy order").click()
    expect(error).to_contain_text("a limit order needs limit_price")

    ticket.locator("#ticket-type").select_option("market")
    expect(ticket.get_by_label("Limit price", exact=True)).to_be_hidden()
    quantity = ticket.get_by_label("Quantity", exact=True)
    quantity.fill("-5")
    ticket.get_by_role("button", name="Place buy order").click()
    expect(error).to_contain_text("quantity: Input should be greater than 0")
    expect(quantity).to_have_attribute("aria-invalid", "true")

    # A price off the band: the domain's own refusal, with its numbers.
    quantity.fill("5")
    ticket.locator("#ticket-type").select_option("limit")
    ticket.get_by_label("Limit price", exact=True).fill("1.00")
    ticket.get_by_role("button", name="Place buy order").click()
    expect(error).to_contain_text("more than 10% away from the last price")

    expect(page.locator("#orders tbody")).to_contain_text("No orders yet.")
    assert api_get(page, dashboard, f"/api/v1/accounts/{account}/orders")["items"] == []


def test_a_bracket_order_shows_its_children(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    account = open_account(page, dashboard)
    open_page(page, dashboard, "/trading")
    ticket = page.locator("#ticket")
    take_profit = ticket.get_by_label("Take-profit limit price")
    expect(take_profit).to_be_hidden()  # a simple order has no exits
    ticket.get_by_label("Order class").select_option("bracket")
    expect(take_profit).to_be_visible()
    # IOC and FOK are not for groups; nor is a trailing stop.
    expect(ticket.locator("#ticket-tif option[value=ioc]")).to_be_disabled()
    expect(ticket.locator("#ticket-type option[value=trailing_stop]")).to_be_disabled()
    ticket.locator("#ticket-type").select_option("limit")
    ticket.get_by_label("Quantity", exact=True).fill("3")
    entry = price_near(page, dashboard, "0.95")
    ticket.get_by_label("Limit price", exact=True).fill(entry)
    take_profit.fill(price_near(page, dashboard, "1.03"))
    ticket.get_by_label("Stop-loss stop price").fill(price_near(page, dashboard, "0.93"))
    ticket.get_by_label("Time in force").select_option("gtc")
    ticket.get_by_role("button", name="Place buy order (bracket)").click()

    rows = order_rows(page)
    expect(rows).to_have_count(3)
    parent = rows.nth(0)
    expect(parent.locator("[data-field=class]")).to_have_text("bracket")
    parent_id = parent.get_attribute("data-order-id")
    children = page.locator(f"#orders tbody tr[data-parent-id='{parent_id}']")
    expect(children).to_have_count(2)
    # The exits in the API's order of a bracket's legs (Alpaca's): the take-profit first.
    expect(children.locator("[data-field=class]")).to_have_text(["take-profit", "stop-loss"])
    expect(children.locator("[data-field=side]")).to_have_text(["sell", "sell"])
    expect(children.locator("[data-field=status] .badge")).to_have_text(["held", "held"])
    orders = api_get(page, dashboard, f"/api/v1/accounts/{account}/orders")["items"]
    assert sorted(str(o["parent_id"]) for o in orders) == sorted([parent_id, parent_id, "None"])

    # Canceling the entry cancels its exits: the whole group, live.
    parent.get_by_role("button", name=f"Cancel buy 3 {INSTRUMENT}").click()
    expect(rows.locator("[data-field=status] .badge")).to_have_text(["canceled"] * 3)


def test_reset_brings_the_account_back_to_its_starting_cash(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    account = open_account(page, dashboard)
    api_post(
        page,
        dashboard,
        f"/api/v1/accounts/{account}/orders",
        {"instrument": INSTRUMENT, "side": "buy", "quantity": "2", "type": "market"},
    )
    open_page(page, dashboard, "/trading")
    position = page.locator(f"#positions tbody tr[data-instrument='{INSTRUMENT}']")
    expect(position.locator("[data-field=quantity]")).to_have_text("2")
    expect(page.locator("#funds [data-field=cash]")).not_to_have_text("5,00,000.00")
    reset = page.get_by_role("button", name="Reset account")
    reset.click()
    page.get_by_role("button", name="Confirm reset: everything goes").click()
    expect(page.locator("#funds [data-field=cash]")).to_have_text("5,00,000.00")
    expect(position).to_have_count(0)
    expect(order_rows(page)).to_have_count(0)
    expect(page.locator("#fills tbody")).to_contain_text("No fills yet.")


def test_another_users_account_and_orders_never_appear(
    signed_in: Page,
    dashboard: Dashboard,
    browser: Browser,
    new_user: Callable[[], User],
) -> None:
    page = signed_in
    theirs = open_account(page, dashboard, name="Alice private book")
    order = api_post(
        page,
        dashboard,
        f"/api/v1/accounts/{theirs}/orders",
        {
            "instrument": INSTRUMENT,
            "side": "buy",
            "quantity": "9",
            "type": "limit",
            "limit_price": price_near(page, dashboard, "0.95"),
        },
    )
    open_page(page, dashboard, "/trading")
    expect(order_rows(page)).to_have_count(1)

    other = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        errors: list[str] = []
        intruder = other.new_page()
        intruder.set_default_timeout(15_000)
        intruder.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(intruder, dashboard, new_user())
        open_account(intruder, dashboard, name="Bob's own book")
        # Even asked for by id, the other user's account is not shown.
        open_page(intruder, dashboard, f"/trading?account={theirs}")
        expect(intruder.locator("#notices")).to_contain_text("not one of yours")
        expect(intruder.locator("#account-select option:checked")).to_have_text(
            "Bob's own book · INR"
        )
        expect(intruder.locator(f"#account-select option[value='{theirs}']")).to_have_count(0)
        expect(intruder.locator("#orders tbody")).to_contain_text("No orders yet.")
        assert "Alice private book" not in intruder.locator("main").inner_text()
        assert intruder.locator(f"[data-order-id='{order['id']}']").count() == 0
        # The API agrees: not found, the same answer as for an account that does not exist.
        answer = intruder.request.get(f"{dashboard.base}/api/v1/accounts/{theirs}/orders")
        assert answer.status == 404
        assert not errors, errors
    finally:
        other.close()
