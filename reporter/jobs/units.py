"""Units of work: one report for one (job, organization, audience or recipient, period)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

TRIGGERS = ("schedule", "cli", "backfill")

#: how a unit ended (``Outcome.state``); the first four are also the ledger's states
RUNNING = "running"
DELIVERED = "delivered"
EMPTY = "empty"
FAILED = "failed"
#: a scheduled period that was never run (past its grace period, or superseded)
MISSED = "missed"
#: delivered by an earlier run: nothing sent again
ALREADY = "already"
#: another process holds a live claim on it: not delivered by this run
HELD = "held"
#: its period is not over yet: nothing sent, nothing recorded
SKIPPED = "skipped"
#: a dry run's answer: what would be delivered
PLANNED = "planned"


@dataclass(frozen=True)
class Unit:
    """What one delivery is about; its ``key`` is unique in the run ledger.

    ``audience`` is ``"admins"``, ``"list"`` (the configured addresses) or
    ``"member:<email>"`` (a personal report).
    """

    job: str
    organization: str
    audience: str
    period_name: str
    first: date
    last: date
    trigger: str = "cli"
    scheduled_for: datetime | None = None

    @property
    def key(self) -> str:
        """The ledger's key: job, organization, audience and dates."""
        return f"{self.job}|{self.organization}|{self.audience}|{self.first}|{self.last}"

    @property
    def member(self) -> str | None:
        """The member of a personal report, else None."""
        return self.audience.split(":", 1)[1] if self.audience.startswith("member:") else None


@dataclass(frozen=True)
class Outcome:
    """How a unit ended: ``delivered``, ``already`` (delivered before), ``held`` (another
    process is working on it; not delivered by this run), ``empty`` (skip_empty and no
    usage), ``skipped`` (its period is not over yet), ``failed`` or ``planned`` (dry run)."""

    unit: Unit
    state: str
    seconds: float = 0.0
    error: str | None = None
    files: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    #: why nothing was sent, the recipients refused, or when a held unit is taken over
    note: str | None = None


#: runs units somewhere: (units, force, dry_run, now) -> their outcomes, in order, as they end
Executor = Callable[[Sequence[Unit], bool, bool, datetime], Iterable[Outcome]]
