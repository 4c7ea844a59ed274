"""PDF through headless Chromium, the optional engine (``pdf_engine: chromium``).

Chromium prints the very HTML WeasyPrint is given (``pdf_report.print_page``), with a few
rules of its own (:func:`page_css`): the running header names the title as a string (Chromium
has no ``string-set``) and a table's first group keeps its rows together. One browser per
process, started on first use and closed at exit, so a pool worker prints every report it
renders with the browser it started. Playwright's sync API belongs to the thread that started
it, so one thread of the process owns the browser and prints what the others hand it.

Reports are printed on one page of one browser context, without JavaScript, and every
request the page makes is refused (a report embeds all it shows): each report replaces the
whole document, and no script, cookie or storage can carry anything from one organization's
report to the next. (A fresh context per report would cost a renderer process each: five
times the CPU of printing the report.)

The PDF's document information (title, author, subject, keywords, creator, dates) is
WeasyPrint's, from the page's ``<title>`` and ``<meta>``, appended as an
incremental update (:func:`with_info`).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import shutil
import threading
from concurrent.futures import Future
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from reporter.errors import RenderError

log = logging.getLogger(__name__)

#: where the browser is looked for, in order (Debian's and Ubuntu's names, then Chrome's)
EXECUTABLES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
#: how long one report may take to load and print, in milliseconds
TIMEOUT_MS = 120_000
SETTING = "pdf_engine: chromium (jobs.yaml) or --pdf-engine chromium"


def executable() -> str:
    """The Chromium to start; RenderError naming the setting when there is none."""
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return found
    raise RenderError(f"{SETTING}: no Chromium found (looked for {', '.join(EXECUTABLES)}); "
                      "install it or choose pdf_engine: weasyprint")


class _Printer:
    """The browser of this process and the thread that drives it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.jobs: queue.SimpleQueue[tuple[str, Future[bytes]] | None] = queue.SimpleQueue()
        self.started: Future[None] = Future()
        self.thread = threading.Thread(target=self._run, name="chromium", daemon=True)
        self.thread.start()
        self.started.result()  # the error of a browser that cannot start, raised here

    def _run(self) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.started.set_exception(RenderError(
                f"{SETTING} needs Playwright: pip install 'reporter[chromium]'"))
            return
        try:
            path = executable()
            playwright = sync_playwright().start()
        except Exception as exc:
            self.started.set_exception(exc)
            return
        try:
            browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        except Exception as exc:
            playwright.stop()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.started.set_exception(RenderError(f"{SETTING}: {path} did not start: {first}"))
            return
        log.debug("started %s (%s) for PDFs", path, browser.version)
        self.started.set_result(None)
        try:
            while (job := self.jobs.get()) is not None:
                html, future = job
                try:
                    if not browser.is_connected():  # it crashed or was killed: a new one
                        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
                    future.set_result(_print(browser, html))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            try:
                browser.close()
            finally:
                playwright.stop()

    def print(self, html: str) -> bytes:
        """The PDF Chromium prints of ``html``."""
        future: Future[bytes] = Future()
        self.jobs.put((html, future))
        return future.result()

    def close(self) -> None:
        """Close the browser (waits for the report being printed)."""
        self.jobs.put(None)
        self.thread.join(timeout=30)


def _refuse(route: Any) -> None:
    log.warning("the PDF template asked for %r; refused: reports embed everything they show",
                route.request.url)
    route.abort()


_pages: dict[Any, Any] = {}


def _page(browser: Any) -> Any:
    """The browser's one page (a new context per report costs a renderer process: 0.8 core-s
    against 0.16 for the report itself), without JavaScript or network."""
    page = _pages.get(browser)
    if page is None or page.is_closed():
        _pages.clear()
        context = browser.new_context(java_script_enabled=False)
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", _refuse)
        page = _pages[browser] = context.new_page()
    return page


def _print(browser: Any, html: str) -> bytes:
    """Print ``html`` in a new document of the page (no script runs, nothing is fetched or
    stored, so nothing of the report before is left to show)."""
    page = _page(browser)
    try:
        # a fresh document: set_content alone writes into the one before, which keeps its
        # Content Security Policy
        page.goto("about:blank")
        page.set_content(html, wait_until="load")
        data: bytes = page.pdf(prefer_css_page_size=True, print_background=True)
    except Exception:
        page.context.close()  # a page that failed once is not trusted with the next report
        _pages.clear()
        raise
    return data


_lock = threading.Lock()
_printer: _Printer | None = None


def _current() -> _Printer:
    """This process's printer, started on first use (a forked child starts its own)."""
    global _printer
    with _lock:
        if _printer is None or _printer.pid != os.getpid() or not _printer.thread.is_alive():
            _printer = _Printer()
        return _printer


@atexit.register
def close() -> None:
    """Close this process's browser, if it started one."""
    global _printer
    with _lock:
        printer, _printer = _printer, None
    if printer is not None and printer.pid == os.getpid():
        printer.close()


#: characters a CSS string may hold as they are (the rest are escaped as hex)
SAFE = frozenset(" .,:;-_/()+&'!?$#@%*=[]{}~^|`")


def css_string(text: str) -> str:
    """``text`` as a CSS string that cannot end its rule or its ``<style>`` element."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in SAFE:
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):x} ")
    return '"' + "".join(out) + '"'


def page_css(title: str) -> str:
    """What Chromium needs besides the print stylesheet: the title in the running header (no
    ``string-set``), and the first group of a table kept whole like the others (WeasyPrint's
    rules for it leave the heading and header row alone at the foot of a page in Chromium)."""
    return (f"@page {{ @top-left {{ content: {css_string(title)}; }} }}\n"
            "@page :first { @top-left { content: none; } }\n"
            "thead { break-after: avoid; }\n"
            "tbody.group:first-of-type { break-inside: avoid; break-before: avoid; }\n")


class _Head(HTMLParser):
    """The ``<title>`` and ``<meta name=... content=...>`` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.meta: dict[str, str] = {}
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            found = dict(attrs)
            name, content = found.get("name"), found.get("content")
            if name and content is not None:
                self.meta.setdefault(name.lower(), content)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def document_info(html: str) -> dict[str, str]:
    """The PDF document information WeasyPrint writes for ``html``, by PDF key."""
    parser = _Head()
    parser.feed(html.partition("</head>")[0])
    head = parser.meta
    info = {"Title": " ".join(parser.title.split()), "Author": head.get("author", ""),
            "Subject": head.get("description", ""), "Keywords": head.get("keywords", ""),
            "Creator": head.get("generator", ""), "Producer": "Chromium (reporter)"}
    for key, name in (("CreationDate", "dcterms.created"), ("ModDate", "dcterms.modified")):
        if head.get(name):
            info[key] = pdf_date(head[name])
    return {key: value for key, value in info.items() if value}


def pdf_date(text: str) -> str:
    """An ISO 8601 moment as a PDF date (``D:20261123120000+00'00'``); as given if not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    out = moment.strftime("D:%Y%m%d%H%M%S")
    offset = moment.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        out += f"{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
    return out


#: a PDF date (``D:20261206143800+01'00'``): the one value written as a literal string
_PDF_DATE = re.compile(r"D:\d{14}(?:Z|[+-]\d{2}'\d{2}'?)?")


def _pdf_text(key: str, value: str) -> bytes:
    """A document information value: a date as PDF writes dates, anything else (a name
    from the data may hold ``(``, ``)`` or ``\\``) as UTF-16 hex, which nothing can escape."""
    if key in ("CreationDate", "ModDate") and _PDF_DATE.fullmatch(value):
        return f"({value})".encode("ascii")
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode("ascii") + b">"


_TRAILER = re.compile(rb"trailer\s*<<(.*?)>>\s*startxref\s*(\d+)\s*%%EOF\s*$", re.DOTALL)


def with_info(pdf: bytes, info: dict[str, str]) -> bytes:
    """``pdf`` with ``info`` as its document information, appended as an incremental update
    (a new Info object, an xref section for it and a trailer pointing to the one before)."""
    found = _TRAILER.search(pdf, max(0, len(pdf) - 4096))
    size = re.search(rb"/Size\s+(\d+)", found[1]) if found else None
    root = re.search(rb"/Root\s+(\d+\s+\d+\s+R)", found[1]) if found else None
    if found is None or size is None or root is None:
        log.warning("Chromium's PDF has no plain trailer; its document information is kept")
        return pdf
    number = int(size[1])
    ident = re.search(rb"/ID\s*\[[^\]]*\]", found[1])
    entries = b"".join(b"/" + key.encode("ascii") + b" " + _pdf_text(key, value)
                       for key, value in info.items())
    head = pdf if pdf.endswith(b"\n") else pdf + b"\n"
    obj = b"%d 0 obj\n<<%s>>\nendobj\n" % (number, entries)
    xref = len(head) + len(obj)
    tail = (b"xref\n%d 1\n%010d 00000 n \ntrailer\n<< /Size %d /Root %s /Info %d 0 R %s"
            b"/Prev %s >>\nstartxref\n%d\n%%%%EOF\n"
            % (number, len(head), number + 1, root[1], number,
               ident[0] + b" " if ident else b"", found[2], xref))
    return head + obj + tail


def render_html(html: str) -> bytes:
    """The PDF of the print page ``html`` (from ``pdf_report.print_page``), by Chromium."""
    info = document_info(html)
    styled = html.replace("</head>", f"<style>\n{page_css(info.get('Title', ''))}</style>\n"
                          "</head>", 1)
    return with_info(_current().print(styled), info)
