"""The data behind the screen report's rows, embedded once in the page and opened on demand.

A year of 50 members and 10 models has about 170,000 model-day-member rows: as HTML rows they
made a 33 MB page a browser crawls through. The page shows the rolled-up rows
(``rollup.SCREEN``); every day and every member's share is one click away, built in the
browser (``templates/report.js``) from this data: one JSON object in a
``<script type="application/json">``, each month's rows one string of numbers in base 32
(about 15 characters for a member's cost, requests and tokens).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from reporter.report.model import DayRow, MemberUsage, Metrics, ModelDayRow, Report

#: the digits of the numbers: each character holds 5 bits; the first 32 characters say
#: "more digits follow", the last 32 end a number (so no separator is needed)
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
_MORE, _LAST = ALPHABET[:32], ALPHABET[32:]


def number(value: int) -> str:
    """A non-negative integer, most significant digit first (see ``ALPHABET``)."""
    if value < 0:
        raise ValueError(f"a screen number is never negative: {value}")
    digits = [_LAST[value & 31]]
    value >>= 5
    while value:
        digits.append(_MORE[value & 31])
        value >>= 5
    return "".join(reversed(digits))


#: numbers below 2**15 (counts, most token sums, indexes) are looked up, not computed
_SMALL = [number(n) for n in range(1 << 15)]


def _n(value: int) -> str:
    return _SMALL[value] if value < 32768 else number(value)


def _metrics(row: Metrics) -> str:
    return (_n(row.cost_nanos) + _n(row.requests) + _n(row.input_tokens)
            + _n(row.output_tokens))


class ScreenData:
    """The page's data, collected from the report's rows as they stream past (``tap``).

    Each month is one string: for each day with usage, its day of the month, the day's
    sums and members, its number of models and, for each model (largest cost first), the
    model's index, sums and members. A row's sums are cost (nano-dollars), requests, input
    and output tokens, then its number of members; a member is its index in ``members``
    followed by its sums.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        self._members = {m.email: index for index, m in enumerate(report.by_member)}
        self._models = {m.model: index for index, m in enumerate(report.by_model)}
        self._days = {row.date: row for row in report.by_day}
        self._months: dict[str, list[str]] = {}
        self._day: date | None = None
        self._day_models: list[str] = []
        self._written = 0

    def _shares(self, row: Metrics, members: Sequence[MemberUsage]) -> str:
        parts = [_metrics(row), _n(len(members))]
        index = self._members
        parts += [_n(index[m.email]) + _metrics(m) for m in members]
        return "".join(parts)

    def _flush(self) -> None:
        if self._day is None:
            return
        day: DayRow = self._days[self._day]
        text = (_n(day.date.day) + self._shares(day, day.members) + _n(len(self._day_models))
                + "".join(self._day_models))
        self._months.setdefault(f"{day.date:%Y-%m}", []).append(text)
        self._written += 1
        self._day, self._day_models = None, []

    def tap(self, pairs: Iterable[tuple[ModelDayRow, list[MemberUsage]]],
            ) -> Iterator[tuple[ModelDayRow, list[MemberUsage]]]:
        """``pairs`` (the By Model & Day rows with their members, in order), passed on
        unchanged while each is written into its month."""
        for row, members in pairs:
            if row.date != self._day:
                self._flush()
                self._day = row.date
            self._day_models.append(_n(self._models[row.model]) + self._shares(row, members))
            yield row, members
        self._flush()

    def as_dict(self, places: int) -> dict[str, Any]:
        """Everything the page's script needs, once every row went through ``tap``; amounts
        are shown with ``places`` decimals."""
        if self._written != len(self._days):
            raise RuntimeError(f"{self._written} of {len(self._days)} days went through tap")
        report = self.report
        return {
            "places": places,
            "personal": report.member is not None,
            "members": [[m.email, m.name or ""] for m in report.by_member],
            "models": [m.model for m in report.by_model],
            "months": {key: "".join(days) for key, days in self._months.items()},
        }

    def script_text(self, places: int) -> str:
        """The data as JSON safe inside ``<script type="application/json">``: no ``<``,
        ``>`` or ``&`` that an HTML parser could read, whatever names it holds."""
        text = json.dumps(self.as_dict(places), ensure_ascii=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
