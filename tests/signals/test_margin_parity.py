"""The backtest's account against a paper account driven through the API (orders, matcher,
ledger, lifecycle): the same quotes and orders give the same refusal, the same blocked
margin and free cash, and the same cash after an expiry settlement."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import pytest
from sqlalchemy import update

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType, Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.signals.research.backtest import Contract, OrderRefused, PaperBook
from quantdesk.trading.engine.types import Side
from quantdesk.trading.lifecycle import settle_expiries
from quantdesk.trading.matcher import quote_tick
from tests.trading.conftest import TICK, Desk

OPENING = ("99.95", 500, "100.05", 300, "100.00")  # the desk fixture's first SIM:ALPHA quote


def _tick(key: str, values: tuple[str, int, str, int, str], n: int) -> Quote:
    bid, bid_size, ask, ask_size, last = values
    return Quote(key, Decimal(last), dt.datetime.now(dt.UTC), Decimal(bid), Decimal(ask),
                 Decimal(bid_size), Decimal(ask_size), source_id=f"q{n}")  # fmt: skip


def _words(detail: str) -> list[str | Decimal]:
    """The detail's words, numbers as values (PostgreSQL's paper account keeps its column's
    scale, ``10000000.0000``, SQLite's writes ``10000000``)."""
    out: list[str | Decimal] = []
    for word in detail.replace(";", " ;").split():
        try:
            out.append(Decimal(word))
        except InvalidOperation:
            out.append(word)
    return out


async def _capital(desk: Desk) -> Decimal:
    return Decimal((await desk.get())["cash"])


async def test_a_buy_beyond_the_buying_power_is_refused_in_the_same_words(desk: Desk) -> None:
    capital = await _capital(desk)
    quantity = int(capital / Decimal(110)) + 1  # at 100.00 + the 10% band: just too much
    refused = await desk.place(expect=422, side="buy", quantity=quantity, type="market")
    assert refused["type"].endswith("insufficient-buying-power"), refused
    assert "E+" not in refused["detail"]  # money in words is positional, as on the wire

    book = PaperBook(Contract("SIM:ALPHA", TICK), capital, max_quote_age=None)
    book.quote(quote_tick(_tick("SIM:ALPHA", OPENING, 0)))
    with pytest.raises(OrderRefused, match="the buying power is"):
        book.order(Side.BUY, Decimal(quantity), dt.datetime.now(dt.UTC))
    (rejection,) = book.account.rejections
    assert _words(rejection.detail) == _words(refused["detail"])
    # ...and one that fits is accepted by both.
    await desk.place(side="buy", quantity=quantity - 1, type="market")
    book.order(Side.BUY, Decimal(quantity - 1), dt.datetime.now(dt.UTC))
    paper = await desk.get()
    assert book.account.cash == Decimal(paper["cash"])


async def test_a_short_future_blocks_the_margin_paper_blocks(desk: Desk) -> None:
    key = "SIM:SIMIDX26DECFUT"
    quote = ("20000.00", 500, "20000.50", 500, "20000.25")
    await desk.quote(key, *quote)
    capital = await _capital(desk)
    await desk.place(instrument=key, side="sell", quantity=50, type="market", product="nrml")
    paper = await desk.get()

    future = Contract(key, TICK, Decimal(50), kind="future", underlying="SIMIDX",
                      expiry=dt.date(2099, 12, 31))  # fmt: skip
    book = PaperBook(future, capital, max_quote_age=None)
    book.quote(quote_tick(_tick(key, quote, 0)))
    book.order(Side.SELL, Decimal(50), dt.datetime.now(dt.UTC))
    (fill,) = book.fills
    assert fill.price == Decimal("20000.00")  # at the bid
    # 12% of 50 x 20,000 = 120,000, by hand and in both books.
    assert book.account.blocked() == Decimal(120_000)
    assert Decimal(paper["margin_used"]) == Decimal(120_000)
    assert book.account.cash == Decimal(paper["cash"]) == capital - 120_000


async def test_an_expired_option_settles_to_the_same_cash(desk: Desk) -> None:
    """The SIM call of the lifecycle tests: bought at the ask 100.05, expired, settled by
    paper's lifecycle at the underlying's quote 20,150 (intrinsic 150 x 50 = 7,500)."""
    key = "SIM:SIMIDX26XPIRED20000CE"
    async with desk.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many([
            Instrument(Exchange.SIM, "SIMIDX", "SIM index", InstrumentType.INDEX, "INR"),
            Instrument(Exchange.SIM, "SIMIDX26XPIRED20000CE", "expired call",
                       InstrumentType.OPTION, "INR", lot_size=Decimal(50), tick_size=TICK,
                       underlying="SIMIDX", expiry=dt.date(2099, 12, 31),
                       strike=Decimal(20000), option_type=OptionType.CALL),
        ])  # fmt: skip
    quote = ("99.95", 500, "100.05", 500, "100.00")
    await desk.quote(key, *quote)
    capital = await _capital(desk)
    await desk.place(instrument=key, side="buy", quantity=50, type="market", product="nrml")
    expiry = dt.date.today() - dt.timedelta(days=1)
    async with desk.ctx.database.session(immediate=True) as db:  # it expired yesterday
        await db.execute(update(InstrumentRow)
                         .where(InstrumentRow.symbol == "SIMIDX26XPIRED20000CE")
                         .values(expiry=expiry))  # fmt: skip
    await desk.quote("SIM:SIMIDX", "20150.00", 1, "20150.00", 1, "20150.00")
    assert await settle_expiries(desk.ctx, dt.datetime.now(dt.UTC)) == 1
    paper = await desk.get()

    call = Contract(key, TICK, Decimal(50), kind="option", underlying="SIMIDX",
                    strike=Decimal(20000), option_type="call", expiry=expiry)  # fmt: skip
    book = PaperBook(call, capital, max_quote_age=None)
    book.quote(quote_tick(_tick(key, quote, 0)))
    book.order(Side.BUY, Decimal(50), dt.datetime.now(dt.UTC))
    settled = book.account.settle_expiry(call, Decimal(20150), dt.datetime.now(dt.UTC))
    assert settled is not None
    assert (settled.cash, settled.realised) == (Decimal(7500), Decimal("2497.5"))
    # capital - 50 x 100.05 + 7,500, by hand and in both books.
    assert book.account.cash == Decimal(paper["cash"]) == capital + Decimal("2497.5")
    assert Decimal(paper["margin_used"]) == book.account.blocked() == 0
