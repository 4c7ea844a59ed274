"""Benchmark: the weekly reports (HTML + PDF + XLSX) of many organizations on worker
processes: core-seconds per organization and each worker's peak memory over the batch.

Run: .venv/bin/python -m bench.bench_batch [--orgs 1000] [--events 200] [--workers 2]
     [--formats html,pdf,xlsx] [--max-reports 50]

Each organization is one task on a process pool whose workers are replaced after
``--max-reports`` tasks (as the service's pool does): it builds the report
(``reporter.report.aggregate.build``) and renders each format (``reporter.render.render``).
A task's cost is its worker's CPU time for it (``time.process_time``: user + system, threads
included); "warm" leaves out the first task of each worker, which pays for imports and
font loading. The database (organizations in five timezones, 8 members, events in the week
of 16-22 November 2026) is built once under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.common import peak_mb, table
from reporter.store import db
from reporter.store import orgs as store
from reporter.store.demo import synthetic_events
from reporter.store.ingest import ingest_rows

RESULTS = Path(__file__).parent / "results"
NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)  # a Monday: the batch reports 16-22 November
WEEK = date(2026, 11, 16)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
MEMBERS = 8

_worker: dict[str, Any] = {}


def database(orgs: int, events: int) -> Path:
    """A SQLite file with ``orgs`` organizations and ``events`` events each in the week."""
    path = RESULTS / f"batch-{orgs}-{events}.db"
    if path.exists():
        return path
    RESULTS.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp.db")
    tmp.unlink(missing_ok=True)
    engine = db.open_engine(f"sqlite:///{tmp}")
    for number in range(orgs):
        slug = f"org{number:04d}"
        store.set_org(engine, slug, name=f"Organization {number}",
                      timezone=ZONES[number % len(ZONES)])
        rows = synthetic_events(events, WEEK, 7, org=slug, members=MEMBERS, seed=number)
        ingest_rows(engine, enumerate(rows, start=1), slug)
    engine.dispose()
    tmp.replace(path)
    return path


def _init(url: str, formats: list[str]) -> None:
    _worker["engine"] = db.open_engine(url, migrate=False)
    _worker["formats"] = formats
    _worker["tasks"] = 0


def report_task(slug: str) -> dict[str, Any]:
    """Build and render one organization's weekly report in this worker; what it cost."""
    from reporter import render
    from reporter.report import aggregate

    engine = _worker["engine"]
    _worker["tasks"] += 1
    cpu, wall = time.process_time(), time.perf_counter()
    period = aggregate.resolve_period(engine, slug, "previous-week", NOW)
    report = aggregate.build(engine, slug, period, now=NOW)
    size = sum(len(render.render(report, fmt)) for fmt in _worker["formats"])
    return {"pid": os.getpid(), "first": _worker["tasks"] == 1, "bytes": size,
            "cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
            "peak_mb": peak_mb()}


def run(source: Path, workers: int, formats: list[str], max_reports: int) -> dict[str, Any]:
    """Every organization of ``source`` once, in slug order, on ``workers`` processes."""
    url = f"sqlite:///{source}"
    engine = db.open_engine(url, migrate=False)
    slugs = [org.slug for org in store.list_orgs(engine)]
    engine.dispose()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["reporter.render.pdf_report", "reporter.render.xlsx_report",
                                    "reporter.report.aggregate"])
    started = time.perf_counter()
    # multiprocessing's pool: ProcessPoolExecutor can hang replacing workers on Python 3.11
    # when every task is submitted at once (max_tasks_per_child)
    with context.Pool(workers, initializer=_init, initargs=(url, formats),
                      maxtasksperchild=max_reports) as pool:
        tasks = list(pool.imap(report_task, slugs))
    seconds = time.perf_counter() - started
    warm = [t["cpu"] for t in tasks if not t["first"]] or [t["cpu"] for t in tasks]
    peaks: dict[int, float] = {}  # each worker's peak, in the order the workers started
    for task in tasks:
        peaks[task["pid"]] = max(peaks.get(task["pid"], 0.0), task["peak_mb"])
    lives = list(peaks.values())
    return {"orgs": len(tasks), "seconds": seconds, "cpu": sum(t["cpu"] for t in tasks),
            "warm_mean": statistics.fmean(warm), "warm_median": statistics.median(warm),
            "first_mean": statistics.fmean(t["cpu"] for t in tasks if t["first"]),
            "start_mb": max(lives[:workers]), "end_mb": max(lives[-workers:]),
            "max_mb": max(lives), "processes": len(lives),
            "kb": sum(t["bytes"] for t in tasks) / len(tasks) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200, help="Events per organization.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--formats", default="html,pdf,xlsx")
    parser.add_argument("--max-reports", type=int, default=50,
                        help="Tasks a worker runs before it is replaced.")
    args = parser.parse_args()
    source = database(args.orgs, args.events)
    formats = args.formats.split(",")
    result = run(source, args.workers, formats, args.max_reports)
    print(f"{result['orgs']} organizations x {args.events} events, {MEMBERS} members, formats "
          f"{', '.join(formats)}, {args.workers} workers on {os.cpu_count()} cores")
    print(table([
        ["wall time", "reports/min", "core-s per org, warm (mean / median)",
         "core-s, first of a worker", "core-s per org, all", "output KB per org",
         "worker peak MB: first / last / max (processes)"],
        [f"{result['seconds']:.1f} s", f"{result['orgs'] / result['seconds'] * 60:.0f}",
         f"{result['warm_mean']:.3f} / {result['warm_median']:.3f}",
         f"{result['first_mean']:.3f}", f"{result['cpu'] / result['orgs']:.3f}",
         f"{result['kb']:.0f}",
         f"{result['start_mb']:.0f} / {result['end_mb']:.0f} / {result['max_mb']:.0f} "
         f"({result['processes']} processes)"]]))


if __name__ == "__main__":
    main()
