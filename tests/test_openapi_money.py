"""No money in the API is declared a bare JSON number (DESIGN.md "Money", issue 19).

Prices, premiums, strikes, P/L, cash and quantities travel as exact decimal strings; Greeks,
IVs, rates, ratios and percentages are JSON numbers.  This walks the whole OpenAPI document
(every component schema, inline schema and parameter) and checks each field whose *name*
says money:

* nowhere may it be a bare number: a request may accept a JSON number only next to a
  decimal string (``anyOf: [number, string]``), never instead of one;
* in what the API answers it is a string, marked ``format: decimal`` (``WireDecimal``).

Which names say money, and which words take a name back out, is the documented list below.
A new field named ``price`` or ``cash_balance`` is caught without anyone listing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quantdesk.app import create_app
from tests.conftest import base_settings

# A name is money-named when one of its words (snake_case or camelCase words, plurals folded:
# ``strikes`` -> ``strike``, ``breakevens`` -> ``breakeven``) is one of these.
MONEY_WORDS = frozenset(
    {
        # prices and premiums
        "price", "premium", "ltp", "last", "bid", "ask", "mark", "mid", "strike", "spot",
        "forward", "open", "high", "low", "close", "vwap", "settlement", "straddle", "pain",
        "breakeven", "basis", "spread", "tick",
        # money
        "value", "pnl", "profit", "loss", "cost", "cash", "margin", "amount", "balance",
        "equity", "notional", "fee", "commission", "charge", "tax", "brokerage", "debit",
        "credit", "payout", "collateral",
        # quantities
        "quantity", "qty", "lot", "size",
    }
)  # fmt: skip
# ... unless one of its words says it is a rate, a ratio, a count, a time or a name
# (``basis_pct``, ``probability_of_profit``, ``last_used_at``, ``spot_key``).
NOT_MONEY_WORDS = frozenset(
    {
        "pct", "percent", "ratio", "iv", "vol", "rate", "probability", "years", "days",
        "count", "at", "time", "ts", "key", "id", "name", "symbol",
    }
)  # fmt: skip
# Money-named fields that are deliberately numbers, each with its reason.
NUMBERS_BY_DESIGN: dict[tuple[str, str], str] = {
    ("IndicatorOut", "values"): "indicator outputs are float64 analytics, as TA-Lib's; "
    "an SMA is a price level but an RSI is not, and one column type serves both",
    ("SignalSeries", "values"): "a model's signal (a probability or a position in -1..1), "
    "drawn as an indicator overlay in IndicatorOut's shape",
    ("BacktestIn", "half_spread_ticks"): "a whole number of ticks, not a price",
    ("TrainIn", "train_size"): "a number of bars in each training window",
}

NUMBER_TYPES = {"number", "integer"}
TIME_FORMATS = {"date", "date-time", "time", "duration"}


def words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    out = []
    for word in re.split(r"[^a-z0-9]+", spaced):
        if word.endswith("s") and word[:-1] in MONEY_WORDS:
            word = word[:-1]
        if word:
            out.append(word)
    return out


def money_named(name: str) -> bool:
    found = set(words(name))
    return bool(found & MONEY_WORDS) and not found & NOT_MONEY_WORDS


def leaf_schemas(schema: dict[str, Any], components: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The typed alternatives a value of ``schema`` can take (unions, array items and map
    values unfolded, references followed)."""
    if "$ref" in schema:
        yield from leaf_schemas(components[schema["$ref"].rsplit("/", 1)[-1]], components)
        return
    for union in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(union, []):
            yield from leaf_schemas(alternative, components)
    kind = schema.get("type")
    if kind == "array":
        yield from leaf_schemas(schema.get("items", {}), components)
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        yield from leaf_schemas(schema["additionalProperties"], components)
    elif kind is not None:
        yield schema


def properties(
    schema: dict[str, Any], owner: str, components: dict[str, Any]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(owner, property, schema) for every property declared in ``schema``, nested inline
    objects included (``$ref`` targets are visited as components of their own)."""
    for name, sub in schema.get("properties", {}).items():
        yield owner, name, sub
        for inner in _inline(sub):
            yield from properties(inner, f"{owner}.{name}", components)
    for union in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(union, []):
            yield from properties(alternative, owner, components)


def _inline(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "properties" in schema:
        yield schema
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _inline(schema[key])
    for union in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(union, []):
            yield from _inline(alternative)


def refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[-1]
        for value in schema.values():
            yield from refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from refs(value)


def answered_components(document: dict[str, Any]) -> set[str]:
    """Component schemas reachable from any operation's responses."""
    components = document["components"]["schemas"]
    todo = [
        name
        for item in document["paths"].values()
        for operation in item.values()
        for response in operation.get("responses", {}).values()
        for name in refs(response)
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(refs(components[name]))
    return seen


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root: Path = tmp_path_factory.mktemp("openapi-money")
    app = create_app(base_settings(f"sqlite+aiosqlite:///{root / 'db.sqlite'}", root / "var"))
    return app.openapi()


def every_field(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    components = document["components"]["schemas"]
    for name, schema in components.items():
        yield from properties(schema, name, components)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield where, parameter["name"], parameter.get("schema", {})
            bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
            for body in bodies:
                for media in body.get("content", {}).values():
                    yield from properties(media.get("schema", {}), where, components)


def test_the_list_reads_names_as_intended() -> None:
    assert all(money_named(n) for n in ("strikes", "atm_strike", "max_pain", "last_price"))
    assert all(money_named(n) for n in ("fair_value", "unrealised_pnl", "startingCash", "o_bid"))
    assert not any(money_named(n) for n in ("basis_pct", "probability_of_profit", "pop_vol"))
    assert not any(money_named(n) for n in ("delta", "oi_change", "smile", "expires_in"))
    assert not any(money_named(n) for n in ("spot_key", "last_used_at", "symbol"))


def test_no_money_named_field_is_a_bare_number(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    bare = []
    for owner, name, schema in every_field(document):
        if not money_named(name) or (owner, name) in NUMBERS_BY_DESIGN:
            continue
        kinds = {leaf.get("type") for leaf in leaf_schemas(schema, components)}
        if kinds & NUMBER_TYPES and "string" not in kinds:
            bare.append(f"{owner}.{name}: {sorted(k for k in kinds if k)}")
    assert not bare, "money declared as a bare JSON number:\n" + "\n".join(bare)


def test_answered_money_is_a_decimal_string(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    answered = answered_components(document)
    wrong = []
    checked = 0
    for name in sorted(answered):
        for owner, field, schema in properties(components[name], name, components):
            if not money_named(field) or (owner, field) in NUMBERS_BY_DESIGN:
                continue
            leaves = list(leaf_schemas(schema, components))
            typed = [leaf for leaf in leaves if leaf.get("type") in NUMBER_TYPES | {"string"}]
            if not typed:
                continue  # an object or a boolean named like money (none today)
            checked += 1
            # A time named like money (a session's ``open``) is a date-time string, not money.
            if not all(
                leaf.get("type") == "string" and leaf.get("format") in {"decimal", *TIME_FORMATS}
                for leaf in typed
            ):
                wrong.append(f"{owner}.{field}: {typed}")
    assert checked > 30  # the walk does reach the answers (chains, strategies, positions...)
    assert not wrong, "answered money that is not a WireDecimal string:\n" + "\n".join(wrong)
