"""Input checking and output layout shared by every indicator.

The rules are TA-Lib's, so that a call that works there works here and gives the same array:

* every series is converted to a contiguous one-dimensional float64 array;
* several series passed together must have the same length;
* periods are integers within TA-Lib's documented range (the minimum differs per function,
  the maximum is 100,000 everywhere);
* bars before the first one where *every* input is a number are skipped, as TA-Lib's Python
  wrapper does (``check_begidx``), so indicators chain: ``ema(rsi(close), 5)`` works;
* the output has the input's length, NaN wherever TA-Lib has no value.

Bad arguments raise ``ValueError`` with a message that names the argument.
"""

from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt

from quantdesk.analytics._jit import jit

FloatArray = npt.NDArray[np.float64]

MAX_PERIOD = 100_000

# TA-Lib's MAType enumeration (ta_defs.h): the integer codes callers pass as ``matype``.
SMA, EMA, WMA, DEMA, TEMA, TRIMA, KAMA, MAMA, T3 = range(9)
MA_NAMES = ("SMA", "EMA", "WMA", "DEMA", "TEMA", "TRIMA", "KAMA", "MAMA", "T3")


def as_series(values: npt.ArrayLike, name: str) -> FloatArray:
    """``values`` as a contiguous 1-D float64 array, or ``ValueError`` naming ``name``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be convertible to float64: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got an array of shape {array.shape}")
    return np.ascontiguousarray(array)


def as_aligned(**named: npt.ArrayLike) -> tuple[FloatArray, ...]:
    """Several series of one length, in the order given; ``ValueError`` on a length mismatch."""
    arrays = tuple(as_series(values, name) for name, values in named.items())
    lengths = {name: len(array) for name, array in zip(named, arrays, strict=True)}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={length}" for name, length in lengths.items())
        raise ValueError(f"input series must have the same length, got {described}")
    return arrays


def check_period(value: object, name: str, minimum: int, maximum: int = MAX_PERIOD) -> int:
    """An integer period within ``[minimum, maximum]`` (TA-Lib's bounds), else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    period = int(value)
    if not minimum <= period <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {period}")
    return period


def check_real(value: object, name: str, minimum: float | None = None) -> float:
    """A finite float (at least ``minimum`` when given), else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def check_matype(value: object, name: str = "matype") -> int:
    """A moving-average type code 0..8 that this package implements (all but MAMA)."""
    code = check_period(value, name, 0, 8)
    if code == MAMA:
        raise ValueError(
            f"{name}={MAMA} (MAMA) is not implemented; use 0=SMA, 1=EMA, 2=WMA, 3=DEMA, "
            "4=TEMA, 5=TRIMA, 6=KAMA or 8=T3"
        )
    return code


@jit
def _first_valid(a: FloatArray, b: FloatArray, c: FloatArray, d: FloatArray) -> int:
    # Scans only the NaN prefix, so it costs nothing on clean data.
    n = len(a)
    for i in range(n):
        if not (np.isnan(a[i]) or np.isnan(b[i]) or np.isnan(c[i]) or np.isnan(d[i])):
            return i
    return n


def valid_start(*series: FloatArray) -> int:
    """Index of the first bar where every series is a number (TA-Lib's wrapper starts there).

    When no bar has every input, the wrapper's ``check_begidx`` answers the last bar, and
    TA-Lib then computes that bar (OBV gives its volume, AD its zero step): so does this.
    """
    padded = (*series, series[0], series[0], series[0])
    n = len(series[0])
    return min(_first_valid(padded[0], padded[1], padded[2], padded[3]), max(n - 1, 0))


def output_like(n: int, start: int) -> FloatArray:
    """An output array of length ``n`` whose first ``start`` entries are already NaN."""
    out = np.empty(n, dtype=np.float64)
    out[:start] = np.nan
    return out
