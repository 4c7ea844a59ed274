"""Ingest: CSV and JSONL, stdin, idempotence, every bad-row kind, streaming memory."""

from __future__ import annotations

import io
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Row, func, select

from reporter.errors import IngestError
from reporter.store import orgs as store
from reporter.store.ingest import FIELDS, ingest_file, parse_timestamp
from reporter.store.schema import usage_events
from tests.helpers import GOOD, HEADER, row, write_csv, write_jsonl


def events(engine: Engine) -> list[Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(select(usage_events).order_by(usage_events.c.id)).all())


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(usage_events)) or 0)


def test_csv_and_jsonl(engine: Engine, tmp_path: Path) -> None:
    result = ingest_file(engine, str(write_csv(tmp_path / "a.csv", GOOD[:2])))
    assert (result.inserted, result.duplicate, result.rejected) == (2, 0, 0)
    jsonl = [{**GOOD[2], "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.5}]
    del jsonl[0]["project"], jsonl[0]["cache_read_tokens"], jsonl[0]["cache_write_tokens"]
    result = ingest_file(engine, str(write_jsonl(tmp_path / "b.jsonl", jsonl)))
    assert (result.inserted, result.rejected) == (1, 0), result.errors
    rows = events(engine)
    assert [(r.id, r.ts_us, r.cost_nanos, r.project, r.cache_read_tokens) for r in rows] == [
        ("r1", int(datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()) * 10**6, 123_456_789,
         "example-repo", 7),
        ("r2", int(datetime(2024, 5, 1, 7, tzinfo=UTC).timestamp()) * 10**6 + 123_456,
         2_000_000_000, None, 0),
        ("r3", int(datetime(2024, 5, 2, 4, tzinfo=UTC).timestamp()) * 10**6, 500_000_000,
         None, 0),
    ]


def test_organizations_and_members_created_on_first_sight(engine: Engine,
                                                          tmp_path: Path) -> None:
    store.set_org(engine, "acme", name="Acme", timezone="Europe/Berlin")
    store.set_member(engine, "acme", "alice@acme.com", role="owner", name="Alice")
    ingest_file(engine, str(write_csv(tmp_path / "a.csv", [*GOOD, row("r4", "2024-05-01T10:00Z")])))
    orgs = {o.slug: o for o in store.list_orgs(engine)}
    assert (orgs["acme"].name, orgs["acme"].timezone) == ("Acme", "Europe/Berlin")  # unchanged
    assert (orgs["beta"].name, orgs["beta"].timezone) == ("beta", "UTC")
    acme = {m.email: m for m in store.members(engine, orgs["acme"].id)}
    assert acme["alice@acme.com"].role == "owner"
    assert acme["alice@acme.com"].name == "Alice"
    assert acme["bob@acme.com"].role == "member"  # emails are lower-cased
    beta = store.members(engine, orgs["beta"].id)
    assert [(m.email, m.role, m.active) for m in beta] == [("carol@beta.io", "member", True)]


def test_reingest_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = str(write_csv(tmp_path / "a.csv", GOOD))
    first = ingest_file(engine, path)
    before = events(engine)
    again = ingest_file(engine, path)
    assert (first.inserted, first.duplicate) == (3, 0)
    assert (again.inserted, again.duplicate, again.rejected) == (0, 3, 0)
    assert events(engine) == before
    # same ids with other values do not overwrite what is stored
    changed = [{**r, "cost_usd": "99"} for r in GOOD]
    assert ingest_file(engine, str(write_csv(tmp_path / "b.csv", changed))).duplicate == 3
    assert events(engine) == before
    # duplicates inside one file are counted too
    twice = write_csv(tmp_path / "c.csv", [row("d1", "2024-05-01T10:00Z")] * 2)
    result = ingest_file(engine, str(twice))
    assert (result.inserted, result.duplicate) == (1, 1)


BAD = [
    ({"timestamp": "2026-02-30T10:00:00Z"}, "timestamp '2026-02-30T10:00:00Z' is not a valid"),
    ({"timestamp": "2024-05-01T10:00:00"}, "has no UTC offset"),
    ({"timestamp": "2024-05-01"}, "has no UTC offset"),
    ({"timestamp": "yesterday"}, "is not a valid ISO 8601"),
    ({"timestamp": "2024-05-01T25:00:00Z"}, "is not a valid"),
    ({"timestamp": ""}, "missing timestamp"),
    ({"input_tokens": "-1"}, "input_tokens must be a non-negative integer"),
    ({"output_tokens": "1.5"}, "output_tokens must be a non-negative integer"),
    ({"input_tokens": "ten"}, "input_tokens must be a non-negative integer"),
    ({"cache_read_tokens": "-3"}, "cache_read_tokens must be a non-negative integer"),
    ({"input_tokens": ""}, "missing input_tokens"),
    ({"organization": ""}, "missing organization"),
    ({"user_email": ""}, "missing user_email"),
    ({"user_email": "not-an-email"}, "is not an email address"),
    ({"id": ""}, "missing id"),
    ({"model": " "}, "missing model"),
    ({"cost_usd": "abc"}, "cost_usd 'abc' is not a decimal"),
    ({"cost_usd": "0.0000000001"}, "more than 9 decimal places"),
    ({"cost_usd": "-1"}, "negative"),
    ({"cost_usd": ""}, "missing cost_usd"),
]


@pytest.mark.parametrize(("change", "why"), BAD, ids=[why.split()[0] + str(i)
                                                       for i, (_, why) in enumerate(BAD)])
def test_bad_csv_rows_are_reported_and_good_rows_kept(sqlite_engine: Engine, tmp_path: Path,
                                                      change: dict[str, str], why: str) -> None:
    bad = {**row("bad", "2024-05-01T10:00:00Z"), **change}
    path = write_csv(tmp_path / "u.csv", [GOOD[0], bad, GOOD[1]])
    seen: list[str] = []
    result = ingest_file(sqlite_engine, str(path), on_error=seen.append)
    assert (result.inserted, result.rejected) == (2, 1)
    assert len(seen) == 1
    assert seen == result.errors
    assert seen[0].startswith(f"{path}:3: ")
    assert why in seen[0]
    assert [e.id for e in events(sqlite_engine)] == ["r1", "r2"]


def test_bad_jsonl_rows(engine: Engine, tmp_path: Path) -> None:
    good = {**GOOD[0]}
    lines = [
        good,                                                    # 1
        "{not json",                                             # 2
        "[1, 2]",                                                # 3
        {**row("u", "2024-05-01T10:00Z"), "cost_usd": "1e-3"},     # 4 exponent
        "",                                                      # 5 blank: skipped
        {**row("t", "2024-05-01T10:00Z"), "input_tokens": -1},    # 6
        {**row("f", "2024-05-01T10:00Z"), "input_tokens": 2.0},   # 7
        {**row("b", "2024-05-01T10:00Z"), "input_tokens": True},  # 8
        {**row("c", "2024-05-01T10:00Z"), "cost_usd": 1e-10},     # 9
        {**row("o", "2024-05-01T10:00Z"), "organization": None},  # 10
        {**row("n", "2024-05-01T10:00Z"), "timestamp": 1714557600},  # 11
        {**row("ok", "2024-05-01T10:00Z"), "input_tokens": 3, "cost_usd": 0.25},  # 12
    ]
    path = write_jsonl(tmp_path / "u.jsonl", lines)
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (2, 9)
    got = {int(e.split(":")[1]): e.split(": ", 1)[1] for e in result.errors}
    assert sorted(got) == [2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert "not valid JSON" in got[2]
    assert "expected a JSON object" in got[3]
    assert "cost_usd '1e-3' is not a decimal number" in got[4]
    assert "input_tokens" in got[6]
    assert "input_tokens" in got[7]
    assert "input_tokens" in got[8]
    assert "cost_usd" in got[9]
    assert "missing organization" in got[10]
    assert "timestamp" in got[11]
    assert [e.id for e in events(engine)] == ["ok", "r1"]
    assert events(engine)[0].cost_nanos == 250_000_000


def test_unknown_and_missing_csv_columns_are_named(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("id,timestamp,organization,user_email,model,input_tokens,output_tokens,"
                    "cost_usd,colour\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"u\.csv:1: unknown column\(s\) 'colour'"):
        ingest_file(sqlite_engine, str(path), strict=True)
    path.write_text("id,timestamp,organization,user_email,model,input_tokens,cost_usd\n",
                    encoding="utf-8")
    with pytest.raises(IngestError, match=r"missing column\(s\) 'output_tokens'"):
        ingest_file(sqlite_engine, str(path))


def test_csv_with_wrong_field_count_and_quoted_newlines(sqlite_engine: Engine,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    ok = "2024-05-01T10:00:00Z,acme,a@acme.com,m,,1,1,,,0.1"
    path.write_text("\ufeff" + ",".join(HEADER) + "\n"
                    f'"multi\nline id",{ok}\n'          # lines 2-3
                    "short,row\n"                       # line 4
                    "\n"                                # line 5 (blank)
                    f"x1,{ok}\n", encoding="utf-8")     # line 6
    result = ingest_file(sqlite_engine, str(path))
    assert (result.inserted, result.rejected) == (1, 2)
    # one CSV record over lines 2-3, refused as a whole: no value may hold a line break
    assert result.errors == [f"{path}:2: id contains a line break or another control character",
                             f"{path}:4: expected 11 fields, found 2"]


def test_missing_file_and_unknown_format(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"nope\.csv: no such file"):
        ingest_file(sqlite_engine, str(tmp_path / "nope.csv"))
    (tmp_path / "u.txt").write_text("x", encoding="utf-8")
    with pytest.raises(IngestError, match="cannot tell the format"):
        ingest_file(sqlite_engine, str(tmp_path / "u.txt"))
    (tmp_path / "bin.csv").write_bytes(b"id,\xff\xfe\n")
    with pytest.raises(IngestError, match="not UTF-8"):
        ingest_file(sqlite_engine, str(tmp_path / "bin.csv"))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_stdin(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               fmt: str) -> None:
    path = (write_csv(tmp_path / "a.csv", GOOD) if fmt == "csv"
            else write_jsonl(tmp_path / "a.jsonl", [*GOOD, "oops"]))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    result = ingest_file(sqlite_engine, "-")
    assert result.inserted == 3
    if fmt == "jsonl":
        assert result.errors == ["<stdin>:4: not valid JSON (Expecting value)"]


def test_timestamps_to_microseconds() -> None:
    assert parse_timestamp("1970-01-01T00:00:00Z") == 0
    assert parse_timestamp("1970-01-01T05:30:00.000001+05:30") == 1
    assert parse_timestamp("2024-02-29T23:59:59.999999Z") == (
        int(datetime(2024, 3, 1, tzinfo=UTC).timestamp()) * 10**6 - 1)


def test_known_fields_match_the_contract() -> None:
    assert set(HEADER) == FIELDS


def _rows(n: int) -> list[dict[str, Any]]:
    return [row(f"m{i:07d}", f"2024-05-01T{i % 24:02d}:{i % 60:02d}:00Z",
                email=f"u{i % 50}@acme.com", cost="0.000123") for i in range(n)]


@pytest.mark.slow
def test_memory_does_not_grow_with_file_size(tmp_path: Path, sqlite_template: Path) -> None:
    import shutil

    from reporter.store import db

    peaks = []
    for n in (6_000, 24_000):
        path = write_csv(tmp_path / f"big{n}.csv", _rows(n))
        shutil.copy(sqlite_template, tmp_path / f"{n}.db")
        engine = db.open_engine(f"sqlite:///{tmp_path / f'{n}.db'}")
        tracemalloc.start()
        result = ingest_file(engine, str(path))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert result.inserted == n
        engine.dispose()
    assert peaks[1] < peaks[0] * 1.5, peaks


def test_a_sqlite_ingest_gives_back_the_usual_page_cache(tmp_path: Path) -> None:
    """The ingest writes with a larger page cache on SQLite; the connection it goes back
    to the pool with has SQLite's usual one, so a report later keeps its memory."""
    from reporter.store import db

    engine = db.open_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    with engine.connect() as conn:
        usual = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    ingest_file(engine, str(write_csv(tmp_path / "a.csv", GOOD)))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == usual
    assert count(engine) == len(GOOD)
    engine.dispose()
