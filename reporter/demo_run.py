"""What ``reporter demo`` runs after loading the demo data: every job of jobs.yaml, once."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from . import runner
from .errors import DeliveryError

log = logging.getLogger(__name__)


def run(ctx: Any, now: datetime) -> list[Path]:
    """Run each enabled job of the config once; the files stored and the outbox messages."""
    config, engine = ctx.config, ctx.engine
    written: list[Path] = []
    failures = []
    for name, job in config.jobs.items():
        if not job.enabled:
            continue
        units = runner.plan(engine, config, name, as_of=now, trigger="cli")
        for outcome in runner.run_units(engine, config, units, now=now):
            written += [Path(p) for p in outcome.files]
            if outcome.state == "failed":
                failures.append(f"{name} {outcome.unit.organization} {outcome.unit.audience}: "
                                f"{outcome.error}")
    if failures:
        raise DeliveryError(f"{len(failures)} demo units failed; first: {failures[0]}")
    return written
