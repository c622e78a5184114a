"""What every importer shares: the parsed row, the problem list, field parsing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from quantdesk.portfolios.schemas import TransactionIn

MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    request: TransactionIn
    account_name: str | None = None
    to_account_name: str | None = None


@dataclass(slots=True)
class RowProblems:
    items: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, message: str, field_name: str | None = None) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append({"line": line, "field": field_name, "message": message})


def decimal_or_none(text: str | None) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def parse_day(text: str) -> dt.date:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def validated(line: int, data: dict[str, Any], problems: RowProblems) -> TransactionIn | None:
    """``data`` as a request, or None with its problems recorded against ``line``."""
    try:
        return TransactionIn.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or None
            problems.add(line, str(error["msg"]), where)
        return None
