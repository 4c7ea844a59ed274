"""The ``reporter`` command line: parses options, calls the library, prints results."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine

from . import aggregate, db, demo, executors, ingest, ledger, projectid, render, runner, store
from . import config as config_module
from . import outcomes as outcomes_module
from .config import Config
from .errors import ReporterError
from .periods import NAMES, parse_date

log = logging.getLogger("reporter")
F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What every command shares: the config path, the database URL, the clock."""

    def __init__(self, config: str, db_url: str | None) -> None:
        self.config_path = Path(config)
        self.db_url = db_url
        self._engine: Engine | None = None
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        """The validated jobs file (ConfigError when it is missing or wrong)."""
        if self._config is None:
            self._config = config_module.load(self.config_path)
        return self._config

    @property
    def database_url(self) -> str:
        configured = (self._config.database if self._config is not None
                      else config_module.database_setting(self.config_path))
        return db.resolve_url(self.db_url, configured)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.open_engine(self.database_url)
        return self._engine

    def now(self) -> datetime:
        return datetime.now(UTC)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def common(func: F) -> F:
    """Add ``--config``, ``--db`` and ``-v`` to a command and hand it a Context."""

    @click.option("--config", "config", default="jobs.yaml", show_default=True,
                  metavar="PATH", help="The jobs file.")
    @click.option("--db", "db_url", default=None, metavar="URL",
                  help="Database URL (default: REPORTER_DATABASE_URL, the config's "
                       "'database', then sqlite:///reporter.db).")
    @click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
    @functools.wraps(func)
    def wrapper(config: str, db_url: str | None, verbose: int, **kwargs: Any) -> Any:
        _setup_logging(verbose)
        context = Context(config, db_url)
        try:
            return func(context, **kwargs)
        finally:
            context.close()

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"
                                           if verbose else "%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _date(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value, param.opts[0] if param.opts else str(param.name))
    except ReporterError as exc:
        raise click.BadParameter(str(exc)) from None


def period_options(func: F) -> F:
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
        try:
            return super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            click.echo(f"reporter: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("reporter: aborted", err=True)
            sys.exit(1)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ReporterError as exc:
            click.echo(f"reporter: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reporter")
def main() -> None:
    """Usage reports for AI gateway usage: ingest events, generate and deliver reports."""


@main.command("project-id")
@click.argument("path", default=".", type=click.Path(file_okay=True, dir_okay=True))
@common
def project_id_command(ctx: Context, path: str) -> None:
    """Print the project id for PATH (.kilocode/config.json, else the origin remote)."""
    found = projectid.project_id(path)
    if found is not None:
        click.echo(found)


@main.command("ingest")
@click.argument("files", nargs=-1, required=True)
@common
def ingest_command(ctx: Context, files: tuple[str, ...]) -> None:
    """Load usage events from CSV or JSONL FILES ('-' reads standard input)."""
    total = ingest.IngestResult()
    failed = False

    def show(message: str) -> None:
        click.echo(message, err=True)

    for path in files:
        try:
            result = ingest.ingest_file(ctx.engine, path, on_error=show)
        except ReporterError as exc:
            click.echo(f"reporter: error: {exc}", err=True)
            failed = True
            continue
        total.add(result)
    click.echo(f"inserted {total.inserted}, duplicate {total.duplicate}, "
               f"rejected {total.rejected}")
    if failed or total.rejected:
        sys.exit(1)


@main.command("generate")
@click.option("--org", "org", required=True, metavar="SLUG", help="The organization.")
@period_options
@click.option("--user", "member", metavar="EMAIL", help="A personal report for this member.")
@click.option("--format", "formats", default="json", show_default=True,
              help="Comma-separated formats: " + ", ".join(render.FORMATS) + ".")
@click.option("--out", "out", default="output", show_default=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--templates", default=None, type=click.Path(file_okay=False, exists=True),
              help="A folder of templates that override the shipped ones.")
@common
def generate_command(ctx: Context, org: str, period: str | None, first: date | None,
                     last: date | None, member: str | None, formats: str, out: str,
                     templates: str | None) -> None:
    """Generate one report now and print the paths written."""
    names = render.parse_formats(formats)
    engine = ctx.engine
    resolved = aggregate.resolve_period(engine, org, period, ctx.now(), first=first, last=last,
                                        member=member)
    report = aggregate.build(engine, org, resolved, member=member, now=ctx.now())
    options = render.Options(Path(templates) if templates else None)
    for path in render.write(report, names, Path(out), options):
        click.echo(str(path))


@main.group("org", cls=Group)
def org_group() -> None:
    """Manage organizations."""


@org_group.command("set")
@click.argument("slug")
@click.option("--name", help="Display name.")
@click.option("--timezone", help="IANA timezone, e.g. Europe/Berlin.")
@common
def org_set(ctx: Context, slug: str, name: str | None, timezone: str | None) -> None:
    """Create an organization or change its name or timezone."""
    info = store.set_org(ctx.engine, slug, name=name, timezone=timezone)
    click.echo(f"{info.slug}: {info.name} ({info.timezone})")


@org_group.command("list")
@common
def org_list(ctx: Context) -> None:
    """List organizations."""
    for info in store.list_orgs(ctx.engine):
        click.echo(f"{info.slug}\t{info.name}\t{info.timezone}")


@main.group("member", cls=Group)
def member_group() -> None:
    """Manage members of organizations."""


@member_group.command("set")
@click.argument("slug")
@click.argument("email")
@click.option("--role", type=click.Choice(["owner", "admin", "member"]), help="Role.")
@click.option("--name", help="Display name.")
@common
def member_set(ctx: Context, slug: str, email: str, role: str | None, name: str | None) -> None:
    """Add a member to an organization or change their role or name."""
    info = store.set_member(ctx.engine, slug, email, role=role, name=name)
    click.echo(f"{slug}: {info.email} ({info.role})")


@member_group.command("remove")
@click.argument("slug")
@click.argument("email")
@common
def member_remove(ctx: Context, slug: str, email: str) -> None:
    """Remove a member: their past usage stays in reports, they receive nothing."""
    store.remove_member(ctx.engine, slug, email, now=ctx.now())
    click.echo(f"{slug}: removed {email}")


@main.command("demo")
@click.option("--days", default=120, show_default=True, help="Days of demo usage to load.")
@click.option("--scale", default=1.0, show_default=True, help="Multiply demo activity.")
@common
def demo_command(ctx: Context, days: int, scale: float) -> None:
    """Create the database, load demo data, run every job once, print where the files are."""
    from . import demo_run

    now = ctx.now()
    demo.load(ctx.engine, now, days=days, scale=scale)
    for path in demo_run.run(ctx, now):
        click.echo(str(path))


def _run_and_print(ctx: Context, units: list[Any], *, now: datetime, force: bool,
                   dry_run: bool) -> None:
    """Run units through the configured executor: a line per unit as it ends, a progress
    bar on a terminal when there are several, then the summary; exit 1 on any failure."""
    config = ctx.config
    executor = executors.from_config(config, ctx.config_path, ctx.database_url)

    def show(outcome: Any) -> None:
        click.echo(outcomes_module.line(outcome))

    if len(units) > 1 and not dry_run and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("reports", total=len(units))

            def tick(outcome: Any) -> None:
                show(outcome)
                bar.advance(task)

            outcomes = runner.run_units(ctx.engine, config, units, now=now, force=force,
                                        dry_run=dry_run, executor=executor, progress=tick)
    else:
        outcomes = runner.run_units(ctx.engine, config, units, now=now, force=force,
                                    dry_run=dry_run, executor=executor, progress=show)
    click.echo(outcomes_module.summary(outcomes))
    if outcomes_module.failed(outcomes):
        sys.exit(1)


@main.command("run")
@click.argument("job")
@click.option("--org", "orgs", multiple=True, metavar="SLUG",
              help="Only this organization (repeatable).")
@period_options
@click.option("--force", is_flag=True, help="Regenerate and re-deliver what was delivered.")
@click.option("--dry-run", is_flag=True, help="Show what would be generated and sent; change "
                                               "nothing.")
@common
def run_command(ctx: Context, job: str, orgs: tuple[str, ...], period: str | None,
                first: date | None, last: date | None, force: bool, dry_run: bool) -> None:
    """Run a configured JOB now: its organizations, audiences, formats and deliveries."""
    config, now = ctx.config, ctx.now()
    units = runner.plan(ctx.engine, config, job, as_of=now, orgs=list(orgs) or None,
                        period=period, first=first, last=last, trigger="cli")
    _run_and_print(ctx, units, now=now, force=force, dry_run=dry_run)


@main.command("backfill")
@click.argument("job")
@click.option("--from", "first", callback=_date, required=True, metavar="DATE",
              help="First day of the range (YYYY-MM-DD).")
@click.option("--to", "last", callback=_date, required=True, metavar="DATE",
              help="Last day of the range, inclusive.")
@click.option("--org", "orgs", multiple=True, metavar="SLUG",
              help="Only this organization (repeatable).")
@click.option("--force", is_flag=True, help="Re-deliver periods already delivered.")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing.")
@common
def backfill_command(ctx: Context, job: str, first: date, last: date, orgs: tuple[str, ...],
                     force: bool, dry_run: bool) -> None:
    """Run JOB for every complete period of its kind between --from and --to."""
    config = ctx.config
    units = runner.backfill(ctx.engine, config, job, first=first, last=last,
                            orgs=list(orgs) or None)
    _run_and_print(ctx, units, now=ctx.now(), force=force, dry_run=dry_run)


@main.command("validate")
@common
def validate_command(ctx: Context) -> None:
    """Check the config file; print every problem and exit non-zero when there is one."""
    try:
        config = ctx.config
    except config_module.ConfigErrors as exc:
        for message in exc.messages:
            click.echo(message, err=True)
        sys.exit(1)
    problems = config_module.check_organizations(
        config, {o.slug for o in store.list_orgs(ctx.engine)})
    for message in problems:
        click.echo(message, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{config.path}: ok ({len(config.jobs)} jobs)")


@main.command("runs")
@click.option("--job", default=None, help="Only this job.")
@click.option("--org", default=None, metavar="SLUG", help="Only this organization.")
@click.option("--state", type=click.Choice(ledger.STATES), default=None, help="Only this state.")
@click.option("--limit", default=50, show_default=True, help="At most this many rows.")
@common
def runs_command(ctx: Context, job: str | None, org: str | None, state: str | None,
                 limit: int) -> None:
    """Show the run history, newest first."""
    for record in ledger.history(ctx.engine, job=job, organization=org, state=state,
                                 limit=limit):
        click.echo(outcomes_module.record_line(record))


@main.command("jobs")
@common
def jobs_command(ctx: Context) -> None:
    """List the configured jobs with their next run times."""
    from . import scheduler

    fires = scheduler.next_runs(ctx.config, ctx.engine, ctx.now())
    for text in outcomes_module.job_lines(ctx.config, fires):
        click.echo(text)


from .cli_service import scheduler_command, worker_command  # noqa: E402

main.add_command(scheduler_command)
main.add_command(worker_command)
