"""Importers: a file in one of the supported formats becomes checked transaction requests,
each with the line (or, for JSON, the activity number) it came from.

Parsing is all or nothing: every line is checked, and the problems come back together
(the first 50) with their line numbers, as one 422 problem; nothing is written.  The
service then checks the rows against the portfolio (``PortfolioService.import_rows``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from quantdesk.platform.exceptions import InvalidInput
from quantdesk.portfolios.importers.common import ParsedRow, RowProblems
from quantdesk.portfolios.importers.generic_csv import parse_generic_csv
from quantdesk.portfolios.importers.ghostfolio import parse_ghostfolio
from quantdesk.portfolios.importers.zerodha import parse_zerodha

__all__ = ["ParsedRow", "TransactionFileFormat", "parse"]


class TransactionFileFormat(StrEnum):
    CSV = "csv"
    ZERODHA = "zerodha"
    GHOSTFOLIO = "ghostfolio"


_PARSERS: dict[TransactionFileFormat, Callable[[str, RowProblems], list[ParsedRow]]] = {
    TransactionFileFormat.CSV: parse_generic_csv,
    TransactionFileFormat.ZERODHA: parse_zerodha,
    TransactionFileFormat.GHOSTFOLIO: parse_ghostfolio,
}


def parse(
    text: str, fmt: TransactionFileFormat, progress: Callable[[int, int], Any] | None = None
) -> list[ParsedRow]:
    problems = RowProblems()
    try:
        rows = _PARSERS[fmt](text, problems)
    except csv.Error as exc:  # not CSV at all (a stray carriage return, a NUL byte)
        raise InvalidInput(f"the file is not readable as CSV: {exc}", field="file") from None
    if progress is not None:
        progress(len(rows), len(rows))
    if problems.items:
        first = problems.items[0]
        raise InvalidInput(
            f"{problems.count} line(s) cannot be imported (first: line {first['line']}: "
            f"{first['message']}); nothing was imported",
            errors=problems.items,
        )
    if not rows:
        raise InvalidInput("the file holds no transactions", field="file")
    return rows
