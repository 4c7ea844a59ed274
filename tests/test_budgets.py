"""Monthly budgets: stored exactly, set from the CLI, and shown in every report of a month."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import Engine

from reporter.cli.app import main
from reporter.errors import ReporterError
from reporter.periods import Period
from reporter.render import html_report, json_report, xlsx_report
from reporter.report import aggregate, budget
from reporter.store import orgs as store
from tests.delivery_support import report_email
from tests.helpers import load, row

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _month(engine: Engine) -> None:
    """Acme (New York): alice $100 a day Nov 1-21 (local), bob $50 on Nov 10, and a row
    just after midnight UTC on Oct 31 local (must not count) and on Nov 22 local."""
    store.set_org(engine, "acme", name="Acme Corp", timezone="America/New_York")
    rows = [row(f"a{d}", f"2026-11-{d:02d}T15:00:00-05:00", cost="100.000000001")
            for d in range(1, 22)]
    rows.append(row("b1", "2026-11-10T12:00:00-05:00", email="bob@acme.com", cost="50"))
    rows.append(row("oct", "2026-11-01T03:00:00Z", cost="999"))  # Oct 31, 23:00 local
    rows.append(row("late", "2026-11-22T04:59:59Z", cost="777"))  # Nov 21, 23:59:59 local
    rows.append(row("after", "2026-11-22T05:00:00Z", cost="555"))  # Nov 22 local
    load(engine, rows)


def test_parse_budget_is_exact_and_says_what_is_wrong() -> None:
    """Amounts are exact nano-dollars; 'none' clears; bad text is one clear message."""
    assert store.parse_budget("5000.00") == 5_000 * 10**9
    assert store.parse_budget(" 0.000000001 ") == 1
    assert store.parse_budget("NONE") is None
    for text, needle in (("-5", "not an amount"), ("0", "more than 0"), ("1e3", "not an"),
                         ("5,000", "not an amount"), ("1.0000000001", "9 decimal"),
                         ("2000000000", "more than 1,000,000,000"), ("٣", "not an amount")):
        with pytest.raises(ReporterError, match=needle):
            store.parse_budget(text)


def test_budgets_are_stored_set_and_cleared(engine: Engine) -> None:
    """Organization and member budgets survive a round trip exactly; 'none' clears them;
    changing other settings leaves them alone."""
    info = store.set_org(engine, "acme", monthly_budget="5000.123456789")
    assert info.monthly_budget_nanos == 5_000_123_456_789
    assert store.set_org(engine, "acme", name="Acme Corp").monthly_budget_nanos == \
        5_000_123_456_789
    member = store.set_member(engine, "acme", "Alice@Acme.com", monthly_budget="250")
    assert member.monthly_budget_nanos == 250 * 10**9
    assert store.set_member(engine, "acme", "alice@acme.com", role="admin") \
        .monthly_budget_nanos == 250 * 10**9
    org = store.get_org(engine, "acme")
    assert store.get_member(engine, org, "alice@acme.com").monthly_budget_nanos == 250 * 10**9
    assert store.set_org(engine, "acme", monthly_budget="none").monthly_budget_nanos is None
    assert store.set_member(engine, "acme", "alice@acme.com", monthly_budget="none") \
        .monthly_budget_nanos is None
    new = store.set_org(engine, "fresh", monthly_budget="10", timezone="Asia/Kolkata")
    assert (new.monthly_budget_nanos, new.timezone) == (10 * 10**9, "Asia/Kolkata")


def test_cli_sets_budgets(tmp_path: Path) -> None:
    """``org set --monthly-budget`` and ``member set --monthly-budget`` print the budget; a
    bad amount is one line naming it."""
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    runner = CliRunner()
    done = runner.invoke(main, ["org", "set", "acme", "--monthly-budget", "5000.00", *db])
    assert done.exit_code == 0, done.output
    assert "monthly budget $5000.00" in done.output
    done = runner.invoke(main, ["member", "set", "acme", "a@acme.com", "--monthly-budget",
                                "12.5", *db])
    assert done.exit_code == 0
    assert "monthly budget $12.50" in done.output
    done = runner.invoke(main, ["org", "set", "acme", "--monthly-budget", "none", *db])
    assert done.exit_code == 0
    assert "budget" not in done.output
    bad = runner.invoke(main, ["org", "set", "acme", "--monthly-budget", "lots", *db])
    assert bad.exit_code != 0
    lines = [line for line in bad.output.splitlines() if line]
    assert len(lines) == 1, bad.output
    assert "monthly budget 'lots'" in lines[0]


def test_block_follows_the_contract() -> None:
    """percent rounded down to 1 decimal; the forecast is spent ÷ D × days, to the nano-dollar."""
    made = budget.block(3 * 10**9, 1 * 10**9, date(2026, 2, 3))
    assert made.month_text == "2026-02"
    assert made.percent == Decimal("33.3")
    assert (made.days_elapsed, made.days_in_month) == (3, 28)
    assert made.forecast_nanos == 9_333_333_333  # 1 ÷ 3 × 28 = 9.3333333333...
    assert made.over
    assert "near $9.33, over the $3.00 budget" in made.text
    within = budget.block(10 * 10**9, 1 * 10**9, date(2026, 2, 3))
    assert not within.over
    assert within.text.endswith("within budget.")
    over = budget.block(5_000 * 10**9, 4_012_550_000_000, date(2026, 11, 21))
    assert over.percent == Decimal("80.2")  # 80.251: rounded down, never past a threshold
    assert over.over
    assert over.text == ("$4,012.55 of the $5,000.00 November budget spent (80.2%) with 9 "
                         "days to go; at this pace the month ends near $5,700, over the "
                         "$5,000.00 budget.")
    done = budget.block(100 * 10**9, 120 * 10**9, date(2026, 11, 30))
    assert done.text.endswith("$20.00 over budget.")


def test_report_carries_the_budget_in_every_format(engine: Engine) -> None:
    """A report inside one month shows the month's budget from the 1st through its last
    day (local days); JSON, HTML, email (both parts) and XLSX show the same block."""
    _month(engine)
    store.set_org(engine, "acme", monthly_budget="2500")
    week = Period("previous-week", date(2026, 11, 15), date(2026, 11, 21), "America/New_York")
    report = budget.attach(engine, aggregate.build(engine, "acme", week, now=NOW))
    spent = 21 * 100_000_000_001 + 50 * 10**9 + 777 * 10**9
    got = json.loads(json_report.render(report))["budget"]
    assert got["month"] == "2026-11"
    assert Decimal(got["monthly_usd"]) == 2500
    assert Decimal(got["spent_usd"]) * 10**9 == spent
    exact = Decimal(spent) * 100 / (2500 * 10**9)
    assert got["percent"] == f"{exact.quantize(Decimal('0.1'), rounding='ROUND_FLOOR')}"
    assert Decimal(got["forecast_usd"]) * 10**9 == round(Decimal(spent) * 30 / 21)
    assert "over the $2,500.00 budget" in report.budget.text  # type: ignore[union-attr]

    page = html_report.page(report)
    assert page.index('class="budget"') < page.index("<main>")
    msg = report_email(report, job="weekly", subject="{{ organization.name }}",
                      sender="r@example.com", recipients=["a@example.com"], attachments=[],
                      max_attachment_bytes=10**6, now=NOW)
    parsed = message_from_bytes(msg.as_bytes())
    parts: dict[str, str] = {}
    for part in parsed.walk():
        if isinstance(part, Message) and part.get_content_type() in ("text/plain",
                                                                    "text/html"):
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts[part.get_content_type()] = payload.decode()
    text = report.budget.text  # type: ignore[union-attr]
    plain = [line for line in parts["text/plain"].splitlines() if line.strip()]
    assert text in plain[:3], plain[:4]
    assert 'class="budget"' in parts["text/html"]
    assert parts["text/html"].index("budget") < parts["text/html"].index("Total Spent")

    book = load_workbook(io.BytesIO(xlsx_report.render(report)))
    cells = {ws_row[0].value: ws_row[1].value for ws_row in book["Summary"].iter_rows()
             if ws_row[0].value}
    assert Decimal(str(cells["Monthly budget (USD)"])) == 2500
    assert cells["Budget"] == text


def test_personal_report_uses_the_members_budget(engine: Engine) -> None:
    """A member's report shows their own budget and spend; none without one; none across
    months."""
    _month(engine)
    store.set_org(engine, "acme", monthly_budget="100000")
    store.set_member(engine, "acme", "bob@acme.com", monthly_budget="100")
    week = Period("custom", date(2026, 11, 8), date(2026, 11, 14), "America/New_York")
    bob = budget.attach(engine, aggregate.build(engine, "acme", week, member="bob@acme.com"))
    assert bob.budget is not None
    assert (bob.budget.spent_nanos, bob.budget.percent) == (50 * 10**9, Decimal("50.0"))
    assert "your $100.00 November budget" in bob.budget.text
    alice = aggregate.build(engine, "acme", week, member="alice@acme.com")
    assert budget.attach(engine, alice).budget is None
    across = Period("custom", date(2026, 10, 28), date(2026, 11, 3), "America/New_York")
    assert budget.attach(engine, aggregate.build(engine, "acme", across)).budget is None
    assert json.loads(json_report.render(alice))["budget"] is None


def test_an_amount_below_its_budget_never_reads_as_reaching_it() -> None:
    """$99.995 of $100 reads $99.99 (rounded half up it would read $100.00 next to a
    threshold of 100% not reached); a forecast just below reads below; amounts away from
    the budget round as usual."""
    hundred = 100 * 10**9
    assert budget.usd(99_995_000_000, hundred) == "$99.99"
    assert budget.usd(99_995_000_000) == "$100.00"
    assert budget.usd(50_005_000_000, hundred) == "$50.01"
    assert budget.usd(hundred, hundred) == "$100.00"
    assert budget.near(995 * 10**9, 1000 * 10**9) == "$990"
    assert budget.near(1_004 * 10**9, 1000 * 10**9) == "$1,000"
    assert budget.near(226 * 10**9, 1000 * 10**9) == "$230"
