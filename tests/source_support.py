"""Source databases for the sync tests: LiteLLM's and Kilo Code's tables, created in a
PostgreSQL database of this test process from their published columns, with realistic rows."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, text

from tests.conftest import PG_ADMIN, _worker

TABLES = ('"LiteLLM_SpendLogs"', '"LiteLLM_UserTable"', '"LiteLLM_TeamTable"',
          '"LiteLLM_OrganizationTable"', "microdollar_usage", "organization_memberships",
          "kilocode_users", "organizations", "warehouse_usage")

DDL = """
CREATE TABLE "LiteLLM_OrganizationTable" (
    organization_id text PRIMARY KEY, organization_alias text NOT NULL,
    budget_id text, metadata jsonb DEFAULT '{}', models text[] DEFAULT '{}',
    spend double precision DEFAULT 0.0, created_at timestamp(3) DEFAULT now());
CREATE TABLE "LiteLLM_TeamTable" (
    team_id text PRIMARY KEY, team_alias text, organization_id text,
    spend double precision DEFAULT 0.0, created_at timestamp(3) DEFAULT now());
CREATE TABLE "LiteLLM_UserTable" (
    user_id text PRIMARY KEY, user_alias text, team_id text, organization_id text,
    user_role text, user_email text, spend double precision DEFAULT 0.0);
CREATE TABLE "LiteLLM_SpendLogs" (
    request_id text PRIMARY KEY, call_type text NOT NULL DEFAULT 'acompletion',
    api_key text NOT NULL DEFAULT '', spend double precision NOT NULL DEFAULT 0.0,
    total_tokens integer NOT NULL DEFAULT 0, prompt_tokens integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0, "startTime" timestamp(3) NOT NULL,
    "endTime" timestamp(3) NOT NULL, "completionStartTime" timestamp(3),
    model text NOT NULL DEFAULT '', model_id text DEFAULT '', model_group text DEFAULT '',
    custom_llm_provider text DEFAULT '', api_base text DEFAULT '', "user" text DEFAULT '',
    metadata jsonb DEFAULT '{}', cache_hit text DEFAULT '', cache_key text DEFAULT '',
    request_tags jsonb DEFAULT '[]', team_id text, organization_id text, end_user text,
    requester_ip_address text, messages jsonb DEFAULT '{}', response jsonb DEFAULT '{}',
    session_id text, status text, proxy_server_request jsonb DEFAULT '{}');
CREATE INDEX "LiteLLM_SpendLogs_startTime_idx" ON "LiteLLM_SpendLogs" ("startTime");
CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), microdollars_used bigint DEFAULT 0);
CREATE TABLE kilocode_users (
    id text PRIMARY KEY, google_user_email text NOT NULL, google_user_name text NOT NULL,
    google_user_image_url text NOT NULL DEFAULT '', created_at timestamptz DEFAULT now());
CREATE TABLE organization_memberships (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), organization_id uuid NOT NULL,
    kilo_user_id text NOT NULL, role text NOT NULL, joined_at timestamptz DEFAULT now(),
    UNIQUE (organization_id, kilo_user_id));
CREATE TABLE microdollar_usage (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), kilo_user_id text NOT NULL,
    cost bigint NOT NULL, input_tokens bigint NOT NULL, output_tokens bigint NOT NULL,
    cache_write_tokens bigint NOT NULL, cache_hit_tokens bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), provider text, model text,
    requested_model text, has_error boolean NOT NULL DEFAULT false,
    organization_id uuid, project_id text);
CREATE INDEX idx_created_at ON microdollar_usage (created_at);
CREATE TABLE warehouse_usage (
    event_id bigint PRIMARY KEY, happened_at timestamptz NOT NULL, org text,
    email text, model_name text NOT NULL, repo text, tokens_in bigint NOT NULL,
    tokens_out bigint NOT NULL, usd numeric(18, 9) NOT NULL);
"""


def source_database() -> Iterator[str]:
    """A PostgreSQL database of this test process for source tables; its URL."""
    name = f"reporter_src_{_worker()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_tables(url: str) -> Engine:
    """An engine on the source database with empty LiteLLM, Kilo and warehouse tables."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {', '.join(TABLES)} CASCADE")
        conn.exec_driver_sql("DROP SEQUENCE IF EXISTS writes")
        conn.exec_driver_sql(DDL)
    return engine


def litellm_cost(spend: float) -> Decimal:
    """The contract's rule, written out independently: shortest repr, half-even, 9 places."""
    return Decimal(repr(spend)).quantize(Decimal("0.000000001"), rounding=ROUND_HALF_EVEN)


@dataclass
class LiteLLM:
    """LiteLLM's tables with two organizations, teams, users (one without an email)."""

    engine: Engine
    seed: int = 7

    def setup(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text('INSERT INTO "LiteLLM_OrganizationTable" (organization_id, '
                              'organization_alias) VALUES (:i, :a)'),
                         [{"i": "org-1", "a": "acme"}, {"i": "org-2", "a": "Globex Corp"}])
            conn.execute(text('INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, '
                              'organization_id) VALUES (:i, :a, :o)'),
                         [{"i": "team-a", "a": "search", "o": "org-1"},
                          {"i": "team-b", "a": "billing", "o": "org-1"},
                          {"i": "team-c", "a": "ops", "o": "org-2"}])
            conn.execute(text('INSERT INTO "LiteLLM_UserTable" (user_id, user_email, '
                              'user_role) VALUES (:i, :e, :r)'),
                         [{"i": "u-alice", "e": "alice@acme.com", "r": "internal_user"},
                          {"i": "u-bob", "e": "Bob@Acme.com", "r": "internal_user"},
                          {"i": "u-carol", "e": "carol@globex.com", "r": "proxy_admin"},
                          {"i": "u-ghost", "e": None, "r": "internal_user"}])

    def rows(self, count: int, start: datetime, prefix: str = "req") -> list[dict[str, Any]]:
        """``count`` realistic spend log rows from ``start``, a few seconds apart."""
        rng = random.Random(f"{self.seed}-{prefix}")
        users = [("u-alice", "team-a", "org-1"), ("u-bob", "team-b", "org-1"),
                 ("u-carol", "team-c", "org-2"), ("u-ghost", "team-a", "org-1"),
                 ("u-nobody", None, None)]
        out = []
        moment = start.replace(tzinfo=None)
        for index in range(count):
            moment += timedelta(milliseconds=rng.randrange(1, 90_000))
            user, team, org = users[0 if index % 7 == 0 else rng.randrange(len(users))]
            usage: dict[str, Any] = {"prompt_tokens": 0}
            if rng.random() < 0.6:
                usage["cache_read_input_tokens"] = rng.randrange(0, 50_000)
            if rng.random() < 0.3:
                usage["cache_creation_input_tokens"] = rng.randrange(0, 9_000)
            out.append({
                "request_id": f"chatcmpl-{prefix}-{uuid.UUID(int=rng.getrandbits(128))}",
                "spend": rng.choice([rng.random() * 0.2, rng.random() / 3e4, 0.0, 1.7e-05,
                                     0.1 + 0.2, 2.5e-9]),
                "prompt_tokens": rng.randrange(0, 120_000),
                "completion_tokens": rng.randrange(0, 4_000),
                "startTime": moment, "endTime": moment + timedelta(seconds=3),
                "model": rng.choice(["anthropic/claude-sonnet-4", "gpt-4o", "gemini-2.5-pro"]),
                "user": user, "team_id": team, "organization_id": org,
                "metadata": json.dumps({"usage_object": usage} if rng.random() < 0.9 else {}),
                "request_tags": json.dumps(["env:prod", f"project:{rng.choice('xyz')}"]),
            })
        return out

    def insert(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(
                'INSERT INTO "LiteLLM_SpendLogs" (request_id, spend, prompt_tokens, '
                'completion_tokens, total_tokens, "startTime", "endTime", model, "user", '
                'team_id, organization_id, metadata, request_tags) VALUES (:request_id, '
                ':spend, :prompt_tokens, :completion_tokens, 0, :startTime, :endTime, :model, '
                ':user, :team_id, :organization_id, CAST(:metadata AS jsonb), '
                'CAST(:request_tags AS jsonb))'), rows)

    @staticmethod
    def expected(rows: list[dict[str, Any]], org: str) -> dict[str, Any]:
        """Totals of one organization computed straight from the source rows."""
        emails = {"u-alice": "alice@acme.com", "u-bob": "bob@acme.com",
                  "u-carol": "carol@globex.com"}
        aliases = {"org-1": "acme", "org-2": "globex-corp"}
        mine = [r for r in rows if r["user"] in emails
                and aliases.get(r["organization_id"]) == org]
        usage = [json.loads(r["metadata"]).get("usage_object", {}) for r in mine]
        return {
            "requests": len(mine),
            "cost": sum((litellm_cost(r["spend"]) for r in mine), Decimal(0)),
            "input": sum(r["prompt_tokens"] for r in mine),
            "output": sum(r["completion_tokens"] for r in mine),
            "cache_read": sum(u.get("cache_read_input_tokens", 0) for u in usage),
            "cache_write": sum(u.get("cache_creation_input_tokens", 0) for u in usage),
        }


ORG_ACME = uuid.UUID("9f1c0d7e-3a52-4c1b-8e6f-0a1b2c3d4e5f")
ORG_INITECH = uuid.UUID("0b7e9d11-6f2a-4e8c-9a3b-5c4d3e2f1a09")


@dataclass
class Kilo:
    """Kilo Code's tables: two organizations, members with roles, a user without an email,
    a user who left, and personal usage."""

    engine: Engine
    seed: int = 11

    def setup(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO organizations (id, name) VALUES (:i, :n)"),
                         [{"i": ORG_ACME, "n": "Acme Corp."}, {"i": ORG_INITECH, "n": "Initech"}])
            conn.execute(text("INSERT INTO kilocode_users (id, google_user_email, "
                              "google_user_name) VALUES (:i, :e, :n)"),
                         [{"i": "oauth/google:1", "e": "alice@acme.com", "n": "Alice Liddell"},
                          {"i": "oauth/google:2", "e": "dan@initech.com", "n": "Dan Porter"},
                          {"i": "oauth/google:3", "e": "", "n": "Erin"},
                          {"i": "oauth/google:4", "e": "Frank@Acme.com", "n": "Frank"}])
            conn.execute(text("INSERT INTO organization_memberships (organization_id, "
                              "kilo_user_id, role) VALUES (:o, :u, :r)"),
                         [{"o": ORG_ACME, "u": "oauth/google:1", "r": "owner"},
                          {"o": ORG_ACME, "u": "oauth/google:3", "r": "member"},
                          {"o": ORG_INITECH, "u": "oauth/google:2", "r": "billing_manager"}])

    def rows(self, count: int, start: datetime, prefix: str = "k") -> list[dict[str, Any]]:
        rng = random.Random(f"{self.seed}-{prefix}")
        people = [("oauth/google:1", ORG_ACME), ("oauth/google:2", ORG_INITECH),
                  ("oauth/google:3", ORG_ACME), ("oauth/google:4", ORG_ACME),
                  ("oauth/google:1", None)]
        out = []
        moment = start
        for _ in range(count):
            moment += timedelta(microseconds=rng.randrange(1, 60_000_000))
            user, org = rng.choice(people)
            out.append({
                "id": uuid.UUID(int=rng.getrandbits(128)), "kilo_user_id": user,
                "cost": rng.choice([rng.randrange(0, 5_000_000), 1, 0, 999_999_999]),
                "input_tokens": rng.randrange(0, 200_000),
                "output_tokens": rng.randrange(0, 8_000),
                "cache_write_tokens": rng.randrange(0, 20_000),
                "cache_hit_tokens": rng.randrange(0, 150_000),
                "created_at": moment, "model": rng.choice(["anthropic/claude-sonnet-4",
                                                           "x-ai/grok-code-fast-1"]),
                "organization_id": org, "project_id": rng.choice([None, "kilocode", "web"]),
            })
        return out

    def insert(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO microdollar_usage (id, kilo_user_id, cost, input_tokens, "
                "output_tokens, cache_write_tokens, cache_hit_tokens, created_at, model, "
                "organization_id, project_id) VALUES (:id, :kilo_user_id, :cost, "
                ":input_tokens, :output_tokens, :cache_write_tokens, :cache_hit_tokens, "
                ":created_at, :model, :organization_id, :project_id)"), rows)

    @staticmethod
    def expected(rows: list[dict[str, Any]], org: uuid.UUID) -> dict[str, Any]:
        """Totals of one organization straight from the rows (Erin has no email)."""
        mine = [r for r in rows if r["organization_id"] == org
                and r["kilo_user_id"] != "oauth/google:3"]
        return {
            "requests": len(mine),
            "cost": sum((Decimal(r["cost"]) / 1_000_000 for r in mine), Decimal(0)),
            "input": sum(r["input_tokens"] for r in mine),
            "output": sum(r["output_tokens"] for r in mine),
            "cache_read": sum(r["cache_hit_tokens"] for r in mine),
            "cache_write": sum(r["cache_write_tokens"] for r in mine),
        }


def now_utc() -> datetime:
    return datetime.now(UTC)
