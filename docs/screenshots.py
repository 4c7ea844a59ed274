"""Screenshots for the README, from the demo data: the weekly admin email as a desktop mail
client and a 390 px phone show it (headless Chromium), and the PDF's first page (pdftoppm).

Run: bash scripts/screenshots.sh   (writes docs/images/*.png; nothing else changes)

The clock is fixed, so the same code draws the same pictures.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from reporter import periods
from reporter.deliver import email
from reporter.render import email_body, pdf_report
from reporter.report import aggregate
from reporter.store import db, demo
from reporter.store import orgs as store

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
#: a Wednesday: the weekly job reports the Monday-to-Sunday week before it
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
ORG = "acme"
CHROMIUM = shutil.which("chromium") or "chromium"


def demo_email(folder: Path) -> tuple[EmailMessage, bytes]:
    """Acme's weekly admin email (with its PDF attached) and that PDF."""
    engine = db.open_engine(f"sqlite:///{folder / 'demo.db'}")
    try:
        demo.load(engine, NOW)
        org = store.get_org(engine, ORG)
        period = periods.resolve("previous-week", org.timezone, NOW)
        report = aggregate.build(engine, ORG, period, now=NOW)
    finally:
        engine.dispose()
    pdf = pdf_report.render(report)
    sender = "Usage Reports <reports@example.com>"
    attached = [email.Attachment(f"{ORG}_{period.slug}.pdf", pdf)]
    body = email_body.render(report, job="weekly-admin", sent=attached,
                             domain=email.sender_domain(sender))
    message = email.build(
        report, body, job="weekly-admin", subject="{{ organization.name }} AI usage, "
        "{{ period.label }}", sender=sender, recipients=["alice@acme.com"], now=NOW,
        attachments=attached)
    return message, pdf


def shown_html(message: EmailMessage) -> str:
    """The HTML body with its inline images as data: URLs, as a mail client shows it."""
    body = message.get_body(("html",))
    assert body is not None
    html: str = body.get_content()
    for part in message.walk():
        if part.get_content_type() == "image/png":
            cid = part["Content-ID"].strip("<>")
            data = base64.b64encode(part.get_content()).decode()
            html = html.replace(f"cid:{cid}", f"data:image/png;base64,{data}")
    return html


def email_pictures(html: str) -> None:
    """The email at a desktop width and on a 390 px phone, each as tall as it is."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            for name, width in (("email-desktop", 900), ("email-phone", 390)):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.set_content(html)
                page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)
                page.close()
        finally:
            browser.close()


def pdf_picture(pdf: bytes, folder: Path) -> None:
    """The PDF's first page at 80 dpi."""
    source = folder / "report.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                    str(source), str(IMAGES / "pdf-page1")], check=True)


def main() -> int:
    """Draw every picture into docs/images."""
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        message, pdf = demo_email(folder)
        email_pictures(shown_html(message))
        pdf_picture(pdf, folder)
    for path in sorted(IMAGES.glob("*.png")):
        sys.stdout.write(f"{path.relative_to(HERE.parent)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
