"""The numba kernels, run as plain Python (``.py_func``), give exactly what their compiled
versions give.

This pins down that numba compiles what the source says (no integer-division, wraparound
or NaN-comparison surprises), and it is also the only way line coverage can see inside a
jitted function.  Inputs are small, with flat stretches so that the zero guards and
purges run too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest

from quantdesk.analytics.indicators import (
    _averages,
    _common,
    _windows,
    extra,
    momentum,
    trend,
    volatility,
    volume,
)
from tests.analytics.indicators.market_data import FloatArray, flat_segments

BARS = flat_segments(260, seed=31)
H, L, C, V = BARS.high, BARS.low, BARS.close, BARS.volume
N = len(C)
# The same bars with gaps, for the kernels that exist to treat NaNs as TA-Lib does.
GAPPY_H, GAPPY_L = H.copy(), L.copy()
GAPPY_H[[20, 21, 90]] = np.nan
GAPPY_L[[20, 140]] = np.nan
UNWRITTEN = -9.87654321e300  # a value no kernel can produce from these inputs


def interpreted(kernel: object) -> Callable[..., Any]:
    """The plain-Python function a numba dispatcher was built from."""
    return cast(Callable[..., Any], cast(Any, kernel).py_func)


def _outputs(count: int) -> list[FloatArray]:
    return [np.full(N, UNWRITTEN) for _ in range(count)]


def assert_interpreted_equals_compiled(kernel: Any, *inputs: object, outputs: int = 1) -> None:
    """Run ``kernel`` compiled and as Python on the same inputs and fresh output arrays."""
    compiled_out, python_out = _outputs(outputs), _outputs(outputs)
    kernel(*inputs, *compiled_out)
    interpreted(kernel)(*inputs, *python_out)
    for compiled, plain in zip(compiled_out, python_out, strict=True):
        np.testing.assert_array_equal(plain, compiled)
        assert not (compiled == UNWRITTEN).any(), "every output slot must be written"


KERNEL_CALLS: list[tuple[str, Callable[[], None]]] = [
    ("sma", lambda: assert_interpreted_equals_compiled(_averages.sma_into, C, 7)),
    ("ema", lambda: assert_interpreted_equals_compiled(_averages.ema_into, C, 7)),
    ("ema(1)", lambda: assert_interpreted_equals_compiled(_averages.ema_into, C, 1)),
    ("wma", lambda: assert_interpreted_equals_compiled(_averages.wma_into, C, 3)),
    ("wma(1)", lambda: assert_interpreted_equals_compiled(_averages.wma_into, C, 1)),
    ("trima odd", lambda: assert_interpreted_equals_compiled(_averages.trima_into, C, 7)),
    ("trima even", lambda: assert_interpreted_equals_compiled(_averages.trima_into, C, 6)),
    ("kama", lambda: assert_interpreted_equals_compiled(_averages.kama_into, C, 4)),
    ("kama(1)", lambda: assert_interpreted_equals_compiled(_averages.kama_into, C, 1)),
    ("dema", lambda: assert_interpreted_equals_compiled(_averages.ema_cascade_into, C, 5, 2, 0)),
    ("tema", lambda: assert_interpreted_equals_compiled(_averages.ema_cascade_into, C, 5, 3, 1)),
    ("trix", lambda: assert_interpreted_equals_compiled(_averages.ema_cascade_into, C, 5, 3, 2)),
    ("tema(1)", lambda: assert_interpreted_equals_compiled(_averages.ema_cascade_into, C, 1, 3, 1)),
    ("trix(1)", lambda: assert_interpreted_equals_compiled(_averages.ema_cascade_into, C, 1, 3, 2)),
    ("dema(1)", lambda: assert_interpreted_equals_compiled(_averages.ema_cascade_into, C, 1, 2, 0)),
    ("t3", lambda: assert_interpreted_equals_compiled(_averages.t3_into, C, 4, 0.7)),
    ("t3(1)", lambda: assert_interpreted_equals_compiled(_averages.t3_into, C, 1, 0.7)),
    *[
        (
            f"ma type {matype}",
            lambda matype=matype: assert_interpreted_equals_compiled(
                _averages.ma_into, C, 4, matype
            ),
        )
        for matype in (0, 1, 2, 3, 4, 5, 6, 8)
    ],
    ("ma(1)", lambda: assert_interpreted_equals_compiled(_averages.ma_into, C, 1, 3)),
    ("rsi", lambda: assert_interpreted_equals_compiled(momentum.rsi_into, C, 5)),
    (
        "macd",
        lambda: assert_interpreted_equals_compiled(momentum._macd_into, C, 4, 9, 3, outputs=3),
    ),
    ("cci", lambda: assert_interpreted_equals_compiled(momentum._cci_into, H, L, C, 5)),
    # Windows shorter than the four bars summed side by side, and a last group that is
    # not full.
    (
        "cci(2), ragged end",
        lambda: _on_prefix(momentum._cci_into, N - 1, 2),
    ),
    ("mfi", lambda: assert_interpreted_equals_compiled(momentum._mfi_into, H, L, C, V, 3)),
    (
        "roc with a zero base",
        lambda: assert_interpreted_equals_compiled(
            momentum._roc_into, np.where(C[50] < C, C, 0.0), 2
        ),
    ),
    ("range extremes", lambda: _range_extremes()),
    (
        "donchian channel",
        lambda: assert_interpreted_equals_compiled(
            _windows.range_scan_into, H, L, C, 6, _windows.CHANNEL, outputs=3
        ),
    ),
    ("fast %K", lambda: _range_position(_windows.FAST_K)),
    (
        "rescanned extremes (STOCH on gappy data)",
        lambda: assert_interpreted_equals_compiled(
            _windows.rescan_extremes_into, GAPPY_H, GAPPY_L, 6, outputs=2
        ),
    ),
    (
        "fast %K from given extremes",
        lambda: assert_interpreted_equals_compiled(_windows.fast_k_into, H, L, C, 6),
    ),
    ("williams %R", lambda: _range_position(_windows.WILLIAMS_R)),
    ("trange", lambda: assert_interpreted_equals_compiled(volatility._trange_into, H, L, C)),
    ("atr", lambda: assert_interpreted_equals_compiled(volatility._atr_into, H, L, C, 5, False)),
    ("atr(1)", lambda: assert_interpreted_equals_compiled(volatility._atr_into, H, L, C, 1, False)),
    ("natr", lambda: assert_interpreted_equals_compiled(volatility._atr_into, H, L, C, 5, True)),
    ("natr(1)", lambda: assert_interpreted_equals_compiled(volatility._atr_into, H, L, C, 1, True)),
    (
        "bollinger, own SMA, equal multipliers",
        lambda: assert_interpreted_equals_compiled(
            volatility._bollinger_into, C, 5, 4, True, 2.0, 2.0, outputs=3
        ),
    ),
    (
        "bollinger, given middle, unequal multipliers",
        lambda: _bollinger_with_given_middle(),
    ),
    ("adx", lambda: assert_interpreted_equals_compiled(trend._adx_into, H, L, C, 4)),
    (
        "plus_di",
        lambda: assert_interpreted_equals_compiled(trend._directional_index_into, H, L, C, 4, True),
    ),
    (
        "minus_di(1)",
        lambda: assert_interpreted_equals_compiled(
            trend._directional_index_into, H, L, C, 1, False
        ),
    ),
    ("sar", lambda: assert_interpreted_equals_compiled(trend._sar_into, H, L, 0.02, 0.2)),
    ("sar capped", lambda: assert_interpreted_equals_compiled(trend._sar_into, H, L, 0.3, 0.1)),
    ("obv", lambda: assert_interpreted_equals_compiled(volume._obv_into, C, V)),
    ("ad", lambda: assert_interpreted_equals_compiled(volume._ad_into, H, L, C, V)),
    ("adosc", lambda: assert_interpreted_equals_compiled(volume._adosc_into, H, L, C, V, 3, 10)),
    (
        "vwap",
        lambda: assert_interpreted_equals_compiled(
            extra._vwap_into, H, L, np.where(np.arange(N) == 7, np.nan, C), V, np.arange(N) // 40
        ),
    ),
    ("supertrend", lambda: _supertrend()),
]


def _on_prefix(kernel: Any, length: int, *parameters: object) -> None:
    # ``kernel`` on the first ``length`` bars of H, L, C.
    compiled, python = np.full(length, UNWRITTEN), np.full(length, UNWRITTEN)
    bars = (H[:length], L[:length], C[:length])
    kernel(*bars, *parameters, compiled)
    interpreted(kernel)(*bars, *parameters, python)
    np.testing.assert_array_equal(python, compiled)
    assert not (compiled == UNWRITTEN).any()


def _range_position(mode: int) -> None:
    # These modes write only the first output; the others are unused placeholders.
    compiled, python = np.full(N, UNWRITTEN), np.full(N, UNWRITTEN)
    _windows.range_scan_into(H, L, C, 6, mode, compiled, np.empty(0), np.empty(0))
    interpreted(_windows.range_scan_into)(H, L, C, 6, mode, python, np.empty(0), np.empty(0))
    np.testing.assert_array_equal(python, compiled)
    assert not (compiled == UNWRITTEN).any()


def _range_extremes() -> None:
    # The extremes without their midpoint: the third output is an unused placeholder.
    compiled, python = _outputs(2), _outputs(2)
    mode = _windows.EXTREMES
    _windows.range_scan_into(H, L, C, 6, mode, compiled[0], compiled[1], np.empty(0))
    interpreted(_windows.range_scan_into)(H, L, C, 6, mode, python[0], python[1], np.empty(0))
    for compiled_out, python_out in zip(compiled, python, strict=True):
        np.testing.assert_array_equal(python_out, compiled_out)
        assert not (compiled_out == UNWRITTEN).any()


def _bollinger_with_given_middle() -> None:
    middle = np.empty(N)
    _averages.ma_into(C, 5, 1, middle)
    compiled, python = _outputs(2), _outputs(2)
    given, given_py = middle.copy(), middle.copy()
    volatility._bollinger_into(C, 5, 4, False, 1.5, 2.5, compiled[0], given, compiled[1])
    interpreted(volatility._bollinger_into)(
        C, 5, 4, False, 1.5, 2.5, python[0], given_py, python[1]
    )
    for compiled_band, python_band in zip(compiled, python, strict=True):
        np.testing.assert_array_equal(python_band, compiled_band)


def _supertrend() -> None:
    average_range = np.empty(N)
    volatility._atr_into(H, L, C, 5, False, average_range)
    assert_interpreted_equals_compiled(
        extra._supertrend_into, H, L, C, average_range, 1.5, outputs=2
    )


@pytest.mark.parametrize(
    "check", [call for _, call in KERNEL_CALLS], ids=[name for name, _ in KERNEL_CALLS]
)
def test_interpreted_kernel_equals_compiled(check: Callable[[], None]) -> None:
    check()


def test_short_inputs_are_all_nan_in_both() -> None:
    short = C[:3]
    cases: tuple[tuple[Any, tuple[object, ...]], ...] = (
        (_averages.sma_into, (short, 5)),
        (_averages.ema_into, (short, 5)),
        (_averages.wma_into, (short, 5)),
        (_averages.trima_into, (short, 5)),
        (_averages.kama_into, (short, 5)),
        (_averages.ema_cascade_into, (short, 5, 2, 0)),
        (_averages.t3_into, (short, 2, 0.7)),
        (momentum.rsi_into, (short, 5)),
        (momentum._cci_into, (short, short, short, 5)),
        (momentum._mfi_into, (short, short, short, short, 5)),
        (momentum._roc_into, (short, 5)),
        (volatility._trange_into, (short[:1], short[:1], short[:1])),
        (volatility._atr_into, (short, short, short, 5, False)),
        (volatility._atr_into, (short, short, short, 5, True)),
        (trend._adx_into, (short, short, short, 5)),
        (trend._directional_index_into, (short, short, short, 5, True)),
        (trend._directional_index_into, (short[:1], short[:1], short[:1], 1, True)),
        (trend._sar_into, (short[:1], short[:1], 0.02, 0.2)),
        (volume._adosc_into, (short, short, short, short, 3, 10)),
    )
    for kernel, args in cases:
        for run in (kernel, interpreted(kernel)):
            out = np.zeros(len(cast(FloatArray, args[0])))
            run(*args, out)
            assert np.isnan(out).all()
    macd_outputs = _outputs(3)
    interpreted(momentum._macd_into)(short, 2, 5, 3, *macd_outputs)
    assert all(np.isnan(out[:3]).all() for out in macd_outputs)


def test_scalar_helpers_interpreted() -> None:
    assert interpreted(volatility._true_range)(11.0, 9.0, 12.5) == 3.5
    assert interpreted(trend._directional_move)(2.0, 1.0) == (2.0, 0.0)
    assert interpreted(trend._directional_move)(1.0, 2.0) == (0.0, 2.0)
    assert interpreted(trend._directional_move)(1.0, 1.0) == (0.0, 0.0)
    assert interpreted(trend._nonzero_range)(0.0) is False
    assert interpreted(momentum._rsi_ratio)(0.0, 0.0) == 0.0
    assert interpreted(momentum._rsi_ratio)(3.0, 1.0) == 75.0
    assert interpreted(volume._money_flow_volume)(10.0, 10.0, 10.0, 5.0) == 0.0
    assert interpreted(volume._money_flow_volume)(12.0, 8.0, 11.0, 4.0) == 2.0
    assert interpreted(volume._ema_weights)(3) == (0.5, 0.5)
    assert interpreted(_windows._is_flat)(100.0, 100.0 * (1 + 1e-16)) is True
    assert interpreted(_windows._is_flat)(101.0, 100.0) is False
    assert interpreted(_averages._t3_blend)(1.0, 1.0, 1.0, 1.0, 0.25, 0.25, 0.25, 0.25) == 1.0
    nan = np.array([np.nan, 1.0])
    assert interpreted(_common._first_valid)(nan, nan, nan, nan) == 1
    assert interpreted(_common._first_valid)(nan[:1], nan[:1], nan[:1], nan[:1]) == 1
