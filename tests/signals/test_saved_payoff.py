"""A saved bull call spread by value: its payoff at expiry worked by hand at several spots,
its value today and net Greeks (gamma and theta among them) against the analytics core, and
its mark-to-market on 15-minute bars resampled from stored minutes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import numpy as np
import pytest

from quantdesk.analytics.options import greeks, implied_vol, price
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import (
    BarArrays,
    Exchange,
    Instrument,
    InstrumentType,
    OptionType,
    Timeframe,
)
from quantdesk.marketdata.instruments.service import InstrumentService
from tests.signals.test_saved_strategies import URL, index_market
from tests.trading.conftest import Desk

EXPIRY = dt.date(2030, 12, 31)
LOW, HIGH = "SIM:SIMIDX30DEC100CE", "SIM:SIMIDX30DEC110CE"
# Long the 100 call bought at 5, short the 110 call sold at 2, one lot of 50 each.
SPREAD = {"name": "bull call spread", "legs": [
    {"instrument": LOW, "quantity": "1", "entry_price": "5", "iv": 0.25},
    {"instrument": HIGH, "quantity": "-1", "entry_price": "2", "iv": 0.22},
]}  # fmt: skip


@pytest.fixture
async def spread_market(index_market: Desk) -> Desk:
    calls = [
        Instrument(Exchange.SIM, f"SIMIDX30DEC{k}CE", f"SIM {k} call", InstrumentType.OPTION,
                   "INR", lot_size=Decimal(50), tick_size=Decimal("0.05"), underlying="SIMIDX",
                   expiry=EXPIRY, strike=Decimal(k), option_type=OptionType.CALL)
        for k in (100, 110)
    ]  # fmt: skip
    async with index_market.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(calls)
    return index_market


def by_hand(spot: Decimal) -> Decimal:
    """At expiry: -150 (the 3 of net premium x 50) below 100, rising 50 a point to +350
    (the 10 of width less 3, x 50) at 110 and above."""
    return 50 * (max(spot - 100, Decimal(0)) - max(spot - 110, Decimal(0)) - 3)


async def test_payoff_at_expiry_by_hand_and_today_against_the_core(
    client: httpx.AsyncClient, spread_market: Desk
) -> None:
    headers = spread_market.trader.headers
    sid = (await client.post(URL, json=SPREAD, headers=headers)).json()["id"]
    r = await client.get(f"{URL}/{sid}/payoff", params={"spot": "104"}, headers=headers)
    assert r.status_code == 200, r.text
    payoff = r.json()
    grid = [Decimal(g) for g in payoff["grid"]]
    expiry_pnl = dict(zip(grid, (Decimal(v) for v in payoff["expiry_pnl"]), strict=True))
    # The grid holds the strikes, the breakeven and the spot: there the P&L is exact.
    at = {spot: expiry_pnl[Decimal(spot)] for spot in (100, 103, 104, 110)}
    assert at == {100: -150, 103: 0, 104: 50, 110: 350}
    # Elsewhere the grid price is shown to the paisa: within 50 x 0.005 of the hand value.
    off = [(g, v) for g, v in expiry_pnl.items() if abs(v - by_hand(g)) > Decimal("0.255")]
    assert off == []
    assert min(expiry_pnl.values()) == Decimal(-150)
    assert max(expiry_pnl.values()) == Decimal(350)
    assert [Decimal(b) for b in payoff["breakevens"]] == [Decimal(103)]
    assert Decimal(payoff["max_profit"]) == Decimal(350)
    assert Decimal(payoff["max_loss"]) == Decimal(-150)
    assert (payoff["unlimited_profit"], payoff["unlimited_loss"]) == (False, False)
    assert Decimal(payoff["net_premium"]) == 150  # 5 paid, 2 received, x 50

    # Today: Black-Scholes at each leg's saved IV, ACT/365 from the valuation date.
    valued = dt.date.fromisoformat(payoff["valuation_date"])
    assert valued == dt.datetime.now(dt.UTC).date()
    t = (EXPIRY - valued).days / 365
    assert payoff["expiry_years"] == pytest.approx(t, rel=1e-12)
    low, high = (
        greeks("call", 104.0, 100.0, t, 0.0, 0.25),
        greeks("call", 104.0, 110.0, t, 0.0, 0.22),
    )
    net = payoff["net_greeks"]
    for name in ("delta", "gamma", "vega", "theta", "rho"):
        reference = 50 * (float(getattr(low, name)) - float(getattr(high, name)))
        assert net[name] == pytest.approx(reference, rel=1e-9), name
    assert net["theta_per_day"] == pytest.approx(net["theta"] / 365, rel=1e-12)
    for g, today in zip(grid, payoff["today_pnl"], strict=True):
        if g in (Decimal(100), Decimal(104), Decimal(110)):
            value = price("call", float(g), 100.0, t, 0.0, 0.25) - price(
                "call", float(g), 110.0, t, 0.0, 0.22
            )
            assert float(today) == pytest.approx(50 * (float(value) - 3), abs=0.01), g


QUARTER = 900
# 04:00-05:00 UTC (09:30-10:30 IST) on 2026-02-02, a minute bar each; each quarter hour's
# minutes all trade at its price, so a 15-minute bar's close is that price.
SESSION = int(dt.datetime(2026, 2, 2, 4, 0, tzinfo=dt.UTC).timestamp())
SPOTS = [104.0, 106.0, 101.0, 108.0]


def _closes(strike: float, vol: float) -> list[float]:
    t = (EXPIRY - dt.date(2026, 2, 2)).days / 365
    return [round(float(price("call", s, strike, t, 0.0, vol)), 2) for s in SPOTS]


async def test_intraday_mark_to_market_by_hand_with_gamma_and_theta(
    client: httpx.AsyncClient, spread_market: Desk
) -> None:
    ctx = spread_market.ctx
    low, high = _closes(100.0, 0.25), _closes(110.0, 0.22)
    ts = SESSION + 60 * np.arange(60, dtype=np.int64)
    async with ctx.database.session(immediate=True) as db:
        for key, quarters in (("SIM:SIMIDX", SPOTS), (LOW, low), (HIGH, high)):
            c = np.repeat(np.array(quarters), 15)
            await BarStore(db).bulk_load(key, Timeframe.M1,
                                         BarArrays(ts, c, c, c, c, np.full(60, 10.0)))  # fmt: skip
    headers = spread_market.trader.headers
    sid = (await client.post(URL, json=SPREAD, headers=headers)).json()["id"]
    r = await client.get(
        f"{URL}/{sid}/mtm",
        params={"timeframe": "15m", "start": "2026-02-02T09:30:00+05:30",
                "end": "2026-02-02T10:30:00+05:30"},
        headers=headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    mtm = r.json()
    assert mtm["timeframe"] == "15m"
    assert mtm["t"] == [SESSION + QUARTER * k for k in range(4)]
    # Long 50 of the 100 call from 5, short 50 of the 110 call from 2, at each close.
    d = [Decimal(str(v)) for v in low]
    e = [Decimal(str(v)) for v in high]
    assert [Decimal(v) for v in mtm["legs"][0]["pnl"]] == [50 * (c - 5) for c in d]
    assert [Decimal(v) for v in mtm["legs"][1]["pnl"]] == [-50 * (c - 2) for c in e]
    assert [Decimal(v) for v in mtm["total"]] == [
        50 * (a - 5) - 50 * (b - 2) for a, b in zip(d, e, strict=True)
    ]
    # Greeks at each close: each option at the vol its own close implies against the
    # index's close, the time to expiry counted from the bar's day (ACT/365).
    t = (EXPIRY - dt.date(2026, 2, 2)).days / 365
    for k, spot in enumerate(SPOTS):
        net = {"delta": 0.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0}
        for close, strike, sign in ((low[k], 100.0, 1), (high[k], 110.0, -1)):
            vol = implied_vol(close, "call", spot, strike, t, 0.0)
            assert bool(vol.ok)
            g = greeks("call", spot, strike, t, 0.0, float(vol.vol))
            for name in net:
                net[name] += sign * 50 * float(getattr(g, name))
        for name, value in net.items():
            assert mtm["greeks"][name][k] == pytest.approx(value, rel=1e-6), (name, k)


__all__ = ["index_market"]
