"""``reporter sync``: copy what is new in the configured sources into the store."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from reporter.cli.app import Context, common, creates_database, main
from reporter.errors import ConfigError


@main.command("sync")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              default=None, metavar="DATE",
              help="Read again from DATE (UTC) instead of the watermark: rows stored "
                   "already change nothing, rows that can be mapped now are stored.")
@common
@creates_database
def sync_command(ctx: Context, names: tuple[str, ...], since: datetime | None) -> None:
    """Copy new usage from the configured sources (all, or each NAME) into the store; a
    database that does not exist yet is created."""
    from reporter.store.sources import sync_all

    sources = ctx.sections("database", "sources").sources  # syncing needs no job
    if not sources:
        raise ConfigError(f"{ctx.config_path}: no sources configured (see 'sources:' in "
                          "the README)")

    def show(message: str) -> None:
        click.echo(message, err=True)

    results = sync_all(ctx.engine, sources, names, now=ctx.now(), on_issue=show,
                       since=since.replace(tzinfo=UTC) if since else None)
    failed = False
    for result in results:
        for slug in result.created_organizations:
            click.echo(f"created organization {slug}")
        for slug, email in result.created_members:
            click.echo(f"created member {email} in {slug}")
        click.echo(result.summary())
        if result.error is not None:
            click.echo(f"reporter: error: {result.error}", err=True)
            failed = True
    if failed:
        sys.exit(1)
