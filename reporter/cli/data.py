"""Commands over the store and single reports: ingest, generate, org, member, demo."""

from __future__ import annotations

import json
import math
import sys
from datetime import date
from pathlib import Path

import click

from reporter import render
from reporter.cli.app import Context, Group, common, main, period_options
from reporter.errors import ReporterError


@main.command("project-id")
@click.argument("path", default=".", type=click.Path(file_okay=True, dir_okay=True))
@common
def project_id_command(ctx: Context, path: str) -> None:
    """Print the project id for PATH (.kilocode/config.json, else the origin remote)."""
    from reporter.store import projectid

    found = projectid.project_id(path)
    if found is not None:
        click.echo(found)


@main.command("ingest")
@click.argument("files", nargs=-1, required=True)
@click.option("--strict", is_flag=True,
              help="Refuse columns and keys reporter does not know (default: ignore them "
                   "with a warning).")
@click.option("--replace", is_flag=True,
              help="Correct stored events: an event with the same organization and id takes "
                   "the file's values (default: it is kept and the file's row counted as a "
                   "duplicate). Reports already delivered are not sent again; 'run --force' "
                   "sends them again.")
@common
def ingest_command(ctx: Context, files: tuple[str, ...], strict: bool, replace: bool) -> None:
    """Load usage events from CSV or JSONL FILES ('-' reads standard input).

    An event already stored (same organization and id) is left as it is, unless --replace."""
    from reporter.store import ingest

    total = ingest.IngestResult()
    failed = False

    def show(message: str) -> None:
        click.echo(message, err=True)

    def warn(message: str) -> None:
        click.echo(f"reporter: warning: {message}", err=True)

    for path in files:
        try:
            result = ingest.ingest_file(ctx.engine, path, on_error=show, strict=strict,
                                        on_warning=warn, replace=replace)
        except ReporterError as exc:
            click.echo(f"reporter: error: {exc}", err=True)
            failed = True
            stored = getattr(exc, "result", None)  # the rows stored before it failed count
            if not isinstance(stored, ingest.IngestResult):
                continue
            result = stored
        for slug in result.created_organizations:
            click.echo(f"created organization {slug}")
        for slug, email in result.created_members:
            click.echo(f"created member {email} in {slug}")
        total.add(result)
    replaced = f"replaced {total.replaced}, " if replace else ""
    click.echo(f"inserted {total.inserted}, {replaced}duplicate {total.duplicate}, "
               f"rejected {total.rejected}")
    if failed or total.rejected:
        sys.exit(1)


@main.command("generate")
@click.option("--org", "org", required=True, metavar="SLUG", help="The organization.")
@period_options
@click.option("--user", "member", metavar="EMAIL", help="A personal report for this member.")
@click.option("--format", "formats", default="html", show_default=True,
              help="Comma-separated formats: " + ", ".join(render.FORMATS)
              + " (html opens in a browser; scripts pass --format json).")
@click.option("--out", "out", default="output", show_default=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--templates", default=None, type=click.Path(file_okay=False, exists=True),
              help="A folder of templates that override the shipped ones.")
@click.option("--pdf-engine", "pdf_engine", default=None, type=click.Choice(render.PDF_ENGINES),
              help="What prints the PDF (default: the jobs file's pdf_engine, or weasyprint).")
@common
def generate_command(ctx: Context, org: str, period: str | None, first: date | None,
                     last: date | None, member: str | None, formats: str, out: str,
                     templates: str | None, pdf_engine: str | None) -> None:
    """Generate one report now and print the paths written."""
    from reporter.report import aggregate, budget, freshness

    names = render.parse_formats(formats)
    engine = ctx.engine
    resolved = aggregate.resolve_period(engine, org, period, ctx.now(), first=first, last=last,
                                        member=member)
    report = budget.attach(engine, aggregate.build(engine, org, resolved, member=member,
                                                   now=ctx.now()))
    # how far the sources that feed the organization were synced, when the file names any;
    # the file's PDF engine unless --pdf-engine names one
    config = ctx.sections("sources", "pdf_engine") if ctx.config_path.exists() else None
    feeding = config.sources_feeding(org) if config else []
    report = freshness.attach(engine, report, feeding)
    if pdf_engine is None and config is not None and "pdf" in names:
        pdf_engine = config.pdf_engine
    options = render.Options(Path(templates) if templates else None, pdf_engine)
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
    from reporter.store import orgs

    info = orgs.set_org(ctx.engine, slug, name=name, timezone=timezone, monthly_budget=budget,
                         announce=click.echo)
    click.echo(f"{info.slug}: {info.name} ({info.timezone})"
               + _budget_text(info.monthly_budget_nanos))


def _budget_text(nanos: int | None) -> str:
    from reporter import money

    return "" if nanos is None else f", monthly budget ${money.format_usd(nanos)}"


@org_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@common
def org_list(ctx: Context, as_json: bool) -> None:
    """List organizations: slug, name, timezone and monthly budget (tab-separated)."""
    from reporter.store import orgs

    found = orgs.list_orgs(ctx.engine)
    if as_json:
        click.echo(json.dumps([{"slug": o.slug, "name": o.name, "timezone": o.timezone,
                                "monthly_budget_usd": _usd(o.monthly_budget_nanos)}
                               for o in found], ensure_ascii=False, indent=2))
        return
    click.echo("slug\tname\ttimezone\tmonthly budget")
    for info in found:
        click.echo(f"{info.slug}\t{info.name}\t{info.timezone}\t"
                   f"{_usd(info.monthly_budget_nanos) or '-'}")


def _usd(nanos: int | None) -> str | None:
    """A budget as exact USD text (``5000.00``), None for no budget."""
    from reporter import money

    return None if nanos is None else money.format_usd(nanos)


@org_group.command("remove")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Delete; without it, only say what would go.")
@common
def org_remove(ctx: Context, slug: str, yes: bool) -> None:
    """Delete an organization and everything of it: usage events, members, run records, and
    users in no other organization. Without --yes, print what would be deleted and exit 1.
    Stored report files and outbox messages stay on disk."""
    from reporter.store import removal

    if not yes:
        found = removal.preview(ctx.engine, slug)
        click.echo(f"{slug}: would delete {found.describe()}")
        click.echo(f"reporter: nothing deleted; run 'reporter org remove {slug} --yes' to "
                   f"delete", err=True)
        sys.exit(1)
    done = removal.remove(ctx.engine, slug)
    click.echo(f"{slug}: deleted {done.describe()}")


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
    from reporter.store import orgs

    info = orgs.set_member(ctx.engine, slug, email, role=role, name=name,
                            monthly_budget=budget, announce=click.echo)
    click.echo(f"{slug}: {info.email} ({info.role})" + _budget_text(info.monthly_budget_nanos))


@member_group.command("list")
@click.argument("slug")
@click.option("--all", "everyone", is_flag=True, help="Also members who were removed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@common
def member_list(ctx: Context, slug: str, everyone: bool, as_json: bool) -> None:
    """List the members of an organization: email, name, role and monthly budget."""
    from reporter.store import orgs

    org = orgs.get_org(ctx.engine, slug)
    found = orgs.members(ctx.engine, org.id, include_removed=everyone)
    if as_json:
        click.echo(json.dumps([{"email": m.email, "name": m.name, "role": m.role,
                                "monthly_budget_usd": _usd(m.monthly_budget_nanos),
                                "removed": not m.active} for m in found],
                              ensure_ascii=False, indent=2))
        return
    click.echo("email\tname\trole\tmonthly budget" + ("\tstate" if everyone else ""))
    for m in found:
        state = ("\tpresent" if m.active else "\tremoved") if everyone else ""
        click.echo(f"{m.email}\t{m.name or '-'}\t{m.role}\t"
                   f"{_usd(m.monthly_budget_nanos) or '-'}{state}")


@member_group.command("remove")
@click.argument("slug")
@click.argument("email")
@common
def member_remove(ctx: Context, slug: str, email: str) -> None:
    """Remove a member: their past usage stays in reports, they receive nothing."""
    from reporter.store import orgs

    orgs.remove_member(ctx.engine, slug, email, now=ctx.now())
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
    """Create the database, load demo data, run every job once, print where the files are.

    Only on a database that is empty or holds nothing but demo data (name another with
    --db), and delivering only to the outbox: never through a configured mail server,
    webhook or source."""
    from reporter.jobs import run
    from reporter.store import demo

    now = ctx.now()
    demo.check_only_demo(ctx.engine, ctx.database_url)
    demo.load(ctx.engine, now, days=days, scale=scale)
    for path in run.run_every_job(ctx.engine, ctx.config, now=now):
        click.echo(str(path))


