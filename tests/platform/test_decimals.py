"""Decimals on the wire (issue 19): one serialiser, no exponent notation, no signed zero, in
every response model and in the OpenAPI document."""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from quantdesk.app import create_app
from quantdesk.platform.decimals import (
    DECIMAL_PATTERN,
    decimal_column,
    decimal_from_float,
    decimal_text,
)
from quantdesk.platform.responses import FastJSONResponse
from tests.conftest import base_settings

WIRE = re.compile(DECIMAL_PATTERN)

# Decimals in every form a Decimal can take: normalised (2.16E+4), tiny (1E-7), signed zero.
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: d.normalize()),
    st.builds(
        lambda digits, exponent: Decimal(digits).scaleb(exponent),
        st.integers(-(10**12), 10**12),
        st.integers(-12, 12),
    ),
    st.sampled_from([Decimal("2.16E+4"), Decimal("-0.00"), Decimal("1E-7"), Decimal("0E+3")]),
)


def assert_wire(text: object, value: Decimal, where: str = "") -> None:
    assert isinstance(text, str), (where, text)
    assert WIRE.match(text), f"{where}: {value!r} went on the wire as {text!r}"
    assert Decimal(text) == value
    if Decimal(text).is_zero():
        assert not text.startswith("-"), text


@given(decimals)
def test_decimal_text_is_positional_exact_and_unsigned_at_zero(value: Decimal) -> None:
    assert_wire(decimal_text(value), value)


def test_decimal_text_examples() -> None:
    assert decimal_text(Decimal("2.16E+4")) == "21600"
    assert decimal_text(Decimal("52.50")) == "52.50"
    assert decimal_text(Decimal("-0.000000")) == "0.000000"
    assert decimal_text(Decimal("1E-7")) == "0.0000001"
    with pytest.raises(ValueError, match="finite"):
        decimal_text(Decimal("NaN"))


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=20),
    st.integers(0, 8),
)
def test_decimal_column_is_decimal_from_float_per_element(values: list[float], places: int) -> None:
    column = decimal_column(values, places)
    for value, text in zip(values, column, strict=True):
        exact = decimal_from_float(value, places)
        if exact is None:
            assert text is None
        else:
            assert text == decimal_text(exact)
            assert WIRE.match(text)


def test_worthless_option_price_is_zero_not_minus_zero() -> None:
    assert decimal_column([-1e-12, -0.0, 1e-300], 6) == ["0.000000", "0.000000", "0.000000"]


def test_fast_json_response_prints_decimals_as_response_models_do() -> None:
    body = FastJSONResponse({"strike": Decimal("2.16E+4"), "zero": Decimal("-0.00")}).body
    assert body == b'{"strike":"21600","zero":"0.00"}'


# --- every response model of the app ---------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    root: Path = tmp_path_factory.mktemp("wire")
    return create_app(base_settings(f"sqlite+aiosqlite:///{root / 'db.sqlite'}", root / "var"))


def _models_in(annotation: Any, found: dict[str, type[BaseModel]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation.__name__ not in found:
            found[annotation.__name__] = annotation
            for field in annotation.model_fields.values():
                _models_in(field.annotation, found)
        return
    for argument in get_args(annotation):
        _models_in(argument, found)


def response_models(app: FastAPI) -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for route in app.routes:
        if isinstance(route, APIRoute):
            _models_in(route.response_model, found)
            for extra in route.responses.values():
                _models_in(extra.get("model"), found)
    return found


def _carries_decimal(annotation: Any, seen: frozenset[type] = frozenset()) -> bool:
    if annotation is Decimal:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:  # a recursive model (an order and its legs)
            return False
        inner = seen | {annotation}
        return any(_carries_decimal(f.annotation, inner) for f in annotation.model_fields.values())
    return any(_carries_decimal(a, seen) for a in get_args(annotation))


# Every form a Decimal takes that a careless serialiser gets wrong: exponent forms large and
# small, signed zeros, more places than a float holds, a long negative.
AWKWARD = [
    Decimal("2.16E+4"),
    Decimal("1E-7"),
    Decimal("-0.00"),
    Decimal("0E+3"),
    Decimal("123456789012345678901234.5678901234567890123"),
    Decimal("-98765.4321000"),
]


def filled(annotation: Any, value: Decimal, seen: frozenset[type] = frozenset()) -> Any:
    """A value of ``annotation`` with every Decimal in it, however deep, set to ``value``:
    optional fields take their non-None branch, lists and dicts hold one entry, so each
    Decimal field of a model is on the wire at once (a random draw would leave some None)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return filled(get_args(annotation)[0], value, seen)
    if annotation is Decimal:
        return value
    if origin in (Union, types.UnionType):
        choices = [a for a in get_args(annotation) if a is not type(None)]
        choices.sort(key=lambda a: not _carries_decimal(a, seen))
        return filled(choices[0], value, seen) if choices and choices[0] not in seen else None
    if origin is list:
        (inner,) = get_args(annotation)
        return [] if inner in seen else [filled(inner, value, seen)]
    if origin is dict:
        key, inner = get_args(annotation)
        return {filled(key, value, seen): filled(inner, value, seen)}
    if origin is Literal:
        return get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        inner_seen = seen | {annotation}
        fields = {
            name: filled(field.annotation, value, inner_seen)
            for name, field in annotation.model_fields.items()
        }
        return annotation.model_construct(**fields)
    # The rest carries no Decimal: any value of its type (str keys of a dict included).
    return "x" if annotation is str else None


def _pairs(python: Any, wire: Any) -> Iterator[tuple[Decimal, Any]]:
    if isinstance(python, Decimal):
        yield python, wire
    elif isinstance(python, dict):
        for key, value in python.items():
            yield from _pairs(value, wire[key])
    elif isinstance(python, list | tuple):
        for value, text in zip(python, wire, strict=True):
            yield from _pairs(value, text)


def test_every_response_model_writes_decimals_positionally(app: FastAPI) -> None:
    models = {n: m for n, m in response_models(app).items() if _carries_decimal(m)}
    # Not vacuous: the money-carrying models of market data, chains and strategies are in.
    assert {"InstrumentOut", "QuoteOut", "ChainStrike"} <= set(models)
    for name, model in models.items():
        for value in AWKWARD:
            instance = filled(model, value)
            python = instance.model_dump(warnings=False)
            wire = instance.model_dump(mode="json", warnings=False)
            pairs = list(_pairs(python, wire))
            assert pairs, f"{name}: no Decimal field was filled"
            for decimal, text in pairs:
                assert decimal == value
                assert_wire(text, value, name)


def test_decimal_from_float_examples() -> None:
    assert decimal_from_float(218.39999999999998, 2) == Decimal("218.40")
    assert decimal_from_float(math.nan, 2) is None
    assert decimal_from_float(1e300, 2) is not None
