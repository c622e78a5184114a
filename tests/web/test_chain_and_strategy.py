"""The option chain and the strategy builder in a real browser: the chain's IV, Greeks, ATM,
max pain and PCR are the API's, it follows the market live, its legs go to the builder; an
iron condor built from the template shows the analysis the API gives and is placed as one
multi-leg paper order into a fresh account."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, Response, expect

from tests.web.conftest import Dashboard, open_page

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LIVE_TIMEOUT_MS = 15_000

# How the chain page shows each analytic (the exact number is in the cell's data-value).
CHAIN_FORMATS: dict[str, Callable[[float], str]] = {
    "iv": lambda x: f"{x * 100:.2f}",
    "delta": lambda x: f"{x:.4f}",
    "gamma": lambda x: f"{x:.6f}",
    "theta_per_day": lambda x: f"{x:.2f}",
    "vega_per_point": lambda x: f"{x:.2f}",
}


def grouped(text: str, *, indian: bool = False) -> str:
    """A decimal string as ui.js `num` shows it: 1234567.5 -> 1,234,567.5 (or 12,34,567.5)."""
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    if indian and len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        head = re.sub(r"\B(?=(\d{2})+(?!\d))", ",", head)
        body = f"{head},{tail}"
    else:
        body = re.sub(r"\B(?=(\d{3})+(?!\d))", ",", whole)
    return ("-" if negative else "") + body + (f".{fraction}" if fraction else "")


def inr(text: str) -> str:
    """ui.js `money(value, "INR")`: two places, Indian grouping."""
    return grouped(str(Decimal(text).quantize(Decimal("0.01"))), indian=True)


def csrf(page: Page, dashboard: Dashboard) -> dict[str, str]:
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "qd_csrf")
    return {"X-CSRF-Token": token, "Origin": dashboard.base}


def is_chain(underlying: str, *, since_ms: float = 0) -> Callable[[Response], bool]:
    """The page's chain requests, those sent from `since_ms` (epoch) on."""

    def match(response: Response) -> bool:
        sent = response.request.timing["startTime"]
        wanted = f"/api/v1/analytics/chain/{underlying}" in response.url
        return wanted and response.ok and sent >= since_ms

    return match


def analyses_of_legs(response: Response) -> bool:
    if not response.url.endswith("/api/v1/analytics/strategies/analyze"):
        return False
    body = response.request.post_data_json
    return isinstance(body, dict) and "legs" in body and response.ok


@pytest.mark.parametrize("underlying", ["SIM:SIMIDX", "NIFTY"])
def test_chain_shows_the_apis_iv_greeks_atm_max_pain_and_pcr(
    signed_in: Page, dashboard: Dashboard, underlying: str
) -> None:
    page = signed_in
    open_page(page, dashboard, f"/chain?underlying={underlying}")
    root = underlying.split(":")[-1]
    body = page.locator("#chain-table tbody")
    expect(body.locator("tr.atm")).to_have_count(1)
    # Pause the live updates, then reload: the page shows exactly this answer of the API.
    page.get_by_label("Live updates").uncheck()
    clicked = time.time() * 1000  # a live refresh still in flight is not this answer
    with page.expect_response(is_chain(root, since_ms=clicked)) as answered:
        page.get_by_role("button", name="Refresh").click()
    chain: dict[str, Any] = answered.value.json()
    expect(page.locator("#chain-updated")).to_contain_text("paused")

    atm = chain["atm_strike"]
    i = chain["strikes"].index(atm)
    row = body.locator(f"tr[data-strike='{atm}']")
    expect(row).to_have_class(re.compile(r"\batm\b"))
    expect(row.locator("th")).to_have_text(grouped(atm))
    for side, column in (("call", "calls"), ("put", "puts")):
        assert row.get_attribute(f"data-{side}") == chain[column]["key"][i]
        for field, show in CHAIN_FORMATS.items():
            value = chain[column][field][i]
            cell = row.locator(f"td[data-side={side}][data-field={field}]")
            expect(cell).to_have_text("—" if value is None else show(value))
            if value is not None:
                assert float(cell.get_attribute("data-value") or "nan") == value

    # In the money: calls below the spot, puts above it.
    spot = Decimal(chain["spot"])
    below = next(s for s in reversed(chain["strikes"][:i]) if Decimal(s) < spot)
    lower = body.locator(f"tr[data-strike='{below}']")
    expect(lower.locator("td[data-side=call][data-field=iv]")).to_have_class(re.compile(r"\bitm\b"))
    expect(lower.locator("td[data-side=put][data-field=iv]")).not_to_have_class(re.compile(r"itm"))

    max_pain = page.locator("#fact-max-pain")
    expect(max_pain).to_have_text(grouped(chain["max_pain"]))
    assert max_pain.get_attribute("data-value") == chain["max_pain"]
    pcr = page.locator("#fact-pcr-oi")
    expect(pcr).to_have_text(f"{chain['pcr_oi']:.2f}")
    assert float(pcr.get_attribute("data-value") or "nan") == chain["pcr_oi"]
    expect(page.locator("#fact-atm")).to_have_text(grouped(atm))
    expect(page.locator("#fact-lot")).to_have_text(grouped(chain["lot_size"]))

    # The smile: one point per quoted strike on screen, for each side.
    strikes_on_screen = body.locator("tr[data-strike]").evaluate_all(
        "rows => rows.map(r => r.dataset.strike)"
    )
    quoted_calls = sum(
        1 for s in strikes_on_screen if chain["calls"]["iv"][chain["strikes"].index(s)] is not None
    )
    expect(page.locator("#smile svg circle.call-dot.point")).to_have_count(quoted_calls)
    assert quoted_calls > 0

    # The same chain from the API directly: the same contracts and strikes.
    direct = page.request.get(
        f"{dashboard.base}/api/v1/analytics/chain/{root}", params={"expiry": chain["expiry"]}
    ).json()
    assert direct["strikes"] == chain["strikes"]
    assert direct["calls"]["key"] == chain["calls"]["key"]
    expect(page.get_by_label("Expiry")).to_have_value(chain["expiry"])


def test_chain_follows_the_market_live(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, "/chain?underlying=SIMIDX")
    expect(page.locator("#stream-status")).to_have_text("live")
    atm = page.locator("#chain-table tbody tr.atm")
    last = atm.locator("td[data-side=call][data-field=last]")
    expect(last).to_have_attribute("data-value", re.compile(r"^\d+(\.\d+)?$"))
    before = last.get_attribute("data-value") or ""
    stamp = page.locator("#chain-updated")
    fetched = stamp.get_attribute("data-updated") or ""
    # SIM quotes move every quarter second: the stream repaints the quote fields, and the
    # ticks make the page fetch the chain's analytics again (at most every 3 s).
    expect(last).not_to_have_attribute("data-value", before, timeout=LIVE_TIMEOUT_MS)
    expect(stamp).not_to_have_attribute("data-updated", fetched, timeout=LIVE_TIMEOUT_MS)
    expect(stamp).to_contain_text("live")


def test_chain_legs_go_to_the_strategy_builder(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, "/chain?underlying=SIMIDX")
    # The ATM row moves with the live SIM market: pin the row by its strike before reading it,
    # so both clicks and the expected contracts are the same strike's.
    strike = page.locator("#chain-table tbody tr.atm").get_attribute("data-strike")
    row = page.locator(f'#chain-table tbody tr[data-strike="{strike}"]')
    call, put = row.get_attribute("data-call"), row.get_attribute("data-put")
    row.get_by_role("button", name=re.compile(r"^Sell the .* call")).click()
    row.get_by_role("button", name=re.compile(r"^Sell the .* put")).click()
    expect(page.locator("#basket tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Open in strategy builder").click()
    page.wait_for_selector("body[data-ready=true]")
    legs = page.locator("#legs tbody tr")
    expect(legs).to_have_count(2)
    expect(legs.nth(0)).to_have_attribute("data-instrument", call or "")
    expect(legs.nth(1)).to_have_attribute("data-instrument", put or "")
    expect(legs.nth(0)).to_have_attribute("data-side", "sell")
    # A short straddle: the most it can make is its credit, and its loss is unlimited.
    expect(page.locator("#an-max-loss")).to_have_text("unlimited")
    profit = page.locator("#an-max-profit")
    expect(profit).to_have_attribute("data-value", re.compile(r"^\d"))
    premium = page.locator("#an-premium").get_attribute("data-value") or ""
    assert Decimal(profit.get_attribute("data-value") or "") == -Decimal(premium)


def test_iron_condor_from_the_template_placed_as_one_multileg_order(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    open_page(page, dashboard, "/strategy?underlying=SIMIDX")
    page.get_by_label(re.compile(r"^Template")).select_option("iron_condor")
    with page.expect_response(analyses_of_legs) as answered:
        page.get_by_role("button", name="Build legs").click()
    request = answered.value.request.post_data_json
    assert isinstance(request, dict)
    legs = page.locator("#legs tbody tr")
    expect(legs).to_have_count(4)
    kinds = legs.evaluate_all("rows => rows.map(r => `${r.dataset.side} ${r.dataset.kind}`)")
    assert kinds == ["buy put", "sell put", "sell call", "buy call"]

    # The API's own answer to the analysis the page asked for is what the page shows.
    again = page.request.post(
        dashboard.base + "/api/v1/analytics/strategies/analyze",
        data=request,
        headers=csrf(page, dashboard),
    )
    assert again.ok, again.text()
    api = again.json()
    assert api["breakevens"] == answered.value.json()["breakevens"]
    expect(page.locator("#an-max-profit")).to_have_text(inr(api["max_profit"]))
    expect(page.locator("#an-max-loss")).to_have_text(inr(api["max_loss"]))
    expect(page.locator("#an-breakevens")).to_have_text(
        ", ".join(grouped(b) for b in api["breakevens"])
    )
    expect(page.locator("#an-pop")).to_contain_text(f"{api['probability_of_profit'] * 100:.2f}%")
    expect(page.locator("#gk-theta")).to_have_text(f"{api['net_greeks']['theta_per_day']:.2f}")
    # An iron condor: sold for a credit, which is its most profit; two breakevens inside
    # the short strikes' wings; a loss capped on both sides.
    strikes = [Decimal(leg["strike"]) for leg in api["legs"]]
    assert Decimal(api["max_profit"]) == -Decimal(api["net_premium"]) > 0
    assert Decimal(api["max_loss"]) < 0
    assert not api["unlimited_loss"]
    low, high = (Decimal(b) for b in api["breakevens"])
    assert strikes[0] < low < strikes[1]
    assert strikes[2] < high < strikes[3]
    expect(page.locator("#payoff svg polyline.expiry-line")).to_have_count(1)
    expect(page.locator("#payoff svg polyline.today-line")).to_have_count(1)
    expect(page.locator("#payoff svg circle.breakeven")).to_have_count(2)

    # A fresh user has no paper account: the page offers to create one.
    expect(page.get_by_text("You have no paper trading account yet.")).to_be_visible()
    page.get_by_role("button", name="Create a paper account").click()
    accounts = page.locator("#order-account option")
    expect(accounts).to_have_count(1)
    account_id = accounts.first.get_attribute("value") or ""
    assert UUID.match(account_id)

    page.get_by_label("Order type").select_option("market")
    page.get_by_role("button", name="Place multi-leg order").click()
    order_id = page.locator("#order-id")
    expect(order_id).to_have_text(UUID)
    status = page.locator("#order-status")
    expect(status).to_have_text(re.compile(r"^(new|partially_filled|filled)$"))
    expect(page.get_by_role("link", name="See it in Paper trading")).to_have_attribute(
        "href", f"/trading?account={account_id}"
    )

    # The order exists, as one mleg combination of the four legs analysed.
    orders = page.request.get(
        f"{dashboard.base}/api/v1/accounts/{account_id}/orders", params={"status": "all"}
    ).json()["items"]
    parent = next(o for o in orders if o["id"] == order_id.inner_text())
    assert parent["order_class"] == "mleg"
    assert parent["status"] in {"new", "partially_filled", "filled"}
    assert parent["quantity"] == api["legs"][0]["lot_size"]  # one lot of each leg
    children = {o["instrument"]: o["side"] for o in orders if o["parent_id"] == parent["id"]}
    wanted = {
        leg["instrument"]: "sell" if leg["quantity"].startswith("-") else "buy"
        for leg in request["legs"]
    }
    assert children == wanted
    # A market order on the always-open SIM exchange fills: the stream brings the page the
    # news, and the paper trading page holds the four legs as positions.
    expect(status).to_have_text("filled", timeout=LIVE_TIMEOUT_MS)
    page.get_by_role("link", name="See it in Paper trading").click()
    page.wait_for_selector("body[data-ready=true]")
    for instrument, side in wanted.items():
        row = page.locator(f"#positions tbody tr[data-instrument='{instrument}']")
        lots = grouped(parent["quantity"])
        expect(row.locator("[data-field=quantity]")).to_have_text(
            f"-{lots}" if side == "sell" else lots, timeout=LIVE_TIMEOUT_MS
        )
