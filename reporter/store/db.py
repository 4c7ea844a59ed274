"""Engines and schema: open a database by URL and bring it to the newest migration."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from reporter.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///reporter.db"
ENV_URL = "REPORTER_DATABASE_URL"
MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x5245504F  # PostgreSQL advisory lock taken while migrating


def resolve_url(cli_url: str | None, config_url: str | None = None) -> str:
    """``--db``, then ``REPORTER_DATABASE_URL``, then the config file, then the default."""
    return cli_url or os.environ.get(ENV_URL) or config_url or DEFAULT_URL


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create(url: str, **kwargs: Any) -> Engine:
    """An Engine for ``url`` without touching the schema."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database URL {url!r} is not a valid URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - driver import or option errors
        raise ConfigError(f"database URL {parsed.render_as_string()}: {exc}") from None


def open_engine(url: str, *, migrate: bool = True, **kwargs: Any) -> Engine:
    """An Engine for ``url`` whose schema is at the newest migration."""
    engine = create(url, **kwargs)
    if migrate:
        upgrade(engine)
    return engine


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Migrate to the newest schema; safe when several processes start at once."""
    from alembic import command

    try:
        if current_revision(engine) == head_revision():
            return
    except OperationalError as exc:
        raise ConfigError(f"database {engine.url.render_as_string()}: cannot connect: "
                          f"{str(exc.orig).strip().splitlines()[0]}") from None
    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            cfg.attributes["connection"] = conn
            log.info("migrating %s to %s", engine.url.render_as_string(), head_revision())
            command.upgrade(cfg, "head")
    except OperationalError:
        # another process migrated the same SQLite file at the same moment
        if current_revision(engine) != head_revision():
            raise
