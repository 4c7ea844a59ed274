"""Ingest under faults: every bad row judged alone, nothing good lost, no traceback, no race."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Engine, event, func, select, text

from reporter.errors import ReporterError
from reporter.periods import Period
from reporter.store import db
from reporter.store import orgs as store
from reporter.store.ingest import ingest_file
from reporter.store.schema import organizations, usage_events, users
from tests.helpers import HEADER, load, report_json, row, write_csv, write_jsonl


def good(n: int, **kwargs: Any) -> dict[str, Any]:
    return row(f"g{n}", f"2024-05-01T{n % 24:02d}:00:00Z", **kwargs)


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(usage_events.c.id)))


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


# ---------------------------------------------------------------- one bad value, one bad row

LONG = "x" * 201
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"model": "claude\ud800"}, "model"),                      # a lone surrogate
    ({"id": "\udfffid"}, "id"),
    ({"project": "pro\ud83dject"}, "project"),
    ({"model": "nul\x00model"}, "model"),                      # PostgreSQL rejects NUL
    ({"id": "nul\x00id"}, "id"),
    ({"project": "p\x00"}, "project"),
    ({"organization": "a" * 201}, "organization"),              # over String(200)
    ({"user_email": "a" * 310 + "@example.com"}, "email"),      # over String(320)
    ({"id": "i" * 256}, "id"),                                  # over String(255)
    ({"user_email": "w@x.com,evil2@y.com"}, "not an email address"),
    ({"user_email": "bob\n@acme.com"}, "not an email address"),
    ({"user_email": "bob@acme.com\r\nBcc: evil@y.com"}, "not an email address"),
    ({"organization": "ACME"}, "organization"),
    ({"organization": "Acme Corp!"}, "organization"),
    ({"organization": "-acme"}, "organization"),
    ({"organization": "a" * 101}, "organization"),
    ({"cost_usd": "1_000"}, "cost_usd"),
    ({"cost_usd": "\u0661\u0662"}, "cost_usd"),                 # Arabic-Indic digits
    ({"cost_usd": "1e3"}, "cost_usd"),
    ({"cost_usd": "1000000"}, "cost_usd"),                      # over the per-request limit
    ({"cost_usd": "999999999.999999999"}, "cost_usd"),
    ({"input_tokens": "1_000"}, "input_tokens"),
    ({"output_tokens": "\u0661\u0662"}, "output_tokens"),
    ({"cache_read_tokens": "+5"}, "cache_read_tokens"),
    ({"input_tokens": 10**12}, "input_tokens"),                 # over the per-field limit
    ({"output_tokens": 2**62}, "output_tokens"),
    ({"input_tokens": 10**30}, "input_tokens"),                 # over BIGINT
    ({"model": "m" * 1001}, "model"),
    ({"model": "two\nlines"}, "model"),
]


@pytest.mark.parametrize(("change", "why"), BAD_VALUES,
                         ids=[f"{i}-{w.split()[0]}" for i, (_, w) in enumerate(BAD_VALUES)])
def test_one_bad_value_rejects_its_row_only(engine: Engine, tmp_path: Path,
                                            change: dict[str, Any], why: str) -> None:
    rows: list[Any] = [good(n) for n in range(1, 6)]
    rows.append({**row("bad", "2024-05-01T10:00:00Z"), **change})   # line 6
    rows.extend(good(n) for n in range(7, 12))
    path = write_jsonl(tmp_path / "u.jsonl", [json.dumps(r) for r in rows])
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (10, 1), result.errors
    assert len(result.errors) == 1
    assert result.errors[0].startswith(f"{path}:6: "), result.errors
    assert why in result.errors[0]
    assert "\n" not in result.errors[0]
    result.errors[0].encode("utf-8")  # printable as it is: no lone surrogate
    assert stored_ids(engine) == sorted(f"g{n}" for n in [*range(1, 6), *range(7, 12)])


def test_values_at_the_limits_are_kept(engine: Engine) -> None:
    rows = [row("max", "2024-05-01T10:00:00Z", org="a" * 100, email="a" * 64 + "@" + "b" * 60
                + ".com", cost="999999.999999999", input_tokens=10**12 - 1,
                output_tokens=10**12 - 1, cache_read=10**12 - 1, cache_write=10**12 - 1,
                model="m" * 1000, project="p" * 1000),
            {**row("i" * 255, "2024-05-01T10:00:00Z", org="a.b-c_9"), "cost_usd": " 1.50 "},
            row("dot", "2024-05-01T10:00:00Z", org="9lives", cost=".5")]
    result = load(engine, rows)
    assert (result.inserted, result.rejected) == (3, 0), result.errors
    with engine.connect() as conn:
        biggest = conn.execute(select(usage_events.c.cost_nanos, usage_events.c.input_tokens)
                               .where(usage_events.c.id == "max")).one()
    assert tuple(biggest) == (999_999_999_999_999, 10**12 - 1)


def test_bad_values_in_csv(engine: Engine, tmp_path: Path) -> None:
    rows = [good(1), {**good(2), "user_email": "w@x.com,evil2@y.com"},
            {**good(3), "organization": "Acme Corp!"}, {**good(4), "model": "nul\x00"},
            good(5)]
    path = write_csv(tmp_path / "u.csv", rows)
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (2, 3), result.errors
    assert [e.split(": ", 1)[0] for e in result.errors] == [f"{path}:{n}" for n in (3, 4, 5)]
    assert stored_ids(engine) == ["g1", "g5"]


def test_json_numbers_and_nesting_that_python_refuses(engine: Engine, tmp_path: Path) -> None:
    huge = json.dumps(good(2))[:-1] + ', "input_tokens": ' + "9" * 5000 + "}"
    deep = "[" * 100_000 + "]" * 100_000
    path = write_jsonl(tmp_path / "u.jsonl", [good(1), huge, deep, good(4)])
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (2, 2), result.errors
    assert [e.split(": ", 1)[0] for e in result.errors] == [f"{path}:2", f"{path}:3"]


def test_bytes_that_are_not_utf8_reject_their_row(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    lines = [",".join(HEADER)]
    for n in range(1, 4):
        model = "bad\xff" if n == 2 else "m"
        lines.append(f"g{n},2024-05-01T10:00:00Z,acme,a@acme.com,{model},,1,1,,,0.1")
    path.write_bytes("\n".join(lines).encode("utf-8").replace(b"bad\xc3\xbf", b"bad\xff")
                     + b"\n")
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (2, 1), result.errors
    assert result.errors[0].startswith(f"{path}:3: ")
    assert "UTF-8" in result.errors[0]


# ---------------------------------------------------------------- CSV framing


def csv_text(*lines: str) -> str:
    return ",".join(HEADER) + "\n" + "".join(line + "\n" for line in lines)


def csv_line(event_id: str, model: str = "m") -> str:
    return f"{event_id},2024-05-01T10:00:00Z,acme,a@acme.com,{model},,1,1,,,0.1"


def test_stray_quote_in_a_small_file_swallows_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(csv_text(csv_line("a1"), csv_line("a2", model='"claude'),  # lines 2, 3
                             csv_line("a3"), csv_line("a4"), csv_line("a5")), encoding="utf-8")
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (4, 1), result.errors
    assert result.errors[0].startswith(f"{path}:3: ")
    assert "quote" in result.errors[0]
    assert stored_ids(engine) == ["a1", "a3", "a4", "a5"]


def test_two_stray_quotes_and_text_after_a_closing_quote(engine: Engine,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(csv_text(csv_line("b1", model='"open'),          # line 2
                             csv_line("b2"),                          # line 3
                             csv_line("b3", model='x"y",z'),          # line 4: closes line 2
                             csv_line("b4"),                          # line 5
                             csv_line("b5", model='"q"tail'),          # line 6
                             csv_line("b6")), encoding="utf-8")       # line 7
    result = ingest_file(engine, str(path))
    assert stored_ids(engine) == ["b2", "b4", "b6"], result.errors
    lines = sorted(int(e.split(":")[1]) for e in result.errors)
    assert 2 in lines
    assert 6 in lines
    assert 3 not in lines
    assert 5 not in lines


def test_stray_quote_in_a_big_file(engine: Engine, tmp_path: Path) -> None:
    lines = [csv_line(f"c{n}", model='"oops' if n == 3 else "m") for n in range(1, 4001)]
    path = tmp_path / "u.csv"
    path.write_text(csv_text(*lines), encoding="utf-8")
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (3999, 1), result.errors[:3]
    assert result.errors[0].startswith(f"{path}:4: ")
    assert "quote" in result.errors[0]


def test_field_over_the_csv_limit(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(csv_text(csv_line("d1"), csv_line("d2", model="m" * 200_000),
                             csv_line("d3")), encoding="utf-8")
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (2, 1), result.errors
    assert result.errors[0].startswith(f"{path}:3: ")
    assert stored_ids(engine) == ["d1", "d3"]


def test_quoted_line_break_inside_a_value_is_one_bad_row(engine: Engine,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(csv_text(csv_line("e1"), csv_line('"e\n2"'), csv_line("e3")),
                    encoding="utf-8")
    result = ingest_file(engine, str(path))
    assert (result.inserted, result.rejected) == (2, 1), result.errors
    assert result.errors[0].startswith(f"{path}:3: ")
    assert stored_ids(engine) == ["e1", "e3"]


# ---------------------------------------------------------------- the database's last word


@pytest.fixture
def forbidding(engine: Engine) -> Iterator[Engine]:
    """The database itself refuses events of the model 'forbidden/model' (a trigger)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER test_forbid BEFORE INSERT ON usage_events "
                "WHEN NEW.model = 'forbidden/model' "
                "BEGIN SELECT RAISE(ABORT, 'forbidden model'); END"))
        else:
            conn.execute(text(
                "CREATE FUNCTION test_forbid() RETURNS trigger AS $$ BEGIN "
                "IF NEW.model = 'forbidden/model' THEN RAISE EXCEPTION 'forbidden model' "
                "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER test_forbid BEFORE INSERT ON usage_events "
                              "FOR EACH ROW EXECUTE FUNCTION test_forbid()"))
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_forbid" if engine.dialect.name == "sqlite"
                              else "DROP TRIGGER test_forbid ON usage_events"))
            if engine.dialect.name != "sqlite":
                conn.execute(text("DROP FUNCTION test_forbid()"))


def test_a_row_the_database_refuses_rejects_only_that_row(forbidding: Engine,
                                                          tmp_path: Path) -> None:
    rows = [good(n, org="neworg", email=f"u{n}@neworg.com") for n in range(1, 41)]
    rows[16] = row("no", "2024-05-01T10:00:00Z", org="neworg", model="forbidden/model")
    rows[33] = row("no2", "2024-05-01T10:00:00Z", org="neworg", model="forbidden/model")
    path = write_jsonl(tmp_path / "u.jsonl", rows)
    result = ingest_file(forbidding, str(path))
    assert (result.inserted, result.rejected) == (38, 2), result.errors
    assert [e.split(": ", 1)[0] for e in result.errors] == [f"{path}:17", f"{path}:34"]
    assert "forbidden model" in result.errors[0]
    assert len(stored_ids(forbidding)) == 38
    assert result.created_organizations == ["neworg"]
    neworg = store.get_org(forbidding, "neworg")
    assert len(store.members(forbidding, neworg.id)) >= 38


# ---------------------------------------------------------------- keys, races


def test_request_ids_are_unique_per_organization(engine: Engine) -> None:
    rows = [row("1", "2024-05-01T10:00:00Z", org="acme", cost="1"),
            row("1", "2024-05-01T10:00:00Z", org="beta", email="b@beta.com", cost="2")]
    first = load(engine, rows)
    assert (first.inserted, first.duplicate) == (2, 0)
    again = load(engine, rows)
    assert (again.inserted, again.duplicate) == (0, 2)
    day = Period("custom", date(2024, 5, 1), date(2024, 5, 1), "UTC")
    assert report_json(engine, "beta", day)["summary"]["total_cost_usd"] == "2.000000000"
    assert report_json(engine, "acme", day)["summary"]["total_cost_usd"] == "1.000000000"


def together(db_url: str, table: str, *calls: Callable[[Engine], Any]) -> list[Any]:
    """Run each call in its own thread on its own engine; every thread waits for the others
    just before its first INSERT INTO ``table``, so they all decide "missing" at once."""
    barrier = threading.Barrier(len(calls), timeout=30)
    engines = [db.open_engine(db_url) for _ in calls]
    waited: set[int] = set()

    def rendezvous(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = id(conn.engine)
        if key not in waited and statement.lstrip().upper().startswith(
                f"INSERT INTO {table.upper()} "):
            waited.add(key)
            barrier.wait()

    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index](engines[index])
        except BaseException as exc:  # handed to the test
            results[index] = exc

    for engine in engines:
        event.listen(engine, "before_cursor_execute", rendezvous)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()
    assert len(waited) == len(calls), "not every call reached the insert"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_two_ingests_create_the_same_organization(engine: Engine, db_url: str,
                                                  tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [good(n, org="neworg", email="bob@neworg.com")
                                           for n in range(1, 51)])
    b = write_jsonl(tmp_path / "b.jsonl", [row(f"b{n}", "2024-05-02T10:00:00Z", org="neworg",
                                               email="bob@neworg.com") for n in range(1, 51)])
    results = together(db_url, "organizations", lambda e: ingest_file(e, str(a)),
                       lambda e: ingest_file(e, str(b)))
    assert [(r.inserted, r.rejected) for r in results] == [(50, 0), (50, 0)]
    assert sorted(s for r in results for s in r.created_organizations) == ["neworg"]
    assert sorted(m for r in results for m in r.created_members) == [
        ("neworg", "bob@neworg.com")]
    assert count(engine, usage_events) == 100
    assert count(engine, organizations) == 1


@pytest.mark.parametrize("table", ["organizations", "users", "memberships"])
def test_member_set_at_once(engine: Engine, db_url: str, table: str) -> None:
    if table != "organizations":
        store.set_org(engine, "neworg")
    if table == "memberships":
        store.set_member(engine, "other", "bob@neworg.com")
    together(db_url, table,
             lambda e: store.set_member(e, "neworg", "bob@neworg.com", role="admin"),
             lambda e: store.set_member(e, "neworg", "bob@neworg.com", name="Bob"))
    org = store.get_org(engine, "neworg")
    assert [m.email for m in store.members(engine, org.id)] == ["bob@neworg.com"]
    assert count(engine, users) == 1


def test_org_set_at_once(engine: Engine, db_url: str) -> None:
    together(db_url, "organizations",
             lambda e: store.set_org(e, "neworg", name="One"),
             lambda e: store.set_org(e, "neworg", timezone="Asia/Kolkata"))
    info = store.get_org(engine, "neworg")
    assert (info.name, info.timezone) == ("One", "Asia/Kolkata")  # whichever came first
    assert count(engine, organizations) == 1


# ---------------------------------------------------------------- slugs, emails, names


@pytest.mark.parametrize("slug", ["ACME", "Acme Corp!", "-acme", "a" * 101, "acme/x", "ac me",
                                  "acmé", "acme\x00"])
def test_org_set_refuses_a_bad_slug(engine: Engine, slug: str) -> None:
    with pytest.raises(ReporterError, match="lowercase letters"):
        store.set_org(engine, slug)
    with pytest.raises(ReporterError, match="lowercase letters"):
        store.set_member(engine, slug, "a@acme.com")
    assert count(engine, organizations) == 0


@pytest.mark.parametrize("email", ["w@x.com,evil2@y.com", "bob\n@acme.com", "nobody",
                                   "Bob <bob@acme.com>", "a" * 330 + "@acme.com"])
def test_member_set_refuses_a_bad_address(engine: Engine, email: str) -> None:
    with pytest.raises(ReporterError, match="email address"):
        store.set_member(engine, "acme", email)
    assert count(engine, users) == 0


def test_names_belong_to_the_membership(engine: Engine) -> None:
    store.set_member(engine, "acme", "alice@acme.com", name="Alice")
    store.set_member(engine, "globex", "alice@acme.com", name="Alice (GLOBEX-ONLY NOTE: on PIP)")
    store.set_member(engine, "initech", "alice@acme.com")
    load(engine, [row("a1", "2024-05-01T10:00:00Z", org="acme"),
                  row("g1", "2024-05-01T10:00:00Z", org="globex"),
                  row("i1", "2024-05-01T10:00:00Z", org="initech")])
    day = Period("custom", date(2024, 5, 1), date(2024, 5, 1), "UTC")
    acme = report_json(engine, "acme", day)
    assert [m["name"] for m in acme["by_member"]] == ["Alice"]
    assert "GLOBEX" not in json.dumps(acme)
    assert "GLOBEX" not in json.dumps(report_json(engine, "acme", day,
                                                  member="alice@acme.com"))
    globex = report_json(engine, "globex", day)
    assert [m["name"] for m in globex["by_member"]] == ["Alice (GLOBEX-ONLY NOTE: on PIP)"]
    assert [m["name"] for m in report_json(engine, "initech", day)["by_member"]] == [None]
    org = store.get_org(engine, "acme")
    assert [m.name for m in store.members(engine, org.id)] == ["Alice"]
    # changing the role keeps the name; --name changes only that organization's
    store.set_member(engine, "acme", "alice@acme.com", role="owner")
    store.set_member(engine, "globex", "alice@acme.com", name="Alice G.")
    assert store.get_member(engine, org, "alice@acme.com").name == "Alice"


# ---------------------------------------------------------------- sums that outgrow 64 bits


def test_reports_over_the_boundary_values(engine: Engine) -> None:
    """Rows stored before the ingest limits (or by hand) still make a report, exactly."""
    store.set_member(engine, "acme", "alice@acme.com")
    store.set_member(engine, "acme", "bob@acme.com")
    org = store.get_org(engine, "acme")
    users = {m.email: m.user_id for m in store.members(engine, org.id)}
    ts = 1_714_557_600_000_000  # 2024-05-01T10:00Z
    big_cost = 999_999_999_999_999_999          # $999,999,999.999999999
    big_tokens = 2**62
    rows = [{"id": f"c{n}", "organization_id": org.id, "user_id": users["alice@acme.com"],
             "ts_us": ts + n, "model": "m", "project": None, "input_tokens": 0,
             "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
             "cost_nanos": big_cost} for n in range(10)]
    rows += [{"id": f"t{n}", "organization_id": org.id, "user_id": users["bob@acme.com"],
              "ts_us": ts + n, "model": "m", "project": "p", "input_tokens": big_tokens,
              "output_tokens": big_tokens, "cache_read_tokens": big_tokens,
              "cache_write_tokens": big_tokens, "cost_nanos": 0} for n in range(3)]
    with engine.begin() as conn:
        conn.execute(usage_events.insert(), rows)
    day = Period("custom", date(2024, 5, 1), date(2024, 5, 1), "UTC")
    data = report_json(engine, "acme", day)
    summary = data["summary"]
    assert summary["total_cost_usd"] == "9999999999.999999990"
    assert summary["total_requests"] == 13
    assert summary["input_tokens"] == summary["output_tokens"] == 3 * big_tokens
    assert summary["total_tokens"] == 6 * big_tokens
    assert [p["tokens"] for p in data["by_project"] if p["project"] == "p"] == [6 * big_tokens]
    mine = report_json(engine, "acme", day, member="alice@acme.com")
    assert mine["summary"]["total_cost_usd"] == "9999999999.999999990"


# ---------------------------------------------------------------- the command


def test_ingest_command_names_what_it_created(cli: Callable[..., Result],
                                              tmp_path: Path) -> None:
    assert cli("member", "set", "acme", "alice@acme.com").exit_code == 0
    path = write_jsonl(tmp_path / "u.jsonl", [
        row("1", "2024-05-01T10:00:00Z"),
        row("2", "2024-05-01T10:00:00Z", email="bob@acme.com"),
        row("3", "2024-05-01T10:00:00Z", org="beta", email="bob@acme.com"),
        row("4", "2024-05-01T10:00:00Z", org="Beta", email="carol@beta.com"),
        {**row("5", "2024-05-01T10:00:00Z"), "model": "m\ud800"}])
    result = cli("ingest", str(path))
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout.splitlines() == [
        "created organization beta",
        "created member bob@acme.com in acme",
        "created member bob@acme.com in beta",
        "inserted 3, duplicate 0, rejected 2"]
    # (log lines may join them on stderr when an earlier test turned logging up)
    errors = [e for e in result.stderr.splitlines() if e.startswith(str(path))]
    assert [e.split(": ", 1)[0] for e in errors] == [f"{path}:4", f"{path}:5"]
    assert "Traceback" not in result.stderr


def test_org_set_command_explains_the_slug_rule(cli: Callable[..., Result]) -> None:
    result = cli("org", "set", "Acme Corp")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "'Acme Corp'" in result.stderr
    assert "lowercase letters" in result.stderr


def test_csv_module_limit_is_left_as_it_was() -> None:
    assert csv.field_size_limit() == 131_072
