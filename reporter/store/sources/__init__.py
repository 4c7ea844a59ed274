"""Sources: read usage where it already lives (a LiteLLM proxy's database, Kilo Code's cloud
database, any SQL database) and copy it into the store, incrementally and exactly.

``common`` holds ``SourceSettings`` (reporter.config reads the ``sources:`` section of
jobs.yaml into them), the conversions and results; ``litellm``, ``kilo`` and ``sql`` know
each kind's tables; ``watermark`` keeps how far each source was read; ``sync`` pages
through a source and feeds the rows to ``reporter.store.ingest.ingest_rows``.

May import: the foundation (reporter.errors, reporter.money, ...) and reporter.store.
"""

from reporter.store.sources.common import SourceError, SourceSettings, SyncResult
from reporter.store.sources.sync import sync_all, sync_source

__all__ = ["SourceError", "SourceSettings", "SyncResult", "sync_all", "sync_source"]
