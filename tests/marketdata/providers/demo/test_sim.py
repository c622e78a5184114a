"""SIM in the demo market: its instruments, and a ticker that follows every calendar
(SIM at any hour, NSE/US only while open) and leaves scripted instruments alone."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from quantdesk.marketdata.domain import Exchange, InstrumentType, OptionType, Quote, Timeframe
from quantdesk.marketdata.providers.demo.market import DemoMarket
from quantdesk.marketdata.providers.demo.simulator import TickSimulator
from quantdesk.marketdata.providers.demo.universe import minute_sessions_for
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.bus import MemoryBus
from quantdesk.platform.cache import MemoryCache
from tests.marketdata.providers.demo.conftest import ANCHOR

EQUITIES = ("SIM:ALPHA", "SIM:BETA", "SIM:GAMMA")
# Saturday 2026-06-20, 03:00 IST: NSE and the US exchanges are shut, SIM is open.
SATURDAY_NIGHT = dt.datetime(2026, 6, 19, 21, 30, tzinfo=dt.UTC)
# Wednesday 2026-06-17, 09:30 IST: NSE and SIM open, the US shut.
NSE_MORNING = dt.datetime(2026, 6, 17, 4, 0, tzinfo=dt.UTC)


def simulator_at(market: DemoMarket, now: dt.datetime) -> TickSimulator:
    return TickSimulator(
        market, QuoteService(MemoryCache(), MemoryBus()), interval_s=1.0, clock=lambda: now
    )


def test_sim_lists_three_equities_and_an_index_with_futures_and_options(
    market: DemoMarket,
) -> None:
    sim = {i.key: i for i in market.instruments() if i.exchange is Exchange.SIM}
    for key in EQUITIES:
        equity = sim[key]
        assert equity.type is InstrumentType.EQUITY
        assert (equity.lot_size, equity.tick_size, equity.currency) == (
            Decimal(1),
            Decimal("0.05"),
            "INR",
        )
    assert sim["SIM:SIMIDX"].type is InstrumentType.INDEX
    futures = [i for i in sim.values() if i.type is InstrumentType.FUTURE]
    # Two monthly futures, on the month's last Thursday, lot 50.
    assert [f.key for f in sorted(futures, key=lambda f: f.expiry or ANCHOR)] == [
        "SIM:SIMIDX26JUNFUT",
        "SIM:SIMIDX26JULFUT",
    ]
    assert {(f.expiry, f.lot_size, f.underlying) for f in futures} == {
        (dt.date(2026, 6, 25), Decimal(50), "SIMIDX"),
        (dt.date(2026, 7, 30), Decimal(50), "SIMIDX"),
    }
    options = [i for i in sim.values() if i.type is InstrumentType.OPTION]
    expiries = sorted({o.expiry for o in options if o.expiry is not None})
    # Weeklies (NSE symbology: YY, month digit, DD) and the monthlies, all Thursdays.
    assert expiries == [
        dt.date(2026, 6, 18),
        dt.date(2026, 6, 25),
        dt.date(2026, 7, 2),
        dt.date(2026, 7, 30),
    ]
    assert all(e.weekday() == 3 for e in expiries)
    assert all(o.lot_size == 50 and o.tick_size == Decimal("0.05") for o in options)
    spot = market.close_quote("SIM:SIMIDX").last
    strikes = sorted({o.strike for o in options if o.expiry == expiries[0] and o.strike})
    assert len(strikes) == 21
    assert strikes[0] < spot < strikes[-1]
    weekly = sim[f"SIM:SIMIDX26618{strikes[10]}CE"]
    assert (weekly.option_type, weekly.expiry) == (OptionType.CALL, dt.date(2026, 6, 18))
    assert f"SIM:SIMIDX26JUL{strikes[10]}PE" in sim


def test_sim_bars_cover_every_day_round_the_clock(market: DemoMarket) -> None:
    spec = market.underlyings["SIM:ALPHA"]
    last = market.last_index(spec)
    sessions = market.sessions(spec)
    # Every calendar day is a session, midnight to midnight IST.
    assert sessions.date(last) == ANCHOR - dt.timedelta(days=1)
    assert sessions.date(last - 6) == ANCHOR - dt.timedelta(days=7)
    assert int(sessions.closes[last] - sessions.opens[last]) == 86_400
    minutes = market.bars("SIM:ALPHA", Timeframe.M1, last, last)
    assert len(minutes) == 1440
    # SIM days are four NSE days long: a quarter as many of them get minute bars.
    assert minute_sessions_for("SIM", 30) == 8
    assert minute_sessions_for("NSE", 30) == 30
    assert minute_sessions_for("SIM", 1) == 1


def test_at_night_only_sim_ticks(market: DemoMarket) -> None:
    simulator = simulator_at(market, SATURDAY_NIGHT)
    first = simulator.step()
    # The first step quotes everything: SIM live, the closed exchanges at their last close.
    assert first["NSE:RELIANCE"] == market.close_quote("NSE:RELIANCE")
    assert first["NASDAQ:AAPL"] == market.close_quote("NASDAQ:AAPL")
    assert first["SIM:ALPHA"].ts == SATURDAY_NIGHT
    moved: set[str] = set()
    for _ in range(20):
        moved |= simulator.step().keys()
    assert moved
    assert {key.split(":")[0] for key in moved} == {"SIM"}
    assert {"SIM:ALPHA", "SIM:SIMIDX"} <= moved


def test_in_nse_hours_nse_ticks_and_the_us_does_not(market: DemoMarket) -> None:
    simulator = simulator_at(market, NSE_MORNING)
    simulator.step()
    moved: set[str] = set()
    for _ in range(20):
        moved |= simulator.step().keys()
    exchanges = {key.split(":")[0] for key in moved}
    assert {"NSE", "NFO", "SIM"} <= exchanges
    assert not exchanges & {"NASDAQ", "NYSE"}


def scripted_quote(key: str, last: str) -> Quote:
    price = Decimal(last)
    return Quote(
        key=key,
        last=price,
        ts=SATURDAY_NIGHT,
        bid=price - Decimal("0.05"),
        ask=price + Decimal("0.05"),
        bid_size=Decimal(500),
        ask_size=Decimal(300),
    )


def test_scripted_instruments_are_left_alone_until_handed_back(market: DemoMarket) -> None:
    simulator = simulator_at(market, SATURDAY_NIGHT)
    simulator.step()
    scripted = {"SIM:ALPHA": scripted_quote("SIM:ALPHA", "100.00")}
    for _ in range(10):
        changed = simulator.step(scripted)
        assert "SIM:ALPHA" not in changed
        assert changed  # the rest of SIM ticks on
    # The provider's book shows the scripted quote, not a simulated one.
    assert simulator.book.get("SIM:ALPHA") == scripted["SIM:ALPHA"]
    # Handed back: quoted again at once, moving on from the scripted price.
    back = simulator.step()
    assert "SIM:ALPHA" in back
    assert abs(math.log(float(back["SIM:ALPHA"].last) / 100.0)) < 0.01


def test_scripted_index_drags_its_derivatives_along(market: DemoMarket) -> None:
    simulator = simulator_at(market, SATURDAY_NIGHT)
    first = simulator.step()
    close = float(first["SIM:SIMIDX"].last)
    future = first["SIM:SIMIDX26JULFUT"]
    target = round(close * 1.05 / 0.05) * Decimal("0.05")
    scripted: dict[str, Quote | None] = {"SIM:SIMIDX": scripted_quote("SIM:SIMIDX", str(target))}
    quotes: dict[str, Quote] = {}
    for _ in range(3):
        quotes.update(simulator.step(scripted))
    assert "SIM:SIMIDX" not in quotes
    # The future follows the scripted index up 5%, its carry basis intact.
    assert float(quotes["SIM:SIMIDX26JULFUT"].last) / float(future.last) > 1.04
