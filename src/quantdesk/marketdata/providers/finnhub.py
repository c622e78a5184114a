"""Finnhub (https://finnhub.io/docs/api): US and Indian equities, ETFs, a few indices.

Endpoints used (base ``https://finnhub.io/api/v1``, key in the ``X-Finnhub-Token`` header):

* ``GET /quote?symbol=`` → ``{c, d, dp, h, l, o, pc, t}``; an unknown symbol answers all
  zeros (``c == 0 and t == 0``), which we report as ``NotFound``.
* ``GET /stock/candle?symbol=&resolution=1|D&from=&to=`` (epoch seconds) →
  ``{s: "ok"|"no_data", t[], o[], h[], l[], c[], v[]}`` (parallel arrays).
* ``GET /search?q=`` → ``{count, result: [{description, displaySymbol, symbol, type}]}``.
* ``GET /stock/symbol?exchange=US`` → ``[{symbol, mic, …}]``, fetched at most once a day to
  tell NYSE from NASDAQ listings, which ``/search`` does not say.

Symbols: ``NASDAQ:AAPL``/``NYSE:IBM`` → ``AAPL``/``IBM``; ``NSE:RELIANCE`` → ``RELIANCE.NS``;
``BSE:RELIANCE`` → ``RELIANCE.BO``; indices ``NSE:NIFTY 50`` → ``^NSEI``,
``NSE:NIFTY BANK`` → ``^NSEBANK``, ``BSE:SENSEX`` → ``^BSESN``.  No F&O or US options.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from quantdesk.marketdata.domain import (
    Bar,
    Exchange,
    Instrument,
    InstrumentType,
    Quote,
    Timeframe,
)
from quantdesk.marketdata.providers.base import check_bars_request
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
from quantdesk.platform.exceptions import InvalidInput, NotFound

FINNHUB_BASE_URL: Final = "https://finnhub.io/api/v1"
# The free plan allows 60 calls/minute and at most 30/second across all endpoints.
FINNHUB_POLICY: Final = ResiliencePolicy(rate_limit="30/second;60/minute")

_SUFFIX_EXCHANGE: Final = {".NS": Exchange.NSE, ".BO": Exchange.BSE}
_EXCHANGE_SUFFIX: Final = {exchange: suffix for suffix, exchange in _SUFFIX_EXCHANGE.items()}
_INDEX_SYMBOLS: Final = {
    (Exchange.NSE, "NIFTY 50"): "^NSEI",
    (Exchange.NSE, "NIFTY BANK"): "^NSEBANK",
    (Exchange.BSE, "SENSEX"): "^BSESN",
}
_INDEX_BY_SYMBOL: Final = {symbol: key for key, symbol in _INDEX_SYMBOLS.items()}
# Finnhub's security types (``type`` in /search) that we list, and what they are to us.
_TYPES: Final = {
    "Common Stock": InstrumentType.EQUITY,
    "ADR": InstrumentType.EQUITY,
    "REIT": InstrumentType.EQUITY,
    "ETP": InstrumentType.ETF,
    "ETF": InstrumentType.ETF,
}
# Market identifier codes (ISO 10383) of US venues; NYSE Arca and NYSE American list under
# our NYSE, as in the domain's ``NYSE:SPY``.
_US_MIC: Final = {
    "XNAS": Exchange.NASDAQ,
    "XNYS": Exchange.NYSE,
    "ARCX": Exchange.NYSE,
    "XASE": Exchange.NYSE,
}


def finnhub_symbol(instrument: Instrument) -> str:
    """Finnhub's symbol for one of our instruments (see the module docstring)."""
    exchange, symbol = instrument.exchange, instrument.symbol
    if instrument.type is InstrumentType.INDEX:
        try:
            return _INDEX_SYMBOLS[exchange, symbol]
        except KeyError:
            raise InvalidInput(
                f"finnhub: no index symbol known for {instrument.key}", provider="finnhub"
            ) from None
    if exchange in (Exchange.NYSE, Exchange.NASDAQ):
        return symbol
    if exchange in _EXCHANGE_SUFFIX:
        return symbol + _EXCHANGE_SUFFIX[exchange]
    raise InvalidInput(
        f"finnhub does not serve {exchange.value} instruments ({instrument.key})",
        provider="finnhub",
    )


class FinnhubProvider(HttpProvider):
    """``Provider`` for Finnhub's REST API."""

    name = "finnhub"

    default_base_url = FINNHUB_BASE_URL
    default_policy = FINNHUB_POLICY

    @staticmethod
    def credentials(api_key: str) -> Credentials:
        return Credentials(headers={"X-Finnhub-Token": api_key})

    async def quote(self, instrument: Instrument) -> Quote:
        symbol = finnhub_symbol(instrument)

        def parse(payload: Any) -> Quote:
            bad = self._http.malformed
            if not isinstance(payload, dict):
                raise bad("quote is not a JSON object")
            last = exact_decimal(payload.get("c"), "quote price c", bad)
            stamp = payload.get("t")
            if last == 0 and stamp in (0, None):
                # Finnhub's answer for a symbol it does not know: every field zero or null.
                raise NotFound(f"finnhub has no quote for {symbol}", provider=self.name)
            return Quote(
                key=instrument.key,
                last=last,
                ts=epoch_to_utc(stamp, "quote time t", bad),
                change=optional_decimal(payload.get("d"), "quote change d", bad),
                prev_close=optional_decimal(payload.get("pc"), "quote previous close pc", bad),
            )

        quote = await self._http.fetch_json(
            "/quote", {"symbol": symbol}, ttl=self._http.policy.quote_ttl, parse=parse
        )
        return replace(quote, key=instrument.key)

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_bars_request(self.name, timeframe, start, end)
        symbol = finnhub_symbol(instrument)
        daily = timeframe is Timeframe.D1
        # A daily bar may be stamped up to a day away from its session date's midnight UTC
        # (see ``session_date_of``): ask for a day more on each side, then trim.
        pad = timedelta(days=1) if daily else timedelta(0)
        params = {
            "symbol": symbol,
            "resolution": "D" if daily else "1",
            "from": math.floor((start - pad).timestamp()),
            "to": math.ceil((end + pad).timestamp()),
        }
        policy = self._http.policy
        ttl = policy.daily_bars_ttl if daily else policy.intraday_bars_ttl
        exchange = instrument.exchange
        bars = await self._http.fetch_json(
            "/stock/candle",
            params,
            ttl=ttl,
            parse=lambda payload: self._parse_candles(payload, exchange, daily),
        )
        return bars_in_range(bars, start, end)

    def _parse_candles(self, payload: Any, exchange: Exchange, daily: bool) -> list[Bar]:
        bad = self._http.malformed
        if not isinstance(payload, dict):
            raise bad("candles are not a JSON object")
        status = payload.get("s")
        if status == "no_data":
            return []
        if status != "ok":
            raise bad(f"candle status s is {status!r}, expected 'ok' or 'no_data'")
        columns: dict[str, list[Any]] = {}
        for name in ("t", "o", "h", "l", "c", "v"):
            column = payload.get(name)
            if not isinstance(column, list):
                raise bad(f"candle array {name} is missing")
            columns[name] = column
        if len({len(column) for column in columns.values()}) != 1:
            raise bad("candle arrays t, o, h, l, c, v differ in length")
        bars = []
        for i, stamp in enumerate(columns["t"]):
            ts = epoch_to_utc(stamp, f"candle {i} time", bad)
            if daily:
                ts = session_day(session_date_of(ts, exchange))
            bars.append(
                Bar(
                    ts=ts,
                    open=exact_decimal(columns["o"][i], f"candle {i} open", bad),
                    high=exact_decimal(columns["h"][i], f"candle {i} high", bad),
                    low=exact_decimal(columns["l"][i], f"candle {i} low", bad),
                    close=exact_decimal(columns["c"][i], f"candle {i} close", bad),
                    volume=exact_decimal(columns["v"][i], f"candle {i} volume", bad),
                )
            )
        return bars

    async def search_instruments(self, query: str) -> list[Instrument]:
        text = query.strip()
        if not text:
            raise InvalidInput("search query must not be empty", provider=self.name)
        ttl = self._http.policy.reference_ttl
        hits = await self._http.fetch_json("/search", {"q": text}, ttl=ttl, parse=self._hits)
        needs_us = any(_split_suffix(hit["symbol"])[1] is None for hit in hits)
        us_listing = await self._us_exchanges() if needs_us else {}
        found: list[Instrument] = []
        for hit in hits:
            instrument = self._instrument_from_hit(hit, us_listing)
            if instrument is not None:
                found.append(instrument)
        return found

    def _hits(self, payload: Any) -> list[dict[str, Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
            raise self._http.malformed("search answer has no result list")
        return [
            hit
            for hit in payload["result"]
            if isinstance(hit, dict) and isinstance(hit.get("symbol"), str)
        ]

    def _instrument_from_hit(
        self, hit: Mapping[str, Any], us_listing: Mapping[str, Exchange]
    ) -> Instrument | None:
        symbol, description = hit.get("symbol"), hit.get("description")
        if not isinstance(symbol, str) or not isinstance(description, str):
            return None
        kind: InstrumentType | None
        exchange: Exchange | None
        if symbol in _INDEX_BY_SYMBOL:
            (exchange, ours), kind = _INDEX_BY_SYMBOL[symbol], InstrumentType.INDEX
        else:
            kind = _TYPES.get(str(hit.get("type")))
            ours, exchange = _split_suffix(symbol)
            if exchange is None:
                exchange = us_listing.get(symbol)
        if kind is None or exchange is None:
            return None  # a venue or security type we do not model
        if instrument_key_or_none(exchange, ours) is None:
            return None
        return Instrument(
            exchange=exchange,
            symbol=ours.upper(),
            name=description,
            type=kind,
            currency=currency_of(exchange),
            provider_token=symbol,
        )

    async def _us_exchanges(self) -> dict[str, Exchange]:
        """Symbol → NYSE/NASDAQ for US listings, from the (cached) ``/stock/symbol`` list."""
        return await self._http.fetch_json(
            "/stock/symbol",
            {"exchange": "US"},
            ttl=self._http.policy.reference_ttl,
            parse=self._us_listing,
        )

    def _us_listing(self, payload: Any) -> dict[str, Exchange]:
        if not isinstance(payload, list):
            raise self._http.malformed("US symbol list is not a JSON array")
        listing: dict[str, Exchange] = {}
        for row in payload:
            if isinstance(row, dict) and isinstance(row.get("symbol"), str):
                exchange = _US_MIC.get(str(row.get("mic")))
                if exchange is not None:
                    listing[row["symbol"]] = exchange
        return listing


def _split_suffix(symbol: str) -> tuple[str, Exchange | None]:
    """``RELIANCE.NS`` → (``RELIANCE``, NSE); a symbol without an Indian suffix → (it, None)."""
    for suffix, exchange in _SUFFIX_EXCHANGE.items():
        if symbol.endswith(suffix):
            return symbol[: -len(suffix)], exchange
    return symbol, None
