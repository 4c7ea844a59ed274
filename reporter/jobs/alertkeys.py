"""jobs.yaml for alerts: the ``budgets`` section, an alert job's keys and ``deliver.webhook``.

``reporter.jobs.config`` calls these while it reads the file; every problem is reported as
``file:line: where: what`` through the reader, like the rest of the file.
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any

import yaml

from reporter.errors import ReporterError
from reporter.jobs import keys
from reporter.jobs.kinds import BAD, show
from reporter.jobs.reader import Reader
from reporter.jobs.settings import AlertSettings, WebhookSettings
from reporter.store.orgs import is_slug, parse_budget


def budgets(r: Reader, node: yaml.Node | None) -> dict[str, dict[str, int]]:
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


def job_fields(r: Reader, v: dict[str, Any], nodes: dict[str, yaml.Node],
               node: yaml.Node, where: str) -> Any:
    """The kind, alert condition and webhook of one job (BAD after reporting a problem)."""
    before = len(r.errors)
    kind = v["kind"]
    alert_keys = ("when", "thresholds", "on", "factor", "min_usd")
    if kind == "report":
        if v["period"] is None:
            r.error(node, where, "missing key 'period'")
        for name in alert_keys:
            if name in nodes:
                r.error(nodes[name], where, f"{name!r} is for alert jobs (kind: alert)")
        return BAD if len(r.errors) > before else {"webhook": v.get("webhook")}
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
    wrong = ("factor", "min_usd") if when == "budget" else ("thresholds", "on")
    for name in wrong:
        if name in nodes:
            r.error(nodes[name], where, f"{name!r} does not apply to 'when: {when}'")
    if len(r.errors) > before or when is None:
        return BAD
    alert = AlertSettings(when=when, thresholds=v["thresholds"], on=v["on"],
                          factor=v["factor"], min_nanos=v["min_usd"])
    return {"kind": "alert", "alert": alert, "period": "alert", "webhook": v.get("webhook")}


def webhook(r: Reader, node: yaml.Node | None, outer: ChainMap[str, Any], where: str) -> Any:
    """``deliver.webhook``: the URL from its environment variable, and the retry settings."""
    if node is None:
        return None
    read = r.section(node, keys.WEBHOOK, where, outer, {}, "webhook")
    if read is None or not read.ok:
        return BAD
    v = read.own
    url = r.env.get(v["url_env"], "")
    if not url:
        r.error(read.nodes["url_env"], where,
                f"environment variable {v['url_env']} (webhook url_env) is not set")
        return BAD
    if not url.startswith(("https://", "http://")):
        r.error(read.nodes["url_env"], where, f"environment variable {v['url_env']} does not "
                                              f"hold an http(s) URL")
        return BAD
    return WebhookSettings(url=url, url_env=v["url_env"], timeout_seconds=v["timeout_seconds"],
                           retries=v["retries"],
                           retry_backoff_seconds=v["retry_backoff_seconds"])
