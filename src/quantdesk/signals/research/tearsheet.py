"""A backtest's tear sheet as SVG: the equity curve with its entries and exits, the
drawdown under it, and the headline measures.

Hand-written for the reason :mod:`quantdesk.strategies.payoff_chart` gives: two polylines,
some markers and text, where a plotting library and its rendering backend would be the
largest dependency of the service.  Numbers are formatted here and text is escaped.  The
same function draws a signal overlay (probabilities under the price) for a trained model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape

WIDTH, TOP_H, BOTTOM_H = 760, 300, 120
LEFT, RIGHT, TOP, GAP = 78, 16, 52, 34


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> tuple[float, float]:
    span = hi - lo or 1.0
    factor = (out_hi - out_lo) / span
    return factor, out_lo - lo * factor


def _points(xs: Sequence[float], ys: Sequence[float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def _date(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d")


def _panel(
    ts: Sequence[int], values: Sequence[float], y0: float, height: float, colour: str,
    label: str, fmt: str,
) -> tuple[list[str], float, float, float, float]:  # fmt: skip
    lo, hi = min(values), max(values)
    if lo == hi:
        lo, hi = lo - 1.0, hi + 1.0
    fx, cx = _scale(float(ts[0]), float(ts[-1]), LEFT, WIDTH - RIGHT)
    fy, cy = _scale(lo, hi, y0 + height, y0)
    xs = [t * fx + cx for t in ts]
    ys = [v * fy + cy for v in values]
    parts = [
        f'<rect x="{LEFT}" y="{y0}" width="{WIDTH - LEFT - RIGHT}" height="{height}" '
        'fill="none" stroke="#ccc"/>',
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{_points(xs, ys)}"/>',
        f'<text x="{LEFT - 6}" y="{y0 + 10}" text-anchor="end">{escape(fmt.format(hi))}</text>',
        f'<text x="{LEFT - 6}" y="{y0 + height}" text-anchor="end">{escape(fmt.format(lo))}</text>',
        f'<text x="12" y="{y0 + height / 2:.0f}" transform="rotate(-90 12 {y0 + height / 2:.0f})"'
        f' text-anchor="middle">{escape(label)}</text>',
    ]
    return parts, fx, cx, fy, cy


def tearsheet_svg(
    title: str,
    ts: Sequence[int],
    equity: Sequence[float],
    *,
    entries: Sequence[tuple[int, str]] = (),
    measures: Mapping[str, float | None] | None = None,
    lower: Sequence[float] | None = None,
    lower_label: str = "drawdown",
    lower_format: str = "{:.1%}",
    upper_label: str = "equity",
) -> str:
    """``entries``: (bar time, ``buy`` | ``sell``) markers on the upper curve; ``lower``
    replaces the drawdown panel (a signal's probability, for an overlay)."""
    if len(ts) < 2:
        raise ValueError("a tear sheet needs at least two points")
    if lower is None:
        peak, drawdown = float("-inf"), []
        for value in equity:
            peak = max(peak, value)
            drawdown.append(value / peak - 1.0 if peak > 0 else 0.0)
        lower = drawdown
    height = TOP + TOP_H + GAP + BOTTOM_H + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="10">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if measures:
        shown = [
            f"{name.replace('_', ' ')} {value:.3g}"
            for name, value in measures.items()
            if value is not None
        ][:6]
        parts.append(f'<text x="{LEFT}" y="36">{escape("  ·  ".join(shown))}</text>')
    upper, fx, cx, fy, cy = _panel(ts, equity, TOP, TOP_H, "#1f77b4", upper_label, "{:,.0f}")
    parts += upper
    by_ts = dict(zip(ts, equity, strict=True))
    for at, side in entries:
        if at not in by_ts:
            continue
        x, y = at * fx + cx, by_ts[at] * fy + cy
        # A buy is a green triangle under the curve, a sell a red one over it.
        d, colour = (1, "#2ca02c") if side == "buy" else (-1, "#d62728")
        shape = f"{x:.1f},{y + 7 * d:.1f} {x - 4:.1f},{y + 14 * d:.1f} {x + 4:.1f},{y + 14 * d:.1f}"
        parts.append(f'<polygon points="{shape}" fill="{colour}"/>')
    bottom, *_ = _panel(ts, lower, TOP + TOP_H + GAP, BOTTOM_H, "#d62728", lower_label,
                        lower_format)  # fmt: skip
    parts += bottom
    axis_y = TOP + TOP_H + GAP + BOTTOM_H + 16
    for at, anchor in ((ts[0], "start"), (ts[len(ts) // 2], "middle"), (ts[-1], "end")):
        parts.append(
            f'<text x="{at * fx + cx:.1f}" y="{axis_y}" text-anchor="{anchor}">{_date(at)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
