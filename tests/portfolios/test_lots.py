"""The lot book against hand-worked cases (the issue's worked example for every method) and
properties that hold for any sequence of trades: quantity and cost are conserved, and
realised + unrealised is the total P&L whatever the method."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.portfolios.accounting.lots import Book, build_book, specific
from quantdesk.portfolios.accounting.types import AccountingError, LotMethod, TxnType
from quantdesk.portfolios.accounting.types import Transaction as T  # noqa: N817

D = Decimal
X = "NSE:ACME"


def day(n: int) -> dt.date:
    return dt.date(2024, 1, 1) + dt.timedelta(days=n)


def worked_example() -> list[T]:
    """Buy 100 @ 50 (+5), buy 50 @ 60 (+5), dividend 1.00/share, 2:1 split, buy 100 @ 24
    (+5), sell 250 @ 32 (-10)."""
    return [
        T("b1", TxnType.BUY, day(0), "a", X, D(100), D(50), D(5)),
        T("b2", TxnType.BUY, day(30), "a", X, D(50), D(60), D(5)),
        T("dv", TxnType.DIVIDEND, day(60), "a", X, price=D("1.00")),
        T("sp", TxnType.SPLIT, day(90), "a", X, ratio=D(2)),
        T("b3", TxnType.BUY, day(120), "a", X, D(100), D(24), D(5)),
        T("s1", TxnType.SELL, day(150), "a", X, D(250), D(32), D(10)),
    ]


def totals(book: Book, price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    realised = sum((s.realized_pnl for s in book.sales), D(0))
    (position,) = book.open_positions()
    return realised, position.quantity * price - position.cost, position.cost


@pytest.mark.parametrize(
    ("method", "realised", "unrealised", "remaining"),
    [
        (LotMethod.FIFO, "1482.50", "1342.50", "3907.50"),
        (LotMethod.LIFO, "1328.75", "1496.25", "3753.75"),
        (LotMethod.HIFO, "1231.25", "1593.75", "3656.25"),
        (LotMethod.AVERAGE, "1480.625", "1344.375", "3905.625"),
    ],
)
def test_worked_example(method: LotMethod, realised: str, unrealised: str, remaining: str) -> None:
    book = build_book(worked_example(), method)
    got = totals(book, D(35))
    assert got == (D(realised), D(unrealised), D(remaining))
    assert got[0] + got[1] == D(2825)
    income = sum((e.income for e in book.effects), D(0))
    assert income == D(150)
    assert got[0] + got[1] + income == D(2975)
    (position,) = book.open_positions()
    assert position.quantity == D(150)


def test_fifo_sale_lists_the_lots_it_consumed() -> None:
    (sale,) = build_book(worked_example(), LotMethod.FIFO).sales
    assert [(lot.lot_id, lot.quantity, lot.cost) for lot in sale.lots] == [
        ("b1", D(200), D(5005)),
        ("b2", D(50), D("1502.5")),
    ]
    assert sale.proceeds == D(7990)
    assert sum((lot.realized_pnl for lot in sale.lots), D(0)) == sale.realized_pnl


def test_specific_lots_override_the_method() -> None:
    txns = worked_example()
    txns[-1] = T(
        "s1",
        TxnType.SELL,
        day(150),
        "a",
        X,
        D(250),
        D(32),
        D(10),
        lots=specific(("b3", 100), ("b1", 150)),
    )
    realised, _, remaining = totals(build_book(txns, LotMethod.FIFO), D(35))
    # 7990 - (2405 + 150 x 25.025) = 1831.25; left: 50 of b1 (1251.25) + b2 (3005).
    assert (realised, remaining) == (D("1831.25"), D("4256.25"))
    txns[-1] = T("s1", TxnType.SELL, day(150), "a", X, D(250), D(32), lots=specific(("b9", 250)))
    with pytest.raises(AccountingError, match="no open lot b9"):
        build_book(txns)


def test_shorts_futures_and_closing_events() -> None:
    fut = "NFO:NIFTY26DECFUT"
    opt = "NFO:NIFTY26DEC26000CE"
    book = build_book(
        [
            T("s", TxnType.SHORT_SELL, day(0), "a", X, D(10), D(100), D(1)),
            T("c", TxnType.BUY_TO_COVER, day(5), "a", X, D(4), D(90), D(1)),
            T(
                "f",
                TxnType.BUY,
                day(1),
                "a",
                fut,
                D(2),
                D(25000),
                D(20),
                multiplier=D(65),
                is_future=True,
            ),
            T(
                "fs",
                TxnType.FUTURES_SETTLEMENT,
                day(9),
                "a",
                fut,
                price=D(25100),
                fees=D(20),
                multiplier=D(65),
                is_future=True,
            ),
            T("o", TxnType.BUY, day(1), "a", opt, D(65), D(120), multiplier=D(1)),
            T("oe", TxnType.OPTION_EXPIRY, day(9), "a", opt),
        ]
    )
    realised = {s.transaction_id: s.realized_pnl for s in book.sales}
    # Short 10 @ 100 (-1 fee: proceeds 999), cover 4 @ 90 (+1): 399.6 - 361 = 38.6.
    assert realised["c"] == D("38.6")
    # Future: (25100 - 25000) x 2 x 65 - 40 fees.
    assert realised["fs"] == D(12960)
    assert realised["oe"] == D(-7800)
    (short,) = book.open_positions()
    assert short.quantity == D(-6)
    assert short.cost == D("-599.4")
    # The future's cash is its P&L only (margined): fees out, the settlement in.
    assert sum((e.cash for e in book.effects if e.instrument == fut), D(0)) == D(12960)


def test_bonus_merger_and_transfers_keep_cost_and_dates() -> None:
    book = build_book(
        [
            T("b", TxnType.BUY, day(0), "a", X, D(10), D(100)),
            T("bn", TxnType.BONUS, day(10), "a", X, ratio=D(1)),
            T("m", TxnType.MERGER, day(20), "a", X, new_instrument="NSE:NEWCO", ratio=D("0.5")),
            T("t", TxnType.TRANSFER_OUT, day(30), "a", "NSE:NEWCO", D(4), to_account="b"),
        ]
    )
    positions = {p.account: p for p in book.open_positions()}
    assert positions["a"].instrument == "NSE:NEWCO"
    assert (positions["a"].quantity, positions["a"].cost) == (D(6), D(600))
    assert (positions["b"].quantity, positions["b"].cost) == (D(4), D(400))
    assert positions["b"].lots[0].opened == day(0)
    assert all(e.flow == 0 for e in book.effects[1:])


def test_refusals() -> None:
    with pytest.raises(AccountingError, match="exceeds"):
        build_book(
            [
                T("b", TxnType.BUY, day(0), "a", X, D(1), D(1)),
                T("s", TxnType.SELL, day(1), "a", X, D(2), D(1)),
            ]
        )
    with pytest.raises(AccountingError, match="buy_to_cover"):
        build_book(
            [
                T("s", TxnType.SHORT_SELL, day(0), "a", X, D(1), D(1)),
                T("b", TxnType.BUY, day(1), "a", X, D(1), D(1)),
            ]
        )
    # A merger onto the instrument itself (it used to move the lots onto their own list
    # until the quantities overflowed).
    with pytest.raises(AccountingError, match="must differ") as refused:
        build_book(
            [
                T("b", TxnType.BUY, day(0), "a", X, D(1), D(1)),
                T("m", TxnType.MERGER, day(1), "a", X, ratio=D(2), new_instrument=X),
            ]
        )
    assert refused.value.transaction_id == "m"


trades = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell", "split"]),
        st.integers(1, 200),
        st.decimals(min_value=1, max_value=500, places=2),
        st.decimals(min_value=0, max_value=20, places=2),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(trades=trades, method=st.sampled_from(list(LotMethod)), mark=st.decimals(1, 500, places=2))
def test_conservation_for_any_trades(
    trades: list[tuple[str, int, Decimal, Decimal]], method: LotMethod, mark: Decimal
) -> None:
    book = Book(method)
    bought = sold = D(0)
    cost_in = proceeds = D(0)
    for n, (kind, quantity, price, fee) in enumerate(trades):
        held = book.quantity("a", X)
        if kind == "buy":
            book.apply(T(str(n), TxnType.BUY, day(n), "a", X, D(quantity), price, fee))
            bought += quantity
            cost_in += quantity * price + fee
        elif kind == "sell" and held >= 1:
            q = min(D(quantity), held)
            book.apply(T(str(n), TxnType.SELL, day(n), "a", X, q, price, fee))
            sold += q
            proceeds += q * price - fee
        elif kind == "split" and held:
            book.apply(T(str(n), TxnType.SPLIT, day(n), "a", X, ratio=D(2)))
            bought, sold = bought * 2, sold * 2
    held = book.quantity("a", X)
    assert held == bought - sold  # quantity is conserved
    position = book.positions.get(("a", X))
    remaining = position.cost if position else D(0)
    realised = sum((s.realized_pnl for s in book.sales), D(0))
    consumed = sum((lot.cost for s in book.sales for lot in s.lots), D(0))
    # Cost is conserved exactly: what went in is what the sales took plus what is left.
    assert consumed + remaining == cost_in
    # realised + unrealised = total P&L, for every method.
    unrealised = held * mark - remaining
    assert realised + unrealised == proceeds + held * mark - cost_in
    assert all(lot.quantity > 0 for p in book.open_positions() for lot in p.lots)


def test_large_amounts_stay_exact() -> None:
    from quantdesk.portfolios.rows import money

    q, p = D("123456789012345.12345678"), D("987654321098765.1234567891")
    book = build_book(
        [
            T("b", TxnType.BUY, day(0), "a", X, q, p, D("0.01")),
            T("s", TxnType.SELL, day(1), "a", X, q, p + 1),
        ]
    )
    (sale,) = book.sales
    # 47 significant digits each side: nothing rounded on the way.
    assert sale.realized_pnl == q - D("0.01")
    big = D("1234567890123456789012345678901.12345678")  # 39 digits: more than the default 28
    assert money(big) == big
    assert str(money(big)) == "1234567890123456789012345678901.12345678"
