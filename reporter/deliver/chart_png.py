"""The daily cost chart as a small PNG for email bodies (mail clients show no SVG)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from reporter.render.templating import usd
from reporter.report.model import Report

WIDTH, HEIGHT = 600, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 12, 16, 30
BAR = (37, 99, 235)
GRID = (226, 232, 240)
TEXT = (71, 85, 105)


def daily_cost_png(report: Report) -> bytes:
    """Bars of cost per day (zero days drawn as zero), the top value and first/last dates."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=11)
    points = report.daily
    peak = max((p.cost_nanos for p in points), default=0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h - round(plot_h * fraction)
        draw.line([(LEFT, y), (WIDTH - RIGHT, y)], fill=GRID)
        label = usd(round(peak * fraction), 2)
        draw.text((LEFT - 6, y), label, fill=TEXT, font=font, anchor="rm")
    if points:
        slot = plot_w / len(points)
        gap = max(1.0, slot * 0.2) if slot > 3 else 0.0
        for index, point in enumerate(points):
            height = round(plot_h * point.cost_nanos / peak) if peak else 0
            x0 = LEFT + index * slot + gap / 2
            x1 = max(x0 + 1, LEFT + (index + 1) * slot - gap / 2)
            if height:
                draw.rectangle([(x0, TOP + plot_h - height), (x1 - 1, TOP + plot_h)], fill=BAR)
        baseline = TOP + plot_h + 14
        draw.text((LEFT, baseline), points[0].date.isoformat(), fill=TEXT, font=font, anchor="lm")
        if len(points) > 1:
            draw.text((WIDTH - RIGHT, baseline), points[-1].date.isoformat(), fill=TEXT,
                      font=font, anchor="rm")
    buffer = io.BytesIO()
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(buffer, "PNG",
                                                                      optimize=True)
    return buffer.getvalue()
