"""Pictures of risk as SVG: the scenario heat map of an option book, the efficient frontier.

Hand-written for the reason :mod:`quantdesk.strategies.payoff_chart` is: each is one small,
dependency-free picture (rectangles, a polyline, circles and text), where a plotting library
and its rendering backend would be the largest dependency of the service.  Every number is
formatted here and every text escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

CELL_W, CELL_H = 22, 11
LEFT, TOP, GAP = 70, 44, 36
LOSS, PROFIT, FLAT = (214, 39, 40), (44, 160, 44), (247, 247, 247)


def _colour(value: float, loss: float, profit: float) -> str:
    """Diverging red (loss) - white - green (profit): linear in P&L, losses up to the worst
    loss and profits up to the best profit (each side on its own scale, so a small upside
    still shows beside a large downside)."""
    scale = profit if value > 0 else loss
    share = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    end = PROFIT if share > 0 else LOSS
    t = abs(share)
    r, g, b = (round(FLAT[k] + (end[k] - FLAT[k]) * t) for k in range(3))
    return f"#{r:02x}{g:02x}{b:02x}"


def _pct(value: float) -> str:
    return f"{value * 100:+.0f}%"


def heatmap_svg(
    spot_moves: Sequence[float],
    iv_changes: Sequence[float],
    days: Sequence[float],
    pnl: Sequence[Sequence[Sequence[float]]],
    worst: tuple[float, float, float, float],
    title: str,
) -> str:
    """One panel per horizon: rows are spot moves (up is up), columns IV changes."""
    n_s, n_v = len(spot_moves), len(iv_changes)
    panel_w = n_v * CELL_W
    width = LEFT + len(days) * (panel_w + GAP) + 20
    height = TOP + n_s * CELL_H + 70
    values = [v for plane in pnl for row in plane for v in row]
    loss = max((-v for v in values if v < 0), default=0.0)
    profit = max((v for v in values if v > 0), default=0.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    label_every_s = max(1, n_s // 8)
    for i in range(0, n_s, label_every_s):
        y = TOP + (n_s - 1 - i) * CELL_H + CELL_H - 2
        parts.append(f'<text x="{LEFT - 6}" y="{y}" text-anchor="end">{_pct(spot_moves[i])}</text>')
    parts.append(
        f'<text x="14" y="{TOP + n_s * CELL_H / 2:.0f}" transform="rotate(-90 14 '
        f'{TOP + n_s * CELL_H / 2:.0f})" text-anchor="middle">spot move</text>'
    )
    label_every_v = max(1, n_v // 6)
    worst_pnl, worst_s, worst_v, worst_d = worst
    for k, day in enumerate(days):
        x0 = LEFT + k * (panel_w + GAP)
        parts.append(
            f'<text x="{x0 + panel_w / 2:.0f}" y="{TOP - 8}" text-anchor="middle" '
            f'font-weight="bold">+{day:g} days</text>'
        )
        for i in range(n_s):
            y = TOP + (n_s - 1 - i) * CELL_H
            for j in range(n_v):
                value = pnl[k][i][j]
                parts.append(
                    f'<rect x="{x0 + j * CELL_W}" y="{y}" width="{CELL_W}" height="{CELL_H}" '
                    f'fill="{_colour(value, loss, profit)}"><title>spot {_pct(spot_moves[i])}, IV '
                    f"{_pct(iv_changes[j])}: {value:,.2f}</title></rect>"
                )
                if (day, spot_moves[i], iv_changes[j]) == (worst_d, worst_s, worst_v):
                    parts.append(
                        f'<rect x="{x0 + j * CELL_W}" y="{y}" width="{CELL_W}" '
                        f'height="{CELL_H}" fill="none" stroke="black" stroke-width="2"/>'
                    )
        for j in range(0, n_v, label_every_v):
            parts.append(
                f'<text x="{x0 + j * CELL_W + CELL_W / 2:.0f}" y="{TOP + n_s * CELL_H + 14}" '
                f'text-anchor="middle">{_pct(iv_changes[j])}</text>'
            )
        parts.append(
            f'<text x="{x0 + panel_w / 2:.0f}" y="{TOP + n_s * CELL_H + 28}" '
            'text-anchor="middle">IV change (relative)</text>'
        )
    legend_y = height - 14
    parts.extend(
        [
            f'<rect x="{LEFT}" y="{legend_y - 9}" width="12" height="10" '
            f'fill="{_colour(-loss, loss, profit)}"/>',
            f'<text x="{LEFT + 16}" y="{legend_y}">loss {-loss:,.0f}</text>',
            f'<rect x="{LEFT + 120}" y="{legend_y - 9}" width="12" height="10" '
            f'fill="{_colour(profit, loss, profit)}"/>',
            f'<text x="{LEFT + 136}" y="{legend_y}">profit {profit:,.0f}</text>',
            f'<text x="{LEFT + 250}" y="{legend_y}">▢ worst {worst_pnl:,.2f} at spot '
            f"{_pct(worst_s)}, IV {_pct(worst_v)}, +{worst_d:g} days</text>",
            "</svg>",
        ]
    )
    return "\n".join(parts)


WIDTH, HEIGHT = 720, 460
M_LEFT, M_RIGHT, M_TOP, M_BOTTOM = 70, 20, 40, 50


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    raw = (hi - lo) / max(count - 1, 1) or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def frontier_svg(
    frontier: Sequence[tuple[float, float]],
    assets: Mapping[str, tuple[float, float]],
    chosen: tuple[float, float],
    chosen_label: str,
    risk_free_rate: float,
) -> str:
    """Volatility (x) against expected return (y): the frontier, each asset, the choice."""
    points = [*frontier, *assets.values(), chosen]
    xs = [p[0] for p in points] + [0.0]
    ys = [p[1] for p in points] + [min(0.0, risk_free_rate)]
    x_lo, x_hi = 0.0, max(xs) * 1.08 or 1.0
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.08 or 0.01
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def px(x: float) -> float:
        return M_LEFT + (x - x_lo) / (x_hi - x_lo) * (WIDTH - M_LEFT - M_RIGHT)

    def py(y: float) -> float:
        return HEIGHT - M_BOTTOM - (y - y_lo) / (y_hi - y_lo) * (HEIGHT - M_TOP - M_BOTTOM)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{M_LEFT}" y="22" font-size="14" font-weight="bold">Efficient frontier</text>',
        f'<line x1="{M_LEFT}" x2="{M_LEFT}" y1="{M_TOP}" y2="{HEIGHT - M_BOTTOM}" stroke="#888"/>',
        f'<line x1="{M_LEFT}" x2="{WIDTH - M_RIGHT}" y1="{HEIGHT - M_BOTTOM}" '
        f'y2="{HEIGHT - M_BOTTOM}" stroke="#888"/>',
    ]
    for t in _ticks(y_lo, y_hi):
        parts.append(
            f'<text x="{M_LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t * 100:.0f}%</text>'
        )
    for t in _ticks(x_lo, x_hi):
        parts.append(
            f'<text x="{px(t):.1f}" y="{HEIGHT - M_BOTTOM + 16}" '
            f'text-anchor="middle">{t * 100:.0f}%</text>'
        )
    parts.append(
        f'<text x="{(M_LEFT + WIDTH - M_RIGHT) / 2:.0f}" y="{HEIGHT - 12}" '
        'text-anchor="middle">volatility (annual)</text>'
    )
    parts.append(
        f'<text x="16" y="{HEIGHT / 2:.0f}" transform="rotate(-90 16 {HEIGHT / 2:.0f})" '
        'text-anchor="middle">expected return (annual)</text>'
    )
    if frontier:
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in frontier)
        parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{line}"/>')
    for name, (x, y) in assets.items():
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="#7f7f7f"/>')
        parts.append(
            f'<text x="{px(x) + 6:.1f}" y="{py(y) + 4:.1f}" fill="#555">{escape(name)}</text>'
        )
    cx, cy = px(chosen[0]), py(chosen[1])
    parts.append(
        f'<path d="M {cx:.1f} {cy - 8:.1f} L {cx + 7:.1f} {cy + 5:.1f} L {cx - 7:.1f} '
        f'{cy + 5:.1f} Z" fill="#d62728"/>'
    )
    parts.append(
        f'<text x="{cx + 10:.1f}" y="{cy - 6:.1f}" fill="#d62728" '
        f'font-weight="bold">{escape(chosen_label)}</text>'
    )
    parts.extend(
        [
            f'<text x="{WIDTH - 250}" y="22" fill="#1f77b4">— frontier</text>',
            f'<text x="{WIDTH - 170}" y="22" fill="#7f7f7f">● assets</text>',
            f'<text x="{WIDTH - 100}" y="22" fill="#d62728">▲ chosen</text>',
            "</svg>",
        ]
    )
    return "\n".join(parts)
