"""A LiteLLM proxy's PostgreSQL database: ``"LiteLLM_SpendLogs"`` with its user, team and
organization tables, mapped by the published schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from reporter.store.sources.bind import Bindings, name_organizations
from reporter.store.sources.common import (
    NO_EMAIL,
    NO_ORGANIZATION,
    Skip,
    SourceError,
    SourceReader,
    count,
    float_usd,
    iso,
    utc,
)

_SELECT = """
SELECT s."startTime", s.request_id, s.model, s.prompt_tokens, s.completion_tokens, s.spend,
       s.metadata -> 'usage_object' ->> 'cache_read_input_tokens',
       s.metadata -> 'usage_object' ->> 'cache_creation_input_tokens',
       s."user", u.user_email, {organization_id}, {organization}, {project}
FROM "LiteLLM_SpendLogs" AS s
LEFT JOIN "LiteLLM_UserTable" AS u ON u.user_id = s."user"{joins}
WHERE {where}
ORDER BY s."startTime", s.request_id
LIMIT :limit"""
_TEAM = '\nLEFT JOIN "LiteLLM_TeamTable" AS t ON t.team_id = s.team_id'
_ORG = '\nLEFT JOIN "LiteLLM_OrganizationTable" AS o ON o.organization_id = s.organization_id'
#: per organization_from: the spend log's id column, the alias and the table listing both
_BY = {"organization_alias": ("s.organization_id", "o.organization_alias",
                              'SELECT organization_id, organization_alias '
                              'FROM "LiteLLM_OrganizationTable"'),
       "team_alias": ("s.team_id", "t.team_alias",
                      'SELECT team_id, team_alias FROM "LiteLLM_TeamTable"')}


class LiteLLMReader(SourceReader):
    """Reads ``"LiteLLM_SpendLogs"``: request_id, "startTime" (UTC without a zone), the
    user's email, tokens, cache tokens from the metadata's usage_object, spend (a float).
    An organization (or team) is bound by its id to the slug it was first stored under."""

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
        self.organization_id, self.organization, self.aliases = _BY.get(
            settings.organization_from or "", ("NULL", "NULL", ""))
        self.fixed_org: str | None = settings.organization
        self.bindings = Bindings(settings.name, settings.organizations, "organizations")
        self.seen: dict[str, str] = {}  # slug -> alias, for organizations not yet named

    def check(self, dialect: str) -> None:
        """LiteLLM keeps its spend logs in PostgreSQL."""
        if dialect != "postgresql":
            raise SourceError(f"source {self.settings.name!r}: kind litellm reads a LiteLLM "
                              f"proxy's PostgreSQL database, not {dialect}")

    def load(self, engine: Any, now: datetime) -> None:
        """The organizations already bound to slugs."""
        super().load(engine, now)
        if self.fixed_org is None:
            self.bindings.load(engine)

    def prepare(self, conn: Any) -> None:
        """Every alias of the kind rows are named by, so new ones that would share a slug
        are found together."""
        if self.fixed_org is None and self.aliases:
            self.bindings.known((key, alias) for key, alias in conn.execute(text(self.aliases))
                                if key is not None and alias)

    def _sql(self, where: str) -> str:
        return _SELECT.format(organization_id=self.organization_id,
                              organization=self.organization, project=self.project,
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
         email, organization_id, alias, project) = row
        if not email:
            return Skip(NO_EMAIL, f"user {user!r} has no email" if user
                        else "no user")
        if self.fixed_org is not None:
            organization = self.fixed_org
        elif organization_id is None or (not alias and self.settings.organizations is None):
            what = self.settings.organization_from
            return Skip(NO_ORGANIZATION, f"no {what}" if organization_id is None else
                        f"{what.split('_')[0]} {organization_id!r} has no alias")
        else:
            slug = self.bindings.slug(organization_id, alias)
            if isinstance(slug, Skip):
                return slug
            organization = slug
            self.seen[slug] = alias or ""
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
        """Keep the new bindings; organizations first seen here are named by their LiteLLM
        alias, and a renamed alias renames the organization."""
        self.bindings.store(engine, self.now)
        self.created_organizations += name_organizations(engine, self.seen, "LiteLLM")
        self.seen.clear()
