"""Job kinds: one module per kind (``report``, ``alert``) behind one interface
(``base.JobKind``: plan a run's units, build what a unit delivers, describe it for a dry
run), looked up by the job's ``kind``. A new kind is one new module and one entry here.

May import what reporter.jobs may import.
"""

from __future__ import annotations

from reporter.config import JobSettings
from reporter.jobs.kinds import alert, report
from reporter.jobs.kinds.base import JobKind

KINDS: dict[str, JobKind] = {"report": report.KIND, "alert": alert.KIND}


def of(job: JobSettings) -> JobKind:
    """The kind that runs ``job``."""
    return KINDS[job.kind]
