"""The configuration language: jobs.yaml read once, by one key table (``keys``), walked by
``walker`` with a checker per kind of value (``values``), and turned into typed settings
by ``load`` (with ``sections`` for budgets, alerts, webhooks and sources). The packages
that use settings receive them; nothing else opens the file.

May import: the foundation modules, store, report, alerts, render and deliver (the
settings those packages define, and the checks of a format name or a subject template).
"""

from reporter.config.load import EVERYTHING, check_organizations, load, parse, source_settings
from reporter.config.settings import (
    DEFAULT_SENDER,
    Config,
    EmailSettings,
    ExecutorSettings,
    JobSettings,
    SchedulerSettings,
)
from reporter.config.walker import ConfigErrors

__all__ = ["DEFAULT_SENDER", "EVERYTHING", "Config", "ConfigErrors", "EmailSettings",
           "ExecutorSettings", "JobSettings", "SchedulerSettings", "check_organizations",
           "load", "parse", "source_settings"]
