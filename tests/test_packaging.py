"""The built wheel carries its templates and migrations and works outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
from datetime import UTC, datetime
from pathlib import Path
import reporter
from reporter import render
from reporter.report import aggregate
from reporter.store import db
from reporter.store import orgs as store
from reporter.render.templating import shipped_templates
assert Path(reporter.__file__).is_relative_to(Path(sys.argv[1])), reporter.__file__
assert shipped_templates().is_relative_to(Path(sys.argv[1])), shipped_templates()
engine = db.open_engine("sqlite:///" + sys.argv[2])
store.set_org(engine, "acme", timezone="Europe/Berlin")
now = datetime(2026, 11, 25, tzinfo=UTC)
report = aggregate.build(engine, "acme", aggregate.resolve_period(engine, "acme", "past-week", now))
paths = render.write(report, ["html", "json"], Path(sys.argv[3]))
print(" ".join(p.name for p in paths))
"""


@pytest.mark.slow
def test_wheel_works_outside_the_checkout(tmp_path: Path) -> None:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "dist").glob("reporter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "reporter/templates/report.html.j2" in names
    assert any(n.startswith("reporter/templates/email") for n in names)
    assert "reporter/store/migrations/versions/0001_usage_store.py" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", CHECK, str(site), str(work / "r.db"),
                          str(work / "out")], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["acme_2026-11-19_2026-11-25.html",
                                  "acme_2026-11-19_2026-11-25.json"]
