"""The chart page in a real browser: stored bars at each timeframe, indicators from the server
(an overlay and a pane, their last values as the API computes them), the live quote moving
the last candle, and a trained model's signals as markers.

Values are checked against the same public API the page reads, fetched by the test with the
page's own session (``page.request`` shares its cookies)."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.web.conftest import Dashboard, open_page

INSTRUMENT = "SIM:ALPHA"


def _get(page: Page, dashboard: Dashboard, path: str, **query: object) -> Any:
    answer = page.request.get(dashboard.base + path, params=query)  # type: ignore[arg-type]
    assert answer.ok, answer.text()
    return answer.json()


def _bars(page: Page, dashboard: Dashboard, key: str, timeframe: str) -> Any:
    return _get(page, dashboard, f"/api/v1/market/bars/{quote(key)}", timeframe=timeframe)


def _last(values: list[float | None]) -> float:
    return next(v for v in reversed(values) if v is not None)


def _legend_number(page: Page, field: str) -> str:
    return page.locator(f"#legend [data-field={field}]").inner_text().replace(",", "")


def test_the_chart_shows_the_stored_bars_and_reloads_them(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    open_page(page, dashboard, f"/chart?instrument={INSTRUMENT}&timeframe=1d")
    daily = _bars(page, dashboard, INSTRUMENT, "1d")
    count = page.locator("#bar-count")
    expect(count).to_have_attribute("data-count", str(len(daily["t"])))
    expect(count).to_have_text(re.compile(r"^[\d,]+ bars$"))
    assert float(page.evaluate("document.body.dataset.firstPaintMs")) > 0

    # Pointing at a candle shows that bar's OHLCV in the legend, exactly as stored.
    chart = page.locator("#chart")
    box = chart.bounding_box()
    assert box is not None
    chart.hover(position={"x": box["width"] * 0.5, "y": box["height"] * 0.4})
    legend = page.locator("#legend")
    expect(legend).to_have_attribute("data-time", re.compile(r"^\d+$"))
    shown = int(legend.get_attribute("data-time") or "0")
    i = daily["t"].index(shown)
    assert i < len(daily["t"]) - 1  # a stored bar, not the live one
    for field, column in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c")):
        assert _legend_number(page, field) == daily[column][i]
    assert _legend_number(page, "volume") == daily["v"][i]

    # Another timeframe reloads the bars: as many as the API has at that timeframe.
    page.mouse.move(0, 0)
    page.get_by_label("Timeframe").select_option("1h")
    hourly = _bars(page, dashboard, INSTRUMENT, "1h")
    assert len(hourly["t"]) != len(daily["t"])
    expect(count).to_have_attribute("data-count", str(len(hourly["t"])))
    expect(page.locator("#legend-instrument")).to_have_text(f"{INSTRUMENT} · 1h")
    expect(page).to_have_url(re.compile(r"timeframe=1h"))

    # Another instrument, typed in the picker; an unknown one is refused where it was typed.
    page.get_by_label("Instrument", exact=True).fill("SIM:BETA")
    page.get_by_role("button", name="Show").click()
    beta = _bars(page, dashboard, "SIM:BETA", "1h")
    expect(page.locator("#legend-instrument")).to_have_text("SIM:BETA · 1h")
    expect(count).to_have_attribute("data-count", str(len(beta["t"])))
    page.get_by_label("Instrument", exact=True).fill("SIM:NOSUCHTHING")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#chart-form .form-error")).to_be_visible()
    expect(page.locator("#legend-instrument")).to_have_text("SIM:BETA · 1h")


def test_indicators_as_an_overlay_and_a_pane_then_removed(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    open_page(page, dashboard, f"/chart?instrument={INSTRUMENT}&timeframe=1d")
    expect(page.locator("#bar-count")).to_have_attribute("data-count", re.compile(r"^\d+$"))
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-panes", "1")
    form = page.locator("#indicator-form")

    form.get_by_label("Indicator").select_option("sma")
    form.get_by_label("Period").fill("20")
    form.get_by_role("button", name="Add indicator").click()
    sma = _get(
        page, dashboard, "/api/v1/analytics/indicators/sma",
        instrument=INSTRUMENT, timeframe="1d", limit=5000, timeperiod=20,
    )  # fmt: skip
    item = page.locator("#indicator-list li[data-indicator=sma]")
    expect(item).to_contain_text("SMA 20")
    expect(item).to_contain_text("price")
    expect(item.locator("[data-output=sma] b")).to_have_text(f"{_last(sma['values']['sma']):.2f}")
    expect(chart).to_have_attribute("data-panes", "1")  # an overlay: on the price pane

    form.get_by_label("Indicator").select_option("rsi")
    form.get_by_label("Period").fill("14")
    form.get_by_role("button", name="Add indicator").click()
    rsi = _get(
        page, dashboard, "/api/v1/analytics/indicators/rsi",
        instrument=INSTRUMENT, timeframe="1d", limit=5000, timeperiod=14,
    )  # fmt: skip
    item = page.locator("#indicator-list li[data-indicator=rsi]")
    expect(item).to_contain_text("RSI 14")
    expect(item).to_contain_text("pane")
    expect(item.locator("[data-output=rsi] b")).to_have_text(f"{_last(rsi['values']['rsi']):.2f}")
    expect(chart).to_have_attribute("data-panes", "2")  # an oscillator: a pane of its own

    # Every indicator the server lists can be picked (it names 30-odd).
    assert page.locator("#indicator-name option").count() >= 30

    page.get_by_role("button", name="Remove SMA 20").click()
    expect(page.locator("#indicator-list li")).to_have_count(1)
    expect(page.locator("#indicator-list li[data-indicator=rsi]")).to_be_visible()
    page.get_by_role("button", name="Remove RSI 14").click()
    expect(page.locator("#indicator-list li")).to_have_count(0)
    expect(chart).to_have_attribute("data-panes", "1")


def test_the_live_price_ticks_and_moves_the_last_candle(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    # SIM:GAMMA, the busiest SIM stock: its quote changes about twice a second, where
    # SIM:ALPHA's can stay put for 15 s (it waited up to 18 s here).
    open_page(page, dashboard, "/chart?instrument=SIM:GAMMA&timeframe=1m")
    expect(page.locator("#stream-status")).to_have_text("live")
    last = page.locator("#last-price")
    expect(last).to_have_attribute("data-ts", re.compile(r"^\d{4}-"))
    assert re.fullmatch(r"[\d,]+\.\d+", last.inner_text())
    stored = page.locator("#bar-count").get_attribute("data-count")
    before = last.get_attribute("data-ts") or ""
    # The simulated exchange moves only some instruments on each tick: wait for a newer quote.
    expect(last).not_to_have_attribute("data-ts", before, timeout=30_000)
    expect(page.locator("body")).to_have_attribute(
        "data-live-ticks", re.compile(r"^[1-9]\d*$"), timeout=30_000
    )
    # The last candle is the live one: its close is the live price (one handler sets both).
    close, price = page.evaluate(
        """[document.querySelector('#legend [data-field=close]').textContent,
            document.querySelector('#last-price').textContent]"""
    )
    assert close == price
    delays = page.evaluate("window.__qdChartTickDelays")
    assert all(0 <= d < 10_000 for d in delays), delays
    # The stored bars stay what the API gave; live candles come on top of them.
    expect(page.locator("#bar-count")).to_have_attribute("data-count", stored or "")


def test_signal_markers_of_a_trained_model(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    open_page(page, dashboard, f"/chart?instrument={INSTRUMENT}&timeframe=1d")
    # A new user has no model: a hint how to train one, no error.
    expect(page.locator("#signal-hint")).to_be_visible()
    expect(page.locator("#signal-hint")).to_contain_text("POST /api/v1/signals/models")
    expect(page.get_by_label("Model")).to_be_disabled()
    expect(page.locator(".notice.error")).to_have_count(0)

    # A small model on the demo's daily bars trains in a second or two (docs/signals.md),
    # through the API as a client trains one: queued, then run by the server's job runner.
    # (The command line's `ml train` spent 5-15 s here starting a Python process and
    # importing the app before training; tests/signals/test_cli.py covers it.)
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "qd_csrf")
    queued = page.request.post(
        dashboard.base + "/api/v1/signals/models",
        data={"name": "chart-test", "instruments": [INSTRUMENT], "timeframe": "1d"},
        headers={"X-CSRF-Token": csrf, "Origin": dashboard.base},
    )
    assert queued.status == 202, queued.text()
    job = queued.json()
    deadline = time.monotonic() + 120
    while job["status"] not in {"done", "failed"} and time.monotonic() < deadline:
        time.sleep(0.05)  # the job runs in the server: its status is what there is to await
        job = _get(page, dashboard, f"/api/v1/signals/jobs/{job['id']}")
    assert job["status"] == "done", job
    model = _get(page, dashboard, "/api/v1/signals/models")["items"][0]
    series = _get(
        page, dashboard, f"/api/v1/signals/{model['id']}/{INSTRUMENT}", timeframe="1d", limit=5000
    )
    buys = sells = 0
    previous = 0.0
    for value in series["values"]["signal"]:
        if value is None:
            continue
        buys += value > previous
        sells += value < previous
        previous = value
    assert buys > 0

    open_page(page, dashboard, f"/chart?instrument={INSTRUMENT}&timeframe=1d")
    expect(page.locator("#signal-hint")).to_be_hidden()
    page.get_by_label("Model").select_option(model["id"])
    summary = page.locator("#signal-summary")
    expect(summary).to_have_attribute("data-buys", str(buys))
    expect(summary).to_have_attribute("data-sells", str(sells))
    latest = _last(series["values"]["probability"])
    expect(summary).to_contain_text(f"latest P(up) {latest:.2f}")
    expect(page.locator("#chart")).to_have_attribute("data-panes", "2")  # the probability pane
    page.get_by_label("Model").select_option("")
    expect(summary).to_have_text("")
    expect(page.locator("#chart")).to_have_attribute("data-panes", "1")
