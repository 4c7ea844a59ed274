"""Renderers: one report model in, bytes of a format out; ``write`` puts them on disk."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..errors import RenderError
from ..fsutil import atomic_write, safe_name
from ..report import Report

log = logging.getLogger(__name__)

#: format name -> (module implementing ``render(report, options) -> bytes``, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "html": ("reporter.render.html_report", "html"),
    "pdf": ("reporter.render.pdf_report", "pdf"),
    "xlsx": ("reporter.render.xlsx_report", "xlsx"),
    "json": ("reporter.render.json_report", "json"),
}


class Options:
    """Rendering options shared by the formats (a folder of template overrides...)."""

    def __init__(self, templates: Path | None = None) -> None:
        self.templates = templates


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
    module = importlib.import_module(FORMATS[fmt][0])
    renderer: _Renderer = module.render
    return renderer(report, options or Options())


def file_stem(report: Report) -> str:
    """``<org>_<first>_<last>[_<member>]``, safe whatever the slug or email holds."""
    stem = f"{safe_name(report.organization.slug)}_{report.period.slug}"
    if report.member:
        stem += f"_{safe_name(report.member)}"
    return stem


def write(report: Report, formats: Sequence[str], out_dir: Path,
          options: Options | None = None) -> list[Path]:
    """Render each format and write it atomically under ``out_dir``; the paths written."""
    paths = []
    for fmt in formats:
        data = render(report, fmt, options)
        path = out_dir / f"{file_stem(report)}.{FORMATS[fmt][1]}"
        atomic_write(path, data)
        log.info("wrote %s (%d bytes)", path, len(data))
        paths.append(path)
    return paths
