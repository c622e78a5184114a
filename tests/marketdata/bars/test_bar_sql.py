"""The joined-text form the bar store reads: ordering guard and columnar JSON."""

from __future__ import annotations

import numpy as np
import orjson

from quantdesk.marketdata.bars.sql import Joined
from quantdesk.marketdata.domain import Timeframe


def joined(ts: list[int], closes: list[str], oi: list[str | None]) -> Joined:
    text = {c: '","'.join(closes) for c in ("open", "high", "low", "close", "volume")}
    text["oi"] = ",".join("null" if v is None else f'"{v}"' for v in oi)
    return Joined(np.array(ts, dtype=np.int64), text)


def test_out_of_order_rows_are_sorted_together() -> None:
    shuffled = joined([120, 0, 60], ["3.00", "1.00", "2.00"], ["9", None, "7"]).sorted()
    assert shuffled.ts.tolist() == [0, 60, 120]
    assert shuffled.values("close") == ["1.00", "2.00", "3.00"]
    assert shuffled.oi_values() == [None, "7", "9"]
    ordered = joined([0, 60], ["1", "2"], [None, None])
    assert ordered.sorted() is ordered


def test_columnar_json_is_valid_and_exact() -> None:
    body = joined([0, 60], ["1.50", "2.25"], ["4", None]).columnar_json("NSE:M&M", Timeframe.M1)
    assert orjson.loads(body) == {
        "key": "NSE:M&M",
        "timeframe": "1m",
        "t": [0, 60],
        "o": ["1.50", "2.25"],
        "h": ["1.50", "2.25"],
        "l": ["1.50", "2.25"],
        "c": ["1.50", "2.25"],
        "v": ["1.50", "2.25"],
        "oi": ["4", None],
    }
    empty = orjson.loads(Joined.empty().columnar_json("NSE:X", Timeframe.D1))
    assert empty["t"] == []
    assert empty["c"] == []
    assert empty["oi"] == []
    assert Joined.empty().values("open") == []
    assert Joined.empty().oi_values() == []
