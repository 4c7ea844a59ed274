"""The ``sources:`` section of jobs.yaml: one SourceSettings per source, problems as
``jobs.yaml:LINE: source 'name': what``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reporter.errors import ConfigError
from reporter.store import orgs

KINDS = ("litellm", "kilo", "sql")
ORGANIZATION_FROM = ("organization_alias", "team_alias")
COMMON_KEYS = ("kind", "url_env", "overlap_minutes", "page_size", "timeout_seconds")
KIND_KEYS = {
    "litellm": ("organization", "organization_from", "project_from"),
    "kilo": ("organizations",),
    "sql": ("query", "organization"),
}
DEFAULT_OVERLAP_MINUTES = 10.0
DEFAULT_PAGE_SIZE = 10_000
DEFAULT_TIMEOUT_SECONDS = 30.0
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SINCE = re.compile(r"(?<![:\w\\]):since\b")


@dataclass(frozen=True)
class SourceSettings:
    """One configured source: where it is (the name of the variable holding its URL), what
    kind it is, and how its rows map onto organizations and projects."""

    name: str
    kind: str
    url_env: str
    organization: str | None = None        # litellm, sql: every row to this organization
    organization_from: str | None = None   # litellm: organization_alias | team_alias
    project_from: str | None = None        # litellm: team_alias | tag:PREFIX | metadata:KEY
    organizations: Mapping[str, str] | None = None  # kilo: organization id -> slug
    query: str | None = None               # sql: a SELECT naming our fields, with :since
    overlap_minutes: float = DEFAULT_OVERLAP_MINUTES
    page_size: int = DEFAULT_PAGE_SIZE
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    line: int = field(default=0, compare=False)

    def url(self, env: Mapping[str, str]) -> str:
        """The connection URL from the environment (ConfigError naming the variable)."""
        value = env.get(self.url_env, "").strip()
        if not value:
            raise ConfigError(f"source {self.name!r}: environment variable {self.url_env} "
                              f"(url_env) is not set")
        return value


class _Walker:
    """Reads YAML nodes of one source, collecting ``file:line: source 'name': what``."""

    def __init__(self, file_name: str, errors: list[str], name: str) -> None:
        self.file_name = file_name
        self.errors = errors
        self.where = f"source {name!r}: "

    def error(self, node: yaml.Node, message: str) -> None:
        self.errors.append(f"{self.file_name}:{node.start_mark.line + 1}: {self.where}{message}")

    def value(self, node: yaml.Node) -> Any:
        return yaml.constructor.SafeConstructor().construct_document(node)

    def text(self, node: yaml.Node | None, key: str) -> str | None:
        if node is None:
            return None
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            self.error(node, f"{key!r} must be a non-empty string")
            return None
        return value.strip()

    def number(self, node: yaml.Node | None, key: str, default: float, *,
               integer: bool = False, minimum: float = 0) -> Any:
        if node is None:
            return default
        value = self.value(node)
        fits = isinstance(value, int) or (not integer and isinstance(value, float))
        if isinstance(value, bool) or not fits or value < minimum:
            what = "an integer" if integer else "a number"
            self.error(node, f"{key!r} must be {what} >= {minimum:g}, not {value!r}")
            return default
        return value


def _mapping(node: yaml.Node, report: Any) -> dict[str, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        report(node, "must be a mapping of keys to values")
        return None
    out: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or not key:
            report(key_node, "keys must be plain names")
        elif key in out:
            report(key_node, f"duplicate key {key!r}")
        else:
            out[key] = value_node
    return out


def _organizations(w: _Walker, node: yaml.Node) -> dict[str, str] | None:
    pairs = _mapping(node, lambda n, m: w.error(n, f"'organizations' {m}"))
    if pairs is None:
        return None
    out = {}
    for key, value_node in pairs.items():
        slug = w.text(value_node, f"organizations: {key}")
        if slug is not None and not orgs.is_slug(slug):
            w.error(value_node, f"organizations: {slug!r} is not a valid organization slug "
                                f"({orgs.SLUG_RULE})")
        elif slug is not None:
            out[key.strip()] = slug
    return out


def _project_from(w: _Walker, node: yaml.Node) -> str | None:
    value = w.text(node, "project_from")
    if value is None:
        return None
    if value == "team_alias":
        return value
    prefix, _, rest = value.partition(":")
    if prefix in ("tag", "metadata") and rest.strip():
        return value
    w.error(node, f"project_from must be team_alias, 'tag:PREFIX' or 'metadata:KEY', "
                  f"not {value!r}")
    return None


def _source(name: str, node: yaml.Node, file_name: str, errors: list[str]) -> SourceSettings | None:
    w = _Walker(file_name, errors, name)
    before = len(errors)
    keys = _mapping(node, w.error)
    if keys is None:
        return None
    kind = w.text(keys.get("kind"), "kind")
    if "kind" not in keys:
        w.error(node, f"missing key 'kind' (one of: {', '.join(KINDS)})")
        return None
    if kind not in KINDS:
        if kind is not None:
            w.error(keys["kind"], f"unknown kind {kind!r} (one of: {', '.join(KINDS)})")
        return None
    known = COMMON_KEYS + KIND_KEYS[kind]
    for key, value_node in keys.items():
        if key not in known:
            w.error(value_node, f"unknown key {key!r} for kind {kind} "
                                f"(known: {', '.join(known)})")
    url_env = w.text(keys.get("url_env"), "url_env")
    if "url_env" not in keys:
        w.error(node, "missing key 'url_env' (the name of the variable holding the URL)")
    elif url_env is not None and not _ENV_NAME.fullmatch(url_env):
        w.error(keys["url_env"], f"url_env must name an environment variable, not {url_env!r} "
                                 "(the URL itself stays in the environment)")
    organization = w.text(keys.get("organization"), "organization")
    if organization is not None and not orgs.is_slug(organization):
        w.error(keys["organization"], f"organization {organization!r} is not a valid "
                                      f"organization slug ({orgs.SLUG_RULE})")
    organization_from = w.text(keys.get("organization_from"), "organization_from")
    if organization_from is not None and organization_from not in ORGANIZATION_FROM:
        w.error(keys["organization_from"], f"organization_from must be one of "
                                           f"{', '.join(ORGANIZATION_FROM)}")
    if kind == "litellm" and ("organization" in keys) == ("organization_from" in keys):
        w.error(node, "needs exactly one of 'organization' (a slug for every row) or "
                      "'organization_from' (organization_alias | team_alias)")
    project_from = _project_from(w, keys["project_from"]) if "project_from" in keys else None
    organizations = (_organizations(w, keys["organizations"]) if "organizations" in keys
                     else None)
    query = w.text(keys.get("query"), "query")
    if kind == "sql":
        if "query" not in keys:
            w.error(node, "missing key 'query' (a SELECT naming our fields, with :since)")
        elif query is not None and not _SINCE.search(query):
            w.error(keys["query"], "query must bind :since (e.g. WHERE ts >= :since) so a sync "
                                   "reads only what is new")
    overlap = w.number(keys.get("overlap_minutes"), "overlap_minutes", DEFAULT_OVERLAP_MINUTES)
    page_size = w.number(keys.get("page_size"), "page_size", DEFAULT_PAGE_SIZE, integer=True,
                         minimum=1)
    timeout = w.number(keys.get("timeout_seconds"), "timeout_seconds",
                       DEFAULT_TIMEOUT_SECONDS, minimum=0.001)
    if len(errors) > before or url_env is None:
        return None
    return SourceSettings(
        name=name, kind=kind, url_env=url_env, organization=organization,
        organization_from=organization_from, project_from=project_from,
        organizations=organizations, query=query.rstrip().rstrip(";") if query else None,
        overlap_minutes=float(overlap), page_size=int(page_size),
        timeout_seconds=float(timeout), line=node.start_mark.line + 1)


def parse_sources(node: yaml.Node, file_name: str,
                  errors: list[str]) -> dict[str, SourceSettings]:
    """The sources in the ``sources:`` node; problems are appended to ``errors``."""
    def top(bad: yaml.Node, message: str) -> None:
        errors.append(f"{file_name}:{bad.start_mark.line + 1}: sources: {message}")

    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        return {}
    entries = _mapping(node, top)
    out: dict[str, SourceSettings] = {}
    for name, source_node in (entries or {}).items():
        source = _source(name, source_node, file_name, errors)
        if source is not None:
            out[name] = source
    return out


def load_sources(path: Path | str) -> dict[str, SourceSettings]:
    """The validated sources of a jobs file, without the rest of it (ConfigError)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path.name}{line}: not valid YAML: {exc.problem}") from None
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "sources":
            errors: list[str] = []
            found = parse_sources(value_node, path.name, errors)
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                raise ConfigError(errors[0] + more)
            return found
    return {}
