"""Commands over the store and single reports: ingest, generate, org, member, demo."""

from __future__ import annotations

import math
import sys
from datetime import date
from pathlib import Path

import click

from reporter import money, render
from reporter.cli.app import Context, Group, common, main, period_options
from reporter.errors import ReporterError
from reporter.store import projectid


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
    from reporter.store import ingest

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
        for slug in result.created_organizations:
            click.echo(f"created organization {slug}")
        for slug, email in result.created_members:
            click.echo(f"created member {email} in {slug}")
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
    from reporter.report import aggregate, budget

    names = render.parse_formats(formats)
    engine = ctx.engine
    resolved = aggregate.resolve_period(engine, org, period, ctx.now(), first=first, last=last,
                                        member=member)
    report = budget.attach(engine, aggregate.build(engine, org, resolved, member=member,
                                                   now=ctx.now()))
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
@click.option("--monthly-budget", "budget", metavar="USD",
              help="Monthly budget in USD, exact (5000.00); 'none' clears it.")
@common
def org_set(ctx: Context, slug: str, name: str | None, timezone: str | None,
            budget: str | None) -> None:
    """Create an organization or change its name, timezone or monthly budget.

    A SLUG is lowercase letters a-z, digits, '-', '_' and '.', starting with a letter or a
    digit, at most 100 characters."""
    from reporter.store import orgs as store

    info = store.set_org(ctx.engine, slug, name=name, timezone=timezone, monthly_budget=budget)
    click.echo(f"{info.slug}: {info.name} ({info.timezone})"
               + _budget_text(info.monthly_budget_nanos))


def _budget_text(nanos: int | None) -> str:
    return "" if nanos is None else f", monthly budget ${money.format_usd(nanos)}"


@org_group.command("list")
@common
def org_list(ctx: Context) -> None:
    """List organizations."""
    from reporter.store import orgs as store

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
@click.option("--monthly-budget", "budget", metavar="USD",
              help="The member's monthly budget in USD (500.00); 'none' clears it.")
@common
def member_set(ctx: Context, slug: str, email: str, role: str | None, name: str | None,
               budget: str | None) -> None:
    """Add a member to an organization or change their role, name (the name this
    organization shows; other organizations keep their own) or monthly budget."""
    from reporter.store import orgs as store

    info = store.set_member(ctx.engine, slug, email, role=role, name=name,
                            monthly_budget=budget)
    click.echo(f"{slug}: {info.email} ({info.role})" + _budget_text(info.monthly_budget_nanos))


@member_group.command("remove")
@click.argument("slug")
@click.argument("email")
@common
def member_remove(ctx: Context, slug: str, email: str) -> None:
    """Remove a member: their past usage stays in reports, they receive nothing."""
    from reporter.store import orgs as store

    store.remove_member(ctx.engine, slug, email, now=ctx.now())
    click.echo(f"{slug}: removed {email}")


def _finite(value: float) -> float:
    """``value``, refusing NaN (which every range check lets through)."""
    if math.isnan(value):
        raise click.BadParameter("must be a number from 0.01 to 100, not nan")
    return value


@main.command("demo")
@click.option("--days", default=120, show_default=True, type=click.IntRange(1, 3660),
              help="Days of demo usage to load (1 to 3660).")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0.01, 100),
              callback=lambda _c, _p, v: _finite(v), help="Multiply demo activity (0.01 to 100).")
@common
def demo_command(ctx: Context, days: int, scale: float) -> None:
    """Create the database, load demo data, run every job once, print where the files are."""
    from reporter.jobs import runner
    from reporter.store import demo

    now = ctx.now()
    demo.load(ctx.engine, now, days=days, scale=scale)
    for path in runner.run_every_job(ctx.engine, ctx.config, now=now):
        click.echo(str(path))


