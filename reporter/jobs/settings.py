"""The settings jobs.yaml holds, as frozen dataclasses (``reporter.jobs.config`` builds them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reporter.deliver.smtp import SmtpSettings
from reporter.errors import ConfigError
from reporter.store.sources.settings import SourceSettings

DEFAULT_SUBJECT = "{{ organization.name }} AI usage, {{ period.label }}"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_ENV = "REPORTER_BROKER_URL"
DEFAULT_SENDER = "Usage Reports <reports@localhost>"
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class EmailSettings:
    """A job's ``deliver.email``: the subject template and what is attached."""

    subject: str
    attach: tuple[str, ...]
    max_attachment_bytes: int


@dataclass(frozen=True)
class JobSettings:
    """One entry of ``jobs``: when, which period, for whom, in which formats, delivered how."""

    name: str
    period: str
    formats: tuple[str, ...]
    schedule: str | None
    timezone: str | None
    organizations: tuple[str, ...] | None  # None: all organizations
    audience: str  # "admins", "members" or "list"
    addresses: tuple[str, ...]  # the normalized addresses of a "list" audience
    skip_empty: bool
    store: bool
    email: EmailSettings | None
    enabled: bool
    sync: bool  # sync every configured source before the job runs
    line: int  # where the job's name stands in the file
    kind: str = "report"  # "report" or "alert"
    alert: AlertSettings | None = None  # what an alert job watches
    webhook: WebhookSettings | None = None


@dataclass(frozen=True)
class AlertSettings:
    """An alert job's condition: ``budget`` thresholds (of actual spend or the forecast) or
    a ``spike`` of the last complete day over the median of the 14 days before it."""

    when: str  # "budget" or "spike"
    thresholds: tuple[int, ...] = (50, 80, 100)
    on: str = "actual"  # "actual" or "forecast"
    factor: float = 3.0
    min_nanos: int = 10_000_000_000


@dataclass(frozen=True)
class WebhookSettings:
    """A job's ``deliver.webhook``: the URL (from ``url_env``) and how to retry."""

    url: str = field(repr=False)
    url_env: str
    timeout_seconds: float = 10.0
    retries: int = 4
    retry_backoff_seconds: float = 1.0


@dataclass(frozen=True)
class ExecutorSettings:
    """The ``executor`` section: how runs fan out (a local process pool or Celery)."""

    kind: str
    workers: int
    max_reports_per_worker: int
    broker_url: str


@dataclass(frozen=True)
class SchedulerSettings:
    """The ``scheduler`` section: catch-up window, leader lease, unit takeover."""

    misfire_grace_seconds: int
    lease_seconds: int
    unit_timeout_seconds: int


@dataclass(frozen=True)
class Config:
    """A whole, validated jobs.yaml."""

    path: Path
    output: Path
    jobs: dict[str, JobSettings]
    database: str | None
    smtp: SmtpSettings | None
    templates: Path | None
    executor: ExecutorSettings
    scheduler: SchedulerSettings
    email_from: str = DEFAULT_SENDER
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    #: monthly budgets of projects in nano-dollars: organization -> project -> budget
    budgets: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def job(self, name: str) -> JobSettings:
        """The job called ``name``; ConfigError listing the jobs when there is none."""
        if name not in self.jobs:
            known = ", ".join(self.jobs) or "none"
            raise ConfigError(f"{self.path.name}: unknown job {name!r} (jobs: {known})")
        return self.jobs[name]
