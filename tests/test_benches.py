"""Every benchmark in bench/ runs at its smallest size and prints its table, so none rots."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: bench module -> the arguments of its smallest run, and a heading its table must print
SMALLEST = {
    "bench_batch": (["--orgs", "2", "--events", "20", "--workers", "1",
                     "--engines", "weasyprint,chromium"], "core-s per org"),
    "bench_render": (["--per-day", "5"], "ours / Chromium"),
    "bench_xlsx": (["--events", "2000", "--repeat", "1"], "XlsxWriter"),
    "bench_store": (["--events", "2000", "--sizes", "", "--repeat", "1"], "+ all four"),
    "bench_sources": (["--rows", "1000"], "psql \\copy"),
    "bench_ingest": (["--events", "2000", "--repeat", "1"], "median ratio"),
    "bench_startup": (["--repeat", "1", "--events", "50"], "reporter generate --format json"),
}


def test_every_bench_is_listed() -> None:
    found = {path.stem for path in (ROOT / "bench").glob("bench_*.py")}
    assert found == set(SMALLEST)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_bench_runs(name: str) -> None:
    args, heading = SMALLEST[name]
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert heading in proc.stdout, proc.stdout[-3000:]
