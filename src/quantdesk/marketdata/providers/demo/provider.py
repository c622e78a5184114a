"""The ``demo`` provider: the offline, deterministic market behind the ``Provider`` protocol.

It answers from a ``DemoMarket`` built lazily (about a second of NumPy work, run off the
event loop) for its seed and anchor date.  Quotes come from a ``LiveBook`` when the tick
simulator runs (so the provider and the stream agree), else from the last close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from quantdesk.marketdata.domain import Bar, BarArrays, Instrument, Quote, Timeframe
from quantdesk.marketdata.providers.base import check_bars_request
from quantdesk.marketdata.providers.demo.market import DemoMarket
from quantdesk.platform.exceptions import NotFound

DEFAULT_SEED = 20_240_601


def today_utc() -> date:
    return datetime.now(UTC).date()


class LiveBook:
    """The latest simulated quote per instrument key (written by the tick simulator)."""

    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}

    def update(self, quotes: dict[str, Quote]) -> None:
        self.quotes.update(quotes)

    def get(self, key: str) -> Quote | None:
        return self.quotes.get(key)


def bars_to_domain(bars: BarArrays) -> list[Bar]:
    """Decimal bars from tick-rounded floats; ``repr`` gives each float's shortest decimal,
    which is the tick-grid value the generator rounded to."""
    has_oi = bars.oi.shape[0] == bars.ts.shape[0]
    columns = zip(
        bars.ts.tolist(),
        bars.open.tolist(),
        bars.high.tolist(),
        bars.low.tolist(),
        bars.close.tolist(),
        bars.volume.tolist(),
        bars.oi.tolist() if has_oi else [None] * len(bars),
        strict=True,
    )
    return [
        Bar(
            ts=datetime.fromtimestamp(ts, UTC),
            open=Decimal(repr(o)),
            high=Decimal(repr(h)),
            low=Decimal(repr(lo)),
            close=Decimal(repr(c)),
            volume=Decimal(int(v)),
            oi=Decimal(int(oi)) if oi is not None else None,
        )
        for ts, o, h, lo, c, v, oi in columns
    ]


class DemoProvider:
    """Seeded offline market data; the same seed and anchor always give the same answers."""

    name = "demo"

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        anchor: date | None = None,
        *,
        market: DemoMarket | None = None,
        live: LiveBook | None = None,
        today: Callable[[], date] = today_utc,
    ) -> None:
        self.seed = seed
        self._anchor = anchor
        self._market = market
        self._today = today
        self._lock = asyncio.Lock()
        self.live = live

    @property
    def anchor(self) -> date:
        if self._market is not None:
            return self._market.requested_anchor
        return self._anchor or self._today()

    async def market(self) -> DemoMarket:
        """The market, built on first use in a worker thread (it is CPU work)."""
        if self._market is None:
            async with self._lock:
                if self._market is None:
                    self._market = await asyncio.to_thread(DemoMarket, self.seed, self.anchor)
        return self._market

    async def search_instruments(self, query: str) -> list[Instrument]:
        """Exact symbol first, then symbol prefixes, then names containing the query."""
        market = await self.market()
        text = query.strip().upper()
        if not text:
            return []
        ranked: list[tuple[int, str, Instrument]] = []
        for instrument in market.instruments():
            symbol, key = instrument.symbol.upper(), instrument.key
            if text in (symbol, key):
                rank = 0
            elif symbol.startswith(text) or key.startswith(text):
                rank = 1
            elif text in instrument.name.upper():
                rank = 2
            else:
                continue
            ranked.append((rank, key, instrument))
        ranked.sort(key=lambda item: (item[0], len(item[1]), item[1]))
        return [instrument for _, _, instrument in ranked]

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_bars_request(self.name, timeframe, start, end)
        market = await self.market()
        key = instrument.key
        try:
            first, last = market.session_range(key, start, end)
        except KeyError:
            raise NotFound(f"the demo market has no instrument {key}", provider=self.name) from None

        def compute() -> list[Bar]:
            bars = market.bars(key, timeframe, first, last)
            lo = int(start.timestamp())
            hi = int(end.timestamp())
            keep = (bars.ts >= lo) & (bars.ts <= hi)
            return bars_to_domain(
                BarArrays(
                    ts=bars.ts[keep],
                    open=bars.open[keep],
                    high=bars.high[keep],
                    low=bars.low[keep],
                    close=bars.close[keep],
                    volume=bars.volume[keep],
                    oi=bars.oi[keep] if bars.oi.shape[0] == bars.ts.shape[0] else bars.oi,
                )
            )

        return await asyncio.to_thread(compute)

    async def quote(self, instrument: Instrument) -> Quote:
        key = instrument.key
        if self.live is not None:
            live = self.live.get(key)
            if live is not None:
                return live
        market = await self.market()
        try:
            return market.close_quote(key)
        except KeyError:
            raise NotFound(f"the demo market has no instrument {key}", provider=self.name) from None

    async def aclose(self) -> None:
        return None
