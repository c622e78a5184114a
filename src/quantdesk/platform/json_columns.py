"""Turning analytics arrays into JSON columns, and checking request columns line up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from quantdesk.platform.exceptions import InvalidInput


def rows_of(columns: Mapping[str, Any], max_rows: int) -> int:
    """The batch length: every list column has it (single values broadcast)."""
    lengths = {name: len(value) for name, value in columns.items() if isinstance(value, list)}
    sizes = set(lengths.values())
    if len(sizes) > 1:
        detail = ", ".join(f"{name}={size}" for name, size in sorted(lengths.items()))
        raise InvalidInput(f"columns must have equal lengths (or be single values): {detail}")
    rows = sizes.pop() if sizes else 1
    if rows == 0:
        raise InvalidInput("the batch is empty")
    if rows > max_rows:
        raise InvalidInput(f"at most {max_rows} rows per request, got {rows}")
    return rows


def model_input(value: Decimal) -> float:
    """Where a Decimal from the API enters the float64 analytics core.

    Prices, strikes and quantities stay Decimal in the API, the ledger and the database; the
    pricing models work in binary floating point (as QuantLib and TA-Lib do), and this is the
    one conversion between the two.
    """
    return float(value)


def floats_or_null(values: npt.NDArray[np.float64]) -> list[float | None]:
    """A float column with NaN/inf as JSON null."""
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    finite = np.isfinite(array)
    if finite.all():
        return list(array.tolist())
    out: list[float | None] = array.tolist()
    for index in np.flatnonzero(~finite).tolist():
        out[index] = None
    return out


def decimal_strings(values: npt.NDArray[np.float64], places: int = 6) -> list[str | None]:
    """Prices as decimal strings with ``places`` decimals (JSON carries money as text)."""
    array = np.round(np.atleast_1d(np.asarray(values, dtype=np.float64)), places)
    fmt = f"{{:.{places}f}}".format
    return [fmt(x) if math.isfinite(x) else None for x in array.tolist()]
