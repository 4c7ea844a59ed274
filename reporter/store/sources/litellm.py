"""A LiteLLM proxy's PostgreSQL database: ``"LiteLLM_SpendLogs"`` with its user, team and
organization tables, mapped by the published schema."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from reporter.errors import ReporterError
from reporter.store import orgs
from reporter.store.sources.common import (
    NO_EMAIL,
    NO_ORGANIZATION,
    Reader,
    Skip,
    SourceError,
    count,
    float_usd,
    iso,
    slug_of,
    utc,
)

log = logging.getLogger(__name__)

_SELECT = """
SELECT s."startTime", s.request_id, s.model, s.prompt_tokens, s.completion_tokens, s.spend,
       s.metadata -> 'usage_object' ->> 'cache_read_input_tokens',
       s.metadata -> 'usage_object' ->> 'cache_creation_input_tokens',
       s."user", u.user_email, {organization}, {project}
FROM "LiteLLM_SpendLogs" AS s
LEFT JOIN "LiteLLM_UserTable" AS u ON u.user_id = s."user"{joins}
WHERE {where}
ORDER BY s."startTime", s.request_id
LIMIT :limit"""
_TEAM = '\nLEFT JOIN "LiteLLM_TeamTable" AS t ON t.team_id = s.team_id'
_ORG = '\nLEFT JOIN "LiteLLM_OrganizationTable" AS o ON o.organization_id = s.organization_id'


class LiteLLMReader(Reader):
    """Reads ``"LiteLLM_SpendLogs"``: request_id, "startTime" (UTC without a zone), the
    user's email, tokens, cache tokens from the metadata's usage_object, spend (a float)."""

    what = "request"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.tag_prefix: str | None = None
        project_from: str | None = settings.project_from
        if project_from is None:
            self.project = "NULL"
        elif project_from == "team_alias":
            self.project = "t.team_alias"
        elif project_from.startswith("tag:"):
            self.project = "s.request_tags"
            self.tag_prefix = project_from[len("tag:"):]
        else:
            self.project = "s.metadata #>> CAST(:metadata_path AS text[])"
        joins = []
        if settings.organization_from == "team_alias" or project_from == "team_alias":
            joins.append(_TEAM)
        if settings.organization_from == "organization_alias":
            joins.append(_ORG)
        self.joins = "".join(joins)
        self.organization = {"team_alias": "t.team_alias",
                             "organization_alias": "o.organization_alias"}.get(
            settings.organization_from or "", "NULL")
        self.fixed_org: str | None = settings.organization
        self.slugs: dict[str, str] = {}  # alias -> our slug
        self.pending: dict[str, str] = {}  # slug -> alias, for organizations not yet named

    def check(self, dialect: str) -> None:
        """LiteLLM keeps its spend logs in PostgreSQL."""
        if dialect != "postgresql":
            raise SourceError(f"source {self.settings.name!r}: kind litellm reads a LiteLLM "
                              f"proxy's PostgreSQL database, not {dialect}")

    def _sql(self, where: str) -> str:
        return _SELECT.format(organization=self.organization, project=self.project,
                              joins=self.joins, where=where)

    def first_page(self, dialect: Any) -> str:
        """Spend logs from ``:start`` on."""
        return self._sql('s."startTime" >= :start')

    def next_page(self, dialect: Any) -> str:
        """Spend logs after (``:ts``, ``:id``)."""
        return self._sql('(s."startTime", s.request_id) > (:ts, :id)')

    def start(self, moment: datetime) -> Any:
        """Naive UTC, as "startTime" holds it."""
        return utc(moment).replace(tzinfo=None)  # "startTime" holds UTC without a zone

    def params(self) -> dict[str, Any]:
        """Extra binds of the page queries."""
        if self.settings.project_from and self.settings.project_from.startswith("metadata:"):
            return {"metadata_path": self.settings.project_from[len("metadata:"):].split(".")}
        return {}

    def _project(self, value: Any) -> Any:
        if self.tag_prefix is None:
            return value
        if isinstance(value, list):
            for tag in value:
                if isinstance(tag, str) and tag.startswith(self.tag_prefix):
                    return tag[len(self.tag_prefix):]
        return None

    def map(self, row: Any) -> dict[str, Any] | Skip:
        """A spend log as an event, or skipped when its user has no email or it has no
        organization."""
        (start, request_id, model, prompt, completion, spend, cache_read, cache_write, user,
         email, organization, project) = row
        if not email:
            return Skip(NO_EMAIL, f"user {user!r} has no email" if user else "no user")
        if self.fixed_org is not None:
            organization = self.fixed_org
        elif organization:
            slug = self.slugs.get(organization)
            if slug is None:
                slug = self.slugs[organization] = slug_of(organization)
                if slug:
                    self.pending[slug] = organization
            if not slug:
                return Skip(NO_ORGANIZATION, f"{self.settings.organization_from} "
                                             f"{organization!r} has no letter or digit")
            organization = slug
        else:
            return Skip(NO_ORGANIZATION, f"no {self.settings.organization_from}")
        if project is not None:
            project = self._project(project)
        return {
            "id": request_id,
            "timestamp": start.isoformat() + "+00:00" if start.tzinfo is None else iso(start),
            "organization": organization,
            "user_email": email,
            "model": model,
            "project": project if project is None else str(project),
            "input_tokens": count(prompt),
            "output_tokens": count(completion),
            "cache_read_tokens": count(cache_read),
            "cache_write_tokens": count(cache_write),
            "cost_usd": float_usd(spend) if isinstance(spend, float) else spend,
        }

    def before_ingest(self, engine: Engine) -> None:
        """Organizations first seen here are named by their LiteLLM alias."""
        if not self.pending:
            return
        known = {o.slug for o in orgs.list_orgs(engine)}
        for slug, alias in sorted(self.pending.items()):
            if slug not in known:
                try:
                    orgs.set_org(engine, slug, name=alias)
                except ReporterError as exc:  # a name the store refuses: keep the slug
                    log.warning("organization %s: LiteLLM's alias is not used: %s", slug, exc)
                else:
                    self.created_organizations.append(slug)
        self.pending.clear()
