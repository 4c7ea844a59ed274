"""Stored reports: ``<output>/<job>/<org>/<first>_<last>/[<member>/]`` plus a manifest."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reporter.fsutil import atomic_write, safe_name
from reporter.report.model import Report, ReportKey

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StoredFile:
    """One file written for a stored report."""

    format: str
    path: Path
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, str | int]:
        """The ledger's record of the file."""
        return {"format": self.format, "path": str(self.path), "bytes": self.bytes,
                "sha256": self.sha256}


def folder(output: Path, job: str, key: ReportKey) -> Path:
    """Where a report of ``job`` is stored; a personal report gets a member folder."""
    path = output / safe_name(job) / safe_name(key.organization) / key.period.slug
    return path / safe_name(key.member) if key.member else path


def paths(output: Path, job: str, key: ReportKey, formats: Sequence[str]) -> list[Path]:
    """The files storing ``formats`` of the report ``key`` writes."""
    where = folder(output, job, key)
    return [where / key.file_name(fmt) for fmt in formats]


def describe(rendered: dict[str, bytes], report: Report, where: Path) -> list[StoredFile]:
    """What storing would write, without writing it."""
    return [StoredFile(fmt, where / report.key.file_name(fmt), len(data),
                       hashlib.sha256(data).hexdigest()) for fmt, data in rendered.items()]


def save(output: Path, job: str, report: Report, rendered: dict[str, bytes],
          now: datetime) -> list[StoredFile]:
    """Write each rendered format atomically, then the manifest of names and checksums."""
    where = folder(output, job, report.key)
    files = describe(rendered, report, where)
    for item in files:
        atomic_write(item.path, rendered[item.format])
        log.info("stored %s (%d bytes)", item.path, item.bytes)
    manifest = {
        "job": job,
        "organization": report.organization.slug,
        "member": report.member,
        "period": {"name": report.period.name, "first": report.period.first.isoformat(),
                   "last": report.period.last.isoformat(),
                   "timezone": report.period.timezone},
        "stored_at": now.isoformat(),
        "files": [{"name": f.path.name, "format": f.format, "bytes": f.bytes,
                   "sha256": f.sha256} for f in files],
    }
    atomic_write(where / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return files
