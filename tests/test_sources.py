"""Sources: LiteLLM, Kilo Code and plain SQL tables in a real PostgreSQL database, synced
into the store (SQLite and PostgreSQL) exactly, incrementally, idempotently and safely."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from reporter import config
from reporter.config import source_settings as source
from reporter.errors import ConfigError
from reporter.report import aggregate
from reporter.store import db
from reporter.store import orgs as store
from reporter.store.sources import SourceError, SourceSettings, sync_all
from reporter.store.sources import sync_source as sync
from reporter.store.sources.common import float_usd, micro_usd, slug_of
from tests.conftest import PG_ADMIN
from tests.source_support import (
    ORG_ACME,
    ORG_INITECH,
    Kilo,
    LiteLLM,
)

pytestmark = pytest.mark.postgres  # every source here lives in the PostgreSQL server
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 20, tzinfo=UTC)


def env_for(src_url: str) -> dict[str, str]:
    return {"SRC_URL": src_url + "?application_name=reporter_sync_test"}


def gateway(**changes: Any) -> SourceSettings:
    settings = {"kind": "litellm", "url_env": "SRC_URL",
                "organization_from": "organization_alias", "project_from": "team_alias",
                "page_size": 250}
    settings.update(changes)
    return source("gateway", **settings)


def totals(engine: Engine, slug: str) -> dict[str, Any]:
    """The summary of the organization's report over all its days, as a reader sees it."""
    period = aggregate.resolve_period(engine, slug, "all", NOW)
    summary = aggregate.build(engine, slug, period, now=NOW).summary
    return {"requests": summary.requests, "cost": summary.cost_usd,
            "input": summary.input_tokens, "output": summary.output_tokens,
            "cache_read": summary.cache_read_tokens, "cache_write": summary.cache_write_tokens}


# -- conversions and settings ------------------------------------------------------------

def test_float_and_microdollar_conversions_are_exact() -> None:
    assert float_usd(0.1 + 0.2) == "0.300000000"          # repr 0.30000000000000004
    assert float_usd(0.000123) == "0.000123"
    assert float_usd(1.7e-05) == "0.000017000"
    assert float_usd(1.5e-09) == "0.000000002"             # half-even: 1.5 -> 2
    assert float_usd(2.5e-09) == "0.000000002"             # half-even: 2.5 -> 2
    assert float_usd(5e-10) == "0.000000000"
    assert float_usd(0.0) == "0.0"
    assert float_usd(12.345678901234) == "12.345678901"
    assert micro_usd(1) == "0.000001"
    assert micro_usd(123_456_789) == "123.456789"
    assert micro_usd(0) == "0"
    assert slug_of("Acme Corp.") == "acme-corp"
    assert slug_of("Zürich AG") == "zurich-ag"
    assert slug_of("ops_team.eu") == "ops_team.eu"  # already a slug: kept as it is
    assert slug_of("日本") == ""


SOURCES_YAML = """\
sources:
  gateway:
    kind: litellm
    url_env: LITELLM_DATABASE_URL
    organization: acme
    project_from: "tag:project:"
  kilo:
    kind: kilo
    url_env: KILO_DATABASE_URL
    organizations: {"9f1c0d7e-3a52-4c1b-8e6f-0a1b2c3d4e5f": acme}
    overlap_minutes: 30
  warehouse:
    kind: sql
    url_env: WAREHOUSE_URL
    query: "SELECT id, ts AS timestamp FROM usage WHERE ts >= :since;"
    page_size: 500
"""


def test_settings_parse_the_documented_block(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(SOURCES_YAML + "jobs: {}\n")
    found = config.load(path, env={}, only={"sources"}).sources
    assert list(found) == ["gateway", "kilo", "warehouse"]
    assert found["gateway"].organization == "acme"
    assert found["gateway"].project_from == "tag:project:"
    assert found["kilo"].organizations == {"9f1c0d7e-3a52-4c1b-8e6f-0a1b2c3d4e5f": "acme"}
    assert found["kilo"].overlap_minutes == 30.0
    assert found["warehouse"].query == "SELECT id, ts AS timestamp FROM usage WHERE ts >= :since"
    assert (found["warehouse"].page_size, found["gateway"].line) == (500, 3)
    with pytest.raises(SourceError, match="environment variable WAREHOUSE_URL"):
        found["warehouse"].url({})


def test_settings_problems_name_the_line_and_the_source() -> None:
    text_ = textwrap.dedent("""\
        sources:
          a:
            kind: litellm
            url_env: postgresql://me:pw@host/db
          b:
            kind: kafka
            url_env: B
          c:
            kind: sql
            url_env: C
            query: SELECT * FROM usage
            organizations: {x: y}
          d:
            kind: litellm
            url_env: D
            organization_from: team_alias
            project_from: tags
            page_size: 0
          e:
            kind: kilo
          f:
            kind: kilo
            url_env: F
            organizations: {"9f1c": Acme Corp}
        """)
    with pytest.raises(config.ConfigErrors) as caught:
        config.parse(text_ + "jobs: {}\n", Path("jobs.yaml"), {})
    assert caught.value.messages == [
        "jobs.yaml:4: source 'a': url_env must name an environment variable (letters, "
        "digits and _), not 'postgresql://me:pw@host/db'; the value itself stays in the "
        "environment",
        "jobs.yaml:3: source 'a': needs exactly one of 'organization' (a slug for every row) "
        "or 'organization_from' (organization_alias | team_alias, with 'organizations' to "
        "map their ids)",
        "jobs.yaml:6: source 'b': unknown kind 'kafka' (one of: litellm, kilo, sql)",
        "jobs.yaml:12: source 'c': unknown key 'organizations' for kind sql (known: kind, "
        "url_env, organization, query, overlap_minutes, page_size, timeout_seconds)",
        "jobs.yaml:11: source 'c': query must bind :since (e.g. WHERE ts >= :since) so a "
        "sync reads only what is new",
        "jobs.yaml:18: source 'd': 'page_size' must be an integer from 1 to 1000000, not 0",
        "jobs.yaml:17: source 'd': project_from must be team_alias, 'tag:PREFIX' or "
        "'metadata:KEY', not 'tags'",
        "jobs.yaml:20: source 'e': missing key 'url_env'",
        "jobs.yaml:24: source 'f': organizations: 9f1c 'Acme Corp' is not a valid "
        "organization slug (lowercase letters a-z, digits, '-', '_' and '.', starting with a "
        "letter or a digit, at most 100 characters)",
    ]


# -- LiteLLM ------------------------------------------------------------------------------

def test_litellm_sync_is_exact_incremental_and_idempotent(engine: Engine, src: Engine,
                                                         src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    first = litellm.rows(1500, START)
    litellm.insert(first)
    env = env_for(src_url)
    issues: list[str] = []

    result = sync(engine, gateway(), env=env, now=NOW, on_issue=issues.append)
    assert result.ok, result.error
    mapped = [r for r in first if r["user"] in ("u-alice", "u-bob", "u-carol")]
    assert (result.read, result.inserted, result.duplicate, result.rejected) == (
        1500, len(mapped), 0, 0)
    assert result.skipped == {"no email": 1500 - len(mapped)}
    assert result.pages == 6
    ghost = next(r for r in first if r["user"] == "u-ghost")
    assert (f"source 'gateway': request {ghost['request_id']}: skipped (no email): "
            f"user 'u-ghost' has no email") in issues
    nobody = next(r for r in first if r["user"] == "u-nobody")
    assert (f"source 'gateway': request {nobody['request_id']}: skipped (no email): "
            f"user 'u-nobody' has no email") in issues
    last = max(first, key=lambda r: (r["startTime"], r["request_id"]))
    assert result.watermark == (last["startTime"].replace(tzinfo=UTC), last["request_id"])
    for slug in ("acme", "globex-corp"):
        assert totals(engine, slug) == LiteLLM.expected(first, slug)
    assert totals(engine, "acme")["cost"] != sum(  # the float sum is not what we report
        (Decimal(r["spend"]) for r in mapped if r["organization_id"] == "org-1"), Decimal(0))
    period = aggregate.resolve_period(engine, "acme", "all", NOW)
    projects = {row.project for row in aggregate.build(engine, "acme", period).by_project}
    assert projects == {"search", "billing"}
    assert store.get_org(engine, "globex-corp").name == "Globex Corp"  # the alias
    bob = store.get_member(engine, store.get_org(engine, "acme"), "bob@acme.com")
    assert bob.role == "member"

    again = sync(engine, gateway(), env=env, now=NOW)
    window = [r for r in first
              if r["startTime"] >= last["startTime"] - timedelta(minutes=120)]
    assert (again.read, again.inserted, again.rejected) == (len(window), 0, 0)
    assert again.watermark == result.watermark
    assert totals(engine, "acme") == LiteLLM.expected(first, "acme")

    # new rows, a row written late inside the overlap window, one far too late for it
    second = litellm.rows(300, last["startTime"].replace(tzinfo=UTC), prefix="second")
    late = litellm.rows(1, last["startTime"].replace(tzinfo=UTC) - timedelta(minutes=5),
                        prefix="late")
    late[0].update(user="u-alice", team_id="team-a", organization_id="org-1", spend=0.1 + 0.7)
    too_late = litellm.rows(1, last["startTime"].replace(tzinfo=UTC) - timedelta(hours=3),
                            prefix="too-late")
    too_late[0].update(user="u-alice", team_id="team-a", organization_id="org-1")
    litellm.insert(second + late + too_late)
    more = sync(engine, gateway(), env=env, now=NOW)
    new = [r for r in second + late if r["user"] in ("u-alice", "u-bob", "u-carol")]
    assert (more.inserted, more.rejected, more.late) == (len(new), 0, 1)
    assert f"inserted {len(new)} (1 late), " in more.summary()
    assert more.duplicate == len([r for r in window if r in mapped])
    for slug in ("acme", "globex-corp"):
        assert totals(engine, slug) == LiteLLM.expected(first + second + late, slug)
    assert more.watermark is not None
    assert result.watermark is not None
    assert more.watermark > result.watermark


@pytest.mark.parametrize(("project_from", "projects"), [
    ("tag:project:", {"x", "y", "z"}), ("metadata:project.name", {"apollo", None})])
def test_litellm_one_organization_and_projects_from_tags_or_metadata(
        engine: Engine, src: Engine, src_url: str, project_from: str,
        projects: set[str | None]) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm.rows(40, START)
    rows[0]["metadata"] = '{"usage_object": {}, "project": {"name": "apollo"}}'
    rows[0]["user"] = "u-alice"
    litellm.insert(rows)
    result = sync(engine, gateway(organization="solo", organization_from=None,
                                  project_from=project_from), env=env_for(src_url), now=NOW)
    assert result.ok
    period = aggregate.resolve_period(engine, "solo", "all", NOW)
    report = aggregate.build(engine, "solo", period)
    assert {row.project for row in report.by_project} == projects
    # both LiteLLM organizations' rows go to the one configured
    assert report.summary.requests == result.inserted == len(
        [r for r in rows if r["user"] in ("u-alice", "u-bob", "u-carol")])


# -- Kilo Code ----------------------------------------------------------------------------

def test_kilo_sync_creates_organizations_members_and_roles(engine: Engine, src: Engine,
                                                           src_url: str) -> None:
    kilo = Kilo(src)
    kilo.setup()
    rows = kilo.rows(900, START)
    kilo.insert(rows)
    settings = source("kilo", kind="kilo", url_env="SRC_URL", page_size=200)
    result = sync(engine, settings, env=env_for(src_url), now=NOW)
    assert result.ok, result.error
    personal = [r for r in rows if r["organization_id"] is None]
    erin = [r for r in rows if r["kilo_user_id"] == "oauth/google:3" and r not in personal]
    assert result.skipped == {"personal": len(personal), "no email": len(erin)}
    assert result.inserted == 900 - len(personal) - len(erin)
    assert totals(engine, "acme-corp") == Kilo.expected(rows, ORG_ACME)
    assert totals(engine, "initech") == Kilo.expected(rows, ORG_INITECH)
    acme = store.get_org(engine, "acme-corp")
    assert acme.name == "Acme Corp."
    assert [(m.email, m.name, m.role) for m in store.members(engine, acme.id)] == [
        ("alice@acme.com", "Alice Liddell", "owner"), ("frank@acme.com", "Frank", "member")]
    initech = store.get_org(engine, "initech")
    assert [(m.email, m.role) for m in store.members(engine, initech.id)] == [
        ("dan@initech.com", "member")]

    # a member removed here stays removed; a renamed organization is renamed
    store.remove_member(engine, "acme-corp", "frank@acme.com", now=NOW)
    with src.begin() as conn:
        conn.execute(text("UPDATE organizations SET name = 'Acme Corp.' WHERE id = :i"),
                     {"i": ORG_ACME})
    more = kilo.rows(50, max(r["created_at"] for r in rows), prefix="more")
    kilo.insert(more)
    again = sync(engine, settings, env=env_for(src_url), now=NOW)
    assert again.ok
    assert again.rejected == 0
    assert totals(engine, "acme-corp") == Kilo.expected(rows + more, ORG_ACME)
    assert store.get_member(engine, acme, "frank@acme.com").active is False


def test_kilo_organizations_map_skips_the_others(engine: Engine, src: Engine,
                                                src_url: str) -> None:
    kilo = Kilo(src)
    kilo.setup()
    rows = kilo.rows(120, START)
    kilo.insert(rows)
    settings = source("kilo", kind="kilo", url_env="SRC_URL",
                              organizations={str(ORG_INITECH): "initech-inc"})
    issues: list[str] = []
    result = sync(engine, settings, env=env_for(src_url), now=NOW, on_issue=issues.append)
    acme = [r for r in rows if r["organization_id"] == ORG_ACME]
    assert result.skipped["organization not configured"] == len(acme)
    assert f"source 'kilo': usage {acme[0]['id']}: skipped (organization not configured): " \
           f"organization 'Acme Corp.' ({ORG_ACME}) is not in 'organizations'" in issues
    assert totals(engine, "initech-inc") == Kilo.expected(rows, ORG_INITECH)
    assert [o.slug for o in store.list_orgs(engine)] == ["initech-inc"]


# -- any SQL database ---------------------------------------------------------------------

WAREHOUSE_QUERY = (
    "SELECT event_id AS id, happened_at AS timestamp, org AS organization, email AS "
    "user_email, model_name AS model, repo AS project, tokens_in AS input_tokens, "
    "tokens_out AS output_tokens, usd AS cost_usd FROM warehouse_usage "
    "WHERE happened_at >= :since")


def _warehouse(src: Engine, count: int, first_id: int, start: datetime) -> list[dict[str, Any]]:
    rows = [{"event_id": first_id + i, "happened_at": start + timedelta(seconds=37 * i),
             "org": None if i % 11 == 0 else "acme", "email": None if i % 13 == 0 else
             f"user{i % 5}@acme.com", "model_name": "gpt-4o", "repo": f"repo{i % 3}",
             "tokens_in": 100 + i, "tokens_out": i,
             "usd": Decimal(f"0.{(i * 7_919) % 10**9:09d}")} for i in range(count)]
    with src.begin() as conn:
        conn.execute(text("INSERT INTO warehouse_usage VALUES (:event_id, :happened_at, :org, "
                          ":email, :model_name, :repo, :tokens_in, :tokens_out, :usd)"), rows)
    return rows


def test_sql_source_pages_any_select(engine: Engine, src: Engine, src_url: str) -> None:
    rows = _warehouse(src, 260, 1, START)
    settings = source("warehouse", kind="sql", url_env="SRC_URL",
                              query=WAREHOUSE_QUERY, page_size=64)
    result = sync(engine, settings, env=env_for(src_url), now=NOW)
    assert result.ok, result.error
    kept = [r for r in rows if r["org"] and r["email"]]
    assert result.skipped == {"no email": len([r for r in rows if not r["email"]]),
                              "no organization": len([r for r in rows
                                                      if r["email"] and not r["org"]])}
    assert (result.inserted, result.pages) == (len(kept), 5)
    assert result.watermark == (rows[-1]["happened_at"], "260")
    summary = totals(engine, "acme")
    assert summary["cost"] == sum((r["usd"] for r in kept), Decimal(0))
    assert summary["input"] == sum(r["tokens_in"] for r in kept)
    newer = _warehouse(src, 20, 1000, rows[-1]["happened_at"] + timedelta(seconds=1))
    again = sync(engine, settings, env=env_for(src_url), now=NOW)
    assert again.inserted == len([r for r in newer if r["org"] and r["email"]])


def test_sql_source_query_problems_are_one_line(engine: Engine, src: Engine,
                                               src_url: str) -> None:
    _warehouse(src, 3, 1, START)
    wrong = source("warehouse", kind="sql", url_env="SRC_URL",
                           query=WAREHOUSE_QUERY.replace("usd AS cost_usd", "usd AS cost"))
    result = sync(engine, wrong, env=env_for(src_url), now=NOW)
    assert result.error == ("source 'warehouse': the query returns unknown column(s) 'cost' "
                            "(known: cache_read_tokens, cache_write_tokens, cost_usd, id, "
                            "input_tokens, model, organization, output_tokens, project, "
                            "timestamp, user_email)")
    with src.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE writes")
    writing = source("warehouse", kind="sql", url_env="SRC_URL",
                             query=WAREHOUSE_QUERY + " AND nextval('writes') > 0")
    result = sync(engine, writing, env=env_for(src_url), now=NOW)
    assert result.error is not None
    assert "read-only transaction" in result.error
    slow = source("warehouse", kind="sql", url_env="SRC_URL", timeout_seconds=0.2,
                          query=WAREHOUSE_QUERY.replace("FROM warehouse_usage",
                                                        "FROM warehouse_usage, pg_sleep(30)"))
    result = sync(engine, slow, env=env_for(src_url), now=NOW)
    assert result.error is not None
    assert "statement timeout" in result.error
    assert "\n" not in result.error
    assert store.list_orgs(engine) == []


# -- failures: the source goes away -------------------------------------------------------

def test_outage_mid_sync_loses_nothing(engine: Engine, src: Engine, src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm.rows(1000, START)
    litellm.insert(rows)
    database = src_url.rsplit("/", 1)[1]

    def cut(page: int) -> None:
        if page == 3:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                    "datname = %s AND application_name = 'reporter_sync_test'",
                    (database,)).fetchone()
            assert killed == (1,)

    settings = gateway(page_size=100)
    broken = sync(engine, settings, env=env_for(src_url), now=NOW, on_page=cut)
    assert broken.error is not None
    assert broken.error.startswith(
        f"source 'gateway' (postgresql://postgres@127.0.0.1:5432/{database}"
        "?application_name=reporter_sync_test): ")
    assert "\n" not in broken.error
    # pages are read one ahead of the store: those already read when the line was cut
    # are stored too; the rest are not, and the watermark says how far it got
    ordered = sorted(rows, key=lambda r: (r["startTime"], r["request_id"]))
    assert 3 <= broken.pages < 10
    stored = broken.pages * 100
    assert broken.read == stored
    assert broken.watermark == (ordered[stored - 1]["startTime"].replace(tzinfo=UTC),
                                ordered[stored - 1]["request_id"])
    assert totals(engine, "acme") == LiteLLM.expected(ordered[:stored], "acme")

    resumed = sync(engine, settings, env=env_for(src_url), now=NOW)
    assert resumed.ok
    assert resumed.rejected == 0
    for slug in ("acme", "globex-corp"):
        assert totals(engine, slug) == LiteLLM.expected(rows, slug)


def test_source_down_fails_in_one_line_without_the_password(engine: Engine) -> None:
    settings = gateway()
    env = {"SRC_URL": "postgresql://reader:s3cret-pw@127.0.0.1:1/litellm"}
    result = sync(engine, settings, env=env, now=NOW)
    assert result.error is not None
    assert result.error.startswith(
        "source 'gateway' (postgresql://reader:***@127.0.0.1:1/litellm): ")
    assert "s3cret-pw" not in result.error
    assert "\n" not in result.error
    assert result.watermark is None
    assert result.read == 0
    missing = sync(engine, settings, env={}, now=NOW)
    assert missing.error == ("source 'gateway': environment variable SRC_URL (url_env) is "
                             "not set")
    with pytest.raises(ConfigError, match=r"unknown source 'nope' \(sources: gateway\)"):
        sync_all(engine, {"gateway": settings}, ["nope"])


# -- the command ---------------------------------------------------------------------------

def test_sync_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str,
                      src: Engine, src_url: str) -> None:
    from reporter.cli import main

    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm.rows(30, START)
    litellm.insert(rows)
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent("""\
        sources:
          gateway:
            kind: litellm
            url_env: LITELLM_DATABASE_URL
            organization_from: organization_alias
        jobs: {}
        """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITELLM_DATABASE_URL", src_url)
    opened: list[Engine] = []
    opener = db.open_engine
    monkeypatch.setattr(db, "open_engine",
                        lambda *a, **k: opened.append(opener(*a, **k)) or opened[-1])
    try:
        result = CliRunner().invoke(main, ["sync", "--db", db_url], prog_name="reporter")
        mapped = [r for r in rows if r["user"] in ("u-alice", "u-bob", "u-carol")]
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[:5] == ["created organization acme", "created organization globex-corp",
                             "created member alice@acme.com in acme",
                             "created member bob@acme.com in acme",
                             "created member carol@globex.com in globex-corp"]
        assert lines[5].startswith(
            f"gateway: read 30, inserted {len(mapped)}, duplicate 0, "
            f"skipped {30 - len(mapped)} (no email {30 - len(mapped)}), rejected 0, "
            "watermark 2025-03-01T")
        assert result.stderr.count("skipped (no email)") == 30 - len(mapped)
        unknown = CliRunner().invoke(main, ["sync", "nope", "--db", db_url])
        assert unknown.exit_code == 1
        assert unknown.stderr == "reporter: error: unknown source 'nope' (sources: gateway)\n"
        monkeypatch.setenv("LITELLM_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x")
        down = CliRunner().invoke(main, ["sync", "--db", db_url])
        assert down.exit_code == 1
        assert down.stderr.startswith("reporter: error: source 'gateway' "
                                      "(postgresql://u:***@127.0.0.1:1/x): ")
    finally:
        for engine in opened:
            engine.dispose()


def test_rows_the_store_refuses_are_reported_by_id(engine: Engine, src: Engine,
                                                  src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm.rows(6, START)
    for row in rows:
        row.update(user="u-alice", team_id="team-a", organization_id="org-1")
    rows[1]["model"] = ""
    rows[3]["spend"] = -0.25
    rows[4]["spend"] = float("nan")
    litellm.insert(rows)
    issues: list[str] = []
    result = sync(engine, gateway(page_size=2), env=env_for(src_url), now=NOW,
                  on_issue=issues.append)
    assert (result.read, result.inserted, result.rejected) == (6, 3, 3)
    assert issues == [
        f"source 'gateway': request {rows[1]['request_id']}: rejected: missing model",
        f"source 'gateway': request {rows[3]['request_id']}: rejected: cost_usd '-0.25' is "
        "negative",
        f"source 'gateway': request {rows[4]['request_id']}: rejected: cost_usd 'nan' is not a "
        "finite number"]
    # a refused row does not hold the watermark back: the rows after it are stored
    assert result.watermark == (rows[5]["startTime"].replace(tzinfo=UTC), rows[5]["request_id"])
    assert totals(engine, "acme")["requests"] == 3


def test_jobs_yaml_carries_the_sources(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(SOURCES_YAML + "jobs: {}\n")
    loaded = config.load(path, env={})
    assert list(loaded.sources) == ["gateway", "kilo", "warehouse"]
    assert loaded.sources == config.load(path, env={}, only={"sources"}).sources
    assert config.load(tmp_path / "jobs.yaml", env={}).sources["kilo"].overlap_minutes == 30
    path.write_text("sources:\n  gateway:\n    kind: litellm\n    url_env: X\n"
                    "    organization: acme\n    overlap_minutes: -1\njobs: {}\n")
    with pytest.raises(config.ConfigErrors) as caught:
        config.load(path, env={})
    assert caught.value.messages == [
        "jobs.yaml:6: source 'gateway': 'overlap_minutes' must be a number from 0 to 10080, "
        "not -1"]
    path.write_text("jobs: {}\n")
    assert config.load(path, env={}).sources == {}
