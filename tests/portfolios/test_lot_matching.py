"""A close across several lots, worked by hand for each ordered method: which lots it takes
and in what order, each lot's cost (a part lot's at 12 places, half-even), the proceeds
shared by quantity with the rounding remainder on the last lot, and what is left open.

b1: 3 @ 10 + 1 = 31, b2: 3 @ 13 + 1 = 40 (the dearest per share), b3: 3 @ 12 + 1 = 37;
sell 7 @ 13 - 1 = 90 received.  A whole lot's share is 90 x 3/7 = 38.571428571428|57...,
so 38.571428571429; the last (part) lot's is the rest, 90 - 2 x 38.571428571429.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from quantdesk.portfolios.accounting.lots import build_book
from quantdesk.portfolios.accounting.types import LotMethod, TxnType
from quantdesk.portfolios.accounting.types import Transaction as T  # noqa: N817

D = Decimal
X = "NSE:ACME"
WHOLE_SHARE, LAST_SHARE = D("38.571428571429"), D("12.857142857142")


def day(n: int) -> dt.date:
    return dt.date(2024, 1, 1) + dt.timedelta(days=n)


def three_lots_then_sell_seven() -> list[T]:
    return [
        T("b1", TxnType.BUY, day(0), "a", X, D(3), D(10), D(1)),
        T("b2", TxnType.BUY, day(1), "a", X, D(3), D(13), D(1)),
        T("b3", TxnType.BUY, day(2), "a", X, D(3), D(12), D(1)),
        T("s1", TxnType.SELL, day(3), "a", X, D(7), D(13), D(1)),
    ]


@pytest.mark.parametrize(
    ("method", "taken", "left"),
    [
        # (lot, quantity, cost) in the order taken; then the lot left open.
        (
            LotMethod.FIFO,
            [("b1", 3, "31"), ("b2", 3, "40"), ("b3", 1, "12.333333333333")],
            ("b3", 2, "24.666666666667"),
        ),
        (
            LotMethod.LIFO,
            [("b3", 3, "37"), ("b2", 3, "40"), ("b1", 1, "10.333333333333")],
            ("b1", 2, "20.666666666667"),
        ),
        (
            LotMethod.HIFO,
            [("b2", 3, "40"), ("b3", 3, "37"), ("b1", 1, "10.333333333333")],
            ("b1", 2, "20.666666666667"),
        ),
    ],
)
def test_a_close_across_three_lots(
    method: LotMethod, taken: list[tuple[str, int, str]], left: tuple[str, int, str]
) -> None:
    book = build_book(three_lots_then_sell_seven(), method)
    (sale,) = book.sales
    assert [(lot.lot_id, lot.quantity, lot.cost) for lot in sale.lots] == [
        (lot_id, D(q), D(cost)) for lot_id, q, cost in taken
    ]
    assert [lot.proceeds for lot in sale.lots] == [WHOLE_SHARE, WHOLE_SHARE, LAST_SHARE]
    assert [lot.realized_pnl for lot in sale.lots] == [
        lot.proceeds - D(cost) for lot, (_, _, cost) in zip(sale.lots, taken, strict=True)
    ]
    assert sale.proceeds == D(90)
    assert sale.cost == sum((D(cost) for _, _, cost in taken), D(0))
    assert sale.realized_pnl == D(90) - sale.cost
    (position,) = book.open_positions()
    assert [(lot.id, lot.quantity, lot.cost) for lot in position.lots] == [
        (left[0], D(left[1]), D(left[2]))
    ]
    assert position.quantity == D(2)
    # Every lot's cost is accounted for: 31 + 40 + 37 went in.
    assert sale.cost + position.cost == D(108)


@pytest.mark.parametrize("method", [LotMethod.FIFO, LotMethod.LIFO, LotMethod.HIFO])
def test_closing_the_rest_empties_the_position(method: LotMethod) -> None:
    txns = [*three_lots_then_sell_seven(), T("s2", TxnType.SELL, day(4), "a", X, D(2), D(13))]
    book = build_book(txns, method)
    first, second = book.sales
    assert second.cost + first.cost == D(108)
    assert len(second.lots) == 1
    assert second.lots[0].quantity == D(2)
    assert book.open_positions() == []
    assert book.quantity("a", X) == 0


def test_a_cover_takes_short_lots_first_in_first_out() -> None:
    """Short 3 @ 10 (fee 1: cost 1 - 30 = -29), short 3 @ 12 (cost -35); cover 4 @ 11
    (fee 1): received -(44 + 1) = -45.  The first lot's share -45 x 3/4 = -33.75; the part
    lot's cost -35/3 = -11.666666666667, its share the rest, -11.25."""
    book = build_book(
        [
            T("s1", TxnType.SHORT_SELL, day(0), "a", X, D(3), D(10), D(1)),
            T("s2", TxnType.SHORT_SELL, day(1), "a", X, D(3), D(12), D(1)),
            T("c1", TxnType.BUY_TO_COVER, day(2), "a", X, D(4), D(11), D(1)),
        ]
    )
    (cover,) = book.sales
    assert [tuple(lot)[3:] for lot in cover.lots] == [
        (D(-3), D(-29), D("-33.75"), D("-4.75")),
        (D(-1), D("-11.666666666667"), D("-11.25"), D("0.416666666667")),
    ]
    assert cover.realized_pnl == D("-4.333333333333")
    (position,) = book.open_positions()
    assert [(lot.id, lot.quantity, lot.cost) for lot in position.lots] == [
        ("s2", D(-2), D("-23.333333333333"))
    ]
