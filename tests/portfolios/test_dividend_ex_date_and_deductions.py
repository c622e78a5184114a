"""A per-share dividend is paid on the shares held at the start of its ex-date (its
``date``), and withholding tax and fees larger than the dividend or interest they come out
of are refused: in the pure core, through ``POST`` and ``PATCH .../transactions`` (a 422
problem with its own type) and in every import format that carries them (line-numbered,
nothing imported).  Figures worked by hand."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from quantdesk.portfolios.accounting.lots import build_book
from quantdesk.portfolios.accounting.returns import InstrumentInfo, holdings_by_day
from quantdesk.portfolios.accounting.types import (
    AccountingError,
    DeductionsExceedGross,
    TxnType,
)
from quantdesk.portfolios.accounting.types import Transaction as T  # noqa: N817
from quantdesk.portfolios.models import PortfolioRow, PortfolioTransactionRow
from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create, post_all, upload
from tests.support.factories import TestUser

D = Decimal
X = "NSE:ACME"
EVE, EX = dt.date(2024, 3, 1), dt.date(2024, 3, 4)  # the last day before the ex-date; it
PROBLEM = "application/problem+json"
DEDUCTIONS = "urn:quantdesk:problem:deductions-exceed-gross"
NEEDS_REPAIR = "urn:quantdesk:problem:portfolio-needs-repair"


def income(txns: list[T]) -> Decimal:
    return sum((e.income for e in build_book(txns).effects), D(0))


# --- ex-date ---------------------------------------------------------------------------------
def test_shares_bought_on_the_ex_date_receive_no_dividend() -> None:
    # 100 held at the start of the ex-date, 50 bought on it: 100 x 2.00 = 200 (not 150 x 2).
    txns = [
        T("b1", TxnType.BUY, EVE, "a", X, D(100), D(50), seq=1),
        T("b2", TxnType.BUY, EX, "a", X, D(50), D(52), seq=2),
        T("dv", TxnType.DIVIDEND, EX, "a", X, price=D("2.00"), seq=3),
    ]
    assert income(txns) == D(200)


def test_shares_sold_on_the_ex_date_still_receive_it() -> None:
    # All 100 sold on the ex-date, the dividend recorded after the sale: still 100 x 2.00.
    txns = [
        T("b1", TxnType.BUY, EVE, "a", X, D(100), D(50), seq=1),
        T("s1", TxnType.SELL, EX, "a", X, D(100), D(55), seq=2),
        T("dv", TxnType.DIVIDEND, EX, "a", X, price=D("2.00"), seq=3),
    ]
    book = build_book(txns)
    assert sum((e.income for e in book.effects), D(0)) == D(200)
    assert book.open_positions() == []
    # Bought 50 and sold 100 on the ex-date: still the 100 of its start.
    txns.insert(1, T("b2", TxnType.BUY, EX, "a", X, D(50), D(52), seq=4))
    assert income(txns) == D(200)


def test_nothing_held_at_the_start_of_the_ex_date_is_refused() -> None:
    txns = [
        T("b1", TxnType.BUY, EX, "a", X, D(100), D(50), seq=1),
        T("dv", TxnType.DIVIDEND, EX, "a", X, price=D("2.00"), seq=2),
    ]
    with pytest.raises(AccountingError, match="no NSE:ACME held at the start of 2024-03-04") as e:
        build_book(txns)
    assert e.value.transaction_id == "dv"


def test_a_dividend_is_an_outflow_of_its_day_whatever_the_order_within_it() -> None:
    # Bought 100 @ 50 the day before; on the ex-date bought 50 @ 52 (inflow 2,600), sold 30
    # @ 55 (outflow 1,650) and received 200 per share plus a special 40 (outflow 240).
    txns = [
        T("b1", TxnType.BUY, EVE, "a", X, D(100), D(50), seq=1),
        T("b2", TxnType.BUY, EX, "a", X, D(50), D(52), seq=2),
        T("s1", TxnType.SELL, EX, "a", X, D(30), D(55), seq=3),
        T("dv", TxnType.DIVIDEND, EX, "a", X, price=D("2.00"), seq=4),
        T("sp", TxnType.DIVIDEND, EX, "a", X, amount=D(40), seq=5),
    ]
    held = holdings_by_day(build_book(txns).effects, {X: InstrumentInfo(X)}, EX, EVE)
    assert held.inflow.tolist() == [5000, 0, 0, 2600]
    assert held.outflow.tolist() == [0, 0, 0, 1650 + 240]
    assert held.quantity[:, 0].tolist() == [100, 100, 100, 120]


# --- deductions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("txn", "gross"),
    [
        (T("i", TxnType.INTEREST, EX, "a", amount=D(5), tax=D(9)), "5"),
        (T("i", TxnType.INTEREST, EX, "a", amount=D(5), tax=D(3), fees=D("2.01")), "5"),
        (T("i", TxnType.DIVIDEND, EX, "a", X, amount=D(10), fees=D(11)), "10"),
        # Per share on the 100 held: 0.10 x 100 = 10.
        (T("i", TxnType.DIVIDEND, EX, "a", X, price=D("0.10"), tax=D("10.01")), "10.00"),
    ],
)
def test_tax_and_fees_beyond_the_gross_are_refused(txn: T, gross: str) -> None:
    held = T("b1", TxnType.BUY, EVE, "a", X, D(100), D(50), seq=0)
    with pytest.raises(DeductionsExceedGross, match=f"the gross {txn.type.value} of {gross}"):
        build_book([held, txn])


def test_deductions_up_to_the_gross_are_income_of_zero_or_more() -> None:
    held = T("b1", TxnType.BUY, EVE, "a", X, D(100), D(50), seq=0)
    txns = [
        held,
        T("d", TxnType.DIVIDEND, EX, "a", X, price=D("0.10"), tax=D(6), fees=D(4), seq=1),
        T("i", TxnType.INTEREST, EX, "a", amount=D(5), tax=D("0.75"), fees=D("0.25"), seq=2),
    ]
    book = build_book(txns)
    assert [e.income for e in book.effects[1:]] == [D(0), D(4)]
    assert sum((e.taxes for e in book.effects), D(0)) == D("6.75")


@pytest.mark.parametrize("field", ["tax", "fees"])
def test_negative_tax_or_fees_on_income_are_refused(field: str) -> None:
    # Stored rows come through the request models (which refuse them); the core refuses
    # them too, for books built from anything else.
    deduction = {"tax": D(0), "fees": D(0), field: D(-1)}
    txn = T(
        "i", TxnType.INTEREST, EX, "a", amount=D(5), tax=deduction["tax"], fees=deduction["fees"]
    )
    with pytest.raises(AccountingError, match=f"{field} must not be negative"):
        build_book([txn])


# --- through the API -------------------------------------------------------------------------
async def holdings(client: httpx.AsyncClient, user: TestUser, pid: str) -> dict[str, Any]:
    r = await client.get(f"{BASE}/{pid}/holdings", headers=user.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_ex_date_dividends_through_the_api(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    acme = {"instrument": X}
    await post_all(
        client,
        user,
        pid,
        [
            {"type": "buy", **acme, "date": "2024-03-01", "quantity": "100", "price": "50"},
            {"type": "buy", **acme, "date": "2024-03-04", "quantity": "50", "price": "52"},
            # Recorded after the ex-date's buy: the book is rebuilt, not appended to.
            {"type": "dividend", **acme, "date": "2024-03-04", "price": "2.00"},
        ],
    )  # fmt: skip
    assert (await holdings(client, user, pid))["income"] == "200.00"
    # A sale on the ex-date after it (appended to the cached book) takes nothing away.
    await post_all(
        client,
        user,
        pid,
        [{"type": "sell", **acme, "date": "2024-03-04", "quantity": "100", "price": "55"}],
    )
    after = await holdings(client, user, pid)
    assert (after["income"], after["items"][0]["quantity"]) == ("200.00", "50")
    # A portfolio that bought only on the ex-date has nothing to receive it on.
    other = (await create(client, user))["id"]
    await post_all(
        client,
        user,
        other,
        [{"type": "buy", **acme, "date": "2024-03-04", "quantity": "100", "price": "50"}],
    )
    r = await client.post(
        f"{BASE}/{other}/transactions",
        json={"type": "dividend", **acme, "date": "2024-03-04", "price": "2.00"},
        headers=user.headers,
    )
    assert r.status_code == 422, r.text
    assert "no NSE:ACME held at the start of 2024-03-04" in r.json()["detail"]


async def test_deductions_beyond_the_gross_are_refused_through_the_api(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    url = f"{BASE}/{pid}/transactions"
    acme = {"instrument": X}
    buy, interest = await post_all(
        client,
        user,
        pid,
        [
            {"type": "buy", **acme, "date": "2024-03-01", "quantity": "100", "price": "50"},
            {"type": "interest", "date": "2024-03-05", "amount": "50", "tax": "5"},
        ],
    )  # fmt: skip
    version = (await client.get(f"{BASE}/{pid}", headers=user.headers)).json()["version"]
    before = await holdings(client, user, pid)
    bad = [
        {"type": "interest", "date": "2024-03-06", "amount": "5", "tax": "9"},
        {"type": "dividend", **acme, "date": "2024-03-06", "amount": "10", "fees": "10.5"},
        # 100 held x 2 = 200 gross; 150 withheld + 60 fees is 210.
        {"type": "dividend", **acme, "date": "2024-03-06", "price": "2", "tax": "150",
         "fees": "60"},
        # Dated before the interest already stored: checked by a rebuild.
        {"type": "interest", "date": "2024-03-02", "amount": "1", "tax": "1", "fees": "1"},
    ]  # fmt: skip
    for body in bad:
        r = await client.post(url, json=body, headers=user.headers)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        field = "tax" if "tax" in body else "fees"
        assert (problem["type"], problem["field"]) == (DEDUCTIONS, field)
        assert "exceed the gross" in problem["detail"]
    # An edit that makes the stored interest's withholding larger than it is refused too.
    r = await client.patch(
        f"{url}/{interest['id']}", json={"version": 1, "tax": "50.01"}, headers=user.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["type"] == DEDUCTIONS
    # As is a negative withholding (the request model's check).
    r = await client.post(
        url, json={"type": "interest", "date": "2024-03-06", "amount": "5", "tax": "-1"},
        headers=user.headers,
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert "validation failed: tax" in r.json()["detail"]
    assert (await client.get(f"{BASE}/{pid}", headers=user.headers)).json()["version"] == version
    assert await holdings(client, user, pid) == before
    # Equal to the gross is allowed: income 0.
    r = await client.patch(
        f"{url}/{interest['id']}", json={"version": 1, "tax": "50"}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert (await holdings(client, user, pid))["income"] == "0.00"
    assert buy["quantity"] == "100"


async def test_a_stored_row_that_breaks_a_rule_is_named_until_it_is_repaired(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """Withholding above the gross was accepted before it was refused: such a stored row
    makes every read and write of its portfolio a 409 that names it, and editing it (or
    deleting it) repairs the portfolio."""
    user = await make_user()
    pid = (await create(client, user))["id"]
    url = f"{BASE}/{pid}/transactions"
    (interest,) = await post_all(
        client, user, pid, [{"type": "interest", "date": "2024-03-05", "amount": "50"}]
    )
    # As an older release stored it (and bumped the version, as every edit does).
    async with app.state.ctx.database.session() as db:
        await db.execute(
            update(PortfolioTransactionRow)
            .where(PortfolioTransactionRow.id == uuid.UUID(interest["id"]))
            .values(tax=Decimal(60))
        )
        await db.execute(
            update(PortfolioRow)
            .where(PortfolioRow.id == uuid.UUID(pid))
            .values(version=PortfolioRow.version + 1)
        )
    deposit = {"type": "deposit", "date": "2024-03-06", "amount": "10"}
    for r in (
        await client.get(f"{BASE}/{pid}/holdings", headers=user.headers),
        await client.get(f"{BASE}/{pid}/performance", headers=user.headers),
        await client.post(url, json=deposit, headers=user.headers),
    ):
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert (problem["type"], problem["transaction_id"]) == (NEEDS_REPAIR, interest["id"])
        assert "exceed the gross interest of 50" in problem["detail"]
    r = await client.patch(
        f"{url}/{interest['id']}", json={"version": 1, "tax": "5"}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert (await holdings(client, user, pid))["income"] == "45.00"
    assert (await client.post(url, json=deposit, headers=user.headers)).status_code == 201


async def test_imports_with_deductions_beyond_the_gross_import_nothing(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    url = f"{BASE}/{pid}/imports"

    async def count() -> int:
        page = (await client.get(f"{BASE}/{pid}/transactions", headers=user.headers)).json()
        return len(page["items"])

    header = "date,type,instrument,quantity,price,fees,amount,tax\n"
    good = "2024-03-01,buy,NSE:ACME,100,50,,,\n2024-03-05,interest,,,,,50,5\n"
    for line, expected in (
        # Line 4: 9 withheld from 5 of interest.  Line 5 would be fine.
        ("2024-03-06,interest,,,,,5,9\n2024-03-07,fee,,,,,1,\n", "exceed the gross interest"),
        # Per share on the 100 held at the start of 2024-03-06: 0.5 x 100 = 50 < 30 + 21.
        ("2024-03-06,dividend,NSE:ACME,,0.5,21,,30\n", "exceed the gross dividend of 50"),
        ("2024-03-06,interest,,,,,5,-1\n", "greater than or equal to 0"),
    ):
        r = await client.post(url, files=upload(header + good + line), headers=user.headers)
        assert r.status_code == 422, r.text
        (error,) = r.json()["errors"]
        assert (error["line"], error["field"]) == (4, "tax"), error
        assert expected in error["message"], error
        assert await count() == 0
    # Ghostfolio: a dividend of 1 x 5 with a fee of 9 (activity 2) refuses the whole file.
    activities: list[dict[str, Any]] = [
        {"type": "BUY", "symbol": "ACME.NS", "quantity": 100, "unitPrice": 50, "fee": 0,
         "currency": "INR", "date": "2024-03-01T00:00:00.000Z"},
        {"type": "DIVIDEND", "symbol": "ACME.NS", "quantity": 1, "unitPrice": 5, "fee": 9,
         "currency": "INR", "date": "2024-03-06T00:00:00.000Z"},
    ]  # fmt: skip
    files = {"file": ("g.json", orjson.dumps({"activities": activities}), "application/json")}
    r = await client.post(url, params={"format": "ghostfolio"}, files=files, headers=user.headers)
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert (error["line"], error["field"]) == (2, "fees")
    assert "exceed the gross dividend of 5" in error["message"]
    assert await count() == 0
    # The same file with a fee of 5 imports: income 5 - 5 = 0.
    activities[1]["fee"] = 5
    files = {"file": ("g.json", orjson.dumps({"activities": activities}), "application/json")}
    r = await client.post(url, params={"format": "ghostfolio"}, files=files, headers=user.headers)
    assert r.status_code == 200, r.text
    assert await count() == 2
