"""Realised gains by holding period and financial year.  It reports gains; it computes no tax.

* Long term when the lot was held for *more than* the jurisdiction's threshold: sold after
  the day ``threshold`` months after its acquisition (India's listed equity: more than 12
  months, section 2(42A); the US: more than one year, IRS Publication 550).  A lot keeps its
  acquisition date through splits, bonus issues, mergers and transfers.
* Financial years: India's run April to March (``FY2025-26``); the US's are calendar years.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from quantdesk.portfolios.accounting.lots import ClosedLot, Sale
from quantdesk.portfolios.accounting.types import ZERO


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    long_term_months: int
    fy_start_month: int  # 4: April (India); 1: January (US)

    def financial_year(self, day: dt.date) -> str:
        if self.fy_start_month == 1:
            return str(day.year)
        first = day.year if day.month >= self.fy_start_month else day.year - 1
        return f"FY{first}-{(first + 1) % 100:02d}"

    def is_long_term(self, opened: dt.date, closed: dt.date) -> bool:
        return closed > add_months(opened, self.long_term_months)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months (31 January + 1 month: 28/29 February)."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


@dataclass(frozen=True, slots=True)
class GainLine:
    """One consumed lot of one sale, classified."""

    sale: Sale
    lot: ClosedLot
    holding_days: int
    term: str  # "short" | "long"
    financial_year: str


@dataclass(frozen=True, slots=True)
class GainsSummary:
    realized_pnl: Decimal
    short_term: Decimal
    long_term: Decimal
    by_financial_year: dict[str, tuple[Decimal, Decimal]]  # year -> (short, long)
    lines: list[GainLine]


def classify(
    sales: Iterable[Sale],
    jurisdiction: Jurisdiction,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> GainsSummary:
    lines: list[GainLine] = []
    short = long = ZERO
    years: dict[str, tuple[Decimal, Decimal]] = {}
    for sale in sales:
        if (start and sale.date < start) or (end and sale.date > end):
            continue
        for lot in sale.lots:
            term = "long" if jurisdiction.is_long_term(lot.opened, lot.closed) else "short"
            year = jurisdiction.financial_year(lot.closed)
            lines.append(GainLine(sale, lot, (lot.closed - lot.opened).days, term, year))
            s, lo = years.get(year, (ZERO, ZERO))
            if term == "long":
                long += lot.realized_pnl
                years[year] = (s, lo + lot.realized_pnl)
            else:
                short += lot.realized_pnl
                years[year] = (s + lot.realized_pnl, lo)
    return GainsSummary(short + long, short, long, dict(sorted(years.items())), lines)
