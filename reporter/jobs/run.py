"""Running a job: sync the sources it reads, plan its units, run them, report outcomes.
The one way a job runs, for the scheduler, ``reporter run`` and ``backfill``, the demo and
every executor (in-process, the local pool, Celery)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine

from reporter.config import Config, JobSettings
from reporter.errors import DeliveryError, ReporterError
from reporter.jobs import plan, runner
from reporter.jobs.units import FAILED, Executor, Outcome
from reporter.store.sources import sync_all

log = logging.getLogger(__name__)


class SyncFailed(ReporterError):
    """A source the job reads could not be read before it ran; the run delivers nothing
    that may be missing its latest usage."""


@dataclass(frozen=True)
class Span:
    """What a run covers: the organizations, and a period (by name or dates) or, for a
    backfill, every period between ``first`` and ``last``."""

    orgs: list[str] | None = None
    period: str | None = None
    first: date | None = None
    last: date | None = None
    backfill: bool = False


def sources_for(config: Config, job: JobSettings, span: Span = Span()) -> list[str]:
    """The sources whose rows may belong to an organization the job reports on: every
    source for a job on all organizations (a source may bring one the store has not seen
    yet), else those that may feed its organizations."""
    slugs = span.orgs or (list(job.organizations) if job.organizations is not None else None)
    if slugs is None:
        return list(config.sources)
    return [name for name, source in config.sources.items()
            if any(source.feeds(slug) for slug in slugs)]


def sync_first(engine: Engine, config: Config, job: JobSettings, *, now: datetime,
               span: Span = Span()) -> int:
    """Sync the sources the job reads (``sync: true``; nothing otherwise); the rows
    inserted. SyncFailed names each source that failed, after every one was tried."""
    names = sources_for(config, job, span) if job.sync else []
    if not names:
        return 0
    results = sync_all(engine, config.sources, names, now=now)
    for result in results:
        log.info("job %s: %s", job.name, result.summary())
    failed = [r for r in results if r.error is not None]
    if failed:
        raise SyncFailed(f"job {job.name}: could not sync first: "
                         f"{'; '.join(str(r.error) for r in failed)}; nothing was delivered")
    return sum(r.inserted for r in results)


def run_job(engine: Engine, config: Config, name: str, *, now: datetime,
            span: Span = Span(), as_of: datetime | None = None, trigger: str = "cli",
            scheduled_for: datetime | None = None, force: bool = False,
            dry_run: bool = False, executor: Executor | None = None,
            progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run the job ``name``: sync what it reads (not for a dry run), plan its units for
    ``span`` at ``as_of`` (default ``now``), and run them through ``executor`` (default:
    in this process); ``progress`` hears of each outcome as it ends. Planning and syncing
    failures raise (ReporterError); a unit's failure is its outcome."""
    job = config.job(name)
    if not dry_run:
        sync_first(engine, config, job, now=now, span=span)
    if span.backfill:
        assert span.first is not None
        assert span.last is not None
        units = plan.backfill(engine, config, name, first=span.first, last=span.last,
                              orgs=span.orgs)
    else:
        units = plan.plan(engine, config, name, as_of=as_of or now, orgs=span.orgs,
                          period=span.period, first=span.first, last=span.last,
                          trigger=trigger, scheduled_for=scheduled_for)
    return runner.run_units(engine, config, units, now=now, force=force, dry_run=dry_run,
                            executor=executor, progress=progress)


def outbox_only(config: Config) -> Config:
    """The config with every way out of this machine taken away: no SMTP server (emails go
    to the outbox), no webhook, no source to sync. What the demo runs with, so its reports
    never reach a real person, a real hook or a real gateway database."""
    jobs = {name: replace(job, webhook=None, sync=False) for name, job in config.jobs.items()}
    return replace(config, smtp=None, sources={}, jobs=jobs)


def store_only(config: Config, name: str) -> Config:
    """The config with job ``name`` only storing its files: no email, no webhook (``backfill
    --store-only``). Its units are recorded in the ledger as delivered, by the store."""
    job = replace(config.job(name), email=None, webhook=None, keep_files=True)
    return replace(config, jobs={**config.jobs, name: job})


def run_every_job(engine: Engine, config: Config, *, now: datetime) -> list[Path]:
    """Run each enabled job of the config once, delivering only to the outbox and the output
    folder (``outbox_only``; what ``reporter demo`` does after loading its data); the files
    stored and the outbox messages. DeliveryError when a unit failed."""
    config = outbox_only(config)
    written: list[Path] = []
    failures = []
    for name, job in config.jobs.items():
        if not job.enabled:
            continue
        for outcome in run_job(engine, config, name, now=now):
            written += [Path(p) for p in outcome.files if not p.startswith("webhook $")]
            if outcome.state == FAILED:
                failures.append(f"{name} {outcome.unit.organization} {outcome.unit.audience}: "
                                f"{outcome.error}")
    if failures:
        raise DeliveryError(f"{len(failures)} demo units failed; first: {failures[0]}")
    return written
