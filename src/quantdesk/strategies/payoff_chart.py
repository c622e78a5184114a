"""A payoff diagram as SVG: P/L at expiry and today over the underlying's price.

Hand-written because it is one small, dependency-free picture: a plotting library (and its
fonts and rendering backend) would be the largest dependency of the service for ~80 lines of
coordinates.  Every number is formatted by us and every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 720, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 20, 36, 44


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> tuple[float, float]:
    span = hi - lo or 1.0
    factor = (out_hi - out_lo) / span
    return factor, out_lo - lo * factor


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) inside ``[lo, hi]``."""
    raw = (hi - lo) / max(count - 1, 1) or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _polyline(xs: Sequence[float], ys: Sequence[float], colour: str, dash: str = "") -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    dashing = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dashing} points="{points}"/>'


def payoff_svg(
    grid: Sequence[float],
    expiry_pnl: Sequence[float],
    today_pnl: Sequence[float],
    breakevens: Sequence[float],
    spot: float,
    title: str,
) -> str:
    x_lo, x_hi = min(grid), max(grid)
    values = [*expiry_pnl, *today_pnl, 0.0]
    y_lo, y_hi = min(values), max(values)
    pad = (y_hi - y_lo) * 0.08 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    fx, cx = _scale(x_lo, x_hi, MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    fy, cy = _scale(y_lo, y_hi, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP)
    xs = [fx * x + cx for x in grid]
    zero_y = cy
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{MARGIN_LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{zero_y:.1f}" '
        f'y2="{zero_y:.1f}" stroke="#888"/>',
    ]
    for tick in _ticks(y_lo, y_hi):
        y = fy * tick + cy
        parts.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,.0f}</text>'
        )
    for tick in _ticks(x_lo, x_hi):
        x = fx * tick + cx
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
            f'text-anchor="middle">{tick:,.6g}</text>'
        )
    spot_x = fx * spot + cx
    parts.append(
        f'<line x1="{spot_x:.1f}" x2="{spot_x:.1f}" y1="{MARGIN_TOP}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#1f77b4" stroke-dasharray="2 3"/>'
    )
    for level in breakevens:
        if x_lo <= level <= x_hi:
            bx = fx * level + cx
            parts.append(f'<circle cx="{bx:.1f}" cy="{zero_y:.1f}" r="4" fill="#d62728"/>')
            parts.append(
                f'<text x="{bx:.1f}" y="{zero_y - 8:.1f}" text-anchor="middle" '
                f'fill="#d62728">{level:,.2f}</text>'
            )
    parts.append(_polyline(xs, [fy * v + cy for v in expiry_pnl], "#2ca02c"))
    parts.append(_polyline(xs, [fy * v + cy for v in today_pnl], "#ff7f0e", "6 4"))
    legend_y = HEIGHT - 10
    parts.extend(
        [
            f'<text x="{MARGIN_LEFT}" y="{legend_y}" fill="#2ca02c">— P/L at expiry</text>',
            f'<text x="{MARGIN_LEFT + 130}" y="{legend_y}" fill="#ff7f0e">- - P/L today</text>',
            f'<text x="{MARGIN_LEFT + 240}" y="{legend_y}" fill="#1f77b4">┆ spot</text>',
            f'<text x="{MARGIN_LEFT + 300}" y="{legend_y}" fill="#d62728">● breakeven</text>',
            "</svg>",
        ]
    )
    return "\n".join(parts)
