"""The ``reporter`` command line: thin commands over the library, errors as one line.

Imports every layer below it; nothing imports it.
"""

from reporter.cli import data, jobs, service, sources
from reporter.cli.app import main

__all__ = ["data", "jobs", "main", "service", "sources"]
