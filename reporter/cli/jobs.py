"""Commands over configured jobs: run, backfill, validate, runs, jobs."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING

import click

from reporter.cli import wording
from reporter.cli.app import Context, _date, common, main, period_options
from reporter.errors import ReporterError

if TYPE_CHECKING:  # the library is imported by the commands that use it
    from reporter.config import Config
    from reporter.jobs import run
    from reporter.jobs.units import Outcome

#: the ledger's states (``reporter.jobs.ledger.STATES``; a test keeps them equal), here so
#: that ``--help`` imports no database code
RUN_STATES = ("running", "delivered", "empty", "failed", "missed")


def _run_and_print(ctx: Context, job: str, span: run.Span, *, now: datetime, force: bool,
                   dry_run: bool, config: Config | None = None) -> None:
    """Run units through the configured executor: a line per unit as it ends, a progress
    bar on a terminal when there are several, then the summary. Exit 1 when a unit failed
    or, unless it is a dry run, was held by another process (this run did not deliver it).
    A ``config`` changed from the file's runs in this process (workers read the file)."""
    from reporter.jobs import run
    from reporter.service import executors

    executor = (executors.from_config(ctx.config, ctx.database_url) if config is None
                else None)
    config = config or ctx.config

    def show(outcome: Outcome) -> None:
        click.echo(wording.line(outcome))

    if not dry_run and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("reports", total=None)

            def tick(outcome: Outcome) -> None:
                show(outcome)
                bar.advance(task)

            outcomes = run.run_job(ctx.engine, config, job, now=now, span=span, force=force,
                                   dry_run=dry_run, executor=executor, progress=tick)
    else:
        outcomes = run.run_job(ctx.engine, config, job, now=now, span=span, force=force,
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
    from reporter.jobs import run

    span = run.Span(orgs=list(orgs) or None, period=period, first=first, last=last)
    _run_and_print(ctx, job, span, now=ctx.now(), force=force, dry_run=dry_run)


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
@click.option("--store-only", is_flag=True,
              help="Only store the files under the output folder: no email, no webhook.")
@common
def backfill_command(ctx: Context, job: str, first: date, last: date, orgs: tuple[str, ...],
                     force: bool, dry_run: bool, store_only: bool) -> None:
    """Run JOB for every complete period of its kind between --from and --to.

    With --store-only the periods are stored and recorded as delivered, and nobody is
    emailed or posted to (a later backfill skips them unless --force)."""
    from reporter.jobs import run

    span = run.Span(orgs=list(orgs) or None, first=first, last=last, backfill=True)
    config = run.store_only(ctx.config, job) if store_only else None
    _run_and_print(ctx, job, span, now=ctx.now(), force=force, dry_run=dry_run, config=config)


@main.command("send-test")
@click.argument("job")
@click.option("--to", "to", multiple=True, metavar="ADDRESS",
              help="Send the test email here (repeatable; default: the job's address list, "
                   "else the sender address).")
@common
def send_test_command(ctx: Context, job: str, to: tuple[str, ...]) -> None:
    """Send one short test message through JOB's channels (its mail server or the outbox,
    its webhook) and print what each answered; exit 1 when one failed."""
    from reporter.jobs import sendtest

    answers = sendtest.send_test(ctx.config, job, now=ctx.now(), to=to)
    for answer in answers:
        click.echo(f"{answer.channel}: {'ok' if answer.ok else 'failed'}: {answer.text}")
    if not all(answer.ok for answer in answers):
        sys.exit(1)


@main.command("validate")
@common
def validate_command(ctx: Context) -> None:
    """Check the config file; print every problem and exit non-zero when there is one."""
    from reporter import config as config_module
    from reporter.jobs import checks
    from reporter.store import orgs

    try:
        config = ctx.config
    except config_module.ConfigErrors as exc:
        for message in exc.messages:
            click.echo(message, err=True)
        sys.exit(1)
    # every environment variable the file names and lacks (or that holds what cannot be
    # used): each would fail the jobs that need it
    problems = list(config.unset)
    try:
        known = {o.slug for o in orgs.list_orgs(ctx.engine)}
    except ReporterError as exc:  # no database yet: the file itself is still checked
        for message in problems:
            click.echo(message, err=True)
        if problems:
            sys.exit(1)
        click.echo(f"{config.path}: ok ({len(config.jobs)} jobs); organizations not checked: "
                   f"{exc}")
        return
    problems += config_module.check_organizations(config, known)
    for message in problems:
        click.echo(message, err=True)
    if problems:
        sys.exit(1)
    for message in checks.warnings(ctx.engine, config):
        click.echo(f"warning: {message}", err=True)
    click.echo(f"{config.path}: ok ({len(config.jobs)} jobs)")


@main.command("runs")
@click.option("--job", default=None, help="Only this job.")
@click.option("--org", default=None, metavar="SLUG", help="Only this organization.")
@click.option("--state", type=click.Choice(RUN_STATES), default=None, help="Only this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000),
              help="At most this many rows (1 to 1,000,000).")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON array: one object per run (kind 'unit') and per scheduled run "
                   "that failed or was missed (kind 'fire').")
@common
def runs_command(ctx: Context, job: str | None, org: str | None, state: str | None,
                 limit: int, as_json: bool) -> None:
    """Show the run history, newest first, after the scheduled runs that failed (with why
    and when they are tried again) or were missed."""
    from reporter.jobs import ledger
    from reporter.service import triggers

    troubles = [t for t in triggers.troubles(ctx.engine)
                if (job is None or t.job == job) and (state is None or t.state == state)
                and (org is None or t.orgs is None or org in t.orgs)]
    records = ledger.history(ctx.engine, job=job, organization=org, state=state, limit=limit)
    if as_json:
        click.echo(json.dumps([wording.trouble_object(t) for t in troubles]
                              + [wording.record_object(r) for r in records], indent=1))
        return
    for trouble in troubles:
        click.echo(wording.trouble_line(trouble))
    for record in records:
        click.echo(wording.record_line(record))


@main.command("jobs")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON array: one object per job with its next run times.")
@common
def jobs_command(ctx: Context, as_json: bool) -> None:
    """List the configured jobs with their next run times."""
    from reporter.service.scheduler import next_runs

    fires = next_runs(ctx.config, ctx.engine, ctx.now())
    if as_json:
        click.echo(json.dumps(wording.job_objects(ctx.config, fires), indent=1))
        return
    for text in wording.job_lines(ctx.config, fires):
        click.echo(text)


