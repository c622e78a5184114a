"""Kite ticker parsing: packets per second on one core, quantdesk vs pykiteconnect.

The frames are what Kite sends under load: 100 packets per frame, all full mode (184 bytes,
five-level depth, OI) or all quote mode (44 bytes) or all LTP (8 bytes).  Both parsers get
the same bytes: ours (``protocol.parse_frame``, integers, exact prices on demand) and
pykiteconnect's ``KiteTicker._parse_binary`` (floats, dicts).  A third row adds what the feed
does with every tick: the quote it publishes (``feed.tick_quote``, Decimals), without the
bus.  Best of five repeats.
"""

from __future__ import annotations

import datetime as dt
import struct
import time
from collections.abc import Callable

from quantdesk.marketdata.providers.kite.feed import tick_quote
from quantdesk.marketdata.providers.kite.protocol import parse_frame

PACKETS_PER_FRAME = 100
FRAMES = 200
REPEATS = 5


def _full(token: int, last: int) -> bytes:
    head = struct.pack(
        ">11I", token, last, 25, last, 1_234_500, 1200, 1500, 2440000, 2460000, 2435000, 2441000
    )
    tail = struct.pack(">IIIII", 1_764_735_299, 11_250_000, 11_400_000, 11_100_000, 1_764_735_300)
    depth = b"".join(struct.pack(">IIHxx", 100 + i, last - 5 + i, 3) for i in range(10))
    return head + tail + depth


def _quote(token: int, last: int) -> bytes:
    return struct.pack(
        ">11I", token, last, 25, last, 1_234_500, 1200, 1500, 2440000, 2460000, 2435000, 2441000
    )


def _ltp(token: int, last: int) -> bytes:
    return struct.pack(">II", token, last)


def _frames(packet: Callable[[int, int], bytes]) -> list[bytes]:
    frames = []
    for f in range(FRAMES):
        body = b"".join(
            struct.pack(">H", len(p)) + p
            for p in (
                packet(((f * 100 + i) << 8) | 2, 2_450_000 + i) for i in range(PACKETS_PER_FRAME)
            )
        )
        frames.append(struct.pack(">H", PACKETS_PER_FRAME) + body)
    return frames


def _rate(fn: Callable[[bytes], object], frames: list[bytes]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for data in frames:
            fn(data)
        best = min(best, time.perf_counter() - start)
    return FRAMES * PACKETS_PER_FRAME / best


def _with_quotes(data: bytes) -> None:
    now = dt.datetime.now(dt.UTC)
    for tick in parse_frame(data).ticks:
        tick_quote(tick, "NFO:X", None, now)


def run() -> str:
    try:
        from kiteconnect.ticker import KiteTicker

        reference = KiteTicker.__new__(KiteTicker)
        theirs: Callable[[bytes], object] | None = reference._parse_binary
    except ImportError:  # pragma: no cover - the dev extra installs it
        theirs = None
    rows = []
    for name, packet in (("full (184 B)", _full), ("quote (44 B)", _quote), ("ltp (8 B)", _ltp)):
        frames = _frames(packet)
        ours = _rate(parse_frame, frames)
        quoted = _rate(_with_quotes, frames)
        ref = _rate(theirs, frames) if theirs is not None else None
        ratio = f"{ours / ref:.1f}x" if ref else "—"
        ref_text = f"{ref:,.0f}" if ref else "not installed"
        rows.append(f"| {name} | {ours:,.0f} | {quoted:,.0f} | {ref_text} | {ratio} |")
    return "\n".join(
        [
            "## Kite ticker: binary tick parsing",
            "",
            "Packets per second on one core, frames of 100 packets "
            "(`.venv/bin/python -m benchmarks kite`).  *parse* is `protocol.parse_frame`; "
            "*parse + quote* also builds the Decimal quote the feed publishes; "
            "pykiteconnect is `KiteTicker._parse_binary` on the same bytes.",
            "",
            "| packets | quantdesk parse | parse + quote | pykiteconnect | parse speed-up |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )


if __name__ == "__main__":
    print(run())
