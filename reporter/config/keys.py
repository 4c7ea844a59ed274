"""The keys of jobs.yaml, every section's: one table for reading, defaults, messages and
the reference.

``reporter.config.load`` reads a file by this table and nothing else holds a default;
:func:`reference` renders it as the Markdown key reference of docs/CONFIGURATION.md
(``python -m reporter.config --write docs/CONFIGURATION.md`` replaces that section;
without ``--write`` it prints it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reporter import periods
from reporter.fsutil import atomic_write
from reporter.render import FORMATS, PDF_ENGINES

Kind = Literal["string", "integer", "number", "boolean", "choice", "path", "folder", "file",
               "template", "cron", "timezone", "formats", "organizations", "audience",
               "env_var", "section", "jobs", "email", "percents", "usd", "slug", "slug_map",
               "sources"]

AUDIENCES = ("admins", "members")
ALERT = ("alert",)
SOURCE_KINDS = ("litellm", "kilo", "sql")
SECURITY = ("starttls", "ssl", "none")
EXECUTORS = ("local", "celery")
SMTP_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DAY = 86_400


@dataclass(frozen=True)
class Computed:
    """A default that depends on other keys or on the machine."""

    doc: str
    #: (the values read so far, nearest section first; the environment) -> the default
    compute: Callable[[Mapping[str, Any], Mapping[str, str]], Any]


#: the default of a section that, left out, holds each of its keys' defaults
EVERY_DEFAULT = Computed("each key's default", lambda values, env: None)


@dataclass(frozen=True)
class Key:
    """One key: what it holds, its default, its bounds and a line of help."""

    name: str
    kind: Kind
    help: str
    default: Any = None  # a value, a Computed, or None for "not set"
    required: bool = False
    minimum: float | None = None  # numbers: the least value; lists: the fewest items
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    section: Section | None = None  # kinds "section", "jobs" and "email": the nested table
    env: str | None = None  # an environment variable that, set and non-empty, wins
    #: the values of the section's ``kind`` this key belongs to (empty: every kind)
    kinds: tuple[str, ...] = ()

    def default_for(self, values: Mapping[str, Any], env: Mapping[str, str]) -> Any:
        """The value of this key when the file leaves it out."""
        if isinstance(self.default, Computed):
            return self.default.compute(values, env)
        return self.default


@dataclass(frozen=True)
class Section:
    """A mapping of jobs.yaml and the keys it may hold."""

    path: str  # "" for the top level, "smtp", "job.deliver.email"...
    help: str
    keys: tuple[Key, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The keys' names, in table order."""
        return tuple(key.name for key in self.keys)


def number(value: float) -> str:
    """``1800``, ``0.1``: a bound or default as the file would spell it."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _md(text: object, markdown: bool) -> str:
    return f"`{text}`" if markdown else str(text)


def describe(key: Key, markdown: bool = False) -> str:
    """What a key's value must be: ``an integer from 1 to 65535``."""
    lo, hi = key.minimum, key.maximum
    simple: dict[str, str] = {
        "string": "a non-empty string", "boolean": f"{_md('true', markdown)} or "
        f"{_md('false', markdown)}", "path": "a path", "folder": "a folder that exists",
        "file": "a file that exists", "template": "a Jinja template",
        "cron": "a cron expression (minute hour day month weekday)",
        "timezone": "an IANA timezone name", "env_var": "an environment variable's name",
        "section": "a mapping", "jobs": "a mapping of job names to jobs",
        "usd": "an amount in USD (like `10` or `2.50`)",
        "percents": "a list of percents (1 to 1000)",
        "slug": "an organization slug", "sources": "a mapping of source names to sources",
        "slug_map": "a mapping of the source's organization ids to organization slugs",
        "email": f"{_md('true', markdown)}, {_md('false', markdown)} or a mapping",
        "organizations": f"{_md('all', markdown)} or a list of organization slugs",
        "audience": f"{_md('admins', markdown)}, {_md('members', markdown)} or a list of "
                    "email addresses",
    }
    if key.kind == "usd" and lo is not None:
        return f"an amount in USD of at least {number(lo)} (like `10` or `2.50`)"
    if key.kind in simple:
        return simple[key.kind]
    if key.kind in ("integer", "number"):
        article = "an integer" if key.kind == "integer" else "a number"
        return f"{article} from {number(lo or 0)} to {number(hi or 0)}"
    names = ", ".join(_md(c, markdown) for c in key.choices)
    if key.kind == "formats":
        return f"a list of formats ({names}){', may be empty' if not lo else ''}"
    return f"one of {names}"


def _doc_default(key: Key) -> str:
    if key.required:
        return "required"
    value = key.default
    if isinstance(value, Computed):
        return value.doc
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`[{', '.join(value)}]`"
    if isinstance(value, int | float):
        return f"`{number(value)}`"
    return f"`{value}`"


_RELATIVE = " (relative to the file's folder)"

EMAIL = Section("job.deliver.email", "`true` (or empty) sends the job's formats as attachments "
                "with the default subject; `false` sends no email.", (
    Key("subject", "template", "the subject line; names: `job`, `organization.{slug,name,"
        "timezone}`, `period.{name,label,first,last,timezone}`, `member`, `member_name`",
        default="{{ organization.name }} AI usage, {{ period.label }}"),
    Key("attach", "formats", "the formats attached; each must be among the job's `formats`",
        default=Computed("the job's `formats`", lambda values, env: values["formats"]),
        minimum=0, choices=tuple(FORMATS)),
    Key("max_attachment_bytes", "integer", "larger files are left out, and the message says "
        "where their stored copy is", default=10 * 1024 * 1024, minimum=0,
        maximum=1024**3),
))

WEBHOOK = Section("job.deliver.webhook", "An incoming webhook of Slack, Mattermost or Microsoft "
                  "Teams: a JSON `text` summary plus `blocks`, posted once per report or alert.", (
    Key("url_env", "env_var", "the environment variable holding the webhook's URL (the URL is "
        "a secret and never stands in the file)", required=True),
    Key("timeout_seconds", "number", "for each attempt, the whole of it: connecting, sending "
        "and reading the answer", default=10.0, minimum=0.1, maximum=600),
    Key("retries", "integer", "retries of a transient failure (timeout, dropped connection, "
        "429, 5xx)", default=4, minimum=0, maximum=10),
    Key("retry_backoff_seconds", "number", "the wait before the first retry, doubled after "
        "each (a 429's `Retry-After` wins)", default=1.0, minimum=0, maximum=600),
    Key("allow_plaintext", "boolean", "allow a plain `http://` URL to a host other than "
        "loopback (the URL's secret token then travels unencrypted); otherwise only `https://`",
        default=False),
))

DELIVER = Section("job.deliver", "Where a job's reports go.", (
    Key("store", "boolean", "keep the files under `<output>/<job>/<org>/<first>_<last>/` "
        "with a `manifest.json`", default=True),
    Key("email", "email", "send the report by email (see `job.deliver.email`)", section=EMAIL),
    Key("webhook", "section", "post the report's summary (an alert's message) to a chat "
        "webhook (see `job.deliver.webhook`)", section=WEBHOOK),
))

JOB = Section("job", "Each entry of `jobs`: its name is its id in the run ledger and the "
              "scheduler. A job must deliver somewhere (`store` or `email`).", (
    Key("schedule", "cron", "when the scheduler runs it; without one, the job runs only on "
        "demand"),
    Key("timezone", "timezone", "the schedule's timezone; default: each organization's own "
        "timezone"),
    Key("kind", "choice", "`report`: reports of a period; `alert`: a message when a budget "
        "threshold is reached or a day's spend jumps (see `when`)", default="report",
        choices=("report", "alert")),
    Key("period", "choice", "the period each run reports; required for `kind: report`",
        choices=periods.NAMES),
    Key("organizations", "organizations", "which organizations", default="all"),
    Key("audience", "audience", "`admins`: the team report to owners and admins; `members`: "
        "a personal report to each member; a list: the team report to those addresses",
        default="admins"),
    Key("formats", "formats", "the formats rendered", default=("html", "pdf", "xlsx"),
        minimum=1, choices=tuple(FORMATS)),
    Key("skip_empty", "boolean", "send nothing for a period with no usage", default=False),
    Key("enabled", "boolean", "`false`: the scheduler leaves the job alone", default=True),
    Key("when", "choice", "alerts: `budget` (thresholds of a monthly budget) or `spike` (a "
        "day's spend far above the days before); required for `kind: alert`",
        choices=("budget", "spike"), kinds=ALERT),
    Key("thresholds", "percents", "`when: budget`: each percent of the budget that alerts once "
        "a month", minimum=1,
        default=Computed("`[50, 80, 100]`", lambda values, env: (50, 80, 100)), kinds=ALERT),
    Key("on", "choice", "`when: budget`: `actual` spend so far, or the month-end `forecast`",
        default="actual", choices=("actual", "forecast"), kinds=ALERT),
    Key("factor", "number", "`when: spike`: the last complete day's spend is at least this "
        "many times the mean daily spend of the 14 days before it (days without usage count "
        "as 0)", default=3.0, minimum=1, maximum=1000, kinds=ALERT),
    Key("min_usd", "usd", "`when: spike`: and at least this much, so a tiny day never "
        "alerts", default=Computed("`10`", lambda values, env: 10 * 10**9), minimum=0.01,
        kinds=ALERT),
    Key("min_days", "integer", "`when: budget`, `on: forecast`: no forecast alert before this "
        "many local days of the month have passed (one busy first hour forecasts nothing)",
        default=3, minimum=0, maximum=27, kinds=ALERT),
    Key("sync", "boolean", "`true`: copy new usage from every configured source first "
        "(`reporter sync`), so the report holds the latest requests", default=False),
    Key("deliver", "section", "where the reports go (see `job.deliver`)", section=DELIVER,
        default=EVERY_DEFAULT),
))

SOURCE = Section("source", "Each entry of `sources`: where usage already lives, read by "
                 "`reporter sync` (see the README, \"Reading from LiteLLM or Kilo Code\").", (
    Key("kind", "choice", "`litellm`: a LiteLLM proxy's database; `kilo`: Kilo Code's cloud "
        "database; `sql`: any database and a SELECT naming reporter's fields",
        required=True, choices=SOURCE_KINDS),
    Key("url_env", "env_var", "the environment variable holding the database URL (the URL "
        "is a secret and never stands in the file)", required=True),
    Key("organization", "slug", "every row goes to this organization", kinds=("litellm", "sql")),
    Key("organization_from", "choice", "the LiteLLM alias a row's organization is named by",
        choices=("organization_alias", "team_alias"), kinds=("litellm",)),
    Key("project_from", "string", "`team_alias`, `tag:PREFIX` (a request tag) or "
        "`metadata:KEY`: where a row's project comes from", kinds=("litellm",)),
    Key("organizations", "slug_map", "the source's organization ids (Kilo's organization "
        "ids; LiteLLM's organization or team ids, by `organization_from`) and the slug each "
        "is stored under (only these are read); without it an organization keeps the slug "
        "it was first stored under", kinds=("litellm", "kilo")),
    Key("query", "string", "a SELECT naming reporter's fields, with `:since` (rows at or "
        "after it)", kinds=("sql",)),
    Key("overlap_minutes", "number", "each sync reads again this far before the last row "
        "it stored: a row written late (LiteLLM writes a request when it ends but dates it "
        "when it began) is read when it is no later than this", default=120.0, minimum=0,
        maximum=10_080),
    Key("page_size", "integer", "rows read per transaction", default=10_000, minimum=1,
        maximum=1_000_000),
    Key("timeout_seconds", "number", "for connecting and for each page's query",
        default=30.0, minimum=0.001, maximum=3600),
))

SCHEDULER = Section("scheduler", "The long-running service (`reporter scheduler`).", (
    Key("misfire_grace_seconds", "integer", "a run missed while the service was down is "
        "caught up within this window", default=21_600, minimum=1, maximum=30 * DAY),
    Key("lease_seconds", "integer", "a standby instance takes over this long after the "
        "leader stopped renewing its lease", default=30, minimum=1, maximum=DAY),
    Key("unit_timeout_seconds", "integer", "a unit left `running` this long (its process "
        "died) is taken over", default=1_800, minimum=1, maximum=30 * DAY),
))

EXECUTOR = Section("executor", "How `reporter run`, `backfill` and the scheduler fan out "
                   "the units of a run.", (
    Key("kind", "choice", "`local`: a process pool; `celery`: Celery tasks run by "
        "`reporter worker`", default="local", choices=EXECUTORS),
    Key("workers", "integer", "worker processes", minimum=1, maximum=1024,
        default=Computed("the number of CPU cores", lambda values, env: os.cpu_count() or 1)),
    Key("max_reports_per_worker", "integer", "a worker process is replaced after this many "
        "reports", default=50, minimum=1, maximum=1_000_000),
    BROKER := Key("broker_url", "string", "the Celery broker (and result backend)",
                  default="redis://127.0.0.1:6379/0", env="REPORTER_BROKER_URL"),
    Key("start_timeout_seconds", "integer", "a run whose units no Celery worker starts "
        "within this time gives up on them, says so, and they are never delivered later",
        default=60, minimum=1, maximum=DAY),
))

SMTP = Section("smtp", "The mail server. Without this section, email is written to "
               "`<output>/outbox/*.eml`.", (
    Key("host", "string", "the server's host name or address", required=True),
    Key("port", "integer", "the server's port", minimum=1, maximum=65535,
        default=Computed("`587` (starttls), `465` (ssl), `25` (none)",
                         lambda values, env: SMTP_PORTS.get(values["security"], 25))),
    Key("security", "choice", "`starttls` or `ssl` encrypt the connection; `none` does not",
        default="starttls", choices=SECURITY),
    Key("username", "string", "log in as this user; needs `password_env`"),
    Key("password_env", "env_var", "the environment variable holding the password (the "
        "secret itself never stands in the file)"),
    Key("from", "string", "the sender, e.g. `Usage Reports <reports@example.com>`",
        required=True),
    Key("ca_file", "file", "PEM certificates of the CA that signed the server's certificate"
        + _RELATIVE + "; default: the system's trust store"),
    Key("allow_plaintext_auth", "boolean", "allow `username` with `security: none` to a host "
        "that is not loopback (the password crosses the network unencrypted)", default=False),
    Key("timeout_seconds", "number", "for each connection and reply", default=30.0,
        minimum=0.1, maximum=3600),
    Key("retries", "integer", "retries of a transient failure (refused, timeout, 4xx)",
        default=3, minimum=0, maximum=10),
    Key("retry_backoff_seconds", "number", "the wait before the first retry, doubled after "
        "each", default=2.0, minimum=0, maximum=600),
))

FILE = Section("", "The file itself.", (
    Key("database", "string", "the database URL; `--db`, then `REPORTER_DATABASE_URL`, win "
        "over it; default: `sqlite:///reporter.db`"),
    Key("output", "path", "stored reports and the outbox live under it" + _RELATIVE,
        default="output"),
    Key("templates", "folder", "files here override the shipped templates" + _RELATIVE),
    Key("pdf_engine", "choice", "what prints PDFs: `weasyprint`, or `chromium` (headless "
        "Chromium through Playwright, one browser per worker: several times less CPU a "
        "report; needs `pip install 'reporter[chromium]'` and a Chromium on the machine); "
        "`--pdf-engine` wins", default="weasyprint", choices=PDF_ENGINES),
    Key("smtp", "section", "the mail server (see `smtp`)", section=SMTP),
    Key("executor", "section", "how runs fan out (see `executor`)", section=EXECUTOR,
        default=EVERY_DEFAULT),
    Key("scheduler", "section", "the scheduler service (see `scheduler`)", section=SCHEDULER,
        default=EVERY_DEFAULT),
    Key("sources", "sources", "where usage already lives, copied in by `reporter sync`: "
        "sources by name (see `source`)", section=SOURCE),
    Key("budgets", "section", "monthly budgets of projects, by organization: `{ORG: "
        "{projects: {NAME: AMOUNT}}}` (organizations and members: `reporter org set` / "
        "`member set --monthly-budget`)"),
    Key("jobs", "jobs", "the jobs by name (see `job`)", required=True, section=JOB),
))

SECTIONS = (FILE, SMTP, EXECUTOR, SCHEDULER, SOURCE, JOB, DELIVER, EMAIL, WEBHOOK)

BEGIN = "<!-- key reference: generated from reporter/config/keys.py; do not edit by hand -->"
END = "<!-- end of the generated key reference -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference() -> str:
    """The key reference as Markdown, one table per section, between BEGIN and END."""
    lines = [BEGIN, ""]
    for section in SECTIONS:
        lines += [f"### {f'`{section.path}`' if section.path else 'Top level'}", "",
                  section.help, "", "| key | value | default | meaning |",
                  "| --- | --- | --- | --- |"]
        for key in section.keys:
            default = _doc_default(key)
            if key.env:
                default += f"; `{key.env}` wins"
            lines.append(f"| `{key.name}` | {_cell(describe(key, markdown=True))} | "
                         f"{_cell(default)} | {_cell(key.help)} |")
        lines.append("")
    return "\n".join([*lines, END])


def write(doc: Path) -> bool:
    """Replace the reference between BEGIN and END in ``doc``; whether it changed."""
    text = doc.read_text(encoding="utf-8")
    head, sep, rest = text.partition(BEGIN)
    if not sep or END not in rest:
        raise SystemExit(f"{doc}: no generated key reference section to replace")
    new = head + reference() + rest.partition(END)[2]
    if new != text:
        atomic_write(doc, new.encode("utf-8"))
    return new != text

