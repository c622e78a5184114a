"""Kite Connect's ticker protocol: the binary tick frames and the JSON control messages.

PURE: bytes in, tuples of integers out; no I/O, no settings, no Decimals on the hot path
(``Tick.price`` turns a raw integer into an exact ``Decimal`` when a consumer asks).

Frame layout (Kite Connect v3 WebSocket docs; ``KiteTicker._parse_binary`` in
zerodha/pykiteconnect), all integers big-endian and unsigned:

* a frame of fewer than 2 bytes is a heartbeat (Kite sends a 1-byte frame every second);
* otherwise ``uint16`` packet count, then per packet a ``uint16`` length and the packet;
* the packet starts with the ``uint32`` instrument token, whose low byte is the segment
  (1 NSE, 2 NFO, 3 CDS, 4 BSE, 5 BFO, 6 BCD, 7 MCX, 8 MCXSX, 9 indices);
* prices are integers in the segment's smallest unit: paise (divide by 100), CDS by
  10,000,000 and BCD by 10,000;
* lengths: 8 (LTP mode: token, last price), 28 (index quote: + high, low, open, close,
  change), 32 (index full: + exchange timestamp), 44 (quote: token, last price, last
  quantity, average price, volume, total buy qty, total sell qty, open, high, low, close),
  184 (full: quote + last trade time, OI, OI day high, OI day low, exchange timestamp, then
  ten depth entries of 12 bytes: quantity ``uint32``, price ``uint32``, orders ``uint16``,
  two bytes of padding; five bids, then five offers).

Hand-written because the only implementation, pykiteconnect's, is welded to Twisted's
reactor and returns floats (binary prices; ``0.1 + 0.2`` trouble in every sum downstream).
Here each packet size has one precompiled ``struct.Struct`` and a packet is one
``unpack_from`` call, which is what makes it several times faster (docs/benchmarks.md).

Malformed input: a frame whose lengths run past its end is refused whole
(``MalformedFrame``); a packet of a length we do not know inside a well-formed frame is
counted and skipped, so one new packet type from Kite never drops the others.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Final, NamedTuple

import orjson


class Segment(IntEnum):
    """The segment code in the low byte of an instrument token."""

    NSE = 1
    NFO = 2
    CDS = 3
    BSE = 4
    BFO = 5
    BCD = 6
    MCX = 7
    MCXSX = 8
    INDICES = 9


class Mode(StrEnum):
    LTP = "ltp"
    QUOTE = "quote"
    FULL = "full"


# Exponents of ten: a raw price times 10**exponent is the price (exact with Decimal.scaleb).
_PRICE_EXPONENT: Final = {Segment.CDS.value: -7, Segment.BCD.value: -4}
_PAISE: Final = -2
DEPTH_LEVELS: Final = 5

_COUNT = struct.Struct(">H")
_LTP = struct.Struct(">II")  # 8
_INDEX_QUOTE = struct.Struct(">IIIIIII")  # 28: token, last, high, low, open, close, change
_INDEX_FULL = struct.Struct(">IIIIIIII")  # 32: + exchange timestamp
_QUOTE = struct.Struct(">11I")  # 44
_FULL = struct.Struct(">16I" + "IIHxx" * 2 * DEPTH_LEVELS)  # 184


class MalformedFrame(ValueError):
    """A binary frame whose framing is broken (lengths that run past its end, trailing bytes)."""


def price_exponent(token: int) -> int:
    """The power of ten that turns ``token``'s raw prices into rupees (or the quote currency)."""
    return _PRICE_EXPONENT.get(token & 0xFF, _PAISE)


class DepthLevel(NamedTuple):
    quantity: int
    price: int  # raw, as the packet carries it
    orders: int


class Tick(NamedTuple):
    """One parsed packet.  Prices are raw integers; ``price(raw)`` makes them exact Decimals.

    A named tuple, and the depth kept as the packet's 30 integers (``bids``/``asks`` build
    the levels on demand): this is built for every packet, so it must be cheap to build.

    Fields a mode does not carry are ``None`` (an index has no volume, LTP mode has only
    ``last``).  Index packets carry ``close`` as the previous close, like equity ones.
    """

    token: int
    mode: Mode
    last: int
    last_quantity: int | None = None
    average: int | None = None
    volume: int | None = None
    buy_quantity: int | None = None
    sell_quantity: int | None = None
    open: int | None = None
    high: int | None = None
    low: int | None = None
    close: int | None = None
    last_trade_time: int | None = None  # epoch seconds
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    exchange_time: int | None = None  # epoch seconds
    # Full mode: quantity, price, orders of five bids, then of five offers.
    depth: tuple[int, ...] = ()

    @property
    def bids(self) -> tuple[DepthLevel, ...]:
        d = self.depth
        return tuple(DepthLevel(d[i], d[i + 1], d[i + 2]) for i in range(0, len(d) // 2, 3))

    @property
    def asks(self) -> tuple[DepthLevel, ...]:
        d = self.depth
        return tuple(DepthLevel(d[i], d[i + 1], d[i + 2]) for i in range(len(d) // 2, len(d), 3))

    @property
    def segment(self) -> int:
        return self.token & 0xFF

    @property
    def tradable(self) -> bool:
        return self.segment != Segment.INDICES

    def price(self, raw: int) -> Decimal:
        """``raw`` in the instrument's price unit, exactly (no binary float on the way)."""
        return Decimal(raw).scaleb(price_exponent(self.token))


def _ltp(frame: bytes, at: int) -> Tick:
    token, last = _LTP.unpack_from(frame, at)
    return Tick(token, Mode.LTP, last)


def _index_quote(frame: bytes, at: int) -> Tick:
    token, last, high, low, open_, close, _change = _INDEX_QUOTE.unpack_from(frame, at)
    return Tick(token, Mode.QUOTE, last, open=open_, high=high, low=low, close=close)


def _index_full(frame: bytes, at: int) -> Tick:
    token, last, high, low, open_, close, _change, ts = _INDEX_FULL.unpack_from(frame, at)
    return Tick(
        token, Mode.FULL, last, open=open_, high=high, low=low, close=close, exchange_time=ts
    )


def _quote(frame: bytes, at: int) -> Tick:
    token, last, qty, avg, volume, buy, sell, open_, high, low, close = _QUOTE.unpack_from(
        frame, at
    )
    return Tick(
        token, Mode.QUOTE, last, qty, avg, volume, buy, sell, open_, high, low, close
    )  # fmt: skip


def _full(frame: bytes, at: int) -> Tick:
    v = _FULL.unpack_from(frame, at)
    return Tick(
        v[0], Mode.FULL, v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10],
        v[11], v[12], v[13], v[14], v[15], v[16:],
    )  # fmt: skip


_PARSERS: Final = {8: _ltp, 28: _index_quote, 32: _index_full, 44: _quote, 184: _full}


@dataclass(frozen=True, slots=True)
class ParsedFrame:
    ticks: list[Tick]
    skipped: int = 0  # packets of a length we do not know

    @property
    def heartbeat(self) -> bool:
        return not self.ticks and not self.skipped


def parse_frame(frame: bytes) -> ParsedFrame:
    """Every packet of one binary WebSocket frame; ``MalformedFrame`` if its framing is broken."""
    size = len(frame)
    if size < 2:
        return ParsedFrame([])  # heartbeat
    (count,) = _COUNT.unpack_from(frame, 0)
    ticks: list[Tick] = []
    skipped = 0
    offset = 2
    parsers = _PARSERS
    for index in range(count):
        if offset + 2 > size:
            raise MalformedFrame(f"frame ends before packet {index + 1} of {count}")
        (length,) = _COUNT.unpack_from(frame, offset)
        start, offset = offset + 2, offset + 2 + length
        if offset > size:
            raise MalformedFrame(
                f"packet {index + 1} of {count} claims {length} bytes, {size - start} remain"
            )
        parser = parsers.get(length)
        if parser is None:
            skipped += 1
        else:
            ticks.append(parser(frame, start))
    if offset != size:
        raise MalformedFrame(f"{size - offset} bytes after the last of {count} packets")
    return ParsedFrame(ticks, skipped)


# --------------------------------------------------------------------------- text messages

MAX_TOKENS_PER_CONNECTION: Final = 3000
MAX_CONNECTIONS_PER_KEY: Final = 3


def subscribe_message(tokens: list[int]) -> bytes:
    return orjson.dumps({"a": "subscribe", "v": tokens})


def unsubscribe_message(tokens: list[int]) -> bytes:
    return orjson.dumps({"a": "unsubscribe", "v": tokens})


def mode_message(mode: Mode, tokens: list[int]) -> bytes:
    return orjson.dumps({"a": "mode", "v": [mode.value, tokens]})


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A JSON text frame: ``{"type": "error"|"order"|"message", "data": ...}``."""

    type: str
    data: object


def parse_text(payload: str | bytes) -> TextMessage | None:
    """A text frame's type and data, or ``None`` when it is not a JSON object with a type."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("type"), str):
        return None
    return TextMessage(document["type"], document.get("data"))
