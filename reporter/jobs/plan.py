"""Planning: a job, its organizations and a period -> units of work, by the job's kind."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine

from reporter.config import Config
from reporter.jobs import kinds
from reporter.jobs.kinds.base import Request, recipients
from reporter.jobs.kinds.report import periods_in
from reporter.jobs.units import Unit

__all__ = ["backfill", "periods_in", "plan", "recipients"]


def plan(engine: Engine, config: Config, job_name: str, *, as_of: datetime,
         orgs: list[str] | None = None, period: str | None = None, first: date | None = None,
         last: date | None = None, trigger: str = "cli",
         scheduled_for: datetime | None = None) -> list[Unit]:
    """The units of one run of ``job_name``: periods (and alerts) resolved in each
    organization's timezone at ``scheduled_for`` (else ``as_of``)."""
    job = config.job(job_name)
    request = Request(orgs or [], as_of, scheduled_for or as_of, period, first, last, trigger,
                      scheduled_for)
    return kinds.of(job).plan(engine, config, job, request)


def backfill(engine: Engine, config: Config, job_name: str, *, first: date, last: date,
             orgs: list[str] | None = None) -> list[Unit]:
    """The units of every period of the job's kind inside ``first..last``."""
    job = config.job(job_name)
    return kinds.of(job).backfill(engine, config, job, orgs or [], first, last)
