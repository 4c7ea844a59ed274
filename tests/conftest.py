"""Shared fixtures: real SQLite files and the real PostgreSQL server, fresh per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, inspect, text

from reporter.cli import main
from reporter.store import db

PG_ADMIN = os.environ.get("REPORTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: Debian's chromium (scripts/setup.sh --test installs it); Playwright downloads no browser
CHROMIUM = os.environ.get("REPORTER_TEST_CHROMIUM", "chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _worker() -> str:
    """A name of this test process, unique among concurrent runs on the machine."""
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.open_engine(f"sqlite:///{path}")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"reporter_test_{_worker()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    engine = db.open_engine(url)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(engine: Engine) -> None:
    tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty, migrated database: a SQLite file or the PostgreSQL test database."""
    if request.param == "sqlite":
        path = tmp_path / "reporter.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    engine = db.open_engine(url)
    truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.open_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A SQLite engine alone, for tests that are about something other than the database."""
    path = tmp_path / "reporter.db"
    shutil.copy(sqlite_template, path)
    engine = db.open_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """A folder for screenshots and other files a person may want to look at after a run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def missing(what: str) -> NoReturn:
    """Skip a test whose tool is not installed, but fail it on CI (CI=true), where the
    setup script installs every tool and a skip would hide a broken install."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing on CI (scripts/setup.sh --test installs it)",
                    pytrace=False)
    pytest.skip(f"{what} is missing (scripts/setup.sh --test installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright, one per test module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright")
    executable = shutil.which(CHROMIUM)
    if executable is None:
        missing(f"the browser {CHROMIUM!r}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        db_url: str) -> Callable[..., Result]:
    """``reporter ARGS`` in-process, in an empty folder, against the test database; the
    engines a command opens are disposed of after it (a real process would exit)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPORTER_DATABASE_URL", raising=False)
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


@pytest.fixture(scope="session")
def src_url() -> Iterator[str]:
    """A PostgreSQL database holding a source's tables (LiteLLM's, Kilo's, a warehouse's)."""
    from tests.source_support import source_database

    yield from source_database()


@pytest.fixture
def src(src_url: str) -> Iterator[Engine]:
    """The source database with fresh, empty tables."""
    from tests.source_support import fresh_tables

    engine = fresh_tables(src_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["weasyprint", "chromium"])
def pdf_options(request: pytest.FixtureRequest) -> Any:
    """Render options printing PDFs with each engine: WeasyPrint (the default) and the
    optional Chromium (skipped where Playwright or the browser is missing, failed on CI)."""
    from reporter.render import Options

    if request.param == "chromium":
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing("playwright")
        if shutil.which(CHROMIUM) is None:
            missing(f"the browser {CHROMIUM!r}")
        request.applymarker(pytest.mark.browser)
    return Options(pdf_engine=request.param)
