"""Start-up: the command line imports only what a command uses, and opening a database whose
schema is current loads no migration machinery."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from reporter.store import db, orgs

#: what ``import reporter.cli`` must not load: each is for some commands or formats only
#: (``reporter --help`` needs none of them)
HEAVY = ("celery", "weasyprint", "openpyxl", "PIL", "alembic", "apscheduler", "css_inline",
         "sqlalchemy", "jinja2", "email_validator")


def _loaded(code: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    """The modules of ``names`` that a fresh interpreter holds after running ``code``."""
    check = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in {names!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", check], check=True, capture_output=True,
                          text=True)
    loaded: list[str] = json.loads(proc.stdout.splitlines()[-1])
    return loaded


def test_cli_import_loads_no_heavy_library() -> None:
    assert _loaded("import reporter.cli") == []


def test_opening_a_current_database_loads_no_alembic(sqlite_template: object) -> None:
    code = ("from reporter.store import db\n"
            f"db.open_engine('sqlite:///{sqlite_template}').dispose()")
    assert _loaded(code, ("alembic",)) == []


def test_a_json_report_on_sqlite_loads_no_orm_nor_postgresql(sqlite_template: Path,
                                                             tmp_path: Path) -> None:
    """``generate --format json``: the store's tables are Core tables, and a report on SQLite
    loads neither SQLAlchemy's ORM, the PostgreSQL dialect nor any format's library."""
    path = tmp_path / "week.db"
    shutil.copy(sqlite_template, path)
    engine = db.open_engine(f"sqlite:///{path}")
    orgs.set_org(engine, "acme")
    engine.dispose()
    args = ["generate", "--db", f"sqlite:///{path}", "--org", "acme", "--from", "2026-11-02",
            "--to", "2026-11-08", "--format", "json", "--out", str(tmp_path)]
    code = ("from reporter.cli import main\n"
            f"main({args!r}, standalone_mode=False)")
    assert _loaded(code, ("sqlalchemy.orm", "sqlalchemy.dialects.postgresql",
                          "weasyprint", "openpyxl", "jinja2", "alembic", "celery")) == []
    assert (tmp_path / "acme_2026-11-02_2026-11-08.json").exists()


def test_head_revision_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db._alembic_config())
    assert db.head_revision() == script.get_current_head()


def test_run_states_are_the_ledgers() -> None:
    from reporter.cli import jobs
    from reporter.jobs import ledger

    assert jobs.RUN_STATES == ledger.STATES
