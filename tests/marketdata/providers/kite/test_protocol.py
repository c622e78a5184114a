"""The ticker's binary protocol: every packet size and segment divisor, hand-worked, and
against pykiteconnect's own parser (``KiteTicker._parse_binary``) on the same frames."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kiteconnect.ticker import KiteTicker as ReferenceTicker

from quantdesk.marketdata.providers.kite.protocol import (
    MalformedFrame,
    Mode,
    Segment,
    mode_message,
    parse_frame,
    parse_text,
    subscribe_message,
)
from tests.marketdata.providers.kite.fake_kite import (
    frame,
    full_packet,
    index_packet,
    ltp_packet,
    quote_packet,
)

RELIANCE = 738561  # low byte 0x01: NSE
NIFTY = 256265  # 0x09: indices
USDINR = 412675  # 0x03: CDS
BCD_TOKEN = (1234 << 8) | Segment.BCD


def reference(data: bytes) -> list[dict[str, Any]]:
    parser = ReferenceTicker.__new__(ReferenceTicker)  # the parser needs no connection
    return parser._parse_binary(data)  # type: ignore[no-any-return]


def test_ltp_packets_and_segment_divisors() -> None:
    parsed = parse_frame(
        frame(
            ltp_packet(RELIANCE, 245065),
            ltp_packet(USDINR, 834512500),
            ltp_packet(BCD_TOKEN, 834525),
        )
    )
    assert [t.mode for t in parsed.ticks] == [Mode.LTP] * 3
    prices = [t.price(t.last) for t in parsed.ticks]
    # paise; CDS in 1e-7 rupee; BCD in 1e-4 rupee
    assert prices == [Decimal("2450.65"), Decimal("83.4512500"), Decimal("83.4525")]
    assert [t.segment for t in parsed.ticks] == [Segment.NSE, Segment.CDS, Segment.BCD]


def test_index_quote_and_full_packets() -> None:
    parsed = parse_frame(
        frame(
            index_packet(NIFTY, 2451230, 2460000, 2440050, 2445000, 2448810),
            index_packet(NIFTY, 2451230, 2460000, 2440050, 2445000, 2448810, ts=1_764_735_300),
        )
    )
    quote, full = parsed.ticks
    assert (quote.mode, full.mode) == (Mode.QUOTE, Mode.FULL)
    assert not quote.tradable
    assert quote.price(quote.last) == Decimal("24512.30")
    assert (quote.open, quote.high, quote.low, quote.close) == (2445000, 2460000, 2440050, 2448810)
    assert quote.exchange_time is None
    assert full.exchange_time == 1_764_735_300


def test_quote_and_full_packets_with_oi_and_depth() -> None:
    bids = [(150, 245060, 3), (75, 245055, 1), (0, 0, 0), (0, 0, 0), (10, 245000, 2)]
    asks = [(300, 245070, 4), (1, 245075, 1), (2, 245080, 1), (3, 245085, 1), (4, 245090, 1)]
    parsed = parse_frame(
        frame(
            quote_packet(
                RELIANCE, 245065, 10, 244990, 5_400_321, 8000, 9000, (244000, 246000, 243500, 2438)
            ),
            full_packet(
                13368834, 2455010, ohlc=(2440000, 2460000, 2435000, 2441000), volume=1_234_500,
                oi=(11_250_000, 11_400_000, 11_100_000), times=(1_764_735_299, 1_764_735_300),
                bids=bids, asks=asks,
            ),
        )
    )  # fmt: skip
    quote, full = parsed.ticks
    assert quote.mode is Mode.QUOTE
    assert (quote.last_quantity, quote.average, quote.volume) == (10, 244990, 5_400_321)
    assert (quote.buy_quantity, quote.sell_quantity) == (8000, 9000)
    assert (quote.open, quote.high, quote.low, quote.close) == (244000, 246000, 243500, 2438)
    assert quote.oi is None
    assert quote.bids == ()
    assert full.mode is Mode.FULL
    assert full.segment == Segment.NFO
    assert (full.oi, full.oi_day_high, full.oi_day_low) == (11_250_000, 11_400_000, 11_100_000)
    assert (full.last_trade_time, full.exchange_time) == (1_764_735_299, 1_764_735_300)
    assert [(b.quantity, b.price, b.orders) for b in full.bids] == bids
    assert [(a.quantity, a.price, a.orders) for a in full.asks] == asks


def test_heartbeat_unknown_and_malformed_frames() -> None:
    assert parse_frame(b"\x00").heartbeat
    assert parse_frame(b"").heartbeat
    skipped = parse_frame(frame(b"\x00" * 12, ltp_packet(RELIANCE, 100)))
    assert skipped.skipped == 1
    assert len(skipped.ticks) == 1
    good = frame(ltp_packet(RELIANCE, 100))
    with pytest.raises(MalformedFrame, match="claims 8 bytes"):
        parse_frame(good[:-1])
    with pytest.raises(MalformedFrame, match="after the last"):
        parse_frame(good + b"\x00")
    with pytest.raises(MalformedFrame, match="ends before packet 2"):
        parse_frame(b"\x00\x02" + good[2:])


def test_control_messages() -> None:
    assert subscribe_message([738561, 256265]) == b'{"a":"subscribe","v":[738561,256265]}'
    assert mode_message(Mode.FULL, [738561]) == b'{"a":"mode","v":["full",[738561]]}'
    message = parse_text('{"type": "error", "data": "Invalid mode"}')
    assert message is not None
    assert (message.type, message.data) == ("error", "Invalid mode")
    assert parse_text("not json") is None


uint = st.integers(min_value=0, max_value=2**31 - 1)
tokens = st.builds(
    lambda n, seg: (n << 8) | seg, st.integers(1, 2**23), st.sampled_from(list(Segment))
)


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    token = draw(tokens)
    size = draw(st.sampled_from([8, 28, 32, 44, 184]))
    values = draw(st.lists(uint, min_size=40, max_size=40))
    if size == 8:
        return ltp_packet(token, values[0])
    if size in (28, 32):
        v = values
        return index_packet(token, v[0], v[1], v[2], v[3], v[4], ts=v[5] if size == 32 else None)
    if size == 44:
        v = values
        return quote_packet(token, v[0], v[1], v[2], v[3], v[4], v[5], (v[6], v[7], v[8], v[9]))
    levels = [(values[i], values[i + 1], values[i + 2] % 65536) for i in range(10, 40, 3)]
    return full_packet(
        token, values[0], ohlc=(values[1], values[2], values[3], values[4]), volume=values[5],
        oi=(values[6], values[7], values[8]), times=(values[9], values[9]),
        bids=levels[:5], asks=levels[5:],
    )  # fmt: skip


@given(st.lists(packets(), min_size=1, max_size=6))
def test_same_ticks_as_pykiteconnect(batch: list[bytes]) -> None:
    data = frame(*batch)
    ours, theirs = parse_frame(data).ticks, reference(data)
    assert len(ours) == len(theirs)
    for packet, tick, ref in zip(batch, ours, theirs, strict=True):
        assert tick.token == ref["instrument_token"]
        assert tick.mode.value == ref["mode"]
        assert tick.tradable == ref["tradable"]
        # pykiteconnect divides into a float; ours is the exact decimal it approximates.
        assert float(tick.price(tick.last)) == pytest.approx(ref["last_price"], rel=1e-12)
        if "ohlc" in ref:
            assert float(tick.price(tick.close or 0)) == pytest.approx(
                ref["ohlc"]["close"], rel=1e-12
            )
        if len(packet) == 184:
            assert tick.oi == ref["oi"]
            assert [level.quantity for level in tick.bids] == [
                d["quantity"] for d in ref["depth"]["buy"]
            ]
            assert [level.orders for level in tick.asks] == [
                d["orders"] for d in ref["depth"]["sell"]
            ]
