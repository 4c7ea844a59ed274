"""Executors: run units one after another, on a local process pool, or as Celery tasks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from reporter.config import Config
from reporter.jobs import runner
from reporter.jobs.units import Executor, Outcome, Unit
from reporter.service.celery_app import CeleryExecutor
from reporter.service.pool import LocalPool

log = logging.getLogger(__name__)


def serial(engine: Engine, config: Config, stop: threading.Event | None = None) -> Executor:
    """Every unit in this process, one after another; each starts at ``now`` advanced by
    the time the ones before it took."""
    def run(units: Sequence[Unit], force: bool, dry_run: bool,
            now: datetime) -> Iterator[Outcome]:
        clock = time.monotonic()
        for unit in units:
            if stop is not None and stop.is_set():
                return
            yield runner.execute(engine, config, unit, force=force, dry_run=dry_run,
                                 now=now + timedelta(seconds=time.monotonic() - clock))

    return run


def from_config(config: Config, db_url: str, *,
                stop: threading.Event | None = None) -> Executor:
    """The executor ``config.executor`` asks for, as a callable ``run_units`` accepts."""
    settings = config.executor
    if settings.kind == "celery":
        return CeleryExecutor(settings.broker_url,
                              timeout_seconds=config.scheduler.unit_timeout_seconds, stop=stop,
                              start_seconds=settings.start_timeout_seconds)
    return LocalPool(config, db_url, workers=settings.workers,
                     max_reports=settings.max_reports_per_worker, stop=stop)
