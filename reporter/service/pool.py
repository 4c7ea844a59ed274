"""The local pool: units on worker processes of this machine, which end with their parent."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from reporter.config import Config
from reporter.jobs import runner
from reporter.jobs.units import FAILED, Outcome, Unit

log = logging.getLogger(__name__)

_worker: dict[str, Any] = {}
#: prctl(2): deliver a signal to this process when its parent ends
PR_SET_PDEATHSIG = 1
#: how often a worker checks that the run which started it is still there
WATCH_SECONDS = 0.5


def _gone(pid: int) -> bool:
    """True when process ``pid`` has ended (a zombie nobody reaped has ended, too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _end_with(run_pid: int) -> None:
    """End this worker when the run that started it ends, however it ends (a SIGKILL
    included). Our parent is the forkserver, which exits when the run does: on Linux the
    kernel then kills us (PR_SET_PDEATHSIG); everywhere, a thread watches for a new parent
    or the run's end and exits. A unit cut short this way is taken over once its claim goes
    stale."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError) as exc:
            log.debug("prctl unavailable: %s", exc)

    def watch() -> None:
        while os.getppid() == parent and not _gone(run_pid):
            time.sleep(WATCH_SECONDS)
        log.warning("the run (pid %d) that started this worker has ended; exiting", run_pid)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-run").start()


def _init_worker(config: Config, db_url: str, run_pid: int) -> None:
    """Open the engine once per worker process; the config is the parent's, validated once,
    so a batch never mixes two versions of jobs.yaml. The worker ends with the run."""
    _end_with(run_pid)
    from reporter.store import db

    _worker["engine"] = db.open_engine(db_url, migrate=False)
    _worker["config"] = config


def _execute(unit: Unit, force: bool, dry_run: bool, now: datetime, origin: float) -> Outcome:
    """Run one unit in this worker; its work starts now on the batch's clock."""
    return runner.execute(_worker["engine"], _worker["config"], unit,
                          now=runner.advanced(now, origin), force=force, dry_run=dry_run)


class LocalPool:
    """A process pool sized to the cores whose workers are replaced after
    ``max_reports`` units each, so memory held by the renderers is given back.

    Units are submitted a few at a time; once ``stop`` is set no new unit starts and the
    ones in hand finish.
    """

    def __init__(self, config: Config, db_url: str, *, workers: int | None = None,
                 max_reports: int = 50, stop: threading.Event | None = None,
                 task: Callable[[Unit, bool, bool, datetime, float], Outcome] = _execute) -> None:
        self.config = config
        self.db_url = db_url
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_reports = max_reports
        self.stop = stop
        self.task = task
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        """The process pool, started on first use (and again after a worker died)."""
        if self._pool is None:
            # new workers fork from a server that has the pipeline imported already
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["reporter.jobs.runner", "reporter.service.executors"])
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_init_worker,
                initargs=(self.config, self.db_url, os.getpid()),
                max_tasks_per_child=self.max_reports)
        return self._pool

    def close(self) -> None:
        """Let the units in hand finish, drop the queued ones and end the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __call__(self, units: Sequence[Unit], force: bool, dry_run: bool,
                 now: datetime) -> Iterator[Outcome]:
        """Outcomes in the order of ``units``; at most ``workers`` units run at a time. Each
        unit's work starts at ``now`` advanced by the time since this call began."""
        origin = time.time()
        queue = deque(units)
        order: deque[tuple[Future[Outcome], Unit]] = deque()
        running: set[Future[Outcome]] = set()
        while queue or order:
            while queue and len(running) < self.workers and not self._stopping():
                unit = queue.popleft()
                future = self.pool().submit(self.task, unit, force, dry_run, now, origin)
                order.append((future, unit))
                running.add(future)
            if not order:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            running -= done
            while order and order[0][0].done():
                future, unit = order.popleft()
                yield self._outcome(future, unit)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _outcome(self, future: Future[Outcome], unit: Unit) -> Outcome:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            self._pool = None  # a worker died (killed, out of memory): start a fresh pool
            return Outcome(unit, FAILED, error=f"worker process died: {exc}")
        except Exception as exc:  # a bug in the worker; keep the batch going
            log.exception("%s: worker raised", unit.key)
            return Outcome(unit, FAILED, error=f"{type(exc).__name__}: {exc}")


