"""Benchmark: sync LiteLLM rows from PostgreSQL into SQLite and into PostgreSQL, against our
CSV ingest of the same rows and ``psql \\copy`` of that CSV into a plain table (the floor).

Run: .venv/bin/python -m bench.bench_sources [--rows 1000000] [--page-size 10000] [--repeat 1]
Needs the PostgreSQL server of the tests (REPORTER_TEST_PG, default
postgresql://postgres@127.0.0.1:5432/test); creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.common import COLUMNS, table, timed
from reporter.config import source_settings as source
from reporter.store import db, ingest
from reporter.store.sources import sync_source
from reporter.store.sources.common import float_usd

ADMIN = os.environ.get("REPORTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BASE = ADMIN.rsplit("/", 1)[0]
SOURCE_DB, TARGET_DB = "reporter_bench_litellm", "reporter_bench_store"
START = datetime(2025, 1, 2, tzinfo=UTC)
MEMBERS = 50
MODELS = ("anthropic/claude-sonnet-4", "openai/gpt-4o", "google/gemini-2.5-pro",
          "anthropic/claude-haiku-4", "x-ai/grok-code-fast-1")

DDL = """
CREATE TABLE "LiteLLM_OrganizationTable" (organization_id text PRIMARY KEY,
    organization_alias text NOT NULL);
CREATE TABLE "LiteLLM_TeamTable" (team_id text PRIMARY KEY, team_alias text,
    organization_id text);
CREATE TABLE "LiteLLM_UserTable" (user_id text PRIMARY KEY, user_email text,
    user_role text);
CREATE TABLE "LiteLLM_SpendLogs" (
    request_id text PRIMARY KEY, call_type text NOT NULL DEFAULT 'acompletion',
    api_key text NOT NULL DEFAULT '', spend double precision NOT NULL DEFAULT 0.0,
    total_tokens integer NOT NULL DEFAULT 0, prompt_tokens integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0, "startTime" timestamp(3) NOT NULL,
    "endTime" timestamp(3) NOT NULL, model text NOT NULL DEFAULT '', "user" text DEFAULT '',
    metadata jsonb DEFAULT '{}', request_tags jsonb DEFAULT '[]', team_id text,
    organization_id text, end_user text);
CREATE INDEX ON "LiteLLM_SpendLogs" ("startTime");
"""
PLAIN = """CREATE TABLE plain_events (id text, "timestamp" text, organization text,
    user_email text, model text, project text, input_tokens bigint, output_tokens bigint,
    cache_read_tokens bigint, cache_write_tokens bigint, cost_usd numeric)"""


def recreate(name: str) -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{BASE}/{name}"


def drop(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_source(url: str, count: int, csv_path: Path) -> None:
    """``count`` spend log rows in LiteLLM's tables, and the same events as our CSV."""
    rng = random.Random(42)
    span = 363 * 86_400_000
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
        conn.execute("""INSERT INTO "LiteLLM_OrganizationTable" VALUES ('org-1', 'bench')""")
        conn.execute("""INSERT INTO "LiteLLM_TeamTable" VALUES ('t1', 'search', 'org-1'),
                        ('t2', 'billing', 'org-1'), ('t3', 'ops', 'org-1')""")
        with conn.cursor() as cur:
            cur.executemany('INSERT INTO "LiteLLM_UserTable" VALUES (%s, %s, %s)',
                            [(f"u{n}", f"user{n:04d}@bench.example", "internal_user")
                             for n in range(MEMBERS)])
        with conn.cursor() as cur, csv_path.open("w", newline="", encoding="utf-8") as out, \
                cur.copy('COPY "LiteLLM_SpendLogs" (request_id, spend, prompt_tokens, '
                         'completion_tokens, "startTime", "endTime", model, "user", metadata, '
                         'team_id, organization_id) FROM STDIN') as copy:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            for _ in range(count):
                moment = (START + timedelta(milliseconds=rng.randrange(span))).replace(
                    tzinfo=None)
                request_id = f"chatcmpl-{uuid.UUID(int=rng.getrandbits(128))}"
                user, team = rng.randrange(MEMBERS), rng.choice(("t1", "t2", "t3"))
                spend = rng.random() * rng.choice((0.5, 0.01, 0.0004))
                prompt, completion = rng.randrange(20, 60_000), rng.randrange(1, 4_000)
                cached = rng.randrange(0, prompt) if rng.random() < 0.5 else 0
                created = rng.randrange(0, 2_000) if rng.random() < 0.2 else 0
                model = rng.choice(MODELS)
                metadata = json.dumps({"usage_object": {
                    "prompt_tokens": prompt, "completion_tokens": completion,
                    "cache_read_input_tokens": cached, "cache_creation_input_tokens": created},
                    "user_api_key_alias": "ci", "requester_ip_address": "10.0.0.1"})
                copy.write_row((request_id, spend, prompt, completion, moment,
                                moment + timedelta(seconds=2), model, f"u{user}", metadata,
                                team, "org-1"))
                writer.writerow([request_id, moment.isoformat() + "+00:00", "bench",
                                 f"user{user:04d}@bench.example", model,
                                 {"t1": "search", "t2": "billing", "t3": "ops"}[team], prompt,
                                 completion, cached, created, float_usd(spend)])
        conn.execute('ANALYZE "LiteLLM_SpendLogs"')


def run_sync(store_url: str, source_url: str, page_size: int) -> tuple[float, int]:
    engine = db.open_engine(store_url)
    settings = source("litellm", kind="litellm", url_env="BENCH_LITELLM_URL",
                      organization_from="organization_alias", project_from="team_alias",
                      page_size=page_size)
    seconds, result = timed(lambda: sync_source(engine, settings,
                                                env={"BENCH_LITELLM_URL": source_url}))
    engine.dispose()
    assert result.ok, result.error
    assert result.rejected == 0, result.issues[:3]
    return seconds, result.inserted


def run_ingest(store_url: str, csv_path: Path) -> tuple[float, int]:
    engine = db.open_engine(store_url)
    seconds, result = timed(lambda: ingest.ingest_file(engine, str(csv_path)))
    engine.dispose()
    assert result.rejected == 0, result.errors[:3]
    return seconds, result.inserted


def run_copy(url: str, csv_path: Path) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS plain_events")
        conn.execute(PLAIN)
    seconds, _ = timed(lambda: subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
         f"\\copy plain_events FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"], check=True))
    return seconds


def fresh_store(kind: str, folder: Path, name: str) -> str:
    if kind == "sqlite":
        for stale in folder.glob(f"{name}.db*"):
            stale.unlink()
        url = f"sqlite:///{folder / name}.db"
    else:
        url = recreate(TARGET_DB)
    db.open_engine(url).dispose()  # migrated before the clock starts
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each")
    args = parser.parse_args()
    source_url = recreate(SOURCE_DB)
    rows = [["store", "rows", "CSV ingest", "sync from LiteLLM", "sync / ingest",
             "psql \\copy", "ingest / copy"]]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            csv_path = folder / "events.csv"
            seconds, _ = timed(lambda: load_source(source_url, args.rows, csv_path))
            print(f"source: {args.rows:,} rows written in {seconds:.1f} s", flush=True)
            floor = min(run_copy(source_url, csv_path) for _ in range(args.repeat))
            for kind in ("sqlite", "postgresql"):
                t_ingest = t_sync = float("inf")
                for _ in range(args.repeat):  # alternated, the best of each: a busy machine
                    seconds, n_ingest = run_ingest(fresh_store(kind, folder, "ingest"),
                                                   csv_path)
                    t_ingest = min(t_ingest, seconds)
                    seconds, n_sync = run_sync(fresh_store(kind, folder, "sync"), source_url,
                                               args.page_size)
                    t_sync = min(t_sync, seconds)
                    assert n_ingest == n_sync == args.rows, (n_ingest, n_sync)
                rows.append([kind, f"{args.rows:,}", f"{t_ingest:.2f} s", f"{t_sync:.2f} s",
                             f"{t_sync / t_ingest:.2f}x", f"{floor:.2f} s",
                             f"{t_ingest / floor:.1f}x"])
                print(table(rows[:1] + rows[-1:]), flush=True)
    finally:
        drop(SOURCE_DB)
        drop(TARGET_DB)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
