"""Test helpers: build usage rows and load them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine

from reporter.store.ingest import IngestResult, ingest_rows


def row(event_id: str, timestamp: str, *, org: str = "acme", email: str = "alice@acme.com",
        model: str = "anthropic/claude-sonnet-4", project: str = "", input_tokens: int = 10,
        output_tokens: int = 5, cost: str = "0.01", cache_read: int = 0,
        cache_write: int = 0) -> dict[str, Any]:
    return {"id": event_id, "timestamp": timestamp, "organization": org, "user_email": email,
            "model": model, "project": project, "input_tokens": str(input_tokens),
            "output_tokens": str(output_tokens), "cache_read_tokens": str(cache_read),
            "cache_write_tokens": str(cache_write), "cost_usd": cost}


def load(engine: Engine, rows: Iterable[dict[str, Any]], name: str = "test") -> IngestResult:
    return ingest_rows(engine, enumerate(rows, start=1), name)
