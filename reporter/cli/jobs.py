"""Commands over configured jobs: run, backfill, validate, runs, jobs."""

from __future__ import annotations

import sys
from datetime import date, datetime

import click

from reporter.cli import wording
from reporter.cli.app import Context, _date, common, main, period_options
from reporter.errors import ReporterError
from reporter.jobs.units import Outcome, Unit

#: the run ledger's states (``ledger.STATES``: the ledger, like every library module a command
#: uses, is imported when the command runs, so that ``reporter --help`` imports none)
RUN_STATES = ("running", "delivered", "empty", "failed")


def _run_and_print(ctx: Context, units: list[Unit], *, now: datetime, force: bool,
                   dry_run: bool) -> None:
    """Run units through the configured executor: a line per unit as it ends, a progress
    bar on a terminal when there are several, then the summary. Exit 1 when a unit failed
    or, unless it is a dry run, was held by another process (this run did not deliver it)."""
    from reporter.jobs import runner
    from reporter.service import executors  # celery: only when units run

    config = ctx.config
    executor = executors.from_config(config, ctx.database_url)

    def show(outcome: Outcome) -> None:
        click.echo(wording.line(outcome))

    if len(units) > 1 and not dry_run and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("reports", total=len(units))

            def tick(outcome: Outcome) -> None:
                show(outcome)
                bar.advance(task)

            outcomes = runner.run_units(ctx.engine, config, units, now=now, force=force,
                                        dry_run=dry_run, executor=executor, progress=tick)
    else:
        outcomes = runner.run_units(ctx.engine, config, units, now=now, force=force,
                                    dry_run=dry_run, executor=executor, progress=show)
    click.echo(wording.summary(outcomes))
    held = None if dry_run else wording.held(outcomes)
    if held is not None:
        click.echo(f"reporter: {held}", err=True)
    if wording.failed(outcomes) or held is not None:
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
    from reporter.jobs import plan, syncing

    config, now = ctx.config, ctx.now()
    if config.job(job).sync and not dry_run:
        syncing.sync_first(ctx.engine, config, now=now, why=f"job {job}")
    units = plan.plan(ctx.engine, config, job, as_of=now, orgs=list(orgs) or None,
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
    from reporter.jobs import plan, syncing

    config = ctx.config
    if config.job(job).sync and not dry_run:
        syncing.sync_first(ctx.engine, config, now=ctx.now(), why=f"job {job}")
    units = plan.backfill(ctx.engine, config, job, first=first, last=last,
                            orgs=list(orgs) or None)
    _run_and_print(ctx, units, now=ctx.now(), force=force, dry_run=dry_run)


@main.command("validate")
@common
def validate_command(ctx: Context) -> None:
    """Check the config file; print every problem and exit non-zero when there is one."""
    from reporter.jobs import config as config_module
    from reporter.store import orgs as store

    try:
        config = ctx.config
    except config_module.ConfigErrors as exc:
        for message in exc.messages:
            click.echo(message, err=True)
        sys.exit(1)
    try:
        known = {o.slug for o in store.list_orgs(ctx.engine)}
    except ReporterError as exc:  # no database yet: the file itself is still checked
        click.echo(f"{config.path}: ok ({len(config.jobs)} jobs); organizations not checked: "
                   f"{exc}")
        return
    problems = config_module.check_organizations(config, known)
    for message in problems:
        click.echo(message, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{config.path}: ok ({len(config.jobs)} jobs)")


@main.command("runs")
@click.option("--job", default=None, help="Only this job.")
@click.option("--org", default=None, metavar="SLUG", help="Only this organization.")
@click.option("--state", type=click.Choice(RUN_STATES), default=None, help="Only this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000),
              help="At most this many rows (1 to 1,000,000).")
@common
def runs_command(ctx: Context, job: str | None, org: str | None, state: str | None,
                 limit: int) -> None:
    """Show the run history, newest first."""
    from reporter.jobs import ledger

    for record in ledger.history(ctx.engine, job=job, organization=org, state=state,
                                 limit=limit):
        click.echo(wording.record_line(record))


@main.command("jobs")
@common
def jobs_command(ctx: Context) -> None:
    """List the configured jobs with their next run times."""
    from reporter.service.scheduler import next_runs

    fires = next_runs(ctx.config, ctx.engine, ctx.now())
    for text in wording.job_lines(ctx.config, fires):
        click.echo(text)


