"""Reading a portfolio: its book (lots, sales, income), prices and FX, holdings, gains,
performance, the daily series, allocation and benchmark comparison.

``PortfolioAnalytics.daily_series(owner_id, portfolio_id, start, end)`` is the one entry
point for other features (risk): the securities' value, flows, investment and daily TWR,
day by day, in the portfolio's currency.

Prices: the daily closes of the bar store (the exchange's local date), the latest quote
for today, and the transactions' own prices where no bar exists (an instrument the master
does not list still values at its last traded price).  FX: the stored rates
(``portfolio_fx_rates``) and the transactions' own rates, the latest on or before each day.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Quote, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.decimals import decimal_column, decimal_from_float
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.portfolios import schemas
from quantdesk.portfolios.accounting.gains import Jurisdiction, classify
from quantdesk.portfolios.accounting.lots import Book, build_book
from quantdesk.portfolios.accounting.returns import (
    PERIODS,
    DailySeries,
    InstrumentInfo,
    Observations,
    compare,
    contributions,
    holdings_by_day,
    performance,
    period_start,
    valued,
)
from quantdesk.portfolios.accounting.types import (
    ZERO,
    AccountingError,
    LotMethod,
    Transaction,
    TxnType,
)
from quantdesk.portfolios.books import CachedBook, current_book
from quantdesk.portfolios.models import PortfolioAccountRow, PortfolioRow
from quantdesk.portfolios.paper import market_today, pending, sync_fills
from quantdesk.portfolios.repository import FxRates, PortfolioContents, PortfolioRepository
from quantdesk.portfolios.rows import account_methods, is_instrument_key, money
from quantdesk.portfolios.service import needs_repair, portfolio_not_found

UNCLASSIFIED = "unclassified"  # the sector slice of holdings the master gives none
_ASSET_CLASS = {
    "equity": "equity",
    "etf": "fund",
    "index": "index",
    "future": "derivative",
    "option": "derivative",
}
_TRADED = frozenset(
    {TxnType.BUY, TxnType.SELL, TxnType.SHORT_SELL, TxnType.BUY_TO_COVER, TxnType.TRANSFER_IN}
)
RATE_PLACES = 10


def rate(value: float | None) -> Decimal | None:
    return None if value is None else decimal_from_float(value, RATE_PLACES)


today = market_today


EARLIEST = dt.date(1900, 1, 1)
FUTURE_DAYS = 366


def checked_day(day: dt.date | None, field: str) -> dt.date:
    """``day`` (default today) if it lies between 1900 and a year from now: a series runs
    day by day, so a range is bounded like any other request."""
    if day is None:
        return today()
    if not EARLIEST <= day <= today() + dt.timedelta(days=FUTURE_DAYS):
        raise InvalidInput(f"{field} must be between {EARLIEST} and a year from today", field=field)
    return day


@dataclass(slots=True)
class Snapshot:
    portfolio: PortfolioRow
    accounts: list[PortfolioAccountRow]
    entry: CachedBook

    @property
    def transactions(self) -> list[Transaction]:
        return self.entry.transactions

    def book(self, until: dt.date | None = None) -> Book:
        """The book of every transaction up to ``until`` (default: all of them)."""
        txns = self.transactions
        if until is None or not txns or until >= txns[-1].date:
            return self.entry.book
        return build_book(
            [t for t in txns if t.date <= until],
            LotMethod(self.portfolio.lot_method),
            account_methods(self.accounts),
        )

    @property
    def first_day(self) -> dt.date | None:
        return self.transactions[0].date if self.transactions else None


@dataclass(slots=True)
class Market:
    """Prices (instrument currency) and FX (to the portfolio's) as decimal step series."""

    prices: dict[str, dict[dt.date, Decimal]] = field(default_factory=dict)
    fx: dict[str, dict[dt.date, Decimal]] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    info: dict[str, InstrumentInfo] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def latest(
        points: dict[dt.date, Decimal], day: dt.date, *, before: bool = False
    ) -> Decimal | None:
        best: dt.date | None = None
        for d in points:
            if (d < day if before else d <= day) and (best is None or d > best):
                best = d
        return None if best is None else points[best]

    def price(self, key: str, day: dt.date) -> Decimal | None:
        return self.latest(self.prices.get(key, {}), day)

    def fx_rate(self, currency: str, day: dt.date, base: str) -> Decimal:
        if currency == base:
            return Decimal(1)
        points = self.fx.get(currency, {})
        found = self.latest(points, day)
        if found is None and points:
            found = points[min(points)]
        return found if found is not None else Decimal(1)

    def observations(self) -> tuple[dict[str, Observations], dict[str, Observations]]:
        prices = {
            k: Observations.of({d: float(v) for d, v in p.items()}) for k, p in self.prices.items()
        }
        fx = {c: Observations.of({d: float(v) for d, v in p.items()}) for c, p in self.fx.items()}
        return prices, fx


class PortfolioAnalytics:
    def __init__(self, ctx: AppContext, db: AsyncSession) -> None:
        self.ctx = ctx
        self.db = db

    async def snapshot(self, owner_id: uuid.UUID, portfolio_id: uuid.UUID) -> Snapshot:
        """The portfolio with every committed paper fill taken first."""
        if await pending(self.ctx.database, portfolio_id):
            async with self.ctx.database.session(immediate=True) as writer:
                locked = await PortfolioRepository(writer).get_for_owner(
                    owner_id, portfolio_id, for_update=True
                )
                if locked is not None:
                    accounts = await PortfolioContents(writer).accounts([locked.id])
                    await sync_fills(writer, locked, accounts)
        portfolio = await PortfolioRepository(self.db).get_for_owner(owner_id, portfolio_id)
        if portfolio is None:
            raise portfolio_not_found(portfolio_id)
        accounts = await PortfolioContents(self.db).accounts([portfolio.id])
        try:
            entry = await current_book(self.ctx, self.db, portfolio, accounts)
        except AccountingError as exc:  # a row written before a rule was tightened
            raise needs_repair(exc) from None
        return Snapshot(portfolio, accounts, entry)

    async def market(self, snap: Snapshot, start: dt.date, end: dt.date) -> Market:
        market = Market()
        base = snap.portfolio.currency
        for txn in snap.transactions:
            for key in (txn.instrument, txn.new_instrument):
                if key and key not in market.info:
                    market.info[key] = InstrumentInfo(
                        key, float(txn.multiplier), txn.is_future, txn.currency
                    )
                    market.types[key] = txn.kind
            if txn.instrument and txn.type in _TRADED and txn.price > 0:
                market.prices.setdefault(txn.instrument, {})[txn.date] = txn.price
            if txn.currency != base:
                market.fx.setdefault(txn.currency, {})[txn.date] = txn.fx_rate
        store = BarStore(self.db)
        since = dt.datetime.combine(start - dt.timedelta(days=10), dt.time(), dt.UTC)
        until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
        # One lookup of the master for every instrument; bars only for those it lists.
        listed = await InstrumentService(self.db).get_rows(
            [k for k in market.info if is_instrument_key(k)]
        )
        for key in market.info:
            row = listed.get(key)
            if row is None:
                continue
            try:
                bars = await store.series(row, Timeframe.D1, start=since, end=until, limit=100_000)
            except (NotFound, InvalidInput):
                continue
            points = market.prices.setdefault(key, {})
            for ts, close in zip(bars.ts.tolist(), bars.close, strict=True):
                points[session_date(ts)] = Decimal(close)
        if end >= today() and market.info:
            market.quotes = await QuoteService(self.ctx.cache, self.ctx.bus).get_many(
                sorted(market.info)
            )
            for key, quote in market.quotes.items():
                market.prices.setdefault(key, {})[today()] = quote.last
        for currency in {info.currency for info in market.info.values()} - {base}:
            stored = await FxRates(self.db).series(currency, base)
            market.fx.setdefault(currency, {}).update(stored)
        return market

    # --- the series (risk's entry point) -------------------------------------------------
    async def daily_series(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> DailySeries:
        """The securities' daily value, flows, investment and TWR (portfolio currency),
        from the first transaction (or ``start``) to ``end`` (default today)."""
        snap = await self.snapshot(owner_id, portfolio_id)
        if start is not None:
            checked_day(start, "start")
        series, _ = await self._series(snap, checked_day(end, "end"))
        if start is not None and len(series):
            lo = max(0, series.index_of(start - dt.timedelta(days=1)) + 1)
            series = _slice(series, lo)
        return series

    async def _series(self, snap: Snapshot, end: dt.date) -> tuple[DailySeries, Market]:
        first = snap.first_day or end
        market = await self.market(snap, first, end)
        prices, fx = market.observations()
        # What was held each day depends on the book only: kept with it (per version), so a
        # read while quotes move only revalues.
        key = (first, end, snap.entry.version)
        held = snap.entry.held.get(key)
        if held is None:
            held = holdings_by_day(snap.book(end).effects, market.info, end, first)
            snap.entry.held.clear()
            snap.entry.held[key] = held
        return valued(held, market.info, prices, fx), market

    # --- holdings ------------------------------------------------------------------------
    async def holdings(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        as_of: dt.date | None = None,
        with_lots: bool = False,
    ) -> schemas.HoldingsOut:
        day = checked_day(as_of, "date")
        snap = await self.snapshot(owner_id, portfolio_id)
        market = await self.market(snap, day, day)
        with localcontext(Context(prec=60)):
            return self._holdings(snap, market, day, with_lots)

    def _holdings(
        self, snap: Snapshot, market: Market, day: dt.date, with_lots: bool
    ) -> schemas.HoldingsOut:
        book = snap.book(day)
        base = snap.portfolio.currency
        grouped: dict[str, list[tuple[str, Book]]] = {}
        for position in book.open_positions():
            grouped.setdefault(position.instrument, []).append((position.account, book))
        realized: dict[str, Decimal] = {}
        for sale in book.sales:
            realized[sale.instrument] = realized.get(sale.instrument, ZERO) + sale.realized_pnl
        items: list[schemas.HoldingOut] = []
        for key in sorted(grouped):
            positions = [p for p in book.open_positions() if p.instrument == key]
            quantity = sum((p.quantity for p in positions), ZERO)
            if not quantity:
                continue
            cost = sum((p.cost for p in positions), ZERO)
            cost_local = sum((p.cost_local for p in positions), ZERO)
            multiplier = positions[0].multiplier
            currency = positions[0].currency or base
            price = market.price(key, day)
            fx = market.fx_rate(currency, day, base)
            mv = unrealized = fx_effect = change = None
            if price is not None:
                mv = quantity * price * multiplier * fx
                unrealized = mv - cost
                if cost_local:
                    fx_effect = quantity * price * multiplier * (fx - cost / cost_local)
                quote = market.quotes.get(key)
                previous = (
                    quote.prev_close
                    if quote is not None and day == today() and quote.prev_close is not None
                    else Market.latest(market.prices.get(key, {}), day, before=True)
                )
                if previous is not None:
                    change = quantity * (price - previous) * multiplier * fx
            lots = None
            if with_lots:
                lots = [
                    schemas.LotOut(
                        lot_id=lot.id,
                        account_id=uuid.UUID(p.account),
                        opened=lot.opened,
                        quantity=lot.quantity,
                        cost_basis=money(lot.cost),
                    )
                    for p in positions
                    for lot in p.lots
                ]
            items.append(
                schemas.HoldingOut(
                    instrument=key,
                    instrument_type=market.types.get(key, "equity"),
                    currency=currency,
                    quantity=quantity,
                    multiplier=multiplier,
                    average_cost=money(cost / (quantity * multiplier)),
                    cost_basis=money(cost),
                    price=price,
                    fx_rate=fx,
                    market_value=None if mv is None else money(mv),
                    unrealized_pnl=None if unrealized is None else money(unrealized),
                    fx_effect=None if fx_effect is None else money(fx_effect),
                    day_change=None if change is None else money(change),
                    weight=None,
                    realized_pnl=money(realized.get(key, ZERO)),
                    income=money(book.income_by_instrument.get(key, ZERO)),
                    lots=lots,
                )
            )
        total = sum(
            (
                h.market_value
                for h in items
                if h.market_value is not None and h.instrument_type != "future"
            ),
            ZERO,
        )
        for h in items:
            if total and h.market_value is not None and h.instrument_type != "future":
                h.weight = (h.market_value / total).quantize(Decimal("1e-10"))
        return schemas.HoldingsOut(
            as_of=day,
            currency=base,
            items=items,
            market_value=money(sum((h.market_value or ZERO for h in items), ZERO)),
            cost_basis=money(sum((h.cost_basis for h in items), ZERO)),
            unrealized_pnl=money(sum((h.unrealized_pnl or ZERO for h in items), ZERO)),
            fx_effect=money(sum((h.fx_effect or ZERO for h in items), ZERO)),
            realized_pnl=money(sum((s.realized_pnl for s in book.sales), ZERO)),
            income=money(sum((e.income for e in book.effects), ZERO)),
            fees=money(sum((e.fees for e in book.effects), ZERO)),
            taxes=money(sum((e.taxes for e in book.effects), ZERO)),
            cash=[
                schemas.CashOut(account_id=uuid.UUID(a), amount=money(v))
                for a, v in sorted(book.cash.items())
            ],
        )

    # --- gains ---------------------------------------------------------------------------
    def jurisdiction(self, code: str) -> Jurisdiction:
        s = self.ctx.settings
        if code == "US":
            return Jurisdiction("US", s.portfolio_long_term_months_us, 1)
        return Jurisdiction("IN", s.portfolio_long_term_months_in, 4)

    async def gains(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        start: dt.date | None,
        end: dt.date | None,
    ) -> schemas.GainsOut:
        snap = await self.snapshot(owner_id, portfolio_id)
        rules = self.jurisdiction(snap.portfolio.jurisdiction)
        summary = classify(snap.book().sales, rules, start, end)
        sales: dict[str, schemas.SaleOut] = {}
        for line in summary.lines:
            sale = line.sale
            if sale.transaction_id not in sales:
                sales[sale.transaction_id] = schemas.SaleOut(
                    transaction_id=uuid.UUID(sale.transaction_id),
                    type=sale.type.value,
                    date=sale.date,
                    account_id=uuid.UUID(sale.account),
                    instrument=sale.instrument,
                    quantity=sale.quantity,
                    proceeds=money(sale.proceeds),
                    cost=money(sale.cost),
                    realized_pnl=money(sale.realized_pnl),
                    lots=[],
                )
            sales[sale.transaction_id].lots.append(
                schemas.ClosedLotOut(
                    lot_id=line.lot.lot_id,
                    opened=line.lot.opened,
                    quantity=line.lot.quantity,
                    cost=money(line.lot.cost),
                    proceeds=money(line.lot.proceeds),
                    realized_pnl=money(line.lot.realized_pnl),
                    holding_days=line.holding_days,
                    term="long" if line.term == "long" else "short",
                    financial_year=line.financial_year,
                )
            )
        return schemas.GainsOut(
            currency=snap.portfolio.currency,
            jurisdiction=rules.code,
            long_term_after_months=rules.long_term_months,
            realized_pnl=money(summary.realized_pnl),
            short_term=money(summary.short_term),
            long_term=money(summary.long_term),
            by_financial_year=[
                schemas.YearGainsOut(
                    financial_year=year,
                    short_term=money(s),
                    long_term=money(lt),
                    total=money(s + lt),
                )
                for year, (s, lt) in summary.by_financial_year.items()
            ],
            sales=list(sales.values()),
        )

    # --- performance ---------------------------------------------------------------------
    def _range(
        self, snap: Snapshot, period: str | None, start: dt.date | None, end: dt.date | None
    ) -> tuple[dt.date, dt.date]:
        last = checked_day(end, "to")
        if start is not None:
            checked_day(start, "from")
        first = snap.first_day or last
        if period is not None:
            if period not in PERIODS:
                raise InvalidInput(f"period must be one of {', '.join(PERIODS)}", field="period")
            return period_start(period, last, first), last
        begin = start or first
        if begin > last:
            raise InvalidInput("from must not be after to", field="from")
        return begin, last

    async def performance(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        period: str | None,
        start: dt.date | None,
        end: dt.date | None,
    ) -> schemas.PerformanceOut:
        snap = await self.snapshot(owner_id, portfolio_id)
        begin, last = self._range(snap, period, start, end)
        series, _ = await self._series(snap, last)
        return self._figures(snap, series, period, begin, last)

    async def periods(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, end: dt.date | None
    ) -> schemas.PeriodsOut:
        """Every named period ending ``end`` (default today), from one series."""
        snap = await self.snapshot(owner_id, portfolio_id)
        last = checked_day(end, "to")
        series, _ = await self._series(snap, last)
        return schemas.PeriodsOut(
            currency=snap.portfolio.currency,
            periods=[
                self._figures(snap, series, name, *self._range(snap, name, None, last))
                for name in PERIODS
            ],
        )

    def _figures(
        self,
        snap: Snapshot,
        series: DailySeries,
        period: str | None,
        begin: dt.date,
        last: dt.date,
    ) -> schemas.PerformanceOut:
        figures = performance(series, begin, last)
        shares = contributions(series, begin, last)
        return schemas.PerformanceOut(
            currency=snap.portfolio.currency,
            period=period,
            from_=figures.start,
            to=last,
            days=figures.days,
            start_value=money(_dec(figures.start_value)),
            end_value=money(_dec(figures.end_value)),
            net_flows=money(_dec(figures.net_flows)),
            net_performance=money(_dec(figures.net_performance)),
            # The two parts rounded apart could miss the total by a paisa: the asset's is
            # what the total leaves.
            asset_performance=money(_dec(figures.net_performance) - _dec(figures.fx_effect)),
            fx_effect=money(_dec(figures.fx_effect)),
            twr=rate(figures.twr) or ZERO,
            twr_local=rate(figures.twr_local) or ZERO,
            twr_fx=rate(figures.twr_fx) or ZERO,
            xirr=rate(figures.xirr),
            roai=rate(figures.roai),
            modified_dietz=rate(figures.modified_dietz),
            annualized=figures.annualised,
            twr_annualized=rate(figures.twr_annualised),
            modified_dietz_annualized=rate(figures.modified_dietz_annualised),
            contributions=[
                schemas.ContributionOut(instrument=k, contribution=rate(v) or ZERO)
                for k, v in sorted(shares.items(), key=lambda kv: -abs(kv[1]))
            ],
        )

    async def series(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        start: dt.date | None,
        end: dt.date | None,
    ) -> schemas.SeriesOut:
        snap = await self.snapshot(owner_id, portfolio_id)
        currency = snap.portfolio.currency
        if start is not None:
            checked_day(start, "from")
        series, _ = await self._series(snap, checked_day(end, "to"))
        if start is not None and len(series):
            series = _slice(series, max(0, series.index_of(start - dt.timedelta(days=1)) + 1))
        return schemas.SeriesOut(
            currency=currency,
            dates=series.dates(),
            market_value=decimal_column(series.value, 2),
            net_contributions=decimal_column(series.net_contributions, 2),
            cumulative_twr=decimal_column(series.cumulative_twr, RATE_PLACES),
            drawdown=decimal_column(series.drawdown, RATE_PLACES),
        )

    # --- allocation, benchmark -----------------------------------------------------------
    async def allocation(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, as_of: dt.date | None
    ) -> schemas.PortfolioAllocationOut:
        day = checked_day(as_of, "date")
        snap = await self.snapshot(owner_id, portfolio_id)
        market = await self.market(snap, day, day)
        book = snap.book(day)  # a past day's book is a rebuild: once, for both uses
        held = sorted(
            {p.instrument for p in book.open_positions() if is_instrument_key(p.instrument)}
        )
        rows = await InstrumentService(self.db).get_rows(held)
        sectors = {key: row.sector for key, row in rows.items() if row.sector}
        with localcontext(Context(prec=60)):
            return self._allocation(snap, book, market, day, sectors)

    def _allocation(
        self, snap: Snapshot, book: Book, market: Market, day: dt.date, sectors: dict[str, str]
    ) -> schemas.PortfolioAllocationOut:
        base = snap.portfolio.currency
        names = {str(a.id): a.name for a in snap.accounts}
        groups: dict[str, dict[str, Decimal]] = {
            k: {}
            for k in ("asset_class", "instrument_type", "sector", "exchange", "currency", "account")
        }
        total = ZERO
        for p in book.open_positions():
            price = market.price(p.instrument, day)
            if price is None or not p.quantity:
                continue
            currency = p.currency or base
            value = p.quantity * price * p.multiplier * market.fx_rate(currency, day, base)
            if p.is_future:
                value -= p.notional  # a future is worth its unrealised P&L
            kind = market.types.get(p.instrument, "equity")
            for group, key in (
                ("asset_class", _ASSET_CLASS.get(kind, kind)),
                ("instrument_type", kind),
                ("sector", sectors.get(p.instrument, UNCLASSIFIED)),
                ("exchange", p.instrument.split(":", 1)[0]),
                ("currency", currency),
                ("account", names.get(p.account, p.account)),
            ):
                groups[group][key] = groups[group].get(key, ZERO) + value
            total += value
        cash = sum((v for v in book.cash.values()), ZERO)
        if cash > 0:
            groups["asset_class"]["cash"] = cash
            groups["currency"][base] = groups["currency"].get(base, ZERO) + cash
            total += cash

        def slices(values: dict[str, Decimal]) -> list[schemas.PortfolioAllocationSlice]:
            return [
                schemas.PortfolioAllocationSlice(
                    key=k,
                    market_value=money(v),
                    weight=(v / total).quantize(Decimal("1e-10")) if total else ZERO,
                )
                for k, v in sorted(values.items(), key=lambda kv: -kv[1])
            ]

        return schemas.PortfolioAllocationOut(
            currency=base,
            as_of=day,
            market_value=money(total),
            asset_class=slices(groups["asset_class"]),
            instrument_type=slices(groups["instrument_type"]),
            sector=slices(groups["sector"]),
            exchange=slices(groups["exchange"]),
            currency_exposure=slices(groups["currency"]),
            account=slices(groups["account"]),
        )

    async def benchmark(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        instrument: str,
        period: str | None,
        start: dt.date | None,
        end: dt.date | None,
    ) -> schemas.BenchmarkOut:
        snap = await self.snapshot(owner_id, portfolio_id)
        begin, last = self._range(snap, period, start, end)
        series, _ = await self._series(snap, last)
        figures = performance(series, begin, last)
        closes = await self._closes(instrument, figures.start, last)
        if len(closes.days) == 0:
            raise InvalidInput(f"{instrument} has no daily bars in the range", field="instrument")
        result = compare(series, closes, figures.start, last, figures.twr)
        return schemas.BenchmarkOut(
            benchmark=instrument,
            from_=figures.start,
            to=last,
            portfolio_twr=rate(figures.twr) or ZERO,
            benchmark_twr=rate(result.benchmark_twr) or ZERO,
            excess_return=rate(result.excess_return) or ZERO,
            portfolio_value=money(_dec(figures.end_value)),
            benchmark_value=money(_dec(result.benchmark_value)),
            portfolio_xirr=rate(figures.xirr),
            benchmark_xirr=rate(result.benchmark_xirr),
            beta=rate(result.beta),
            tracking_error=rate(result.tracking_error),
            observations=result.observations,
        )

    async def _closes(self, instrument: str, start: dt.date, end: dt.date) -> Observations:
        since = dt.datetime.combine(start - dt.timedelta(days=10), dt.time(), dt.UTC)
        until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
        bars = await BarStore(self.db).series(
            instrument, Timeframe.D1, start=since, end=until, limit=100_000
        )
        points: dict[dt.date, float] = {}
        for ts, close in zip(bars.ts.tolist(), bars.close, strict=True):
            points[session_date(ts)] = float(close)
        return Observations.of(points)


def session_date(ts: int) -> dt.date:
    """The session a daily bar is of.  Its ``ts`` is 00:00 UTC of that date (docs/providers.md),
    which in New York is the evening before: read in the exchange's zone, a US bar valued
    the day before the session.  Six hours on keeps a stamp of 00:00 Kolkata on its day."""
    return dt.datetime.fromtimestamp(ts + 6 * 3600, dt.UTC).date()


def _dec(value: float) -> Decimal:
    return decimal_from_float(value, 2) or ZERO


def _slice(series: DailySeries, lo: int) -> DailySeries:
    from dataclasses import replace

    keep = slice(lo, None)
    return replace(
        series,
        days=series.days[keep],
        value=series.value[keep],
        inflow=series.inflow[keep],
        outflow=series.outflow[keep],
        investment=series.investment[keep],
        returns=series.returns[keep],
        holding_values=series.holding_values[keep],
        holding_flows=series.holding_flows[keep],
        fx_gain=series.fx_gain[keep],
    )
