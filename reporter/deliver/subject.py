"""Email subjects: a sandboxed Jinja template rendered to one safe header line."""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from reporter.report.model import Report

MAX_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


@functools.lru_cache(maxsize=32)
def subject_template(source: str) -> Template:
    """The compiled subject template (TemplateSyntaxError when it is not one)."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    return env.from_string(source)


def clean(text: str) -> str:
    """One header line: control characters and newlines become spaces, length capped."""
    line = " ".join(_CONTROL.sub(" ", text).split())
    return line if len(line) <= MAX_LENGTH else line[: MAX_LENGTH - 1].rstrip() + "…"


def context(report: Report, job: str) -> dict[str, Any]:
    """What a subject template can use."""
    period = report.period
    return {
        "job": job,
        "organization": {"slug": report.organization.slug, "name": report.organization.name,
                         "timezone": report.organization.timezone},
        "period": {"name": period.name, "label": period.label, "first": period.first,
                   "last": period.last, "timezone": period.timezone},
        "member": report.member,
        "member_name": report.member_name,
    }


def sample_context() -> dict[str, Any]:
    """A context with every name set, to check a template at load time."""
    return {
        "job": "job",
        "organization": {"slug": "acme", "name": "Acme", "timezone": "UTC"},
        "period": {"name": "previous-week", "label": "2026-01-05 to 2026-01-11 (UTC)",
                   "first": date(2026, 1, 5), "last": date(2026, 1, 11), "timezone": "UTC"},
        "member": None,
        "member_name": None,
    }


def render_subject(source: str, values: dict[str, Any]) -> str:
    """The subject template ``source`` rendered with ``values``, as one safe header line."""
    return clean(subject_template(source).render(values))
