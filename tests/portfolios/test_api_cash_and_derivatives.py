"""Cash-only types, securities transferred in and between accounts, dividends and interest
with withholding tax, option exercise and assignment with a contract multiplier, and an
account's own lot method, through ``POST /api/v1/portfolios/{id}/transactions``: figures
worked out by hand from the conventions of docs/portfolios.md; bad input of each type is a
422 problem that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create, post_all, upload
from tests.support.factories import TestUser

PROBLEM = "application/problem+json"

# Two NFO contracts on ACME expiring 2024-03-28, 50 shares each (the master's multiplier).
OPTIONS = """exchange,symbol,name,type,lot_size,multiplier,underlying,expiry,strike,option_type
NFO,ACME24MAR100CE,ACME 2024-03-28 100 CE,option,50,50,ACME,2024-03-28,100,CE
NFO,ACME24MAR113PE,ACME 2024-03-28 113 PE,option,50,50,ACME,2024-03-28,113,PE
"""
CALL, PUT = "NFO:ACME24MAR100CE", "NFO:ACME24MAR113PE"


async def list_options(client: httpx.AsyncClient, admin: TestUser) -> None:
    r = await client.post(
        "/api/v1/instruments/import",
        params={"format": "generic"},
        files=upload(OPTIONS),
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text


async def add_account(
    client: httpx.AsyncClient, user: TestUser, pid: str, name: str, **extra: Any
) -> str:
    r = await client.post(
        f"{BASE}/{pid}/accounts", json={"name": name, **extra}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def holdings(
    client: httpx.AsyncClient, user: TestUser, pid: str, **params: str
) -> dict[str, Any]:
    r = await client.get(
        f"{BASE}/{pid}/holdings", params={"lots": "true", **params}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def gains(client: httpx.AsyncClient, user: TestUser, pid: str) -> dict[str, Any]:
    r = await client.get(f"{BASE}/{pid}/gains", headers=user.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_cash_types_income_taxes_and_a_transfer_between_accounts(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    portfolio = await create(client, user)
    pid, broker = portfolio["id"], portfolio["accounts"][0]["id"]
    demat = await add_account(client, user, pid, "Demat", kind="demat")
    acme = {"instrument": "NSE:ACME"}
    posted = await post_all(
        client,
        user,
        pid,
        [
            {"type": "deposit", "date": "2024-01-02", "amount": "10000"},
            # Shares from another broker: cost basis 10 x 100 + 5 = 1,005; only the 5 is cash.
            {"type": "transfer_in", **acme, "date": "2024-01-03", "quantity": "10",
             "price": "100", "fees": "5"},
            # 2/share on the 10 held: gross 20, 2 withheld, 18 income.
            {"type": "dividend", **acme, "date": "2024-02-01", "price": "2", "tax": "2"},
            {"type": "interest", "date": "2024-03-01", "amount": "50", "tax": "5"},
            {"type": "fee", "date": "2024-03-04", "amount": "7"},
            {"type": "tax", "date": "2024-03-05", "amount": "3"},
            {"type": "withdrawal", "date": "2024-04-01", "amount": "1000"},
            {"type": "transfer_out", **acme, "date": "2024-04-15", "quantity": "4",
             "to_account_id": demat},
            {"type": "transfer_out", **acme, "date": "2024-04-16", "quantity": "6",
             "to_account_id": demat},
            {"type": "sell", **acme, "date": "2024-05-02", "quantity": "10", "price": "110",
             "fees": "5", "account_id": demat},
        ],
    )  # fmt: skip
    transfer_in = posted[1]["id"]
    assert [t["currency"] for t in posted] == ["INR"] * 10
    assert (posted[2]["tax"], posted[3]["amount"], posted[3]["tax"]) == ("2", "50", "5")

    # After the first move: the lot split 4 : 6, its cost 4/10 and 6/10 of 1,005, its date kept.
    moved = await holdings(client, user, pid, date="2024-04-15")
    (item,) = moved["items"]
    assert (item["quantity"], item["cost_basis"], item["income"]) == ("10", "1005.00", "18.00")
    assert sorted(
        (lot["account_id"], lot["lot_id"], lot["opened"], lot["quantity"], lot["cost_basis"])
        for lot in item["lots"]
    ) == sorted([
        (broker, transfer_in, "2024-01-03", "6", "603.00"),
        (demat, transfer_in, "2024-01-03", "4", "402.00"),
    ])  # fmt: skip
    assert moved["realized_pnl"] == "0.00"

    # Cash: Default 10,000 - 5 + 18 + 45 - 7 - 3 - 1,000 = 9,048; Demat the sale's
    # 10 x 110 - 5 = 1,095; 10,143 in all.  Income 18 + 45 = 63 (net of withholding); fees
    # 5 + 7 + 5 = 17; taxes 2 + 5 + 3 = 10; realised 1,095 - 1,005 = 90.
    final = await holdings(client, user, pid)
    assert final["items"] == []
    assert {c["account_id"]: c["amount"] for c in final["cash"]} == {
        broker: "9048.00",
        demat: "1095.00",
    }
    assert (final["income"], final["fees"], final["taxes"], final["realized_pnl"]) == (
        "63.00", "17.00", "10.00", "90.00",
    )  # fmt: skip
    assert (final["cost_basis"], final["market_value"]) == ("0.00", "0.00")

    # The sale consumed the two pieces of the transferred lot in Demat, oldest move first:
    # proceeds shared by quantity, 1,095 x 4/10 = 438 and 657, against 402 and 603.  Held
    # from 2024-01-03 (not from the move): 120 days, short term, FY2024-25.
    report = await gains(client, user, pid)
    assert report["realized_pnl"] == "90.00"
    (sale,) = report["sales"]
    assert (sale["account_id"], sale["proceeds"], sale["cost"]) == (demat, "1095.00", "1005.00")
    assert [
        (lot["lot_id"], lot["opened"], lot["quantity"], lot["cost"], lot["proceeds"],
         lot["realized_pnl"], lot["holding_days"], lot["term"], lot["financial_year"])
        for lot in sale["lots"]
    ] == [
        (transfer_in, "2024-01-03", "4", "402.00", "438.00", "36.00", 120, "short", "FY2024-25"),
        (transfer_in, "2024-01-03", "6", "603.00", "657.00", "54.00", 120, "short", "FY2024-25"),
    ]  # fmt: skip


async def test_option_exercise_and_assignment_with_the_multiplier(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin, user = await make_user("admin"), await make_user()
    await list_options(client, admin)
    pid = (await create(client, user))["id"]
    opened = await post_all(
        client,
        user,
        pid,
        [
            {"type": "buy", "instrument": CALL, "date": "2024-03-01", "quantity": "2",
             "price": "3", "fees": "10"},
            # Writing the put: a short lot whose cost is minus its net proceeds.
            {"type": "short_sell", "instrument": PUT, "date": "2024-03-01", "quantity": "1",
             "price": "4", "fees": "10"},
        ],
    )  # fmt: skip
    assert [t["multiplier"] for t in opened] == ["50", "50"]

    # Long call: 2 x 3 x 50 + 10 = 310.  Short put: 10 - 1 x 4 x 50 = -190.  Average costs
    # per unit of the underlying: 310 / 100 = 3.10, -190 / -50 = 3.80.  Valued at their own
    # last prices (no bars): 300 and -200.
    held = await holdings(client, user, pid, date="2024-03-15")
    assert [
        (h["instrument"], h["quantity"], h["multiplier"], h["cost_basis"], h["average_cost"],
         h["market_value"], h["unrealized_pnl"])
        for h in held["items"]
    ] == [
        (CALL, "2", "50", "310.00", "3.10", "300.00", "-10.00"),
        (PUT, "-1", "50", "-190.00", "3.80", "-200.00", "-10.00"),
    ]  # fmt: skip

    # ACME settles at 108 on expiry: the 100 call is worth 8 and is exercised (all of it,
    # the default quantity); the 113 put is worth 5 and is assigned.
    closed = await post_all(
        client,
        user,
        pid,
        [
            {"type": "option_exercise", "instrument": CALL, "date": "2024-03-28", "price": "8"},
            {"type": "option_assignment", "instrument": PUT, "date": "2024-03-28",
             "quantity": "1", "price": "5"},
        ],
    )  # fmt: skip
    # Exercise: 2 x 8 x 50 = 800 in, less the 310 paid: 490.  Assignment: the put is bought
    # back at 1 x 5 x 50 = 250 against the 190 it brought in: -60.
    report = await gains(client, user, pid)
    assert [
        (s["transaction_id"], s["type"], s["quantity"], s["proceeds"], s["cost"],
         s["realized_pnl"], [lot["quantity"] for lot in s["lots"]])
        for s in report["sales"]
    ] == [
        (closed[0]["id"], "option_exercise", "2", "800.00", "310.00", "490.00", ["2"]),
        (closed[1]["id"], "option_assignment", "1", "-250.00", "-190.00", "-60.00", ["-1"]),
    ]  # fmt: skip
    assert report["realized_pnl"] == "430.00"
    # Cash: -310 + 190 + 800 - 250 = 430, the realised total; fees 10 + 10.
    final = await holdings(client, user, pid)
    assert final["items"] == []
    assert [c["amount"] for c in final["cash"]] == ["430.00"]
    assert (final["realized_pnl"], final["fees"], final["income"]) == ("430.00", "20.00", "0.00")


async def test_an_account_lot_method_overrides_the_portfolios(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    portfolio = await create(client, user, "fifo")
    pid, fifo = portfolio["id"], portfolio["accounts"][0]["id"]
    lifo = await add_account(client, user, pid, "Demat", lot_method="lifo")
    rows: list[dict[str, Any]] = []
    for account in (fifo, lifo):
        for date, price in (("2024-01-02", "100"), ("2024-02-01", "120")):
            rows.append({"type": "buy", "instrument": "NSE:ACME", "date": date,
                         "quantity": "10", "price": price, "account_id": account})  # fmt: skip
    for account in (fifo, lifo):
        rows.append({"type": "sell", "instrument": "NSE:ACME", "date": "2024-03-01",
                     "quantity": "10", "price": "130", "account_id": account})  # fmt: skip
    posted = await post_all(client, user, pid, rows)
    # FIFO sells the lot at 100: 10 x 30 = 300; LIFO the one at 120: 10 x 10 = 100.
    report = await gains(client, user, pid)
    assert [
        (
            s["account_id"],
            s["realized_pnl"],
            [(lot["lot_id"], lot["quantity"]) for lot in s["lots"]],
        )
        for s in report["sales"]
    ] == [
        (fifo, "300.00", [(posted[0]["id"], "10")]),
        (lifo, "100.00", [(posted[3]["id"], "10")]),
    ]
    assert report["realized_pnl"] == "400.00"
    # What is left: the 120 lot in the FIFO account, the 100 lot in the LIFO one.
    (item,) = (await holdings(client, user, pid))["items"]
    assert sorted((lot["account_id"], lot["cost_basis"]) for lot in item["lots"]) == sorted(
        [(fifo, "1200.00"), (lifo, "1000.00")]
    )
    assert (item["quantity"], item["cost_basis"]) == ("20", "2200.00")


async def test_bad_input_of_each_type_is_a_problem_and_changes_nothing(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin, user = await make_user("admin"), await make_user()
    await list_options(client, admin)
    portfolio = await create(client, user)
    pid, default = portfolio["id"], portfolio["accounts"][0]["id"]
    demat = await add_account(client, user, pid, "Demat")
    acme = {"instrument": "NSE:ACME", "date": "2024-03-01"}
    await post_all(
        client,
        user,
        pid,
        [
            {"type": "deposit", "date": "2024-01-02", "amount": "10000"},
            {"type": "buy", **acme, "quantity": "10", "price": "100"},
            {"type": "buy", "instrument": CALL, "date": "2024-03-01", "quantity": "2",
             "price": "3"},
        ],
    )  # fmt: skip
    before_portfolio = (await client.get(f"{BASE}/{pid}", headers=user.headers)).json()
    before_holdings = await holdings(client, user, pid)
    # (request, a fragment of the problem's detail)
    bad: list[tuple[dict[str, Any], str]] = [
        *(({"type": kind, "date": "2024-03-02"}, f"a {kind} needs an amount")
          for kind in ("interest", "fee", "tax", "deposit", "withdrawal")),
        ({"type": "withdrawal", "date": "2024-03-02", "amount": "-1"}, "validation failed: amount"),
        ({"type": "interest", "date": "2024-03-02", "amount": "5", "tax": "-1"},
         "validation failed: tax"),
        ({"type": "fee", "date": "2024-03-02", "amount": "abc"}, "validation failed: amount"),
        ({"type": "buy", **acme, "quantity": "1", "price": "100", "tax": "0.10"},
         "a buy's taxes and charges go in fees"),
        ({"type": "tax", "date": "2024-03-02", "amount": "3", "tax": "3"},
         "a tax's taxes and charges go in fees"),
        ({"type": "dividend", **acme}, "a dividend needs an amount, or a price"),
        ({"type": "dividend", **acme, "price": "2", "tax": "-0.5"}, "validation failed: tax"),
        ({"type": "dividend", "instrument": "NSE:NONE", "date": "2024-03-02", "price": "2"},
         "no NSE:NONE held"),
        ({"type": "transfer_in", **acme, "quantity": "-10", "price": "100"},
         "validation failed: quantity"),
        ({"type": "transfer_in", "date": "2024-03-02", "quantity": "10", "price": "100"},
         "a transfer_in needs an instrument"),
        ({"type": "transfer_in", **acme, "price": "100"}, "quantity must be positive"),
        ({"type": "transfer_out", **acme, "quantity": "11", "to_account_id": demat},
         "exceeds the long quantity held"),
        ({"type": "transfer_out", **acme, "quantity": "1", "to_account_id": default},
         "another account of this portfolio"),
        ({"type": "transfer_out", **acme, "quantity": "-1", "to_account_id": demat},
         "validation failed: quantity"),
        ({"type": "sell", **acme, "quantity": "1", "price": "1", "to_account_id": demat},
         "to_account_id is for transfer_out"),
        ({"type": "option_exercise", "instrument": CALL, "date": "2024-03-28",
          "quantity": "3", "price": "8"}, "exceeds the long quantity held"),
        ({"type": "option_exercise", "instrument": CALL, "date": "2024-03-28",
          "price": "-8"}, "validation failed: price"),
        ({"type": "option_assignment", "instrument": PUT, "date": "2024-03-28",
          "price": "5"}, f"nothing of {PUT} is held"),
        ({"type": "option_assignment", "date": "2024-03-28", "price": "5"},
         "a option_assignment needs an instrument"),
        # Onto itself, the book used to move the lots onto their own list for ever.
        ({"type": "merger", **acme, "ratio": "2", "new_instrument": "nse:acme"},
         "a merger's new_instrument must differ"),
    ]  # fmt: skip
    for body, fragment in bad:
        r = await client.post(f"{BASE}/{pid}/transactions", json=body, headers=user.headers)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == PROBLEM, body
        problem = r.json()
        assert problem["status"] == 422
        assert fragment in problem["detail"], (body, problem)
    after_portfolio = (await client.get(f"{BASE}/{pid}", headers=user.headers)).json()
    assert after_portfolio["version"] == before_portfolio["version"]
    assert await holdings(client, user, pid) == before_holdings
    page = (await client.get(f"{BASE}/{pid}/transactions", headers=user.headers)).json()
    assert len(page["items"]) == 3


async def test_settlement_date_is_kept_and_identical_lines_of_one_file_both_import(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    # T+1 settlement: the lot, its cost and the cash go by the trade date.
    (buy,) = await post_all(
        client,
        user,
        pid,
        [{"type": "buy", "instrument": "NSE:ACME", "date": "2024-03-01",
          "settlement_date": "2024-03-04", "quantity": "10", "price": "100"}],
    )  # fmt: skip
    assert buy["settlement_date"] == "2024-03-04"
    on_trade_date = await holdings(client, user, pid, date="2024-03-01")
    (item,) = on_trade_date["items"]
    assert (item["quantity"], item["cost_basis"]) == ("10", "1000.00")
    assert [c["amount"] for c in on_trade_date["cash"]] == ["-1000.00"]
    exported = (await client.get(f"{BASE}/{pid}/export", headers=user.headers)).text
    assert exported.splitlines()[1].split(",")[14] == "2024-03-04"
    # Two identical deposits in one file are two deposits; the file again is all duplicates.
    csv = "date,type,amount\n2024-03-01,deposit,500\n2024-03-01,deposit,500\n"
    r = await client.post(f"{BASE}/{pid}/imports", files=upload(csv), headers=user.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["skipped"]) == (2, [])
    r = await client.post(f"{BASE}/{pid}/imports", files=upload(csv), headers=user.headers)
    assert (r.json()["created"], [s["line"] for s in r.json()["skipped"]]) == (0, [2, 3])
    # A repeated external_id within one file is the one exception: the second is skipped.
    csv = "date,type,amount,external_id\n2024-03-02,fee,1,x1\n2024-03-02,fee,1,x1\n"
    r = await client.post(f"{BASE}/{pid}/imports", files=upload(csv), headers=user.headers)
    assert r.json()["created"] == 1, r.text
    assert r.json()["skipped"] == [{"line": 3, "reason": "duplicate external_id"}]
    # -1,000 + 2 x 500 - 1.
    assert [c["amount"] for c in (await holdings(client, user, pid))["cash"]] == ["-1.00"]
