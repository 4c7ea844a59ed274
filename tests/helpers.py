"""Shared test helpers: usage rows and files, loading them, a small report with hostile names,
and waiting for a condition. Test modules import these from here, never from each other."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from reporter.periods import Period
from reporter.render import json_report
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import orgs as store
from reporter.store.ingest import IngestResult, ingest_rows

#: the columns of a usage CSV, in the order the contract lists them
HEADER = ["id", "timestamp", "organization", "user_email", "model", "project", "input_tokens",
          "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"]

HOSTILE_ORG = "Acme <script>document.title='pwned'</script> 🚀"
HOSTILE_NAME = '<img src=x onerror=alert(1)> =HYPERLINK("http://evil.example","x") 😀'
HOSTILE_PROJECT = '=HYPERLINK("http://evil.example","click")'


def row(event_id: str, timestamp: str, *, org: str = "acme", email: str = "alice@acme.com",
        model: str = "anthropic/claude-sonnet-4", project: str = "", input_tokens: int = 10,
        output_tokens: int = 5, cost: str = "0.01", cache_read: int = 0,
        cache_write: int = 0) -> dict[str, Any]:
    """One usage row as a file holds it (every value a string)."""
    return {"id": event_id, "timestamp": timestamp, "organization": org, "user_email": email,
            "model": model, "project": project, "input_tokens": str(input_tokens),
            "output_tokens": str(output_tokens), "cache_read_tokens": str(cache_read),
            "cache_write_tokens": str(cache_write), "cost_usd": cost}


#: three good rows: two organizations, a nine-decimal cost, a half-hour offset, cache tokens
GOOD = [row("r1", "2024-05-01T10:00:00Z", cost="0.123456789", project="example-repo",
            cache_read=7, cache_write=3),
        row("r2", "2024-05-01T12:30:00.123456+05:30", email="Bob@Acme.com", cost="2"),
        row("r3", "2024-05-02T00:00:00-04:00", org="beta", email="carol@beta.io", cost="0")]


def load(engine: Engine, rows: Iterable[dict[str, Any]], name: str = "test") -> IngestResult:
    """Ingest ``rows`` as if they were lines 1, 2... of a file called ``name``."""
    return ingest_rows(engine, enumerate(rows, start=1), name)


def write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] = HEADER) -> Path:
    """``rows`` as a CSV file with a header line."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """``rows`` as JSON Lines; a string is written as the line itself."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def small_report(engine: Engine) -> Report:
    """A week with a day of no usage, nine-decimal costs, a null project and hostile names."""
    store.set_org(engine, "acme", name=HOSTILE_ORG, timezone="Europe/Berlin")
    load(engine, [
        row("e1", "2026-11-02T09:00:00Z", cost="1.250000001", input_tokens=1200,
            output_tokens=34, project="example-repo"),
        row("e2", "2026-11-02T10:00:00Z", email="bob@acme.com", cost="0.5",
            model="openai/gpt-5", input_tokens=2000, output_tokens=1000),
        row("e3", "2026-11-04T10:00:00Z", email="mallory@acme.com", cost="0.000000009",
            model="<b>model</b>", project=HOSTILE_PROJECT, input_tokens=7, output_tokens=3),
        row("e4", "2026-11-08T22:30:00Z", cost="3", input_tokens=1_000_000,
            output_tokens=250_000),
    ])
    store.set_member(engine, "acme", "mallory@acme.com", name=HOSTILE_NAME)
    period = Period("custom", date(2026, 11, 2), date(2026, 11, 8), "Europe/Berlin")
    return aggregate.build(engine, "acme", period, now=datetime(2026, 11, 9, 12, tzinfo=UTC))


def report_json(engine: Engine, org: str, period: Period,
                member: str | None = None) -> dict[str, Any]:
    """The JSON report of ``org`` over ``period``, checked to be the report model's own."""
    report = aggregate.build(engine, org, period, member=member,
                             now=datetime(2025, 1, 1, tzinfo=UTC))
    data: dict[str, Any] = json.loads(json_report.render(report))
    assert data == json.loads(json.dumps(json_report.to_dict(report)))
    return data


def wait_for(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    """Poll ``check`` until it holds; AssertionError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


#: the ``reporter`` command of the venv running the tests
REPORTER = Path(sys.executable).parent / "reporter"


def reporter(*args: str, cwd: Path, stdin: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``reporter ARGS`` as a real process in ``cwd`` (without REPORTER_DATABASE_URL)."""
    env = {k: v for k, v in os.environ.items() if k != "REPORTER_DATABASE_URL"}
    return subprocess.run([str(REPORTER), *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
