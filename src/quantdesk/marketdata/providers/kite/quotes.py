"""Market quotes: ``GET /quote``, ``/quote/ohlc``, ``/quote/ltp`` with ``i=EXCHANGE:SYMBOL``
repeated, one per instrument (our keys are Kite's, see ``marketdata/domain.py``).

Kite serves up to 500 instruments per ``/quote`` call and 1000 per ``/quote/ohlc`` or
``/quote/ltp`` call (Kite Connect 3.0 changelog), so larger requests go out in batches of
that size, one after the other (the quote class allows one request a second).  The answer's
``data`` maps each known key to its quote; unknown keys are simply absent.

``/quote`` (full): ``instrument_token, timestamp, last_trade_time, last_price, last_quantity,
buy_quantity, sell_quantity, volume, average_price, oi, oi_day_high, oi_day_low, net_change,
lower_circuit_limit, upper_circuit_limit, ohlc {open, high, low, close}, depth {buy, sell:
[{price, quantity, orders}] x 5}``; ``/quote/ohlc``: ``instrument_token, last_price, ohlc``;
``/quote/ltp``: ``instrument_token, last_price``.  Times are IST wall-clock strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlencode

from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.providers.http_client import MalformedResponseError
from quantdesk.marketdata.providers.kite.auth import IST
from quantdesk.marketdata.providers.parsing import exact_decimal, optional_decimal
from quantdesk.platform.db import utcnow


class QuoteKind(StrEnum):
    FULL = "quote"
    OHLC = "ohlc"
    LTP = "ltp"

    @property
    def path(self) -> str:
        return "/quote" if self is QuoteKind.FULL else f"/quote/{self.value}"

    @property
    def batch(self) -> int:
        return BATCH_LIMITS[self]


BATCH_LIMITS: Final = {QuoteKind.FULL: 500, QuoteKind.OHLC: 1000, QuoteKind.LTP: 1000}


def batches(keys: Sequence[str], size: int) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(keys))
    for first in range(0, len(unique), size):
        yield unique[first : first + size]


def batch_url(kind: QuoteKind, keys: Sequence[str]) -> str:
    """The request path with one ``i=`` per key (spaces in index names encoded)."""
    return f"{kind.path}?{urlencode([('i', key) for key in keys])}"


def _bad(detail: str) -> MalformedResponseError:
    return MalformedResponseError(f"kite: {detail}", provider="kite")


def _ist(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        naive = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return naive.replace(tzinfo=IST).astimezone(dt.UTC)


def _best(levels: object, what: str) -> tuple[Decimal | None, Decimal | None]:
    """Price and quantity of the best level, ``None`` when it is empty (quantity 0)."""
    if not isinstance(levels, list) or not levels or not isinstance(levels[0], dict):
        return None, None
    top = levels[0]
    quantity = exact_decimal(top.get("quantity", 0), f"{what} quantity", _bad)
    if quantity <= 0:
        return None, None
    return exact_decimal(top.get("price"), f"{what} price", _bad), quantity


def _object(row: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = row.get(name)
    return value if isinstance(value, dict) else {}


def parse_quote(key: str, row: Mapping[str, Any], kind: QuoteKind) -> Quote:
    """One instrument's entry of a ``/quote``, ``/quote/ohlc`` or ``/quote/ltp`` answer."""
    last = exact_decimal(row.get("last_price"), f"{key} last_price", _bad)
    ohlc = _object(row, "ohlc")
    prev_close = optional_decimal(ohlc.get("close"), f"{key} ohlc.close", _bad)
    change = None if prev_close is None or prev_close == 0 else last - prev_close
    if kind is not QuoteKind.FULL:
        return Quote(key=key, last=last, ts=utcnow(), change=change, prev_close=prev_close)
    depth = _object(row, "depth")
    bid, bid_size = _best(depth.get("buy"), f"{key} best bid")
    ask, ask_size = _best(depth.get("sell"), f"{key} best offer")
    oi = optional_decimal(row.get("oi"), f"{key} oi", _bad)
    return Quote(
        key=key,
        last=last,
        ts=_ist(row.get("timestamp")) or utcnow(),
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        volume=optional_decimal(row.get("volume"), f"{key} volume", _bad),
        oi=oi or None,  # Kite sends 0 for instruments without open interest
        change=change,
        prev_close=prev_close,
    )


def parse_quotes(data: Any, kind: QuoteKind) -> dict[str, Quote]:
    if not isinstance(data, dict):
        raise _bad(f"{kind.path} data is not an object")
    quotes: dict[str, Quote] = {}
    for key, row in data.items():
        if not isinstance(row, dict):
            raise _bad(f"{kind.path} entry {key!r} is not an object")
        quotes[str(key)] = parse_quote(str(key), row, kind)
    return quotes
