"""Polygon.io (https://polygon.io/docs): US stocks, ETFs and OPRA options.

Endpoints used (base ``https://api.polygon.io``, key as ``Authorization: Bearer``):

* ``GET /v2/aggs/ticker/{ticker}/range/1/{minute|day}/{from}/{to}?adjusted=true&sort=asc
  &limit=50000`` → ``{ticker, status: "OK"|"DELAYED", results: [{t (ms), o, h, l, c, v, vw,
  n}], next_url}``; ``next_url`` pages are followed (only on Polygon's own host, since they
  carry our key).  ``from``/``to`` are epoch milliseconds for minutes, dates for days.
  Daily bars are stamped at 00:00 New York time; we key them by their session date.
  Forex pairs (``C:USDINR``, ``FxSource``) aggregate quotes over UTC days; a day's close is
  its rate.
* ``GET /v2/snapshot/locale/us/markets/stocks/tickers/{ticker}`` → ``{status, ticker:
  {ticker, day, prevDay, lastTrade {p, s, t (ns)}, lastQuote {p, s, P, S, t}, todaysChange,
  updated}}``; 404 for an unknown ticker.
* ``GET /v3/snapshot/options/{underlying}/{O:contract}`` → ``{status, results: {day {close,
  volume, previous_close, change, last_updated}, details {ticker, …}, last_quote {bid, ask,
  bid_size, ask_size, last_updated}, last_trade {price, sip_timestamp}, open_interest}}``.
* ``GET /v3/reference/tickers?search=&market=stocks&active=true`` → ``{results: [{ticker,
  name, type, primary_exchange (MIC), currency_name}]}``.

Symbols: ``NASDAQ:AAPL``/``NYSE:BRK.B`` → ``AAPL``/``BRK.B``; ``OPRA:SPY251219C00600000`` →
``O:SPY251219C00600000`` (OCC symbology, no padding).  Indian listings are not served.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote as url_quote

from quantdesk.marketdata.domain import Bar, Exchange, Instrument, InstrumentType, Quote, Timeframe
from quantdesk.marketdata.providers.base import FxDay, check_bars_request, check_fx_request
from quantdesk.marketdata.providers.http_client import Credentials, HttpProvider
from quantdesk.marketdata.providers.parsing import (
    bars_in_range,
    currency_of,
    epoch_to_utc,
    exact_decimal,
    instrument_key_or_none,
    optional_decimal,
    session_date_of,
    session_day,
)
from quantdesk.marketdata.providers.resilience import ResiliencePolicy
from quantdesk.platform.exceptions import InvalidInput, NotFound, UpstreamError

POLYGON_BASE_URL: Final = "https://api.polygon.io"
# The free ("Basic") plan allows 5 requests a minute.
POLYGON_POLICY: Final = ResiliencePolicy(rate_limit="5/minute")
_MAX_PAGES: Final = 50
# OCC option symbol without padding: root, YYMMDD, C/P, strike x 1000 on 8 digits.
_OCC: Final = re.compile(
    r"^(?P<root>[A-Z]{1,6}\d?)(?P<expiry>\d{6})(?P<right>[CP])(?P<strike>\d{8})$"
)
_MS: Final = 1_000
_NS: Final = 1_000_000_000
_TYPES: Final = {
    "CS": InstrumentType.EQUITY,
    "ADRC": InstrumentType.EQUITY,
    "ETF": InstrumentType.ETF,
}
_MIC: Final = {
    "XNAS": Exchange.NASDAQ,
    "XNYS": Exchange.NYSE,
    "ARCX": Exchange.NYSE,
    "XASE": Exchange.NYSE,
}


def polygon_ticker(instrument: Instrument) -> str:
    """Polygon's ticker for one of our instruments (see the module docstring)."""
    if instrument.exchange is Exchange.OPRA:
        if _OCC.match(instrument.symbol) is None:
            raise InvalidInput(f"{instrument.key} is not an OCC option symbol", provider="polygon")
        return f"O:{instrument.symbol}"
    if instrument.exchange in (Exchange.NYSE, Exchange.NASDAQ):
        return instrument.symbol
    raise InvalidInput(
        f"polygon does not serve {instrument.exchange.value} instruments ({instrument.key})",
        provider="polygon",
    )


def _underlying_ticker(instrument: Instrument) -> str:
    """The underlying's ticker of an OPRA option: its ``underlying`` key, else the OCC root."""
    if instrument.underlying:
        return instrument.underlying.split(":", 1)[-1]
    match = _OCC.match(instrument.symbol)
    if match is None:  # pragma: no cover - polygon_ticker validated it already
        raise InvalidInput(f"{instrument.key} is not an OCC option symbol", provider="polygon")
    return match["root"]


class PolygonProvider(HttpProvider):
    """``Provider`` for Polygon.io's REST API."""

    name = "polygon"

    default_base_url = POLYGON_BASE_URL
    default_policy = POLYGON_POLICY

    @staticmethod
    def credentials(api_key: str) -> Credentials:
        return Credentials(headers={"Authorization": f"Bearer {api_key}"})

    def _check(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            raise self._http.malformed("answer is not a JSON object")
        status = payload.get("status")
        if status not in ("OK", "DELAYED"):
            message = payload.get("error") or payload.get("message") or status
            raise UpstreamError(
                f"polygon answered status {status!r}: {self._http.scrub(str(message))}",
                provider=self.name,
            )

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_bars_request(self.name, timeframe, start, end)
        ticker = polygon_ticker(instrument)
        daily = timeframe is Timeframe.D1
        if daily:
            # Dates are New York sessions; a day's margin each side, trimmed below.
            first = (start - timedelta(days=1)).date().isoformat()
            last = (end + timedelta(days=1)).date().isoformat()
            span = f"day/{first}/{last}"
        else:
            span = (
                f"minute/{math.floor(start.timestamp() * _MS)}/{math.ceil(end.timestamp() * _MS)}"
            )
        policy = self._http.policy
        ttl = policy.daily_bars_ttl if daily else policy.intraday_bars_ttl
        exchange = instrument.exchange
        bars = await self._aggregate_pages(
            ticker, span, ttl, lambda payload: self._aggregates(payload, ticker, exchange, daily)
        )
        return bars_in_range(bars, start, end)

    async def fx_daily(self, base: str, quote: str, start: date, end: date) -> list[FxDay]:
        check_fx_request(self.name, base, quote, start, end)
        ticker = f"C:{base.upper()}{quote.upper()}"
        span = f"day/{start.isoformat()}/{end.isoformat()}"

        def parse(payload: dict[str, Any]) -> tuple[list[Bar], str | None]:
            # Forex days are UTC days: the aggregate opens at 00:00 UTC of its date.
            return self._aggregates(payload, ticker, None, daily=False)

        bars = await self._aggregate_pages(ticker, span, self._http.policy.daily_bars_ttl, parse)
        days = {bar.ts.astimezone(UTC).date(): bar.close for bar in bars}
        return [FxDay(day, rate) for day, rate in sorted(days.items()) if start <= day <= end]

    async def _aggregate_pages(
        self,
        ticker: str,
        span: str,
        ttl: float,
        parse: Callable[[dict[str, Any]], tuple[list[Bar], str | None]],
    ) -> list[Bar]:
        """Every page of ``/v2/aggs/ticker/{ticker}/range/1/{span}``, following ``next_url``
        on Polygon's own host only."""
        url = f"/v2/aggs/ticker/{url_quote(ticker, safe=':.')}/range/1/{span}"
        params: Mapping[str, str | int] = {"adjusted": "true", "sort": "asc", "limit": 50_000}
        bars: list[Bar] = []
        for _ in range(_MAX_PAGES):
            page, next_url = await self._http.fetch_json(
                url, params, ttl=ttl, check=self._check, parse=parse
            )
            bars.extend(page)
            if next_url is None:
                return bars
            if not self._http.is_same_origin(next_url):
                raise UpstreamError(
                    "polygon's next_url points off its API host; not sending our key there",
                    provider=self.name,
                )
            url, params = next_url, {}
        raise UpstreamError(
            f"polygon paginated past {_MAX_PAGES} pages for {ticker}; narrow the range",
            provider=self.name,
        )

    def _aggregates(
        self, payload: dict[str, Any], ticker: str, exchange: Exchange | None, daily: bool
    ) -> tuple[list[Bar], str | None]:
        """One page of aggregates and the link to the next page, if any."""
        bad = self._http.malformed
        next_url = payload.get("next_url")
        if next_url is not None and not isinstance(next_url, str):
            raise bad("next_url is not a string")
        answered = payload.get("ticker")
        if answered is not None and answered != ticker:
            raise UpstreamError(
                f"polygon answered for {answered!r} when asked for {ticker!r}", provider=self.name
            )
        results = payload.get("results", [])
        if not isinstance(results, list):
            raise bad("aggregate results are not a list")
        bars = []
        for i, row in enumerate(results):
            if not isinstance(row, dict):
                raise bad(f"aggregate {i} is not an object")
            ts = epoch_to_utc(row.get("t"), f"aggregate {i} time", bad, scale=_MS)
            if daily and exchange is not None:
                ts = session_day(session_date_of(ts, exchange))
            bars.append(
                Bar(
                    ts=ts,
                    open=exact_decimal(row.get("o"), f"aggregate {i} open", bad),
                    high=exact_decimal(row.get("h"), f"aggregate {i} high", bad),
                    low=exact_decimal(row.get("l"), f"aggregate {i} low", bad),
                    close=exact_decimal(row.get("c"), f"aggregate {i} close", bad),
                    volume=exact_decimal(row.get("v", 0), f"aggregate {i} volume", bad),
                )
            )
        return bars, next_url or None

    async def quote(self, instrument: Instrument) -> Quote:
        ticker = polygon_ticker(instrument)
        if instrument.exchange is Exchange.OPRA:
            return await self._option_quote(instrument, ticker)
        quote = await self._http.fetch_json(
            f"/v2/snapshot/locale/us/markets/stocks/tickers/{url_quote(ticker, safe='.')}",
            ttl=self._http.policy.quote_ttl,
            check=self._check,
            not_found=f"polygon has no ticker {ticker}",
            parse=lambda payload: self._stock_snapshot(payload, instrument.key, ticker),
        )
        return replace(quote, key=instrument.key)

    def _stock_snapshot(self, payload: dict[str, Any], key: str, ticker: str) -> Quote:
        snap = payload.get("ticker")
        bad = self._http.malformed
        if not isinstance(snap, dict):
            raise bad("snapshot has no 'ticker' object")
        if snap.get("ticker") != ticker:
            raise UpstreamError(
                f"polygon answered for {snap.get('ticker')!r} when asked for {ticker!r}",
                provider=self.name,
            )
        trade, book = _object(snap, "lastTrade"), _object(snap, "lastQuote")
        day, prev = _object(snap, "day"), _object(snap, "prevDay")
        if trade.get("p") is None:
            raise NotFound(f"polygon has no trade for {ticker}", provider=self.name)
        stamp = trade.get("t", snap.get("updated"))
        return Quote(
            key=key,
            last=exact_decimal(trade.get("p"), "lastTrade.p", bad),
            ts=epoch_to_utc(stamp, "lastTrade.t", bad, scale=_NS),
            bid=optional_decimal(book.get("p"), "lastQuote.p", bad),
            ask=optional_decimal(book.get("P"), "lastQuote.P", bad),
            bid_size=optional_decimal(book.get("s"), "lastQuote.s", bad),
            ask_size=optional_decimal(book.get("S"), "lastQuote.S", bad),
            volume=optional_decimal(day.get("v"), "day.v", bad),
            change=optional_decimal(snap.get("todaysChange"), "todaysChange", bad),
            prev_close=optional_decimal(prev.get("c"), "prevDay.c", bad),
        )

    async def _option_quote(self, instrument: Instrument, ticker: str) -> Quote:
        underlying = _underlying_ticker(instrument)
        quote = await self._http.fetch_json(
            f"/v3/snapshot/options/{url_quote(underlying, safe='.')}/{url_quote(ticker, safe=':')}",
            ttl=self._http.policy.quote_ttl,
            check=self._check,
            not_found=f"polygon has no option contract {ticker}",
            parse=lambda payload: self._option_snapshot(payload, instrument.key, ticker),
        )
        return replace(quote, key=instrument.key)

    def _option_snapshot(self, payload: dict[str, Any], key: str, ticker: str) -> Quote:
        bad = self._http.malformed
        snap = payload.get("results")
        if not isinstance(snap, dict):
            raise bad("option snapshot has no 'results' object")
        details = _object(snap, "details")
        if details.get("ticker") not in (None, ticker):
            raise UpstreamError(
                f"polygon answered for {details.get('ticker')!r} when asked for {ticker!r}",
                provider=self.name,
            )
        trade, book = _object(snap, "last_trade"), _object(snap, "last_quote")
        day = _object(snap, "day")
        last, stamp = trade.get("price"), trade.get("sip_timestamp")
        if last is None:  # no trade today: the day's close, as of the day's last update
            last, stamp = day.get("close"), day.get("last_updated")
        if last is None or stamp is None:
            raise NotFound(f"polygon has no price for {ticker}", provider=self.name)
        return Quote(
            key=key,
            last=exact_decimal(last, "last price", bad),
            ts=epoch_to_utc(stamp, "last price time", bad, scale=_NS),
            bid=optional_decimal(book.get("bid"), "last_quote.bid", bad),
            ask=optional_decimal(book.get("ask"), "last_quote.ask", bad),
            bid_size=optional_decimal(book.get("bid_size"), "last_quote.bid_size", bad),
            ask_size=optional_decimal(book.get("ask_size"), "last_quote.ask_size", bad),
            volume=optional_decimal(day.get("volume"), "day.volume", bad),
            oi=optional_decimal(snap.get("open_interest"), "open_interest", bad),
            change=optional_decimal(day.get("change"), "day.change", bad),
            prev_close=optional_decimal(day.get("previous_close"), "day.previous_close", bad),
        )

    async def search_instruments(self, query: str) -> list[Instrument]:
        text = query.strip()
        if not text:
            raise InvalidInput("search query must not be empty", provider=self.name)
        found = await self._http.fetch_json(
            "/v3/reference/tickers",
            {"search": text, "market": "stocks", "active": "true", "limit": 50},
            ttl=self._http.policy.reference_ttl,
            check=self._check,
            parse=self._search_results,
        )
        return list(found)  # a copy: the cache keeps the original

    def _search_results(self, payload: dict[str, Any]) -> list[Instrument]:
        results = payload.get("results", [])
        if not isinstance(results, list):
            raise self._http.malformed("ticker search results are not a list")
        found = []
        for row in results:
            if isinstance(row, dict):
                instrument = _instrument_from_ticker(row)
                if instrument is not None:
                    found.append(instrument)
        return found


def _object(parent: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = parent.get(name)
    return value if isinstance(value, dict) else {}


def _instrument_from_ticker(row: Mapping[str, Any]) -> Instrument | None:
    ticker, name = row.get("ticker"), row.get("name")
    kind = _TYPES.get(str(row.get("type")))
    exchange = _MIC.get(str(row.get("primary_exchange")))
    if not isinstance(ticker, str) or not isinstance(name, str) or kind is None or exchange is None:
        return None
    if instrument_key_or_none(exchange, ticker) is None:
        return None
    return Instrument(
        exchange=exchange,
        symbol=ticker.upper(),
        name=name,
        type=kind,
        currency=currency_of(exchange),
        provider_token=ticker,
    )
