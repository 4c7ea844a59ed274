"""The sections of jobs.yaml whose values need more than the key table: budgets, an alert
job's condition, ``deliver.webhook`` and ``sources``.

``reporter.config.load`` calls these while it walks the file; every problem is reported as
``file:line: where: what`` through the walker, like the rest of the file.
"""

from __future__ import annotations

import re
from collections import ChainMap
from typing import Any

import yaml

from reporter.alerts.rules import AlertSettings
from reporter.config import keys
from reporter.config.values import BAD, show
from reporter.config.walker import Walker
from reporter.deliver.webhook import WebhookSettings, url_problem
from reporter.errors import ReporterError
from reporter.store.orgs import is_slug, parse_budget
from reporter.store.sources.common import SourceSettings

#: a SQL source's query binds ``:since`` (and no other name: a ``':x'`` in a literal is text)
_SINCE = re.compile(r"(?<![:\w\\]):since\b")


def budgets(r: Walker, node: yaml.Node | None) -> dict[str, dict[str, int]]:
    """``budgets: {ORG: {projects: {NAME: AMOUNT}}}`` as nano-dollars by org and project."""
    out: dict[str, dict[str, int]] = {}
    if node is None:
        return out
    orgs = r.mapping(node, "budgets", None, "budgets")
    for slug, org_node in (orgs or {}).items():
        where = f"budgets: organization {show(slug)}"
        if not is_slug(slug):
            r.error(org_node, "budgets", f"{show(slug)} is not an organization slug")
            continue
        inner = r.mapping(org_node, where, ("projects",), "an organization's budgets")
        if not inner or "projects" not in inner:
            continue
        projects = r.mapping(inner["projects"], where, None, "projects")
        for project, amount_node in (projects or {}).items():
            text = amount_node.value if isinstance(amount_node, yaml.ScalarNode) else None
            if not isinstance(text, str) or not text:
                r.error(amount_node, where, f"project {show(project)}: the budget must be an "
                                            f"amount in USD, like 500.00")
                continue
            try:
                nanos = parse_budget(text, f"project {show(project)}: budget")
            except ReporterError as exc:
                r.error(amount_node, where, str(exc))
                continue
            if nanos is not None:
                out.setdefault(slug, {})[project] = nanos
    return out


def alert(r: Walker, read: Any, node: yaml.Node, where: str) -> Any:
    """The condition of one job: None for a report job, the AlertSettings of an alert job,
    BAD after reporting a problem."""
    before = len(r.errors)
    v, nodes = read.own, read.nodes
    kind = v["kind"]
    if kind == "report":
        if v["period"] is None:
            r.error(node, where, "missing key 'period'")
        r.misplaced(read, keys.JOB, kind, where, "{key!r} is for alert jobs (kind: alert)")
        return BAD if len(r.errors) > before else None
    if kind != "alert":
        return BAD
    when = v["when"]
    if when is None and "when" not in nodes:
        r.error(node, where, "missing key 'when' (budget or spike)")
    if v["period"] is not None:
        r.error(nodes["period"], where, "an alert job has no 'period' (budgets are "
                                        "monthly, spikes daily)")
    if v["audience"] == "members":
        r.error(nodes["audience"], where, "an alert goes to 'admins' or a list of addresses")
    wrong = ("factor", "min_usd") if when == "budget" else ("thresholds", "on", "min_days")
    for name in wrong:
        if name in nodes:
            r.error(nodes[name], where, f"{name!r} does not apply to 'when: {when}'")
    if len(r.errors) > before or when is None:
        return BAD
    return AlertSettings(when=when, thresholds=v["thresholds"], on=v["on"],
                         factor=v["factor"], min_nanos=v["min_usd"], min_days=v["min_days"])


def webhook(r: Walker, node: yaml.Node | None, outer: ChainMap[str, Any], where: str) -> Any:
    """``deliver.webhook``: the URL from its environment variable (an unset variable, or one
    whose URL cannot be used, is noted, not an error: only the job that posts fails), and
    the retry settings."""
    if node is None:
        return None
    read = r.section(node, keys.WEBHOOK, where, outer, {}, "webhook")
    if read is None or not read.ok:
        return BAD
    v = read.own
    url = r.env.get(v["url_env"], "") or None
    if url is None:
        r.unset(read.nodes["url_env"], where, v["url_env"], "webhook url_env")
    else:
        problem = url_problem(url, v["allow_plaintext"])
        if problem is not None:  # like an unset variable: only this job fails, naming it
            r.unusable(read.nodes["url_env"], where,
                       f"environment variable {v['url_env']} (webhook url_env) {problem}")
    return WebhookSettings(url_env=v["url_env"], url=url, timeout_seconds=v["timeout_seconds"],
                           retries=v["retries"],
                           retry_backoff_seconds=v["retry_backoff_seconds"],
                           allow_plaintext=v["allow_plaintext"])


def sources(r: Walker, node: yaml.Node | None, outer: ChainMap[str, Any]) -> Any:
    """``sources``: one SourceSettings per name (a source whose keys are wrong is left out
    after its problems are reported)."""
    if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        return {}
    entries = r.mapping(node, "sources", None, "sources")
    out = {}
    for name, source_node in (entries or {}).items():
        found = _source(r, name, source_node, outer)
        if found is not None:
            out[name] = found
    return out


def _source(r: Walker, name: str, node: yaml.Node, outer: ChainMap[str, Any]) -> Any:
    where = f"source {show(name)}"
    before = len(r.errors)
    read = r.section(node, keys.SOURCE, where, outer, {}, "a source")
    if read is None:
        return None
    v, nodes = read.own, read.nodes
    kind = v["kind"]
    if kind not in keys.SOURCE_KINDS:
        return None
    r.misplaced(read, keys.SOURCE, kind, where, "unknown key {key!r} for kind {kind} "
                                                "(known: {known})")
    if kind == "litellm" and ("organization" in nodes) == (
            "organization_from" in nodes or "organizations" in nodes):
        r.error(node, where, "needs exactly one of 'organization' (a slug for every row) or "
                             "'organization_from' (organization_alias | team_alias, with "
                             "'organizations' to map their ids)")
    if isinstance(v["organizations"], dict):
        by_slug: dict[str, list[str]] = {}
        for source_id, slug in v["organizations"].items():
            by_slug.setdefault(slug, []).append(source_id)
        for slug, ids in by_slug.items():
            if len(ids) > 1:
                r.error(nodes["organizations"], where, f"organizations: ids "
                        f"{', '.join(show(i) for i in ids)} would all be {show(slug)}; "
                        f"give each its own slug")
    project_from = v["project_from"]
    if isinstance(project_from, str) and project_from != "team_alias":
        prefix, _, rest = project_from.partition(":")
        if prefix not in ("tag", "metadata") or not rest.strip():
            r.error(nodes["project_from"], where, f"project_from must be team_alias, "
                                                  f"'tag:PREFIX' or 'metadata:KEY', not "
                                                  f"{show(project_from)}")
    query = v["query"]
    if kind == "sql" and query is None:
        r.error(node, where, "missing key 'query' (a SELECT naming our fields, with :since)")
    elif kind == "sql" and isinstance(query, str) and not _SINCE.search(query):
        r.error(nodes["query"], where, "query must bind :since (e.g. WHERE ts >= :since) so "
                                       "a sync reads only what is new")
    if len(r.errors) > before:
        return None
    if not r.env.get(v["url_env"], "").strip():  # sync fails then, naming the variable
        r.unset(nodes["url_env"], where, v["url_env"], "url_env")
    return SourceSettings(
        name=name, kind=kind, url_env=v["url_env"], organization=v["organization"],
        organization_from=(v["organization_from"] or ("organization_alias" if kind ==
                           "litellm" and v["organizations"] is not None else None)),
        project_from=project_from,
        organizations=v["organizations"],
        query=query.strip().rstrip(";").rstrip() if query else None,
        overlap_minutes=v["overlap_minutes"], page_size=v["page_size"],
        timeout_seconds=v["timeout_seconds"], line=node.start_mark.line + 1)
