"""The daily cost charts' axis: round "$" ticks and dates a reader can read, in the SVG of the
HTML and PDF and in the email's PNG (drawn at twice its size)."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from reporter.render import chart_png, svg_chart
from reporter.render.svg_chart import labelled, tick_labels, ticks
from reporter.report.model import DailyPoint

USD = 1_000_000_000


def usd(values: list[int]) -> list[Decimal]:
    return [Decimal(v).scaleb(-9).normalize() for v in values]


def week(costs: list[int], first: date = date(2026, 11, 16)) -> list[DailyPoint]:
    return [DailyPoint(first + timedelta(days=i), cost, 1, 1) for i, cost in enumerate(costs)]


def test_ticks_of_real_peaks() -> None:
    # the email of the issue: a top tick of "$2.27804913" and a middle tick without "$"
    assert tick_labels(ticks(2_278_049_130)) == ["$0", "$1", "$2", "$3"]
    assert tick_labels(ticks(1_480_000_000)) == ["$0.00", "$0.50", "$1.00", "$1.50"]
    assert tick_labels(ticks(12_357_458_018_123)) == ["$0", "$5,000", "$10,000", "$15,000"]
    assert tick_labels(ticks(99_999_999_123_456_789)) == ["$0", "$50,000,000",
                                                          "$100,000,000"]
    assert tick_labels(ticks(1)) == ["$0.000000000", "$0.000000001"]
    assert tick_labels(ticks(4_750_000)) == ["$0.000", "$0.002", "$0.004", "$0.006"]
    assert tick_labels(ticks(0)) == ["$0.00", "$0.50", "$1.00"]  # no usage: $0 to $1


@given(st.integers(min_value=0, max_value=100_000_000 * USD))
def test_ticks_are_round_and_cover_the_peak(peak: int) -> None:
    values = ticks(peak)
    assert values[0] == 0
    assert values[-1] >= peak
    assert 2 <= len(values) <= 5
    step = values[1]
    assert all(b - a == step for a, b in zip(values, values[1:], strict=False))
    digits = str(step).rstrip("0")
    assert digits in ("1", "2", "5"), step  # 1, 2 or 5 times a power of ten
    assert peak == 0 or values[-2] < peak  # no empty step above the highest bar
    labels = tick_labels(values)
    assert all(label.startswith("$") for label in labels)
    decimals = {len(label.partition(".")[2]) for label in labels}
    assert len(decimals) == 1  # every tick with the same decimals
    for label, value in zip(labels, values, strict=True):
        assert Decimal(label[1:].replace(",", "")) == Decimal(value).scaleb(-9)


def test_every_day_of_a_week_is_labelled_and_a_month_starts_at_its_first_day() -> None:
    days = week([USD] * 7)
    assert labelled(days, slot=(600 - 60) / 7) == list(range(7))
    # November 2026 (it starts on a Sunday): labels from the 1st, evenly spaced
    month = week([USD] * 30, first=date(2026, 11, 1))
    for slot in ((600 - 60) / 30, (360 - 50) / 30, (720 - 60) / 30):
        shown = labelled(month, slot=slot)
        assert shown[0] == 0, slot
        assert month[shown[0]].date == date(2026, 11, 1)
        assert len({b - a for a, b in zip(shown, shown[1:], strict=False)}) == 1
        assert len(shown) >= 4
    year = week([USD] * 365, first=date(2026, 1, 1))
    assert [year[i].date for i in labelled(year, slot=650 / 365)] == [
        date(2026, m, 1) for m in (1, 4, 7, 10)]


def test_svg_chart_has_round_ticks_and_every_date_of_a_week() -> None:
    svg = str(svg_chart.daily_cost(week([2_278_049_130, 0, 1_500_000_000, 3, 4, 5, 6]), 9))
    texts = re.findall(r'<text class="axis"[^>]*>([^<]*)</text>', svg)
    assert texts[:4] == ["$0", "$1", "$2", "$3"]
    assert texts[4:] == [f"Nov {d}" for d in range(16, 23)]


def test_email_png_is_drawn_at_twice_its_size() -> None:
    class Daily:
        daily = week([2_278_049_130, 0, 1_500_000_000, 3, 4, 5, 6])

    image = Image.open(io.BytesIO(chart_png.daily_cost_png(Daily())))  # type: ignore[arg-type]
    assert image.size == (2 * chart_png.WIDTH, 2 * chart_png.HEIGHT) == (1200, 440)
