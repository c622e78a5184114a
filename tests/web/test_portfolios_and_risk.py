"""The portfolios and risk pages in a real browser: a portfolio created and a transaction
added in the page, an import previewed (its bad line shown, nothing written) then fixed and
imported, performance against a benchmark and the realised gains, the risk page's VaR and
scenario grid, and another user's portfolio never shown.

Trade dates are relative to today (the demo bars cover about two years before it) and
trade prices are the demo bars' closes, so the returns are the demo market's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from playwright.sync_api import APIResponse, FilePayload, Page, Request, Route, expect

from tests.web.conftest import Dashboard, User, open_page, sign_in

JsonDict = dict[str, Any]


# --- set-up through the API -------------------------------------------------------------------
# The test's own requests go through an API key of the signed-in user: a key has its own rate
# budget (20 requests a second), so they never use up the page's.
_KEYS: dict[str, str] = {}  # the session's qd_csrf cookie -> an API key of its user


def _headers(page: Page, dashboard: Dashboard) -> dict[str, str]:
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "qd_csrf")
    if csrf not in _KEYS:
        made = page.request.post(
            dashboard.base + "/api/v1/api-keys",
            data={"name": "browser test", "scopes": ["read", "trade"]},
            headers={"X-CSRF-Token": csrf, "Origin": dashboard.base},
        )
        assert made.ok, made.text()
        _KEYS[csrf] = made.json()["key"]
    # (The session cookies go along, so the CSRF check still applies.)
    return {
        "Authorization": f"Bearer {_KEYS[csrf]}",
        "X-CSRF-Token": csrf,
        "Origin": dashboard.base,
    }


def _answer(page: Page, dashboard: Dashboard, path: str, **params: Any) -> APIResponse:
    headers = _headers(page, dashboard)
    return page.request.get(dashboard.base + path, params=params or None, headers=headers)


def _get(page: Page, dashboard: Dashboard, path: str, **params: Any) -> Any:
    answer = _answer(page, dashboard, path, **params)
    assert answer.ok, answer.text()
    return answer.json()


def _post(page: Page, dashboard: Dashboard, path: str, body: JsonDict) -> Any:
    answer = page.request.post(dashboard.base + path, data=body, headers=_headers(page, dashboard))
    assert answer.ok, answer.text()
    return answer.json()


def _bar(page: Page, dashboard: Dashboard, key: str, days_ago: int) -> tuple[str, str]:
    """The first daily bar on or after the day `days_ago` before today: (its date, close)."""
    day = (dt.date.today() - dt.timedelta(days=days_ago)).isoformat()
    bars = _get(
        page, dashboard, f"/api/v1/market/bars/{key}", timeframe="1d", limit=1, **{"from": day}
    )
    assert bars["t"], f"no daily bar of {key} from {day}"
    opened = dt.datetime.fromtimestamp(bars["t"][0], dt.UTC).date().isoformat()
    return opened, bars["c"][0]


def _portfolio(page: Page, dashboard: Dashboard, name: str) -> str:
    made = _post(page, dashboard, "/api/v1/portfolios", {"name": name, "currency": "INR"})
    return str(made["id"])


def _import(page: Page, dashboard: Dashboard, portfolio: str, csv: str) -> JsonDict:
    answer = page.request.post(
        f"{dashboard.base}/api/v1/portfolios/{portfolio}/imports",
        multipart={"file": {"name": "t.csv", "mimeType": "text/csv", "buffer": csv.encode()}},
        headers=_headers(page, dashboard),
    )
    assert answer.ok, answer.text()
    result: JsonDict = answer.json()
    return result


def _equity_csv(page: Page, dashboard: Dashboard) -> str:
    """Buys of RELIANCE, INFY and AAPL a year or more ago and a partial sale of INFY."""
    lines = ["date,type,instrument,quantity,price,fees,amount"]
    for key, days_ago, quantity in (
        ("NSE:RELIANCE", 560, "100"),
        ("NSE:INFY", 500, "60"),
        ("NASDAQ:AAPL", 420, "10"),
    ):
        day, close = _bar(page, dashboard, key, days_ago)
        lines.append(f"{day},buy,{key},{quantity},{close},20,")
    day, close = _bar(page, dashboard, "NSE:INFY", 200)
    lines.append(f"{day},sell,NSE:INFY,20,{close},10,")
    return "\n".join(lines) + "\n"


def _inr(amount: str, places: int = 2) -> str:
    """An amount as the page shows INR: 2 places, Indian grouping (12,34,567.50)."""
    value = Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(value):f}".partition(".")
    head, tail = whole[:-3], whole[-3:]
    groups: list[str] = []
    while head:
        groups.insert(0, head[-2:])
        head = head[:-2]
    return (
        ("-" if value < 0 else "") + ",".join([*groups, tail]) + ("." + fraction if places else "")
    )


def _pct(fraction: str) -> str:
    """A decimal-string fraction as the page shows it: percent, 2 places, half away from 0."""
    value = (Decimal(fraction) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{abs(value) if value == 0 else value:,}%"


# --- portfolios -------------------------------------------------------------------------------
def test_create_a_portfolio_and_add_a_transaction(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, "/portfolios")
    expect(page.locator("#pf-empty")).to_be_visible()
    # The page follows no stream, so it shows no stream status (never a false "offline").
    expect(page.locator("#stream-status")).to_be_hidden()
    create = page.locator("#pf-create")
    create.get_by_label("Name").fill("Long term")
    create.get_by_label("Base currency").select_option("INR")
    create.get_by_role("button", name="Create portfolio").click()
    expect(page.locator("#pf-select option:checked")).to_have_text("Long term (INR)")
    expect(page.locator("#pf-meta")).to_contain_text("INR")
    # The notice stays 6 s over the form's button below; clicks go through it (the click
    # below would wait for it to leave and time out after 2 s otherwise).
    expect(page.locator("#notices")).to_contain_text("Portfolio “Long term” created.")

    day, close = _bar(page, dashboard, "NSE:INFY", 300)
    page.get_by_role("tab", name="Transactions").click()
    form = page.locator("#txn-form")
    form.get_by_label("Type").select_option("buy")
    form.get_by_label("Date", exact=True).fill(day)
    form.get_by_label("Instrument", exact=True).fill("nse:infy")
    form.get_by_label("Quantity").fill("12")
    form.get_by_label("Price").fill(close)
    form.get_by_label("Fees").fill("20")
    form.get_by_role("button", name="Add transaction").click(timeout=2_000)
    row = page.locator("#transactions tbody tr").first
    expect(row.locator("[data-field=instrument]")).to_have_text("NSE:INFY")
    expect(row.locator("[data-field=quantity]")).to_have_text("12")
    expect(page.locator("#notices")).to_contain_text("Recorded: buy NSE:INFY 12")

    # A sale of more than is held is refused next to the form; nothing changes.
    form.get_by_label("Type").select_option("sell")
    form.get_by_label("Quantity").fill("50")
    form.get_by_label("Price").fill(close)
    form.get_by_role("button", name="Add transaction").click(timeout=2_000)
    expect(form.locator(".form-error")).to_contain_text("exceeds")

    page.get_by_role("tab", name="Holdings").click()
    holding = page.locator("#holdings tr[data-instrument='NSE:INFY']")
    expect(holding.locator("[data-field=quantity]")).to_have_text("12")
    portfolio = page.locator("#pf-select").input_value()
    held = _get(page, dashboard, f"/api/v1/portfolios/{portfolio}/holdings")
    assert [(h["instrument"], h["quantity"]) for h in held["items"]] == [("NSE:INFY", "12")]
    cost = next(h["cost_basis"] for h in held["items"])
    expect(holding.locator("[data-field=cost_basis]")).to_have_text(_inr(cost))
    # The tab is in the address: a reload comes back to it.
    expect(page).to_have_url(f"{dashboard.base}/portfolios?id={portfolio}&tab=overview")


def test_import_shows_the_bad_line_and_imports_nothing_until_fixed(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    portfolio = _portfolio(page, dashboard, "Imported")
    day1, close1 = _bar(page, dashboard, "NSE:RELIANCE", 400)
    day2, close2 = _bar(page, dashboard, "NSE:INFY", 380)
    good = f"{day2},buy,NSE:INFY,25,{close2},20,"
    bad = f"{day2},buy,NSE:INFY,twenty-five,{close2},20,"
    header = "date,type,instrument,quantity,price,fees,amount"
    deposit = f"{day1},deposit,,,,,500000"
    buy = f"{day1},buy,NSE:RELIANCE,40,{close1},20,"
    open_page(page, dashboard, f"/portfolios?id={portfolio}&tab=import")
    first = "\n".join([header, deposit, buy, bad, ""])
    upload: FilePayload = {"name": "trades.csv", "mimeType": "text/csv", "buffer": first.encode()}
    page.set_input_files("#import-file", files=[upload])
    expect(page.locator("#import-text")).to_have_value(first)
    page.get_by_role("button", name="Preview").click()
    error = page.locator("#import-errors tr[data-line='4']")
    expect(error).to_be_visible()
    expect(error.locator("[data-field=message]")).to_contain_text("not a number")
    expect(page.locator("#import-errors tbody tr")).to_have_count(1)
    expect(page.locator("#import-commit")).to_be_disabled()
    expect(page.locator("#import-status")).to_contain_text("Nothing was written")
    # Nothing was imported, not even the good lines.
    listed = _get(page, dashboard, f"/api/v1/portfolios/{portfolio}/transactions")
    assert listed["items"] == []

    # Fixed in the page: the preview lists what would be created, then the import writes it.
    page.get_by_label("Contents").fill("\n".join([header, deposit, buy, good, ""]))
    expect(page.locator("#import-commit")).to_be_disabled()
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-errors")).to_be_hidden()
    expect(page.locator("#import-rows tbody tr")).to_have_count(3)
    assert _get(page, dashboard, f"/api/v1/portfolios/{portfolio}/transactions")["items"] == []
    commit = page.get_by_role("button", name="Import 3 transactions")
    expect(commit).to_be_enabled()
    commit.click()
    expect(page.locator("#import-status")).to_have_text("Imported 3 transaction(s).")
    listed = _get(page, dashboard, f"/api/v1/portfolios/{portfolio}/transactions")
    assert sorted(t["type"] for t in listed["items"]) == ["buy", "buy", "deposit"]

    # (Demo prices move: the allocation is compared with the answer the page received.)
    with page.expect_response(lambda r: "/allocation" in r.url) as answer:
        page.get_by_role("tab", name="Holdings").click()
    expect(
        page.locator("#holdings tr[data-instrument='NSE:RELIANCE'] [data-field=quantity]")
    ).to_have_text("40")
    expect(
        page.locator("#holdings tr[data-instrument='NSE:INFY'] [data-field=quantity]")
    ).to_have_text("25")
    held = _get(page, dashboard, f"/api/v1/portfolios/{portfolio}/holdings")
    expect(page.locator("#holdings-summary [data-field=cost_basis]")).to_have_text(
        _inr(held["cost_basis"])
    )
    # Allocation: the deposit's cash left over and the two equities, as the API weighs them.
    allocation = answer.value.json()
    slices = page.locator("#allocation tbody tr")
    expect(slices).to_have_count(len(allocation["asset_class"]))
    for i, part in enumerate(allocation["asset_class"]):
        expect(slices.nth(i).locator("[data-field=key]")).to_have_text(part["key"])
        expect(slices.nth(i).locator("[data-field=weight]")).to_have_text(_pct(part["weight"]))
    expect(page.locator("#allocation-figure img")).to_be_visible()
    # The same file again: every line is already there, so there is nothing to import.
    page.get_by_role("tab", name="Import").click()
    page.get_by_label("Contents").fill("\n".join([header, deposit, buy, good, ""]))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#import-skipped tbody tr")).to_have_count(3)
    expect(page.locator("#import-commit")).to_be_disabled()


def test_performance_against_a_benchmark(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    portfolio = _portfolio(page, dashboard, "Performance")
    _import(page, dashboard, portfolio, _equity_csv(page, dashboard))
    base = f"/api/v1/portfolios/{portfolio}"
    # (Demo prices move, and today's value with them: figures are compared with the answers
    # the page received.)
    with (
        page.expect_response(lambda r: "/performance?" in r.url) as performance,
        page.expect_response(lambda r: "/performance/periods" in r.url) as by_period,
        page.expect_response(lambda r: "/benchmark?" in r.url) as benchmark,
    ):
        open_page(page, dashboard, f"/portfolios?id={portfolio}&tab=performance")

    # The chart: one point per day of the series since the start.
    whole = performance.value.json()
    series = _get(page, dashboard, f"{base}/series", to=whole["to"], **{"from": whole["from"]})
    drawn = sum(1 for value in series["cumulative_twr"] if value is not None)
    assert drawn > 300
    chart = page.locator("#perf-chart")
    expect(chart.locator("canvas").first).to_be_visible()
    expect(chart).to_have_attribute("data-points", str(drawn))
    # The benchmark's line: one point per daily bar of the index in the range.
    nifty = _get(
        page,
        dashboard,
        "/api/v1/market/bars/NSE:NIFTY 50",
        timeframe="1d",
        to=whole["to"],
        limit=100000,
        **{"from": whole["from"]},
    )
    sessions = [
        day
        for t in nifty["t"]
        if whole["from"] <= (day := dt.datetime.fromtimestamp(t, dt.UTC).date().isoformat())
    ]
    assert len(sessions) > 200
    expect(chart).to_have_attribute("data-benchmark-points", str(len(sessions)))
    expect(page.locator("#perf-facts [data-field=twr]")).to_have_text(_pct(whole["twr"]))
    bench = benchmark.value.json()
    expect(page.locator("#bench-facts [data-field=benchmark_twr]")).to_have_text(
        _pct(bench["benchmark_twr"])
    )

    # The periods table: the same figures as the API's.
    periods = {p["period"]: p for p in by_period.value.json()["periods"]}
    for name in ("1y", "max"):
        row = page.locator(f"#periods tr[data-period='{name}']")
        expect(row.locator("[data-field=twr]")).to_have_text(_pct(periods[name]["twr"]))
        expect(row.locator("[data-field=xirr]")).to_have_text(_pct(periods[name]["xirr"]))
        expect(row.locator("[data-field=from]")).to_have_text(periods[name]["from"])

    # Another period: the range and the figures follow.
    form = page.locator("#perf-form")
    form.get_by_label("Period").select_option("1y")
    with page.expect_response(lambda r: "/performance?" in r.url) as performance:
        form.get_by_role("button", name="Show").click()
    one_year = performance.value.json()
    expect(page.locator("#perf-range")).to_contain_text(f"{one_year['from']} to {one_year['to']}")
    expect(page.locator("#perf-facts [data-field=twr]")).to_have_text(_pct(one_year["twr"]))

    # Realised gains: the partial sale of INFY, from its lot bought 300 days earlier.
    page.get_by_role("tab", name="Realised gains").click()
    gains = _get(page, dashboard, f"{base}/gains")
    assert len(gains["sales"]) == 1
    expect(page.locator("#gains-facts [data-field=realized_pnl]")).to_have_text(
        _inr(gains["realized_pnl"])
    )
    lot = gains["sales"][0]["lots"][0]
    sale = page.locator("#gains-sales tbody tr")
    expect(sale).to_have_count(1)
    expect(sale.locator("[data-field=instrument]")).to_have_text("NSE:INFY")
    expect(sale.locator("[data-field=quantity]")).to_have_text("20")
    expect(sale.locator("[data-field=realized_pnl]")).to_have_text(_inr(lot["realized_pnl"]))
    expect(sale.locator("[data-field=term]")).to_have_text(lot["term"])


# --- risk -------------------------------------------------------------------------------------
def _nifty_call(page: Page, dashboard: Dashboard) -> tuple[str, str, str]:
    """An at-the-money NIFTY call of the second listed expiry: (key, lot size, last price)."""
    expiries = _get(page, dashboard, "/api/v1/instruments/NIFTY/expiries", exchange="NFO")
    chain = _get(
        page,
        dashboard,
        "/api/v1/instruments/NIFTY/chain",
        exchange="NFO",
        expiry=expiries["expiries"][1],
    )
    spot = Decimal(
        _get(page, dashboard, "/api/v1/market/quotes", keys="NSE:NIFTY 50")["quotes"][0]["last"]
    )
    strike = min(chain["strikes"], key=lambda s: abs(Decimal(s["strike"]) - spot))
    call = strike["call"]
    quote = _get(page, dashboard, "/api/v1/market/quotes", keys=call["key"])["quotes"][0]
    return call["key"], call["lot_size"], quote["last"]


def test_risk_shows_the_portfolios_var_and_scenario_grid(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    portfolio = _portfolio(page, dashboard, "With calls")
    option, lot, price = _nifty_call(page, dashboard)
    recent = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    csv = _equity_csv(page, dashboard) + f"{recent},buy,{option},{lot},{price},20,\n"
    _import(page, dashboard, portfolio, csv)
    with page.expect_response(lambda r: "/scenarios?" in r.url) as scenarios:
        open_page(page, dashboard, f"/risk?source=portfolio:{portfolio}")

    measures = _get(page, dashboard, f"/api/v1/portfolios/{portfolio}/risk")
    historical = page.locator("#var-table tr[data-method=historical]")
    expect(historical.locator("[data-field=var]")).to_have_text(
        f"{measures['var_historical'] * 100:.2f}%"
    )
    expect(historical.locator("[data-field=cvar]")).to_have_text(
        f"{measures['cvar_historical'] * 100:.2f}%"
    )
    parametric = page.locator("#var-table tr[data-method=parametric] [data-field=var]")
    expect(parametric).to_have_text(f"{measures['var_parametric'] * 100:.2f}%")
    expect(page.locator("#measures [data-field=observations]")).to_have_text(
        str(measures["observations"])
    )

    # The grid: one coloured cell per spot move x IV change, as the API answers it.
    query = {"underlying_range": 0.1, "underlying_points": 11, "iv_range": 0.3, "iv_points": 7}
    grid = _get(page, dashboard, f"/api/v1/portfolios/{portfolio}/scenarios", **query)
    cells = len(grid["underlying_moves"]) * len(grid["iv_changes"])
    assert cells == 77
    expect(page.locator("#scen-grids td.rk-cell")).to_have_count(cells)
    expect(page.locator("#scen-grids td.rk-worst")).to_have_count(1)
    # (The option's quotes may move: the worst cell is compared with the page's own answer.)
    worst = scenarios.value.json()["worst"]
    assert worst["pnl"].startswith("-")
    expect(page.locator("#scen-grids td.rk-worst")).to_have_text(_inr(worst["pnl"], 0))
    expect(page.locator("#scen-facts [data-field=worst]")).to_contain_text(_inr(worst["pnl"]))
    expect(page.locator("#scen-grids td.rk-now")).to_have_text("0")
    expect(page.locator("#scen-grids td.rk-cell[class*=heat-down]").first).to_be_visible()
    expect(page.locator("#scen-grids td.rk-cell[class*=heat-up]").first).to_be_visible()

    # A coarser grid over two horizons: two tables of 5 x 3.
    scen = page.locator("#scen-form")
    scen.get_by_label("Spot points").fill("5")
    scen.get_by_label("IV points").fill("3")
    scen.get_by_label("Days forward").fill("0, 5")
    scen.get_by_role("button", name="Reprice").click()
    expect(page.locator("#scen-grids table")).to_have_count(2)
    expect(page.locator("#scen-grids td.rk-cell")).to_have_count(2 * 5 * 3)

    # Optimised weights for the priced holdings, with the trades that get there.
    expect(page.locator("#opt-weights tbody tr")).to_have_count(4)
    expect(page.locator("#opt-trades tbody tr").first).to_be_visible()


def test_risk_of_a_paper_account(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    account = _post(page, dashboard, "/api/v1/accounts", {"name": "Paper", "currency": "INR"})
    for key, quantity in (("SIM:ALPHA", "100"), ("SIM:BETA", "50")):
        _post(
            page,
            dashboard,
            f"/api/v1/accounts/{account['id']}/orders",
            {
                "instrument": key,
                "side": "buy",
                "quantity": quantity,
                "type": "market",
                "product": "cnc",
            },
        )
    # The simulated exchange fills market orders on its next tick (a quarter of a second).
    page.goto(dashboard.base + "/risk")
    # (A predicate of wait_for_function is not awaited: it polls the answer of a fetch it
    # starts whenever none is running.)
    page.wait_for_function(
        """(id) => {
            if (!window.positionsAsked) {
                window.positionsAsked = true;
                fetch(`/api/v1/accounts/${id}/positions`, {credentials: "same-origin"})
                    .then((r) => (r.ok ? r.json() : {items: []}))
                    .then((page) => { window.positionsHeld = page.items.length; })
                    .finally(() => { window.positionsAsked = false; });
            }
            return window.positionsHeld === 2;
        }""",
        arg=account["id"],
        polling=250,
    )
    # SIM prices move every quarter of a second, and the weights with them: compare with the
    # answer this page load received.
    # The answer of the page load below: the /risk page opened above may still be asking
    # (for this account, its default source), and that answer's body is gone once the page
    # navigates.  Leaving it first cancels whatever it asked.
    page.goto("about:blank")
    asked = f"/api/v1/risk/accounts/{account['id']}/measures?"
    with page.expect_response(lambda r: asked in r.url) as answer:
        open_page(page, dashboard, f"/risk?source=account:{account['id']}")
    measures = answer.value.json()
    expect(page.locator("#var-table tr[data-method=historical] [data-field=var]")).to_have_text(
        f"{measures['var_historical'] * 100:.2f}%"
    )
    expect(page.locator("#components tbody tr")).to_have_count(2)
    # No F&O in the book: the grid says so; optimisation is offered for portfolios only.
    expect(page.locator("#scen-message")).to_contain_text("no option or future")
    expect(page.locator("#opt-card")).to_be_hidden()


# --- privacy ----------------------------------------------------------------------------------
def test_another_users_portfolio_never_appears(
    signed_in: Page, dashboard: Dashboard, new_user: Callable[[], User]
) -> None:
    page = signed_in
    theirs = _portfolio(page, dashboard, "Someone else's savings")
    day = dt.date.today().isoformat()
    deposit = {"type": "deposit", "date": day, "amount": "100000"}
    _post(page, dashboard, f"/api/v1/portfolios/{theirs}/transactions", deposit)
    page.context.clear_cookies()  # signed out: the second user signs in
    sign_in(page, dashboard, new_user())
    mine = _portfolio(page, dashboard, "Mine")
    assert _answer(page, dashboard, f"/api/v1/portfolios/{theirs}").status == 404

    # Their id in the address: the API's not-found, none of their data, only my portfolio.
    open_page(page, dashboard, f"/portfolios?id={theirs}")
    missing = page.locator("#pf-missing")
    expect(missing).to_contain_text("Portfolio not found")
    expect(missing).to_contain_text(f"no portfolio {theirs}")
    expect(page.locator("#pf-body")).to_be_hidden()
    expect(page.locator("#pf-select option:not([disabled])")).to_have_text(["Mine (INR)"])
    expect(page.locator("main")).not_to_contain_text("Someone else")
    # Choosing my own shows it, and the message goes.
    page.locator("#pf-select").select_option(mine)
    expect(missing).to_be_hidden()
    expect(page.locator("#holdings tbody")).to_contain_text("No holding yet")
    expect(page).to_have_url(f"{dashboard.base}/portfolios?id={mine}&tab=overview")

    # The risk page likewise: nothing measured for their id, their portfolio not offered.
    open_page(page, dashboard, f"/risk?source=portfolio:{theirs}")
    expect(page.locator("#risk-missing")).to_contain_text(f"no portfolio {theirs}")
    expect(page.locator("#var-table")).to_be_hidden()
    expect(page.locator("#risk-source option:not([disabled])")).to_have_text(["Mine (INR)"])
    expect(page.locator("main")).not_to_contain_text("Someone else")


# --- the optimised trades as paper orders -----------------------------------------------------
def test_optimised_trades_sent_as_paper_orders(signed_in: Page, dashboard: Dashboard) -> None:
    """Cancel places nothing; an answer lost on the way is asked for again with the same
    Idempotency-Key, so the order exists once; a refusal shows the server's reason."""
    page = signed_in
    portfolio = _portfolio(page, dashboard, "To rebalance")
    lines = ["date,type,instrument,quantity,price,fees,amount"]
    for key, quantity in (("SIM:ALPHA", "1000"), ("SIM:BETA", "10")):
        day, close = _bar(page, dashboard, key, 300)
        lines.append(f"{day},buy,{key},{quantity},{close},0,")
    _import(page, dashboard, portfolio, "\n".join(lines) + "\n")
    account = _post(page, dashboard, "/api/v1/accounts", {"name": "Rebalance", "currency": "INR"})
    orders = f"/api/v1/accounts/{account['id']}/orders"
    open_page(page, dashboard, f"/risk?source=portfolio:{portfolio}")

    # At most 60% in one holding: ALPHA, nearly all of the value, is sold down and BETA bought.
    # (SIM prices move: the quantities are the answer the page received.)
    form = page.locator("#opt-form")
    form.get_by_label("Objective").select_option("min_volatility")
    form.get_by_label("Most per holding (%)").fill("60")
    with page.expect_response(lambda r: "/optimize?" in r.url) as optimised:
        form.get_by_role("button", name="Optimise").click()
    trades = {t["instrument"]: t for t in optimised.value.json()["trades"]}
    assert {k: t["side"] for k, t in trades.items()} == {"SIM:ALPHA": "sell", "SIM:BETA": "buy"}

    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.method == "POST" and orders in r.url else None)
    send = page.locator("#opt-send")
    send.get_by_label("Paper trading account").select_option(account["id"])
    send.get_by_role("button", name="Send as paper orders").click()
    dialog = page.locator("dialog#confirm")
    listed = dialog.locator("#confirm-orders tbody tr")
    expect(listed).to_have_count(2)
    for key, trade in trades.items():
        row = dialog.locator(f"#confirm-orders tr[data-instrument='{key}']")
        expect(row.locator("td, th")).to_have_text(
            [trade["side"], key, f"{Decimal(trade['quantity']):,}", "market", "CNC (delivery)"]
        )
    dialog.get_by_role("button", name="Cancel").click()
    status = page.locator("#opt-send-status")
    expect(status).to_have_text("Canceled: nothing was sent.")
    assert sent == []
    assert _get(page, dashboard, orders, status="all")["items"] == []

    # The buy reaches the server and is placed, but its answer never comes back.
    lost: list[JsonDict] = []

    def lose_the_first_buy(route: Route) -> None:
        if (
            not lost
            and route.request.method == "POST"
            and '"buy"' in (route.request.post_data or "")
        ):
            lost.append(route.fetch().json())
            route.abort("connectionreset")
        else:
            route.fallback()

    page.route(f"**{orders}", lose_the_first_buy)
    send.get_by_role("button", name="Send as paper orders").click()
    dialog.get_by_role("button", name="Place 2 orders").click()
    expect(status).to_have_text("2 orders: 0 accepted, 1 refused, 1 without an answer.")
    assert len(lost) == 1
    assert lost[0]["instrument"] == "SIM:BETA"
    # The sell: a delivery sale of shares the account does not hold, refused as the API says.
    sell = next(r for r in sent if '"sell"' in (r.post_data or ""))
    refused = sell.response()
    assert refused is not None
    assert refused.status == 422
    problem = refused.json()
    result = page.locator("#opt-orders tr[data-instrument='SIM:ALPHA'] [data-field=result]")
    expect(result).to_have_text(f"Refused — {problem['title']}: {problem['detail']}")
    expect(
        page.locator("#opt-orders tr[data-instrument='SIM:BETA'] [data-field=result]")
    ).to_contain_text("No answer")

    # Sent again: the buy with its first key (the server replays the order it placed), the
    # refused sell with a new one.
    send.get_by_role("button", name="Send as paper orders").click()
    expect(listed).to_have_count(2)
    dialog.get_by_role("button", name="Place 2 orders").click()
    expect(status).to_have_text("2 orders: 1 accepted, 1 refused.")
    keys = {
        side: [
            r.header_value("Idempotency-Key") for r in sent if f'"{side}"' in (r.post_data or "")
        ]
        for side in ("buy", "sell")
    }
    first_buy_key = keys["buy"][0]
    assert first_buy_key
    assert keys["buy"] == [first_buy_key, first_buy_key]
    assert len(set(keys["sell"])) == 2
    placed = _get(page, dashboard, orders, status="all")["items"]
    assert [
        (o["instrument"], o["side"], o["quantity"], o["type"], o["product"]) for o in placed
    ] == [("SIM:BETA", "buy", trades["SIM:BETA"]["quantity"], "market", "cnc")]
    assert placed[0]["id"] == lost[0]["id"]
    accepted = page.locator("#opt-orders tr[data-instrument='SIM:BETA']")
    expect(accepted.locator("[data-field=order_id]")).to_have_text(placed[0]["id"])
    expect(accepted.locator("[data-field=quantity]")).to_have_text(
        f"{Decimal(trades['SIM:BETA']['quantity']):,}"
    )

    # A third click offers only the refused sell: the accepted buy is never sent again.
    send.get_by_role("button", name="Send as paper orders").click()
    expect(listed).to_have_count(1)
    expect(listed.locator("[data-field=instrument]")).to_have_text("SIM:ALPHA")
    dialog.get_by_role("button", name="Cancel").click()
    assert len(sent) == 4
