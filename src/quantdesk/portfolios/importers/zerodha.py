"""Zerodha Console's tradebook CSV (Reports > Tradebook > Download CSV): ``symbol, isin,
trade_date, exchange, segment, series, trade_type, auction, quantity, price, trade_id,
order_id, order_execution_time``.

Each line is one trade: ``trade_type`` buy or sell; the F&O segment (``FO``) is listed on
NFO.  ``trade_id`` becomes the transaction's external id (a re-import skips what is
already there).  The tradebook has no charges: record them as fees or ``fee`` lines."""

from __future__ import annotations

import csv
import io

from quantdesk.portfolios.importers.common import (
    ParsedRow,
    RowProblems,
    decimal_or_none,
    parse_day,
    validated,
)

REQUIRED = ("symbol", "trade_date", "exchange", "trade_type", "quantity", "price")


def parse_zerodha(text: str, problems: RowProblems) -> list[ParsedRow]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [h.strip().lower().replace(" ", "_") for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.add(1, f"not a Zerodha tradebook: missing {', '.join(missing)}", "header")
        return []
    reader.fieldnames = header
    rows: list[ParsedRow] = []
    for record in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k}
        if not any(values.values()):
            continue
        side = values["trade_type"].lower()
        if side not in ("buy", "sell"):
            problems.add(line, f"trade_type must be buy or sell, not {side!r}", "trade_type")
            continue
        exchange = values["exchange"].upper()
        if values.get("segment", "").upper() in ("FO", "F&O", "NFO"):
            exchange = "NFO"
        try:
            day = parse_day(values["trade_date"])
            quantity = decimal_or_none(values["quantity"])
            price = decimal_or_none(values["price"])
        except ValueError as exc:
            problems.add(line, str(exc))
            continue
        trade_id = values.get("trade_id") or None
        request = validated(
            line,
            {
                "type": side,
                "instrument": f"{exchange}:{values['symbol'].upper()}",
                "date": day,
                "quantity": quantity,
                "price": price,
                "external_id": f"zerodha:{exchange}:{trade_id}" if trade_id else None,
                "note": f"order {values['order_id']}" if values.get("order_id") else "",
            },
            problems,
        )
        if request is not None:
            rows.append(ParsedRow(line, request))
    return rows
