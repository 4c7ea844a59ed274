"""One fire's batch: what it planned and how each unit ended, logged as it ends."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from reporter.jobs.units import FAILED, HELD, SKIPPED, Executor, Outcome, Unit

log = logging.getLogger("reporter.service.scheduler")


@dataclass
class Batch:
    """What one fire of one trigger did."""

    trigger_id: str
    scheduled_for: datetime
    planned: int
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        """How many units ended in each state."""
        return Counter(outcome.state for outcome in self.outcomes)

    @property
    def finished(self) -> bool:
        """Every unit ran to an end; otherwise (stopped, failed, or held by a process that
        may have died) the fire is owed again later, and the ledger skips what is done."""
        return len(self.outcomes) == self.planned and not any(
            outcome.state in (FAILED, HELD, SKIPPED) for outcome in self.outcomes)


def log_outcome(outcome: Outcome) -> None:
    """One log line for a unit that ended."""
    unit = outcome.unit
    level = logging.WARNING if outcome.state == FAILED else logging.INFO
    log.log(level, "job %s org %s %s period %s..%s: %s in %.2f s%s", unit.job,
            unit.organization, unit.audience, unit.first, unit.last, outcome.state,
            outcome.seconds, f": {outcome.error}" if outcome.error else "")


def logged(executor: Executor, batch: Batch | None = None) -> Executor:
    """The same executor, logging one line per unit as it ends (and counting the units
    planned into ``batch``)."""

    def execute(units: Sequence[Unit], force: bool, dry_run: bool,
                now: datetime) -> Iterator[Outcome]:
        if batch is not None:
            batch.planned = len(units)
        for outcome in executor(units, force, dry_run, now):
            log_outcome(outcome)
            yield outcome

    return execute
