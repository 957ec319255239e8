"""Inline SVG charts for ``report.html``: plain markup, no scripts, fonts or network, so the file stands alone.

Every chart is an ``<svg class="chart chart-<kind>">`` with a ``<title>``; texts are escaped here, and the result is
markup, which the page inserts as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from ._stats import percentiles

WIDTH = 720
ROW = 28  # px per variant row
LEFT = 180  # px for the labels
RIGHT = 70
_SHOWN = (0, 25, 50, 75, 95, 99, 100)  # the percentiles a distribution's box and whiskers are drawn from
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _svg(kind: str, title: str, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def rate_bars(
    title: str,
    items: Sequence[tuple[str, float, float, float]],
    target: float | None = None,
    colours: Sequence[str] | None = None,
) -> str:
    """One bar per (label, rate, low, high), 0..100%, with its interval as a whisker and an optional target line;
    ``colours`` (one per item) says what each bar means, e.g. its gate's verdict; default: a palette by position."""
    plot = WIDTH - LEFT - RIGHT
    top = 24
    height = top + ROW * len(items) + 30

    def x(v: float) -> float:
        return LEFT + plot * v

    body = [_text(LEFT, 14, title, extra=' font-weight="bold"')]
    for i, (label, value, low, high) in enumerate(items):
        y = top + i * ROW
        body.append(_text(LEFT - 6, y + 17, label, "end"))
        if math.isnan(value):
            body.append(_text(LEFT + 4, y + 17, "no data", extra=' fill="#777"'))
            continue
        body.append(
            f'<rect class="bar" x="{LEFT}" y="{y + 5}" width="{plot * value:.1f}" height="{ROW - 10}" '
            f'fill="{colours[i] if colours else PALETTE[i % len(PALETTE)]}" opacity="0.75"/>'
        )
        mid = y + ROW / 2
        body.append(
            f'<path class="interval" d="M{x(low):.1f},{mid:.1f}H{x(high):.1f}M{x(low):.1f},{mid - 6:.1f}v12'
            f'M{x(high):.1f},{mid - 6:.1f}v12" stroke="#000" fill="none"/>'
        )
        body.append(_text(WIDTH - RIGHT + 4, y + 17, f"{100 * value:.1f}%"))
    axis = top + ROW * len(items)
    body.append(f'<path d="M{LEFT},{axis}H{LEFT + plot}" stroke="#999"/>')
    for tick in (0, 0.25, 0.5, 0.75, 1):
        body.append(_text(x(tick), axis + 16, f"{100 * tick:.0f}%", "middle"))
    if target is not None:
        body.append(
            f'<path class="target" d="M{x(target):.1f},{top - 4}V{axis}" stroke="#000" stroke-dasharray="4 3"/>'
        )
        body.append(_text(x(target), top - 6, f"target {100 * target:g}%", "end", ' font-size="10"'))
    return _svg("rates", title, height, body)


def notice(title: str, text: str) -> str:
    """A chart's place taken by a sentence, where the chart would show nothing (e.g. every cost 0)."""
    body = [_text(LEFT, 14, title, extra=' font-weight="bold"'), _text(LEFT, 40, text, extra=' class="notice"')]
    return _svg("notice", title, 56, body)


def scatter(title: str, points: Sequence[tuple[str, float, float]], x_label: str, y_label: str) -> str:
    """Labelled points (label, x, y); y is a rate in 0..1, x anything non-negative (e.g. USD per 1k calls)."""
    left, right, top, bottom = 60, 200, 30, 40
    height = 320
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    known = [p for p in points if not (math.isnan(p[1]) or math.isnan(p[2]))]
    x_max = max((p[1] for p in known), default=0.0) or 1.0  # all free (or none): still a usable axis

    def px(v: float) -> float:
        return left + plot_w * v / x_max

    def py(v: float) -> float:
        return top + plot_h * (1 - v)

    body = [
        _text(left, 16, title, extra=' font-weight="bold"'),
        f'<path d="M{left},{top}V{top + plot_h}H{left + plot_w}" stroke="#999" fill="none"/>',
        _text(left + plot_w / 2, height - 6, x_label, "middle"),
        _text(14, top + plot_h / 2, y_label, "middle", f' transform="rotate(-90 14 {top + plot_h / 2:.1f})"'),
    ]
    for tick in (0, 0.5, 1):
        body.append(_text(left - 6, py(tick) + 4, f"{100 * tick:.0f}%", "end"))
        body.append(_text(px(tick * x_max), top + plot_h + 16, f"{tick * x_max:.4g}", "middle"))
    for i, (label, xv, yv) in enumerate(known):
        colour = PALETTE[i % len(PALETTE)]
        body.append(f'<circle class="point" cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="6" fill="{colour}"/>')
        body.append(_text(px(xv) + 9, py(yv) + 4, label))
    missing = [p[0] for p in points if p not in known]
    if missing:
        body.append(_text(left + plot_w + 10, top + 10, "not plotted (unpriced or no data):", extra=' fill="#777"'))
        body += [_text(left + plot_w + 10, top + 26 + 14 * i, m, extra=' fill="#777"') for i, m in enumerate(missing)]
    return _svg("scatter", title, height, body)


def distributions(title: str, groups: Sequence[tuple[str, Sequence[float]]], unit: str) -> str:
    """A box plot per (label, values): whiskers min–max, box p25–p75, median line, ticks at p95 and p99."""
    plot = WIDTH - LEFT - RIGHT
    top = 24
    height = top + ROW * len(groups) + 30
    finite = [v for _, values in groups for v in values if not math.isnan(v)]
    high = max(finite, default=0.0) or 1.0

    def x(v: float) -> float:
        return LEFT + plot * v / high

    body = [_text(LEFT, 14, title, extra=' font-weight="bold"')]
    for i, (label, values) in enumerate(groups):
        y = top + i * ROW
        mid = y + ROW / 2
        body.append(_text(LEFT - 6, y + 17, label, "end"))
        q = dict(zip(_SHOWN, percentiles(values, _SHOWN), strict=True))
        if math.isnan(q[50]):
            body.append(_text(LEFT + 4, y + 17, "no data", extra=' fill="#777"'))
            continue
        colour = PALETTE[i % len(PALETTE)]
        body.append(f'<path d="M{x(q[0]):.1f},{mid:.1f}H{x(q[100]):.1f}" stroke="#555"/>')
        body.append(
            f'<rect class="box" x="{x(q[25]):.1f}" y="{y + 6}" width="{max(x(q[75]) - x(q[25]), 1):.1f}" '
            f'height="{ROW - 12}" fill="{colour}" opacity="0.6" stroke="#333"/>'
        )
        body.append(f'<path class="median" d="M{x(q[50]):.1f},{y + 4}v{ROW - 8}" stroke="#000" stroke-width="2"/>')
        for p, dash in ((95, "3 2"), (99, "1 2")):
            body.append(f'<path d="M{x(q[p]):.1f},{y + 2}v{ROW - 4}" stroke="#000" stroke-dasharray="{dash}"/>')
        body.append(_text(WIDTH - RIGHT + 4, y + 17, f"p50 {q[50]:.0f}"))
    axis = top + ROW * len(groups)
    body.append(f'<path d="M{LEFT},{axis}H{LEFT + plot}" stroke="#999"/>')
    for tick in (0, 0.5, 1):
        body.append(_text(x(tick * high), axis + 16, f"{tick * high:.0f} {unit}", "middle"))
    return _svg("distribution", title, height, body)
