"""Kilo Code's cloud database: ``microdollar_usage`` with ``kilocode_users``,
``organizations`` and ``organization_memberships``; organizations, members, names and
roles are created and kept up to date as they are found."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from reporter.errors import ReporterError
from reporter.store import orgs
from reporter.store.sources.bind import Bindings, name_organizations
from reporter.store.sources.common import (
    NO_EMAIL,
    NOT_CONFIGURED,
    PERSONAL,
    Skip,
    SourceError,
    SourceReader,
    count,
    iso,
    micro_usd,
    printable,
)

log = logging.getLogger(__name__)

_SELECT = """
SELECT u.created_at, u.id, u.kilo_user_id, u.organization_id, u.model, u.project_id,
       u.input_tokens, u.output_tokens, u.cache_hit_tokens, u.cache_write_tokens, u.cost,
       k.google_user_email, k.google_user_name, m.role
FROM microdollar_usage AS u
LEFT JOIN kilocode_users AS k ON k.id = u.kilo_user_id
LEFT JOIN organization_memberships AS m
       ON m.organization_id = u.organization_id AND m.kilo_user_id = u.kilo_user_id
WHERE {where}
ORDER BY u.created_at, u.id
LIMIT :limit"""
ROLES = {"owner": "owner", "admin": "admin"}  # every other Kilo role is a plain member


class KiloReader(SourceReader):
    """Reads ``microdollar_usage``: cost in microdollars (exact), cache hit and write
    tokens, the member's Google email and name, the organization and the member's role."""

    what = "usage"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.bindings = Bindings(settings.name, settings.organizations, "organizations")
        self.seen_orgs: dict[str, str] = {}    # our slug -> Kilo's organization name
        self.seen_members: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self.done_members: set[tuple[str, str]] = set()

    def check(self, dialect: str) -> None:
        """Kilo Code keeps its data in PostgreSQL."""
        if dialect != "postgresql":
            raise SourceError(f"source {self.settings.name!r}: kind kilo reads Kilo Code's "
                              f"PostgreSQL database, not {dialect}")

    def load(self, engine: Any, now: datetime) -> None:
        """The organizations already bound to slugs."""
        super().load(engine, now)
        self.bindings.load(engine)

    def prepare(self, conn: Any) -> None:
        """Every Kilo organization's id and name, so new ones that would share a slug are
        found together."""
        self.bindings.known(conn.execute(text("SELECT id, name FROM organizations")))

    def first_page(self, dialect: Any) -> str:
        """Usage rows from ``:start`` on."""
        return _SELECT.format(where="u.created_at >= :start")

    def next_page(self, dialect: Any) -> str:
        """Usage rows after (``:ts``, ``:id``)."""
        return _SELECT.format(where="(u.created_at, u.id) > (:ts, :id)")

    def map(self, row: Any) -> dict[str, Any] | Skip:
        """A usage row as an event, or skipped: personal, not configured, no email."""
        (created_at, usage_id, kilo_user, org_id, model, project, input_tokens, output_tokens,
         cache_hit, cache_write, cost, email, name, role) = row
        if org_id is None:
            return Skip(PERSONAL)
        key = str(org_id)
        if key not in self.bindings.names:
            return Skip(NOT_CONFIGURED, f"organization {printable(key)} is not in the "
                                        f"organizations table")
        slug = self.bindings.slug(key, None)
        if isinstance(slug, Skip):
            return slug
        if not email:
            return Skip(NO_EMAIL, f"user {kilo_user!r} has no email")
        email = email.strip().lower()
        self.seen_orgs[slug] = self.bindings.names[key]
        member = (slug, email)
        if member not in self.done_members:
            shown = printable(name) if name else None  # never a raw control character
            self.seen_members[member] = (shown, ROLES.get(role, "member") if role else None)
        return {
            "id": str(usage_id),
            "timestamp": iso(created_at),
            "organization": slug,
            "user_email": email,
            "model": model,
            "project": project or None,
            "input_tokens": count(input_tokens),
            "output_tokens": count(output_tokens),
            "cache_read_tokens": count(cache_hit),
            "cache_write_tokens": count(cache_write),
            "cost_usd": micro_usd(cost) if isinstance(cost, int) else cost,
        }

    def before_ingest(self, engine: Engine) -> None:
        """Create organizations and members the page names, with Kilo's names and roles;
        a member removed here stays removed."""
        self.bindings.store(engine, self.now)
        self.created_organizations += name_organizations(engine, self.seen_orgs, "Kilo")
        self.seen_orgs.clear()
        members: dict[str, dict[str, orgs.MemberInfo]] = {}
        for (slug, email), (name, role) in sorted(self.seen_members.items()):
            if slug not in members:
                org = orgs.get_org(engine, slug)
                members[slug] = {m.email: m for m in orgs.members(engine, org.id,
                                                                  include_removed=True)}
            have = members[slug].get(email)
            changed = have is not None and have.active and (
                (role is not None and have.role != role) or (name is not None
                                                             and have.name != name))
            if have is None or changed:
                try:
                    orgs.set_member(engine, slug, email, role=role, name=name)
                    if have is None:
                        self.created_members.append((slug, email))
                except ReporterError:
                    pass  # not an address: the store rejects the row with its reason
            self.done_members.add((slug, email))
        self.seen_members.clear()
