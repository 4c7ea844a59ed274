"""What a log line is about: the job and organization being worked on, carried by context
variables so every line logged meanwhile (by any module, in any thread that inherited the
context) can name them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

JOB: ContextVar[str | None] = ContextVar("reporter_log_job", default=None)
ORGANIZATION: ContextVar[str | None] = ContextVar("reporter_log_organization", default=None)


@contextlib.contextmanager
def about(job: str | None = None, organization: str | None = None) -> Iterator[None]:
    """Within the block, log lines name ``job`` and ``organization`` (those given)."""
    tokens = []
    if job is not None:
        tokens.append((JOB, JOB.set(job)))
    if organization is not None:
        tokens.append((ORGANIZATION, ORGANIZATION.set(organization)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def where() -> str:
    """`` [job weekly org acme]`` for the current context, or empty."""
    parts = []
    if (job := JOB.get()) is not None:
        parts.append(f"job={job}")
    if (org := ORGANIZATION.get()) is not None:
        parts.append(f"org={org}")
    return f" [{' '.join(parts)}]" if parts else ""
