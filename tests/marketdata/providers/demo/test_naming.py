"""Demo instrument names and strikes never use exponent notation (issue 19)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from quantdesk.marketdata.domain import OptionType
from quantdesk.marketdata.providers.demo.universe import (
    UNDERLYINGS,
    option_instrument,
    strike_decimal,
)
from quantdesk.marketdata.schemas import InstrumentOut

NIFTY = next(u for u in UNDERLYINGS if u.symbol == "NIFTY 50")


def test_round_strikes_are_positional_in_strike_symbol_and_name() -> None:
    strike = strike_decimal(21600.0)
    assert str(strike) == "21600"
    option = option_instrument(NIFTY, date(2026, 12, 29), strike, OptionType.CALL, monthly=True)
    assert option.symbol == "NIFTY26DEC21600CE"
    assert option.name == "NIFTY 29 DEC 2026 21600 CE"
    assert InstrumentOut.of(option).model_dump(mode="json")["strike"] == "21600"


def test_a_normalised_strike_still_names_positionally() -> None:
    # A strike already stored as 2.16E+4 (a database loaded before the fix) names the same.
    option = option_instrument(
        NIFTY, date(2026, 12, 8), Decimal("2.16E+4"), OptionType.PUT, monthly=False
    )
    assert option.name == "NIFTY 08 DEC 2026 21600 PE"
    assert option.symbol == "NIFTY26D0821600PE"
    assert InstrumentOut.of(option).model_dump(mode="json")["strike"] == "21600"


def test_half_strikes_keep_their_digit() -> None:
    assert str(strike_decimal(187.5)) == "187.5"
    assert str(strike_decimal(1e5)) == "100000"
