"""The generic CSV (``docs/portfolios.md``): one transaction per line, the request's field
names as columns (``date`` and ``type`` required), ``account`` and ``to_account`` by name.
What ``GET .../export?format=csv`` writes, so an export imports back."""

from __future__ import annotations

import csv
import io
from typing import Any

from quantdesk.portfolios.importers.common import (
    ParsedRow,
    RowProblems,
    decimal_or_none,
    parse_day,
    validated,
)

DECIMAL_COLUMNS = ("quantity", "price", "fees", "amount", "tax", "ratio", "fx_rate")
TEXT_COLUMNS = ("type", "instrument", "currency", "new_instrument", "external_id", "note")


def parse_generic_csv(text: str, problems: RowProblems) -> list[ParsedRow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = {"date", "type"} - set(header)
    if missing:
        problems.add(1, f"the header needs the columns {', '.join(sorted(missing))}", "header")
        return []
    reader.fieldnames = header
    rows: list[ParsedRow] = []
    for record in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k}
        if not any(values.values()):
            continue
        data: dict[str, Any] = {}
        try:
            data["date"] = parse_day(values.get("date", ""))
            if values.get("settlement_date"):
                data["settlement_date"] = parse_day(values["settlement_date"])
            for column in DECIMAL_COLUMNS:
                data[column] = decimal_or_none(values.get(column))
        except ValueError as exc:
            problems.add(line, str(exc))
            continue
        for column in TEXT_COLUMNS:
            if values.get(column):
                data[column] = values[column].lower() if column == "type" else values[column]
        if data.get("currency"):
            data["currency"] = str(data["currency"]).upper()
        request = validated(line, data, problems)
        if request is not None:
            rows.append(
                ParsedRow(
                    line,
                    request,
                    values.get("account") or None,
                    values.get("to_account") or None,
                )
            )
    return rows
