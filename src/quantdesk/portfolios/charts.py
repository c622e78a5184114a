"""Pictures and files of a portfolio: the value/TWR chart and the allocation chart as SVG,
the gains report as CSV.

Hand-written SVG, as the payoff chart (``strategies/payoff_chart.py``) and for its reason:
two small dependency-free pictures do not justify a plotting library.  Every number is
formatted here and every text is escaped.
"""

from __future__ import annotations

import csv
import io
import math
from html import escape

from quantdesk.portfolios import schemas

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 70, 36, 44
COLOURS = (
    "#2563eb",
    "#16a34a",
    "#dc2626",
    "#d97706",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#475569",
    "#ea580c",
)


def _floats(values: list[str | None]) -> list[float]:
    return [float(v) if v is not None else math.nan for v in values]


def _points(xs: list[float], ys: list[float], lo: float, hi: float) -> str:
    span = hi - lo or 1.0
    out = []
    for x, y in zip(xs, ys, strict=True):
        if math.isfinite(y):
            py = TOP + (HEIGHT - TOP - BOTTOM) * (1 - (y - lo) / span)
            out.append(f"{x:.1f},{py:.1f}")
    return " ".join(out)


def value_svg(series: schemas.SeriesOut) -> str:
    """Market value (left axis) and cumulative TWR (right axis) over the days."""
    value = _floats(series.market_value)
    twr = [100 * v for v in _floats(series.cumulative_twr)]
    n = len(value)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14">Value ({escape(series.currency)}) and '
        "time-weighted return (%)</text>",
    ]
    if n:
        xs = [LEFT + (WIDTH - LEFT - RIGHT) * (i / max(n - 1, 1)) for i in range(n)]
        finite = [v for v in value if math.isfinite(v)] or [0.0]
        v_lo, v_hi = min(finite), max(finite)
        t_finite = [v for v in twr if math.isfinite(v)] or [0.0]
        t_lo, t_hi = min(t_finite), max(t_finite)
        parts.append(
            f'<polyline fill="none" stroke="{COLOURS[0]}" stroke-width="2" '
            f'points="{_points(xs, value, v_lo, v_hi)}"/>'
        )
        parts.append(
            f'<polyline fill="none" stroke="{COLOURS[1]}" stroke-width="2" '
            f'stroke-dasharray="5,3" points="{_points(xs, twr, t_lo, t_hi)}"/>'
        )
        for frac, label_v, label_t in (
            (0.0, v_hi, t_hi),
            (1.0, v_lo, t_lo),
        ):
            y = TOP + (HEIGHT - TOP - BOTTOM) * frac
            parts.append(
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label_v:,.0f}</text>'
            )
            parts.append(f'<text x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">{label_t:.1f}%</text>')
        first, last = series.dates[0].isoformat(), series.dates[-1].isoformat()
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 16}">{escape(first)}</text>')
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 16}" text-anchor="end">{escape(last)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#999"/></svg>'
    )
    return "".join(parts)


def allocation_svg(allocation: schemas.PortfolioAllocationOut, by: str) -> str:
    """Horizontal bars of one allocation's weights."""
    slices: list[schemas.PortfolioAllocationSlice] = getattr(allocation, by)
    row = 28
    height = TOP + row * max(len(slices), 1) + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14">Allocation by {escape(by.replace("_", " "))} '
        f"({escape(allocation.currency)})</text>",
    ]
    bar_width = WIDTH - 260
    for i, item in enumerate(slices):
        y = TOP + i * row
        w = max(0.0, float(item.weight)) * bar_width
        parts.append(f'<text x="10" y="{y + 16}">{escape(item.key)}</text>')
        parts.append(
            f'<rect x="150" y="{y + 4}" width="{w:.1f}" height="{row - 10}" '
            f'fill="{COLOURS[i % len(COLOURS)]}"/>'
        )
        parts.append(
            f'<text x="{150 + w + 6:.1f}" y="{y + 16}">{float(item.weight) * 100:.1f}%</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


GAINS_COLUMNS = (
    "financial_year",
    "term",
    "date",
    "instrument",
    "account_id",
    "transaction_id",
    "lot_id",
    "opened",
    "holding_days",
    "quantity",
    "proceeds",
    "cost",
    "realized_pnl",
)


def gains_csv(report: schemas.GainsOut) -> str:
    """One line per consumed lot of every sale."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(GAINS_COLUMNS)
    for sale in report.sales:
        for lot in sale.lots:
            writer.writerow(
                [
                    lot.financial_year,
                    lot.term,
                    sale.date.isoformat(),
                    sale.instrument,
                    sale.account_id,
                    sale.transaction_id,
                    lot.lot_id,
                    lot.opened.isoformat(),
                    lot.holding_days,
                    format(lot.quantity, "f"),
                    format(lot.proceeds, "f"),
                    format(lot.cost, "f"),
                    format(lot.realized_pnl, "f"),
                ]
            )
    return out.getvalue()
