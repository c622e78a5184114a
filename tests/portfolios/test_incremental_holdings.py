"""A new transaction at the end of the book extends the day-by-day holdings from its day on
(``returns.with_effect``, used by ``books.extend_after_commit``): the result must be what
building them again from every effect gives."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Timeframe
from quantdesk.platform.context import AppContext
from quantdesk.portfolios.accounting.lots import Book
from quantdesk.portfolios.accounting.returns import (
    Holdings,
    InstrumentInfo,
    holdings_by_day,
    with_effect,
)
from quantdesk.portfolios.accounting.types import Transaction, TxnType
from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import create, post_all

D0 = dt.date(2024, 1, 1)
KEYS = ("NSE:A", "NSE:B", "NFO:F")
INFO = {
    "NSE:A": InstrumentInfo("NSE:A"),
    "NSE:B": InstrumentInfo("NSE:B"),
    "NFO:F": InstrumentInfo("NFO:F", multiplier=50.0, is_future=True),
}


def _assert_same(extended: Holdings, rebuilt: Holdings) -> None:
    assert extended.instruments == rebuilt.instruments
    assert extended.futures == rebuilt.futures
    np.testing.assert_array_equal(extended.days, rebuilt.days)
    for field in ("quantity", "notional", "investment", "inflow", "outflow", "flows_by"):
        np.testing.assert_allclose(
            getattr(extended, field), getattr(rebuilt, field), rtol=1e-12, atol=1e-9, err_msg=field
        )


@st.composite
def trades(draw: st.DrawFn) -> list[Transaction]:
    """Buys and sells (never more than held) on ascending days, futures margined."""
    held = dict.fromkeys(KEYS, 0)
    out: list[Transaction] = []
    day = 0
    for n in range(draw(st.integers(2, 25))):
        day += draw(st.integers(0, 40))
        key = draw(st.sampled_from(KEYS))
        price = Decimal(draw(st.integers(1000, 90000))) / 100
        fees = Decimal(draw(st.integers(0, 500))) / 100
        sell = held[key] > 0 and draw(st.booleans())
        quantity = draw(st.integers(1, held[key])) if sell else draw(st.integers(1, 30))
        held[key] += -quantity if sell else quantity
        kind = TxnType.SELL if sell else TxnType.BUY
        multiplier = Decimal(50) if key == "NFO:F" else Decimal(1)
        out.append(
            Transaction(
                str(n),
                kind,
                D0 + dt.timedelta(days=day),
                "a",
                key,
                Decimal(quantity),
                price,
                fees,
                multiplier=multiplier,
                is_future=key == "NFO:F",
                seq=n,
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(trades(), st.integers(0, 30))
def test_an_appended_transaction_extends_the_holdings_as_a_rebuild_would(
    txns: list[Transaction], days_after: int
) -> None:
    *before, last = txns
    book = Book().apply_all(before)
    end = last.date + dt.timedelta(days=days_after)
    held = holdings_by_day(book.effects, INFO, end, before[0].date)
    effect = book.apply(last)
    extended = with_effect(held, effect)
    assert extended is not None
    _assert_same(extended, holdings_by_day(book.effects, INFO, end, before[0].date))


def test_the_held_arrays_in_use_are_not_changed() -> None:
    buy = Transaction("1", TxnType.BUY, D0, "a", "NSE:A", Decimal(10), Decimal(100))
    more = dataclasses.replace(buy, id="2", date=D0 + dt.timedelta(days=2), seq=1)
    book = Book().apply_all([buy])
    held = holdings_by_day(book.effects, INFO, D0 + dt.timedelta(days=4))
    quantity_before = held.quantity.copy()
    extended = with_effect(held, book.apply(more))
    assert extended is not None
    np.testing.assert_array_equal(held.quantity, quantity_before)
    # 10 held from day 0, 20 from day 2 (column 1 of the sorted keys is NSE:A).
    assert extended.quantity[:, 1].tolist() == [10, 10, 20, 20, 20]
    assert extended.inflow.tolist() == [1000, 0, 1000, 0, 0]
    assert extended.investment.tolist() == [1000, 1000, 2000, 2000, 2000]


def test_a_new_instrument_or_a_day_past_the_end() -> None:
    buy = Transaction("1", TxnType.BUY, D0, "a", "NSE:A", Decimal(10), Decimal(100))
    book = Book().apply_all([buy])
    held = holdings_by_day(book.effects, {"NSE:A": INFO["NSE:A"]}, D0 + dt.timedelta(days=3))
    other = dataclasses.replace(buy, id="2", instrument="NSE:B", seq=1)
    assert with_effect(held, book.apply(other)) is None  # no column for it: build again
    late = dataclasses.replace(buy, id="3", date=D0 + dt.timedelta(days=9), seq=2)
    assert with_effect(held, book.apply(late)) is held  # after the series' last day


@pytest.mark.usefixtures("sim_market")
async def test_appended_transactions_report_what_a_rebuilt_book_does(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=n) for n in range(20)]
    ts = np.array([int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in days])
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as db:
        for key, first in (("SIM:ALPHA", 100), ("SIM:BETA", 200)):
            close = np.round(first * 1.01 ** np.arange(20), 2)
            bars = BarArrays(ts, close, close, close, close, np.full(20, 1e4))
            await BarStore(db).bulk_load(key, Timeframe.D1, bars)
    user = await make_user()
    pid = (await create(client, user))["id"]
    url = f"/api/v1/portfolios/{pid}"
    window = {"from": "2024-01-01", "to": "2024-01-20"}

    async def reports() -> list[dict[str, object]]:
        out = []
        for path in ("/performance", "/series"):
            r = await client.get(url + path, params=window, headers=user.headers)
            assert r.status_code == 200, r.text
            out.append(r.json())
        return out

    rows = [
        ("buy", "SIM:ALPHA", "2024-01-01", "10", "100"),
        ("buy", "SIM:BETA", "2024-01-06", "3", "210.2"),
        ("sell", "SIM:ALPHA", "2024-01-11", "4", "110.46"),
    ]
    for kind, key, day, quantity, price in rows:
        body = {"type": kind, "instrument": key, "date": day, "quantity": quantity, "price": price}
        await post_all(client, user, pid, [body])
        extended = await reports()  # the holdings of the cached book, extended by each row
        ctx.extensions.pop("portfolio_books")  # what another process would build from rows
        assert await reports() == extended
    assert extended[0]["twr"] != "0"
