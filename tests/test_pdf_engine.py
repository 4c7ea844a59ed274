"""The PDF engine setting: WeasyPrint by default, headless Chromium when jobs.yaml or
``generate --pdf-engine`` says so (the PDF tests themselves run on both engines)."""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from reporter import config
from reporter.config import ConfigErrors
from reporter.errors import RenderError
from reporter.render import Options, pdf_chromium, pdf_report
from tests.helpers import GOOD, HOSTILE_ORG, small_report, write_csv

JOBS = "{engine}jobs:\n  weekly:\n    schedule: '0 7 * * mon'\n    period: previous-week\n"


def parse(engine: str) -> config.Config:
    return config.parse(JOBS.format(engine=engine), Path("jobs.yaml"), {})


def test_the_setting_defaults_to_weasyprint_and_names_itself_when_wrong() -> None:
    assert parse("").pdf_engine == "weasyprint"
    assert parse("pdf_engine: chromium\n").pdf_engine == "chromium"
    with pytest.raises(ConfigErrors) as caught:
        parse("pdf_engine: prince\n")
    [message] = caught.value.messages
    assert message.startswith("jobs.yaml:1: ")
    assert "pdf_engine" in message
    assert "'weasyprint', 'chromium'" in message or "weasyprint, chromium" in message
    with pytest.raises(RenderError, match="unknown PDF engine 'prince'"):
        Options(pdf_engine="prince")


def test_without_playwright_one_line_names_the_setting(sqlite_engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_chromium, "_printer", None)  # a process that started none
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    with pytest.raises(RenderError) as caught:
        pdf_report.render(small_report(sqlite_engine), Options(pdf_engine="chromium"))
    message = str(caught.value)
    assert "\n" not in message
    assert message == ("pdf_engine: chromium (jobs.yaml) or --pdf-engine chromium needs "
                       "Playwright: pip install 'reporter[chromium]'")
    assert pdf_chromium._printer is None  # the next report tries again


def test_without_a_browser_one_line_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_chromium, "EXECUTABLES", ("/nonexistent/chromium",))
    with pytest.raises(RenderError, match=r"^pdf_engine: chromium .*no Chromium found"):
        pdf_chromium.executable()


def test_the_running_header_cannot_break_out_of_its_string() -> None:
    title = 'Evil"; } body { display: none } </style><script>x</script>\\ \n'
    text = pdf_chromium.css_string(title)
    assert text == ('"Evil\\22 ; } body { display: none } \\3c /style\\3e \\3c script\\3e x'
                    '\\3c /script\\3e \\5c  \\a "')


@pytest.mark.browser
def test_one_browser_serves_every_report_of_a_process(sqlite_engine: Engine) -> None:
    pytest.importorskip("playwright.sync_api")
    report = small_report(sqlite_engine)
    options = Options(pdf_engine="chromium")
    first = pdf_report.render(report, options)
    printer = pdf_chromium._printer
    second = pdf_report.render(report, options)
    assert printer is not None
    assert pdf_chromium._printer is printer
    info = PdfReader(io.BytesIO(second)).metadata
    assert info is not None
    assert (info.title, info.author, info.creator) == (report.title, HOSTILE_ORG, "reporter")
    assert info.producer == "Chromium (reporter)"
    assert len(PdfReader(io.BytesIO(first)).pages) == len(PdfReader(io.BytesIO(second)).pages)


@pytest.mark.browser
def test_generate_prints_with_the_engine_asked_for(cli: Any, tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api")
    path = write_csv(tmp_path / "usage.csv", GOOD)
    assert cli("ingest", str(path)).exit_code == 0

    def producer(*extra: str) -> str:
        result = cli("generate", "--org", "acme", "--from", "2024-05-01", "--to", "2024-05-02",
                     "--format", "pdf", "--out", str(tmp_path / "out"), *extra)
        assert result.exit_code == 0, result.stderr
        info = PdfReader(Path(result.stdout.strip())).metadata
        assert info is not None
        return str(info.producer)

    assert producer().startswith("WeasyPrint")
    assert producer("--pdf-engine", "chromium") == "Chromium (reporter)"
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent(JOBS.format(
        engine="pdf_engine: chromium\n")), encoding="utf-8")
    assert producer() == "Chromium (reporter)"  # the file's engine
    assert producer("--pdf-engine", "weasyprint").startswith("WeasyPrint")  # the option wins


@pytest.mark.browser
@pytest.mark.parametrize("name", ["D:) /Title (PWNED) /Creator (x", "D:(unbalanced \\"])
def test_a_name_that_looks_like_a_pdf_date_stays_a_name(sqlite_engine: Engine,
                                                         name: str) -> None:
    """Only CreationDate and ModDate are written as literal dates; a name starting with
    ``D:`` is text like any other, and cannot rewrite or break the document information."""
    pytest.importorskip("playwright.sync_api")
    report = small_report(sqlite_engine)
    report.organization = type(report.organization)(
        **{**report.organization.__dict__, "name": name})
    data = pdf_report.render(report, Options(pdf_engine="chromium"))
    info = PdfReader(io.BytesIO(data)).metadata
    assert info is not None
    assert info.author == name
    assert info.creator == "reporter"
    assert name in (info.title or "")
