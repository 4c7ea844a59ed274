"""Sources as an attacker or a new user meets them: tenants kept apart, no row silently lost,
the source never written, secrets never shown, one line instead of a traceback. Real
PostgreSQL source tables; the store is SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import textwrap
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, text

from reporter import config
from reporter.config import source_settings as source
from reporter.store import orgs as store
from reporter.store.sources import SourceError
from reporter.store.sources import sync_source as sync
from reporter.store.sources.bind import Bindings, derived_slug
from reporter.store.sources.common import Skip
from tests.source_support import ORG_ACME, Kilo, LiteLLM

pytestmark = pytest.mark.postgres
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 20, tzinfo=UTC)


def env_for(src_url: str) -> dict[str, str]:
    return {"SRC_URL": src_url}


def requests(engine: Engine, slug: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM usage_events e JOIN organizations o ON o.id = "
            "e.organization_id WHERE o.slug = :s"), {"s": slug}).scalar_one())


def members(engine: Engine, slug: str) -> list[str]:
    return [m.email for m in store.members(engine, store.get_org(engine, slug).id)]


def litellm_rows(litellm: LiteLLM, n: int, start: datetime, org: str, prefix: str,
                 user: str = "u-alice") -> list[dict[str, Any]]:
    rows = litellm.rows(n, start, prefix=prefix)
    for row in rows:
        row.update(user=user, team_id=None, organization_id=org)
    return rows


def gateway(**changes: Any) -> Any:
    settings: dict[str, Any] = {"kind": "litellm", "url_env": "SRC_URL",
                                "organization_from": "organization_alias", "page_size": 50}
    settings.update(changes)
    return source("gateway", **settings)


# -- tenants kept apart --------------------------------------------------------------------

def test_litellm_aliases_differing_in_case_never_share_an_organization(
        engine: Engine, src: Engine, src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    with src.begin() as conn:
        conn.execute(text('INSERT INTO "LiteLLM_OrganizationTable" (organization_id, '
                          'organization_alias) VALUES (\'org-x\', \'Engineering\'), '
                          '(\'org-y\', \'engineering\')'))
    rows = (litellm_rows(litellm, 5, START, "org-x", "x")
            + litellm_rows(litellm, 5, START, "org-y", "y", user="u-carol")
            + litellm_rows(litellm, 5, START, "org-1", "acme"))
    litellm.insert(rows)
    issues: list[str] = []
    result = sync(engine, gateway(), env=env_for(src_url), now=NOW, on_issue=issues.append)
    assert result.ok, result.error
    assert result.skipped == {"organization conflict": 10}
    assert (f"source 'gateway': request {rows[0]['request_id']}: skipped (organization "
            "conflict): organizations org-x, org-y would all be 'engineering'; give each its "
            "slug in 'organizations'") in issues
    assert [o.slug for o in store.list_orgs(engine)] == ["acme"]
    # the fix: a map of ids, then the skipped rows read again
    mapped = gateway(organizations={"org-x": "eng-x", "org-y": "eng-y", "org-1": "acme"})
    again = sync(engine, mapped, env=env_for(src_url), now=NOW, since=START)
    assert (again.inserted, again.duplicate) == (10, 5)
    assert members(engine, "eng-x") == ["alice@acme.com"]
    assert members(engine, "eng-y") == ["carol@globex.com"]


def test_kilo_rename_keeps_the_slug_and_a_newcomer_cannot_take_it(
        engine: Engine, src: Engine, src_url: str) -> None:
    kilo = Kilo(src)
    kilo.setup()
    rows = [r for r in kilo.rows(60, START) if r["organization_id"] == ORG_ACME]
    kilo.insert(rows)
    settings = source("kilo", kind="kilo", url_env="SRC_URL", page_size=20)
    assert sync(engine, settings, env=env_for(src_url), now=NOW).ok
    before = requests(engine, "acme-corp")
    # Acme renames itself; another customer calls a new organization "Acme Corp."
    newcomer = uuid.uuid4()
    with src.begin() as conn:
        conn.execute(text("UPDATE organizations SET name = 'Acme Holdings' WHERE id = :i"),
                     {"i": ORG_ACME})
        conn.execute(text("INSERT INTO organizations (id, name) VALUES (:i, 'Acme Corp.')"),
                     {"i": newcomer})
        conn.execute(text("INSERT INTO kilocode_users (id, google_user_email, "
                          "google_user_name) VALUES ('oauth/google:9', 'mallory@evil.com', "
                          "'Mallory')"))
        conn.execute(text("INSERT INTO organization_memberships (organization_id, "
                          "kilo_user_id, role) VALUES (:i, 'oauth/google:9', 'owner')"),
                     {"i": newcomer})
    last = max(r["created_at"] for r in rows)
    theirs = [dict(r, id=uuid.uuid4(), kilo_user_id="oauth/google:9", organization_id=newcomer,
                   created_at=last - timedelta(minutes=1)) for r in rows[:5]]
    ours = [dict(r, id=uuid.uuid4(), created_at=last + timedelta(seconds=1)) for r in rows[:5]]
    kilo.insert(theirs + ours)
    issues: list[str] = []
    result = sync(engine, settings, env=env_for(src_url), now=NOW, on_issue=issues.append)
    assert result.ok, result.error
    assert result.skipped["organization conflict"] == 5
    assert any(f"organizations {newcomer}, {ORG_ACME} would all be 'acme-corp'" in i
               or f"organizations {ORG_ACME}, {newcomer} would all be 'acme-corp'" in i
               for i in issues), issues
    assert requests(engine, "acme-corp") == before + len(
        [r for r in ours if r["kilo_user_id"] != "oauth/google:3"])
    assert store.get_org(engine, "acme-corp").name == "Acme Holdings"
    assert "mallory@evil.com" not in members(engine, "acme-corp")
    assert [o.slug for o in store.list_orgs(engine)] == ["acme-corp"]


def test_an_alias_without_latin_letters_gets_a_stable_slug(engine: Engine, src: Engine,
                                                          src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    with src.begin() as conn:
        conn.execute(text('INSERT INTO "LiteLLM_OrganizationTable" (organization_id, '
                          'organization_alias) VALUES (\'org-ru\', \'Инженеры\'), '
                          '(\'org-jp\', \'開発チーム\')'))
    litellm.insert(litellm_rows(litellm, 4, START, "org-ru", "ru")
                   + litellm_rows(litellm, 3, START, "org-jp", "jp"))
    result = sync(engine, gateway(), env=env_for(src_url), now=NOW)
    assert (result.inserted, result.skipped) == (7, {})
    ru, jp = derived_slug("Инженеры", "org-ru"), derived_slug("開発チーム", "org-jp")
    assert ru.startswith("org-")
    assert ru != jp
    assert ru == derived_slug("Инженеры", "other")
    assert (requests(engine, ru), requests(engine, jp)) == (4, 3)
    assert store.get_org(engine, ru).name == "Инженеры"


# -- nothing lost --------------------------------------------------------------------------

def test_sync_creates_a_missing_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         src: Engine, src_url: str) -> None:
    from reporter.cli import main

    litellm = LiteLLM(src)
    litellm.setup()
    litellm.insert(litellm_rows(litellm, 3, START, "org-1", "a"))
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent("""\
        sources:
          gateway: {kind: litellm, url_env: SRC_URL, organization_from: organization_alias}
        jobs: {}
        """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SRC_URL", src_url)
    result = CliRunner().invoke(main, ["sync", "--db", "sqlite:///new/reporter.db"])
    assert result.exit_code == 0, result.output
    assert "gateway: read 3, inserted 3," in result.stdout
    again = CliRunner().invoke(main, ["sync", "--since", "2025-03-01", "--db",
                                      "sqlite:///new/reporter.db"])
    assert "gateway: read 3, inserted 0, duplicate 3," in again.stdout, again.output


def test_a_row_from_the_future_never_moves_the_watermark(engine: Engine, src: Engine,
                                                        src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm_rows(litellm, 6, START, "org-1", "now")
    ahead = litellm_rows(litellm, 1, NOW + timedelta(days=300), "org-1", "ahead")
    litellm.insert(rows + ahead)
    issues: list[str] = []
    result = sync(engine, gateway(), env=env_for(src_url), now=NOW, on_issue=issues.append)
    assert (result.inserted, result.skipped) == (6, {"future": 1})
    assert result.watermark == (rows[-1]["startTime"].replace(tzinfo=UTC),
                                rows[-1]["request_id"])
    assert any(ahead[0]["request_id"] in i and "skipped (future)" in i for i in issues)
    later = litellm_rows(litellm, 2, NOW - timedelta(days=1), "org-1", "later")
    litellm.insert(later)
    assert sync(engine, gateway(), env=env_for(src_url), now=NOW).inserted == 2
    # once its time has come it is stored
    assert sync(engine, gateway(), env=env_for(src_url),
                now=NOW + timedelta(days=300)).inserted == 1


def test_a_request_id_of_any_length_is_a_watermark(engine: Engine, src: Engine,
                                                  src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm_rows(litellm, 4, START, "org-1", "long")
    rows[-1]["request_id"] = "chatcmpl-" + "x" * 600
    litellm.insert(rows)
    result = sync(engine, gateway(page_size=2), env=env_for(src_url), now=NOW)
    assert result.ok, result.error
    assert result.watermark is not None
    assert result.watermark[1] == rows[-1]["request_id"]
    assert result.rejected == 1  # the store's own limit on an event id, named by the row
    again = sync(engine, gateway(page_size=2), env=env_for(src_url), now=NOW)
    assert again.ok, again.error


def test_sql_text_timestamps_with_offsets_are_paged_by_instant(
        engine: Engine, src: Engine, src_url: str) -> None:
    with src.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS text_usage")
        conn.exec_driver_sql("CREATE TABLE text_usage (id int, ts text, who text, usd text)")
        # as text '2025-03-01T09:..+02:00' sorts after '2025-03-01T08:..+00:00'; as an
        # instant it is an hour earlier
        values = [(i, (START + timedelta(minutes=i)).astimezone(
            timezone(timedelta(hours=2 if i % 2 else -5))).isoformat()) for i in range(40)]
        conn.execute(text("INSERT INTO text_usage VALUES (:i, :t, 'a@acme.com', '0.5')"),
                     [{"i": i, "t": t} for i, t in values])
    query = ("SELECT id, ts AS timestamp, who AS user_email, 'm' AS model, 1 AS input_tokens, "
             "1 AS output_tokens, CAST(usd AS numeric) AS cost_usd, '{\"a\":true}' AS project "
             "FROM text_usage WHERE CAST(ts AS timestamptz) >= :since")
    settings = source("warehouse", kind="sql", url_env="SRC_URL", query=query,
                      organization="acme", page_size=7)
    result = sync(engine, settings, env=env_for(src_url), now=NOW)
    assert result.ok, result.error
    assert (result.read, result.inserted) == (40, 40)
    assert result.watermark == (START + timedelta(minutes=39), "39")


def test_a_sqlite_source_with_unreadable_times_is_refused(engine: Engine,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE u (id int, ts text)")
        conn.executemany("INSERT INTO u VALUES (?, ?)", [
            (1, "2025-03-01T10:00:00+02:00"), (2, "2025-03-01T09:30:00Z"),
            (3, "2025-03-01 09:45:00.250")])
    query = ("SELECT id, ts AS timestamp, 'a@acme.com' AS user_email, 'm' AS model, "
             "1 AS input_tokens, 1 AS output_tokens, '0.1' AS cost_usd FROM u "
             "WHERE :since IS NOT NULL")
    settings = source("file", kind="sql", url_env="SRC_URL", query=query,
                      organization="acme", page_size=1)
    result = sync(engine, settings, env={"SRC_URL": f"sqlite:///{path}"}, now=NOW)
    assert result.ok, result.error
    assert result.inserted == 3
    assert result.watermark == (datetime(2025, 3, 1, 9, 45, 0, 250000, tzinfo=UTC), "3")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO u VALUES (4, 'last tuesday')")
    bad = sync(engine, settings, env={"SRC_URL": f"sqlite:///{path}"}, now=NOW)
    assert bad.error == ("source 'file': the query's timestamp 'last tuesday' is not a time "
                         "SQLite can read (write it as 2025-03-01T08:00:00+00:00)")


def test_a_spend_of_minus_zero_costs_nothing(engine: Engine, src: Engine,
                                            src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm_rows(litellm, 2, START, "org-1", "zero")
    rows[0]["spend"] = -0.0
    litellm.insert(rows)
    result = sync(engine, gateway(), env=env_for(src_url), now=NOW)
    assert (result.inserted, result.rejected) == (2, 0)


# -- the source is never written, secrets never shown --------------------------------------

def test_a_query_cannot_switch_off_read_only_for_later_pages(
        engine: Engine, src: Engine, src_url: str) -> None:
    with src.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE writes")
        conn.exec_driver_sql(
            "INSERT INTO warehouse_usage SELECT g, TIMESTAMPTZ '2025-03-01' + g * INTERVAL "
            "'1 minute', 'acme', 'a@acme.com', 'm', NULL, 1, 1, 0.1 FROM generate_series(1, 9) g")
    query = ("SELECT event_id AS id, happened_at AS timestamp, email AS user_email, "
             "model_name AS model, tokens_in AS input_tokens, tokens_out AS output_tokens, "
             "usd AS cost_usd FROM warehouse_usage WHERE happened_at >= :since AND "
             "set_config('default_transaction_read_only', 'off', false) = 'off' AND "
             "(current_setting('transaction_read_only') = 'on' OR nextval('writes') > 0)")
    settings = source("warehouse", kind="sql", url_env="SRC_URL", query=query,
                      organization="acme", page_size=3)
    result = sync(engine, settings, env=env_for(src_url), now=NOW)
    assert result.ok, result.error
    assert result.inserted == 9
    with src.connect() as conn:
        assert conn.execute(text("SELECT is_called FROM writes")).scalar_one() is False


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://reader:p@ss-word@127.0.0.1:1/litellm",
     "source 'gateway': the URL 'postgresql://reader:***@127.0.0.1:1/litellm': the password "
     "holds '@'; write it as %40"),
    ("postgresql://reader:secret-pw@127.0.0.1:five/litellm",
     "source 'gateway': the URL 'postgresql://reader:***@127.0.0.1:five/litellm' is not a "
     "valid URL (a malformed host or a port that is not a number)"),
    ("postgresql://reader:secret-pw@[::1/litellm",
     "source 'gateway': the URL 'postgresql://reader:***@[::1/litellm' is not a valid URL (a "
     "malformed host or a port that is not a number)"),
])
def test_bad_source_urls_are_one_line_without_the_password(engine: Engine, url: str,
                                                           expected: str) -> None:
    result = sync(engine, gateway(), env={"SRC_URL": url}, now=NOW)
    assert result.error == expected


def test_control_characters_are_escaped_in_issue_lines(engine: Engine, src: Engine,
                                                      src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    rows = litellm_rows(litellm, 2, START, "org-1", "ctl", user="u-\x1b[2Jevil\nline")
    rows[0]["request_id"] = "req-\x1b]0;pwned\x07\u202e"
    litellm.insert(rows)
    issues: list[str] = []
    result = sync(engine, gateway(), env=env_for(src_url), now=NOW, on_issue=issues.append)
    assert result.skipped == {"no email": 2}
    assert all(i.isprintable() for i in issues)
    assert ("source 'gateway': request req-\\x1b]0;pwned\\x07\\u202e: skipped (no email): "
            "user 'u-\\x1b[2Jevil\\nline' has no email") in issues
    assert result.summary().isprintable()


@pytest.mark.parametrize("value", [".nan", ".inf", "1.0e+12", "1" + "0" * 300])
def test_numbers_out_of_bounds_are_refused_at_load(tmp_path: Path, value: str) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("sources:\n  g:\n    kind: litellm\n    url_env: X\n    organization: a\n"
                    f"    overlap_minutes: {value}\n    timeout_seconds: {value}\njobs: {{}}\n")
    with pytest.raises(config.ConfigErrors) as caught:
        config.load(path, env={})
    assert len(caught.value.messages) == 2
    assert all(len(m) < 160 for m in caught.value.messages)
    assert caught.value.messages[0].startswith(
        "jobs.yaml:6: source 'g': 'overlap_minutes' must be a number from 0 to 10080, not ")


def test_two_ids_mapped_to_one_slug_are_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("sources:\n  g:\n    kind: litellm\n    url_env: X\n"
                    "    organizations: {org-a: acme, org-b: acme}\njobs: {}\n")
    with pytest.raises(config.ConfigErrors) as caught:
        config.load(path, env={})
    assert caught.value.messages == [
        "jobs.yaml:5: source 'g': organizations: ids 'org-a', 'org-b' would all be 'acme'; "
        "give each its own slug"]



def test_the_readme_read_only_role_can_sync_and_nothing_more(
        engine: Engine, src: Engine, src_url: str) -> None:
    import psycopg

    from tests.conftest import _worker

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    grants = readme.split("```sql\n", 1)[1].split("```", 1)[0]
    role, database = f"reporter_ro_{_worker()}", src_url.rsplit("/", 1)[1]
    grants = grants.replace("reporter_ro", role).replace("DATABASE litellm",
                                                         f'DATABASE "{database}"')
    with psycopg.connect(src_url, autocommit=True) as admin:
        admin.execute(f'DROP OWNED BY "{role}"' if admin.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() else "SELECT 1")
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(grants)
    litellm, kilo = LiteLLM(src), Kilo(src)
    litellm.setup()
    kilo.setup()
    litellm.insert(litellm.rows(40, START))
    kilo.insert(kilo.rows(40, START))
    host = src_url.split("@", 1)[1]
    env = {"SRC_URL": f"postgresql://{role}:change-me@{host}"}
    try:
        for settings in (gateway(project_from="team_alias"),
                         gateway(organization_from="team_alias", project_from="tag:project:"),
                         gateway(organization=None, organization_from=None,
                                 organizations={"org-1": "acme"},
                                 project_from="metadata:project"),
                         source("kilo", kind="kilo", url_env="SRC_URL")):
            result = sync(engine, settings, env=env, now=NOW, since=START)
            assert result.ok, result.error
            assert result.inserted + result.duplicate > 0
        with psycopg.connect(env["SRC_URL"]) as reader:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute('SELECT messages FROM "LiteLLM_SpendLogs"')
    finally:
        with psycopg.connect(src_url, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


def test_a_row_hours_ahead_marks_now_and_later_rows_are_still_read(
        engine: Engine, src: Engine, src_url: str) -> None:
    """A proxy's clock 20 hours fast (inside the day of slack): its row is stored, but the
    watermark stays at now, so a row written a minute later with a true clock is read."""
    litellm = LiteLLM(src)
    litellm.setup()
    litellm.insert(litellm_rows(litellm, 1, NOW - timedelta(minutes=30), "org-1", "r")
                   + litellm_rows(litellm, 1, NOW + timedelta(hours=20), "org-1", "skew"))
    first = sync(engine, gateway(), env=env_for(src_url), now=NOW)
    assert first.inserted == 2
    assert first.watermark is not None
    assert first.watermark[0] <= NOW
    litellm.insert(litellm_rows(litellm, 1, NOW + timedelta(minutes=1), "org-1", "true"))
    assert sync(engine, gateway(), env=env_for(src_url),
                now=NOW + timedelta(minutes=2)).inserted == 1


def test_since_past_the_watermark_skips_nothing(engine: Engine, src: Engine,
                                                src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    litellm.insert(litellm_rows(litellm, 1, NOW - timedelta(hours=3), "org-1", "a"))
    assert sync(engine, gateway(), env=env_for(src_url), now=NOW).inserted == 1
    litellm.insert(litellm_rows(litellm, 1, NOW - timedelta(hours=2), "org-1", "c")
                   + litellm_rows(litellm, 1, NOW - timedelta(minutes=5), "org-1", "d"))
    again = sync(engine, gateway(), env=env_for(src_url), now=NOW,
                 since=NOW - timedelta(hours=1))
    assert again.inserted == 2  # c, between the watermark and --since, is read too


def test_a_renamed_source_keeps_its_organizations(engine: Engine, src: Engine,
                                                  src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    litellm.insert(litellm_rows(litellm, 2, START, "org-1", "a"))
    assert sync(engine, gateway(), env=env_for(src_url), now=NOW).inserted == 2
    litellm.insert(litellm_rows(litellm, 1, START + timedelta(days=1), "org-1", "b"))
    renamed = source("gw", kind="litellm", url_env="SRC_URL",
                     organization_from="organization_alias", page_size=50)
    result = sync(engine, renamed, env=env_for(src_url), now=NOW)
    assert result.skipped == {}
    assert result.inserted == 1


def test_two_syncs_at_once_never_bind_one_slug_twice(engine: Engine) -> None:
    """Two processes derive the same slug for organizations of two sources before either
    stored its binding: the second to store refuses (nothing of its page is stored), and
    its next sync names the conflict."""
    first = Bindings("gateway", None, "organizations")
    second = Bindings("kilo", None, "organizations")
    first.load(engine)
    second.load(engine)
    assert first.slug("org-1", "Acme") == "acme"
    assert second.slug("1111-aaaa", "ACME") == "acme"
    first.store(engine, NOW)
    with pytest.raises(SourceError, match="took at the same moment"):
        second.store(engine, NOW)
    again = Bindings("kilo", None, "organizations")
    again.load(engine)
    refused = again.slug("1111-aaaa", "ACME")
    assert isinstance(refused, Skip)
    assert refused.reason == "organization conflict"


def test_a_name_with_control_characters_is_refused_at_the_command_line(
        cli: Callable[..., Result]) -> None:
    done = cli("member", "set", "acme", "eve@acme.com", "--name", "Eve\x1b[2J\nfake")
    assert done.exit_code == 1
    assert "control character" in done.stderr
