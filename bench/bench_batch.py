"""Benchmark: a weekly batch for many organizations on the local pool (1 and 2 workers)
and through Celery (two local workers), with each worker's peak memory over the batch.

Run: .venv/bin/python -m bench.bench_batch [--orgs 1000] [--formats html,pdf,xlsx]
     [--runs local1,local2,celery]
(Celery needs Redis at REPORTER_BROKER_URL, default redis://127.0.0.1:6379/0.)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import peak_mb, table, timed
from reporter.config import Config, load
from reporter.jobs import plan, runner
from reporter.jobs.units import Outcome, Unit
from reporter.service import executors
from reporter.store import db
from reporter.store import orgs as store
from reporter.store.demo import synthetic_events
from reporter.store.ingest import ingest_rows

RESULTS = Path(__file__).parent / "results"
NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)  # a Monday: the batch reports 16-22 November
WEEK = date(2026, 11, 16)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
JOBS = """\
output: out
executor: {{kind: {kind}, workers: {workers}, max_reports_per_worker: 50,
           broker_url: "{broker}"}}
scheduler: {{unit_timeout_seconds: 600}}
jobs:
  weekly:
    schedule: "0 7 * * mon"
    period: previous-week
    formats: [{formats}]
"""


def database(orgs: int, events: int) -> Path:
    """A SQLite file with ``orgs`` organizations and ``events`` events each in the week."""
    path = RESULTS / f"batch-{orgs}-{events}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.db")
    engine = db.open_engine(f"sqlite:///{tmp}")
    for number in range(orgs):
        slug = f"org{number:04d}"
        store.set_org(engine, slug, name=f"Organization {number}",
                      timezone=ZONES[number % len(ZONES)])
        rows = synthetic_events(events, WEEK, 7, org=slug, members=8, seed=number)
        ingest_rows(engine, enumerate(rows, start=1), slug)
    engine.dispose()
    tmp.replace(path)
    return path


def measured(unit: Unit, force: bool, dry_run: bool, now: datetime, sent: float) -> Outcome:
    """The pool's task, noting the worker's pid and peak memory after the unit."""
    outcome = executors._execute(unit, force, dry_run, now, sent)
    return Outcome(outcome.unit, outcome.state, outcome.seconds, outcome.error,
                   note=f"{os.getpid()} {peak_mb():.0f}")


def prepare(folder: Path, source: Path, kind: str, workers: int, formats: str) -> Config:
    """A fresh copy of the database and a config for one run."""
    folder.mkdir(parents=True)
    (folder / "r.db").write_bytes(source.read_bytes())
    broker = os.environ.get("REPORTER_BROKER_URL", "redis://127.0.0.1:6379/0")
    (folder / "jobs.yaml").write_text(JOBS.format(kind=kind, workers=workers, broker=broker,
                                                  formats=formats))
    return load(folder / "jobs.yaml")


def batch(folder: Path, config: Config, executor: Any) -> tuple[float, list[Outcome]]:
    engine = db.open_engine(f"sqlite:///{folder / 'r.db'}")
    units = plan.plan(engine, config, "weekly", as_of=NOW, trigger="schedule")
    seconds, outcomes = timed(lambda: runner.run_units(engine, config, units, now=NOW,
                                                       executor=executor))
    with engine.connect() as conn:
        delivered = conn.execute(text("SELECT count(*) FROM runs WHERE state='delivered' "
                                      "AND deliveries=1")).scalar()
    engine.dispose()
    failed = [o for o in outcomes if o.state != "delivered"]
    assert not failed, failed[:3]
    assert delivered == len(units), (delivered, len(units))
    return seconds, outcomes


def local(root: Path, source: Path, workers: int, formats: str) -> dict[str, Any]:
    folder = root / f"local-{workers}"
    config = prepare(folder, source, "local", workers, formats)
    pool = executors.LocalPool(config, f"sqlite:///{folder / 'r.db'}",
                               workers=workers, max_reports=50, task=measured)
    try:
        seconds, outcomes = batch(folder, config, pool)
    finally:
        pool.close()
    # each worker process's peak, in the order the processes started
    peaks: dict[str, float] = {}
    for outcome in outcomes:
        pid, peak = (outcome.note or "0 0").split()
        peaks[pid] = max(peaks.get(pid, 0.0), float(peak))
    lives = list(peaks.values())
    return {"name": f"local, {workers} worker{'s' if workers > 1 else ''}", "seconds": seconds,
            "units": len(outcomes), "start_mb": max(lives[:workers]),
            "end_mb": max(lives[-workers:]), "max_mb": max(lives), "processes": len(lives)}


def celery(root: Path, source: Path, workers: int, formats: str) -> dict[str, Any]:
    folder = root / "celery"
    config = prepare(folder, source, "celery", workers, formats)
    command = str(Path(sys.executable).parent / "reporter")
    procs = []
    for number in range(workers):
        with (folder / f"worker-{number}.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [command, "worker", "--config", "jobs.yaml", "--db",
                 f"sqlite:///{folder / 'r.db'}", "--concurrency", "1", "-v"], cwd=folder,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        for number in range(workers):
            while b" ready." not in (folder / f"worker-{number}.log").read_bytes():
                time.sleep(0.2)
        seconds, outcomes = batch(folder, config, executors.from_config(
            config, f"sqlite:///{folder / 'r.db'}"))
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    return {"name": f"Celery, {workers} workers", "seconds": seconds, "units": len(outcomes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200, help="Events per organization.")
    parser.add_argument("--formats", default="html,pdf,xlsx")
    parser.add_argument("--runs", default="local1,local2,celery",
                        help="Which batches: local1, local2, celery.")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    source = database(args.orgs, args.events)
    formats = ", ".join(args.formats.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        runs = []
        for name in args.runs.split(","):
            if name == "celery":
                runs.append(celery(root, source, 2, formats))
            else:
                runs.append(local(root, source, int(name.removeprefix("local")), formats))
    base = runs[0]["seconds"]
    rows = [["executor", "wall time", "reports/min", f"vs {runs[0]['name']}",
             "worker peak MB: first / last / max (processes)"]]
    for run in runs:
        memory = (f"{run['start_mb']:.0f} / {run['end_mb']:.0f} / {run['max_mb']:.0f} "
                  f"({run['processes']} processes)" if "start_mb" in run else "-")
        rows.append([run["name"], f"{run['seconds']:.1f} s",
                     f"{run['units'] / run['seconds'] * 60:.0f}",
                     f"{base / run['seconds']:.2f}x", memory])
    print(f"{args.orgs} organizations x {args.events} events, formats {formats}, "
          f"{os.cpu_count()} cores, {timedelta(seconds=round(sum(r['seconds'] for r in runs)))}"
          " in batches")
    print(table(rows))


if __name__ == "__main__":
    main()
