"""The scheduler service: one loop holds the lease, asks the triggers what is due and runs it."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reporter import config as config_module
from reporter import logcontext
from reporter.errors import ReporterError
from reporter.jobs import ledger, plan, run
from reporter.jobs.units import FAILED, Executor
from reporter.service import executors, triggers
from reporter.service.batch import Batch, logged
from reporter.service.lease import Lease, as_utc, utcnow
from reporter.store import orgs

log = logging.getLogger(__name__)

ExecutorFactory = Callable[[config_module.Config, threading.Event], Executor]
#: the longest the loop waits after a database error before trying again
MAX_BACKOFF_SECONDS = 60.0
#: the longest a failed fire waits before it is tried again
MAX_RETRY_SECONDS = 3600.0


class Service:
    """One scheduler instance. Only the holder of the lease schedules.

    ``tick`` is the clock-free core (what is due at ``now``, run it); ``serve`` is the one
    loop of the long-running service: it renews the lease, asks the triggers (APScheduler's
    cron triggers, in ``triggers``) what is due, hands each due fire to a single runner
    thread, and sleeps until the next fire time or the next lease renewal.
    """

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
        self._catchups: dict[str, triggers.Spec] = {}
        self.leading = False
        self._halt = threading.Event()
        self._executor: Executor | None = None
        self._busy: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._runner: ThreadPoolExecutor | None = None

    def _default_executor(self, config: config_module.Config,
                          halt: threading.Event) -> Executor:
        return executors.from_config(config, self.db_url, stop=halt)

    @property
    def grace_seconds(self) -> int:
        """How late a fire may still run."""
        return self.config.scheduler.misfire_grace_seconds

    # -- the core: what is due, and running it --------------------------------------------

    def refresh(self, now: datetime) -> bool:
        """Recompute the triggers (organizations' timezones may have changed) and match the
        fire table to them; True when the set of triggers changed. Only the leader calls
        this: a standby never writes the fire table."""
        zones = {org.slug: org.timezone for org in orgs.list_orgs(self.engine)}
        specs = triggers.specs_for(self.config, zones)
        changed = specs != self.specs
        if changed:
            triggers.sync(self.engine, specs, as_utc(now))
            self.specs = specs
        return changed

    def due(self, now: datetime) -> list[triggers.Due]:
        """The fires owed at ``now`` (catch-ups included)."""
        self._catchups = triggers.catch_ups(self.engine)
        return triggers.due_runs({**self.specs, **self._catchups},
                                 triggers.load_states(self.engine), as_utc(now),
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

    @property
    def retry_seconds(self) -> int:
        """How long a fire left unfinished waits before its first retry."""
        return min(self.config.scheduler.unit_timeout_seconds, 600)

    def run_due(self, due: triggers.Due) -> Batch | None:
        """Run one due fire: plan its units in each organization's timezone at the time the
        fire was scheduled for, run them, and record whether the fire is done. Whatever
        goes wrong is logged (a bug with its traceback), recorded on the fire (``reporter
        runs`` shows it) and retried with a backoff."""
        spec = self.specs.get(due.trigger_id) or self._catchups.get(due.trigger_id)
        if spec is None:
            return None
        with logcontext.about(spec.job):
            return self._run_due(spec, due)

    def _run_due(self, spec: triggers.Spec, due: triggers.Due) -> Batch | None:
        when = due.scheduled_for.isoformat()
        moved = f", catching up {', '.join(spec.orgs or ())}" if spec.once else ""
        what = f"job {spec.job} ({spec.timezone}{moved})"
        if due.kind == "missed":
            reason = (f"the run scheduled for {when} is past the grace period of "
                      f"{self.grace_seconds} s")
            log.warning("%s: %s; not run", what, reason)
            if triggers.record_start(self.engine, spec.id, due.scheduled_for):
                self._record_missed(spec, due.scheduled_for, reason)
                triggers.record_end(self.engine, spec.id, due.scheduled_for, finished=True,
                                    error=f"missed: {reason}")
            return None
        if due.abandoned is not None:
            reason = (f"the run scheduled for {due.abandoned.isoformat()} never finished "
                      f"({due.reason or 'left unfinished'}); the run scheduled for {when} "
                      "came first")
            log.warning("%s: %s", what, reason)
            self._record_missed(spec, due.abandoned, reason)
        if not triggers.record_start(self.engine, spec.id, due.scheduled_for):
            return None
        started = time.monotonic()
        log.info("%s: %s the run scheduled for %s", what,
                 "resuming" if due.kind == "resume" else "starting", when)
        batch = Batch(spec.id, due.scheduled_for, 0)
        try:
            batch.outcomes = run.run_job(
                self.engine, self.config, spec.job, now=self.clock(),
                span=run.Span(orgs=list(spec.orgs) if spec.orgs is not None else None),
                as_of=due.scheduled_for, trigger="schedule", scheduled_for=due.scheduled_for,
                executor=logged(self._current_executor(), batch))
        except (ReporterError, SQLAlchemyError) as exc:
            self._failed(spec, due, what, str(exc).splitlines()[0], bug=False)
            return None
        except Exception as exc:  # a bug: logged with its traceback, retried all the same
            self._failed(spec, due, what, f"unexpected error: {type(exc).__name__}: {exc}",
                         bug=True)
            return None
        failed = [o for o in batch.outcomes if o.state == FAILED]
        if failed:
            first = failed[0]
            self._failed(spec, due, what, f"{len(failed)} of {batch.planned} units failed; "
                         f"first: {first.unit.organization} {first.unit.audience}: "
                         f"{first.error}", bug=False)
        else:
            triggers.record_end(self.engine, spec.id, due.scheduled_for,
                                finished=batch.finished,
                                retry_at=as_utc(self.clock()) + timedelta(
                                    seconds=self.retry_seconds))
        counts = batch.counts
        log.info("%s run scheduled for %s: %d delivered, %d already delivered, "
                 "%d in progress elsewhere, %d empty, %d skipped, %d failed, %d not run, "
                 "in %.1f s", what, when, counts["delivered"], counts["already"],
                 counts["held"], counts["empty"], counts["skipped"], counts["failed"],
                 batch.planned - len(batch.outcomes), time.monotonic() - started)
        return batch

    def _failed(self, spec: triggers.Spec, due: triggers.Due, what: str, error: str, *,
                bug: bool) -> None:
        """Record a fire's failure and when it is tried again; one log line (a bug's with
        its traceback: call this from the ``except`` block)."""
        retry_at = triggers.record_failure(
            self.engine, spec.id, due.scheduled_for, error=error, now=as_utc(self.clock()),
            base_seconds=self.retry_seconds, max_seconds=MAX_RETRY_SECONDS)
        log.log(logging.ERROR, "%s: the run scheduled for %s failed: %s; trying again at %s",
                what, due.scheduled_for.isoformat(), error, retry_at.isoformat(),
                exc_info=bug)

    def _record_missed(self, spec: triggers.Spec, scheduled_for: datetime,
                       reason: str) -> None:
        """Show each unit of a fire that never ran as ``missed`` in the run history."""
        try:
            units = plan.plan(self.engine, self.config, spec.job, as_of=scheduled_for,
                              orgs=list(spec.orgs) if spec.orgs is not None else None,
                              trigger="schedule", scheduled_for=scheduled_for)
            added = ledger.record_missed(self.engine, units, now=as_utc(self.clock()),
                                         reason=reason)
        except (ReporterError, SQLAlchemyError) as exc:
            log.error("job %s: cannot list the units of the run scheduled for %s: %s",
                      spec.job, scheduled_for.isoformat(), str(exc).splitlines()[0])
            return
        except Exception:  # a bug: the fire's own error still says what was missed
            log.exception("job %s: cannot list the units of the run scheduled for %s",
                          spec.job, scheduled_for.isoformat())
            return
        if added:
            log.warning("job %s: %d units of the run scheduled for %s recorded as missed",
                        spec.job, added, scheduled_for.isoformat())

    def _current_executor(self) -> Executor:
        if self._executor is None:
            self._executor = self.executor_factory(self.config, self._halt)
        return self._executor

    def _fire(self, trigger_id: str) -> None:
        """The runner thread's work: what ``trigger_id`` owes now."""
        try:
            self.tick(self.clock(), only=trigger_id)
        except (ReporterError, SQLAlchemyError) as exc:
            log.error("trigger %s: %s; it is owed again later", trigger_id,
                      str(exc).splitlines()[0])
        except Exception:  # a bug: never lost inside the runner thread's future
            log.exception("trigger %s: unexpected error; it is owed again later", trigger_id)
        finally:
            with self._lock:
                self._busy.pop(trigger_id, None)

    # -- the loop: leadership, dispatch, signals ------------------------------------------

    def dispatch(self) -> None:
        """Refresh the triggers and hand each fire that is due, and not already in hand,
        to the runner thread."""
        now = self.clock()
        self.refresh(now)
        if self._runner is None:
            self._runner = ThreadPoolExecutor(1, thread_name_prefix="reporter-fire")
        for due in self.due(now):
            with self._lock:
                if due.trigger_id in self._busy or self._halt.is_set():
                    continue
                self._busy[due.trigger_id] = self._runner.submit(self._fire, due.trigger_id)

    def next_wake(self, interval: float) -> float:
        """Seconds to sleep: until the next fire time, at most ``interval``."""
        now = as_utc(self.clock())
        until = now + timedelta(seconds=interval)
        soonest = until
        for spec in self.specs.values():
            for fired in triggers.fire_times(spec.cron(), now, until):
                soonest = min(soonest, fired)
                break
        return max(0.05, (soonest - now).total_seconds() + 0.01)

    def _start_leading(self) -> None:
        self._halt = threading.Event()
        self.specs = {}
        self.leading = True
        log.info("leading as %s", self.lease.holder)

    def _stop_leading(self) -> None:
        """Let the units in hand finish, then stop scheduling."""
        self._halt.set()
        if self._runner is not None:
            self._runner.shutdown(wait=True, cancel_futures=True)
            self._runner = None
        with self._lock:
            self._busy.clear()
        close = getattr(self._executor, "close", None)
        if close is not None:
            close()
        self._executor = None
        self.leading = False

    def reload(self) -> None:
        """Read jobs.yaml again; a broken file is logged and the old one kept. Only the
        leader matches the fire table to the new triggers."""
        try:
            self.config = config_module.load(self.config_path)
        except ReporterError as exc:
            log.error("reload: %s; keeping the previous configuration", exc)
            return
        self._executor = None
        if self.leading:
            self.refresh(self.clock())
        log.info("reloaded %s", self.config_path)

    def install_signals(self) -> None:
        """SIGTERM and SIGINT finish the units in hand, then exit; SIGHUP reloads."""

        def stop(signum: int, _frame: Any) -> None:
            log.info("%s: finishing the units in hand, then exiting",
                     signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda _s, _f: self.reloading.set())

    def step(self) -> bool:
        """One turn of the loop: renew or take the lease, reload when asked, dispatch what
        is due. Database errors are logged and end the turn; False when it failed."""
        try:
            holds = self.lease.acquire()
        except SQLAlchemyError as exc:
            log.warning("lease: %s", str(exc).splitlines()[0])
            return False
        if holds and not self.leading:
            self._start_leading()
        elif self.leading and not holds:
            log.warning("lost the lease; standing by")
            self._stop_leading()
        if self.reloading.is_set():
            self.reloading.clear()
            self.reload()
        if not self.leading:
            return True
        try:
            self.dispatch()
        except SQLAlchemyError as exc:
            log.warning("scheduling: %s; trying again", str(exc).splitlines()[0])
            return False
        return True

    def serve(self, *, poll_seconds: float | None = None) -> None:
        """Hold or wait for the lease, schedule while holding it, stop on ``stopping``."""
        interval = poll_seconds or max(0.5, self.config.scheduler.lease_seconds / 3)
        backoff = interval
        log.info("scheduler %s started; lease %d s", self.lease.holder,
                 self.config.scheduler.lease_seconds)
        while not self.stopping.is_set():
            try:
                ok = self.step()
            except ReporterError as exc:
                log.error("%s", exc)
                ok = False
            if ok:
                backoff = interval
                wait = self.next_wake(interval) if self.leading else interval
            else:
                wait = backoff
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS,
                              max(interval, self.config.scheduler.lease_seconds / 2))
            self.stopping.wait(wait)
        if self.leading:
            self._stop_leading()
            try:
                self.lease.release()
            except SQLAlchemyError as exc:
                log.warning("lease: %s", str(exc).splitlines()[0])
        log.info("scheduler %s stopped", self.lease.holder)


def next_runs(config: config_module.Config, engine: Engine, now: datetime,
              count: int = 3) -> dict[str, list[datetime]]:
    """The next ``count`` fire times of each trigger (for ``reporter jobs``)."""
    zones = {org.slug: org.timezone for org in orgs.list_orgs(engine)}
    out: dict[str, list[datetime]] = {}
    for spec_id, spec in triggers.specs_for(config, zones).items():
        times: Iterable[datetime] = triggers.fire_times(spec.cron(), as_utc(now),
                                                        as_utc(now) + timedelta(days=3660))
        out[spec_id] = [t for _, t in zip(range(count), times, strict=False)]
    return out
