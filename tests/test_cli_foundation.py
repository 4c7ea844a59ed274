"""The foundation commands through click, and a few through a real ``reporter`` process."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reporter.cli import main
from reporter.cli.app import RedactingFormatter
from reporter.store import db
from tests.helpers import GOOD, reporter, write_csv, write_jsonl
from tests.report_checks import check_invariants, check_shape


def one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code != 0
    # the command ended by exiting; any other exception is a bug (and carries a traceback)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_org_and_member_commands(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("org", "set", "acme", "--name", "Acme Corp", "--timezone", "Asia/Kathmandu")
    assert result.exit_code == 0
    assert result.output == "created organization acme\nacme: Acme Corp (Asia/Kathmandu)\n"
    assert cli("org", "set", "beta").output == "created organization beta\nbeta: beta (UTC)\n"
    assert cli("org", "set", "beta").output == "beta: beta (UTC)\n"  # nothing new
    assert cli("org", "list").output == ("slug\tname\ttimezone\tmonthly budget\n"
                                         "acme\tAcme Corp\tAsia/Kathmandu\t-\n"
                                         "beta\tbeta\tUTC\t-\n")
    result = cli("member", "set", "gamma", "Alice@x.com", "--role", "admin", "--name", "Al")
    assert result.exit_code == 0
    assert result.output == ("created organization gamma\n"
                             "created member alice@x.com in gamma\n"
                             "gamma: alice@x.com (admin)\n")
    assert cli("member", "set", "gamma", "alice@x.com").output == "gamma: alice@x.com (admin)\n"
    assert "gamma\tgamma\tUTC" in cli("org", "list").output  # created on the way
    result = cli("member", "remove", "gamma", "alice@x.com")
    assert result.exit_code == 0
    assert result.output == "gamma: removed alice@x.com\n"


def test_ingest_and_generate(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "usage.csv", GOOD)
    result = cli("ingest", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ("created organization acme\ncreated organization beta\n"
                             "created member alice@acme.com in acme\n"
                             "created member bob@acme.com in acme\n"
                             "created member carol@beta.io in beta\n"
                             "inserted 3, duplicate 0, rejected 0\n")
    assert cli("ingest", str(path)).stdout == "inserted 0, duplicate 3, rejected 0\n"
    cli("org", "set", "acme", "--name", "Acme", "--timezone", "Asia/Kolkata")
    result = cli("generate", "--org", "acme", "--from", "2024-05-01", "--to", "2024-05-02",
                 "--format", "json", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written.parent == tmp_path / "out"
    assert written.suffix == ".json"
    data = json.loads(written.read_text(encoding="utf-8"))
    check_shape(data)
    check_invariants(data)
    assert data["organization"] == {"slug": "acme", "name": "Acme", "timezone": "Asia/Kolkata"}
    assert data["summary"]["total_cost_usd"] == "2.123456789"
    assert [d["date"] for d in data["by_day"]] == ["2024-05-01"]
    result = cli("generate", "--org", "acme", "--from", "2024-05-01", "--to", "2024-05-02",
                 "--user", "bob@acme.com", "--format", "json", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    mine = json.loads(Path(result.stdout.strip()).read_text(encoding="utf-8"))
    assert mine["member"] == "bob@acme.com"
    assert mine["summary"]["total_cost_usd"] == "2.000000000"
    # without --format: the HTML a person opens, and --help says so
    result = cli("generate", "--org", "acme", "--period", "past-week", "--out",
                 str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()).suffix == ".html"
    assert "[default: html]" in " ".join(cli("generate", "--help").stdout.split())


def test_ingest_reports_bad_rows(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_jsonl(tmp_path / "u.jsonl", [GOOD[0], "{broken",
                                              {**GOOD[1], "timestamp": "2026-02-30T00:00Z"}])
    result = cli("ingest", str(path))
    assert result.exit_code == 1
    assert result.stdout == ("created organization acme\ncreated member alice@acme.com in acme\n"
                             "inserted 1, duplicate 0, rejected 2\n")
    assert result.stderr.splitlines() == [
        f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes)",
        f"{path}:3: timestamp '2026-02-30T00:00Z' is not a valid ISO 8601 date and time"]


def test_ingest_stdin(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = write_csv(tmp_path / "u.csv", GOOD).read_text(encoding="utf-8")
    result = cli("ingest", "-", input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("created member carol@beta.io in beta\n"
                                  "inserted 3, duplicate 0, rejected 0\n")


def test_missing_file_keeps_going(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = write_csv(tmp_path / "u.csv", GOOD)
    result = cli("ingest", str(tmp_path / "missing.csv"), str(good))
    assert result.exit_code == 1
    assert result.stdout.endswith("created member carol@beta.io in beta\n"
                                  "inserted 3, duplicate 0, rejected 0\n")
    one_line_error(result, "missing.csv", "no such file")


@pytest.mark.parametrize(("args", "needles"), [
    (("generate", "--org", "nope", "--period", "past-week"), ["unknown organization 'nope'"]),
    (("generate", "--org", "acme", "--period", "last-week"), ["unknown period 'last-week'"]),
    (("generate", "--org", "acme", "--from", "2024-05-02", "--to", "2024-05-01"),
     ["--from 2024-05-02 is after --to 2024-05-01"]),
    (("generate", "--org", "acme", "--from", "2024-05-02"), ["--from and --to"]),
    (("generate", "--org", "acme", "--period", "past-week", "--user", "zed@acme.com"),
     ["zed@acme.com", "not a member"]),
    (("generate", "--org", "acme", "--period", "past-week", "--format", "docx"),
     ["unknown format 'docx'"]),
    (("org", "set", "acme", "--timezone", "Mars/Olympus"), ["unknown timezone 'Mars/Olympus'"]),
    (("member", "set", "acme", "not-an-email"), ["not-an-email", "not an email address"]),
    (("member", "remove", "acme", "zed@acme.com"), ["zed@acme.com", "not a member"]),
    (("ingest", "usage.txt"), ["usage.txt", "cannot tell the format"]),
])
def test_errors_are_one_line(cli, args: tuple[str, ...],  # type: ignore[no-untyped-def]
                             needles: list[str]) -> None:
    cli("org", "set", "acme")
    one_line_error(cli(*args), *needles)


@pytest.mark.parametrize(("args", "needle"), [
    (("member", "set", "acme", "a@acme.com", "--role", "boss"), "'boss' is not one of"),
    (("generate", "--org", "acme", "--from", "2024-02-30", "--to", "2024-03-01"),
     "'2024-02-30' is not a date"),
])
def test_usage_errors_name_the_problem(cli, args: tuple[str, ...],  # type: ignore[no-untyped-def]
                                       needle: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("reporter: error: "), result.stderr
    assert needle in lines[0], result.stderr


def test_database_url_from_the_environment(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPORTER_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert CliRunner().invoke(main, ["org", "set", "acme"]).exit_code == 0
    assert (tmp_path / "env.db").exists()
    assert not (tmp_path / "reporter.db").exists()
    # --db wins over the environment
    result = CliRunner().invoke(main, ["org", "list", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    one_line_error(result, f"database {tmp_path / 'x.db'} does not exist")
    assert not (tmp_path / "x.db").exists()


def test_project_id_command(tmp_path: Path) -> None:
    (tmp_path / ".kilocode").mkdir()
    (tmp_path / ".kilocode" / "config.json").write_text('{"project": {"id": "p-1"}}',
                                                        encoding="utf-8")
    result = CliRunner().invoke(main, ["project-id", str(tmp_path)])
    assert (result.exit_code, result.output) == (0, "p-1\n")


SECRET = "s3cr3t-pw"


@pytest.mark.parametrize("url", [
    f"postgresql://u:{SECRET}@host:abc/db",              # a port that is not a number
    f"postgresql://u:{SECRET}@[::1/db",                  # an unclosed IPv6 bracket
    f"u:{SECRET}@host/db",                               # no scheme
    f"nosuch://u:{SECRET}@host/db",                      # no such dialect
    f"postgresql://u:p@{SECRET}@127.0.0.1:1/db",         # an '@' in the password, unescaped
    f"postgresql://u:{SECRET}@127.0.0.1:1/db",           # nothing listens
    f"postgresql://u@127.0.0.1:1/db?password={SECRET}",  # the password as a parameter
    f"postgresql://u:{SECRET}@127.0.0.1:5432/no_such_db_here",
])
def test_database_url_password_is_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              url: str) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["org", "list", "--db", url], ["--db", url, "org", "set", "acme"]):
        result = CliRunner().invoke(main, args, prog_name="reporter")
        one_line_error(result, "reporter: error: database")
        assert SECRET not in result.output + result.stderr, result.stderr
        assert "***" in result.stderr, result.stderr  # the URL is shown, its password masked


@pytest.mark.parametrize(("text", "shown"), [
    ("postgresql://u:pw-secret@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u:p@w-secret@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:pw secret@h/db", "postgresql://u:***@h/db"),
    ("u:pw-secret@h/db", "u:***@h/db"),
    ("postgresql://u@h/db?sslmode=require&password=pw-secret", "postgresql://u@h/db?sslmode="
                                                               "require&password=***"),
    ("redis://:pw-secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("sqlite:///srv/a:b@c.db", "sqlite:///srv/a:b@c.db"),  # a path, not a password
    ("postgresql://u@h/db", "postgresql://u@h/db"),
])
def test_display_url_masks_the_password(text: str, shown: str) -> None:
    assert db.display_url(text) == shown


def test_log_lines_never_show_a_url_password() -> None:
    formatter = RedactingFormatter("%(levelname)s: %(message)s")
    try:
        raise ConnectionError("cannot reach redis://:pw-secret@10.0.0.1:6379/0")
    except ConnectionError:
        record = logging.LogRecord("reporter.x", logging.ERROR, __file__, 1, "broker %s: %s",
                                   ("amqp://guest:pw-secret@rabbit//", "down"), sys.exc_info())
    text = formatter.format(record)
    assert "pw-secret" not in text
    assert text.startswith("ERROR: broker amqp://guest:***@rabbit//: down\nTraceback")
    assert "redis://:***@10.0.0.1:6379/0" in text


@pytest.mark.parametrize("args", [
    ("runs",), ("org", "list"), ("jobs",),
    ("generate", "--org", "acme", "--period", "all"),
    ("member", "remove", "acme", "a@acme.com"),
])
def test_reading_a_missing_sqlite_file_does_not_create_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs.yaml").write_text(JOBS, encoding="utf-8")
    missing = tmp_path / "misspelled" / "reporter.db"
    result = CliRunner().invoke(main, [*args, "--db", f"sqlite:///{missing}"])
    one_line_error(result, f"database {missing} does not exist", "reporter demo")
    assert not missing.parent.exists()


def test_validate_checks_the_file_without_creating_the_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs.yaml").write_text(JOBS, encoding="utf-8")
    missing = tmp_path / "misspelled" / "reporter.db"
    result = CliRunner().invoke(main, ["validate", "--db", f"sqlite:///{missing}"])
    assert result.exit_code == 0, result.stderr
    assert f"database {missing} does not exist" in result.stdout
    assert not missing.parent.exists()


@pytest.mark.parametrize("args", [
    ("org", "set", "acme"), ("member", "set", "acme", "a@acme.com"),
    ("run", "weekly", "--dry-run"), ("backfill", "weekly", "--from", "2026-01-05", "--to",
                                     "2026-01-11", "--dry-run"),
])
def test_writing_commands_create_the_sqlite_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs.yaml").write_text(JOBS, encoding="utf-8")
    fresh = tmp_path / "new" / "reporter.db"
    result = CliRunner().invoke(main, [*args, "--db", f"sqlite:///{fresh}"])
    assert result.exit_code == 0, result.output + result.stderr
    assert fresh.is_file()


@pytest.mark.parametrize("content", [b"hello\n", b"SQLite format 3\x00" + b"\xab" * 5000])
def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "x.db"
    bad.write_bytes(content)
    for args in (["org", "list"], ["org", "set", "acme"], ["runs"]):
        result = CliRunner().invoke(main, [*args, "--db", f"sqlite:///{bad}"])
        one_line_error(result, f"database {bad}")
    assert bad.read_bytes() == content  # left as it was


def test_a_database_that_breaks_after_opening_is_one_line(tmp_path: Path,
                                                          sqlite_template: Path) -> None:
    path = tmp_path / "r.db"
    data = bytearray(sqlite_template.read_bytes())
    page = 4096
    data[2 * page:] = b"\xab" * (len(data) - 2 * page)  # the header survives, the tables do not
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["org", "list", "--db", f"sqlite:///{path}"])
    one_line_error(result, f"database {path}")


JOBS = """\
output: out
jobs:
  weekly:
    period: previous-week
    formats: [json]
"""


def test_shared_options_go_before_or_after_the_command(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPORTER_DATABASE_URL", raising=False)
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "jobs.yaml").write_text(JOBS, encoding="utf-8")
    config, url = str(folder / "jobs.yaml"), f"sqlite:///{tmp_path / 'a.db'}"
    assert CliRunner().invoke(main, ["--db", url, "org", "set", "acme"]).exit_code == 0
    assert (tmp_path / "a.db").is_file()
    before = CliRunner().invoke(main, ["--config", config, "--db", url, "-v", "run", "weekly",
                                       "--dry-run"])
    after = CliRunner().invoke(main, ["run", "weekly", "--dry-run", "--config", config, "--db",
                                      url, "-v"])
    assert before.exit_code == after.exit_code == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    assert "planned" in before.stdout
    assert "acme" in before.stdout
    # the command's own option wins over the group's
    mixed = CliRunner().invoke(main, ["--config", "nope.yaml", "--db", "sqlite:///nope.db",
                                      "run", "weekly", "--dry-run", "--config", config,
                                      "--db", url])
    assert mixed.stdout == before.stdout, mixed.stderr
    # the group's option reaches a subgroup's command
    listed = CliRunner().invoke(main, ["--db", url, "org", "list"])
    assert listed.stdout.splitlines()[1:] == ["acme\tacme\tUTC\t-"], listed.stderr
    # -v at either place turns on INFO logging
    result = CliRunner().invoke(main, ["-v", "--db", f"sqlite:///{tmp_path / 'b.db'}",
                                       "org", "set", "acme"])
    assert "INFO reporter.store.db: migrating" in result.stderr, result.stderr


@pytest.mark.parametrize("out", ["{file}/x", "/proc/no/such/folder"])
def test_an_output_folder_that_cannot_be_made_is_one_line(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          out: str) -> None:
    cli("org", "set", "acme")
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    folder = out.format(file=tmp_path / "a-file")
    result = cli("generate", "--org", "acme", "--period", "all", "--out", folder)
    one_line_error(result, "cannot create folder", folder)


@pytest.mark.parametrize(("zone", "first", "last", "needle"), [
    ("Pacific/Kiritimati", "0001-01-01", "0001-01-07", "--from 0001-01-01 is out of range"),
    ("America/Adak", "0001-01-01", "0001-01-07", "--from 0001-01-01 is out of range"),
    ("America/Adak", "9999-12-01", "9999-12-31", "--from 9999-12-01 is out of range"),
    ("Pacific/Kiritimati", "2026-01-01", "9999-12-31", "--to 9999-12-31 is out of range"),
])
def test_dates_far_away_are_one_line(cli, zone: str, first: str,  # type: ignore[no-untyped-def]
                                     last: str, needle: str) -> None:
    cli("org", "set", "acme", "--timezone", zone)
    one_line_error(cli("generate", "--org", "acme", "--from", first, "--to", last), needle)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Adak"])
def test_dates_at_the_edges_of_the_range_work(cli, zone: str) -> None:  # type: ignore[no-untyped-def]
    cli("org", "set", "acme", "--timezone", zone)
    for first, last in (("1900-01-01", "1900-12-31"), ("9998-12-01", "9998-12-31")):
        result = cli("generate", "--org", "acme", "--from", first, "--to", last)
        assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- real processes


def test_real_process_ingest_generate_and_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    text = write_csv(tmp_path / "u.csv", GOOD).read_text(encoding="utf-8")
    done = reporter("ingest", "-", "--db", url, cwd=tmp_path, stdin=text + "x,y\n")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == "inserted 3, duplicate 0, rejected 1"
    assert done.stderr == "<stdin>:5: expected 11 fields, found 2\n"
    done = reporter("generate", "--org", "acme", "--from", "2024-05-01", "--to", "2024-05-01",
                    "--format", "json", "--db", url, "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / done.stdout.strip()).read_text(encoding="utf-8"))
    assert data["summary"]["total_requests"] == 2
    done = reporter("generate", "--org", "nope", "--period", "all", "--db", url, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == "reporter: error: unknown organization 'nope'\n"


def test_real_process_bad_database_url(tmp_path: Path) -> None:
    done = reporter("org", "list", "--db", "postgresql://nobody@127.0.0.1:1/none", cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_validate_checks_the_file_before_any_database_exists(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """A new user validates the shipped jobs.yaml before creating a database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPORTER_DATABASE_URL", raising=False)
    shipped = Path(__file__).resolve().parent.parent / "jobs.yaml"
    (tmp_path / "jobs.yaml").write_text(shipped.read_text())
    result = CliRunner().invoke(main, ["validate", "--db", f"sqlite:///{tmp_path}/none.db"])
    assert result.exit_code == 0, result.output
    assert "ok (" in result.output
    assert "organizations not checked" in result.output
    assert not (tmp_path / "none.db").exists()
