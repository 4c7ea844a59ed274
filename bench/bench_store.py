"""Benchmark: ingest and the year-long report on SQLite and PostgreSQL against hand-written
baselines, and the peak memory of a process that builds the year's report and writes it.

Run: .venv/bin/python -m bench.bench_store [--events 500000] [--sizes 100000,250000]
     [--models 10] [--db sqlite,postgresql] [--repeat 3] [--baseline-tree DIR]

``--baseline-tree`` names a checkout of another commit (``git worktree add DIR COMMIT``): its
``reporter`` is measured by the same memory children, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from bench.common import COLUMNS, FIRST, table, timed
from reporter import money, periods
from reporter.report import aggregate
from reporter.store import db, ingest
from reporter.store import orgs as store
from reporter.store.demo import synthetic_events

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
TZ = "America/New_York"
LAST = FIRST + timedelta(days=364)
AS_OF = datetime(LAST.year, LAST.month, LAST.day, 23, tzinfo=UTC)
PG_ADMIN = os.environ.get("REPORTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
#: what the memory children write after building the report (each in its own process)
WRITES = ("", "json", "xlsx", "html", "pdf", "html,pdf,xlsx,json")


def model_names(count: int) -> list[str]:
    """``count`` model ids, half of them "anthropic/model-N", half "openai/model-N"."""
    return [f"{('anthropic', 'openai')[n % 2]}/model-{n // 2}" for n in range(count)]


def write_events(size: int, models: int, members: int = 50, seed: int = 42) -> Path:
    """A CSV of ``size`` synthetic events over 363 days (fixed seed), each on one of
    ``models`` models, written once under bench/results/ and reused."""
    path = RESULTS / f"events-{size}-{models}models.csv"
    if path.exists():
        return path
    names, rng = model_names(models), random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for event in synthetic_events(size, FIRST + timedelta(days=1), 363, org="bench",
                                      members=members, seed=seed):
            event["model"] = rng.choice(names)
            writer.writerow(event)
    tmp.replace(path)
    return path


def fresh_db(folder: Path, name: str) -> Path:
    path = folder / f"{name}.db"
    engine = db.open_engine(f"sqlite:///{path}")
    store.set_org(engine, "bench", timezone=TZ)
    engine.dispose()
    return path


def baseline_ingest(path: Path, csv_path: Path) -> int:
    """The least a hand-written loader does: read the CSV, convert, executemany in one go."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    org_id = conn.execute("SELECT id FROM organizations WHERE slug='bench'").fetchone()[0]
    users: dict[str, int] = {}

    def user(email: str) -> int:
        if email not in users:
            cur = conn.execute("INSERT INTO users (email) VALUES (?)", (email,))
            users[email] = int(cur.lastrowid or 0)
            conn.execute("INSERT INTO memberships (organization_id, user_id, role) "
                         "VALUES (?, ?, 'member')", (org_id, users[email]))
        return users[email]

    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def rows() -> object:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for r in reader:
                delta = datetime.fromisoformat(r["timestamp"]) - epoch
                yield (r["id"], org_id, user(r["user_email"]),
                       (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds,
                       r["model"], r["project"] or None, int(r["input_tokens"]),
                       int(r["output_tokens"]), int(r["cache_read_tokens"] or 0),
                       int(r["cache_write_tokens"] or 0),
                       int(Decimal(r["cost_usd"]).scaleb(9)))

    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO usage_events (id, organization_id, user_id, ts_us, model, "
            "project, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
            "cost_nanos) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows())  # type: ignore[arg-type]
    count = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    conn.close()
    return int(count)


def our_ingest(path: Path, csv_path: Path) -> ingest.IngestResult:
    engine = db.open_engine(f"sqlite:///{path}")
    result = ingest.ingest_file(engine, str(csv_path))
    engine.dispose()
    return result


def _day_sql(period: periods.Period) -> str:
    segments = periods.offset_segments(period)
    whens = " ".join(f"WHEN ts_us < {start * 1_000_000} THEN {prev * 1_000_000}"
                     for (start, _), (_, prev) in zip(segments[1:], segments, strict=False))
    offset = f"CASE {whens} ELSE {segments[-1][1] * 1_000_000} END" if whens else "0"
    return f"((ts_us + {offset}) / 86400000000)"


SUMS = ("sum(cost_nanos), count(*), sum(input_tokens), sum(output_tokens), "
        "sum(cache_read_tokens), sum(cache_write_tokens)")


def baseline_report_same(path: Path, period: periods.Period) -> list[object]:
    """The same two GROUP BY queries the report runs, hand-written, through plain sqlite3."""
    conn = sqlite3.connect(path)
    where = (f"organization_id = 1 AND ts_us >= {int(period.start.timestamp()) * 1_000_000} "
             f"AND ts_us < {int(period.end.timestamp()) * 1_000_000}")
    day = _day_sql(period)
    out: list[object] = [
        conn.execute(f"SELECT {day} AS day, model, user_id, {SUMS} FROM usage_events "
                     f"WHERE {where} GROUP BY day, model, user_id").fetchall(),
        conn.execute(f"SELECT project, user_id, {SUMS} FROM usage_events WHERE {where} "
                     "GROUP BY project, user_id").fetchall(),
    ]
    conn.close()
    return out


def baseline_report_per_view(path: Path, period: periods.Period) -> list[object]:
    """One hand-written query per view, as a person would write them."""
    conn = sqlite3.connect(path)
    where = (f"organization_id = 1 AND ts_us >= {int(period.start.timestamp()) * 1_000_000} "
             f"AND ts_us < {int(period.end.timestamp()) * 1_000_000}")
    day = _day_sql(period)
    queries = [
        f"SELECT {SUMS}, count(DISTINCT user_id) FROM usage_events WHERE {where}",
        f"SELECT {day} AS day, {SUMS}, count(DISTINCT user_id) FROM usage_events "
        f"WHERE {where} GROUP BY day",
        f"SELECT {day} AS day, user_id, {SUMS} FROM usage_events WHERE {where} "
        "GROUP BY day, user_id",
        f"SELECT {day} AS day, model, {SUMS}, count(DISTINCT user_id) FROM usage_events "
        f"WHERE {where} GROUP BY day, model",
        f"SELECT {day} AS day, model, user_id, {SUMS} FROM usage_events WHERE {where} "
        "GROUP BY day, model, user_id",
        f"SELECT project, {SUMS}, count(DISTINCT user_id) FROM usage_events WHERE {where} "
        "GROUP BY project",
        f"SELECT user_id, {SUMS}, count(DISTINCT {day}) FROM usage_events WHERE {where} "
        "GROUP BY user_id",
        f"SELECT user_id, model, sum(cost_nanos), count(*) FROM usage_events WHERE {where} "
        "GROUP BY user_id, model",
    ]
    out: list[object] = [conn.execute(q).fetchall() for q in queries]
    conn.close()
    return out


def our_report(path: Path, period: periods.Period) -> object:
    engine = db.open_engine(f"sqlite:///{path}")
    report = aggregate.build(engine, "bench", period, now=AS_OF)
    engine.dispose()
    return report


def our_report_url(url: str, period: periods.Period) -> object:
    engine = db.open_engine(url)
    report = aggregate.build(engine, "bench", period, now=AS_OF)
    engine.dispose()
    return report


def pg_database(size: int, models: int, csv_path: Path) -> str:
    """A PostgreSQL database holding the CSV's events, created once and reused."""
    name = f"reporter_bench_store_{size}_{models}"
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    engine = db.open_engine(url)
    with engine.connect() as conn:
        count = conn.exec_driver_sql("SELECT count(*) FROM usage_events").scalar()
    if count != size:
        store.set_org(engine, "bench", timezone=TZ)
        result = ingest.ingest_file(engine, str(csv_path))
        assert result.inserted + result.duplicate == size, result
    engine.dispose()
    return url


def baseline_psql(url: str, period: periods.Period) -> float:
    """Seconds for psql to run the report's two GROUP BY queries and fetch their rows."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id FROM organizations WHERE slug = 'bench'").fetchone()
    assert row is not None
    where = (f"organization_id = {row[0]} AND ts_us >= {int(period.start.timestamp()) * 1_000_000}"
             f" AND ts_us < {int(period.end.timestamp()) * 1_000_000}")
    day = _day_sql(period)
    queries = [f"SELECT {day} AS day, model, user_id, {SUMS} FROM usage_events WHERE {where} "
               "GROUP BY day, model, user_id",
               f"SELECT project, user_id, {SUMS} FROM usage_events WHERE {where} "
               "GROUP BY project, user_id"]
    command = ["psql", "-X", "-q", "-o", os.devnull, url]
    for query in queries:
        command += ["-c", query]
    seconds, _ = timed(lambda: subprocess.run(command, check=True))
    return float(seconds)


MEMORY_CHILD = """
import json, resource, sys, tempfile, time
from datetime import datetime
from pathlib import Path
from reporter import render
from reporter.report import aggregate
from reporter.store import db
engine = db.open_engine(sys.argv[1])
as_of = datetime.fromisoformat(sys.argv[2])
started = time.perf_counter()
period = aggregate.resolve_period(engine, "bench", "past-year", as_of)
report = aggregate.build(engine, "bench", period, now=as_of)
built = time.perf_counter()
with tempfile.TemporaryDirectory() as folder:
    for fmt in [f for f in sys.argv[3].split(",") if f]:
        render.write(report, [fmt], Path(folder))
# VmHWM: this program's own peak (ru_maxrss keeps the parent's when it forked by vfork)
peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")]
print(json.dumps({"peak_mb": (peak[0] if peak else
                              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024,
                  "requests": report.summary.requests, "build_s": built - started,
                  "write_s": time.perf_counter() - built}))
"""


def memory(url: str, writes: str, tree: Path | None = None) -> dict[str, Any]:
    """Peak RSS (and times) of a fresh process that builds the year's report and writes
    ``writes`` (formats), with this checkout's reporter or ``tree``'s."""
    where = tree or ROOT  # the child imports reporter from there, whatever is installed
    env = {**os.environ, "PYTHONPATH": str(where)}
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, url, AS_OF.isoformat(), writes],
                          check=True, capture_output=True, text=True, env=env, cwd=where)
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def memory_rows(name: str, url: str, size: int, trees: list[tuple[str, Path | None]],
                ) -> list[list[str]]:
    """One row per reporter measured: the build's time (one run) and peak MB after
    building, and after each write."""
    rows = []
    for label, tree in trees:
        cells = [name, f"{size:,}", label]
        for writes in WRITES:
            result = memory(url, writes, tree)
            assert result["requests"] == size, result
            if not writes:
                cells.append(f"{result['build_s']:.2f} s")
            cells.append(f"{result['peak_mb']:.0f}")
        rows.append(cells)
        print(table([MEMORY_HEAD, cells]), flush=True)
    return rows


MEMORY_HEAD = ["database", "events", "reporter", "build s", "build MB", "+ json", "+ xlsx",
               "+ html", "+ pdf", "+ all four"]


def best_of(runs: int, func: object) -> float:
    times = []
    for _ in range(runs):
        seconds, _result = timed(func)  # type: ignore[arg-type]
        times.append(seconds)
    return min(times)


def sqlite_rows(size: int, csv_path: Path, folder: Path, period: periods.Period,
                repeat: int) -> tuple[list[str], str]:
    """Ingest and report on SQLite against plain sqlite3; the database's URL."""
    base_db, our_db = fresh_db(folder, f"base{size}"), fresh_db(folder, f"ours{size}")
    t_base, count = timed(lambda: baseline_ingest(base_db, csv_path))
    t_ours, result = timed(lambda: our_ingest(our_db, csv_path))
    assert result.inserted == count == size, (result, count)
    t_report = best_of(repeat, lambda: our_report(our_db, period))
    t_same = best_of(repeat, lambda: baseline_report_same(our_db, period))
    t_view = best_of(repeat, lambda: baseline_report_per_view(our_db, period))
    return ([f"{size:,}", f"{t_ours:.2f} s", f"{t_base:.2f} s", f"{t_ours / t_base:.2f}x",
             f"{t_report:.2f} s", f"{t_same:.2f} s", f"{t_report / t_same:.2f}x",
             f"{t_view:.2f} s", f"{t_report / t_view:.2f}x"], f"sqlite:///{our_db}")


def postgres_rows(size: int, models: int, csv_path: Path, period: periods.Period,
                  repeat: int) -> tuple[list[str], str]:
    """The report on PostgreSQL against psql running the same two queries; the URL."""
    url = pg_database(size, models, csv_path)
    runs = []
    for _ in range(repeat):  # alternated, so that both see the same load
        runs.append((timed(lambda: our_report_url(url, period))[0],
                     baseline_psql(url, period)))
    ours, psql = min(r[0] for r in runs), min(r[1] for r in runs)
    return [f"{size:,}", f"{ours:.2f} s", f"{psql:.2f} s", f"{ours / psql:.2f}x"], url


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--sizes", default="100000,250000",
                        help="smaller sizes measured beside the main one (memory, scaling)")
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="a checkout of another commit, measured beside this one")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    databases = [d for d in args.db.split(",") if d]
    sizes = sorted({*(int(s) for s in args.sizes.split(",") if s), args.events})
    period = periods.resolve("past-year", TZ, AS_OF)
    trees: list[tuple[str, Path | None]] = [("this checkout", None)]
    if args.baseline_tree is not None:
        trees.insert(0, (f"baseline {args.baseline_tree.name}", args.baseline_tree))
    lite = [["events", "ingest (ours)", "ingest (sqlite3)", "ratio", "report (ours)",
             "report (same SQL)", "ratio", "report (query per view)", "ratio"]]
    pg = [["events", "report (ours)", "psql, same two queries", "ratio"]]
    peaks = [MEMORY_HEAD]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            csv_path = write_events(size, args.models)
            if "sqlite" in databases:
                row, url = sqlite_rows(size, csv_path, Path(tmp), period, args.repeat)
                lite.append(row)
                print(table([lite[0], row]), flush=True)
                peaks += memory_rows("sqlite", url, size, trees)
            if "postgresql" in databases:
                row, url = postgres_rows(size, args.models, csv_path, period, args.repeat)
                pg.append(row)
                print(table([pg[0], row]), flush=True)
                peaks += memory_rows("postgresql", url, size, trees)
    print(f"\n{args.models} models, 50 members, period {period.iso_range}; "
          f"money check: {money.format_usd(1_000_000)}\n")
    for rows in (lite, pg, peaks):
        if len(rows) > 1:
            print(table(rows), end="\n\n")


if __name__ == "__main__":
    main()
