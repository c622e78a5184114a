"""Decimals on the wire: the one serialiser, and where analytics floats become decimals.

JSON carries money, prices, strikes and quantities as decimal strings (DESIGN.md).
``str(Decimal)`` is not a wire format: a Decimal that went through ``normalize()`` or was
built from scientific text prints in exponent notation (``Decimal("21600").normalize()`` is
``2.16E+4``), and ``Decimal("-0.00")`` keeps its sign.  Every response model declares such
fields as :data:`WireDecimal`, whose serialiser is :func:`decimal_text`; the orjson fast path
(``platform.responses``) calls the same function, so both routes print the same text.

Analytics run in float64 (as QuantLib and TA-Lib do).  A float result becomes a decimal at a
stated number of places in exactly one way: the float's exact binary value rounded half-even
(:func:`decimal_from_float`); :func:`decimal_column` is its vectorised twin for whole arrays
(Python's ``format(x, ".Nf")`` rounds the exact binary value half-even too, which is what
makes it the same function, and the tests check it).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from pydantic import GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"
"""What every decimal on the wire looks like: no exponent, no '+', no leading '.'."""

# Enough digits for any finite float64 at any number of places we print (1.8e308 has 309
# integer digits); the default context's 28 digits would raise on large quantize calls.
_WIDE = Context(prec=400, rounding=ROUND_HALF_EVEN)


def decimal_text(value: Decimal) -> str:
    """``value`` in positional notation with its own scale: ``2.16E+4`` -> ``"21600"``,
    ``52.50`` -> ``"52.50"``, ``-0.00`` -> ``"0.00"`` (a zero has no sign on the wire)."""
    if not value.is_finite():
        raise ValueError(f"a decimal on the wire must be finite, got {value}")
    text = format(value, "f")
    return text[1:] if value.is_zero() and text.startswith("-") else text


def places_of(value: Decimal) -> int:
    """Decimal places ``value`` is written with (``"20"`` -> 0, ``"20.50"`` -> 2)."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def at_places(value: Decimal, places: int) -> Decimal:
    """``value`` shown with at least ``places`` decimals, never dropping a digit it has
    (a strike of 187.5 at tick 0.05 is ``187.50``; a strike of 12.125 stays ``12.125``)."""
    return _WIDE.quantize(value, quantum(max(places, places_of(value))))


def decimal_from_float(value: float, places: int) -> Decimal | None:
    """An analytics float as a decimal at ``places`` (None for NaN/inf): the exact binary
    value rounded half-even, so the result does not depend on how ``repr`` prints it."""
    if not math.isfinite(value):
        return None
    return _WIDE.quantize(Decimal(value), quantum(places))


def decimal_column(values: npt.ArrayLike, places: int) -> list[str | None]:
    """A float column as decimal strings at ``places`` (null for NaN/inf).

    Equal to ``decimal_text(decimal_from_float(x, places))`` per element, several times
    faster: batches of 100,000 Greeks rows go through here.
    """
    array = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    fmt = f"{{:.{places}f}}".format
    out: list[str | None] = []
    for x in array.tolist():
        if not math.isfinite(x):
            out.append(None)
            continue
        text = fmt(x)
        # A tiny negative rounds to "-0.00"; zero has no sign on the wire.
        out.append(text[1:] if text[0] == "-" and not text.strip("-0.") else text)
    return out


class _DecimalStringSchema:
    """OpenAPI for an output decimal: a string of :data:`DECIMAL_PATTERN`, marked
    ``format: decimal`` so clients (and our schema test) can tell money from a label."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: dict[str, Any] = handler(core_schema)
        if handler.mode == "serialization":
            return {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN}
        return schema


WireDecimal = Annotated[
    Decimal,
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
    _DecimalStringSchema(),
]
"""The Decimal of response models: validated as a Decimal, written as :func:`decimal_text`."""


def json_default(value: Any) -> Any:
    """orjson's fallback for the fast responses: decimals as :func:`decimal_text`."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)
