"""jobs.yaml: defaults, every kind of mistake with its file and line, secrets kept out."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from reporter.cli import main
from reporter.jobs import config
from reporter.jobs.config import ConfigErrors
from reporter.store import db

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
output: reports
jobs:
  weekly-admin:
    schedule: "0 7 * * mon"
    timezone: Europe/Berlin
    period: previous-week
    audience: admins
    formats: [html, pdf, xlsx]
    deliver:
      store: true
      email:
        subject: "{{ organization.name }} AI usage, {{ period.label }}"
        attach: [pdf, xlsx]
"""


def parse(text: str, env: dict[str, str] | None = None) -> config.Config:
    return config.parse(textwrap.dedent(text), Path("/etc/reporter/jobs.yaml"), env or {})


def errors(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        parse(text, env)
    return caught.value.messages


def test_good_file_and_defaults() -> None:
    cfg = parse(GOOD)
    job = cfg.job("weekly-admin")
    assert job.formats == ("html", "pdf", "xlsx")
    assert job.email is not None
    assert job.email.attach == ("pdf", "xlsx")
    assert job.email.max_attachment_bytes == 10 * 1024 * 1024
    assert job.enabled is True
    assert job.organizations is None
    assert job.line == 3
    assert cfg.output == Path("/etc/reporter/reports")
    assert cfg.smtp is None
    assert cfg.executor.kind == "local"
    assert cfg.executor.workers == (os.cpu_count() or 1)
    assert cfg.executor.max_reports_per_worker == 50
    assert cfg.scheduler.misfire_grace_seconds == 21600
    assert cfg.scheduler.lease_seconds == 30
    assert cfg.scheduler.unit_timeout_seconds == 1800


def test_broker_url_default_from_environment() -> None:
    cfg = parse(GOOD + "executor: {kind: celery, workers: 4}\n",
                env={"REPORTER_BROKER_URL": "redis://queue:6379/2"})
    assert (cfg.executor.kind, cfg.executor.workers) == ("celery", 4)
    assert cfg.executor.broker_url == "redis://queue:6379/2"
    assert parse(GOOD).executor.broker_url == "redis://127.0.0.1:6379/0"


def test_unknown_key_names_file_line_job_and_key() -> None:
    text = GOOD.replace('    schedule: "0 7 * * mon"\n', '    scheduel: "0 7 * * mon"\n')
    [message] = errors(text)
    assert message.startswith("jobs.yaml:4: job 'weekly-admin': unknown key 'scheduel'")


def test_every_problem_is_reported_with_its_line() -> None:
    text = """\
    output: out
    colour: blue
    jobs:
      a:
        schedule: "61 7 * * mon"
        timezone: Mars/Olympus
        period: last-fortnight
        formats: [html, docx]
        audience: everyone
      b:
        period: previous-month
        formats: [json]
        deliver:
          email:
            attach: [pdf]
            subject: "{{ organisation.name }}"
    """
    found = errors(text)
    assert "jobs.yaml:2: unknown key 'colour'" in found[0]
    joined = "\n".join(found)
    assert "jobs.yaml:5: job 'a': invalid cron expression '61 7 * * mon'" in joined
    assert "jobs.yaml:6: job 'a': unknown timezone 'Mars/Olympus'" in joined
    assert "jobs.yaml:7: job 'a': unknown period 'last-fortnight'" in joined
    assert "jobs.yaml:8: job 'a': unknown format 'docx'" in joined
    assert "jobs.yaml:9: job 'a': audience must be 'admins', 'members' or a list" in joined
    assert "jobs.yaml:15: job 'b': attach 'pdf' is not among the job's formats (json)" in joined
    assert "jobs.yaml:16: job 'b': subject template: 'organisation' is undefined" in joined


def test_smtp_password_comes_from_the_environment_only() -> None:
    text = GOOD + textwrap.dedent("""\
    smtp:
      host: smtp.example.com
      username: reports@example.com
      password_env: REPORTER_SMTP_PASSWORD
      from: "Usage Reports <reports@example.com>"
    """)
    [message] = errors(text)
    assert message == ("jobs.yaml:17: smtp: environment variable REPORTER_SMTP_PASSWORD "
                       "(password_env) is not set")
    cfg = parse(text, env={"REPORTER_SMTP_PASSWORD": "s3cret-value"})
    assert cfg.smtp is not None
    assert cfg.smtp.password == "s3cret-value"
    assert (cfg.smtp.port, cfg.smtp.security) == (587, "starttls")
    assert "s3cret-value" not in repr(cfg)


def test_yaml_syntax_error_has_a_line() -> None:
    [message] = errors("jobs:\n  a: [unclosed\n")
    assert message.startswith("jobs.yaml:3: not valid YAML")


def test_audience_list_and_organizations() -> None:
    cfg = parse("""\
    jobs:
      finance:
        period: previous-month
        organizations: [acme, globex]
        audience: [finance@acme.com, cfo@acme.com]
        formats: [xlsx]
        enabled: false
    """)
    job = cfg.job("finance")
    assert job.audience == "list"
    assert job.addresses == ("finance@acme.com", "cfo@acme.com")
    assert job.organizations == ("acme", "globex")
    assert job.enabled is False
    assert config.check_organizations(cfg, {"acme"}) == [
        "jobs.yaml:2: job 'finance': unknown organization 'globex'"]


def test_header_injection_in_audience_is_rejected() -> None:
    found = errors("""\
    jobs:
      x:
        period: previous-week
        audience: ["a@b.com\\nBcc: evil@x.com"]
    """)
    assert "is not an email address" in found[0]


def test_shipped_jobs_file_is_valid() -> None:
    cfg = config.load(ROOT / "jobs.yaml", env={})
    assert "weekly-admin" in cfg.jobs
    assert cfg.smtp is None


def test_database_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPORTER_DATABASE_URL", raising=False)
    (tmp_path / "jobs.yaml").write_text(GOOD + "database: sqlite:///from-file.db\n")
    cfg = config.load(tmp_path / "jobs.yaml", env={})
    assert db.resolve_url(None, cfg.database) == "sqlite:///from-file.db"
    assert db.resolve_url("sqlite:///flag.db", cfg.database) == "sqlite:///flag.db"
    monkeypatch.setenv("REPORTER_DATABASE_URL", "sqlite:///env.db")
    assert db.resolve_url(None, cfg.database) == "sqlite:///env.db"
    monkeypatch.delenv("REPORTER_DATABASE_URL")
    assert db.resolve_url(None, None) == "sqlite:///reporter.db"


def test_validate_command(tmp_path: Path) -> None:
    bad = tmp_path / "jobs.yaml"
    bad.write_text(GOOD.replace("period: previous-week", "period: fortnight")
                   .replace("schedule:", "shedule:"))
    result = CliRunner().invoke(main, ["validate", "--config", str(bad),
                                       "--db", f"sqlite:///{tmp_path}/r.db"])
    assert result.exit_code == 1
    assert "jobs.yaml:4: job 'weekly-admin': unknown key 'shedule'" in result.output
    assert "jobs.yaml:6: job 'weekly-admin': unknown period 'fortnight'" in result.output
    bad.write_text(GOOD)
    result = CliRunner().invoke(main, ["validate", "--config", str(bad),
                                       "--db", f"sqlite:///{tmp_path}/r.db"])
    assert result.exit_code == 0, result.output
    assert "ok (1 jobs)" in result.output


def test_jobs_command_lists_next_runs(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(GOOD)
    result = CliRunner().invoke(main, ["jobs", "--config", str(tmp_path / "jobs.yaml"),
                                       "--db", f"sqlite:///{tmp_path}/r.db"])
    assert result.exit_code == 0, result.output
    [nexts] = [line for line in result.output.splitlines() if line.strip().startswith("next:")]
    times = nexts.split(": ", 1)[1].split(", ")
    assert len(times) == 3
    assert all(t.endswith(("07:00:00+01:00", "07:00:00+02:00")) for t in times), times
