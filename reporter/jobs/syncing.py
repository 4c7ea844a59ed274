"""Sync before a run: copy new usage from the configured sources so a report holds the
latest requests (jobs with ``sync: true``, and the scheduler before each run)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine

from reporter.errors import ReporterError
from reporter.jobs.settings import Config
from reporter.store.sources.sync import sync_all

log = logging.getLogger(__name__)


class SyncFailed(ReporterError):
    """A source could not be read before a run; the run does not deliver a report that
    may be missing its latest usage."""


def sync_first(engine: Engine, config: Config, *, now: datetime, why: str) -> int:
    """Sync every configured source (nothing when none is configured); the rows inserted.
    SyncFailed names the first source that failed, after every source was tried."""
    if not config.sources:
        return 0
    results = sync_all(engine, config, now=now)
    for result in results:
        log.info("%s: %s", why, result.summary())
    failed = [r for r in results if r.error is not None]
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise SyncFailed(f"{why}: could not sync first: {first.error}{more}; "
                         f"nothing was delivered")
    return sum(r.inserted for r in results)
