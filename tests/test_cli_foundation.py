"""The foundation commands through click, and a few through a real ``reporter`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from reporter.cli import main
from reporter.store import db
from tests.test_aggregate import check_invariants, check_shape
from tests.test_ingest import GOOD, write_csv, write_jsonl

REPORTER = Path(sys.executable).parent / "reporter"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str):  # type: ignore[no-untyped-def]
    """Run ``reporter ARGS`` in an empty folder against a fresh database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPORTER_DATABASE_URL", raising=False)
    # the command's engine lives as long as the process; in-process runs dispose of it
    engines: list[Engine] = []
    opener = db.open_engine

    def tracked(*args: Any, **kwargs: Any) -> Engine:
        engines.append(opener(*args, **kwargs))
        return engines[-1]

    monkeypatch.setattr(db, "open_engine", tracked)

    def run(*args: str, input: str | None = None) -> Result:
        try:
            return CliRunner().invoke(main, [*args, "--db", db_url], input=input,
                                      prog_name="reporter")
        finally:
            while engines:
                engines.pop().dispose()

    return run


def one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr and result.exception is None or isinstance(
        result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_org_and_member_commands(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("org", "set", "acme", "--name", "Acme Corp", "--timezone", "Asia/Kathmandu")
    assert result.exit_code == 0
    assert result.output == "acme: Acme Corp (Asia/Kathmandu)\n"
    assert cli("org", "set", "beta").output == "beta: beta (UTC)\n"
    assert cli("org", "list").output == "acme\tAcme Corp\tAsia/Kathmandu\nbeta\tbeta\tUTC\n"
    result = cli("member", "set", "gamma", "Alice@x.com", "--role", "admin", "--name", "Al")
    assert result.exit_code == 0
    assert result.output == "gamma: alice@x.com (admin)\n"
    assert "gamma\tgamma\tUTC" in cli("org", "list").output  # created on the way
    result = cli("member", "remove", "gamma", "alice@x.com")
    assert result.exit_code == 0
    assert result.output == "gamma: removed alice@x.com\n"


def test_ingest_and_generate(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "usage.csv", GOOD)
    result = cli("ingest", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "inserted 3, duplicate 0, rejected 0\n"
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
                 "--user", "bob@acme.com", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    mine = json.loads(Path(result.stdout.strip()).read_text(encoding="utf-8"))
    assert mine["member"] == "bob@acme.com"
    assert mine["summary"]["total_cost_usd"] == "2.00"
    result = cli("generate", "--org", "acme", "--period", "past-week", "--out",
                 str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr


def test_ingest_reports_bad_rows(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_jsonl(tmp_path / "u.jsonl", [GOOD[0], "{broken",
                                              {**GOOD[1], "timestamp": "2026-02-30T00:00Z"}])
    result = cli("ingest", str(path))
    assert result.exit_code == 1
    assert result.stdout == "inserted 1, duplicate 0, rejected 2\n"
    assert result.stderr.splitlines() == [
        f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes)",
        f"{path}:3: timestamp '2026-02-30T00:00Z' is not a valid ISO 8601 date and time"]


def test_ingest_stdin(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = write_csv(tmp_path / "u.csv", GOOD).read_text(encoding="utf-8")
    result = cli("ingest", "-", input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "inserted 3, duplicate 0, rejected 0\n"


def test_missing_file_keeps_going(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = write_csv(tmp_path / "u.csv", GOOD)
    result = cli("ingest", str(tmp_path / "missing.csv"), str(good))
    assert result.exit_code == 1
    assert result.stdout == "inserted 3, duplicate 0, rejected 0\n"
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
    assert result.output == ""


def test_project_id_command(tmp_path: Path) -> None:
    (tmp_path / ".kilocode").mkdir()
    (tmp_path / ".kilocode" / "config.json").write_text('{"project": {"id": "p-1"}}',
                                                        encoding="utf-8")
    result = CliRunner().invoke(main, ["project-id", str(tmp_path)])
    assert (result.exit_code, result.output) == (0, "p-1\n")


# ---------------------------------------------------------------- real processes


def reporter(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REPORTER_DATABASE_URL"}
    return subprocess.run([str(REPORTER), *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_real_process_ingest_generate_and_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    text = write_csv(tmp_path / "u.csv", GOOD).read_text(encoding="utf-8")
    done = reporter("ingest", "-", "--db", url, cwd=tmp_path, stdin=text + "x,y\n")
    assert done.returncode == 1
    assert done.stdout == "inserted 3, duplicate 0, rejected 1\n"
    assert done.stderr == "<stdin>:5: expected 11 fields, found 2\n"
    done = reporter("generate", "--org", "acme", "--from", "2024-05-01", "--to", "2024-05-01",
                    "--db", url, "--out", "out", cwd=tmp_path)
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
