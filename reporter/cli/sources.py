"""``reporter sync``: copy what is new in the configured sources into the store."""

from __future__ import annotations

import sys

import click

from reporter.cli.app import Context, common, main
from reporter.errors import ConfigError


@main.command("sync")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@common
def sync_command(ctx: Context, names: tuple[str, ...]) -> None:
    """Copy new usage from the configured sources (all, or each NAME) into the store."""
    from reporter.store.sources import load_sources, sync_all

    sources = load_sources(ctx.config_path)  # syncing needs no job: only this section
    if not sources:
        raise ConfigError(f"{ctx.config_path}: no sources configured (see 'sources:' in "
                          "the README)")

    def show(message: str) -> None:
        click.echo(message, err=True)

    results = sync_all(ctx.engine, sources, names, now=ctx.now(), on_issue=show)
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
