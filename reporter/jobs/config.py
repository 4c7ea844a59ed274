"""jobs.yaml: load, validate as a whole, and report problems as ``file:line: what``.

The keys, their defaults, bounds and help are one table (``reporter.jobs.keys``); the
reader checks each key against it (``reporter.jobs.reader``); this module builds the
settings (``reporter.jobs.settings``) and checks what involves several keys.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from reporter.deliver.smtp import SmtpSettings, is_loopback
from reporter.errors import ConfigError
from reporter.jobs import alertkeys, keys
from reporter.jobs.kinds import BAD, cron_trigger, show
from reporter.jobs.reader import ConfigErrors, Reader
from reporter.jobs.settings import (
    BROKER_ENV,
    DEFAULT_BROKER,
    DEFAULT_SENDER,
    Config,
    EmailSettings,
    ExecutorSettings,
    JobSettings,
    SchedulerSettings,
)
from reporter.store.sources.settings import parse_sources

__all__ = ["BROKER_ENV", "DEFAULT_BROKER", "Config", "ConfigErrors", "check_organizations",
           "cron_trigger", "database_setting", "load", "parse"]


def _given(value: Any) -> bool:
    return value is not None and value is not BAD


class _Builder:
    """Builds the settings of one file from its nodes, section by section."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader
        #: each job's alert kind, condition and webhook, added to its settings once read
        self.extra: dict[str, dict[str, Any]] = {}

    def error(self, node: yaml.Node, where: str, message: str) -> None:
        self.r.error(node, where, message)

    def smtp(self, node: yaml.Node | None, outer: ChainMap[str, Any]) -> Any:
        before = len(self.r.errors)
        read = self.r.section(node, keys.SMTP, "smtp", outer, {})
        if read is None:
            return BAD
        v, nodes = read.own, read.nodes
        password = None
        variable = v["password_env"]
        if _given(variable):
            if variable in self.r.env:
                password = self.r.env[variable]
            else:
                self.error(nodes["password_env"], "smtp",
                           f"environment variable {variable} (password_env) is not set")
        if _given(v["username"]) and variable is None:
            self.error(nodes["username"], "smtp", "username given without password_env")
        if (v["security"] == "none" and _given(v["username"]) and v["allow_plaintext_auth"]
                is False and _given(v["host"]) and not is_loopback(v["host"])):
            self.error(nodes["security"], "smtp",
                       f"security 'none' with username {show(v['username'])} sends the "
                       f"password unencrypted to {show(v['host'])}, which is not loopback; "
                       f"use security starttls or ssl, or set allow_plaintext_auth: true")
        if len(self.r.errors) > before:
            return BAD
        return SmtpSettings(
            host=v["host"], port=v["port"], security=v["security"], sender=v["from"],
            username=v["username"], password=password, timeout_seconds=v["timeout_seconds"],
            retries=v["retries"], retry_backoff_seconds=v["retry_backoff_seconds"],
            ca_file=None if v["ca_file"] is None else str(v["ca_file"]),
            allow_plaintext_auth=v["allow_plaintext_auth"])

    def executor(self, node: yaml.Node | None, outer: ChainMap[str, Any]) -> Any:
        read = self.r.section(node, keys.EXECUTOR, "executor", outer, {})
        return ExecutorSettings(**read.own) if read is not None and read.ok else BAD

    def scheduler(self, node: yaml.Node | None, outer: ChainMap[str, Any]) -> Any:
        read = self.r.section(node, keys.SCHEDULER, "scheduler", outer, {})
        return SchedulerSettings(**read.own) if read is not None and read.ok else BAD

    def sources(self, node: yaml.Node | None, outer: ChainMap[str, Any]) -> Any:
        """The ``sources`` section, read by ``reporter.store.sources.settings``."""
        if node is None:
            return {}
        return parse_sources(node, self.r.path.name, self.r.errors)

    def jobs(self, node: yaml.Node | None, outer: ChainMap[str, Any]) -> dict[str, JobSettings]:
        found = self.r.mapping(node, "jobs", None, "jobs") if node is not None else None
        if not found or not isinstance(node, yaml.MappingNode):
            return {}
        lines = {k.value: k.start_mark.line + 1 for k, _ in node.value
                 if isinstance(k, yaml.ScalarNode)}
        out = {}
        for name, job_node in found.items():
            job = self.job(name, job_node, lines[name], outer)
            if job is not None:
                out[name] = replace(job, **self.extra.pop(name, {}))
        return out

    def job(self, name: str, node: yaml.Node, line: int,
            outer: ChainMap[str, Any]) -> JobSettings | None:
        where = f"job {show(name)}"
        before = len(self.r.errors)
        read = self.r.section(node, keys.JOB, where, outer, {
            "deliver": lambda child, values: self.deliver(child, values, where)}, "a job")
        if read is None or len(self.r.errors) > before:
            return None
        v = read.own
        extra = alertkeys.job_fields(self.r, v, read.nodes, node, where)
        if extra is BAD:
            return None
        self.extra[name] = extra
        audience, addresses = ((v["audience"], ()) if isinstance(v["audience"], str)
                               else ("list", v["audience"]))
        store, email = v["deliver"]
        return JobSettings(
            name=name, period=v["period"], formats=v["formats"], schedule=v["schedule"],
            timezone=v["timezone"],
            organizations=None if v["organizations"] == "all" else v["organizations"],
            audience=audience, addresses=addresses, skip_empty=v["skip_empty"], store=store,
            email=email, enabled=v["enabled"], sync=v["sync"], line=line)

    def deliver(self, node: yaml.Node | None, outer: ChainMap[str, Any], where: str) -> Any:
        read = self.r.section(node, keys.DELIVER, where, outer, {
            "email": lambda child, values: self.email(child, values, where),
            "webhook": lambda child, values: alertkeys.webhook(self.r, child, values, where)},
            "deliver")
        if read is None:
            return BAD
        store, email = read.own["store"], read.own["email"]
        outer.maps[0]["webhook"] = read.own["webhook"]
        if node is not None and store is False and email is None and not read.own["webhook"]:
            self.error(node, where, "delivers nothing: set 'store: true', 'email' or 'webhook'")
        return store, email

    def email(self, node: yaml.Node | None, outer: ChainMap[str, Any], where: str) -> Any:
        if isinstance(node, yaml.ScalarNode):
            raw = self.r.value(node, where, "email")
            if raw is False:
                return None
            if raw is True or raw is None:
                node = None  # every default
            elif raw is BAD:
                return BAD
        read = self.r.section(node, keys.EMAIL, where, outer, {}, "email")
        if read is None:
            return BAD
        v = read.own
        formats = outer["formats"]
        if _given(v["attach"]) and _given(formats):
            for name in v["attach"]:
                if name not in formats:
                    self.error(read.nodes["attach"], where, f"attach {name!r} is not among "
                                                            f"the job's formats "
                                                            f"({', '.join(formats)})")
        return EmailSettings(v["subject"], v["attach"], v["max_attachment_bytes"])


def parse(text: str, path: Path, env: Mapping[str, str] | None = None) -> Config:
    """The Config in ``text`` (read from ``path``); ConfigErrors lists every problem.

    ``env`` (default: ``os.environ``) is the only environment consulted: the SMTP
    password and every default that comes from a variable.
    """
    env = os.environ if env is None else env
    reader = Reader(path, env)
    root = reader.compose(text)
    if root is None:
        raise ConfigErrors([f"{path.name}:1: the file is empty (it needs 'jobs')"])
    build = _Builder(reader)
    read = reader.section(root, keys.TOP, "", ChainMap(), {
        "smtp": build.smtp, "executor": build.executor, "scheduler": build.scheduler,
        "sources": build.sources, "jobs": build.jobs,
        "budgets": lambda node, outer: alertkeys.budgets(reader, node)}, "the file")
    reader.raise_errors()
    assert read is not None  # a file that is not a mapping is an error above
    v = read.own
    lonely = [f"{path.name}:{job.line}: job {show(job.name)}: 'sync: true' but no sources "
              f"are configured (add a 'sources' section)"
              for job in v["jobs"].values() if job.sync and not v["sources"]]
    if lonely:
        raise ConfigErrors(lonely)
    smtp: SmtpSettings | None = v["smtp"]
    return Config(path=path, output=v["output"], jobs=v["jobs"], database=v["database"],
                  smtp=smtp, templates=v["templates"], executor=v["executor"],
                  scheduler=v["scheduler"],
                  email_from=smtp.sender if smtp else DEFAULT_SENDER,
                  sources=v["sources"] or {}, budgets=v["budgets"] or {})


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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    reader = Reader(path, {})
    try:
        root = reader.compose(text)
    except ConfigErrors:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "database":
            value = reader.value(value_node, "", "database")
            return value if isinstance(value, str) else None
    return None


def check_organizations(config: Config, known: set[str]) -> list[str]:
    """Messages for organizations a job names that the database does not hold."""
    out = []
    for job in config.jobs.values():
        for slug in job.organizations or ():
            if slug not in known:
                out.append(f"{config.path.name}:{job.line}: job {job.name!r}: "
                           f"unknown organization {slug!r}")
    return out
