"""Shared benchmark helpers: synthetic data files, timing, peak memory of a child process."""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from reporter.store.demo import synthetic_events
from reporter.store.ingest import FIELDS

COLUMNS = ["id", "timestamp", "organization", "user_email", "model", "project", "input_tokens",
           "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"]
assert set(COLUMNS) == FIELDS
FIRST = date(2025, 1, 1)


def write_csv(path: Path, count: int, *, days: int = 363, org: str = "bench",
              members: int = 50, seed: int = 42) -> Path:
    """A CSV of ``count`` synthetic events (fixed seed), written once and reused."""
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        start = FIRST + timedelta(days=1)  # whole days inside a year in any timezone
        for event in synthetic_events(count, start, days, org=org, members=members, seed=seed):
            writer.writerow(event)
    tmp.replace(path)
    return path


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def child_json(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter and return the JSON object it prints last.

    Child code reports its own peak memory with ``peak_mb()``, so each measurement is
    that process's alone.
    """
    proc = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                          text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def peak_mb() -> float:
    """This process's peak resident memory in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for index, r in enumerate(rows):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
