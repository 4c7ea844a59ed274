"""Email subjects: a sandboxed Jinja template rendered to one safe header line (its values
come from ``reporter.report.headline``)."""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from reporter.report.headline import context
from reporter.report.model import Report

MAX_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


#: the largest value a subject expression may build (characters, items or digits)
MAX_VALUE = 10_000
#: string methods and filters that build text of any width asked for
_WIDENING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format",
                       "format_map"})


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox, also bounded in size: a subject like ``{{ "a" * 10**10 }}`` or
    ``{{ 9 ** 9 ** 9 }}`` is refused instead of exhausting memory or time, at load time
    and at every send."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse operations whose result would be unreasonably large."""
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not allowed in a subject")
        if operator == "**" and isinstance(right, int | float) and isinstance(
                left, int | float) and abs(right) > 64 and abs(left) > 1:
            raise SecurityError(f"{left!r} ** {right!r} is too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and (
                        len(seq) * max(times, 0) > MAX_VALUE):
                    raise SecurityError("a repeated value longer than "
                                        f"{MAX_VALUE:,} is not allowed in a subject")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        """``str.format`` can pad to any width: not in a subject."""
        if super().wrap_str_format(value) is None:
            return None

        def refuse(*_args: Any, **_kwargs: Any) -> str:
            raise SecurityError("str.format is not allowed in a subject; use filters")

        return refuse

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """No method that pads text to any width."""
        if attr in _WIDENING:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))


@functools.lru_cache(maxsize=32)
def subject_template(source: str) -> Template:
    """The compiled subject template (TemplateSyntaxError when it is not one)."""
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
    for name in ("center", "indent", "wordwrap", "format"):
        env.filters.pop(name, None)
    return env.from_string(source)


def clean(text: str) -> str:
    """One header line: control characters and newlines become spaces, length capped."""
    line = " ".join(_CONTROL.sub(" ", text).split())
    return line if len(line) <= MAX_LENGTH else line[: MAX_LENGTH - 1].rstrip() + "…"


def sample_context() -> dict[str, Any]:
    """A context with every name set, to check a template at load time."""
    return {
        "job": "job",
        "organization": {"slug": "acme", "name": "Acme", "timezone": "UTC"},
        "period": {"name": "previous-week", "label": "Jan 5 – 11, 2026 (UTC)",
                   "first": date(2026, 1, 5), "last": date(2026, 1, 11), "timezone": "UTC"},
        "member": None,
        "member_name": None,
        "total": "$1,234.56",
        "change": "up 43%",
    }


def render_subject(source: str, values: dict[str, Any]) -> str:
    """The subject template ``source`` rendered with ``values``, as one safe header line."""
    return clean(subject_template(source).render(values))


def subject_line(source: str, report: Report, job: str) -> str:
    """The subject of ``report``'s email from the job's template ``source``."""
    return render_subject(source, context(report, job))
