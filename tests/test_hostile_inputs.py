"""Hostile inputs to every command: one ``reporter: error:`` line (or the validate listing), a
non-zero exit, never a traceback, never a secret. In-process through click for speed, and a
few through real ``reporter`` processes."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from reporter.cli import main
from reporter.store import db
from reporter.store import orgs as store
from tests.helpers import REPORTER, load, row

SECRET = "s3cr3t-Pa55"

JOBS = """\
output: out
executor: {kind: local, workers: 1}
jobs:
  weekly:
    period: previous-week
    formats: [json]
"""

FILES: dict[str, str | bytes] = {
    "jobs.yaml": JOBS,
    "corrupt.db": b"hello\n",
    "usage.csv": "id,timestamp,organization,user_email,model,project,input_tokens,"
                 "output_tokens,cache_read_tokens,cache_write_tokens,cost_usd\n"
                 "e1,2026-01-06T10:00:00Z,acme,a@acme.com,m,,1,2,0,0,0.5\n",
    "tags.yaml": "jobs: !!python/object/apply:os.system ['echo pwned']\n",
    "custom-tag.yaml": "output: !include other.yaml\njobs: {}\n",
    "laughs.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b]\njobs: [*c, *c, *c, *c, *c]\n",
    "binary.yaml": b"\xff\xfe\x00jobs\x00\x9c",
    "secret-db.yaml": f"database: postgresql://u:{SECRET}@host:abc/db\n" + JOBS,
    "secret-db2.yaml": f"database: postgresql://u:{SECRET}@127.0.0.1:1/db\n" + JOBS,
    "out-under-file.yaml": JOBS.replace("output: out", "output: jobs.yaml/out"),
    "smtp-secret.yaml": JOBS + "    deliver: {store: false, email: true}\n"
                        "smtp:\n  host: 127.0.0.1\n  port: 1\n  security: none\n"
                        "  username: u\n  password_env: HOSTILE_PW\n  from: r@example.com\n"
                        "  retries: 0\n  timeout_seconds: 2\n",
    "templates/report.html.j2": "{% if %}",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """A folder with a database of two organizations (UTC+14 and UTC-10) and hostile files."""
    folder = tmp_path_factory.mktemp("hostile")
    for name, content in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    shutil.copy(sqlite_template, folder / "good.db")
    engine: Engine = db.open_engine(f"sqlite:///{folder / 'good.db'}")
    try:
        store.set_org(engine, "acme", name="Acme", timezone="Pacific/Kiritimati")
        store.set_org(engine, "adak", name="Adak", timezone="America/Adak")
        store.set_member(engine, "acme", "alice@acme.com", role="owner")
        load(engine, [row("e1", "2026-01-06T10:00:00Z")])
    finally:
        engine.dispose()
    return folder


@dataclass(frozen=True)
class Case:
    """``args`` ({db}: a fresh copy of the good database, {w}: the world folder); ``kind``:
    "error" (one reporter: error: line), "listing" (validate's lines) or "units" (failed
    units on stdout, nothing alarming on stderr)."""

    name: str
    args: tuple[str, ...]
    kind: str = "error"
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None


def case(name: str, *args: str, kind: str = "error", env: dict[str, str] | None = None,
         stdin: str | None = None, owner: str | None = None) -> Case | Any:
    """A Case; ``owner``: the module whose fix the case still waits for (expected to fail)."""
    made = Case(name, args, kind, env or {}, stdin)
    if owner is None:
        return made
    return pytest.param(made, id=name, marks=pytest.mark.xfail(
        reason=f"waits for a fix in {owner}", strict=False))


GEN = ("generate", "--org", "acme")
CASES = [
    # database URLs: never the password, never a traceback
    case("url-port-not-a-number", "org", "list", "--db",
         f"postgresql://u:{SECRET}@host:abc/db"),
    case("url-no-scheme", "runs", "--db", f"u:{SECRET}@host/db"),
    case("url-unknown-dialect", "org", "set", "x", "--db", f"nosuch://u:{SECRET}@h/db"),
    case("url-at-in-password", "runs", "--db", f"postgresql://u:p@{SECRET}@127.0.0.1:1/db"),
    case("url-nobody-listens", *GEN, "--period", "all", "--db",
         f"postgresql://u:{SECRET}@127.0.0.1:1/db"),
    case("url-password-parameter", "org", "list", "--db",
         f"postgresql://u@127.0.0.1:1/db?password={SECRET}"),
    case("url-from-environment", "runs",
         env={"REPORTER_DATABASE_URL": f"postgresql://u:{SECRET}@host:abc/db"}),
    case("url-from-config", "runs", "--config", "{w}/secret-db.yaml"),
    case("url-from-config-unreachable", "jobs", "--config", "{w}/secret-db2.yaml"),
    case("url-before-command", "--db", f"postgresql://u:{SECRET}@host:99999/db", "org", "list"),
    # missing, misspelled and corrupt SQLite files
    case("db-missing-runs", "runs", "--db", "sqlite:///{w}/nope/reporter.db"),
    case("db-missing-generate", *GEN, "--period", "all", "--db", "sqlite:///{w}/nope.db"),
    case("db-is-a-folder", "org", "set", "x", "--db", "sqlite:///{w}"),
    case("db-not-a-database", "org", "list", "--db", "sqlite:///{w}/corrupt.db"),
    case("db-not-a-database-ingest", "ingest", "{w}/usage.csv", "--db",
         "sqlite:///{w}/corrupt.db"),
    case("db-folder-under-a-file", "org", "set", "x", "--db",
         "sqlite:///{w}/jobs.yaml/sub/r.db"),
    # dates
    case("date-year-one-east", *GEN, "--from", "0001-01-01", "--to", "0001-01-07"),
    case("date-year-one-west", "generate", "--org", "adak", "--from", "0001-01-01", "--to",
         "0001-01-07"),
    case("date-year-9999", "generate", "--org", "adak", "--from", "9999-12-01", "--to",
         "9999-12-31"),
    case("date-not-a-date", *GEN, "--from", "2024-13-01", "--to", "2024-12-01"),
    case("date-reversed", *GEN, "--from", "2024-02-01", "--to", "2024-01-01"),
    case("date-with-time", *GEN, "--from", "2024-01-01T00:00", "--to", "2024-01-02"),
    case("date-nul", *GEN, "--from", "2024-01-01\x00", "--to", "2024-01-02"),
    case("date-backfill-year-one", "backfill", "weekly", "--from", "0001-01-01", "--to",
         "0001-02-01"),
    case("date-run-far", "run", "weekly", "--from", "9999-12-31", "--to", "9999-12-31"),
    case("period-and-dates", "run", "weekly", "--period", "previous-week", "--from",
         "2024-01-01", "--to", "2024-01-07"),
    # unknown names
    case("unknown-org", "generate", "--org", "nope", "--period", "all"),
    case("unknown-job", "run", "nojob"),
    case("unknown-job-backfill", "backfill", "nojob", "--from", "2024-01-01", "--to",
         "2024-01-31"),
    case("unknown-member", *GEN, "--period", "all", "--user", "nobody@acme.com"),
    case("unknown-member-remove", "member", "remove", "acme", "zed@acme.com"),
    case("unknown-org-in-run", "run", "weekly", "--org", "nope"),
    case("unknown-period", *GEN, "--period", "last week\nInjected: yes"),
    case("unknown-timezone", "org", "set", "acme", "--timezone", "../../etc/passwd"),
    case("unknown-state", "runs", "--state", "bogus"),
    # formats and options
    case("format-unknown", *GEN, "--period", "all", "--format", "docx"),
    case("format-empty", *GEN, "--period", "all", "--format", ",,"),
    case("role-unknown", "member", "set", "acme", "a@acme.com", "--role", "root"),
    case("email-header-injection", "member", "set", "acme", "a@acme.com\r\nBcc: x@evil.com"),
    case("templates-missing", *GEN, "--period", "all", "--templates", "{w}/no-such-folder"),
    case("templates-broken", *GEN, "--period", "all", "--format", "html", "--templates",
         "{w}/templates"),
    # huge numbers
    case("limit-huge", "runs", "--limit", "99999999999999999999"),
    case("limit-negative", "runs", "--limit", "-5"),
    case("demo-days-huge", "demo", "--days", "99999999999"),
    case("demo-scale-nan", "demo", "--days", "2", "--scale", "nan"),
    # NUL bytes and newlines in arguments
    case("nul-in-org", "generate", "--org", "ac\x00me", "--period", "all"),
    case("nul-in-config", "runs", "--config", "jobs\x00.yaml"),
    case("nul-in-file", "ingest", "usage\x00.csv"),
    case("nul-in-slug", "org", "set", "ac\x00me"),
    case("newline-in-slug", "org", "set", "acme\nevil"),
    case("nul-in-project-path", "project-id", "some\x00where"),
    # outputs that cannot be written
    case("out-under-a-file", *GEN, "--period", "all", "--out", "{w}/jobs.yaml/x"),
    case("out-in-proc", *GEN, "--period", "all", "--out", "/proc/no/such/folder"),
    case("out-is-a-file", *GEN, "--period", "all", "--out", "{w}/jobs.yaml"),
    case("output-under-a-file", "run", "weekly", "--config", "{w}/out-under-file.yaml",
         kind="units"),
    # configs
    case("config-missing", "run", "weekly", "--config", "{w}/missing.yaml"),
    case("config-is-a-folder", "jobs", "--config", "{w}"),
    case("config-python-tag", "run", "weekly", "--config", "{w}/tags.yaml"),
    case("config-python-tag-validate", "validate", "--config", "{w}/tags.yaml",
         kind="listing"),
    case("config-custom-tag", "validate", "--config", "{w}/custom-tag.yaml", kind="listing"),
    case("config-aliases", "validate", "--config", "{w}/laughs.yaml", kind="listing"),
    case("config-binary", "jobs", "--config", "{w}/binary.yaml"),
    case("config-missing-scheduler", "scheduler", "--config", "{w}/missing.yaml"),
    case("config-missing-worker", "worker", "--config", "{w}/missing.yaml"),
    case("smtp-password-unreachable", "run", "weekly", "--config", "{w}/smtp-secret.yaml",
         "--from", "2026-01-05", "--to", "2026-01-11", kind="units",
         env={"HOSTILE_PW": SECRET}),
    # input files
    case("ingest-folder", "ingest", "{w}"),
    case("ingest-binary-stdin", "ingest", "-", stdin="\x00\xff" * 10, kind="units"),
]


def _args(case: Case, world: Path, database: Path) -> list[str]:
    out = [a.replace("{w}", str(world)) for a in case.args]
    if not any(a == "--db" for a in out) and "REPORTER_DATABASE_URL" not in case.env \
            and not any("secret-db" in a for a in out):
        out += ["--db", f"sqlite:///{database}"]
    if "--config" not in out:
        out += ["--config", str(world / "jobs.yaml")]
    return out


def check(case: Case, code: int, stdout: str, stderr: str, config_names: tuple[str, ...] = (),
          ) -> None:
    """The promises every hostile case keeps."""
    everything = stdout + stderr
    assert "Traceback" not in everything, everything
    assert SECRET not in everything, everything
    assert code != 0, everything
    lines = stderr.splitlines()
    if case.kind == "error":
        assert len(lines) == 1, stderr
        assert lines[0].startswith("reporter: error: "), stderr
    elif case.kind == "listing":
        assert lines, stderr
        assert all(line.startswith((*config_names, "reporter: error: ")) for line in lines), stderr
    else:  # units: each failure is one line on stdout
        assert all(line.startswith(("reporter: error: ", "WARNING", "<stdin>:"))
                   for line in lines), stderr
        failed = [line for line in stdout.splitlines() if line.startswith("failed")]
        assert failed or lines, everything


def _name(item: Case | Any) -> str:
    return item.name if isinstance(item, Case) else item.id


def _case(item: Case | Any) -> Case:
    return item if isinstance(item, Case) else item.values[0]


@pytest.mark.parametrize("hostile", CASES, ids=[_name(c) for c in CASES])
def test_hostile_input_in_process(hostile: Case, world: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPORTER_DATABASE_URL", raising=False)
    for key, value in hostile.env.items():
        monkeypatch.setenv(key, value)
    database = tmp_path / "r.db"
    shutil.copy(world / "good.db", database)
    result = CliRunner().invoke(main, _args(hostile, world, database), input=hostile.stdin,
                                prog_name="reporter", catch_exceptions=False)
    check(hostile, result.exit_code, result.stdout, result.stderr,
          tuple(f"{Path(a).name}:" for a in hostile.args if a.endswith(".yaml")))


#: cases worth a real process: the command line as the operating system hands it over
PROCESS_CASES = ["url-port-not-a-number", "url-from-environment", "db-not-a-database",
                 "date-year-one-west", "out-under-a-file", "config-python-tag-validate"]


def test_hostile_input_in_real_processes(world: Path, tmp_path: Path) -> None:
    chosen = [_case(c) for c in CASES if _name(c) in PROCESS_CASES]
    assert len(chosen) == len(PROCESS_CASES)
    running = []
    for hostile in chosen:
        folder = tmp_path / hostile.name
        folder.mkdir()
        shutil.copy(world / "good.db", folder / "r.db")
        env = {k: v for k, v in os.environ.items() if k != "REPORTER_DATABASE_URL"}
        env.update(hostile.env)
        proc = subprocess.Popen([str(REPORTER), *_args(hostile, world, folder / "r.db")],
                                cwd=folder, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        running.append((hostile, proc))
    for hostile, proc in running:
        out, err = proc.communicate(hostile.stdin, timeout=120)
        check(hostile, proc.returncode, out, err,
              tuple(f"{Path(a).name}:" for a in hostile.args if a.endswith(".yaml")))
