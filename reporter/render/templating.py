"""Jinja2 environment shared by the HTML, PDF and email formats, and value formatting."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from datetime import date
from pathlib import Path

import jinja2
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


#: the environment's options that Jinja2 builds into compiled code
_TRIM_BLOCKS = _LSTRIP_BLOCKS = True
_ESCAPE = _ESCAPE_STRINGS = True  # select_autoescape's default and default_for_string
#: what compiled code depends on besides a template's source: Jinja2's version and the
#: options above (a compiled template of other ones is never read)
_COMPILED_WITH = (f"jinja2 {jinja2.__version__}; trim_blocks {_TRIM_BLOCKS}; "
                  f"lstrip_blocks {_LSTRIP_BLOCKS}; autoescape {_ESCAPE} {_ESCAPE_STRINGS}")


class _CompiledCache(FileSystemBytecodeCache):
    """Compiled templates kept in the user's own cache folder (``$XDG_CACHE_HOME`` or
    ``~/.cache``, then ``reporter/templates-<fingerprint>``, created 0700), so a new process
    does not compile the templates again, as Python keeps bytecode in ``__pycache__``; a
    template whose source changed is compiled again. Never a shared temporary folder, where
    another user could plant compiled code. A cache that cannot be read or written (removed
    under a running service, a full disk, a damaged file) is passed over: it never fails a
    report."""

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


def cache_folder() -> Path | None:
    """Where compiled templates are kept: the user's cache folder, or None without one."""
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    except RuntimeError:  # no home folder
        return None
    if not root.is_absolute():  # "~" that could not be expanded
        return None
    digest = hashlib.sha256(_COMPILED_WITH.encode()).hexdigest()[:16]
    return root / "reporter" / f"templates-{digest}"


def _compiled_cache() -> BytecodeCache | None:
    """The cache of compiled templates, or None when the user has no cache folder to keep
    them in."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            return None
    except OSError as exc:
        log.debug("compiled templates are not cached: %s", exc)
        return None
    return _CompiledCache(str(folder))


@functools.lru_cache(maxsize=8)
def environment(overrides: Path | None = None) -> Environment:
    """Autoescaping, StrictUndefined; ``overrides`` (a folder) wins over shipped templates."""
    loaders = [FileSystemLoader(str(overrides))] if overrides else []
    loaders.append(FileSystemLoader(str(shipped_templates())))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=_ESCAPE, default_for_string=_ESCAPE_STRINGS),
        undefined=StrictUndefined,
        trim_blocks=_TRIM_BLOCKS,
        lstrip_blocks=_LSTRIP_BLOCKS,
        bytecode_cache=_compiled_cache(),
    )
    env.filters.update(usd=usd, count=count, day=day, headline=money.headline_usd,
                       breakable=breakable,
                       counted=readable.counted)
    env.globals.update(change_of=readable.change, move_of=readable.move_text, span_of=readable.span,
                       period_of=readable.period_text,
                       moment_of=readable.moment_text)
    return env
