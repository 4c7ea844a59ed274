"""Celery fan-out: the app, the ``execute_unit`` task, and the executor that waits on it."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from celery import Celery

from reporter.config.keys import BROKER
from reporter.errors import DeliveryError
from reporter.jobs.units import FAILED, Outcome, Unit
from reporter.store.db import redact

log = logging.getLogger(__name__)

CONFIG_ENV = "REPORTER_WORKER_CONFIG"
DB_ENV = "REPORTER_WORKER_DB"
#: the queue units go to and workers take them from; set it to keep two deployments that
#: share one broker apart
QUEUE_ENV = "REPORTER_CELERY_QUEUE"
TASK = "reporter.execute_unit"

app = Celery("reporter")


def configure(broker_url: str | None = None, *, visibility_timeout: int = 1_800) -> Celery:
    """Point the app at a broker (``REPORTER_BROKER_URL`` wins over the config, as
    ``REPORTER_DATABASE_URL`` does) with the Redis result backend on the same server; units
    go to the queue ``REPORTER_CELERY_QUEUE`` names (default ``celery``).

    A unit whose worker vanished is handed to another worker a little after
    ``visibility_timeout`` seconds: the run ledger's unit timeout, after which the ledger
    lets another attempt take the unit over.
    """
    url = (BROKER.env and os.environ.get(BROKER.env)) or broker_url or str(BROKER.default)
    visibility_timeout += max(2, visibility_timeout // 10)
    app.conf.update(
        broker_url=url,
        task_default_queue=os.environ.get(QUEUE_ENV) or "celery",
        result_backend=url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        result_expires=7 * 86_400,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": max(1, visibility_timeout // 5),
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": visibility_timeout},
    )
    return app


# -- the wire format: units and outcomes as JSON ------------------------------------------

def unit_to_dict(unit: Unit) -> dict[str, Any]:
    """A unit as the task's JSON argument."""
    return {"job": unit.job, "organization": unit.organization, "audience": unit.audience,
            "period_name": unit.period_name, "first": unit.first.isoformat(),
            "last": unit.last.isoformat(), "trigger": unit.trigger,
            "scheduled_for": unit.scheduled_for.isoformat() if unit.scheduled_for else None}


def unit_from_dict(data: dict[str, Any]) -> Unit:
    """The unit a task's JSON argument describes."""
    scheduled = data.get("scheduled_for")
    return Unit(data["job"], data["organization"], data["audience"], data["period_name"],
                date.fromisoformat(data["first"]), date.fromisoformat(data["last"]),
                data.get("trigger", "cli"),
                datetime.fromisoformat(scheduled) if scheduled else None)


def outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    """An outcome as the task's JSON result."""
    return {"unit": unit_to_dict(outcome.unit), "state": outcome.state,
            "seconds": outcome.seconds, "error": outcome.error, "files": list(outcome.files),
            "recipients": list(outcome.recipients), "note": outcome.note}


def outcome_from_dict(data: dict[str, Any]) -> Outcome:
    """The outcome a task's JSON result describes."""
    return Outcome(unit_from_dict(data["unit"]), data["state"], float(data["seconds"]),
                   data.get("error"), tuple(data.get("files", ())),
                   tuple(data.get("recipients", ())), note=data.get("note"))


# -- the worker side ----------------------------------------------------------------------

_state: dict[int, tuple[Any, Any]] = {}


def _engine_and_config() -> tuple[Any, Any]:
    """The engine and config of this worker process, opened once (per forked child)."""
    pid = os.getpid()
    if pid not in _state:
        from reporter import config
        from reporter.store import db

        path = os.environ.get(CONFIG_ENV, "jobs.yaml")
        loaded = config.load(path)
        url = db.resolve_url(os.environ.get(DB_ENV), loaded.database)
        _state.clear()
        _state[pid] = (db.open_engine(url, migrate=False), loaded)
    return _state[pid]


@app.task(  # type: ignore[untyped-decorator]
    name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
    autoretry_for=(OSError,), retry_backoff=True, retry_backoff_max=60, max_retries=5)
def execute_unit(self: Any, unit: dict[str, Any], force: bool, dry_run: bool, now: str,
                 origin: float, run: str | None = None) -> dict[str, Any]:
    """Run one unit through the ledger; the ledger makes a redelivered task harmless. Its
    work starts at ``now`` advanced by the wall-clock time since ``origin`` (the
    ``time.time()`` at which the batch read ``now``). ``run``: the key its run keeps alive
    while it waits; a unit whose run gave up (or died) is not run at all."""
    from sqlalchemy.exc import OperationalError

    from reporter.jobs import runner

    if run is not None and not app.backend.client.exists(run):
        log.warning("%s %s %s: its run gave up waiting for it; not run", unit.get("job"),
                    unit.get("organization"), unit.get("audience"))
        return {"unit": unit, "state": FAILED, "seconds": 0.0,
                "error": "its run gave up waiting for a worker; not run"}
    engine, loaded = _engine_and_config()
    try:
        outcome = runner.execute(engine, loaded, unit_from_dict(unit),
                                 now=runner.advanced(datetime.fromisoformat(now), origin),
                                 force=force, dry_run=dry_run)
    except OperationalError as exc:  # the database is away: try again later
        raise self.retry(exc=exc) from None
    return outcome_to_dict(outcome)


def run_worker(config_path: str, db_url: str | None, *, concurrency: int,
               max_tasks_per_child: int, broker_url: str | None, visibility_timeout: int,
               pool: str = "prefork", loglevel: str = "INFO") -> None:
    """Start a Celery worker (blocks until it is told to stop)."""
    os.environ[CONFIG_ENV] = str(config_path)
    if db_url:
        os.environ[DB_ENV] = db_url
    configure(broker_url, visibility_timeout=visibility_timeout)
    app.worker_main(["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}",
                     f"--max-tasks-per-child={max_tasks_per_child}", f"--pool={pool}",
                     f"--hostname=reporter-{os.getpid()}@%h", "--without-gossip",
                     "--without-mingle", "--without-heartbeat"])


# -- the producer side --------------------------------------------------------------------

class CeleryExecutor:
    """Sends each unit as a task and yields outcomes as results come back.

    When no worker starts any unit within ``start_seconds`` (none running, or none on this
    queue), or nothing comes back for ``timeout_seconds`` plus the visibility timeout (a
    lost worker whose units are not yet handed on), the run gives up on the units still
    owed: they end ``failed`` with one line saying why, and they are never run later (the
    tasks expire and are revoked, and a worker checks that its run still waits before it
    runs a unit). A later run delivers them, once.
    """

    def __init__(self, broker_url: str | None, *, timeout_seconds: int = 1_800,
                 stop: threading.Event | None = None, poll_seconds: float = 0.2,
                 start_seconds: float = 60) -> None:
        self.broker_url = broker_url
        self.timeout_seconds = timeout_seconds
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.start_seconds = start_seconds

    def __call__(self, units: Sequence[Unit], force: bool, dry_run: bool,
                 now: datetime) -> Iterator[Outcome]:
        if not units:
            return
        configure(self.broker_url, visibility_timeout=self.timeout_seconds)
        patience = 2 * self.timeout_seconds + 10
        run = f"reporter-run-{uuid.uuid4().hex}"
        where = f"queue {app.conf.task_default_queue!r} on {redact(app.conf.broker_url)}"
        origin = time.time()
        order: list[tuple[str, Unit]] = []
        try:
            self._keep(run, patience)
            for unit in units:
                result = execute_unit.apply_async(
                    args=[unit_to_dict(unit), force, dry_run, now.isoformat(), origin],
                    kwargs={"run": run}, expires=patience)
                order.append((result.id, unit))
        except Exception as exc:  # kombu's and redis's own errors: the broker is away
            self._give_up(run, [task_id for task_id, _ in order])
            raise DeliveryError(f"Celery {where}: cannot send the units: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                                "; nothing was sent") from exc
        log.info("%d units sent to the Celery workers (%s)", len(order), where)
        by_id = dict(order)
        pending = set(by_id)
        ready: dict[str, Outcome] = {}
        started = time.monotonic()
        last_progress = started
        any_started = False
        position = 0
        while position < len(order):
            if self.stop is not None and self.stop.is_set():
                log.info("stopping: %d units left to the Celery workers", len(pending))
                return
            self._keep(run, patience)
            for task_id, meta in app.backend.get_many(set(pending), interval=self.poll_seconds,
                                                      max_iterations=1):
                pending.discard(task_id)
                last_progress = time.monotonic()
                any_started = True
                app.backend.forget(task_id)
                ready[task_id] = self._outcome(meta, by_id[task_id])
            while position < len(order) and order[position][0] in ready:
                yield ready.pop(order[position][0])
                position += 1
            waited = time.monotonic() - started
            if not any_started and pending and waited > self.start_seconds:
                any_started = any(app.AsyncResult(task_id).state == "STARTED"
                                  for task_id in pending)
                if not any_started:
                    lost = (f"no Celery worker started a unit within {self.start_seconds:g} s "
                            f"({where}); gave up, and it will not be run later")
                    break
            if pending and time.monotonic() - last_progress > patience:
                lost = (f"no result from a Celery worker within {patience} s ({where}); "
                        "gave up, and it will not be run later")
                break
        else:
            self._drop(run)
            return
        log.error("%s: %d units not run", lost, len(order) - position)
        self._give_up(run, list(pending))
        for task_id, unit in order[position:]:
            yield ready.pop(task_id) if task_id in ready else Outcome(unit, FAILED, error=lost)

    @staticmethod
    def _keep(run: str, seconds: int) -> None:
        """Mark the run as still waiting for its units (for ``seconds``)."""
        app.backend.client.set(run, "1", ex=max(1, seconds))

    @staticmethod
    def _drop(run: str) -> None:
        try:
            app.backend.client.delete(run)
        except Exception:  # the key expires by itself
            log.debug("cannot delete %s", run, exc_info=True)

    def _give_up(self, run: str, task_ids: list[str]) -> None:
        """Make sure no unit of a run that gave up is run later: the run's key goes (a
        worker checks it first), and the tasks are revoked."""
        self._drop(run)
        try:
            if task_ids:
                app.control.revoke(task_ids)
        except Exception:  # the worker's check still holds
            log.debug("cannot revoke the tasks", exc_info=True)

    @staticmethod
    def _outcome(meta: dict[str, Any], unit: Unit) -> Outcome:
        if meta.get("status") == "SUCCESS" and isinstance(meta.get("result"), dict):
            return outcome_from_dict(meta["result"])
        return Outcome(unit, FAILED, error=f"task {meta.get('status')}: {meta.get('result')}")
