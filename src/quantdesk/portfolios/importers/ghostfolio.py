"""Ghostfolio's export (Settings > Export): ``{"meta", "accounts", "activities"}``, each
activity ``{accountId, comment, currency, dataSource, date, fee, quantity, symbol, type,
unitPrice}``, so that its users can move over.

* BUY / SELL become buy / sell; DIVIDEND a dividend of ``quantity x unitPrice``; INTEREST
  interest likewise; FEE a fee of ``fee``.  ITEM and LIABILITY (manual valuables and
  debts) have no counterpart and are refused with their number.
* Symbols are Yahoo Finance's: ``.NS`` is NSE, ``.BO`` BSE; a symbol without a suffix is
  taken as NASDAQ when in USD (edit the file for NYSE listings), and a symbol already of
  the form ``EXCHANGE:SYMBOL`` is kept.
* Ghostfolio stores a day as its local midnight in UTC (``2021-09-15T22:00:00.000Z`` for
  16 September in Central Europe): the date is the nearest midnight's.
* Accounts are matched by name (created when missing).  "Lines" are activity numbers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson

from quantdesk.portfolios.importers.common import ParsedRow, RowProblems, validated

_TYPES = {
    "BUY": "buy",
    "SELL": "sell",
    "DIVIDEND": "dividend",
    "INTEREST": "interest",
    "FEE": "fee",
}


def _instrument(symbol: str, currency: str) -> str:
    symbol = symbol.strip().upper()
    if ":" in symbol:
        return symbol
    if symbol.endswith(".NS"):
        return f"NSE:{symbol[:-3]}"
    if symbol.endswith(".BO"):
        return f"BSE:{symbol[:-3]}"
    return f"{'NASDAQ' if currency.upper() == 'USD' else 'NSE'}:{symbol}"


def _day(text: str) -> dt.date:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.date()
    return (moment.astimezone(dt.UTC) + dt.timedelta(hours=12)).date()


def _number(value: Any) -> Decimal:
    # Ghostfolio writes JSON numbers; their decimal text is what the user typed.
    return Decimal(str(value if value is not None else 0))


def parse_ghostfolio(text: str, problems: RowProblems) -> list[ParsedRow]:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        problems.add(exc.lineno, f"not JSON: {exc.msg}", "file")
        return []
    activities = document.get("activities") if isinstance(document, dict) else None
    if not isinstance(activities, list):
        problems.add(1, "not a Ghostfolio export: no activities list", "file")
        return []
    names = {
        a.get("id"): a.get("name") for a in document.get("accounts") or [] if isinstance(a, dict)
    }
    rows: list[ParsedRow] = []
    for number, activity in enumerate(activities, start=1):
        if not isinstance(activity, dict):
            problems.add(number, "an activity must be an object")
            continue
        kind = str(activity.get("type", "")).upper()
        if kind not in _TYPES:
            problems.add(number, f"activity type {kind or '(none)'} has no counterpart", "type")
            continue
        try:
            day = _day(str(activity.get("date", "")))
            quantity = _number(activity.get("quantity"))
            unit = _number(activity.get("unitPrice"))
            fee = _number(activity.get("fee"))
        except (ValueError, ArithmeticError) as exc:
            problems.add(number, f"bad value: {exc}")
            continue
        currency = str(activity.get("currency") or "").upper() or None
        data: dict[str, Any] = {
            "type": _TYPES[kind],
            "date": day,
            "note": activity.get("comment") or "",
        }
        symbol = activity.get("symbol")
        if kind in ("BUY", "SELL", "DIVIDEND"):
            if not symbol:
                problems.add(number, "a symbol is needed", "symbol")
                continue
            data["instrument"] = _instrument(str(symbol), currency or "")
        if kind in ("BUY", "SELL"):
            data.update(quantity=quantity, price=unit, fees=fee)
        elif kind in ("DIVIDEND", "INTEREST"):
            data.update(amount=quantity * unit, fees=fee)
        else:
            data.update(amount=fee or quantity * unit)
        if currency in ("INR", "USD"):
            data["currency"] = currency
        request = validated(number, data, problems)
        if request is not None:
            account = names.get(activity.get("accountId"))
            rows.append(ParsedRow(number, request, str(account) if account else None))
    return rows
