"""The scheduler service: cron triggers on APScheduler, catch-up, a leader lease, signals."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import config as config_module
from . import executors, runner, store, triggers
from .errors import ReporterError
from .leader import Lease, as_utc, utcnow
from .units import Outcome, Unit

log = logging.getLogger(__name__)

FIRE = "reporter.scheduler:fire"
HELD = runner.HELD
_services: dict[str, Service] = {}

ExecutorFactory = Callable[[config_module.Config, threading.Event], executors.Executor]


def fire(service_id: str, trigger_id: str) -> None:
    """What APScheduler calls: run whatever the trigger owes now (nothing if it owes nothing)."""
    service = _services.get(service_id)
    if service is not None:
        service.fire(trigger_id)


@dataclass
class Batch:
    """What one fire of one trigger did."""

    trigger_id: str
    scheduled_for: datetime
    planned: int
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(outcome.state for outcome in self.outcomes)

    @property
    def finished(self) -> bool:
        """Every unit ran to an end; otherwise (stopped, failed, or held by a process that
        may have died) the fire is owed again later, and the ledger skips what is done."""
        return len(self.outcomes) == self.planned and not any(
            outcome.state == "failed" or outcome.note == HELD for outcome in self.outcomes)


def log_outcome(outcome: Outcome) -> None:
    unit = outcome.unit
    level = logging.WARNING if outcome.state == "failed" else logging.INFO
    log.log(level, "job %s org %s %s period %s..%s: %s in %.2f s%s", unit.job,
            unit.organization, unit.audience, unit.first, unit.last, outcome.state,
            outcome.seconds, f": {outcome.error}" if outcome.error else "")


def logged(executor: executors.Executor) -> executors.Executor:
    """The same executor, logging one line per unit as it ends."""

    def run(units: Sequence[Unit], force: bool, dry_run: bool,
            now: datetime) -> Iterator[Outcome]:
        for outcome in executor(units, force, dry_run, now):
            log_outcome(outcome)
            yield outcome

    return run


class Service:
    """One scheduler instance. Only the holder of the lease schedules; ``tick`` is the
    clock-free core (what is due at ``now``, run it), ``serve`` the long-running loop."""

    def __init__(self, engine: Engine, config_path: Path | str, db_url: str, *,
                 clock: Callable[[], datetime] = utcnow, holder: str | None = None,
                 executor_factory: ExecutorFactory | None = None) -> None:
        self.engine = engine
        self.config_path = Path(config_path)
        self.db_url = db_url
        self.config = config_module.load(self.config_path)
        self.clock = clock
        self.id = uuid.uuid4().hex
        self.lease = Lease(engine, seconds=self.config.scheduler.lease_seconds, holder=holder,
                           clock=clock)
        self.executor_factory = executor_factory or self._default_executor
        self.stopping = threading.Event()
        self.reloading = threading.Event()
        self.specs: dict[str, triggers.Spec] = {}
        self._halt = threading.Event()
        self._executor: executors.Executor | None = None
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._aps: Any = None

    def _default_executor(self, config: config_module.Config,
                          halt: threading.Event) -> executors.Executor:
        return executors.from_config(config, self.config_path, self.db_url, stop=halt)

    @property
    def grace_seconds(self) -> int:
        return self.config.scheduler.misfire_grace_seconds

    # -- the core: what is due, and running it --------------------------------------------

    def refresh(self, now: datetime) -> bool:
        """Recompute the triggers (organizations' timezones may have changed) and match the
        fire table to them; True when the set of triggers changed."""
        zones = {org.slug: org.timezone for org in store.list_orgs(self.engine)}
        specs = triggers.specs_for(self.config, zones)
        changed = specs != self.specs
        if changed:
            triggers.sync(self.engine, specs, as_utc(now))
            self.specs = specs
        return changed

    def due(self, now: datetime) -> list[triggers.Due]:
        return triggers.due_runs(self.specs, triggers.load_states(self.engine), as_utc(now),
                                 self.grace_seconds)

    def tick(self, now: datetime, only: str | None = None) -> list[Batch]:
        """Run every fire due at ``now`` (or only ``only``'s) to the end."""
        batches = []
        for due in self.due(now):
            if only is None or due.trigger_id == only:
                batch = self.run_due(due)
                if batch is not None:
                    batches.append(batch)
        return batches

    def run_due(self, due: triggers.Due) -> Batch | None:
        from . import runner

        spec = self.specs.get(due.trigger_id)
        if spec is None:
            return None
        if due.kind == "missed":
            log.warning("job %s (%s): the run scheduled for %s is past the grace period "
                        "of %d s; skipped", spec.job, spec.timezone,
                        due.scheduled_for.isoformat(), self.grace_seconds)
            if triggers.record_start(self.engine, spec.id, due.scheduled_for):
                triggers.record_end(self.engine, spec.id, due.scheduled_for, finished=True)
            return None
        if not triggers.record_start(self.engine, spec.id, due.scheduled_for):
            return None
        started = time.monotonic()
        retry = min(self.config.scheduler.unit_timeout_seconds, 600)
        try:
            units = runner.plan(self.engine, self.config, spec.job, as_of=due.scheduled_for,
                                orgs=list(spec.orgs) if spec.orgs is not None else None,
                                trigger="schedule", scheduled_for=due.scheduled_for)
        except ReporterError as exc:
            log.error("job %s (%s): cannot plan the run scheduled for %s: %s; trying again "
                      "in %d s", spec.job, spec.timezone, due.scheduled_for.isoformat(), exc,
                      retry)
            triggers.record_end(self.engine, spec.id, due.scheduled_for, finished=False,
                                retry_at=as_utc(self.clock()) + timedelta(seconds=retry))
            return None
        log.info("job %s (%s): %s the run scheduled for %s: %d units", spec.job,
                 spec.timezone, "resuming" if due.kind == "resume" else "starting",
                 due.scheduled_for.isoformat(), len(units))
        batch = Batch(spec.id, due.scheduled_for, len(units))
        batch.outcomes = runner.run_units(self.engine, self.config, units, now=self.clock(),
                                          executor=logged(self._current_executor()))
        triggers.record_end(self.engine, spec.id, due.scheduled_for, finished=batch.finished,
                            retry_at=as_utc(self.clock()) + timedelta(seconds=retry))
        counts = batch.counts
        log.info("job %s (%s) run scheduled for %s: %d delivered, %d already delivered, "
                 "%d empty, %d failed, %d not run, in %.1f s", spec.job, spec.timezone,
                 due.scheduled_for.isoformat(), counts["delivered"], counts["already"],
                 counts["empty"], counts["failed"], len(units) - len(batch.outcomes),
                 time.monotonic() - started)
        return batch

    def _current_executor(self) -> executors.Executor:
        if self._executor is None:
            self._executor = self.executor_factory(self.config, self._halt)
        return self._executor

    def fire(self, trigger_id: str) -> None:
        """Run what ``trigger_id`` owes now, unless a fire of it is already running."""
        with self._lock:
            if trigger_id in self._busy or self._halt.is_set():
                return
            self._busy.add(trigger_id)
        try:
            self.tick(self.clock(), only=trigger_id)
        except (ReporterError, SQLAlchemyError):
            log.exception("trigger %s: the run failed; it is owed again later", trigger_id)
        finally:
            with self._lock:
                self._busy.discard(trigger_id)

    # -- the service: leadership, APScheduler, signals ---------------------------------------

    def _start_scheduling(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._halt = threading.Event()
        _services[self.id] = self
        self.specs = {}
        self.refresh(self.clock())
        self._aps = BackgroundScheduler(timezone="UTC",
                                        executors={"default": ThreadPoolExecutor(1)})
        self._reconcile()
        self._aps.start()
        log.info("leading as %s: %d triggers", self.lease.holder, len(self.specs))

    def _reconcile(self) -> None:
        """APScheduler's jobs := the triggers; ids are job names (``name@timezone`` when the
        job follows each organization's timezone)."""
        for job in self._aps.get_jobs():
            if job.id not in self.specs and not job.id.endswith(":due"):
                self._aps.remove_job(job.id)
        for spec in self.specs.values():
            self._aps.add_job(FIRE, trigger=spec.cron(), args=[self.id, spec.id], id=spec.id,
                              name=spec.job, replace_existing=True, coalesce=True,
                              max_instances=1, misfire_grace_time=self.grace_seconds)

    def _poke(self) -> None:
        """Hand APScheduler a one-off run for each trigger owing a catch-up or a retry."""
        if self.refresh(self.clock()):
            self._reconcile()
        for due in self.due(self.clock()):
            with self._lock:
                if due.trigger_id in self._busy:
                    continue
            self._aps.add_job(FIRE, trigger="date", args=[self.id, due.trigger_id],
                              id=f"{due.trigger_id}:due", replace_existing=True,
                              misfire_grace_time=None)

    def _stop_scheduling(self) -> None:
        """Let the units in hand finish, then stop scheduling."""
        self._halt.set()
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None
        close = getattr(self._executor, "close", None)
        if close is not None:
            close()
        self._executor = None
        _services.pop(self.id, None)

    def reload(self) -> None:
        """Read jobs.yaml again; a broken file is logged and the old one kept."""
        try:
            self.config = config_module.load(self.config_path)
        except ReporterError as exc:
            log.error("reload: %s; keeping the previous configuration", exc)
            return
        self._executor = None
        if self.refresh(self.clock()) and self._aps is not None:
            self._reconcile()
        log.info("reloaded %s: %d triggers", self.config_path, len(self.specs))

    def install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("%s: finishing the units in hand, then exiting",
                     signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda _s, _f: self.reloading.set())

    def serve(self, *, poll_seconds: float | None = None) -> None:
        """Hold or wait for the lease, schedule while holding it, stop on ``stopping``."""
        interval = poll_seconds or max(0.5, self.config.scheduler.lease_seconds / 3)
        leading = False
        log.info("scheduler %s started; lease %d s", self.lease.holder,
                 self.config.scheduler.lease_seconds)
        while not self.stopping.is_set():
            try:
                holds = self.lease.acquire()
            except SQLAlchemyError as exc:
                log.warning("lease: %s", str(exc).splitlines()[0])
                holds = False
            if holds and not leading:
                self._start_scheduling()
                leading = True
            elif leading and not holds:
                log.warning("lost the lease; standing by")
                self._stop_scheduling()
                leading = False
            if leading:
                if self.reloading.is_set():
                    self.reloading.clear()
                    self.reload()
                self._poke()
            elif self.reloading.is_set():
                self.reloading.clear()
                self.reload()
            self.stopping.wait(interval)
        if leading:
            self._stop_scheduling()
            self.lease.release()
        log.info("scheduler %s stopped", self.lease.holder)


def next_runs(config: config_module.Config, engine: Engine, now: datetime,
              count: int = 3) -> dict[str, list[datetime]]:
    """The next ``count`` fire times of each trigger (for ``reporter jobs``)."""
    zones = {org.slug: org.timezone for org in store.list_orgs(engine)}
    out: dict[str, list[datetime]] = {}
    for spec_id, spec in triggers.specs_for(config, zones).items():
        times: Iterable[datetime] = triggers.fire_times(spec.cron(), as_utc(now),
                                                        as_utc(now) + timedelta(days=3660))
        out[spec_id] = [t for _, t in zip(range(count), times, strict=False)]
    return out
