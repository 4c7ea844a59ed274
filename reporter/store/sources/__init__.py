"""Sources: read usage where it already lives (a LiteLLM proxy's database, Kilo Code's cloud
database, any SQL database) and copy it into the store, incrementally and exactly.

``common`` holds ``SourceSettings`` (reporter.config reads the ``sources:`` section of
jobs.yaml into them), the conversions and results; ``litellm``, ``kilo`` and ``sql`` know
each kind's tables; ``watermark`` keeps how far each source was read; ``sync`` pages
through a source and feeds the rows to ``reporter.store.ingest.ingest_rows``.

May import: the foundation (reporter.errors, reporter.money, ...) and reporter.store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reporter.store.sources.common import SourceError, SourceSettings, SyncResult
    from reporter.store.sources.sync import sync_all, sync_source

__all__ = ["SourceError", "SourceSettings", "SyncResult", "sync_all", "sync_source"]

#: where each name lives: importing the package (as reading a watermark does, for a report)
#: loads neither the readers nor ingest
_HOMES = {"SourceError": "common", "SourceSettings": "common", "SyncResult": "common",
          "sync_all": "sync", "sync_source": "sync"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
