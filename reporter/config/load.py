"""jobs.yaml: read once, validated as a whole, problems reported as ``file:line: what``.

The keys, their defaults, bounds and help are one table (``reporter.config.keys``); the
walker checks each key against it (``reporter.config.walker``); this module turns the file
into typed settings and checks what involves several keys. Nothing else opens the file.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from reporter.config import keys, sections
from reporter.config.settings import (
    DEFAULT_SENDER,
    Config,
    EmailSettings,
    ExecutorSettings,
    JobSettings,
    SchedulerSettings,
)
from reporter.config.values import BAD, show
from reporter.config.walker import ConfigErrors, Walker
from reporter.deliver.smtp import SmtpSettings, is_loopback
from reporter.errors import ConfigError
from reporter.store.sources.common import SourceSettings

#: the file's sections, read unless ``only`` leaves them out
EVERYTHING = frozenset(keys.FILE.names)


def _given(value: Any) -> bool:
    return value is not None and value is not BAD


class _Builder:
    """Builds the settings of one file from its nodes, section by section."""

    def __init__(self, walker: Walker) -> None:
        self.r = walker

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
            password = self.r.env.get(variable)
            if password is None:
                self.r.unset(nodes["password_env"], "smtp", variable, "password_env")
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
            username=v["username"], password_env=variable, password=password,
            timeout_seconds=v["timeout_seconds"], retries=v["retries"],
            retry_backoff_seconds=v["retry_backoff_seconds"],
            ca_file=None if v["ca_file"] is None else str(v["ca_file"]),
            allow_plaintext_auth=v["allow_plaintext_auth"])

    def executor(self, node: yaml.Node | None, outer: ChainMap[str, Any]) -> Any:
        read = self.r.section(node, keys.EXECUTOR, "executor", outer, {})
        return ExecutorSettings(**read.own) if read is not None and read.ok else BAD

    def scheduler(self, node: yaml.Node | None, outer: ChainMap[str, Any]) -> Any:
        read = self.r.section(node, keys.SCHEDULER, "scheduler", outer, {})
        return SchedulerSettings(**read.own) if read is not None and read.ok else BAD

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
                out[name] = job
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
        alert = sections.alert(self.r, read, node, where)
        if alert is BAD:
            return None
        audience, addresses = ((v["audience"], ()) if isinstance(v["audience"], str)
                               else ("list", v["audience"]))
        keep_files, email, webhook = v["deliver"]
        if v["kind"] == "alert" and email is None and webhook is None:
            self.error(read.nodes.get("deliver", node), where,
                       "an alert job sends nothing: set 'email' or 'webhook' under 'deliver' "
                       "(an alert is not stored)")
            return None
        if audience == "members" and webhook is not None:
            self.error(read.nodes.get("audience", node), where,
                       "a job with 'audience: members' cannot post to a webhook: it would "
                       "put each member's personal usage in one shared channel")
            return None
        return JobSettings(
            name=name, kind=v["kind"], period=v["period"] or v["kind"], formats=v["formats"],
            schedule=v["schedule"], timezone=v["timezone"],
            organizations=None if v["organizations"] == "all" else v["organizations"],
            audience=audience, addresses=addresses, skip_empty=v["skip_empty"],
            keep_files=keep_files, email=email, webhook=webhook, enabled=v["enabled"],
            sync=v["sync"], line=line, alert=alert)

    def deliver(self, node: yaml.Node | None, outer: ChainMap[str, Any], where: str) -> Any:
        read = self.r.section(node, keys.DELIVER, where, outer, {
            "email": lambda child, values: self.email(child, values, where),
            "webhook": lambda child, values: sections.webhook(self.r, child, values, where)},
            "deliver")
        if read is None:
            return BAD
        keep_files, email, webhook = (read.own["store"], read.own["email"],
                                      read.own["webhook"])
        if node is not None and keep_files is False and email is None and not webhook:
            self.error(node, where, "delivers nothing: set 'store: true', 'email' or 'webhook'")
        return keep_files, email, webhook

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


def parse(text: str, path: Path, env: Mapping[str, str] | None = None, *,
          only: Collection[str] = EVERYTHING) -> Config:
    """The Config in ``text`` (read from ``path``); ConfigErrors lists every problem.

    ``env`` (default: ``os.environ``) is the only environment consulted: secrets and every
    default that comes from a variable. ``only``: the top-level sections to read (the
    others are left out unread, as if absent: ``reporter sync`` needs only ``sources``).
    """
    env = os.environ if env is None else env
    walker = Walker(path, env)
    root = walker.compose(text)
    if root is None:
        raise ConfigErrors([f"{path.name}:1: the file is empty (it needs 'jobs')"])
    if only != EVERYTHING and isinstance(root, yaml.MappingNode):
        root = yaml.MappingNode(root.tag, [
            (k, v) for k, v in root.value
            if not isinstance(k, yaml.ScalarNode) or k.value in only],
            root.start_mark, root.end_mark)
        if "jobs" not in only:
            root.value.append((yaml.ScalarNode(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG,
                                               "jobs"),
                               yaml.MappingNode(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                                [])))
    build = _Builder(walker)
    read = walker.section(root, keys.FILE, "", ChainMap(), {
        "smtp": build.smtp, "executor": build.executor, "scheduler": build.scheduler,
        "sources": lambda node, outer: sections.sources(walker, node, outer),
        "jobs": build.jobs,
        "budgets": lambda node, outer: sections.budgets(walker, node)}, "the file")
    walker.raise_errors()
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
                  scheduler=v["scheduler"], pdf_engine=v["pdf_engine"],
                  email_from=smtp.sender if smtp else DEFAULT_SENDER,
                  sources=v["sources"] or {}, budgets=v["budgets"] or {},
                  unset=tuple(walker.unset_variables))


def read_text(path: Path) -> str:
    """The file's text (ConfigError naming it when it is missing or unreadable)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def load(path: Path | str, env: Mapping[str, str] | None = None, *,
         only: Collection[str] = EVERYTHING) -> Config:
    """Read and validate a jobs file (``only``: its sections to read, see :func:`parse`)."""
    path = Path(path)
    return parse(read_text(path), path, env, only=only)


def source_settings(name: str, **values: Any) -> SourceSettings:
    """One source from plain values, read by the key table like a file's (its defaults for
    the keys left out); ConfigErrors when a value is wrong. For code that configures a
    source without a file: tests, benchmarks. A value of None is left out."""
    given = {key: value for key, value in values.items() if value is not None}
    text = yaml.safe_dump({"sources": {name: given}, "jobs": {}})
    found = parse(text, Path("jobs.yaml"), {}).sources
    return found[name]


def check_organizations(config: Config, known: set[str]) -> list[str]:
    """Messages for organizations a job names that the database does not hold."""
    out = []
    for job in config.jobs.values():
        for slug in job.organizations or ():
            if slug not in known:
                out.append(f"{config.path.name}:{job.line}: job {job.name!r}: "
                           f"unknown organization {slug!r}")
    return out
