"""Benchmark: ingest of one CSV against the databases' own loaders, runs alternated.

SQLite: our ``ingest_file`` against a plain ``sqlite3`` ``executemany`` of the same rows
(read with ``csv.DictReader``, converted, ``INSERT OR IGNORE`` in one transaction) into the
same schema, each into a fresh database. PostgreSQL: our ``ingest_file`` (COPY into a staging
table, one INSERT ... SELECT) against ``psql \\copy`` of the same CSV into a plain table of
its columns (no key, no index, no conversion), each into a fresh table or database; and
(``postgresql-same-table``) psql loading the same CSV into our schema by hand: ``\\copy``
into a staging table, then one INSERT ... SELECT that converts, joins and skips duplicates.
Every run of ours validates every row; the ratio of each pair is the time of ours over the
baseline's, and the table shows the best of each and the median of the pairs' ratios.

Run: .venv/bin/python -m bench.bench_ingest [--events 100000] [--repeat 5]
     [--db sqlite,postgresql,postgresql-same-table]
Needs the PostgreSQL server of the tests (REPORTER_TEST_PG) for ``postgresql``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.bench_sources import PLAIN
from bench.bench_store import PG_ADMIN, RESULTS, TZ, baseline_ingest, fresh_db, write_events
from bench.common import table, timed
from reporter.store import db, ingest
from reporter.store import orgs as store

DATABASE = "reporter_bench_ingest"


#: CPU seconds of the last SQLite run in this process (both sides run here, so their CPU
#: time compares them with less of the machine's load in it than their wall time)
CPU: dict[str, float] = {}


def ours_sqlite(folder: Path, csv_path: Path) -> tuple[float, int]:
    path = fresh_db(folder, "ours")
    engine = db.open_engine(f"sqlite:///{path}")
    cpu = time.process_time()

    def run() -> ingest.IngestResult:
        result = ingest.ingest_file(engine, str(csv_path))
        engine.dispose()  # closing the database, as the baseline's time includes
        return result

    seconds, result = timed(run)
    CPU["ours"] = time.process_time() - cpu
    path.unlink()
    assert result.rejected == 0, result.errors[:3]
    return seconds, result.inserted


def base_sqlite(folder: Path, csv_path: Path) -> tuple[float, int]:
    path = fresh_db(folder, "base")
    cpu = time.process_time()
    seconds, count = timed(lambda: baseline_ingest(path, csv_path))
    CPU["base"] = time.process_time() - cpu
    path.unlink()
    return seconds, count


def _recreate() -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{DATABASE}"


def ours_postgres(_folder: Path, csv_path: Path) -> tuple[float, int]:
    url = _recreate()
    engine = db.open_engine(url)  # migrated before the clock starts
    store.set_org(engine, "bench", timezone=TZ)
    seconds, result = timed(lambda: ingest.ingest_file(engine, str(csv_path)))
    engine.dispose()
    assert result.rejected == 0, result.errors[:3]
    return seconds, result.inserted


def base_postgres(_folder: Path, csv_path: Path) -> tuple[float, int]:
    url = _recreate()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PLAIN)
    seconds, _ = timed(lambda: subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
         f"\\copy plain_events FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"], check=True))
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM plain_events").fetchone()
    return seconds, int(row[0]) if row else 0


#: psql loading the CSV into our schema by hand: \copy into a staging table, then the
#: organization's members and one INSERT ... SELECT that converts, joins and skips duplicates
SAME_TABLE = """
CREATE TEMPORARY TABLE staged (id text, "timestamp" timestamptz, organization text,
    user_email text, model text, project text, input_tokens bigint, output_tokens bigint,
    cache_read_tokens bigint, cache_write_tokens bigint, cost_usd numeric);
\\copy staged FROM '{csv}' WITH (FORMAT csv, HEADER true)
BEGIN;
INSERT INTO users (email) SELECT DISTINCT lower(user_email) FROM staged
    ON CONFLICT DO NOTHING;
INSERT INTO memberships (organization_id, user_id, role)
    SELECT DISTINCT o.id, u.id, 'member' FROM staged s
    JOIN organizations o ON o.slug = s.organization JOIN users u ON u.email = lower(s.user_email)
    ON CONFLICT DO NOTHING;
INSERT INTO usage_events (id, organization_id, user_id, ts_us, model, project, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos)
    SELECT s.id, o.id, u.id, (extract(epoch FROM s."timestamp") * 1000000)::bigint, s.model,
    nullif(s.project, ''), s.input_tokens, s.output_tokens, coalesce(s.cache_read_tokens, 0),
    coalesce(s.cache_write_tokens, 0), (s.cost_usd * 1000000000)::bigint FROM staged s
    JOIN organizations o ON o.slug = s.organization JOIN users u ON u.email = lower(s.user_email)
    ON CONFLICT (organization_id, id) DO NOTHING;
COMMIT;
"""


def base_postgres_same(_folder: Path, csv_path: Path) -> tuple[float, int]:
    url = _recreate()
    engine = db.open_engine(url)
    store.set_org(engine, "bench", timezone=TZ)
    engine.dispose()
    script = SAME_TABLE.replace("{csv}", str(csv_path))
    seconds, _ = timed(lambda: subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url], input=script, text=True,
        check=True))
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM usage_events").fetchone()
    return seconds, int(row[0]) if row else 0


Run = Callable[[Path, Path], tuple[float, int]]
PAIRS: dict[str, tuple[str, Run, Run]] = {
    "sqlite": ("sqlite3 executemany", ours_sqlite, base_sqlite),
    "postgresql": ("psql \\copy", ours_postgres, base_postgres),
    "postgresql-same-table": ("psql \\copy + INSERT", ours_postgres, base_postgres_same),
}


def measure(kind: str, events: int, csv_path: Path, folder: Path,
            repeat: int) -> list[str]:
    """One table row: best of ours, best of the baseline, best and median ratio."""
    name, ours, base = PAIRS[kind]
    pairs, cpu = [], []
    for _ in range(repeat):  # alternated: both see the same load
        CPU.clear()
        t_ours, n_ours = ours(folder, csv_path)
        t_base, n_base = base(folder, csv_path)
        assert n_ours == n_base == events, (n_ours, n_base)
        pairs.append((t_ours, t_base))
        note = ""
        if CPU:
            cpu.append(CPU["ours"] / CPU["base"])
            note = f" (CPU {CPU['ours']:.2f} s against {CPU['base']:.2f} s, {cpu[-1]:.2f}x)"
        print(f"{kind}: ours {t_ours:.2f} s, {name} {t_base:.2f} s, "
              f"{t_ours / t_base:.2f}x{note}", flush=True)
    best_ours, best_base = min(p[0] for p in pairs), min(p[1] for p in pairs)
    median = statistics.median(p[0] / p[1] for p in pairs)
    return [kind, f"{events:,}", name, f"{best_ours:.2f} s", f"{best_base:.2f} s",
            f"{best_ours / best_base:.2f}x", f"{median:.2f}x",
            f"{statistics.median(cpu):.2f}x" if cpu else "-",
            f"{best_ours / events * 1e6:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default="sqlite,postgresql,postgresql-same-table",
                        help="postgresql: psql \\copy into a plain table; "
                             "postgresql-same-table: into our schema by psql alone")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    csv_path = write_events(args.events, 10)
    rows = [["database", "events", "baseline", "ours (best)", "baseline (best)",
             "ratio of bests", "median ratio", "median CPU ratio", "ours µs/row"]]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in [d for d in args.db.split(",") if d]:
                rows.append(measure(kind, args.events, csv_path, Path(tmp), args.repeat))
    finally:
        if "postgresql" in args.db:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    print(f"\nload average {os.getloadavg()[0]:.1f}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
