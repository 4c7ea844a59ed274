"""Report emails: multipart/alternative text + HTML, inline chart PNG, attachments."""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Any

import css_inline

from reporter.deliver.chart_png import daily_cost_png
from reporter.deliver.subject import context, render_subject
from reporter.render.templating import environment
from reporter.report import compare, readable
from reporter.report.model import Report

log = logging.getLogger(__name__)
TOP = 5
CHART_NAME = "daily-cost.png"


@dataclass(frozen=True)
class Attachment:
    """A file attached to a report email; ``stored`` is where its stored copy is, if any."""

    name: str
    data: bytes
    stored: Path | None = None  # where the stored copy is, when the job stores


def human_size(count: int) -> str:
    """``532 bytes``, ``12.3 kB``, ``10.5 MB`` (decimal units, as mail clients show them)."""
    if count < 1000:
        return f"{count} bytes"
    if count < 1_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"


#: the most an HTML body may weigh: Gmail clips a message body above 102 kB
HTML_BUDGET = 102_000


def list_id(job: str, organization: str, domain: str) -> str:
    """``<job.org.reports.domain>`` (RFC 2919): one list per job and organization, so a
    reader's filters can tell the weekly admin report from the monthly finance one."""
    labels = [re.sub(r"[^a-z0-9-]+", "-", part.lower()).strip("-") or "x"
              for part in (job, organization)]
    host = re.sub(r"[^a-z0-9.-]+", "-", domain.lower()).strip(".-") or "localhost"
    return f"<{labels[0][:63]}.{labels[1][:63]}.reports.{host}>"


def sender_domain(sender: str) -> str:
    """The domain of the sender's address (``localhost`` when it has none): the right-hand
    side of every Message-ID reporter writes."""
    addresses = getaddresses([sender])
    address = addresses[0][1] if addresses else ""
    return address.rsplit("@", 1)[1] if "@" in address else "localhost"


def _attached_line(sent: list[Attachment]) -> str:
    if not sent:
        return "Nothing is attached to this message."
    names = ", ".join(f"{a.name} ({human_size(len(a.data))})" for a in sent)
    return f"Attached: {names}."


def body_context(report: Report, job: str, sent: list[Attachment],
                 omitted: list[Attachment], chart_cid: str) -> dict[str, Any]:
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
        "places": report.cost_places,
        "top_models": report.by_model[:TOP],
        "top_members": [] if personal else report.by_member[:TOP],
        "empty": report.is_empty,
        "chart_cid": chart_cid,
        "attached_line": _attached_line(sent),
        "omitted": [{"name": a.name, "size": human_size(len(a.data)),
                     "stored": str(a.stored) if a.stored else None} for a in omitted],
        "generated": readable.moment_text(report.generated_at, report.period.timezone),
    }


def render_bodies(values: dict[str, Any], templates: Path | None) -> tuple[str, str]:
    """The plain-text body and the HTML body with its CSS inlined."""
    env = environment(templates)
    text = env.get_template("email.txt.j2").render(values).strip() + "\n"
    html = env.get_template("email.html.j2").render(values)
    return text, css_inline.inline(html)


def build(report: Report, *, job: str, subject: str, sender: str, recipients: list[str],
          attachments: list[Attachment], max_attachment_bytes: int, now: datetime,
          templates: Path | None = None) -> EmailMessage:
    """The message for ``recipients``; attachments over the limit are named, not attached."""
    sent = [a for a in attachments if len(a.data) <= max_attachment_bytes]
    omitted = [a for a in attachments if len(a.data) > max_attachment_bytes]
    for item in omitted:
        log.warning("%s: %s is %d bytes, over the %d-byte attachment limit; left out",
                    job, item.name, len(item.data), max_attachment_bytes)
    domain = sender_domain(sender)
    cid = make_msgid("chart", domain=domain)
    values = body_context(report, job, sent, omitted, cid[1:-1])
    text, html = render_bodies(values, templates)

    msg = EmailMessage()
    msg["Subject"] = render_subject(subject, context(report, job))
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("report", domain=domain)
    # sent by a program, not a person: no out-of-office replies, and one list to filter on
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["List-Id"] = list_id(job, report.organization.slug, domain)
    if len(html.encode()) > HTML_BUDGET:
        log.warning("%s: the HTML body of %s is %d bytes; Gmail clips bodies over %d",
                    job, report.title, len(html.encode()), HTML_BUDGET)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = list(msg.iter_parts())[1]
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(daily_cost_png(report), "image", "png", cid=cid,
                          filename=CHART_NAME, disposition="inline")
    for item in sent:
        kind = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.name)
    return msg
