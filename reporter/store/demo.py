"""Demo data: a deterministic generator of organizations, members and usage events."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from reporter import money
from reporter.errors import ReporterError
from reporter.periods import local_midnight, zone
from reporter.store import db, orgs
from reporter.store.ingest import IngestResult, ingest_rows
from reporter.store.schema import memberships, organizations, usage_events, users

log = logging.getLogger(__name__)

#: model id -> (USD per million input tokens, USD per million output tokens)
MODELS: dict[str, tuple[int, int]] = {
    "anthropic/claude-sonnet-4": (3, 15),
    "openai/gpt-5": (1, 10),
    "x-ai/grok-code-fast-1": (0, 2),
    "mistralai/codestral-2508": (0, 1),
    "openai/gpt-4": (30, 60),
}
#: how every demo usage event's id begins
EVENT_PREFIX = "demo-"
PROJECTS = ("example-repo", "billing-service", "mobile-app", "data-pipeline", None)


@dataclass(frozen=True)
class DemoMember:
    """A demo member: address, name, role and how busy they are."""

    email: str
    name: str
    role: str
    activity: float  # mean requests per working day; 0 means never uses it
    removed: bool = False


@dataclass(frozen=True)
class DemoOrg:
    """A demo organization and its members."""

    slug: str
    name: str
    timezone: str
    members: tuple[DemoMember, ...]


def _members(domain: str, people: list[tuple[str, str, float]]) -> tuple[DemoMember, ...]:
    roles = ["owner", "admin"] + ["member"] * len(people)
    out = []
    for index, (first, last, activity) in enumerate(people):
        out.append(DemoMember(f"{first.lower()}@{domain}", f"{first} {last}", roles[index],
                              activity, removed=activity < 0))
    return tuple(out)


ORGS = (
    DemoOrg("acme", "Acme Corp", "America/New_York", _members("acme.com", [
        ("Alice", "Anders", 14), ("Bob", "Baker", 6), ("Carol", "Chen", 22),
        ("Dave", "Diaz", 9), ("Erin", "Evans", 0), ("Frank", "Fischer", -4)])),
    DemoOrg("globex", "Globex GmbH", "Europe/Berlin", _members("globex.de", [
        ("Greta", "Gruber", 10), ("Hans", "Huber", 3), ("Ines", "Iglesias", 17),
        ("Jonas", "Jung", 0)])),
    DemoOrg("initech", "Initech India", "Asia/Kolkata", _members("initech.in", [
        ("Kavya", "Kumar", 8), ("Lakshmi", "Lal", 12), ("Manoj", "Mehta", 5)])),
    DemoOrg("himalaya", "Himalaya Labs", "Asia/Kathmandu", _members("himalaya.np", [
        ("Nima", "Sherpa", 6), ("Om", "Thapa", 2)])),
)


def _cost_nanos(model: str, inp: int, out: int) -> int:
    price_in, price_out = MODELS[model]
    # prices are per million tokens: nanos = tokens * USD/M * 1e9 / 1e6
    return inp * price_in * 1000 + out * price_out * 1000 + (inp % 7)


def _usd(nanos: int) -> str:
    return money.format_usd(nanos, money.MAX_DECIMALS)


def event(rng: random.Random, event_id: str, moment: datetime, org: str, email: str,
          model: str | None = None) -> dict[str, Any]:
    """One realistic usage event as an ingest row."""
    model = model or rng.choices(list(MODELS), weights=(5, 3, 2, 2, 1))[0]
    inp = int(rng.lognormvariate(8, 1.1))
    out = int(rng.lognormvariate(6.5, 1.0))
    cached = rng.random() < 0.35
    return {
        "id": event_id,
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "organization": org,
        "user_email": email,
        "model": model,
        "project": rng.choice(PROJECTS) or "",
        "input_tokens": str(inp),
        "output_tokens": str(out),
        "cache_read_tokens": str(int(inp * rng.uniform(0.2, 0.9))) if cached else "",
        "cache_write_tokens": str(int(inp * rng.uniform(0, 0.2))) if cached else "",
        "cost_usd": _usd(_cost_nanos(model, inp, out)),
    }


def demo_events(org: DemoOrg, first: date, last: date, seed: int = 7,
                scale: float = 1.0) -> Iterator[dict[str, Any]]:
    """The events of ``org`` between two dates; each day is generated from its own seed,
    so a later run produces the same events for the days it shares with an earlier one."""
    tz = zone(org.timezone)
    day = first
    while day <= last:
        rng = random.Random(f"{seed}:{org.slug}:{day.isoformat()}")
        weekend = day.weekday() >= 5
        start = local_midnight(day, tz)
        for member in org.members:
            activity = abs(member.activity) * scale * (0.15 if weekend else 1.0)
            if activity == 0 or (member.removed and day > last - timedelta(days=45)):
                continue
            count = max(0, int(rng.gauss(activity, activity / 3)))
            for number in range(count):
                hour = min(23.99, max(0.0, rng.gauss(14, 3.5)))
                moment = start + timedelta(hours=hour)
                event_id = f"{EVENT_PREFIX}{org.slug}-{day.isoformat()}-{member.email}-{number}"
                yield event(rng, event_id, moment.astimezone(UTC), org.slug, member.email)
        day += timedelta(days=1)


def check_only_demo(engine: Engine, url: str) -> None:
    """ReporterError unless the database is empty or holds nothing but demo data: no other
    organization, no member the demo did not make, no usage event it did not generate. The
    demo must never mix its rows into real ones nor mail real people."""
    demo_orgs = {org.slug: {m.email for m in org.members} for org in ORGS}
    settings = {org.slug: (org.name, org.timezone) for org in ORGS}
    with engine.connect() as conn:
        other_org = conn.scalar(select(organizations.c.slug)
                                .where(organizations.c.slug.not_in(list(demo_orgs))).limit(1))
        for slug, name, timezone in conn.execute(
                select(organizations.c.slug, organizations.c.name, organizations.c.timezone)):
            if other_org is None and settings.get(slug, (name, timezone)) != (name, timezone):
                other_org = slug  # set up by someone: the demo would overwrite it
        other_member = None
        for slug, email in conn.execute(
                select(organizations.c.slug, users.c.email)
                .join(memberships, memberships.c.organization_id == organizations.c.id)
                .join(users, users.c.id == memberships.c.user_id)):
            if email not in demo_orgs.get(slug, set()):
                other_member = f"member {email} of {slug}"
                break
        other_event = conn.scalar(select(usage_events.c.id)
                                  .where(usage_events.c.id.not_like(f"{EVENT_PREFIX}%")).limit(1))
    found = (f"organization {other_org!r}" if other_org is not None else other_member
             or (f"usage event {other_event!r}" if other_event is not None else None))
    if found is not None:
        raise ReporterError(
            f"the database {db.display_url(url)} holds data that is not the demo's ({found}); "
            f"the demo runs only on an empty or demo-only database: name one with --db "
            f"(e.g. --db sqlite:///demo.db)")


def load(engine: Engine, now: datetime, *, days: int = 120, seed: int = 7,
         scale: float = 1.0) -> IngestResult:
    """Create the demo organizations and members and ingest ``days`` days of usage up to now."""
    result = IngestResult()
    for org in ORGS:
        orgs.set_org(engine, org.slug, name=org.name, timezone=org.timezone)
        for member in org.members:
            orgs.set_member(engine, org.slug, member.email, role=member.role, name=member.name)
        today = now.astimezone(zone(org.timezone)).date()
        rows = ((n, row) for n, row in enumerate(
            demo_events(org, today - timedelta(days=days - 1), today, seed, scale), start=1))
        # only the part of today that has already happened
        cutoff = now.astimezone(UTC)
        past = ((n, row) for n, row in rows
                if datetime.fromisoformat(row["timestamp"]) <= cutoff)
        result.add(ingest_rows(engine, past, f"demo:{org.slug}"))
        for member in org.members:
            if member.removed:
                orgs.remove_member(engine, org.slug, member.email, now=now)
    log.info("demo data: %d inserted, %d already present", result.inserted, result.duplicate)
    return result


def synthetic_events(count: int, first: date, days: int, *, org: str = "bench",
                     members: int = 50, seed: int = 42) -> Iterator[dict[str, Any]]:
    """``count`` events spread over ``days`` days for benchmarks (fixed seed)."""
    rng = random.Random(seed)
    emails = [f"user{n:04d}@{org}.example" for n in range(members)]
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    span = days * 86_400
    for number in range(count):
        moment = start + timedelta(seconds=rng.random() * span)
        yield event(rng, f"{org}-{seed}-{number}", moment, org, rng.choice(emails))
