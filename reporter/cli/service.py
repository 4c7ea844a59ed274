"""The long-running commands: ``reporter scheduler`` and ``reporter worker``."""

from __future__ import annotations

import logging
from datetime import datetime

import click

from reporter import logcontext
from reporter.cli.app import Context, RedactingFormatter, common, creates_database, main


class ServiceFormatter(RedactingFormatter):
    """``2026-11-23T08:00:01.234+01:00 INFO reporter.service.scheduler [job=weekly
    org=acme]: message``: the local time with its offset (to line the log up with a mail
    server's), the level, the logger, what the line is about, passwords masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(about)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in ISO 8601 with the local offset, to the millisecond."""
        moment = datetime.fromtimestamp(record.created).astimezone()
        return moment.isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        """The formatted line (the job and organization of the context, when set)."""
        if not hasattr(record, "about"):
            record.about = logcontext.where()
        return super().format(record)


def _service_logging() -> None:
    """A service reports what it does: INFO unless ``-v`` asked for more, every line with
    its time and what it is about."""
    logger = logging.getLogger("reporter")
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(ServiceFormatter())


@main.command("scheduler")
@common
@creates_database
def scheduler_command(ctx: Context) -> None:
    """Run the jobs of the config on their schedules until SIGTERM or SIGINT.

    Several instances may share one database: one schedules, the others stand by and
    take over when it stops. SIGHUP reloads the config.
    """
    from reporter.service.scheduler import Service

    _service_logging()
    service = Service(ctx.engine, ctx.config_path, ctx.database_url)
    service.install_signals()
    service.serve()


@main.command("worker")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the config's executor.workers).")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork",
              show_default=True, help="Celery pool implementation.")
@common
@creates_database
def worker_command(ctx: Context, concurrency: int | None, pool: str) -> None:
    """Start a Celery worker that runs units sent by 'executor: {kind: celery}'."""
    from reporter.service import celery_app

    _service_logging()
    loaded = ctx.config
    ctx.engine.dispose()  # brings the schema up to date once, before the pool starts
    celery_app.run_worker(
        str(ctx.config_path.resolve()), ctx.database_url,
        concurrency=concurrency or loaded.executor.workers,
        max_tasks_per_child=loaded.executor.max_reports_per_worker,
        broker_url=loaded.executor.broker_url,
        visibility_timeout=loaded.scheduler.unit_timeout_seconds, pool=pool)
