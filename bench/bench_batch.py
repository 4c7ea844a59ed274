"""Benchmark: the weekly reports (HTML + PDF + XLSX) of many organizations on worker
processes: core-seconds per organization and each worker's peak memory over the batch.

Run: .venv/bin/python -m bench.bench_batch [--orgs 1000] [--events 200] [--workers 2]
     [--formats html,pdf,xlsx] [--max-reports 50] [--engines weasyprint,chromium --rounds 2]

Each organization is one task on a process pool whose workers are replaced after
``--max-reports`` tasks (as the service's pool does): it builds the report
(``reporter.report.aggregate.build``) and renders each format (``reporter.render.render``).
A task's cost is its worker's CPU time for it (``time.process_time``: user + system, threads
included) plus the CPU time its child processes spent meanwhile (the Chromium engine's
browser and Playwright's driver: user + system of every descendant, and of the children they
reaped, from /proc); "warm" leaves out the first task of each worker, which pays for imports,
font loading and starting the browser. ``--engines`` runs the whole batch once per PDF engine,
alternated ``--rounds`` times. The database (organizations in five timezones, 8 members,
events in the week of 16-22 November 2026) is built once under ``bench/results/``.
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


def _init(url: str, formats: list[str], pdf_engine: str) -> None:
    from reporter import render

    _worker["engine"] = db.open_engine(url, migrate=False)
    _worker["formats"] = formats
    _worker["options"] = render.Options(pdf_engine=pdf_engine)
    _worker["tasks"] = 0


TICKS = os.sysconf("SC_CLK_TCK")


def _descendants() -> list[str]:
    """The /proc/PID/stat fields of every process below this one."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().decode().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = fields
    below, todo = [], [os.getpid()]
    while todo:
        parent = todo.pop()
        for pid, fields in stats.items():
            if int(fields[1]) == parent:  # fields after the name: state, ppid, ...
                below.append(pid)
                todo.append(pid)
    return [str(pid) for pid in below]


def children_usage() -> tuple[float, float]:
    """CPU seconds of this process's descendants (with the children they reaped) and the
    megabytes they hold (the sum of their proportional set sizes)."""
    cpu = rss = 0.0
    for pid in _descendants():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().decode().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += sum(int(v) for v in fields[11:15]) / TICKS  # utime stime cutime cstime
        rss += _pss_mb(pid)
    return cpu, rss


def _pss_mb(pid: str) -> float:
    """The process's proportional set size (shared pages divided among their users: the
    browser's processes share most of theirs, so a sum of resident sets overstates)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def report_task(slug: str) -> dict[str, Any]:
    """Build and render one organization's weekly report in this worker; what it cost."""
    from reporter import render
    from reporter.report import aggregate

    engine = _worker["engine"]
    _worker["tasks"] += 1
    children, _ = children_usage()
    cpu, wall = time.process_time(), time.perf_counter()
    period = aggregate.resolve_period(engine, slug, "previous-week", NOW)
    report = aggregate.build(engine, slug, period, now=NOW)
    size = sum(len(render.render(report, fmt, _worker["options"]))
               for fmt in _worker["formats"])
    own = time.process_time() - cpu
    after, child_mb = children_usage()
    return {"pid": os.getpid(), "first": _worker["tasks"] == 1, "bytes": size,
            "cpu": own + after - children, "own": own, "wall": time.perf_counter() - wall,
            "peak_mb": peak_mb(), "child_mb": child_mb}


def run(source: Path, workers: int, formats: list[str], max_reports: int,
        pdf_engine: str = "weasyprint") -> dict[str, Any]:
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
    with context.Pool(workers, initializer=_init, initargs=(url, formats, pdf_engine),
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
            "own_mean": statistics.fmean(t["own"] for t in tasks if not t["first"])
            if len(warm) < len(tasks) else statistics.fmean(t["own"] for t in tasks),
            "child_mb": max(t["child_mb"] for t in tasks),
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
    parser.add_argument("--engines", default="weasyprint",
                        help="PDF engines, comma-separated (weasyprint, chromium); the batch "
                             "runs once per engine, alternated.")
    parser.add_argument("--rounds", type=int, default=1, help="Times each engine runs.")
    args = parser.parse_args()
    source = database(args.orgs, args.events)
    formats = args.formats.split(",")
    engines = args.engines.split(",")
    print(f"{args.orgs} organizations x {args.events} events, {MEMBERS} members, formats "
          f"{', '.join(formats)}, {args.workers} workers on {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    rows = [["PDF engine", "wall time", "reports/min", "core-s per org, warm (mean / median)",
             "of which the worker itself", "core-s, first of a worker", "core-s per org, all",
             "output KB per org", "worker peak MB: first / last / max (processes)",
             "browser PSS MB (max)"]]
    for _ in range(args.rounds):
        for engine in engines:
            result = run(source, args.workers, formats, args.max_reports, engine)
            rows.append([
                engine, f"{result['seconds']:.1f} s",
                f"{result['orgs'] / result['seconds'] * 60:.0f}",
                f"{result['warm_mean']:.3f} / {result['warm_median']:.3f}",
                f"{result['own_mean']:.3f}", f"{result['first_mean']:.3f}",
                f"{result['cpu'] / result['orgs']:.3f}", f"{result['kb']:.0f}",
                f"{result['start_mb']:.0f} / {result['end_mb']:.0f} / {result['max_mb']:.0f} "
                f"({result['processes']} processes)", f"{result['child_mb']:.0f}"])
    print(table(rows))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
