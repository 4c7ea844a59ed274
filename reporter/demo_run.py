"""What ``reporter demo`` runs after loading the demo data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from . import aggregate, render, store


def run(ctx: Any, now: datetime) -> list[Path]:
    """Team and personal JSON reports of the previous week for every organization."""
    engine = ctx.engine
    out = Path("output") / "demo"
    written: list[Path] = []
    for org in store.list_orgs(engine):
        period = aggregate.resolve_period(engine, org.slug, "previous-week", now)
        report = aggregate.build(engine, org.slug, period, now=now)
        written += render.write(report, ["json"], out / org.slug)
    return written
