"""Report emails: the MIME message around an already-rendered body (multipart/alternative
text + HTML, inline images in multipart/related) and the attachments."""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Protocol

from reporter.deliver.subject import subject_line
from reporter.report.model import Report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    """A file attached to a report email; ``stored`` is where its stored copy is, if any."""

    name: str
    data: bytes
    stored: Path | None = None  # where the stored copy is, when the job stores


class Image(Protocol):
    """An image the HTML part shows inline: its Content-ID (without ``<>``) and bytes."""

    @property
    def cid(self) -> str:
        """The Content-ID the HTML refers to as ``cid:...``."""

    @property
    def filename(self) -> str:
        """The image's file name."""

    @property
    def data(self) -> bytes:
        """The image's bytes."""

    @property
    def subtype(self) -> str:
        """``png``..."""


class Body(Protocol):
    """A rendered body (``reporter.render.email_body.EmailBody``)."""

    @property
    def text(self) -> str:
        """The plain-text part."""

    @property
    def html(self) -> str:
        """The HTML part, CSS inlined."""

    @property
    def images(self) -> Sequence[Image]:
        """The images the HTML part shows inline."""


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


def within_limit(attachments: Sequence[Attachment], max_bytes: int,
                 job: str) -> tuple[list[Attachment], list[Attachment]]:
    """The attachments that are sent and those over ``max_bytes``, named in the body
    instead (each logged)."""
    sent = [a for a in attachments if len(a.data) <= max_bytes]
    omitted = [a for a in attachments if len(a.data) > max_bytes]
    for item in omitted:
        log.warning("%s: %s is %d bytes, over the %d-byte attachment limit; left out",
                    job, item.name, len(item.data), max_bytes)
    return sent, omitted


def build(report: Report, body: Body, *, job: str, subject: str, sender: str,
          recipients: list[str], attachments: Sequence[Attachment],
          now: datetime) -> EmailMessage:
    """The message for ``recipients``: the subject template ``subject`` rendered for
    ``report``, the rendered ``body`` and its images, the ``attachments`` as given."""
    domain = sender_domain(sender)
    msg = EmailMessage()
    msg["Subject"] = subject_line(subject, report, job)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("report", domain=domain)
    # sent by a program, not a person: no out-of-office replies, and one list to filter on
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["List-Id"] = list_id(job, report.organization.slug, domain)
    if len(body.html.encode()) > HTML_BUDGET:
        log.warning("%s: the HTML body of %s is %d bytes; Gmail clips bodies over %d",
                    job, report.title, len(body.html.encode()), HTML_BUDGET)
    msg.set_content(body.text)
    msg.add_alternative(body.html, subtype="html")
    html_part = list(msg.iter_parts())[1]
    assert isinstance(html_part, EmailMessage)
    for image in body.images:
        html_part.add_related(image.data, "image", image.subtype, cid=f"<{image.cid}>",
                              filename=image.filename, disposition="inline")
    for item in attachments:
        kind = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.name)
    return msg
