"""Sources: read usage where it already lives (a LiteLLM proxy's database, Kilo Code's cloud
database, any SQL database) and copy it into the store, incrementally and exactly.

``settings`` parses the ``sources:`` section of jobs.yaml; ``litellm``, ``kilo`` and ``sql``
know each kind's tables; ``common`` holds the conversions and results; ``watermark`` keeps
how far each source was read; ``sync`` pages through a source and feeds the rows to
``reporter.store.ingest.ingest_rows``.

May import: the foundation (reporter.errors, reporter.money, ...) and reporter.store.
"""

from reporter.store.sources.common import SourceError, SyncResult
from reporter.store.sources.settings import SourceSettings, load_sources, parse_sources
from reporter.store.sources.sync import sync_all, sync_source

__all__ = ["SourceError", "SourceSettings", "SyncResult", "load_sources", "parse_sources",
           "sync_all", "sync_source"]
