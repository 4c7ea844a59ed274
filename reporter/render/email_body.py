"""The report email's body: the plain-text part, the HTML part (CSS inlined for mail
clients) and the images it shows inline (the daily cost chart as a PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Protocol

import css_inline

from reporter.render.chart_png import daily_cost_png
from reporter.render.templating import environment
from reporter.report import compare, readable
from reporter.report.headline import context
from reporter.report.model import Report

#: how many models and members the email lists
TOP = 5
CHART_NAME = "daily-cost.png"


class Listed(Protocol):
    """A file the body names: attached, or left out for its size (and where it is stored)."""

    @property
    def name(self) -> str:
        """The file's name."""

    @property
    def data(self) -> bytes:
        """The file's bytes (the body states their size)."""

    @property
    def stored(self) -> Path | None:
        """Where the stored copy is, if the job stores."""


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML part shows through ``cid:``: its Content-ID (without ``<>``)."""

    cid: str
    filename: str
    data: bytes
    subtype: str = "png"


@dataclass(frozen=True)
class EmailBody:
    """A rendered email body: the text part, the HTML part and its inline images."""

    text: str
    html: str
    images: tuple[InlineImage, ...]


def human_size(count: int) -> str:
    """``532 bytes``, ``12.3 kB``, ``10.5 MB`` (decimal units, as mail clients show them)."""
    if count < 1000:
        return f"{count} bytes"
    if count < 1_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"


def _attached_line(sent: Sequence[Listed]) -> str:
    if not sent:
        return "Nothing is attached to this message."
    names = ", ".join(f"{a.name} ({human_size(len(a.data))})" for a in sent)
    return f"Attached: {names}."


def body_context(report: Report, job: str, sent: Sequence[Listed],
                 omitted: Sequence[Listed], chart_cid: str) -> dict[str, Any]:
    """What the email templates get: the report's context, the chart, what is attached and
    what was left out."""
    personal = report.personal
    before = report.previous
    return {
        **context(report, job),
        "title": report.title,
        "budget": report.budget,
        "heading": "Your AI usage" if personal else "Team AI usage",
        "sentence": compare.sentence(report),
        "personal": personal,
        "previous": before,
        "compared": readable.span(before.period.first, before.period.last) if before else None,
        "summary": report.summary,
        "places": report.display_places,
        "top_models": report.by_model[:TOP],
        "top_members": [] if personal else report.by_member[:TOP],
        "empty": report.is_empty,
        "sync_note": report.sync_note,
        "chart_cid": chart_cid,
        "attached_line": _attached_line(sent),
        "omitted": [{"name": a.name, "size": human_size(len(a.data)),
                     "stored": str(a.stored) if a.stored else None} for a in omitted],
        "generated": readable.moment_text(report.generated_at, report.period.timezone),
    }


def render(report: Report, *, job: str, sent: Sequence[Listed] = (),
           omitted: Sequence[Listed] = (), domain: str = "localhost",
           templates: Path | None = None) -> EmailBody:
    """The body of ``report``'s email for ``job``: it names the files ``sent`` and those
    ``omitted`` for their size; the chart's Content-ID is made in ``domain``."""
    cid = make_msgid("chart", domain=domain)[1:-1]
    values = body_context(report, job, sent, omitted, cid)
    env = environment(templates)
    text = env.get_template("email.txt.j2").render(values).strip() + "\n"
    html = css_inline.inline(env.get_template("email.html.j2").render(values))
    if report.is_empty:  # said in words: no chart of zeros
        return EmailBody(text, html, ())
    chart = InlineImage(cid, CHART_NAME, daily_cost_png(report))
    return EmailBody(text, html, (chart,))
