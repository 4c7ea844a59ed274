"""What every job kind provides (``JobKind``), what a unit delivers (``Parcel``), and the
planning helpers the kinds share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from sqlalchemy import Engine

from reporter.config import Config, JobSettings
from reporter.errors import ConfigError
from reporter.jobs.units import Outcome, Unit
from reporter.store import orgs

#: a ledger ``files`` entry: what one channel delivered (``channel``, ``format``, ``path``…)
Entry = dict[str, Any]


@dataclass
class Parcel:
    """What one unit delivers, built by its job kind; ``reporter.jobs.deliveries`` hands each
    part to its channel and records each success on its own."""

    #: the name of the unit's messages in the outbox (job, organization, period, audience)
    name: str
    #: the store channel: writes the files and returns their ledger entries
    save: Callable[[], list[Entry]] | None = None
    #: the webhook channel's JSON body
    webhook: dict[str, Any] | None = None
    #: the email channel: its message, given whether the files are stored (the message says
    #: where the stored copy of an attachment left out is only when there is one)
    compose: Callable[[bool], EmailMessage] | None = None
    recipients: list[str] = field(default_factory=list)
    #: why the email channel has nothing to send although the job emails (nobody to send to)
    no_email: str | None = None
    #: how long each step of building took, in seconds
    timings: dict[str, float] = field(default_factory=dict)
    #: the audiences of other units of the same job, organization and days that this one
    #: stands for: once it is delivered they count as delivered and are never sent
    covers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """What a run asks of a kind's planner: whose units, which period, why."""

    orgs: list[str]
    as_of: datetime  # the moment the run is for (a fire's scheduled time, or now)
    reference: datetime  # the moment periods are resolved at
    period: str | None = None
    first: date | None = None
    last: date | None = None
    trigger: str = "cli"
    scheduled_for: datetime | None = None


class JobKind(Protocol):
    """One kind of job: how it plans units, what a unit delivers, and what a dry run says."""

    def plan(self, engine: Engine, config: Config, job: JobSettings,
             request: Request) -> list[Unit]:
        """The units of one run of ``job``."""

    def backfill(self, engine: Engine, config: Config, job: JobSettings, orgs: list[str],
                 first: date, last: date) -> list[Unit]:
        """The units of every past period inside ``first..last``."""

    def waiting(self, engine: Engine, unit: Unit, now: datetime) -> str | None:
        """Why ``unit`` cannot run at ``now`` yet (its period is not over), else None."""

    def build(self, engine: Engine, config: Config, job: JobSettings, unit: Unit,
              now: datetime) -> Parcel | str:
        """What ``unit`` delivers now, or why it delivers nothing (the ``empty`` note)."""

    def describe(self, engine: Engine, config: Config, job: JobSettings, unit: Unit,
                 now: datetime) -> Outcome:
        """What running ``unit`` would deliver (a dry run), changing nothing."""


def org_slugs(engine: Engine, job: JobSettings, wanted: list[str] | None) -> list[str]:
    """The organizations a run of ``job`` covers: ``wanted`` (each checked), else the job's
    own, else every organization."""
    known = [o.slug for o in orgs.list_orgs(engine)]
    if wanted:
        for slug in wanted:
            if slug not in known:
                raise ConfigError(f"job {job.name!r}: unknown organization {slug!r}")
            if job.organizations is not None and slug not in job.organizations:
                raise ConfigError(f"job {job.name!r} does not report on {slug!r}")
        return list(wanted)
    if job.organizations is None:
        return known
    for slug in job.organizations:
        if slug not in known:
            raise ConfigError(f"job {job.name!r}: unknown organization {slug!r}")
    return list(job.organizations)


def recipients(engine: Engine, job: JobSettings, unit: Unit) -> list[str]:
    """Who receives the unit now: the job's address list, the member of a personal report,
    else the active owners and admins."""
    if job.audience == "list":
        return list(job.addresses)
    org = orgs.get_org(engine, unit.organization)
    people = orgs.members(engine, org.id)
    if unit.member is not None:
        return [m.email for m in people if m.email == unit.member and m.active]
    return [m.email for m in people if m.active and m.role in ("owner", "admin")]
