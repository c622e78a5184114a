"""Files that are not CSV at all are bad input (422), never a server error: found by
schemathesis, a body with a bare carriage return made the csv module raise."""

from __future__ import annotations

import pytest

from quantdesk.platform.exceptions import InvalidInput
from quantdesk.portfolios.importers import TransactionFileFormat, parse


@pytest.mark.parametrize("fmt", [TransactionFileFormat.CSV, TransactionFileFormat.ZERODHA])
@pytest.mark.parametrize("text", ["\u00a5+7Q\u00c6\x13\u00b0\u00ecY\r2", "a,b\rc\x00d\n"])
def test_text_that_is_not_csv_is_invalid_input(text: str, fmt: TransactionFileFormat) -> None:
    with pytest.raises(InvalidInput):
        parse(text, fmt)


def test_lines_may_end_in_carriage_returns() -> None:
    rows = parse(
        "date,type,instrument,quantity,price\r\n2026-01-02,buy,NSE:INFY,10,1500\r\n",
        TransactionFileFormat.CSV,
    )
    assert len(rows) == 1
