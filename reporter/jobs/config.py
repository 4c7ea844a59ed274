"""jobs.yaml: load, validate as a whole, and report problems as ``file:line: what``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError, TemplateSyntaxError

from reporter import periods, render
from reporter.deliver.smtp import SmtpSettings
from reporter.deliver.subject import render_subject, sample_context
from reporter.errors import ConfigError

AUDIENCES = ("admins", "members")
SECURITY = ("starttls", "ssl", "none")
EXECUTORS = ("local", "celery")
DEFAULT_SUBJECT = "{{ organization.name }} AI usage, {{ period.label }}"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_ENV = "REPORTER_BROKER_URL"
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class ConfigErrors(ConfigError):
    """Every problem found in a config file; ``str()`` is the first one and a count."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        more = len(messages) - 1
        suffix = f" (and {more} more; see 'reporter validate')" if more else ""
        super().__init__(messages[0] + suffix)


@dataclass(frozen=True)
class EmailDelivery:
    subject: str = DEFAULT_SUBJECT
    attach: tuple[str, ...] = ()
    max_attachment_bytes: int = MAX_ATTACHMENT_BYTES


@dataclass(frozen=True)
class Job:
    name: str
    period: str
    formats: tuple[str, ...]
    schedule: str | None = None
    timezone: str | None = None
    organizations: tuple[str, ...] | None = None  # None: all organizations
    audience: str = "admins"  # "admins", "members" or "list"
    addresses: tuple[str, ...] = ()
    skip_empty: bool = False
    store: bool = True
    email: EmailDelivery | None = None
    enabled: bool = True
    line: int = 0


@dataclass(frozen=True)
class Executor:
    kind: str = "local"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_reports_per_worker: int = 50
    broker_url: str = field(default_factory=lambda: os.environ.get(BROKER_ENV, DEFAULT_BROKER))


@dataclass(frozen=True)
class Scheduler:
    misfire_grace_seconds: int = 21_600
    lease_seconds: int = 30
    unit_timeout_seconds: int = 1_800


@dataclass(frozen=True)
class Config:
    path: Path
    output: Path
    jobs: dict[str, Job]
    database: str | None = None
    smtp: SmtpSettings | None = None
    templates: Path | None = None
    executor: Executor = field(default_factory=Executor)
    scheduler: Scheduler = field(default_factory=Scheduler)
    email_from: str = "Usage Reports <reports@localhost>"

    def job(self, name: str) -> Job:
        if name not in self.jobs:
            known = ", ".join(self.jobs) or "none"
            raise ConfigError(f"{self.path.name}: unknown job {name!r} (jobs: {known})")
        return self.jobs[name]


class _Checker:
    """Walks YAML nodes, collecting ``file:line: where: what`` messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []

    def error(self, node: yaml.Node, where: str, message: str) -> None:
        prefix = f"{where}: " if where else ""
        self.errors.append(f"{self.path.name}:{node.start_mark.line + 1}: {prefix}{message}")

    def mapping(self, node: yaml.Node, where: str, known: tuple[str, ...],
                what: str = "") -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, where, f"{what or 'this'} must be a mapping of keys to values")
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.error(key_node, where, "keys must be plain names")
            elif key in out:
                self.error(key_node, where, f"duplicate key {key!r}")
            elif known and key not in known:
                self.error(key_node, where, f"unknown key {key!r} (known: {', '.join(known)})")
            else:
                out[key] = value_node
        return out

    def value(self, node: yaml.Node) -> Any:
        return yaml.constructor.SafeConstructor().construct_document(node)

    def string(self, node: yaml.Node | None, where: str, key: str) -> str | None:
        if node is None:
            return None
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            self.error(node, where, f"{key!r} must be a non-empty string")
            return None
        return value

    def integer(self, node: yaml.Node | None, where: str, key: str, default: int,
                minimum: int = 1) -> int:
        if node is None:
            return default
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(node, where, f"{key!r} must be an integer >= {minimum}, not {value!r}")
            return default
        return value

    def number(self, node: yaml.Node | None, where: str, key: str, default: float) -> float:
        if node is None:
            return default
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.error(node, where, f"{key!r} must be a number >= 0, not {value!r}")
            return default
        return float(value)

    def boolean(self, node: yaml.Node | None, where: str, key: str, default: bool) -> bool:
        if node is None:
            return default
        value = self.value(node)
        if not isinstance(value, bool):
            self.error(node, where, f"{key!r} must be true or false, not {value!r}")
            return default
        return value

    def strings(self, node: yaml.Node, where: str, key: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, where, f"{key!r} must be a list")
            return []
        out = []
        for item in node.value:
            text = self.string(item, where, key + " item")
            if text is not None:
                out.append((text, item))
        return out


def cron_trigger(expression: str, timezone: str | None = None) -> Any:
    """APScheduler's CronTrigger for a five-field crontab line (ConfigError when invalid)."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression, timezone=timezone or "UTC")
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid cron expression {expression!r}: {exc}") from None


def _formats(c: _Checker, node: yaml.Node | None, where: str, key: str,
             default: tuple[str, ...], allow_empty: bool = False) -> tuple[str, ...]:
    if node is None:
        return default
    if allow_empty and isinstance(node, yaml.SequenceNode) and not node.value:
        return ()
    out: list[str] = []
    for name, item in c.strings(node, where, key):
        if name not in render.FORMATS:
            c.error(item, where, f"unknown format {name!r} in {key!r} "
                                 f"(one of: {', '.join(render.FORMATS)})")
        elif name not in out:
            out.append(name)
    if not out and isinstance(node, yaml.SequenceNode) and not node.value:
        c.error(node, where, f"{key!r} is empty")
    return tuple(out)


def _email(c: _Checker, node: yaml.Node, where: str, formats: tuple[str, ...]) -> EmailDelivery:
    value = c.value(node)
    if value is True or value is None:
        return EmailDelivery(attach=formats)
    keys = c.mapping(node, where, ("subject", "attach", "max_attachment_bytes"), "email")
    if keys is None:
        return EmailDelivery()
    subject = c.string(keys.get("subject"), where, "subject") or DEFAULT_SUBJECT
    if "subject" in keys:
        try:
            render_subject(subject, sample_context())
        except TemplateSyntaxError as exc:
            c.error(keys["subject"], where, f"subject is not a valid template: {exc.message}")
        except TemplateError as exc:
            c.error(keys["subject"], where, f"subject template: {exc.message}")
    attach = _formats(c, keys.get("attach"), where, "attach", formats, allow_empty=True)
    for name in attach:
        if name not in formats:
            c.error(keys["attach"], where, f"attach {name!r} is not among the job's formats "
                                           f"({', '.join(formats)})")
    limit = c.integer(keys.get("max_attachment_bytes"), where, "max_attachment_bytes",
                      MAX_ATTACHMENT_BYTES, minimum=0)
    return EmailDelivery(subject, attach, limit)


JOB_KEYS = ("schedule", "timezone", "period", "organizations", "audience", "formats",
            "skip_empty", "deliver", "enabled")


def _job(c: _Checker, name: str, node: yaml.Node, line: int) -> Job | None:
    where = f"job {name!r}"
    keys = c.mapping(node, where, JOB_KEYS, "a job")
    if keys is None:
        return None
    before = len(c.errors)
    schedule = c.string(keys.get("schedule"), where, "schedule")
    timezone = c.string(keys.get("timezone"), where, "timezone")
    if timezone is not None and not periods.is_timezone(timezone):
        c.error(keys["timezone"], where, f"unknown timezone {timezone!r}")
        timezone = None
    if schedule is not None:
        try:
            cron_trigger(schedule, timezone)
        except ConfigError as exc:
            c.error(keys["schedule"], where, str(exc))
    period = c.string(keys.get("period"), where, "period")
    if period is None and "period" not in keys:
        c.error(node, where, "missing key 'period'")
    elif period is not None and period not in periods.NAMES:
        c.error(keys["period"], where, f"unknown period {period!r} "
                                       f"(one of: {', '.join(periods.NAMES)})")
    orgs: tuple[str, ...] | None = None
    if "organizations" in keys and c.value(keys["organizations"]) != "all":
        orgs = tuple(s for s, _ in c.strings(keys["organizations"], where, "organizations"))
    audience, addresses = "admins", tuple[str, ...]()
    if "audience" in keys:
        raw = c.value(keys["audience"])
        if isinstance(raw, str) and raw in AUDIENCES:
            audience = raw
        elif isinstance(raw, list):
            audience = "list"
            found = c.strings(keys["audience"], where, "audience")
            for text, item in found:
                if "@" not in text or any(ch in text for ch in "\r\n,;"):
                    c.error(item, where, f"audience address {text!r} is not an email address")
            addresses = tuple(text.strip() for text, _ in found)
            if not addresses:
                c.error(keys["audience"], where, "audience list is empty")
        else:
            c.error(keys["audience"], where, f"audience must be 'admins', 'members' or a list "
                                             f"of addresses, not {raw!r}")
    formats = _formats(c, keys.get("formats"), where, "formats", ("html", "pdf", "xlsx"))
    skip_empty = c.boolean(keys.get("skip_empty"), where, "skip_empty", False)
    enabled = c.boolean(keys.get("enabled"), where, "enabled", True)
    store, email = True, None
    if "deliver" in keys:
        deliver = c.mapping(keys["deliver"], where, ("store", "email"), "deliver") or {}
        store = c.boolean(deliver.get("store"), where, "store", True)
        if "email" in deliver and c.value(deliver["email"]) is not False:
            email = _email(c, deliver["email"], where, formats)
        if not store and email is None:
            c.error(keys["deliver"], where, "delivers nothing: set 'store: true' or 'email'")
    if len(c.errors) > before:
        return None
    return Job(name, period or "", formats, schedule, timezone, orgs, audience, addresses,
               skip_empty, store, email, enabled, line)


def _smtp(c: _Checker, node: yaml.Node, env: Mapping[str, str]) -> SmtpSettings | None:
    where = "smtp"
    keys = c.mapping(node, where, ("host", "port", "security", "username", "password_env",
                                   "from", "timeout_seconds", "retries",
                                   "retry_backoff_seconds"))
    if keys is None:
        return None
    before = len(c.errors)
    host = c.string(keys.get("host"), where, "host")
    if host is None and "host" not in keys:
        c.error(node, where, "missing key 'host'")
    security = c.string(keys.get("security"), where, "security") or "starttls"
    if security not in SECURITY:
        c.error(keys["security"], where, f"security must be one of {', '.join(SECURITY)}")
    default_port = {"starttls": 587, "ssl": 465}.get(security, 25)
    port = c.integer(keys.get("port"), where, "port", default_port)
    sender = c.string(keys.get("from"), where, "from")
    if sender is None and "from" not in keys:
        c.error(node, where, "missing key 'from'")
    username = c.string(keys.get("username"), where, "username")
    password = None
    variable = c.string(keys.get("password_env"), where, "password_env")
    if variable is not None:
        if variable not in env:
            c.error(keys["password_env"], where,
                    f"environment variable {variable} (password_env) is not set")
        else:
            password = env[variable]
    if username is not None and variable is None:
        c.error(keys["username"], where, "username given without password_env")
    timeout = c.number(keys.get("timeout_seconds"), where, "timeout_seconds", 30.0)
    retries = c.integer(keys.get("retries"), where, "retries", 3, minimum=0)
    backoff = c.number(keys.get("retry_backoff_seconds"), where, "retry_backoff_seconds", 2.0)
    if len(c.errors) > before or host is None or sender is None:
        return None
    return SmtpSettings(host, port, security, sender, username, password, timeout, retries, backoff)


def _executor(c: _Checker, node: yaml.Node, env: Mapping[str, str]) -> Executor:
    where = "executor"
    keys = c.mapping(node, where, ("kind", "workers", "max_reports_per_worker", "broker_url"))
    if keys is None:
        return Executor()
    kind = c.string(keys.get("kind"), where, "kind") or "local"
    if kind not in EXECUTORS:
        c.error(keys["kind"], where, f"kind must be one of {', '.join(EXECUTORS)}")
    return Executor(
        kind=kind,
        workers=c.integer(keys.get("workers"), where, "workers", os.cpu_count() or 1),
        max_reports_per_worker=c.integer(keys.get("max_reports_per_worker"), where,
                                         "max_reports_per_worker", 50),
        broker_url=c.string(keys.get("broker_url"), where, "broker_url")
        or env.get(BROKER_ENV, DEFAULT_BROKER),
    )


def _scheduler(c: _Checker, node: yaml.Node) -> Scheduler:
    where = "scheduler"
    keys = c.mapping(node, where, ("misfire_grace_seconds", "lease_seconds",
                                   "unit_timeout_seconds"))
    if keys is None:
        return Scheduler()
    return Scheduler(
        c.integer(keys.get("misfire_grace_seconds"), where, "misfire_grace_seconds", 21_600),
        c.integer(keys.get("lease_seconds"), where, "lease_seconds", 30),
        c.integer(keys.get("unit_timeout_seconds"), where, "unit_timeout_seconds", 1_800),
    )


TOP_KEYS = ("database", "output", "smtp", "jobs", "templates", "executor", "scheduler")


def parse(text: str, path: Path, env: Mapping[str, str] | None = None) -> Config:
    """The Config in ``text`` (read from ``path``); ConfigErrors lists every problem."""
    env = os.environ if env is None else env
    c = _Checker(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigErrors([f"{path.name}{line}: not valid YAML: {exc.problem}"]) from None
    if root is None:
        raise ConfigErrors([f"{path.name}:1: the file is empty (it needs 'jobs')"])
    keys = c.mapping(root, "", TOP_KEYS, "the file")
    if keys is None:
        raise ConfigErrors(c.errors)
    base = path.parent
    database = c.string(keys.get("database"), "", "database")
    output = base / (c.string(keys.get("output"), "", "output") or "output")
    templates_dir = c.string(keys.get("templates"), "", "templates")
    templates = base / templates_dir if templates_dir else None
    if templates is not None and not templates.is_dir():
        c.error(keys["templates"], "", f"templates folder {str(templates)!r} does not exist")
    smtp = _smtp(c, keys["smtp"], env) if "smtp" in keys else None
    executor = _executor(c, keys["executor"], env) if "executor" in keys else Executor()
    scheduler = _scheduler(c, keys["scheduler"]) if "scheduler" in keys else Scheduler()
    jobs: dict[str, Job] = {}
    if "jobs" not in keys:
        c.error(root, "", "missing key 'jobs'")
    else:
        jobs_node = keys["jobs"]
        lines = {k.value: k.start_mark.line + 1 for k, _ in jobs_node.value
                 if isinstance(k, yaml.ScalarNode)} if isinstance(jobs_node,
                                                                  yaml.MappingNode) else {}
        for name, node in (c.mapping(jobs_node, "jobs", (), "jobs") or {}).items():
            job = _job(c, name, node, lines.get(name, node.start_mark.line + 1))
            if job is not None:
                jobs[name] = job
    if c.errors:
        raise ConfigErrors(c.errors)
    sender = smtp.sender if smtp else Config.email_from
    return Config(path, output, jobs, database, smtp, templates, executor, scheduler, sender)


def load(path: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a jobs file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse(text, path, env)


def database_setting(path: Path) -> str | None:
    """The file's ``database`` without validating the rest (for commands that use no job)."""
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return None
    value = data.get("database") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def check_organizations(config: Config, known: set[str]) -> list[str]:
    """Messages for organizations a job names that the database does not hold."""
    out = []
    for job in config.jobs.values():
        for slug in job.organizations or ():
            if slug not in known:
                out.append(f"{config.path.name}:{job.line}: job {job.name!r}: "
                           f"unknown organization {slug!r}")
    return out
