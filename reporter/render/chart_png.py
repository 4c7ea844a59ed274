"""The daily cost chart as a PNG for email bodies (mail clients show no SVG), drawn at twice
its size on screen so it stays sharp on high-density displays."""

from __future__ import annotations

import io

from reporter.render.svg_chart import day_label, labelled, tick_labels, ticks
from reporter.report.model import Report

#: the size the email shows it at (the <img> width and height), in CSS pixels
WIDTH, HEIGHT = 600, 220
#: pixels drawn per CSS pixel
SCALE = 2
RIGHT, TOP, BOTTOM = 12, 12, 30
FONT = 14
BAR = (47, 98, 201)
GRID = (217, 222, 231)
TEXT = (71, 85, 105)


def daily_cost_png(report: Report) -> bytes:
    """Bars of cost per day (days without usage drawn as zero) on round "$" ticks, with the
    dates that fit written under them; ``SCALE`` times ``WIDTH`` x ``HEIGHT`` pixels."""
    from PIL import Image, ImageDraw, ImageFont  # only for emails with a chart

    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=FONT * SCALE)
    points = report.daily
    axis = ticks(max((p.cost_nanos for p in points), default=0))
    labels = tick_labels(axis)
    left = max(draw.textlength(text, font=font) for text in labels) / SCALE + 12
    plot_w, plot_h = WIDTH - left - RIGHT, HEIGHT - TOP - BOTTOM
    top = axis[-1]

    def px(value: float) -> float:
        return value * SCALE

    for tick, text in zip(axis, labels, strict=True):
        y = TOP + plot_h - plot_h * tick / top
        draw.line([(px(left), px(y)), (px(WIDTH - RIGHT), px(y))], fill=GRID, width=SCALE)
        draw.text((px(left - 6), px(y)), text, fill=TEXT, font=font, anchor="rm")
    if points:
        slot = plot_w / len(points)
        gap = slot * 0.2 if slot > 3 else 0.0
        for index, point in enumerate(points):
            height = plot_h * point.cost_nanos / top
            x0 = left + index * slot + gap / 2
            x1 = max(x0 + 1, left + (index + 1) * slot - gap / 2)
            if point.cost_nanos:
                draw.rectangle([(px(x0), px(TOP + plot_h - height)),
                                (px(x1) - 1, px(TOP + plot_h))], fill=BAR)
        for index in labelled(points, slot, FONT):
            x = left + (index + 0.5) * slot
            draw.text((px(x), px(TOP + plot_h + 14)), day_label(points[index].date, len(points)),
                      fill=TEXT, font=font, anchor="mm")
    draw.line([(px(left), px(TOP + plot_h)), (px(WIDTH - RIGHT), px(TOP + plot_h))],
              fill=TEXT, width=SCALE)
    buffer = io.BytesIO()
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(buffer, "PNG",
                                                                      optimize=True)
    return buffer.getvalue()
