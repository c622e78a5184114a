"""The ``Provider`` protocol every market-data source implements, and a small registry.

A provider turns our instrument keys (``NSE:RELIANCE``, ``NASDAQ:AAPL``, ``OPRA:SPY…``) into
its own symbols, fetches, and answers in our domain types: ``Instrument``, ``Bar`` (UTC bar
open time, ``Decimal`` prices, ascending), ``Quote``.  Errors are the platform's:

* ``InvalidInput`` — the request cannot be served on our side (unsupported timeframe,
  naive datetimes, ``start > end``, an instrument the provider has no symbol for);
* ``NotFound`` — the provider clearly says the symbol does not exist;
* ``UpstreamError(provider=name)`` — the provider answered, but badly (malformed body,
  data for another symbol, a 4xx we cannot fix);
* ``ServiceUnavailable(dependency="provider:<name>")`` — down, timing out, rate-limiting us
  past our deadline, or its circuit is open.

Providers with a currency feed also implement ``FxSource`` (daily closing rates of a pair):
Alpha Vantage (``FX_DAILY``) and Polygon (``C:<BASE><QUOTE>`` aggregates).

Only ``Timeframe.M1`` and ``Timeframe.D1`` must be supported; coarser series are resampled
from them elsewhere (see ``Timeframe.stored_base``).

Bar timestamps: a 1m bar's ``ts`` is the UTC instant the minute opens.  A 1d bar's ``ts`` is
00:00 UTC of the session's *exchange-local* trading date (the date printed on the exchange's
daily bar), whatever instant the provider stamps it with (Polygon: midnight New York; Finnhub:
midnight UTC), so the same session has the same key from every provider and in the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from quantdesk.marketdata.domain import Bar, Instrument, Quote, Timeframe
from quantdesk.platform.exceptions import InvalidInput, NotFound

SUPPORTED_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.D1)


@runtime_checkable
class Provider(Protocol):
    """An async source of instruments, bars and quotes."""

    name: str

    async def search_instruments(self, query: str) -> list[Instrument]:
        """Instruments whose symbol or name matches ``query`` (the provider's ranking)."""
        ...

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        """Bars with ``start <= ts <= end`` (UTC-aware bounds), sorted by ``ts`` ascending."""
        ...

    async def quote(self, instrument: Instrument) -> Quote:
        """The latest quote of ``instrument``."""
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class FxDay:
    """One day's closing rate: 1 ``base`` = ``rate`` ``quote``."""

    day: date
    rate: Decimal


@runtime_checkable
class FxSource(Protocol):
    """A provider that also serves daily FX rates."""

    name: str

    async def fx_daily(self, base: str, quote: str, start: date, end: date) -> list[FxDay]:
        """Closing rates of ``base``/``quote`` for the days ``start..end`` (inclusive) the
        provider has, ascending; a pair it does not carry is the provider's own error
        (``UpstreamError`` or ``NotFound``), never an empty list passed off as data."""
        ...


def check_fx_request(provider: str, base: str, quote: str, start: date, end: date) -> None:
    if len(base) != 3 or len(quote) != 3 or not (base + quote).isalpha() or base == quote:
        raise InvalidInput(
            f"{provider}: a currency pair is two different ISO 4217 codes", provider=provider
        )
    if start > end:
        raise InvalidInput(f"{provider}: from {start} is after to {end}", provider=provider)


def check_bars_request(
    provider: str,
    timeframe: Timeframe,
    start: datetime,
    end: datetime,
    supported: Iterable[Timeframe] = SUPPORTED_TIMEFRAMES,
) -> None:
    """Reject what no provider can serve before spending a request on it."""
    allowed = tuple(supported)
    if timeframe not in allowed:
        names = ", ".join(t.value for t in allowed)
        raise InvalidInput(
            f"provider {provider} serves timeframes {names}, not {timeframe.value}",
            provider=provider,
        )
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end must be timezone-aware datetimes", provider=provider)
    for bound in (start, end):
        # Market data begin in the 20th century; far-off years overflow date arithmetic
        # (checked on the local year, before any conversion to UTC could overflow).
        if not FIRST_BAR_YEAR <= bound.year <= LAST_BAR_YEAR:
            raise InvalidInput(
                f"bars can be asked for between {FIRST_BAR_YEAR} and {LAST_BAR_YEAR}",
                provider=provider,
            )
    if start > end:
        raise InvalidInput("start must not be after end", provider=provider)


FIRST_BAR_YEAR = 1900
LAST_BAR_YEAR = 2200


class ProviderRegistry:
    """The providers one app uses, by name; built by the app factory, closed at shutdown.

    An instance rather than module state, so each app (and each test) has its own.
    """

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            self.add(provider)

    def add(self, provider: Provider) -> None:
        if provider.name in self._providers:
            raise ValueError(f"provider {provider.name!r} is already registered")
        self._providers[provider.name] = provider

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none"
            raise NotFound(f"unknown market-data provider {name!r}; configured: {known}") from None

    def names(self) -> list[str]:
        return list(self._providers)

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __len__(self) -> int:
        return len(self._providers)

    async def aclose(self) -> None:
        """Close every provider, even if one fails; the first failure is re-raised."""
        first: BaseException | None = None
        for provider in self._providers.values():
            try:
                await provider.aclose()
            except Exception as exc:  # one provider's failure must not leak the others
                first = first or exc
        if first is not None:
            raise first
