"""Organizations and members: create, change, remove, look up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from reporter.errors import PeriodError, ReporterError, StoreError
from reporter.store import db
from reporter.store import orgs as store
from tests.helpers import load, row


def test_org_created_with_defaults_then_changed(engine: Engine) -> None:
    info = store.set_org(engine, "acme")
    assert (info.slug, info.name, info.timezone) == ("acme", "acme", "UTC")
    info = store.set_org(engine, "acme", name="Acme Corp", timezone="Asia/Kathmandu")
    assert (info.name, info.timezone) == ("Acme Corp", "Asia/Kathmandu")
    info = store.set_org(engine, "acme", name="Acme")  # the timezone stays
    assert (info.name, info.timezone) == ("Acme", "Asia/Kathmandu")
    assert store.get_org(engine, "acme") == info
    store.set_org(engine, "beta", timezone="Australia/Lord_Howe")
    assert [o.slug for o in store.list_orgs(engine)] == ["acme", "beta"]


def test_org_errors(engine: Engine) -> None:
    with pytest.raises(PeriodError, match="unknown timezone 'Mars/Base'"):
        store.set_org(engine, "acme", timezone="Mars/Base")
    with pytest.raises(StoreError, match="unknown organization 'acme'"):
        store.get_org(engine, "acme")  # nothing was created by the failed call
    with pytest.raises(ReporterError, match="slug is empty"):
        store.set_org(engine, "  ")
    with pytest.raises(ReporterError, match=r"'Acme' is not a valid organization slug"):
        store.set_org(engine, "Acme")


def test_members(engine: Engine) -> None:
    info = store.set_member(engine, "acme", "Alice@Acme.com", role="owner", name="Alice")
    assert (info.email, info.role, info.name, info.active) == ("alice@acme.com", "owner",
                                                               "Alice", True)
    store.set_member(engine, "acme", "bob@acme.com")
    store.set_member(engine, "beta", "alice@acme.com", role="admin")
    org = store.get_org(engine, "acme")
    assert [(m.email, m.role) for m in store.members(engine, org.id)] == [
        ("alice@acme.com", "owner"), ("bob@acme.com", "member")]
    # the role and the name are per organization
    beta = store.get_org(engine, "beta")
    assert [(m.email, m.role, m.name) for m in store.members(engine, beta.id)] == [
        ("alice@acme.com", "admin", None)]
    info = store.set_member(engine, "acme", "alice@acme.com", role="member")
    assert (info.role, info.name) == ("member", "Alice")


def test_member_errors(engine: Engine) -> None:
    with pytest.raises(ReporterError, match="unknown role 'boss'"):
        store.set_member(engine, "acme", "a@acme.com", role="boss")
    with pytest.raises(ReporterError, match="not an email address"):
        store.set_member(engine, "acme", "nobody")
    store.set_org(engine, "acme")
    with pytest.raises(StoreError, match="is not a member of 'acme'"):
        store.remove_member(engine, "acme", "a@acme.com")
    with pytest.raises(StoreError, match="unknown organization 'nope'"):
        store.remove_member(engine, "nope", "a@acme.com")


def test_remove_and_return(engine: Engine) -> None:
    store.set_member(engine, "acme", "frank@acme.com", role="admin")
    store.remove_member(engine, "acme", "frank@acme.com",
                        now=datetime(2024, 5, 1, tzinfo=UTC))
    org = store.get_org(engine, "acme")
    assert store.members(engine, org.id) == []
    gone = store.members(engine, org.id, include_removed=True)
    assert [(m.email, m.active, m.role) for m in gone] == [("frank@acme.com", False, "admin")]
    assert store.get_member(engine, org, "FRANK@acme.com").active is False
    store.set_member(engine, "acme", "frank@acme.com")  # back again, same role
    assert [(m.email, m.role) for m in store.members(engine, org.id)] == [
        ("frank@acme.com", "admin")]


def test_first_event_date_is_local(engine: Engine) -> None:
    load(engine, [row("a", "2024-01-31T19:00:00Z"), row("b", "2024-02-05T10:00:00Z",
                                                         email="bob@acme.com")])
    store.set_org(engine, "acme", timezone="Asia/Kolkata")
    org = store.get_org(engine, "acme")
    assert store.first_event_date(engine, org) == date(2024, 2, 1)
    bob = store.get_member(engine, org, "bob@acme.com")
    assert store.first_event_date(engine, org, bob.user_id) == date(2024, 2, 5)
    empty = store.set_org(engine, "empty")
    assert store.first_event_date(engine, empty) is None


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    """Autogenerate finds nothing to do: the code's tables are the migrated ones."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from reporter.store.schema import metadata

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    import psycopg

    from tests.conftest import PG_ADMIN, _worker

    name = f"reporter_blank_{_worker()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migration_0004_keeps_events_and_gives_each_membership_the_name(blank_url: str) -> None:
    from alembic import command

    engine = db.create(blank_url)
    try:
        config = db._alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO organizations (id, slug, name, timezone) VALUES "
                              "(1, 'acme', 'Acme', 'UTC'), (2, 'globex', 'Globex', 'UTC')"))
            conn.execute(text("INSERT INTO users (id, email, name) VALUES "
                              "(1, 'alice@acme.com', 'Alice'), (2, 'bob@acme.com', NULL)"))
            conn.execute(text("INSERT INTO memberships (organization_id, user_id, role) VALUES "
                              "(1, 1, 'owner'), (2, 1, 'member'), (1, 2, 'member')"))
            conn.execute(text(
                "INSERT INTO usage_events (id, organization_id, user_id, ts_us, model, project, "
                "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos) "
                "VALUES ('1', 1, 1, 1714557600000000, 'm', NULL, 1, 2, 0, 0, 5)"))
        db.upgrade(engine)
        inspector = inspect(engine)
        assert "name" not in {c["name"] for c in inspector.get_columns("users")}
        assert inspector.get_pk_constraint("usage_events")["constrained_columns"] == [
            "organization_id", "id"]
        with engine.connect() as conn:
            names = conn.execute(text("SELECT organization_id, user_id, name FROM memberships "
                                      "ORDER BY organization_id, user_id")).all()
            assert [tuple(r) for r in names] == [(1, 1, "Alice"), (1, 2, None), (2, 1, "Alice")]
            kept = conn.execute(text("SELECT id, organization_id, cost_nanos "
                                     "FROM usage_events")).all()
            assert [tuple(r) for r in kept] == [("1", 1, 5)]
        # the same request id in another organization is another event
        result = load(engine, [row("1", "2024-05-01T10:00:00Z", org="globex"),
                               row("1", "2024-05-01T10:00:00Z", org="acme")])
        assert (result.inserted, result.duplicate) == (1, 1)
        test_migrations_match_the_table_definitions(engine)
    finally:
        engine.dispose()
