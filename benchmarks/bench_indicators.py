"""Technical indicators: ``quantdesk.analytics.indicators`` vs TA-Lib on 1,000,000 bars.

The input is issue 19's: a random walk of 1,000,000 closes with normal log-returns of
sigma 1% (seeded), and highs, lows and volumes consistent with it.  On such a series the sign
of each change is a coin toss, so a kernel that branches on it pays a mispredicted jump on
about every other bar, which a smooth synthetic series would hide.

Each indicator is called once first, so numba's compilation (or loading it from the on-disk
cache) is excluded, then quantdesk and TA-Lib are timed in alternation, one call each per
round, and each reported as its best round: both see the same machine state.  Compilation
is reported separately: a child process with an empty ``NUMBA_CACHE_DIR`` measures every
kernel's first call when it has to be compiled, and a second child with the now-filled
cache measures the first call of a later process, which only loads the machine code.

``.venv/bin/python -m benchmarks.bench_indicators RSI ATR KAMA`` times only the rows whose
names start with the given words (no compile table), for a quick check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import talib as _talib

import quantdesk.analytics.indicators as ind

# TA-Lib's stubs want its MA_Type enum for ``matype`` and hide ``__ta_version__``; at run
# time plain ints work and the attribute exists.
talib: Any = _talib

N_BARS = 1_000_000
REPEATS = 15
FloatArray = npt.NDArray[np.float64]


def _talib_donchian(high: FloatArray, low: FloatArray, period: int) -> tuple[FloatArray, ...]:
    upper, lower = talib.MAX(high, period), talib.MIN(low, period)
    return upper, (upper + lower) * 0.5, lower


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Best wall time of ``fn`` over ``repeats`` runs, in seconds, after one warm-up call."""
    fn()
    return min(_timed(fn) for _ in range(repeats))


def best_of_pair(
    ours: Callable[[], object], reference: Callable[[], object], repeats: int = REPEATS
) -> tuple[float, float]:
    """Best wall times of ``ours`` and ``reference``, timed in alternation after a warm-up
    call of each, so that neither gets a quieter stretch of the machine than the other."""
    ours()
    reference()
    best_ours = best_reference = float("inf")
    for _ in range(repeats):
        best_ours = min(best_ours, _timed(ours))
        best_reference = min(best_reference, _timed(reference))
    return best_ours, best_reference


def market_bars(n: int, seed: int = 42) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """A random walk: closes from 100 with normal log-returns of sigma 1% (issue 19's input),
    opens near the previous close, wicks beyond both, lognormal volumes."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.005, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.005, n)))
    volume = np.round(rng.lognormal(12.0, 0.6, n)) + 1.0
    return high, low, close, volume


def _cases(
    h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray
) -> list[tuple[str, Callable[[], object], Callable[[], object] | None]]:
    sessions = np.arange(len(c), dtype=np.int64) // 390  # one "day" of minute bars
    return [
        ("SMA(20)", lambda: ind.sma(c, 20), lambda: talib.SMA(c, 20)),
        ("EMA(20)", lambda: ind.ema(c, 20), lambda: talib.EMA(c, 20)),
        ("WMA(20)", lambda: ind.wma(c, 20), lambda: talib.WMA(c, 20)),
        ("DEMA(20)", lambda: ind.dema(c, 20), lambda: talib.DEMA(c, 20)),
        ("TEMA(20)", lambda: ind.tema(c, 20), lambda: talib.TEMA(c, 20)),
        ("TRIMA(20)", lambda: ind.trima(c, 20), lambda: talib.TRIMA(c, 20)),
        ("KAMA(30)", lambda: ind.kama(c, 30), lambda: talib.KAMA(c, 30)),
        ("T3(5)", lambda: ind.t3(c, 5), lambda: talib.T3(c, 5)),
        ("RSI(14)", lambda: ind.rsi(c, 14), lambda: talib.RSI(c, 14)),
        ("MACD(12,26,9)", lambda: ind.macd(c), lambda: talib.MACD(c)),
        ("BBANDS(20,2,2)", lambda: ind.bbands(c, 20), lambda: talib.BBANDS(c, 20)),
        (
            "BBANDS(20,2,2,EMA)",
            lambda: ind.bbands(c, 20, 2, 2, 1),
            lambda: talib.BBANDS(c, 20, 2, 2, 1),
        ),
        ("ATR(14)", lambda: ind.atr(h, lo, c, 14), lambda: talib.ATR(h, lo, c, 14)),
        ("NATR(14)", lambda: ind.natr(h, lo, c, 14), lambda: talib.NATR(h, lo, c, 14)),
        ("TRANGE", lambda: ind.trange(h, lo, c), lambda: talib.TRANGE(h, lo, c)),
        ("ADX(14)", lambda: ind.adx(h, lo, c, 14), lambda: talib.ADX(h, lo, c, 14)),
        ("PLUS_DI(14)", lambda: ind.plus_di(h, lo, c, 14), lambda: talib.PLUS_DI(h, lo, c, 14)),
        ("MINUS_DI(14)", lambda: ind.minus_di(h, lo, c, 14), lambda: talib.MINUS_DI(h, lo, c, 14)),
        ("STOCH(5,3,3)", lambda: ind.stoch(h, lo, c), lambda: talib.STOCH(h, lo, c)),
        ("STOCHRSI(14,5,3)", lambda: ind.stochrsi(c), lambda: talib.STOCHRSI(c)),
        ("CCI(14)", lambda: ind.cci(h, lo, c, 14), lambda: talib.CCI(h, lo, c, 14)),
        ("MFI(14)", lambda: ind.mfi(h, lo, c, v, 14), lambda: talib.MFI(h, lo, c, v, 14)),
        ("OBV", lambda: ind.obv(c, v), lambda: talib.OBV(c, v)),
        ("ROC(10)", lambda: ind.roc(c, 10), lambda: talib.ROC(c, 10)),
        ("MOM(10)", lambda: ind.mom(c, 10), lambda: talib.MOM(c, 10)),
        ("WILLR(14)", lambda: ind.willr(h, lo, c, 14), lambda: talib.WILLR(h, lo, c, 14)),
        ("TRIX(30)", lambda: ind.trix(c, 30), lambda: talib.TRIX(c, 30)),
        ("SAR(0.02,0.2)", lambda: ind.sar(h, lo), lambda: talib.SAR(h, lo)),
        ("AD", lambda: ind.ad(h, lo, c, v), lambda: talib.AD(h, lo, c, v)),
        ("ADOSC(3,10)", lambda: ind.adosc(h, lo, c, v), lambda: talib.ADOSC(h, lo, c, v)),
        ("VWAP (sessions of 390)", lambda: ind.vwap(h, lo, c, v, sessions), None),
        ("SuperTrend(10,3)", lambda: ind.supertrend(h, lo, c), None),
        ("Keltner(20,10,2)", lambda: ind.keltner(h, lo, c), None),
        (
            "Donchian(20)",
            lambda: ind.donchian(h, lo, 20),
            # The same three outputs: TA-Lib has no channel, so its MAX, MIN and midpoint.
            lambda: _talib_donchian(h, lo, 20),
        ),
        ("Pivot points (classic)", lambda: ind.pivot_points(h, lo, c), None),
    ]


# Runs in a child process: the first call of every indicator, timed, on small input.
_FIRST_CALL_SCRIPT = """
import json, time
import numpy as np
t0 = time.perf_counter()
import quantdesk.analytics.indicators as ind
imported = time.perf_counter() - t0
rng = np.random.default_rng(0)
c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 1000)))
h, lo, v = c * 1.01, c * 0.99, np.full(1000, 1e5)
s = np.arange(1000, dtype=np.int64) // 100
calls = [
    ("sma", lambda: ind.sma(c)), ("ema", lambda: ind.ema(c)), ("wma", lambda: ind.wma(c)),
    ("dema/tema", lambda: ind.tema(c)), ("trima", lambda: ind.trima(c)),
    ("kama", lambda: ind.kama(c)), ("t3", lambda: ind.t3(c)),
    ("ma (every type)", lambda: ind.ma(c, 10, 8)), ("rsi", lambda: ind.rsi(c)),
    ("macd", lambda: ind.macd(c)), ("bbands", lambda: ind.bbands(c)),
    ("atr", lambda: ind.atr(h, lo, c)), ("natr", lambda: ind.natr(h, lo, c)),
    ("trange", lambda: ind.trange(h, lo, c)), ("adx", lambda: ind.adx(h, lo, c)),
    ("plus_di/minus_di", lambda: ind.plus_di(h, lo, c)),
    ("stoch/willr/donchian", lambda: ind.stoch(h, lo, c)),
    ("stochrsi", lambda: ind.stochrsi(c)), ("cci", lambda: ind.cci(h, lo, c)),
    ("mfi", lambda: ind.mfi(h, lo, c, v)), ("obv", lambda: ind.obv(c, v)),
    ("roc", lambda: ind.roc(c)), ("trix", lambda: ind.trix(c)),
    ("sar", lambda: ind.sar(h, lo)), ("ad", lambda: ind.ad(h, lo, c, v)),
    ("adosc", lambda: ind.adosc(h, lo, c, v)), ("vwap", lambda: ind.vwap(h, lo, c, v, s)),
    ("supertrend", lambda: ind.supertrend(h, lo, c)),
]
times = {}
for name, call in calls:
    start = time.perf_counter()
    call()
    times[name] = time.perf_counter() - start
print(json.dumps({"import": imported, "calls": times}))
"""


def _first_calls(cache_dir: str) -> dict[str, object]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    completed = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def _rows(
    h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray, only: tuple[str, ...] = ()
) -> list[str]:
    rows = []
    for name, ours, reference in _cases(h, lo, c, v):
        if only and not name.upper().startswith(tuple(word.upper() for word in only)):
            continue
        if reference is None:
            rows.append(f"| {name} | {_ms(best_of(ours))} | — | — |")
            continue
        ours_time, reference_time = best_of_pair(ours, reference)
        rows.append(
            f"| {name} | {_ms(ours_time)} | {_ms(reference_time)} | "
            f"{ours_time / reference_time:.2f} |"
        )
    return rows


TABLE_HEAD = [
    "| indicator | quantdesk (ms) | TA-Lib (ms) | ratio |",
    "| --- | ---: | ---: | ---: |",
]


def run() -> str:
    h, lo, c, v = market_bars(N_BARS)
    lines = [
        "## Technical indicators (quantdesk vs TA-Lib)",
        "",
        f"`.venv/bin/python -m benchmarks indicators` (or `make bench`). A random walk of "
        f"{N_BARS:,} bars (normal log-returns, sigma 1%, seeded; issue 19's input), best of "
        f"{REPEATS} rounds after a warm-up call, quantdesk and TA-Lib timed in alternation in "
        "the same run (numba compile or cache load excluded; see the second table). TA-Lib "
        f"{talib.__version__} (C library {talib.__ta_version__.decode().split()[0]}). "
        "Ratio = quantdesk / TA-Lib.",
        "",
        *TABLE_HEAD,
        *_rows(h, lo, c, v),
    ]

    with tempfile.TemporaryDirectory() as cache_dir:
        cold = _first_calls(cache_dir)
        warm = _first_calls(cache_dir)
    cold_calls = cold["calls"]
    warm_calls = warm["calls"]
    assert isinstance(cold_calls, dict)
    assert isinstance(warm_calls, dict)
    lines += [
        "",
        "First call of each numba-backed indicator in a fresh process (1,000 bars; kernels "
        "shared with an indicator above it are already compiled). *Compile* has an empty "
        "numba cache; *cached* is the next process, which loads the machine code from disk.",
        "",
        "| indicator | first call, compile (ms) | first call, cached (ms) |",
        "| --- | ---: | ---: |",
    ]
    for name, seconds in cold_calls.items():
        lines.append(f"| {name} | {_ms(seconds)} | {_ms(warm_calls[name])} |")
    lines.append(
        f"| **total** | **{_ms(sum(cold_calls.values()))}** | **{_ms(sum(warm_calls.values()))}** |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print("\n".join(TABLE_HEAD + _rows(*market_bars(N_BARS), only=tuple(sys.argv[1:]))))
    else:
        print(run())
