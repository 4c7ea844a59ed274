"""Start-up: the command line imports only what a command uses, and opening a database whose
schema is current loads no migration machinery."""

from __future__ import annotations

import json
import subprocess
import sys

from reporter.store import db

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


def test_head_revision_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db._alembic_config())
    assert db.head_revision() == script.get_current_head()


def test_run_states_are_the_ledgers() -> None:
    from reporter.cli import jobs
    from reporter.jobs import ledger

    assert jobs.RUN_STATES == ledger.STATES
