"""Benchmark: ingest and a year-long report on SQLite, against plain sqlite3 baselines.

Run: .venv/bin/python -m bench.bench_store [--events 500000] [--sizes 100000,250000]
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.common import FIRST, child_json, table, timed, write_csv
from reporter import money, periods
from reporter.report import aggregate
from reporter.store import db, ingest
from reporter.store import orgs as store

RESULTS = Path(__file__).parent / "results"
TZ = "America/New_York"
LAST = FIRST + timedelta(days=364)
AS_OF = datetime(LAST.year, LAST.month, LAST.day, 23, tzinfo=UTC)


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


MEMORY_CHILD = """
import json, sys
from datetime import datetime
from bench.common import peak_mb
from reporter import aggregate, db
engine = db.open_engine("sqlite:///" + sys.argv[1])
as_of = datetime.fromisoformat(sys.argv[2])
period = aggregate.resolve_period(engine, "bench", "past-year", as_of)
report = aggregate.build(engine, "bench", period, now=as_of)
print(json.dumps({"peak_mb": peak_mb(), "requests": report.summary.requests}))
"""


def best_of(runs: int, func: object) -> float:
    times = []
    for _ in range(runs):
        seconds, _result = timed(func)  # type: ignore[arg-type]
        times.append(seconds)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--sizes", default="100000,250000",
                        help="smaller sizes measured beside the main one (memory, scaling)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    sizes = sorted({*(int(s) for s in args.sizes.split(",") if s), args.events})
    period = periods.resolve("past-year", TZ, AS_OF)
    rows = [["events", "ingest (ours)", "ingest (sqlite3)", "ratio", "report (ours)",
             "report (same SQL)", "ratio", "report (query per view)", "ratio", "report peak MB"]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in sizes:
            csv_path = write_csv(RESULTS / f"events-{size}.csv", size)
            base_db, our_db = fresh_db(folder, f"base{size}"), fresh_db(folder, f"ours{size}")
            t_base, count = timed(lambda p=base_db, c=csv_path: baseline_ingest(p, c))
            t_ours, result = timed(lambda p=our_db, c=csv_path: our_ingest(p, c))
            assert result.inserted == count == size, (result, count)
            t_report = best_of(args.repeat, lambda p=our_db: our_report(p, period))
            t_same = best_of(args.repeat, lambda p=our_db: baseline_report_same(p, period))
            t_view = best_of(args.repeat, lambda p=our_db: baseline_report_per_view(p, period))
            memory = child_json(MEMORY_CHILD, str(our_db), AS_OF.isoformat())
            assert memory["requests"] == size
            rows.append([f"{size:,}", f"{t_ours:.2f} s", f"{t_base:.2f} s",
                         f"{t_ours / t_base:.2f}x", f"{t_report:.2f} s", f"{t_same:.2f} s",
                         f"{t_report / t_same:.2f}x", f"{t_view:.2f} s",
                         f"{t_report / t_view:.2f}x", f"{memory['peak_mb']:.0f}"])
            print(table(rows[:1] + rows[-1:]), flush=True)
    print()
    print(table(rows))
    print(f"\nperiod: {period.label}; money check: {money.format_usd(1_000_000)}")


if __name__ == "__main__":
    main()
