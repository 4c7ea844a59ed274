"""Jinja2 environment shared by the HTML, PDF and email formats, and value formatting."""

from __future__ import annotations

import functools
import logging
import re
from datetime import date
from pathlib import Path

from jinja2 import (
    BytecodeCache,
    ChoiceLoader,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

from reporter import money
from reporter.report import readable

log = logging.getLogger(__name__)


def shipped_templates() -> Path:
    """The templates that come with reporter: the installed package's, or the checkout's."""
    return Path(__file__).resolve().parent.parent / "templates"


def usd(nanos: int, places: int = 2) -> str:
    """``$1,234.500``: rounded half up to exactly ``places`` decimals, the places the
    report's tables are read at (``Report.display_places``); XLSX and JSON stay exact."""
    return money.display_usd(nanos, places)


def breakable(address: str) -> Markup:
    """An email address that wraps only after its ``@`` and dots (``<wbr>``), never
    mid-word; escaped."""
    parts = re.split(r"(?<=[@.])", address)
    return Markup("<wbr>").join(escape(part) for part in parts)


def count(value: int) -> str:
    """A count with thousands separators: ``1,254,244``."""
    return f"{value:,}"


def day(value: date) -> str:
    """A date as ``YYYY-MM-DD``."""
    return value.isoformat()


class _CompiledCache(FileSystemBytecodeCache):
    """Jinja2's cache of compiled templates, in the user's own temporary folder (created 0700
    and checked to be theirs), so a new process does not compile the templates again; a
    template whose source changed is compiled again. A cache that cannot be read or written
    (the folder cleaned away under a running service, a full disk, a damaged file) is passed
    over: it never fails a report."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception as exc:  # whatever a damaged file holds: the template is compiled
            bucket.reset()
            log.debug("a compiled template could not be read: %s", exc)

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("a compiled template could not be kept: %s", exc)


def _compiled_cache() -> BytecodeCache | None:
    """The cache of compiled templates, or None when the user has no such folder."""
    try:
        return _CompiledCache()
    except (OSError, RuntimeError) as exc:
        log.debug("compiled templates are not cached: %s", exc)
        return None


@functools.lru_cache(maxsize=8)
def environment(overrides: Path | None = None) -> Environment:
    """Autoescaping, StrictUndefined; ``overrides`` (a folder) wins over shipped templates."""
    loaders = [FileSystemLoader(str(overrides))] if overrides else []
    loaders.append(FileSystemLoader(str(shipped_templates())))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_compiled_cache(),
    )
    env.filters.update(usd=usd, count=count, day=day, headline=money.headline_usd,
                       breakable=breakable,
                       counted=readable.counted)
    env.globals.update(change_of=readable.change, move_of=readable.move_text, span_of=readable.span,
                       period_of=readable.period_text,
                       moment_of=readable.moment_text)
    return env
