"""jobs.yaml: defaults, every kind of mistake with its file and line, secrets kept out."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from reporter import config
from reporter.cli import main
from reporter.config import ConfigErrors, keys
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
    # an unset variable is noted, not an error: only the jobs that send email need it
    assert parse(text).unset == ("jobs.yaml:17: smtp: environment variable "
                                 "REPORTER_SMTP_PASSWORD (password_env) is not set",)
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


def new_database(folder: Path) -> str:
    url = f"sqlite:///{folder}/r.db"
    db.open_engine(url).dispose()
    return url


def test_validate_command(tmp_path: Path) -> None:
    url = new_database(tmp_path)
    bad = tmp_path / "jobs.yaml"
    bad.write_text(GOOD.replace("period: previous-week", "period: fortnight")
                   .replace("schedule:", "shedule:"))
    result = CliRunner().invoke(main, ["validate", "--config", str(bad), "--db", url])
    assert result.exit_code == 1
    assert "jobs.yaml:4: job 'weekly-admin': unknown key 'shedule'" in result.output
    assert "jobs.yaml:6: job 'weekly-admin': unknown period 'fortnight'" in result.output
    bad.write_text(GOOD)
    result = CliRunner().invoke(main, ["validate", "--config", str(bad), "--db", url])
    assert result.exit_code == 0, result.output
    assert "ok (1 jobs)" in result.output


def test_jobs_command_lists_next_runs(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(GOOD)
    result = CliRunner().invoke(main, ["jobs", "--config", str(tmp_path / "jobs.yaml"),
                                       "--db", new_database(tmp_path)])
    assert result.exit_code == 0, result.output
    [nexts] = [line for line in result.output.splitlines() if line.strip().startswith("next:")]
    times = nexts.split(": ", 1)[1].split(", ")
    assert len(times) == 3
    assert all(t.endswith(("07:00:00+01:00", "07:00:00+02:00")) for t in times), times


def test_defaults_come_from_the_env_given_to_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTER_BROKER_URL", "redis://from-the-shell:6379/9")
    assert parse(GOOD, env={}).executor.broker_url == "redis://127.0.0.1:6379/0"
    given = {"REPORTER_BROKER_URL": "redis://given:6379/3"}
    assert parse(GOOD, env=given).executor.broker_url == "redis://given:6379/3"
    in_file = GOOD + "executor: {broker_url: 'redis://file:6379/1'}\n"
    assert parse(in_file, env={}).executor.broker_url == "redis://file:6379/1"
    assert parse(in_file, env=given).executor.broker_url == "redis://given:6379/3"  # as documented


LAUGHS = "l0: &l0 [a, a, a, a, a, a, a, a, a]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))

#: documents that once ended in a traceback (or worse) instead of ``file:line: problem``
HOSTILE = [
    '!!python/object/apply:os.system ["echo pwned"]\n',
    "jobs: !!python/object/apply:os.system ['echo pwned']\n",
    "colour: !!python/object/apply:os.system ['echo pwned']\njobs: {}\n",
    GOOD + "    enabled: !!python/name:os.system\n",
    "output: !!binary '@@@ not base64 @@@'\njobs: {}\n",
    "output: !!int 'x'\njobs: {}\n",
    "scheduler: {lease_seconds: !!int 'x'}\njobs: {}\n",
    "scheduler: {lease_seconds: !!float 'x'}\njobs: {}\n",
    GOOD + "    skip_empty: !!bool 'maybe'\n",
    "output: !!timestamp 'yesterday'\njobs: {}\n",
    "output: !!str [a, b]\njobs: {}\n",
    "output: !!map [a, b]\njobs: {}\n",
    "jobs: !!seq {a: b}\n",
    "jobs: !!set {a: b}\n",
    "jobs: !!omap 3\n",
    "output: !custom thing\njobs: {}\n",
    "!!binary 'YQ==': 1\njobs: {}\n",
    "? [a, b]\n: c\njobs: {}\n",
    LAUGHS + "scheduler: {lease_seconds: *l9}\njobs: {}\n",
    LAUGHS + "jobs: {a: {period: *l9, formats: *l9, organizations: *l9}}\n",
    "jobs: &a {x: *a}\n",
    "jobs:\n  a:\n    period: previous-week\n    formats: &f [html, *f]\n",
    "output: " + "[" * 5000 + "]" * 5000 + "\njobs: {}\n",
    "output: " + "[" * 200 + "]" * 200 + "\njobs: {}\n",
    "jobs: \x07\n",
    "jobs: {}\n---\njobs: {}\n",
    "- a\n- b\n",
    "just text\n",
    "jobs: null\n",
    "jobs: {a: null}\n",
    "jobs: {a: [1]}\n",
    "output: \"a\\0b\"\njobs: {}\n",
    "templates: \"x\\0\"\njobs: {}\n",
    "scheduler: {unit_timeout_seconds: 99999999999999999}\njobs: {}\n",
    "scheduler: {misfire_grace_seconds: 1e400, lease_seconds: " + "9" * 5000 + "}\njobs: {}\n",
    "smtp: {host: h, from: f, port: 1000000000000000000000}\njobs: {}\n",
    "smtp: {host: h, from: f, timeout_seconds: .inf}\njobs: {}\n",
    "smtp: {host: h, from: f, timeout_seconds: .nan}\njobs: {}\n",
    "smtp: {host: h, from: f, retries: 100000000, retry_backoff_seconds: 1e300}\njobs: {}\n",
    "executor: {workers: 1000000000000, max_reports_per_worker: 99999999999999999999}\n"
    "jobs: {}\n",
    GOOD.replace('attach: [pdf, xlsx]', 'attach: [pdf]\n        max_attachment_bytes: 1e999'),
    GOOD.replace("{{ organization.name }}", "{{ 10.0 ** 1000 }}"),
    GOOD.replace("{{ organization.name }}", "{{ 9 ** 9999 }}"),
    GOOD.replace("{{ organization.name }}", "{{ 1 / 0 }}"),
    GOOD.replace("{{ organization.name }}", '{{ \\"{:d}\\".format(\\"x\\") }}'),
    GOOD.replace("{{ organization.name }}", "{{ period.first.replace(year=0) }}"),
    GOOD.replace("{{ organization.name }}", "{% for x in range(10 ** 12) %}{% endfor %}"),
    GOOD.replace("{{ organization.name }}", "{{ job.__class__.__mro__ }}"),
    GOOD.replace("Europe/Berlin", '"Europe/Berlin\\0"'),
    GOOD.replace('"0 7 * * mon"', '"' + "1," * 50_000 + '99 * * * *"'),
    GOOD + "    " + "k" * 100_000 + ": 1\n",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_documents_are_config_errors_with_a_line(text: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        config.parse(text, Path("/etc/reporter/jobs.yaml"), {})
    for message in caught.value.messages:
        assert re.match(r"jobs\.yaml:\d+: \S", message), message
        assert "\n" not in message
        assert len(message) < 400, message[:400]


@pytest.mark.parametrize(("key", "value"), [
    ("unit_timeout_seconds", 99999999999999999), ("unit_timeout_seconds", 30 * 86400 + 1),
    ("misfire_grace_seconds", 10**30), ("lease_seconds", 10**12)])
def test_huge_numbers_are_refused_with_the_allowed_range(key: str, value: int) -> None:
    [message] = errors(GOOD + f"scheduler:\n  {key}: {value}\n")
    assert message.startswith(f"jobs.yaml:15: scheduler: '{key}' must be an integer from ")


def test_a_subject_that_fails_when_rendered_names_the_subject() -> None:
    [message] = errors(GOOD.replace("{{ organization.name }}", "{{ 1 // 0 }}"))
    assert message.startswith("jobs.yaml:12: job 'weekly-admin': subject template: "
                              "ZeroDivisionError")


SMTP_PLAIN = """\
smtp:
  host: {host}
  security: none
  username: reports@example.com
  password_env: SMTP_PW
  from: reports@example.com
"""


def test_plaintext_auth_to_a_remote_host_is_refused() -> None:
    text = GOOD + SMTP_PLAIN.format(host="smtp.example.com")
    [message] = errors(text, env={"SMTP_PW": "pw"})
    assert message.startswith("jobs.yaml:16: smtp: security 'none' with username "
                              "'reports@example.com' sends the password unencrypted")
    assert "allow_plaintext_auth" in message
    cfg = parse(text + "  allow_plaintext_auth: true\n", env={"SMTP_PW": "pw"})
    assert cfg.smtp is not None
    assert cfg.smtp.allow_plaintext_auth is True
    for host in ("127.0.0.1", "127.3.2.1", "::1", "localhost", "LocalHost"):
        smtp = parse(GOOD + SMTP_PLAIN.format(host=f"'{host}'"), env={"SMTP_PW": "pw"}).smtp
        assert smtp is not None
        assert (smtp.host, smtp.allow_plaintext_auth) == (host, False)


def test_smtp_ca_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    body = GOOD + "smtp: {host: smtp.example.com, from: r@example.com, ca_file: certs/ca.pem}\n"
    (tmp_path / "jobs.yaml").write_text(body)
    with pytest.raises(ConfigErrors) as caught:
        config.load(tmp_path / "jobs.yaml", env={})
    assert caught.value.messages == [
        f"jobs.yaml:14: smtp: 'ca_file' {str(tmp_path / 'certs/ca.pem')!r} is not a file"]
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs/ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    smtp = config.load(tmp_path / "jobs.yaml", env={}).smtp
    assert smtp is not None
    assert smtp.ca_file == str(tmp_path / "certs/ca.pem")


def test_audience_addresses_follow_the_one_rule() -> None:
    found = errors("""\
    jobs:
      x:
        period: previous-week
        audience:
          - Finance@Example.COM
          - not an address
          - "a@b.com, c@d.com"
          - "Finance <finance@example.com>"
    """)
    assert [m.split(": ", 2)[0] for m in found] == ["jobs.yaml:6", "jobs.yaml:7", "jobs.yaml:8"]
    assert all("is not an email address" in m for m in found)
    cfg = parse("""\
    jobs:
      x:
        period: previous-week
        audience: [Finance@Example.COM, " cfo@acme.com ", finance@example.com]
    """)
    assert cfg.job("x").addresses == ("finance@example.com", "cfo@acme.com")


DOC = ROOT / "docs" / "CONFIGURATION.md"


def test_the_documented_key_reference_is_generated_from_the_table(tmp_path: Path) -> None:
    assert keys.reference() in DOC.read_text(encoding="utf-8"), (
        "regenerate it: .venv/bin/python -m reporter.config --write docs/CONFIGURATION.md")
    stale = tmp_path / "doc.md"
    stale.write_text(f"# x\n\n{keys.BEGIN}\nold\n{keys.END}\n\nafter\n", encoding="utf-8")
    assert keys.write(stale) is True
    assert stale.read_text(encoding="utf-8") == f"# x\n\n{keys.reference()}\n\nafter\n"
    assert keys.write(stale) is False


def test_the_documented_example_is_valid_and_shows_every_key(tmp_path: Path) -> None:
    example = DOC.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    for section in keys.SECTIONS:
        for key in section.keys:
            assert re.search(rf"^ *{key.name}:", example, re.MULTILINE), key.name
    (tmp_path / "jobs.yaml").write_text(example, encoding="utf-8")
    (tmp_path / "my-templates").mkdir()
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "private-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = config.load(tmp_path / "jobs.yaml", env={"REPORTER_SMTP_PASSWORD": "pw",
                                                  "REPORTS_WEBHOOK_URL": "https://hooks.example.com/x"})
    assert cfg.smtp is not None
    assert cfg.smtp.ca_file == str(tmp_path / "certs" / "private-ca.pem")
    assert cfg.job("weekly-admin").email is not None


def test_defaults_are_the_tables() -> None:
    cfg = parse(GOOD, env={})
    for section, settings in ((keys.SCHEDULER, cfg.scheduler), (keys.EXECUTOR, cfg.executor)):
        for key in section.keys:
            expected = key.default_for({}, {})
            assert getattr(settings, key.name) == expected, key.name
    job = cfg.job("weekly-admin")
    assert (job.skip_empty, job.enabled, job.keep_files) == (False, True, True)
    smtp = parse(GOOD + "smtp: {host: h, from: f@example.com, security: ssl}\n").smtp
    assert smtp is not None
    assert (smtp.port, smtp.timeout_seconds, smtp.retries) == (465, 30.0, 3)
