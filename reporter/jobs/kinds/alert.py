"""The alert job kind: one unit per alert that holds (a subject's highest budget threshold
reached, a spike), sent once by webhook and email; the lower thresholds it covers count as
delivered with it."""

from __future__ import annotations

from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import Engine

from reporter.alerts import rules
from reporter.config import Config, JobSettings
from reporter.deliver import email, webhook
from reporter.errors import ConfigError
from reporter.jobs.kinds.base import Parcel, Request, org_slugs, recipients
from reporter.jobs.units import EMPTY, PLANNED, Outcome, Unit

#: the ledger's period name of an alert unit
PERIOD = "alert"

def _rule(job: JobSettings) -> rules.AlertSettings:
    assert job.alert is not None
    return job.alert


def message(config: Config, job: JobSettings, alert: rules.Alert, people: list[str],
            now: datetime) -> EmailMessage:
    """The alert's email: its summary as the subject, its whole text as the body."""
    msg = EmailMessage()
    summary = alert.summary
    msg["Subject"] = summary if len(summary) < 250 else summary[:249] + "\u2026"
    msg["From"] = config.email_from
    msg["To"] = ", ".join(people)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("alert", domain=email.sender_domain(config.email_from))
    msg["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to an alert
    msg.set_content(f"{alert.text}\n\n-- \nSent once by the reporter alert job {job.name!r}.\n")
    return msg


class AlertKind:
    """Alerts: what holds now for each organization, each delivered once."""

    def plan(self, engine: Engine, config: Config, job: JobSettings,
             request: Request) -> list[Unit]:
        """One unit per alert that holds at the reference moment, per organization."""
        if request.period is not None or request.first is not None or request.last:
            raise ConfigError(f"job {job.name!r} is an alert job: it has no period "
                              f"(--period, --from and --to do not apply)")
        return [Unit(job.name, slug, alert.audience, PERIOD, alert.first, alert.last,
                     request.trigger, request.scheduled_for)
                for slug in org_slugs(engine, job, request.orgs or None)
                for alert in rules.evaluate(engine, _rule(job), config.budgets.get(slug, {}),
                                            slug, request.reference, told=False)]

    def backfill(self, engine: Engine, config: Config, job: JobSettings, orgs: list[str],
                 first: date, last: date) -> list[Unit]:
        """Alerts have no past periods to deliver."""
        raise ConfigError(f"job {job.name!r} is an alert job: it has no periods to backfill")

    def waiting(self, engine: Engine, unit: Unit, now: datetime) -> str | None:
        """An alert speaks of its month or day as it stands now: it never waits."""
        return None

    def build(self, engine: Engine, config: Config, job: JobSettings, unit: Unit,
              now: datetime) -> Parcel | str:
        """The alert with today's numbers, for the webhook and the email; the empty note
        when it no longer holds (a budget raised since)."""
        alert = rules.holds(engine, _rule(job), config.budgets.get(unit.organization, {}),
                            unit.organization, unit.audience, unit.first, unit.last,
                            unit.scheduled_for or now)
        if alert is None:
            return "the condition no longer holds; nothing sent"
        parcel = Parcel(f"{unit.job}_{unit.organization}_{unit.audience}_{unit.last}",
                        covers=alert.covers)
        if job.webhook is not None:
            parcel.webhook = webhook.payload(alert.summary, alert.details)
        if job.email is not None:
            people = recipients(engine, job, unit)
            if not people:
                parcel.no_email = (f"organization {unit.organization!r} has no owners or "
                                   f"admins to send alert job {job.name!r} to")
            else:
                msg = message(config, job, alert, people, now)
                parcel.compose = lambda stored: msg
                parcel.recipients = people
        return parcel

    def describe(self, engine: Engine, config: Config, job: JobSettings, unit: Unit,
                 now: datetime) -> Outcome:
        """Where the alert would go."""
        if rules.holds(engine, _rule(job), config.budgets.get(unit.organization, {}),
                       unit.organization, unit.audience, unit.first, unit.last,
                       unit.scheduled_for or now) is None:
            return Outcome(unit, EMPTY, note="the condition no longer holds; nothing would "
                                             "be sent")
        people = recipients(engine, job, unit) if job.email else []
        hooks = (job.webhook.name,) if job.webhook else ()
        return Outcome(unit, PLANNED, files=hooks, recipients=tuple(people))


KIND = AlertKind()
