"""Use cases of orders: place (with every pre-trade check), modify, cancel, list, events.

The API writes orders; the matcher (``matcher.py``) matches them.  A placed order is
accepted (``new``) in the request's transaction, with its cash reserved, and the matcher is
told after commit: the acknowledgement never waits for a quote.  Modify and cancel change
the order row under the account's lock and bump its ``version``; the matcher drops any fill
it computed against an older version, so a fill and a cancel never both happen — whichever
commits first wins, and the loser is told why (a cancel of a filled order is a 422 naming
its status; a fill of a canceled order is discarded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.calendars.sessions import get_calendar
from quantdesk.marketdata.domain import Quote, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.ops.killswitch import ensure_trading_allowed
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import after_commit, utcnow
from quantdesk.platform.exceptions import InvalidInput, NotFound, QuantdeskError
from quantdesk.trading import schemas
from quantdesk.trading.bookkeeping import (
    SQUARE_OFF_REASON,
    T1_LOOKBACK,
    InstrumentFacts,
    charges_for,
    check_not_worse_than_holdings,
    delivery_of,
    facts_of,
    release,
    required_reservation,
    reserve,
    square_off_from,
    trading_day,
)
from quantdesk.trading.engine import checks, state
from quantdesk.trading.engine.contingent import StopLoss, TakeProfit
from quantdesk.trading.engine.mleg import Leg, MultiLegOrder, check_multileg
from quantdesk.trading.engine.positions import money, tidy
from quantdesk.trading.engine.slicing import NSE_INDEX_FREEZE_LIMITS, slice_sizes
from quantdesk.trading.engine.types import (
    TERMINAL_STATUSES,
    InstrumentSpec,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from quantdesk.trading.errors import order_rejected
from quantdesk.trading.events import notify_matcher, record_transition
from quantdesk.trading.margins import derivative_book, margin_leg, order_check
from quantdesk.trading.metrics import trading_metrics
from quantdesk.trading.models import OrderRow, PositionRow, TradingAccount
from quantdesk.trading.repository import CONTINGENT_CLASSES, OPEN_STATUSES, TradingRepository
from quantdesk.trading.service import (
    AccountService,
    account_not_found,
    order_document,
    order_out,
)
from quantdesk.trading.writes import PendingRows, RowSink

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_TERMINAL = tuple(sorted(TERMINAL_STATUSES))


def order_not_found(order_id: uuid.UUID) -> NotFound:
    return NotFound(f"no order {order_id} in this account", order_id=str(order_id))


# Fields added after orders were first stored: left out of the fingerprint while unset, so
# a simple order's retry (same client_order_id) matches what was stored before them.
_LATER_FIELDS = {
    "trail_price": None, "trail_percent": None, "order_class": "simple", "take_profit": None,
    "stop_loss": None, "legs": None,
}  # fmt: skip


def fingerprint(body: schemas.OrderIn) -> str:
    document = body.model_dump(mode="json")
    for name, unset in _LATER_FIELDS.items():
        if document.get(name, unset) == unset:
            document.pop(name, None)
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def transition(
    db: RowSink,
    account: TradingAccount,
    order: OrderRow,
    status: str,
    kind: str,
    at: dt.datetime,
    *,
    reason: str | None = None,
    execution_id: str | None = None,
) -> None:
    if status != order.status:
        # The one state machine (engine.state): an illegal move is a bug, never stored.
        state.transition(OrderStatus(order.status), OrderStatus(status))
    order.status = status
    order.updated_at = at
    if reason is not None:
        order.reason = reason
    record_transition(
        db,
        account,
        order,
        kind,
        at,
        reason=reason,
        execution_id=execution_id,
        order_document=order_document(order),
    )


async def sync_plan(
    db: AsyncSession, account: TradingAccount, plan: OrderRow, now: dt.datetime
) -> None:
    """A sliced order's plan follows its children: their fills summed, and its status
    (filled when they filled it all, else canceled or expired once all have ended)."""
    children = (await TradingRepository(db).children([plan.id], for_update=True)).get(plan.id, [])
    filled = sum((c.filled_quantity for c in children), ZERO)
    value = sum((c.filled_value for c in children), ZERO)
    if all(c.status in _TERMINAL for c in children):
        if filled == plan.quantity:
            status = "filled"
        elif all(c.status in ("expired", "filled") for c in children):
            status = "expired"
        else:
            status = "canceled"
    else:
        status = "partially_filled" if filled else "new"
    if status == plan.status and filled == plan.filled_quantity:
        return
    kind = "fill" if filled != plan.filled_quantity else status
    plan.filled_quantity = filled
    plan.filled_value = tidy(value)
    reason = "its slices have ended" if status in ("canceled", "expired") else None
    transition(db, account, plan, status, kind, now, reason=reason)


class OrderService:
    def __init__(self, ctx: AppContext, db: AsyncSession) -> None:
        self.ctx = ctx
        self.db = db
        self.settings = ctx.settings
        self.accounts = AccountService(ctx, db)
        self.rows = TradingRepository(db)
        # A placement's new rows, written by table when its batch is done (trading.writes).
        self.pending = PendingRows()

    # --- reads ---------------------------------------------------------------------------
    async def _order(
        self, account: TradingAccount, order_id: uuid.UUID, *, lock: bool = False
    ) -> OrderRow:
        order = await self.rows.order(account.id, order_id, for_update=lock)
        if order is None:
            raise order_not_found(order_id)
        return order

    async def get(
        self, user_id: uuid.UUID, account_id: uuid.UUID, order_id: uuid.UUID
    ) -> schemas.OrderOut:
        account = await self.accounts.owned(user_id, account_id)
        return await self._out(await self._order(account, order_id))

    async def _out(self, order: OrderRow) -> schemas.OrderOut:
        """The order with its legs (the orders hanging from it), if it has any."""
        if order.order_class == "simple" or order.parent_id is not None:
            return order_out(order)
        legs = await self.rows.children([order.id])
        return order_out(order, legs.get(order.id, []))

    async def page(
        self,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        status: str | None,
        instrument: str | None,
        since: dt.datetime | None,
        until: dt.datetime | None,
    ) -> schemas.OrderPage:
        account = await self.accounts.owned(user_id, account_id)
        statuses = _status_filter(status)
        rows, next_cursor = await self.rows.orders_page(
            account.id,
            limit=limit,
            cursor=cursor,
            statuses=statuses,
            instrument=_canonical(instrument) if instrument else None,
            since=since,
            until=until,
        )
        return schemas.OrderPage(items=[order_out(row) for row in rows], next_cursor=next_cursor)

    async def events(
        self, user_id: uuid.UUID, account_id: uuid.UUID, order_id: uuid.UUID
    ) -> list[schemas.OrderEventOut]:
        account = await self.accounts.owned(user_id, account_id)
        order = await self._order(account, order_id)
        return [
            schemas.OrderEventOut(
                seq=e.seq,
                kind=e.kind,
                status=e.status,
                reason=e.reason,
                execution_id=e.execution_id,
                at=e.at,
            )
            for e in await self.rows.events(order.id)
        ]

    # --- place ---------------------------------------------------------------------------
    async def place(
        self, user_id: uuid.UUID, account_id: uuid.UUID, body: schemas.OrderIn
    ) -> schemas.OrderOut:
        (placed,) = await self.place_many([Placement(user_id, account_id, body)])
        if isinstance(placed, QuantdeskError):
            raise placed
        return placed

    async def place_many(
        self, placements: Sequence[Placement]
    ) -> list[schemas.OrderOut | QuantdeskError]:
        """Place each order in turn in this unit of work: its acknowledgement, or the domain
        error that refused it (a refused order writes nothing; the others go ahead).

        What the checks read is read once for all of them (the accounts, locked in id order;
        the instruments; the quotes; positions and open quantities), and each placement
        updates it for the next, so a batch decides exactly as the same orders placed one
        by one would.  Its new rows go to the database in one INSERT per table at the end
        (``trading.writes``); the accounts' changes with the transaction's flush.
        """
        keys: list[str | InvalidInput] = []
        for placement in placements:
            try:
                keys.append(_canonical(_instrument(placement.body)))
            except InvalidInput as exc:
                keys.append(exc)
        wanted = [k for k in keys if isinstance(k, str)]
        for placement in placements:
            for leg in placement.body.legs or ():
                with contextlib.suppress(InvalidInput):  # refused with the order itself
                    wanted.append(_canonical(leg.instrument))
        book = await self._look_up(placements, wanted)
        results: list[schemas.OrderOut | QuantdeskError] = []
        now = utcnow()
        metrics = trading_metrics(self.ctx)
        placed = 0
        for placement, key in zip(placements, keys, strict=True):
            try:
                admitted = await self._admit(placement, key, book, now)
            except QuantdeskError as exc:
                metrics.rejected.labels(exc.type_slug).inc()
                results.append(exc)
                continue
            if isinstance(admitted, OrderRow):  # a client_order_id seen before: its order
                await self.pending.write(self.db)  # it may be this batch's, its legs unwritten
                results.append(await self._out(admitted))
                continue
            order, children = await self._write(placement, admitted, book, now)
            results.append(order_out(order, children) if children else order_out(order))
            placed += 1
        await self.pending.write(self.db)
        if placed:

            async def count() -> None:
                metrics.placed.inc(placed)

            after_commit(self.db, count)
        return results

    async def _look_up(self, placements: Sequence[Placement], keys: Sequence[str]) -> _Book:
        accounts = await self.accounts.accounts.get_many_for_owners(
            ((p.user_id, p.account_id) for p in placements), for_update=True
        )
        wanted = sorted(set(keys))
        rows = await InstrumentService(self.db).get_rows(wanted) if wanted and accounts else {}
        instruments = list(rows)
        account_ids = [account_id for _, account_id in accounts]
        book = _Book(accounts, {key: facts_of(row) for key, row in rows.items()})
        if instruments:
            book.quotes = await QuoteService(self.ctx.cache, self.ctx.bus).get_many(instruments)
            book.held = await self.rows.held_quantities(account_ids, instruments)
            book.claimed = await self.rows.open_quantities(account_ids, instruments)
        book.by_client_id = await self.rows.orders_by_client_id(
            {
                (p.account_id, p.body.client_order_id)
                for p in placements
                if p.body.client_order_id is not None and (p.user_id, p.account_id) in accounts
            }
        )
        return book

    async def _admit(
        self, placement: Placement, key: str | InvalidInput, book: _Book, now: dt.datetime
    ) -> _Admitted | OrderRow:
        """Every pre-trade check of one order, in the order a client sees them; writes
        nothing (so a refusal leaves the batch's unit of work as it was)."""
        body = placement.body
        account = book.accounts.get((placement.user_id, placement.account_id))
        if account is None:
            raise account_not_found(placement.account_id)
        print_ = fingerprint(body)
        if body.client_order_id is not None:
            existing = book.by_client_id.get((account.id, body.client_order_id))
            if existing is not None:
                if existing.fingerprint != print_:
                    raise InvalidInput(
                        f"client_order_id {body.client_order_id!r} was already used for a "
                        "different order; use a new one for a new order",
                        field="client_order_id",
                    )
                return existing
        if isinstance(key, InvalidInput):
            raise key
        if body.order_class == "mleg":
            return await self._admit_mleg(body, account, key, print_, book, now)
        facts = book.facts.get(key)
        if facts is None:
            raise NotFound(f"no instrument {key}", key=key)
        await ensure_trading_allowed(self.ctx, key)  # the kill switch (docs/operations.md)
        _check_tradable(facts, now)
        quote = book.quotes.get(key)
        last = None if quote is None else quote.last
        side = _side(body)
        if body.product == "mis" and not placement.square_off:
            held_mis = book.held.get((account.id, key, "mis"), ZERO)
            self._check_square_off_window(facts, side, body.quantity, held_mis, now)
        self._check_prices(
            facts, side, body.type, body.limit_price, body.stop_price, last, body.quantity
        )
        if body.type == "trailing_stop":
            failure = checks.check_trailing(body.trail_price, body.trail_percent)
            if failure is not None:
                raise order_rejected(failure)
        if body.order_class in CONTINGENT_CLASSES:
            self._check_exits(facts, body, side, last)
        active_from, expires_at = _session_window(facts, body, now)
        reserve_price = self._reserve_price(body.type, body.limit_price, body.stop_price, last)
        held = book.held.get((account.id, key, body.product), ZERO)
        claimed = book.claimed.get((account.id, key, body.product, side), ZERO)
        position_qty = _uncommitted_position(
            facts, _Sized(side, body.product, body.quantity), held, claimed
        )
        if side == "sell" and body.product == "cnc" and not self.settings.trading_btst:
            await self._check_settled(account, facts, body.quantity, held, claimed, now)
        needed = required_reservation(
            self.settings,
            facts,
            side=side,
            product=body.product,
            quantity=body.quantity,
            price=reserve_price,
            position_qty=position_qty,
        )
        if facts.is_derivative:
            price = reserve_price if side == "buy" else body.limit_price or last or reserve_price
            signed = body.quantity if side == "buy" else -body.quantity
            needed = await self._margin_needed(account, [(facts, signed, price)], body.product, now)
        if needed > account.cash:
            raise order_rejected(
                checks.CheckFailure(
                    "insufficient-buying-power",
                    "Insufficient buying power",
                    f"this order needs {needed:f} {account.currency}; "
                    f"the buying power is {account.cash:f}",
                )
            )
        slices = self._slices(facts, body)
        return _Admitted(
            account, key, print_, reserve_price, needed, active_from, expires_at, slices=slices
        )

    async def _check_settled(
        self,
        account: TradingAccount,
        facts: InstrumentFacts,
        quantity: Decimal,
        held: Decimal,
        claimed: Decimal,
        now: dt.datetime,
    ) -> None:
        """With BTST off a delivery sell may not sell shares bought on an earlier day that
        have not settled yet (T+1); today's buys may be sold today (that is intraday)."""
        if facts.is_derivative:
            return
        await self.pending.write(self.db)  # the reads below see this batch's earlier orders
        buys = await self.rows.delivery_buys(account.id, now - T1_LOOKBACK, facts.key)
        calendar = get_calendar(facts.exchange)
        today = calendar.local_date(now)
        earlier = [(at, q) for at, q in buys.get(facts.key, []) if calendar.local_date(at) < today]
        split = delivery_of(facts.exchange, held, earlier, now)
        free = max(held - split.t1 - claimed, ZERO)
        if quantity <= free:
            return
        settles = split.settles_on.isoformat() if split.settles_on else "the next trading day"
        raise order_rejected(
            checks.CheckFailure(
                "unsettled-holdings",
                "Shares not settled yet",
                f"{split.t1} of the {held} {facts.key} held were bought for delivery and "
                f"settle on {settles} (T+1); with BTST off only settled shares can be sold: "
                f"{free} now",
            ),
            sellable=str(free),
        )

    def _check_square_off_window(
        self, facts: InstrumentFacts, side: str, quantity: Decimal, held: Decimal, now: dt.datetime
    ) -> None:
        """Inside the square-off window an MIS order may only reduce the intraday position
        (as at Indian brokers: new intraday exposure is refused until the close)."""
        minutes = self.settings.trading_square_off_before_close_min
        start = square_off_from(facts.exchange, now, minutes)
        if start is None:
            return
        reduces = (held > 0 and side == "sell") or (held < 0 and side == "buy")
        if reduces and quantity <= abs(held):
            return
        local = start.astimezone(get_calendar(facts.exchange).timezone)
        instead = "nrml" if facts.is_derivative else "cnc"
        raise order_rejected(
            checks.CheckFailure(
                "square-off-window",
                "Intraday square-off window",
                f"{facts.exchange} squares off intraday (MIS) positions from "
                f"{local:%H:%M} {local.tzname()} until the close: an MIS order now may only "
                f"reduce the position; place it as {instead} instead",
            ),
            square_off_from=start.isoformat(),
        )

    def _slices(self, facts: InstrumentFacts, body: schemas.OrderIn) -> tuple[Decimal, ...]:
        """The child quantities of an F&O order above its underlying's freeze limit (as few
        as the limit allows, as equal as whole lots allow; engine.slicing), or ()."""
        if not facts.is_derivative or body.order_class != "simple" or not facts.underlying:
            return ()
        table = NSE_INDEX_FREEZE_LIMITS.merged(
            self.settings.trading_freeze_limits, "QUANTDESK_TRADING_FREEZE_LIMITS"
        )
        freeze = table.limit(facts.underlying)
        if freeze is None or body.quantity <= freeze:
            return ()
        return tuple(slice_sizes(body.quantity, freeze, facts.lot_size))

    async def _margin_needed(
        self,
        account: TradingAccount,
        orders: Sequence[tuple[InstrumentFacts, Decimal, Decimal]],
        product: str,
        now: dt.datetime,
    ) -> Decimal:
        """What F&O orders (signed quantity at a price, filling together) need from free
        cash by the hedge-aware margin model (trading.margins): the change in the account's
        F&O margin plus premium plus charges; refused with the numbers when it exceeds it."""
        await self.pending.write(self.db)  # the reads below see this batch's earlier orders
        held, marks = await derivative_book(
            self.db, self.ctx, account.id, extra=[facts for facts, _, _ in orders]
        )
        legs = [margin_leg(f, q, p, marks.spot(f)) for f, q, p in orders]
        charges = ZERO
        for facts, quantity, price in orders:
            lines = charges_for(
                self.settings, facts, product=product, side="buy" if quantity > 0 else "sell",
                price=price, quantity=abs(quantity), day=trading_day(facts, now),
            )  # fmt: skip
            charges += sum(lines.values(), ZERO)
        check = order_check(
            held, legs, available=account.cash, charges=charges, settings=self.settings
        )
        failure = check.failure(account.currency)
        if failure is not None:
            raise order_rejected(failure, **check.numbers())
        # A hedge releases margin only once it has filled, after paying its premium: cash
        # must cover that premium (and charges) first.
        return max(check.required, check.premium + check.charges, ZERO)

    async def _admit_mleg(
        self,
        body: schemas.OrderIn,
        account: TradingAccount,
        first: str,
        print_: str,
        book: _Book,
        now: dt.datetime,
    ) -> _Admitted:
        """The checks of a multi-leg order, each refusal naming its leg: the legs' shape
        and lots (engine.mleg), each instrument tradable and quoted, and the buying power
        for every leg (each reserves as an order of its own would, at its market)."""
        assert body.legs is not None  # noqa: S101 - validated by the schema
        if body.after_market:
            raise InvalidInput("an mleg order cannot be after-market", field="after_market")
        keys = [_canonical(leg.instrument) for leg in body.legs]
        specs: dict[str, InstrumentSpec] = {}
        for index, key in enumerate(keys):
            facts = book.facts.get(key)
            if facts is None:
                raise NotFound(f"leg {index + 1}: no instrument {key}", key=key)
            await ensure_trading_allowed(self.ctx, key)
            _check_tradable(facts, now)
            specs[key] = InstrumentSpec(key, facts.tick_size, facts.lot_size)
        order = MultiLegOrder(
            "new",
            tuple(
                Leg(key, Side(leg.side), leg.ratio)
                for key, leg in zip(keys, body.legs, strict=True)
            ),
            body.quantity,
            OrderType(body.type),
            body.limit_price,
            TimeInForce(body.time_in_force),
        )
        failure = check_multileg(order, specs)
        if failure is not None:
            raise order_rejected(failure)
        active_from, expires_at = _session_window(book.facts[first], body, now)
        legs: list[_AdmittedLeg] = []
        band = 1 + self.settings.trading_price_band_pct / HUNDRED
        for index, (key, leg) in enumerate(zip(keys, order.legs, strict=True)):
            facts = book.facts[key]
            quote = book.quotes.get(key)
            if quote is None:
                raise order_rejected(
                    checks.CheckFailure(
                        "no-market-price",
                        "No market price",
                        f"leg {index + 1} ({key}) has no quote yet, so the order cannot be "
                        "priced; try again when it trades",
                    )
                )
            side = leg.side.value
            quantity = order.leg_quantity(leg)
            price = quote.last * band if side == "buy" else quote.last
            held = book.held.get((account.id, key, body.product), ZERO)
            claimed = book.claimed.get((account.id, key, body.product, side), ZERO)
            position_qty = _uncommitted_position(
                facts, _Sized(side, body.product, quantity), held, claimed
            )
            needed = required_reservation(
                self.settings, facts, side=side, product=body.product, quantity=quantity,
                price=price, position_qty=position_qty,
            )  # fmt: skip
            legs.append(_AdmittedLeg(key, side, leg.ratio, quantity, price, needed))
        derivative = [i for i, leg in enumerate(legs) if book.facts[leg.key].is_derivative]
        if derivative:  # the F&O legs together, hedges recognised; reserved on the first
            combined = await self._margin_needed(
                account,
                [
                    (
                        book.facts[legs[i].key],
                        legs[i].quantity if legs[i].side == "buy" else -legs[i].quantity,
                        legs[i].reserve_price,
                    )
                    for i in derivative
                ],
                body.product,
                now,
            )
            for n, i in enumerate(derivative):
                legs[i] = replace(legs[i], needed=combined if n == 0 else ZERO)
        needed = sum((leg.needed for leg in legs), ZERO)
        if needed > account.cash:
            raise order_rejected(
                checks.CheckFailure(
                    "insufficient-buying-power",
                    "Insufficient buying power",
                    f"this order's legs need {needed:f} {account.currency} "
                    f"({', '.join(f'leg {i + 1} {leg.needed:f}' for i, leg in enumerate(legs))}); "
                    f"the buying power is {account.cash:f}",
                )
            )
        return _Admitted(
            account, first, print_, body.limit_price, needed, active_from, expires_at,
            tuple(legs),
        )  # fmt: skip

    async def _write_sliced(
        self, placement: Placement, admitted: _Admitted, book: _Book, now: dt.datetime
    ) -> tuple[OrderRow, list[OrderRow]]:
        """An order above the freeze limit: the plan (order_class ``sliced``; no cash, its
        fills are its children's) and its children, each an order of its own with its
        share of the reservation."""
        body, account = placement.body, admitted.account
        side = _side(body)
        plan = self._row(
            placement, admitted, now, side=side, type=body.type, limit_price=body.limit_price,
            stop_price=body.stop_price, quantity=body.quantity,
        )  # fmt: skip
        plan.order_class = "sliced"
        plan.client_order_id = body.client_order_id
        self.pending.add(plan)
        transition(self.pending, account, plan, "pending_new", "pending_new", now)
        transition(self.pending, account, plan, "new", "accepted", now)
        children = []
        left = admitted.needed
        for n, quantity in enumerate(admitted.slices, start=1):
            share = (
                left
                if n == len(admitted.slices)
                else money(admitted.needed * quantity / body.quantity)
            )
            left -= share
            child = self._row(
                placement, admitted, now, side=side, type=body.type,
                limit_price=body.limit_price, stop_price=body.stop_price, quantity=quantity,
                parent_id=plan.id,
            )  # fmt: skip
            child.leg = n - 1
            self.pending.add(child)
            transition(self.pending, account, child, "pending_new", "pending_new", now)
            await reserve(self.pending, account, child, share)
            transition(self.pending, account, child, "new", "accepted", now)
            notify_matcher(self.db, self.ctx.bus, child, "new", account)
            children.append(child)
        claim = (account.id, admitted.key, body.product, side)
        book.claimed[claim] = book.claimed.get(claim, ZERO) + body.quantity
        if body.client_order_id is not None:
            book.by_client_id[(account.id, body.client_order_id)] = plan
        return plan, children

    async def _write_mleg(
        self, placement: Placement, admitted: _Admitted, book: _Book, now: dt.datetime
    ) -> tuple[OrderRow, list[OrderRow]]:
        """The combination (a plan: it holds the net price and no cash) and its legs, each
        an order of its own that reserves, fills and holds its position."""
        body, account = placement.body, admitted.account
        first = admitted.legs[0]
        parent = self._row(
            placement, admitted, now, side=first.side, type=body.type,
            limit_price=body.limit_price, stop_price=None, quantity=body.quantity,
        )  # fmt: skip
        parent.client_order_id = body.client_order_id
        self.pending.add(parent)
        transition(self.pending, account, parent, "pending_new", "pending_new", now)
        transition(self.pending, account, parent, "new", "accepted", now)
        children = []
        for index, leg in enumerate(admitted.legs):
            child = self._row(
                placement, admitted, now, side=leg.side, type="market", limit_price=None,
                stop_price=None, quantity=leg.quantity, parent_id=parent.id,
            )  # fmt: skip
            child.instrument = leg.key
            child.leg = index
            child.ratio = leg.ratio
            child.reserve_price = leg.reserve_price
            self.pending.add(child)
            transition(self.pending, account, child, "pending_new", "pending_new", now)
            await reserve(self.pending, account, child, leg.needed)
            transition(self.pending, account, child, "new", "accepted", now)
            claim = (account.id, leg.key, body.product, leg.side)
            book.claimed[claim] = book.claimed.get(claim, ZERO) + leg.quantity
            children.append(child)
        notify_matcher(self.db, self.ctx.bus, parent, "new", account)
        if body.client_order_id is not None:
            book.by_client_id[(account.id, body.client_order_id)] = parent
        return parent, children

    async def _write(
        self, placement: Placement, admitted: _Admitted, book: _Book, now: dt.datetime
    ) -> tuple[OrderRow, list[OrderRow]]:
        """The order's rows: the order (the parent of a group) and its children."""
        if admitted.legs:
            return await self._write_mleg(placement, admitted, book, now)
        if admitted.slices:
            return await self._write_sliced(placement, admitted, book, now)
        body, account = placement.body, admitted.account
        side = _side(body)
        order = self._row(
            placement, admitted, now, side=side, type=body.type, limit_price=body.limit_price,
            stop_price=body.stop_price, quantity=body.quantity,
        )  # fmt: skip
        order.client_order_id = body.client_order_id
        order.trail_price = body.trail_price
        order.trail_percent = body.trail_percent
        self.pending.add(order)
        transition(self.pending, account, order, "pending_new", "pending_new", now)
        await reserve(self.pending, account, order, admitted.needed)
        reason = SQUARE_OFF_REASON if placement.square_off else None
        transition(self.pending, account, order, "new", "accepted", now, reason=reason)
        children = self._exits(placement, admitted, order, now)
        notify_matcher(self.db, self.ctx.bus, order, "new", account)
        claim = (account.id, admitted.key, body.product, side)
        book.claimed[claim] = book.claimed.get(claim, ZERO) + body.quantity
        if body.client_order_id is not None:
            book.by_client_id[(account.id, body.client_order_id)] = order
        return order, children

    def _row(
        self,
        placement: Placement,
        admitted: _Admitted,
        now: dt.datetime,
        *,
        side: str,
        type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        quantity: Decimal,
        parent_id: uuid.UUID | None = None,
    ) -> OrderRow:
        body = placement.body
        return OrderRow(
            id=uuid.uuid4(),
            account_id=admitted.account.id,
            user_id=placement.user_id,
            client_order_id=None,
            fingerprint=admitted.fingerprint,
            instrument=admitted.key,
            side=side,
            type=type,
            order_class=body.order_class,
            parent_id=parent_id,
            time_in_force=body.time_in_force,
            product=body.product,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
            status="pending_new",
            filled_quantity=ZERO,
            filled_value=ZERO,
            triggered=False,
            reserved=ZERO,
            reserve_price=admitted.reserve_price,
            after_market=admitted.active_from is not None,
            active_from=admitted.active_from,
            expires_at=admitted.expires_at,
            created_at=now,
            updated_at=now,
            version=1,
        )

    def _exits(
        self, placement: Placement, admitted: _Admitted, parent: OrderRow, now: dt.datetime
    ) -> list[OrderRow]:
        """A bracket's or OTO's exits (held until the entry fills) or an OCO's stop-loss
        (working at once): orders of their own under ``parent``.  They reserve nothing:
        they close what the entry opens (an OCO's, what its take-profit closes)."""
        body = placement.body
        if body.order_class not in CONTINGENT_CLASSES:
            return []
        oco = body.order_class == "oco"
        side = parent.side if oco else _opposite(parent.side)
        legs: list[tuple[str, Decimal | None, Decimal | None]] = []
        if body.take_profit is not None and not oco:
            legs.append(("limit", body.take_profit.limit_price, None))
        if body.stop_loss is not None:
            sl = body.stop_loss
            kind = "stop" if sl.limit_price is None else "stop_limit"
            legs.append((kind, sl.limit_price, sl.stop_price))
        children = []
        for kind, limit_price, stop_price in legs:
            child = self._row(
                placement, admitted, now, side=side, type=kind, limit_price=limit_price,
                stop_price=stop_price, quantity=parent.quantity, parent_id=parent.id,
            )  # fmt: skip
            child.reserve_price = limit_price or stop_price
            self.pending.add(child)
            transition(self.pending, admitted.account, child, "pending_new", "pending_new", now)
            status, kind_word = ("new", "accepted") if oco else ("held", "held")
            transition(self.pending, admitted.account, child, status, kind_word, now)
            children.append(child)
        return children

    def _check_exits(
        self, facts: InstrumentFacts, body: schemas.OrderIn, side: str, last: Decimal | None
    ) -> None:
        """Alpaca's rules for a bracket's, OTO's or OCO's exits, and their prices' ticks."""
        take_profit = stop_loss = None
        failure = None
        if body.take_profit is not None:
            take_profit = TakeProfit(body.take_profit.limit_price)
            failure = checks.check_tick(
                take_profit.limit_price, facts.tick_size, "take_profit.limit_price"
            )
        if body.stop_loss is not None:
            stop_loss = StopLoss(body.stop_loss.stop_price, body.stop_loss.limit_price)
            failure = (
                failure
                or checks.check_tick(stop_loss.stop_price, facts.tick_size, "stop_loss.stop_price")
                or checks.check_tick(
                    stop_loss.limit_price, facts.tick_size, "stop_loss.limit_price"
                )
            )
        if body.order_class == "oco":
            # The side of the position the exits close; the stop must be beyond the market.
            entry_side, base = _opposite(side), last
        else:
            entry_side, base = side, body.limit_price or body.stop_price or last
        failure = failure or checks.check_contingent(
            body.order_class, entry_side, take_profit, stop_loss, body.time_in_force, base
        )
        if failure is not None:
            raise order_rejected(failure)

    async def _open_position(
        self,
        account: TradingAccount,
        order: OrderRow,
        facts: InstrumentFacts,
        quantity: Decimal,
    ) -> Decimal:
        """``_uncommitted_position`` of a modified order, its own quantity left out."""
        position = await self.rows.position(account.id, order.instrument, order.product)
        held = ZERO if position is None else position.quantity
        claimed = await self.rows.open_quantity(
            account.id, order.instrument, order.product, order.side, order.id
        )
        return _uncommitted_position(
            facts, _Sized(order.side, order.product, quantity), held, claimed
        )

    def _check_prices(
        self,
        facts: InstrumentFacts,
        side: str,
        order_type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        last: Decimal | None,
        quantity: Decimal,
    ) -> None:
        failure = (
            checks.check_lot_multiple(quantity, facts.lot_size)
            or checks.check_tick(limit_price, facts.tick_size, "limit_price")
            or checks.check_tick(stop_price, facts.tick_size, "stop_price")
            or checks.check_order_prices(side, order_type, limit_price, stop_price)
        )
        if failure is None and last is not None:
            band = self.settings.trading_price_band_pct
            failure = checks.check_price_band(limit_price, last, band, "limit_price") or (
                checks.check_price_band(stop_price, last, band, "stop_price")
            )
        if failure is None:
            price = limit_price or stop_price or last
            if price is not None:
                failure = checks.check_order_value(
                    quantity * price * facts.multiplier, self.settings.trading_max_order_value
                )
        if failure is None and order_type == "market" and last is None:
            failure = checks.CheckFailure(
                "no-market-price",
                "No market price",
                f"{facts.key} has no quote yet, so a market order cannot be priced; "
                "place a limit order or try again when it trades",
            )
        if failure is not None:
            raise order_rejected(failure)

    def _reserve_price(
        self,
        order_type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        last: Decimal | None,
    ) -> Decimal:
        if limit_price is not None:
            return limit_price
        base = stop_price if stop_price is not None else last
        assert base is not None  # noqa: S101 - market orders without a quote are refused above
        return base * (1 + self.settings.trading_price_band_pct / HUNDRED)

    # --- charges ---------------------------------------------------------------------------
    async def charges(self, body: schemas.ChargesIn) -> schemas.ChargesOut:
        """What filling this order at once would cost, by the schedule fills pay."""
        key = _canonical(body.instrument)
        facts = facts_of(await InstrumentService(self.db).get_row(key))
        price = body.price
        if price is None:
            quote = await QuoteService(self.ctx.cache, self.ctx.bus).get(key)
            if quote is None:
                raise InvalidInput(f"{key} has no price yet; send price", field="price")
            price = quote.last
        failure = checks.check_lot_multiple(body.quantity, facts.lot_size)
        if failure is not None:
            raise order_rejected(failure)
        day = trading_day(facts, utcnow())
        lines = charges_for(
            self.settings, facts, product=body.product, side=body.side, price=price,
            quantity=body.quantity, day=day,
        )  # fmt: skip
        return schemas.ChargesOut(
            instrument=key,
            side=body.side,
            quantity=body.quantity,
            price=price,
            product=body.product,
            value=tidy(body.quantity * price * facts.multiplier),
            day=day,
            charges=lines,
            total=sum(lines.values(), ZERO),
        )

    # --- modify and cancel ----------------------------------------------------------------
    async def modify(
        self,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        order_id: uuid.UUID,
        patch: schemas.OrderPatch,
    ) -> schemas.OrderOut:
        account = await self.accounts.owned(user_id, account_id, lock=True)
        order = await self._order(account, order_id, lock=True)
        _require_open(order, "modified")
        if order.order_class in ("mleg", "sliced"):
            raise InvalidInput(
                f"an {order.order_class} order cannot be modified: modify its children, or "
                "cancel it and place a new one",
                field="order",
            )
        if patch.limit_price is not None and order.limit_price is None:
            raise InvalidInput(f"a {order.type} order has no limit_price", field="limit_price")
        if patch.stop_price is not None and order.stop_price is None:
            raise InvalidInput(f"a {order.type} order has no stop_price", field="stop_price")
        if patch.stop_price is not None and order.triggered:
            raise InvalidInput("the stop has triggered already", field="stop_price")
        if patch.stop_price is not None and order.type == "trailing_stop":
            raise InvalidInput("a trailing stop's stop follows its trail", field="stop_price")
        exit_order = order.order_class in CONTINGENT_CLASSES and (
            order.parent_id is not None or order.order_class == "oco"
        )
        if patch.quantity is not None and exit_order:
            raise InvalidInput(
                f"the quantity of an {order.order_class} exit is its group's: modify the entry's"
                if order.order_class != "oco"
                else "an oco order's quantity is fixed",
                field="quantity",
            )
        quantity = patch.quantity if patch.quantity is not None else order.quantity
        if quantity <= order.filled_quantity:
            raise InvalidInput(
                f"quantity must exceed the {order.filled_quantity} already filled",
                field="quantity",
            )
        facts = facts_of(await InstrumentService(self.db).get_row(order.instrument))
        quote = await QuoteService(self.ctx.cache, self.ctx.bus).get(order.instrument)
        limit_price = patch.limit_price or order.limit_price
        stop_price = patch.stop_price or order.stop_price
        self._check_prices(
            facts, order.side, order.type, limit_price,
            None if order.type == "trailing_stop" else stop_price,
            None if quote is None else quote.last, quantity,
        )  # fmt: skip
        position_qty = await self._open_position(
            account, order, facts, quantity - order.filled_quantity
        )
        now = utcnow()
        was_held = order.status == "held"
        transition(self.db, account, order, "pending_replace", "pending_replace", now)
        await release(self.db, account, order)
        order.quantity = quantity
        order.limit_price = limit_price
        order.stop_price = stop_price
        if order.type not in ("market", "trailing_stop"):
            order.reserve_price = self._reserve_price(
                order.type, limit_price, stop_price, order.reserve_price
            )
        assert order.reserve_price is not None  # noqa: S101 - set at placement
        needed = required_reservation(
            self.settings,
            facts,
            side=order.side,
            product=order.product,
            quantity=quantity - order.filled_quantity,
            price=order.reserve_price,
            position_qty=position_qty,
        )
        if facts.is_derivative:  # the margin model, as at placement
            remaining = quantity - order.filled_quantity
            last = None if quote is None else quote.last
            price = (
                order.reserve_price
                if order.side == "buy"
                else limit_price or last or order.reserve_price
            )
            signed = remaining if order.side == "buy" else -remaining
            needed = await self._margin_needed(
                account, [(facts, signed, price)], order.product, now
            )
        if order.order_class in CONTINGENT_CLASSES and order.parent_id is not None:
            needed = ZERO  # an exit closes what its entry opens: it reserves nothing
        if needed > account.cash:
            raise order_rejected(
                checks.CheckFailure(
                    "insufficient-buying-power",
                    "Insufficient buying power",
                    f"the modified order needs {needed:f} {account.currency}; "
                    f"the buying power is {account.cash:f}",
                )
            )
        await reserve(self.db, account, order, needed)
        order.version += 1
        status = "partially_filled" if order.filled_quantity else "held" if was_held else "new"
        transition(self.db, account, order, status, "replaced", now)
        notify_matcher(self.db, self.ctx.bus, order, "replace", account)
        return await self._out(order)

    async def cancel(
        self, user_id: uuid.UUID, account_id: uuid.UUID, order_id: uuid.UUID
    ) -> schemas.OrderOut:
        account = await self.accounts.owned(user_id, account_id, lock=True)
        order = await self._order(account, order_id, lock=True)
        _require_open(order, "canceled")
        now = utcnow()
        await self.cancel_locked(account, order, "canceled by the user", now)
        # Canceling any order of a group cancels the rest of it (Alpaca's rule), the
        # parent's cancel included; an mleg order's legs and a plan's slices go with it.
        if order.order_class != "simple" or order.parent_id is not None:
            root_id = order.parent_id or order.id
            root = order if root_id == order.id else await self._order(account, root_id, lock=True)
            if root.order_class == "sliced" and root is not order:
                # A slice works on its own: its plan only follows it.
                await sync_plan(self.db, account, root, now)
                return await self._out(order)
            members = [root] if root is not order else []
            members += (await self.rows.children([root_id], for_update=True)).get(root_id, [])
            for member in members:
                if member.id != order.id and member.status not in _TERMINAL:
                    await self.cancel_locked(account, member, "canceled with its group", now)
        return await self._out(order)

    async def cancel_all(self, user_id: uuid.UUID, account_id: uuid.UUID) -> schemas.CancelAllOut:
        account = await self.accounts.owned(user_id, account_id, lock=True)
        now = utcnow()
        canceled = []
        for order in await self.rows.open_orders(account.id):
            await self.cancel_locked(account, order, "canceled by the user (cancel all)", now)
            canceled.append(order_out(order))
        return schemas.CancelAllOut(canceled=canceled)

    async def cancel_locked(
        self, account: TradingAccount, order: OrderRow, reason: str, now: dt.datetime
    ) -> None:
        await release(self.db, account, order)
        order.version += 1
        transition(self.db, account, order, "canceled", "canceled", now, reason=reason)
        notify_matcher(self.db, self.ctx.bus, order, "cancel", account)

    async def close_position(
        self, user_id: uuid.UUID, account_id: uuid.UUID, instrument: str, product: str | None
    ) -> schemas.OrderOut:
        """A market order for the opposite of the whole net position (one product)."""
        account = await self.accounts.owned(user_id, account_id)
        key = _canonical(instrument)
        held = [
            p
            for p in await self.rows.positions(account.id)
            if p.instrument == key and p.quantity and (product is None or p.product == product)
        ]
        if not held:
            raise NotFound(f"no open position in {key}", instrument=key)
        if len(held) > 1:
            raise InvalidInput(
                f"{key} is held under several products ({', '.join(p.product for p in held)}); "
                "name one with ?product=",
                field="product",
            )
        return await self.place(user_id, account_id, closing_order(held[0]))


def closing_order(position: PositionRow) -> schemas.OrderIn:
    """A market DAY order for the opposite of the whole net position (its product)."""
    return schemas.OrderIn(
        instrument=position.instrument,
        side="sell" if position.quantity > 0 else "buy",
        quantity=abs(position.quantity),
        type="market",
        time_in_force="day",
        product=position.product,
    )


@dataclass(frozen=True, slots=True)
class Placement:
    """One order to place: who places it, on which account, and what."""

    user_id: uuid.UUID
    account_id: uuid.UUID
    body: schemas.OrderIn
    # The matcher's own square-off of an intraday position (trading.lifecycle): exempt
    # from the square-off window's refusal, and marked with its reason.
    square_off: bool = False


@dataclass(slots=True)
class _Book:
    """What the checks of a batch of placements read, read once; each placement updates
    what the next one sees (its open quantity, its client_order_id)."""

    accounts: dict[tuple[uuid.UUID, uuid.UUID], TradingAccount]  # by (owner, id)
    facts: dict[str, InstrumentFacts]
    quotes: dict[str, Quote] = field(default_factory=dict)
    held: dict[tuple[uuid.UUID, str, str], Decimal] = field(default_factory=dict)
    claimed: dict[tuple[uuid.UUID, str, str, str], Decimal] = field(default_factory=dict)
    by_client_id: dict[tuple[uuid.UUID, str], OrderRow] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Admitted:
    account: TradingAccount
    key: str
    fingerprint: str
    reserve_price: Decimal | None
    needed: Decimal
    active_from: dt.datetime | None
    expires_at: dt.datetime | None
    legs: tuple[_AdmittedLeg, ...] = ()
    slices: tuple[Decimal, ...] = ()  # above the freeze limit: the children's quantities


@dataclass(frozen=True, slots=True)
class _AdmittedLeg:
    """One leg of an mleg order as admitted: its units, reservation price and amount."""

    key: str
    side: str
    ratio: int
    quantity: Decimal
    reserve_price: Decimal
    needed: Decimal


@dataclass(frozen=True, slots=True)
class _Sized:
    side: str
    product: str
    quantity: Decimal


def _uncommitted_position(
    facts: InstrumentFacts, order: schemas.OrderIn | _Sized, held: Decimal, claimed: Decimal
) -> Decimal:
    """The position as far as a new order may still close it: the held position less what
    other open orders on the same side already close (each unit closes once, so two sells
    against one long cannot both reserve nothing).  Checks a delivery (CNC) sell against
    the holdings on the way."""
    if order.side == "sell" and order.product == "cnc" and not facts.is_derivative:
        check_not_worse_than_holdings(
            facts, order.product, order.side, order.quantity, max(held, ZERO) - claimed
        )
    return held + claimed if order.side == "buy" else held - claimed


def _side(body: schemas.OrderIn) -> str:
    assert body.side is not None  # noqa: S101 - validated: only mleg orders have none
    return body.side


def _instrument(body: schemas.OrderIn) -> str:
    if body.instrument is not None:
        return body.instrument
    assert body.legs  # noqa: S101 - validated: an mleg order has legs
    return body.legs[0].instrument


def _opposite(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def _canonical(key: str) -> str:
    try:
        exchange, symbol = parse_key(key)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="instrument") from None
    return f"{exchange.value}:{symbol}"


def _status_filter(status: str | None) -> list[str] | None:
    if status is None or status == "all":
        return None
    if status == "open":
        return list(OPEN_STATUSES)
    if status == "closed":
        return list(_TERMINAL)
    known = {"open", "closed", "all", *OPEN_STATUSES, *_TERMINAL}
    if status not in known:
        raise InvalidInput(
            f"unknown status {status!r}; use one of {', '.join(sorted(known))}", field="status"
        )
    return [status]


def _require_open(order: OrderRow, verb: str) -> None:
    if order.status in _TERMINAL:
        raise order_rejected(
            checks.CheckFailure(
                "order-not-open",
                "Order is not open",
                f"the order is {order.status} and cannot be {verb}",
            ),
            status=order.status,
        )


def _check_tradable(facts: InstrumentFacts, now: dt.datetime) -> None:
    if facts.kind == "index":
        raise order_rejected(
            checks.CheckFailure(
                "instrument-not-tradable",
                "Instrument not tradable",
                f"{facts.key} is an index: trade its futures or options",
            )
        )
    if not facts.active:
        raise order_rejected(
            checks.CheckFailure(
                "instrument-not-tradable", "Instrument not tradable", f"{facts.key} is inactive"
            )
        )
    if facts.expiry is not None:
        calendar = get_calendar(facts.exchange)
        if facts.expiry < calendar.local_date(now):
            raise order_rejected(
                checks.CheckFailure(
                    "instrument-expired",
                    "Instrument expired",
                    f"{facts.key} expired on {facts.expiry.isoformat()}",
                )
            )


def _session_window(
    facts: InstrumentFacts, body: schemas.OrderIn, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(active_from, expires_at): when an after-market order starts, when a DAY order ends."""
    status = get_calendar(facts.exchange).status(now)
    active_from = None
    close = status.next_close
    if not status.is_open:
        if not body.after_market:
            raise order_rejected(
                checks.CheckFailure(
                    "market-closed",
                    "Market closed",
                    f"{facts.exchange} is closed; it opens at {status.next_open.isoformat()}. "
                    "Send after_market: true to queue the order for the open",
                ),
                next_open=status.next_open.isoformat(),
            )
        if body.time_in_force in ("ioc", "fok"):
            raise InvalidInput("an after-market order cannot be ioc or fok", field="time_in_force")
        active_from = status.next_open
    return active_from, close if body.time_in_force == "day" else None
