"""Dashboard: first paint of the chart page with 5,000 bars, and the quote-to-screen delay of
live ticks, in Debian's Chromium (headless, driven by Playwright) against a real
``quantdesk serve`` on the demo data, as ``make run`` serves it.

* **First paint**: from navigation start to the first frame drawn after the bars arrived
  (``document.body.dataset.firstPaintMs``, which the page sets a ``requestAnimationFrame``
  and a task after ``setData``), for ``/chart?instrument=SIM:ALPHA&timeframe=1m``: the latest
  5,000 one-minute bars (the demo stores 8 days of minutes per SIM instrument).  Each load in
  a fresh browser context (cold HTTP cache, a new session), median of ``LOADS``.
* **Reference**: a bare page, same origin, same server, same library file
  (``/web/static/vendor/lightweight-charts.mjs``) and the same bars request, that does only
  ``createChart`` + candlesticks + volume + ``setData`` and stamps the frame the same way;
  served by Playwright's route interception (no file of the app added for it).  Our overhead
  is the shell (session check, navigation, styles), the page's module and its other first
  requests (instrument, the indicator list, the user's models).
* **Quote-to-screen**: the demo ticker (``QUANTDESK_DEMO_TICK_INTERVAL_S`` 0.25 s, moving
  some instruments each round) publishes quotes stamped with their time; for each tick of
  SIM:SIMIDX the chart (``/chart?instrument=SIM:SIMIDX&timeframe=1m``) applies, the delay to
  ``Date.now()`` after the frame that shows it (``window.__qdChartTickDelays``), over
  ``TICK_SECONDS``.  The reference is the bare page with a plain WebSocket on the same stream
  updating its candle the same way; its receipt time (tick parsed, nothing drawn) is also
  shown: the server and the socket's share.

Browser and server share the machine's two cores; the figures include that contention.
``QD_BENCH_DASHBOARD_LOADS``, ``QD_BENCH_DASHBOARD_TICK_SECONDS`` change the load.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import serve_quantdesk

LOADS = int(os.environ.get("QD_BENCH_DASHBOARD_LOADS", "7"))
TICK_SECONDS = float(os.environ.get("QD_BENCH_DASHBOARD_TICK_SECONDS", "20"))
INSTRUMENT = "SIM:ALPHA"
# The index moves on nearly every round of the ticker (a stock's quote often stays on its
# tick): more ticks in the window.  It has 5,000 one-minute bars too, volume 0.
TICK_INSTRUMENT = "SIM:SIMIDX"
TIMEFRAME = "1m"
BARS = 5000
PASSWORD = "a long enough bench passphrase"  # noqa: S105
SECRET = "bench-dashboard-secret-key-long-enough-0000"  # noqa: S105
BARE_PATH = "/__bench/bare.html"
# A page fulfilled by Playwright has no address, so Chromium's local-network-access check
# would refuse the bare page's WebSocket to loopback; the app's own pages come from loopback
# and are not affected.
BROWSER_ARGS = [*CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"]

# The reference page: the library alone, drawing what the chart page draws first.
BARE_HTML = (
    """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>bare</title></head>
<body><div id="chart" style="width: 1100px; height: 480px"></div>
<script type="module">
import { CandlestickSeries, HistogramSeries, createChart }
  from "/web/static/vendor/lightweight-charts.mjs";
const afterFrame = (fn) => requestAnimationFrame(() => setTimeout(fn, 0));
const chart = createChart(document.getElementById("chart"), { autoSize: true });
const candles = chart.addSeries(CandlestickSeries, {}, 0);
const volume = chart.addSeries(HistogramSeries, { priceScaleId: "volume" }, 0);
chart.priceScale("volume", 0).applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
const query = new URLSearchParams(location.search);
const instrument = query.get("instrument") || "INSTRUMENT";
const r = await fetch(`/api/v1/market/bars/${instrument}?timeframe=TIMEFRAME&limit=BARS`);
const b = await r.json();
const rows = b.t.map((time, i) => (
  { time, open: +b.o[i], high: +b.h[i], low: +b.l[i], close: +b.c[i] }));
candles.setData(rows);
volume.setData(b.t.map((time, i) => ({ time, value: +b.v[i] })));
afterFrame(() => { document.body.dataset.firstPaintMs = performance.now().toFixed(1); });
window.__delays = [];
window.__receipt = [];
if (query.has("live")) {
  const socket = new WebSocket(`ws://${location.host}/api/v1/stream`);
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "ack" && frame.op === "auth") {
      const ask = { op: "subscribe", channel: "ticks", mode: "full", instruments: [instrument] };
      socket.send(JSON.stringify({ id: "s1", ...ask }));
    }
    if (frame.type !== "tick" || frame.snapshot) return;
    const sent = Date.parse(frame.ts);
    window.__receipt.push(Date.now() - sent);
    const last = rows[rows.length - 1];
    const p = +frame.last;
    const t = Math.max(last.time, Math.floor(sent / 60000) * 60);
    const bar = t === last.time ? last : { time: t, open: p, high: p, low: p, close: p };
    if (bar !== last) rows.push(bar);
    bar.high = Math.max(bar.high, p); bar.low = Math.min(bar.low, p); bar.close = p;
    candles.update(bar);
    afterFrame(() => window.__delays.push(Date.now() - sent));
  });
}
</script></body></html>
""".replace("INSTRUMENT", INSTRUMENT)
    .replace("TIMEFRAME", TIMEFRAME)
    .replace("BARS", str(BARS))
)


def _env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_SECRET_KEY": SECRET,
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'dashboard.db'}",
        "QUANTDESK_VAR_DIR": str(tmp),
        "QUANTDESK_DEMO_DATA": "true",
        "QUANTDESK_DEMO_TICK_INTERVAL_S": "0.25",
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "QUANTDESK_RATE_LIMIT_REGISTER_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_LOGIN_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_AUTH_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_UNAUTHENTICATED_IP": "100000/minute",
    }


def _sign_in(browser: Browser, base: str, email: str) -> Any:
    """One session for every load (logins per account are rate-limited): its cookies."""
    context = browser.new_context()
    answer = context.request.post(
        base + "/api/v1/auth/login", data={"email": email, "password": PASSWORD, "cookie": True}
    )
    assert answer.ok, answer.text()
    state = context.storage_state()
    context.close()
    return state


def _signed_in(browser: Browser, base: str, session: Any) -> BrowserContext:
    """A fresh context (empty HTTP cache) holding the session's cookies."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, storage_state=session)

    def bare(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=BARE_HTML)

    context.route(f"{base}{BARE_PATH}*", bare)
    return context


def _first_paint(browser: Browser, base: str, session: Any, path: str) -> float:
    context = _signed_in(browser, base, session)
    try:
        page = context.new_page()
        page.goto(base + path)
        page.wait_for_selector("body[data-first-paint-ms]", timeout=60_000)
        return float(page.evaluate("document.body.dataset.firstPaintMs"))
    finally:
        context.close()


def _ticks(browser: Browser, base: str, session: Any, path: str, ready: str) -> dict[str, Any]:
    context = _signed_in(browser, base, session)
    try:
        page: Page = context.new_page()
        page.goto(base + path)
        page.wait_for_selector(ready, timeout=60_000)
        page.wait_for_timeout(TICK_SECONDS * 1000)  # the measured window
        result: dict[str, Any] = page.evaluate(
            "({delays: window.__qdChartTickDelays || window.__delays,"
            " receipt: window.__receipt || []})"
        )
        return result
    finally:
        context.close()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="qd-bench-dashboard-") as name:
        tmp = Path(name)
        env = _env(tmp)
        quantdesk = str(Path(sys.executable).with_name("quantdesk"))
        demo = [quantdesk, "demo", "load"]
        subprocess.run(demo, env=env, cwd=tmp, check=True, capture_output=True)
        with serve_quantdesk(env, tmp, "--no-migrate") as base:
            email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
            httpx.post(
                base + "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            ).raise_for_status()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
                try:
                    return _measure(browser, base, email)
                finally:
                    browser.close()


def _measure(browser: Browser, base: str, email: str) -> str:
    session = _sign_in(browser, base, email)
    context = _signed_in(browser, base, session)
    bars = context.request.get(
        f"{base}/api/v1/market/bars/{INSTRUMENT}", params={"timeframe": TIMEFRAME, "limit": BARS}
    ).json()
    context.close()
    count = len(bars["t"])
    if count < BARS:
        raise RuntimeError(f"the demo has only {count} {TIMEFRAME} bars of {INSTRUMENT}")
    chart_path = f"/chart?instrument={INSTRUMENT}&timeframe={TIMEFRAME}"
    # One of each first, unmeasured: the server's first requests (imports, caches) and
    # Chromium's first compile of the library are start-up, not page load.
    _first_paint(browser, base, session, chart_path)
    _first_paint(browser, base, session, BARE_PATH)
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(LOADS):  # interleaved, so drift in the machine's load hits both alike
        ours.append(_first_paint(browser, base, session, chart_path))
        bare.append(_first_paint(browser, base, session, BARE_PATH))
    started = time.monotonic()
    live_path = f"/chart?instrument={TICK_INSTRUMENT}&timeframe={TIMEFRAME}"
    live = _ticks(browser, base, session, live_path, "body[data-first-paint-ms]")
    reference = _ticks(
        browser, base, session, f"{BARE_PATH}?live&instrument={TICK_INSTRUMENT}",
        "body[data-first-paint-ms]",
    )  # fmt: skip
    measured_s = time.monotonic() - started
    ours_ticks = [float(d) for d in live["delays"]]
    bare_ticks = [float(d) for d in reference["delays"]]
    receipt = [float(d) for d in reference["receipt"]]
    median_ours, median_bare = _median(ours), _median(bare)
    lines = [
        "## Dashboard",
        "",
        f"Chart page `{chart_path}` in headless Chromium (Playwright) against `quantdesk serve` "
        f"on the demo data, {count:,} one-minute bars; each load in a fresh browser context "
        f"(cold cache), {LOADS} loads each, interleaved. Reference: a bare page drawing the "
        "same bars with lightweight-charts alone (same origin, same library file, same bars "
        f"request). Ticks: {TICK_INSTRUMENT} from the demo ticker every 0.25 s, "
        f"{TICK_SECONDS:.0f} s per page ({measured_s:.0f} s in all); the delay is from the "
        "quote's timestamp to `Date.now()` after the frame that shows it.",
        "",
        "| measure | quantdesk chart page | lightweight-charts alone |",
        "| --- | ---: | ---: |",
        f"| first paint, {count:,} bars, median (ms) | {median_ours:.0f} | {median_bare:.0f} |",
        f"| first paint, min – max (ms) | {min(ours):.0f} – {max(ours):.0f} "
        f"| {min(bare):.0f} – {max(bare):.0f} |",
        f"| quote-to-screen, median (ms) | {_median(ours_ticks):.0f} | {_median(bare_ticks):.0f} |",
        f"| quote-to-screen, p95 (ms) | {_p95(ours_ticks):.0f} | {_p95(bare_ticks):.0f} |",
        f"| ticks measured | {len(ours_ticks)} | {len(bare_ticks)} |",
        "",
        f"Our first paint costs {median_ours - median_bare:+.0f} ms over the library alone "
        "(the shell's session check and navigation, the styles, the page module, its "
        "instrument, indicator-list and model requests). Of the bare page's quote-to-screen "
        f"delay, the server and socket take {_median(receipt):.0f} ms (median; p95 "
        f"{_p95(receipt):.0f} ms) from the quote's timestamp to the tick parsed in the page; "
        "the rest is the update and the next frame.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
