"""Engines and schema: open a database by URL and bring it to the newest migration."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from reporter.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///reporter.db"
ENV_URL = "REPORTER_DATABASE_URL"
MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x5245504F  # PostgreSQL advisory lock taken while migrating


#: ``scheme://user:password@`` at the start of a URL (``user:password@`` when it has no
#: scheme); the password runs to the last ``@``, as a person may have typed one unescaped
_URL_USERINFO = re.compile(r"^(?P<head>[^:/@]*://[^:/@]*):(?P<secret>.*)@", re.DOTALL)
_BARE_USERINFO = re.compile(r"^(?P<head>[^:/@]*):(?P<secret>.*)@", re.DOTALL)
#: the same inside free text (an error message, a log line): the scheme is required
_TEXT_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):[^\s'\"]*@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&;]password=)[^&;\s'\"]*", re.IGNORECASE)
_SECRET_MIN_LENGTH = 4  # shorter "secrets" are masked in URLs, not searched for in prose


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


def redact(text: str) -> str:
    """``text`` with every ``scheme://user:password@`` and ``password=`` value masked."""
    text = _TEXT_USERINFO.sub(r"\g<head>:***@", text)
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


def display_url(url: str | URL) -> str:
    """A database URL fit for a message or a log line: its password masked, whether or not
    the URL parses."""
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=True)
    found = _userinfo(url)
    if found:
        url = f"{found.group('head')}:***@{url[found.end():]}"
    return redact(url)


def _userinfo(url: str) -> re.Match[str] | None:
    return (_URL_USERINFO if "://" in url else _BARE_USERINFO).match(url)


def _secrets(url: str) -> list[str]:
    """The password of ``url`` as typed and as decoded, for scrubbing driver messages."""
    found = _userinfo(url)
    typed = found.group("secret") if found else ""
    return [s for s in {typed, unquote(typed)} if len(s) >= _SECRET_MIN_LENGTH]


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) with the URL's password masked."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact(text)


def _where(url: URL | str) -> str:
    """The database a message is about: a SQLite file's path, otherwise the masked URL."""
    parsed = url if isinstance(url, URL) else None
    if parsed is None:
        try:
            parsed = make_url(normalize_url(str(url)))
        except (ArgumentError, ValueError):
            return display_url(str(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(parsed.database)
    return display_url(parsed)


def failure(url: URL | str, exc: DatabaseError, doing: str = "") -> ConfigError:
    """A driver's error while using the database at ``url`` as one line that names it and
    holds no password (a file that is not a database, a server that is down...)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    reason = lines[0] if lines else type(orig).__name__
    raw = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    prefix = f"database {_where(url)}: " + (f"{doing}: " if doing else "")
    return ConfigError(prefix + scrub(reason, raw))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _parse(url: str, typed: str) -> URL:
    """``url`` parsed; ConfigError (naming ``typed``, password masked) when it is not a
    database URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database URL {display_url(typed)!r} is not a valid URL "
                          f"(expected e.g. sqlite:///reporter.db or "
                          f"postgresql://user@host/db)") from None
    except ValueError:  # int(port)
        raise ConfigError(f"database URL {display_url(typed)!r} is not a valid URL "
                          f"(a malformed host or a port that is not a number)") from None
    found = _userinfo(url)
    if found and parsed.password is not None and unquote(found.group("secret")) != str(
            parsed.password):
        raise ConfigError(f"database URL {display_url(typed)!r}: the password holds '@'; "
                          f"write it as %40")
    return parsed


def parse_url(url: str) -> URL:
    """A database URL as typed (``postgres://`` too) parsed by the store's rule: ConfigError
    in one line, password masked, for a malformed URL, a port that is not a number or a
    password holding an unescaped ``@``."""
    return _parse(normalize_url(url), url)


def _sqlite_file(parsed: URL, create: bool) -> None:
    """Check (or make room for) the file of a SQLite URL."""
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith(
            "file:"):
        return
    path = Path(parsed.database)
    if not create:
        if path.is_dir():
            raise ConfigError(f"database {path} is a folder, not a SQLite file")
        if not path.exists():
            raise ConfigError(f"database {path} does not exist (create it with "
                              f"'reporter demo', 'reporter ingest FILE' or 'reporter org set')")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"database {path}: cannot create its folder "
                          f"{exc.filename or path.parent}: {exc.strerror or exc}") from None


def create(url: str, *, new_file: bool = True, **kwargs: Any) -> Engine:
    """An Engine for ``url`` without touching the schema. A SQLite file that does not exist is
    created only when ``new_file`` is true; otherwise ConfigError says so."""
    typed, url = url, normalize_url(url)
    parsed = _parse(url, typed)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_file(parsed, new_file)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    except Exception as exc:  # driver import or option errors
        raise ConfigError(f"database URL {display_url(typed)}: {scrub(str(exc), url)}") from None


_create = create  # open_engine's ``create`` argument hides the function's name


def open_engine(url: str, *, migrate: bool = True, create: bool = True,
                **kwargs: Any) -> Engine:
    """An Engine for ``url`` whose schema is at the newest migration. ``create=False``: a
    SQLite file that does not exist is an error, not a new empty database."""
    engine = _create(url, new_file=create, **kwargs)
    if migrate:
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


def upsert(bind: Engine | Connection, table: Any) -> Any:
    """``INSERT`` into ``table`` with the ``ON CONFLICT`` clauses of the database behind
    ``bind`` (PostgreSQL or SQLite). The dialect's module is imported here, on first use: a
    report on SQLite does not load PostgreSQL's (nor asyncio, which it imports)."""
    name = bind.dialect.name
    if name not in ("postgresql", "sqlite"):
        raise StoreError(f"database {name} is not supported")
    return importlib.import_module(f"sqlalchemy.dialects.{name}").insert(table)


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


_REVISION = re.compile(r"^(down_revision|revision) = (?:\"([^\"]*)\"|None)$", re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The newest migration's revision id: the one no other migration revises. Read from the
    migration files' ``revision``/``down_revision`` lines, without loading Alembic (which
    costs every command that opens a database about 100 ms); a test checks it agrees with
    Alembic's head."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            if value:
                (revisions if name == "revision" else revised).add(value)
    heads = revisions - revised
    assert len(heads) == 1, heads
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The database's migration revision; None for a database never migrated."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Migrate to the newest schema; safe when several processes start at once."""
    try:
        if current_revision(engine) == head_revision():
            return
    except DatabaseError as exc:  # cannot connect; a file that is not a database
        doing = "cannot connect" if engine.dialect.name != "sqlite" else "cannot open"
        raise failure(engine.url, exc, doing) from None
    from alembic import command  # only when there is something to migrate

    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            cfg.attributes["connection"] = conn
            log.info("migrating %s to %s", display_url(engine.url), head_revision())
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        # another process migrated the same SQLite file at the same moment
        if current_revision(engine) != head_revision():
            raise failure(engine.url, exc, "cannot bring the schema up to date") from exc
