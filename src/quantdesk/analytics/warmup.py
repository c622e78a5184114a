"""Compile (or load from numba's on-disk cache) every analytics kernel before it is needed.

numba compiles a kernel at its first call for the argument types it meets: 2-4 s for the
larger indicators and about 20 s for the implied-vol and Greeks kernels behind an option
chain, which the first user would otherwise wait through.  ``warm_kernels`` calls each
public entry point once on tiny arrays of the types the services pass (C-contiguous float64
columns), so the machine code is compiled, or read back from the cache (``cache=True``,
``_jit.py``) in a few milliseconds per kernel, before the app reports ready.

Pure like the rest of ``analytics``: it runs the public functions, nothing else.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from quantdesk.analytics import indicators
from quantdesk.analytics.chain import OptionChain, analyze_chain
from quantdesk.analytics.options import greeks, implied_vol, price

_BARS = 64  # longer than every default warm-up period, so each kernel runs its main loop


@dataclass(frozen=True, slots=True)
class KernelWarmup:
    """How long one entry point's first call took (compile, or load from the cache)."""

    name: str
    seconds: float


def _bar_inputs() -> dict[str, np.ndarray[Any, np.dtype[Any]]]:
    steps = np.random.default_rng(0).normal(0.0, 1.0, _BARS)
    close = 100.0 + np.cumsum(steps)
    return {
        "open": close + 0.1,
        "high": close + 1.0,
        "low": close - 1.0,
        "close": close,
        "volume": np.full(_BARS, 1000.0),
        # VWAP's session labels: int64, as the bar service builds them.
        "session_ids": np.repeat(np.arange(4, dtype=np.int64), _BARS // 4),
    }


def _indicator_calls() -> Iterator[tuple[str, Callable[[], object]]]:
    inputs = _bar_inputs()
    for name in indicators.__all__:
        function = getattr(indicators, name)
        if not inspect.isfunction(function):
            continue
        wanted = [p for p in inspect.signature(function).parameters if p in inputs]
        arguments = {p: inputs[p] for p in wanted}
        if name == "ma":
            # Every moving-average type bbands, macd and stoch may be asked for
            # (7, MAMA, is not implemented).
            for matype in (0, 1, 2, 3, 4, 5, 6, 8):
                yield f"ma(matype={matype})", partial(function, **arguments, matype=matype)
        else:
            yield name, partial(function, **arguments)


def _option_calls() -> Iterator[tuple[str, Callable[[], object]]]:
    strikes = np.linspace(80.0, 120.0, 9)
    kinds = np.array(["call", "put"] * 4 + ["call"])
    market: dict[str, Any] = {"spot": 100.0, "strike": strikes, "t": 0.1, "r": 0.05, "q": 0.01}
    sigma = np.full(9, 0.2)
    for model in ("bsm", "black76"):
        yield f"price ({model})", partial(price, kinds, sigma=sigma, model=model, **market)
        yield f"greeks ({model})", partial(greeks, kinds, sigma=sigma, model=model, **market)
        premiums = np.linspace(21.0, 0.5, 9)
        yield (
            f"implied_vol ({model})",
            partial(implied_vol, premiums, kinds, model=model, **market),
        )
    calls = np.linspace(21.0, 0.2, 9)
    puts = calls[::-1].copy()
    oi = np.full(9, 100.0)
    chain = OptionChain(
        strikes=strikes,
        spot=100.0,
        t=0.1,
        r=0.05,
        q=0.01,
        call_price=calls,
        put_price=puts,
        call_oi=oi,
        put_oi=oi,
        call_oi_change=oi,
        put_oi_change=oi,
        call_volume=oi,
        put_volume=oi,
        call_price_change=calls * 0.01,
        put_price_change=puts * 0.01,
    )
    yield "analyze_chain", partial(analyze_chain, chain)


def warm_kernels() -> list[KernelWarmup]:
    """Call every kernel once; return each entry point's time, slowest first."""
    timings: list[KernelWarmup] = []
    for name, call in (*_indicator_calls(), *_option_calls()):
        started = time.perf_counter()
        call()
        timings.append(KernelWarmup(name, time.perf_counter() - started))
    return sorted(timings, key=lambda timing: timing.seconds, reverse=True)
