"""Benchmark: how long the command line takes to start, against the interpreter starting alone.

Each command runs as a new process of the installed ``reporter`` script, the way a user or a
script runs it, from a folder without a jobs file, with bytecode caches written (the first,
untimed round writes them, as an installed package has them). ``generate --format json``
reads a SQLite file holding one week of an 8-member organization (fixed seed). Runs are
alternated (a round runs every command once); the table shows the best and the median of
each, and the floors of docs/PERFORMANCE.md (on a quiet machine).

Run: .venv/bin/python -m bench.bench_startup [--repeat 15] [--events 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench.common import table
from reporter.store import db, ingest
from reporter.store import orgs as store
from reporter.store.demo import synthetic_events

WEEK = date(2026, 11, 16)
#: command -> the floor it must stay under on a quiet machine, in seconds (None: a baseline)
FLOORS = {"python -c pass": None, "reporter --help": 0.25,
          "reporter generate --format json": 0.4}


def _week_db(folder: Path, events: int) -> Path:
    """A SQLite store with one week of usage of organization 'bench' (8 members)."""
    path = folder / "week.db"
    engine = db.open_engine(f"sqlite:///{path}")
    store.set_org(engine, "bench")
    rows = ((number, event) for number, event in enumerate(
        synthetic_events(events, WEEK, 7, org="bench", members=8, seed=7), start=2))
    result = ingest.ingest_rows(engine, rows, "week")
    assert result.rejected == 0, result.errors[:3]
    engine.dispose()
    return path


def _commands(folder: Path, path: Path) -> dict[str, list[str]]:
    beside = Path(sys.executable).parent / "reporter"
    script = str(beside) if beside.exists() else shutil.which("reporter")
    if script is None:
        raise SystemExit("bench_startup: no 'reporter' command (pip install -e . first)")
    last = WEEK + timedelta(days=6)
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "reporter --help": [script, "--help"],
        "reporter generate --format json": [
            script, "generate", "--db", f"sqlite:///{path}", "--org", "bench",
            "--from", WEEK.isoformat(), "--to", last.isoformat(), "--format", "json",
            "--out", str(folder / "out")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--events", type=int, default=2000, help="Events in the week.")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        commands = _commands(folder, _week_db(folder, args.events))
        times: dict[str, list[float]] = {name: [] for name in commands}
        load = os.getloadavg()[0]
        for round_ in range(args.repeat + 1):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=folder, env=env, check=True,
                               stdout=subprocess.DEVNULL)
                if round_:  # the first round writes the bytecode caches
                    times[name].append(time.perf_counter() - start)
    rows = [["command", "best s", "median s", "floor s (quiet machine)"]]
    for name, seconds in times.items():
        floor = FLOORS[name]
        median = statistics.median(seconds)
        verdict = "-" if floor is None else (
            f"{floor}: {'met' if median < floor else 'not met'} (median)")
        rows.append([name, f"{min(seconds):.3f}", f"{median:.3f}", verdict])
    print(f"{args.repeat} rounds, {args.events} events in the week, load average "
          f"{load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end")
    print(table(rows))


if __name__ == "__main__":
    main()
