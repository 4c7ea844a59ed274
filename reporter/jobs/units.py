"""Units of work: one report for one (job, organization, audience or recipient, period)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

TRIGGERS = ("schedule", "cli", "backfill")
#: the note on an ``already`` outcome whose unit another process is working on right now
HELD = "in progress elsewhere"


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
    """How a unit ended: ``delivered``, ``already`` (delivered before), ``empty``
    (skip_empty and no usage), ``failed`` or ``planned`` (dry run)."""

    unit: Unit
    state: str
    seconds: float = 0.0
    error: str | None = None
    files: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    note: str | None = None  # why nothing was sent, refused recipients, who holds the unit


#: runs units somewhere: (units, force, dry_run, now) -> their outcomes, in order, as they end
Executor = Callable[[Sequence[Unit], bool, bool, datetime], Iterable[Outcome]]
