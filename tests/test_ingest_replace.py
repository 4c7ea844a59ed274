"""Correcting stored usage: ``ingest --replace`` gives stored events of the same
(organization, id) the file's values, counts what it replaced, and re-sends nothing."""

from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from reporter.periods import Period
from reporter.store import ingest
from reporter.store.schema import usage_events
from tests.helpers import report_json, reporter, row, write_csv, write_jsonl

DAY = Period("custom", date(2024, 5, 1), date(2024, 5, 1), "UTC")


def stored(engine: Engine) -> dict[tuple[int, str], tuple[Any, ...]]:
    with engine.connect() as conn:
        return {(r.organization_id, r.id): (r.cost_nanos, r.model, r.input_tokens, r.user_id)
                for r in conn.execute(select(usage_events))}


def rows(cost: str = "0.01") -> list[dict[str, Any]]:
    return [row("a1", "2024-05-01T10:00:00Z", cost=cost),
            row("a2", "2024-05-01T11:00:00Z"),
            row("a1", "2024-05-01T10:00:00Z", org="beta", email="b@beta.com", cost="5")]


def test_replace_at_the_command_line(cli, engine: Engine,  # type: ignore[no-untyped-def]
                                     tmp_path: Path) -> None:
    first = cli("ingest", str(write_csv(tmp_path / "a.csv", rows())))
    assert first.exit_code == 0, first.output
    assert "inserted 3, duplicate 0, rejected 0" in first.output
    fixed = rows(cost="12.5")
    fixed[1] = {**fixed[1], "model": "other/model", "input_tokens": "99"}
    fixed.append(row("a3", "2024-05-01T12:00:00Z"))  # new: inserted as ever
    path = write_csv(tmp_path / "fixed.csv", fixed)
    # without --replace a stored id changes nothing
    plain = cli("ingest", str(path))
    assert plain.exit_code == 0, plain.output
    assert "inserted 1, duplicate 3, rejected 0" in plain.output
    assert report_json(engine, "acme", DAY)["summary"]["total_cost_usd"] == "0.030000000"
    result = cli("ingest", "--replace", str(path))
    assert result.exit_code == 0, result.output
    assert "inserted 0, replaced 2, duplicate 2, rejected 0" in result.output
    assert report_json(engine, "acme", DAY)["summary"]["total_cost_usd"] == "12.520000000"
    # the other organization's event of the same id is its own: untouched
    assert report_json(engine, "beta", DAY)["summary"]["total_cost_usd"] == "5.000000000"
    values = {key[1]: v for key, v in stored(engine).items() if v[0] != 5_000_000_000}
    assert values["a2"][1:3] == ("other/model", 99)
    # the same file again: nothing left to replace
    again = cli("ingest", "--replace", str(path))
    assert "inserted 0, replaced 0, duplicate 4, rejected 0" in again.output


def test_replace_keeps_the_last_line_of_an_id_and_names_bad_rows(
        engine: Engine, tmp_path: Path) -> None:
    ingest.ingest_file(engine, str(write_csv(tmp_path / "a.csv", rows())))
    lines: list[Any] = [row("a1", "2024-05-01T10:00:00Z", cost="1"),
                        row("a1", "2024-05-01T10:00:00Z", cost="2"),
                        {**row("a2", "2024-05-01T11:00:00Z"), "cost_usd": "-1"},
                        row("n1", "2024-05-01T11:00:00Z", email="new@acme.com"),
                        row("n1", "2024-05-01T11:00:00Z", email="new@acme.com", cost="3")]
    path = write_jsonl(tmp_path / "fix.jsonl", [json.dumps(r) for r in lines])
    result = ingest.ingest_file(engine, str(path), replace=True)
    assert (result.inserted, result.replaced, result.duplicate, result.rejected) == (1, 1, 2, 1)
    assert result.errors == [f"{path}:3: cost_usd '-1' is negative"]
    assert result.created_members == [("acme", "new@acme.com")]
    assert report_json(engine, "acme", DAY)["summary"]["total_cost_usd"] == "5.010000000"


def test_replace_moves_an_event_to_another_member(engine: Engine, tmp_path: Path) -> None:
    ingest.ingest_file(engine, str(write_csv(tmp_path / "a.csv", rows())))
    moved = [row("a1", "2024-05-01T10:00:00Z", email="carol@acme.com")]
    result = ingest.ingest_file(engine, str(write_csv(tmp_path / "m.csv", moved)),
                                replace=True)
    assert (result.inserted, result.replaced) == (0, 1)
    members = {m["email"]: m["cost_usd"]
               for m in report_json(engine, "acme", DAY)["by_member"]}
    assert members == {"alice@acme.com": "0.010000000", "carol@acme.com": "0.010000000"}


def test_a_refused_row_in_a_replacing_batch_is_named(engine: Engine, tmp_path: Path) -> None:
    """A replacement the database itself refuses leaves the other rows replaced."""
    many = [row(f"r{n}", "2024-05-01T10:00:00Z") for n in range(1, 41)]
    ingest.ingest_file(engine, str(write_csv(tmp_path / "a.csv", many)))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER test_forbid_update BEFORE UPDATE ON usage_events "
                              "WHEN NEW.model = 'forbidden/model' "
                              "BEGIN SELECT RAISE(ABORT, 'forbidden model'); END"))
        else:
            conn.execute(text(
                "CREATE FUNCTION test_forbid_update() RETURNS trigger AS $$ BEGIN "
                "IF NEW.model = 'forbidden/model' THEN RAISE EXCEPTION 'forbidden model' "
                "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER test_forbid_update BEFORE UPDATE ON "
                              "usage_events FOR EACH ROW EXECUTE FUNCTION test_forbid_update()"))
    try:
        fixed = [{**r, "cost_usd": "1"} for r in many]
        fixed[9] = {**fixed[9], "model": "forbidden/model"}
        path = write_csv(tmp_path / "f.csv", fixed)
        result = ingest.ingest_file(engine, str(path), replace=True)
        assert (result.inserted, result.replaced, result.rejected) == (0, 39, 1), result.errors
        assert result.errors[0].startswith(f"{path}:11: the database refused this row")
        assert report_json(engine, "acme", DAY)["summary"]["total_cost_usd"] == "39.010000000"
    finally:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER test_forbid_update"))
            else:
                conn.execute(text("DROP TRIGGER test_forbid_update ON usage_events"))
                conn.execute(text("DROP FUNCTION test_forbid_update()"))


@pytest.mark.parametrize("forced", [False, True])
def test_delivered_reports_are_sent_again_only_with_force(  # type: ignore[no-untyped-def]
        cli, engine: Engine, tmp_path: Path, forced: bool) -> None:
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent("""\
        output: out
        jobs:
          daily:
            schedule: "0 7 * * *"
            period: previous-week
            audience: admins
            formats: [json]
            deliver: {store: true, email: false}
        """))
    cli("ingest", str(write_csv(tmp_path / "a.csv", rows())))
    cli("member", "set", "acme", "alice@acme.com", "--role", "owner")
    run = cli("run", "daily", "--org", "acme", "--from", "2024-05-01", "--to", "2024-05-01")
    assert run.exit_code == 0, run.output
    cli("ingest", "--replace", str(write_csv(tmp_path / "f.csv", rows(cost="7"))))
    args = ["run", "daily", "--org", "acme", "--from", "2024-05-01", "--to", "2024-05-01"]
    again = cli(*args, *(["--force"] if forced else []))
    assert again.exit_code == 0, again.output
    stored_file = tmp_path / "out/daily/acme/2024-05-01_2024-05-01/acme_2024-05-01_2024-05-01.json"
    total = json.loads(stored_file.read_text())["summary"]["total_cost_usd"]
    assert total == ("7.010000000" if forced else "0.020000000"), again.output


def test_replace_in_a_real_process_reads_standard_input(tmp_path: Path) -> None:
    first = reporter("ingest", str(write_csv(tmp_path / "a.csv", rows())), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    fixed = write_csv(tmp_path / "f.csv", rows(cost="7")).read_text()
    done = reporter("ingest", "--replace", "-", cwd=tmp_path, stdin=fixed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "inserted 0, replaced 1, duplicate 2, rejected 0"
    assert done.stderr == ""


def _at_once(engine: Engine, files: list[Path]) -> list[Any]:
    """Ingest ``files`` at the same time, one thread each: each one's result or exception."""
    import threading

    outcomes: list[Any] = []

    def run(path: Path) -> None:
        try:
            outcomes.append(ingest.ingest_file(engine, str(path)))
        except Exception as exc:  # the test reports it
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.postgres
@pytest.mark.slow
def test_two_ingests_at_once_both_finish(pg_url: str, tmp_path: Path) -> None:
    """Two large files of the same organizations, in opposite orders, ingested at once on
    PostgreSQL: rows go in in key order and a batch that loses a deadlock is written again,
    so both finish and every row is stored once."""
    import random

    from reporter.store import db

    engine = db.open_engine(pg_url)
    from tests.conftest import truncate_all

    truncate_all(engine)
    rng = random.Random(5)
    events = [row(f"c{n}", f"2024-05-0{1 + n % 7}T10:{n % 60:02d}:00Z",
                  org=f"org{n % 4}", email=f"u{n % 9}@x.example") for n in range(12_000)]
    shuffled = events[:]
    rng.shuffle(shuffled)
    first = write_csv(tmp_path / "a.csv", events)
    second = write_csv(tmp_path / "b.csv", shuffled)
    outcomes = _at_once(engine, [first, second])
    try:
        assert all(isinstance(o, ingest.IngestResult) for o in outcomes), outcomes
        assert sum(o.inserted for o in outcomes) == 12_000
        assert sum(o.duplicate for o in outcomes) == 12_000
        assert len(stored(engine)) == 12_000
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_ingests_creating_the_same_new_members_at_once_both_finish(
        pg_url: str, tmp_path: Path) -> None:
    """Two files naming the same hundreds of new organizations and members in different
    orders, ingested at once on PostgreSQL: each batch creates what it lacks in key order, so
    neither deadlocks on the other's new users (retried or not) and both finish."""
    import random

    from reporter.store import db
    from tests.conftest import truncate_all

    engine = db.open_engine(pg_url)
    truncate_all(engine)
    rng = random.Random(5)
    files = []
    for name in ("a", "b"):
        files.append(write_csv(tmp_path / f"{name}.csv", [
            row(f"{name}{n}", "2024-05-01T10:00:00Z", org=f"org{rng.randrange(200)}",
                email=f"u{rng.randrange(1500)}@x.example") for n in range(12_000)]))
    outcomes = _at_once(engine, files)
    try:
        assert all(isinstance(o, ingest.IngestResult) for o in outcomes), outcomes
        assert sum(o.inserted for o in outcomes) == 24_000
        assert len(stored(engine)) == 24_000
        created = [slug for o in outcomes for slug in o.created_organizations]
        assert len(created) == len(set(created)) == 200  # each told once, by one of them
    finally:
        engine.dispose()


@pytest.mark.parametrize("text", ["a\x85b", "m\u2028x", "p\u2029q", "c\x9bd"])
def test_unicode_line_breaks_and_c1_controls_are_refused(engine: Engine, tmp_path: Path,
                                                         text: str) -> None:
    path = write_csv(tmp_path / "c.csv", [
        row(text, "2024-05-01T10:00:00Z"),
        row("ok-1", "2024-05-01T10:00:00Z", model=text),
        row("ok-2", "2024-05-01T10:00:00Z", project=text),
        row("ok-3", "2024-05-01T10:00:00Z")])
    errors: list[str] = []
    result = ingest.ingest_file(engine, str(path), on_error=errors.append)
    assert (result.inserted, result.rejected) == (1, 3)
    assert all("control character" in e or "line break" in e for e in errors), errors


def test_a_database_lost_mid_file_still_counts_what_was_stored(
        cli: Any, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database goes away after the first batch (the connection is cut: injected here,
    as nothing cuts a SQLite file's connection): the error names the line, and the summary
    counts the batch that was stored instead of zeros."""
    from sqlalchemy.exc import OperationalError

    from reporter.store import writers

    made = writers.for_engine

    def failing(engine: Engine, **kwargs: Any) -> writers.Writer:
        writer = made(engine, **kwargs)
        calls = [0]
        put = writer.put

        def second_fails(conn: Any, batch: Any) -> tuple[int, int]:
            calls[0] += 1
            if calls[0] == 2:
                raise OperationalError("INSERT", {}, Exception("disk I/O error"))
            return put(conn, batch)
        writer.put = second_fails
        return writer

    monkeypatch.setattr(writers, "for_engine", failing)
    events = [row(f"m{n}", "2024-05-01T10:00:00Z") for n in range(ingest.BATCH + 10)]
    write_csv(tmp_path / "big.csv", events)
    done = cli("ingest", "big.csv")
    assert done.exit_code == 1
    assert "the database failed" in done.stderr
    kept = len(stored(engine))
    assert 0 < kept < len(events)
    assert done.stdout.splitlines()[-1].startswith(f"inserted {kept}, ")
