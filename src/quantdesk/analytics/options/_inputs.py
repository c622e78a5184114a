"""Argument handling shared by the option pricers: option kinds, models and broadcasting.

The numba kernels loop over flat, contiguous float64 arrays.  Arguments that are scalars
stay length-1 arrays and are read with a zero stride inside the kernel, so pricing a whole
chain at one spot, expiry and rate never materialises copies of those scalars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
Model = Literal["bsm", "black76"]

_CALL_NAMES: Final = frozenset({"call", "c", "ce"})
_PUT_NAMES: Final = frozenset({"put", "p", "pe"})
_MODEL_NAMES: Final[dict[str, Model]] = {
    "bsm": "bsm",
    "black-scholes": "bsm",
    "black_scholes": "bsm",
    "black76": "black76",
    "black-76": "black76",
    "black": "black76",
}


def parse_model(model: str) -> bool:
    """Return True for Black-76 (``spot`` is a forward) and False for Black-Scholes-Merton."""
    try:
        return _MODEL_NAMES[model.lower()] == "black76"
    except KeyError:
        raise ValueError(f"unknown option model {model!r}; expected 'bsm' or 'black76'") from None


def _sign_of_name(name: str) -> float:
    key = name.strip().lower()
    if key in _CALL_NAMES:
        return 1.0
    if key in _PUT_NAMES:
        return -1.0
    # "CE"/"PE" are the NSE spellings of call/put, accepted alongside the usual ones.
    raise ValueError(f"unknown option kind {name!r}; expected 'call'/'put' (or 'c'/'p', 'ce'/'pe')")


def option_sign(kind: ArrayLike) -> FloatArray:
    """Map option kinds to +1.0 (call) / -1.0 (put).

    Accepts a string or an array of strings ("call"/"put", "c"/"p", NSE "ce"/"pe", any case),
    booleans (True = call) or numbers (+1 = call, -1 = put).  Numeric ±1 is the fast path.

    Raises:
        ValueError: for an unknown name or a number other than ±1.
    """
    if isinstance(kind, str):
        return np.array(_sign_of_name(kind))
    arr = np.asarray(kind)
    if arr.dtype.kind in "USO":
        names, inverse = np.unique(arr, return_inverse=True)
        signs = np.array([_sign_of_name(str(name)) for name in names], dtype=np.float64)
        return signs[inverse].reshape(arr.shape)
    if arr.dtype.kind == "b":
        return np.where(arr, 1.0, -1.0)
    if arr.dtype.kind in "iuf":
        out = np.asarray(arr, dtype=np.float64)
        if not np.all((out == 1.0) | (out == -1.0)):
            raise ValueError("numeric option kinds must be +1 (call) or -1 (put)")
        return out
    raise ValueError(f"unsupported option kind dtype {arr.dtype}")


@dataclass(frozen=True, slots=True)
class Flat:
    """Broadcast arguments as flat float64 arrays: each has length 1 or ``size``."""

    shape: tuple[int, ...]
    size: int
    arrays: tuple[FloatArray, ...]


def flatten_broadcast(*args: ArrayLike) -> Flat:
    """Broadcast ``args`` against each other and flatten each to length 1 or the full size."""
    arrays = [np.asarray(a, dtype=np.float64) for a in args]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    size = math.prod(shape)
    flat: list[FloatArray] = []
    for a in arrays:
        if a.size == 1 and size != 0:
            flat.append(a.reshape(1))
        elif a.shape == shape:
            flat.append(np.ascontiguousarray(a).reshape(size))
        else:
            flat.append(np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(size))
    return Flat(shape=shape, size=size, arrays=tuple(flat))
