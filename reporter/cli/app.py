"""The command group and what every command shares: options, context, one-line errors."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reporter.errors import ReporterError
from reporter.periods import NAMES, parse_date

if TYPE_CHECKING:  # the library is imported by the commands that use it: --help needs none
    from sqlalchemy import Engine
    from sqlalchemy.exc import DatabaseError

    from reporter.config import Config

log = logging.getLogger("reporter")
F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What every command shares: the config path, the database URL, the clock.

    ``create_database``: whether the command may create a SQLite file that does not exist
    (commands that only read say that it does not exist instead).
    """

    def __init__(self, config: str, db_url: str | None, *, create_database: bool = True) -> None:
        self.config_path = Path(config)
        self.db_url = db_url
        self.create_database = create_database
        self._engine: Engine | None = None
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        """The validated jobs file (ConfigError when it is missing or wrong)."""
        if self._config is None:
            from reporter import config as config_module

            self._config = config_module.load(self.config_path)
        return self._config

    @property
    def database_url(self) -> str:
        """``--db``, then REPORTER_DATABASE_URL, then the config's ``database``, then the
        default."""
        from reporter.store import db

        if self.db_url or os.environ.get(db.ENV_URL):
            return db.resolve_url(self.db_url, None)  # the file is not read for it
        configured = (self._config.database if self._config is not None
                      else self.sections("database").database
                      if self.config_path.exists() else None)
        return db.resolve_url(self.db_url, configured)

    def sections(self, *names: str) -> Config:
        """Only these sections of the jobs file (and defaults for the rest), for commands
        that use no job: a problem in a job does not stop them."""
        if self._config is not None:
            return self._config
        from reporter import config as config_module

        return config_module.load(self.config_path, only=names)

    @property
    def engine(self) -> Engine:
        """The database, opened and migrated on first use (created only when the command
        may create it)."""
        if self._engine is None:
            from reporter.store import db

            self._engine = db.open_engine(self.database_url, create=self.create_database)
        return self._engine

    def now(self) -> datetime:
        """The current time (UTC); tests replace the clock here."""
        return datetime.now(UTC)

    def close(self) -> None:
        """Dispose of the engine, if one was opened."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


#: commands that write to the database and so may create a SQLite file that does not exist
#: yet, for those not marked ``@creates_database``; every other command only reads and says
#: the file is missing
CREATES_DATABASE = frozenset({"ingest", "org set", "member set", "demo", "run", "backfill"})
DEFAULT_CONFIG = "jobs.yaml"
#: the environment variable naming the jobs file when ``--config`` is not given
CONFIG_ENV = "REPORTER_CONFIG"
_SHARED = "reporter.shared_options"


def _command_name(ctx: click.Context) -> str:
    """``org set`` for ``reporter org set``: the names below the top-level group."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def _shared_options(func: F) -> F:
    """``--config``, ``--db`` and ``-v``: on the group (``reporter --db URL run JOB``) and on
    every command (``reporter run JOB --db URL``); the command's own value wins."""
    func = click.option("-v", "--verbose", count=True,
                        help="More log output (-vv for debug).")(func)
    func = click.option("--db", "db_url", default=None, metavar="URL",
                        help="Database URL (default: REPORTER_DATABASE_URL, the config's "
                             "'database', then sqlite:///reporter.db).")(func)
    return click.option("--config", "config", default=None, metavar="PATH",
                        help=f"The jobs file (default: {CONFIG_ENV}, then {DEFAULT_CONFIG}; "
                             f"only the default may be absent).")(func)


def config_path(given: str | None) -> str:
    """The jobs file a command reads: ``--config``, then REPORTER_CONFIG, then the default
    ``./jobs.yaml``. A file that was named and does not exist is an error before anything
    is read or written (a misspelt name must not fall back to a local SQLite database);
    only the default may be absent."""
    named, source = ((given, "--config") if given
                     else (os.environ.get(CONFIG_ENV) or None, CONFIG_ENV))
    if named is None:
        return DEFAULT_CONFIG
    path = Path(named)
    if not path.exists():
        raise ReporterError(f"{source} {named}: no such file")
    if path.is_dir():
        raise ReporterError(f"{source} {named}: is a folder, not a jobs file")
    return named


def creates_database(func: F) -> F:
    """Mark a command as one that may create a SQLite database that does not exist yet
    (put it below ``@common``)."""
    func.__dict__["creates_database"] = True
    return func


def common(func: F) -> F:
    """Add ``--config``, ``--db`` and ``-v`` to a command and hand it a Context.

    A command may create a missing SQLite file when it is marked ``@creates_database`` (or
    named in CREATES_DATABASE); the others say the file does not exist. Database failures
    that are not bugs (a file that is not a database, a server gone away) become one line
    naming the database.
    """
    creates = bool(func.__dict__.get("creates_database"))

    @_shared_options
    @functools.wraps(func)
    def wrapper(config: str | None, db_url: str | None, verbose: int, **kwargs: Any) -> Any:
        click_ctx = click.get_current_context()
        shared = click_ctx.meta.get(_SHARED, {})
        config = config_path(config or shared.get("config"))
        db_url = db_url or shared.get("db_url")
        _setup_logging(verbose + shared.get("verbose", 0))
        context = Context(config, db_url, create_database=creates
                          or _command_name(click_ctx) in CREATES_DATABASE)
        try:
            return func(context, **kwargs)
        except Exception as exc:
            from sqlalchemy.exc import DatabaseError

            from reporter.store import db

            if not isinstance(exc, DatabaseError) or not _environmental(exc):
                raise
            log.debug("database error", exc_info=True)
            raise db.failure(context.database_url, exc) from exc
        finally:
            context.close()

    return wrapper  # type: ignore[return-value]


def _reject_nul(args: list[str]) -> None:
    """No argument of any command may hold a NUL byte (no path, name, address or URL can; an
    operating system cannot even pass one): a usage error, before anything is parsed."""
    for number, arg in enumerate(args, start=1):
        if "\0" in arg:
            from reporter.store import db

            shown = db.display_url(arg.replace("\0", "\\0"))
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise click.UsageError(f"argument {number} ({shown}) holds a NUL byte")


def _environmental(exc: DatabaseError) -> bool:
    """A driver error that is the database's state, not a bug: no connection, a lock held
    too long, a file that is not (or no longer) a database."""
    from sqlalchemy.exc import DatabaseError, OperationalError

    return isinstance(exc, OperationalError) or type(exc) is DatabaseError


class RedactingFormatter(logging.Formatter):
    """Formats a record, its traceback included, with every URL password masked."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, passwords masked."""
        from reporter.store import db

        return db.redact(super().format(record))


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"
                                            if verbose else "%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # one command's level never outlives it (``reporter scheduler`` raises reporter's own)
    logging.getLogger("reporter").setLevel(logging.NOTSET)


def _date(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value, param.opts[0] if param.opts else str(param.name))
    except ReporterError as exc:
        raise click.BadParameter(str(exc)) from None


def period_options(func: F) -> F:
    """Add ``--period``, ``--from`` and ``--to`` (dates checked as they are parsed)."""
    func = click.option("--to", "last", callback=_date, metavar="DATE",
                        help="Last day, inclusive (YYYY-MM-DD).")(func)
    func = click.option("--from", "first", callback=_date, metavar="DATE",
                        help="First day (YYYY-MM-DD).")(func)
    return click.option("--period", metavar="NAME",
                        help=f"One of: {', '.join(NAMES)}.")(func)


class Group(click.Group):
    """Turns a ReporterError or a usage error into one line on stderr and exit status 1 or 2."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the command line; usage errors become one line and exit status 2."""
        try:
            _reject_nul(list(sys.argv[1:] if args is None else args))
            return super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            click.echo(f"reporter: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("reporter: aborted", err=True)
            sys.exit(1)

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the subcommand; a ReporterError becomes one line and exit status 1."""
        try:
            return super().invoke(ctx)
        except ReporterError as exc:
            click.echo(f"reporter: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reporter")
@_shared_options
@click.pass_context
def main(ctx: click.Context, config: str | None, db_url: str | None, verbose: int) -> None:
    """Usage reports for AI gateway usage: ingest events, generate and deliver reports."""
    ctx.meta[_SHARED] = {"config": config, "db_url": db_url, "verbose": verbose}


