"""Renderers: one report model in, bytes of a format out; ``write`` puts them on disk.

One module per format (html, pdf, xlsx, json) behind ``FORMATS``; the templates are in
reporter/templates. May import: the foundation modules and reporter.report (never store:
a renderer does not query the database).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reporter.errors import RenderError
from reporter.fsutil import atomic_write, ensure_folder
from reporter.report.model import Report, ReportKey

if TYPE_CHECKING:
    from jinja2 import TemplateError

log = logging.getLogger(__name__)

#: format name (also its files' extension) -> module implementing
#: ``render(report, options) -> bytes``
FORMATS: dict[str, str] = {
    "html": "reporter.render.html_report",
    "pdf": "reporter.render.pdf_report",
    "xlsx": "reporter.render.xlsx_report",
    "json": "reporter.render.json_report",
}


#: what prints a PDF: WeasyPrint (the default), or headless Chromium (the ``chromium`` extra)
PDF_ENGINES = ("weasyprint", "chromium")


class Options:
    """Rendering options shared by the formats: a folder of template overrides, the engine
    that prints PDFs (one of ``PDF_ENGINES``; None: WeasyPrint)."""

    def __init__(self, templates: Path | None = None, pdf_engine: str | None = None) -> None:
        if pdf_engine is not None and pdf_engine not in PDF_ENGINES:
            raise RenderError(f"unknown PDF engine {pdf_engine!r} "
                              f"(one of: {', '.join(PDF_ENGINES)})")
        self.templates = templates
        self.pdf_engine = pdf_engine


class _Renderer(Protocol):
    def __call__(self, report: Report, options: Options) -> bytes: ...


def parse_formats(text: str | Sequence[str]) -> list[str]:
    """``"html,pdf"`` or a list of names -> validated, de-duplicated names."""
    names = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text)]
    out: list[str] = []
    for name in names:
        if not name:
            continue
        if name not in FORMATS:
            raise RenderError(f"unknown format {name!r} (one of: {', '.join(FORMATS)})")
        if name not in out:
            out.append(name)
    if not out:
        raise RenderError("no output format given")
    return out


def render(report: Report, fmt: str, options: Options | None = None) -> bytes:
    """The report in format ``fmt`` as bytes."""
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
    module = importlib.import_module(FORMATS[fmt])
    renderer: _Renderer = module.render
    options = options or Options()
    try:
        return renderer(report, options)
    except Exception as exc:
        from jinja2 import TemplateError  # not for the formats without templates (JSON)

        if not isinstance(exc, TemplateError) or options.templates is None:
            raise  # a shipped template that is wrong is a bug
        raise RenderError(_template_problem(exc, options.templates)) from exc


def _template_problem(exc: TemplateError, folder: Path) -> str:
    """One line naming the overriding template at fault (``--templates``, ``templates:``)."""
    from jinja2 import TemplateSyntaxError

    if isinstance(exc, TemplateSyntaxError):
        where = f"{exc.filename or exc.name or 'a template'}:{exc.lineno}"
        return f"template {where}: {exc.message}"
    return f"templates {folder}: {exc.message or type(exc).__name__}"


def file_name(key: ReportKey, fmt: str) -> str:
    """The file name of the report ``key`` in format ``fmt`` (``ReportKey.file_name``)."""
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
    return key.file_name(fmt)


def write(report: Report, formats: Sequence[str], out_dir: Path,
          options: Options | None = None) -> list[Path]:
    """Render each format and write it atomically under ``out_dir``; the paths written.
    FileWriteError, naming the path, when ``out_dir`` cannot be made or written to (checked
    before anything is rendered)."""
    ensure_folder(out_dir)
    paths = []
    for fmt in formats:
        data = render(report, fmt, options)
        path = out_dir / file_name(report.key, fmt)
        atomic_write(path, data)
        log.info("wrote %s (%d bytes)", path, len(data))
        paths.append(path)
    return paths
