"""A typed front for numba's ``njit``.

numba ships no type information, so under ``mypy --strict`` every ``@njit`` function would
become untyped.  ``jit`` keeps the decorated function's signature for the type checker while
numba compiles it (lazily, cached on disk) at run time.  numba earns its place for the
path-dependent recursions (Wilder smoothing with resets, Parabolic SAR, KAMA, Newton
iterations) that have no closed vectorised form in NumPy/SciPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` with numba in nopython mode, caching the machine code on disk.

    ``error_model="numpy"``: a float division by zero gives inf/NaN as in NumPy instead of
    raising ``ZeroDivisionError``, so one degenerate row (a time to expiry of 1e-320 whose
    products underflow to zero) becomes a null in its own row and never fails the batch.
    It also drops numba's per-division zero check from the hot loops.
    """
    return cast(F, numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(func))
