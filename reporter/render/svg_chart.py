"""The daily cost chart as inline SVG: one bar per day, days without usage drawn as zero."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from reporter.render.templating import usd
from reporter.report.model import DailyPoint

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 10, 28


def _step(peak: int, ticks: int = 4) -> int:
    """A round tick step (1, 2 or 5 times a power of ten nano-dollars) covering ``peak``."""
    raw = max(1, -(-peak // ticks))
    power = 1
    while power * 10 <= raw:
        power *= 10
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            return power * factor
    return power * 10  # pragma: no cover - the loop always returns


def _labelled(points: Sequence[DailyPoint]) -> list[int]:
    """Indexes of the days whose date is written under the axis."""
    days = len(points)
    if days <= 14:
        return list(range(days))
    if days <= 92:
        return [i for i, p in enumerate(points) if p.date.weekday() == 0]
    if days <= 800:
        return [i for i, p in enumerate(points) if p.date.day == 1]
    return [i for i, p in enumerate(points) if p.date.day == 1 and p.date.month == 1]


def daily_cost(points: Sequence[DailyPoint], places: int = 2) -> Markup:
    """An accessible bar chart of ``points``; every bar's tooltip holds the exact cost."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max((p.cost_nanos for p in points), default=0)
    step = _step(peak) if peak else 250_000_000  # an empty chart still shows $0 to $1
    top = step * max(1, -(-peak // step)) if peak else 4 * step
    slot = plot_w / max(1, len(points))
    bar = max(1.0, slot * 0.8) if len(points) < plot_w else slot
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="chart-title chart-desc">',
    ]
    if points:
        first, last = points[0].date.isoformat(), points[-1].date.isoformat()
        high = max(points, key=lambda p: p.cost_nanos)
        desc = (f"One bar per day from {first} to {last}; highest "
                f"{usd(high.cost_nanos, places)} on {high.date.isoformat()}.")
    else:
        desc = "No days in this period."
    parts.append(f'<title id="chart-title">Daily cost (USD)</title>'
                 f'<desc id="chart-desc">{escape(desc)}</desc>')
    for tick in range(0, top + 1, step):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="grid" stroke="#d9dee7" x1="{LEFT}" x2="{WIDTH - RIGHT}"'
                     f' y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" fill="#5b6576" font-size="10" x="{LEFT - 6}"'
                     f' y="{y + 3:.1f}" text-anchor="end">{escape(usd(tick, 2))}</text>')
    labelled = set(_labelled(points))
    for index, point in enumerate(points):
        x = LEFT + slot * index + (slot - bar) / 2
        h = plot_h * point.cost_nanos / top
        tip = (f"{point.date.isoformat()}: {usd(point.cost_nanos, places)},"
               f" {point.requests:,} requests")
        parts.append(f'<g><title>{escape(tip)}</title>'
                     f'<rect class="hit" fill="transparent" x="{LEFT + slot * index:.2f}" y="{TOP}"'
                     f' width="{slot:.2f}" height="{plot_h}"/>'
                     f'<rect class="bar" fill="#2f62c9" x="{x:.2f}" y="{TOP + plot_h - h:.2f}"'
                     f' width="{bar:.2f}" height="{h:.2f}"/></g>')
        if index in labelled:
            label = point.date.strftime("%b %d" if len(points) <= 92 else "%b %Y")
            parts.append(f'<text class="axis" fill="#5b6576" font-size="10"'
                         f' x="{x + bar / 2:.1f}" y="{HEIGHT - 10}"'
                         f' text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line class="base" stroke="#5b6576" x1="{LEFT}" x2="{WIDTH - RIGHT}"'
                 f' y1="{TOP + plot_h}" y2="{TOP + plot_h}"/></svg>')
    return Markup("".join(parts))
