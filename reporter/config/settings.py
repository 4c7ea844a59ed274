"""The settings jobs.yaml holds that belong to no lower package: the jobs, the executor,
the scheduler and the file as a whole (``reporter.config.load`` builds them).

The settings of a channel or a source are defined beside the code that uses them
(``SmtpSettings``, ``WebhookSettings``, ``SourceSettings``, ``AlertSettings``); every
default is in the key table (``reporter.config.keys``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reporter.alerts.rules import AlertSettings
from reporter.deliver.smtp import SmtpSettings
from reporter.deliver.webhook import WebhookSettings
from reporter.errors import ConfigError
from reporter.store.sources.common import SourceSettings

#: the sender of messages written to the outbox when no ``smtp`` section names one
DEFAULT_SENDER = "Usage Reports <reports@localhost>"


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
    kind: str  # "report" or "alert": the module of reporter.jobs.kinds that runs it
    period: str  # a period name; "alert" for alert jobs
    formats: tuple[str, ...]
    schedule: str | None
    timezone: str | None
    organizations: tuple[str, ...] | None  # None: all organizations
    audience: str  # "admins", "members" or "list"
    addresses: tuple[str, ...]  # the normalized addresses of a "list" audience
    skip_empty: bool
    keep_files: bool  # ``deliver.store``: keep the rendered files under the output folder
    email: EmailSettings | None
    webhook: WebhookSettings | None
    enabled: bool
    sync: bool  # sync the sources that feed the job's organizations before it runs
    line: int  # where the job's name stands in the file
    alert: AlertSettings | None = None  # what an alert job watches


@dataclass(frozen=True)
class ExecutorSettings:
    """The ``executor`` section: how runs fan out (a local process pool or Celery)."""

    kind: str
    workers: int
    max_reports_per_worker: int
    broker_url: str
    start_timeout_seconds: int = 60


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
    #: what prints PDFs: ``weasyprint`` or ``chromium`` (``render.PDF_ENGINES``)
    pdf_engine: str
    email_from: str = DEFAULT_SENDER
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    #: monthly budgets of projects in nano-dollars: organization -> project -> budget
    budgets: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: ``file:line: what`` for each environment variable the file names that is not set
    #: (or holds what cannot be used, like a webhook URL that is not https);
    #: only the jobs that use one fail, each naming it (``reporter validate`` lists them)
    unset: tuple[str, ...] = ()

    def sources_feeding(self, slug: str) -> list[str]:
        """The configured sources whose rows may belong to organization ``slug``."""
        return [name for name, source in self.sources.items() if source.feeds(slug)]

    def job(self, name: str) -> JobSettings:
        """The job called ``name``; ConfigError listing the jobs when there is none."""
        if name not in self.jobs:
            known = ", ".join(self.jobs) or "none"
            raise ConfigError(f"{self.path.name}: unknown job {name!r} (jobs: {known})")
        return self.jobs[name]
