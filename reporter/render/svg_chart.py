"""The daily cost chart as inline SVG, and the axis both charts share (round ticks, dates)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

from reporter import money
from reporter.render.templating import usd
from reporter.report import readable
from reporter.report.model import DailyPoint

WIDTH, HEIGHT = 720, 220
#: the chart a phone shows (320 to 640 px wide): drawn 360 wide, so its labels stay readable
NARROW = 360
RIGHT, TOP, BOTTOM = 8, 10, 28
FONT = 10  # px, the axis labels
#: an axis label's width per character, in font sizes (digits and letters of a sans-serif)
CHAR_EM = 0.62
#: the axis of a period with no cost: $0 to $1
EMPTY_PEAK = money.NANOS_PER_USD


def ticks(peak: int, most: int = 4) -> list[int]:
    """Round ticks in nano-dollars from 0 up to the first at or above ``peak``: the step is
    1, 2 or 5 times a power of ten, and there are at most ``most`` steps.

    >>> [t / 1e9 for t in ticks(2_278_049_130)]
    [0.0, 1.0, 2.0, 3.0]
    """
    peak = max(peak, 1) if peak else EMPTY_PEAK
    raw = -(-peak // most)
    power = 1
    while power * 10 <= raw:
        power *= 10
    step = next(power * f for f in (1, 2, 5, 10) if power * f >= raw)
    top = step * -(-peak // step)
    return list(range(0, top + 1, step))


def tick_labels(values: Sequence[int]) -> list[str]:
    """``$`` on every tick, all with the same decimals: none from a step of $1 up
    (``$0 $1 $2 $3``), else as many as the step needs (``$0.00 $0.05 $0.10``)."""
    step = values[1] - values[0] if len(values) > 1 else money.NANOS_PER_USD
    places = 0 if step % money.NANOS_PER_USD == 0 else money.places_needed([step])
    return [usd(value, places) for value in values]


def label_width(text: str, font: float = FONT) -> float:
    """About how wide ``text`` is drawn at ``font`` pixels."""
    return len(text) * font * CHAR_EM


def day_label(day: date, days: int) -> str:
    """A date under the axis: ``Nov 16`` for periods up to a quarter, else ``Nov 2026``."""
    return f"{day:%b} {day.day}" if days <= 92 else f"{day:%b %Y}"


def labelled(points: Sequence[DailyPoint], slot: float, font: float = FONT) -> list[int]:
    """Indexes of the days whose date is written under a bar ``slot`` wide: every day when
    the labels fit, else every other day, Mondays, the first of each month, of each quarter,
    or of each year, whichever is the first that leaves room between labels."""
    days = len(points)
    if not days:
        return []
    room = max(label_width(day_label(p.date, days), font) for p in points) + font
    every = room / slot  # days one label needs
    if every <= 1:
        return list(range(days))
    if days <= 62:  # a week or a month: from its first day, every so many days
        return list(range(0, days, math.ceil(every)))
    for span in (7, 14, 31, 92, 366):
        if every <= span:
            return [i for i, p in enumerate(points) if _marks(p.date, span)]
    return [i for i, p in enumerate(points) if _marks(p.date, 0)]


def _marks(day: date, span: int) -> bool:
    """Whether ``day`` carries a label when one label fits in ``span`` days."""
    if span == 7:
        return day.weekday() == 0
    if span == 14:
        return day.weekday() == 0 and day.toordinal() // 7 % 2 == 0
    if span == 31:
        return day.day == 1
    if span == 92:
        return day.day == 1 and day.month % 3 == 1
    if span == 366:
        return day.day == 1 and day.month == 1
    return day.day == 1 and day.month == 1 and day.year % 5 == 0


def daily_cost(points: Sequence[DailyPoint], places: int = 2, *,
               narrow: bool = False) -> Markup:
    """An accessible bar chart of ``points``; every bar's tooltip holds its cost. ``narrow``:
    the phone's chart, 360 wide (the page shows one of the two)."""
    width = NARROW if narrow else WIDTH
    kind = "chart-narrow" if narrow else "chart-wide"
    ids = "chart-n" if narrow else "chart"
    peak = max((p.cost_nanos for p in points), default=0)
    axis = ticks(peak)
    labels = tick_labels(axis)
    left = round(max(label_width(text) for text in labels) + 12)
    top = axis[-1]
    plot_w, plot_h = width - left - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(points))
    bar = max(1.0, slot * 0.8) if len(points) < plot_w else slot
    parts = [
        f'<svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" role="img"'
        f' aria-labelledby="{ids}-title {ids}-desc">',
    ]
    if points:
        first, last = points[0].date.isoformat(), points[-1].date.isoformat()
        high = max(points, key=lambda p: p.cost_nanos)
        desc = (f"One bar per day from {first} to {last}; highest "
                f"{usd(high.cost_nanos, places)} on {high.date.isoformat()}.")
    else:
        desc = "No days in this period."
    parts.append(f'<title id="{ids}-title">Daily cost (USD)</title>'
                 f'<desc id="{ids}-desc">{escape(desc)}</desc>')
    for tick, text in zip(axis, labels, strict=True):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="grid" stroke="#d9dee7" x1="{left}" x2="{width - RIGHT}"'
                     f' y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" fill="#5b6576" font-size="{FONT}" x="{left - 6}"'
                     f' y="{y + 3:.1f}" text-anchor="end">{escape(text)}</text>')
    shown = set(labelled(points, slot))
    for index, point in enumerate(points):
        x = left + slot * index + (slot - bar) / 2
        h = plot_h * point.cost_nanos / top
        tip = (f"{point.date.isoformat()}: {usd(point.cost_nanos, places)},"
               f" {readable.counted(point.requests, 'request')}")
        parts.append(f'<g><title>{escape(tip)}</title>'
                     f'<rect class="hit" fill="transparent" x="{left + slot * index:.2f}"'
                     f' y="{TOP}" width="{slot:.2f}" height="{plot_h}"/>'
                     f'<rect class="bar" fill="#2f62c9" x="{x:.2f}" y="{TOP + plot_h - h:.2f}"'
                     f' width="{bar:.2f}" height="{h:.2f}"/></g>')
        if index in shown:
            label = day_label(point.date, len(points))
            parts.append(f'<text class="axis" fill="#5b6576" font-size="{FONT}"'
                         f' x="{x + bar / 2:.1f}" y="{HEIGHT - 10}"'
                         f' text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line class="base" stroke="#5b6576" x1="{left}" x2="{width - RIGHT}"'
                 f' y1="{TOP + plot_h}" y2="{TOP + plot_h}"/></svg>')
    return Markup("".join(parts))
