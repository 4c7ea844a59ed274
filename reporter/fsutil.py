"""Files: atomic writes and safe, informative file names."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from reporter.errors import ReporterError

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


class FileWriteError(ReporterError):
    """A file or folder cannot be written (a path under a file, no permission, a full disk);
    the message names the path."""

    def __init__(self, path: Path, exc: OSError, what: str = "cannot write") -> None:
        self.path = path
        reason = exc.strerror or type(exc).__name__
        where = Path(exc.filename) if isinstance(exc.filename, str) else path
        detail = f" ({where})" if where not in (path, path.parent) else ""
        super().__init__(f"{what} {path}: {reason}{detail}")


def ensure_folder(path: Path) -> Path:
    """``path`` as an existing folder (created with its parents); FileWriteError when it
    cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(path, exc, "cannot create folder") from None
    return path


def atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename;
    FileWriteError (naming the path) when the folder or the file cannot be written."""
    ensure_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise FileWriteError(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise FileWriteError(path, exc) from None
        raise
    return path


def safe_name(text: str, max_length: int = 60) -> str:
    """A file-name component made of ``[A-Za-z0-9._@+-]``; a short hash marks any change."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_text).strip(".-")[:max_length].strip(".-")
    if cleaned != text or not cleaned:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned}-{digest}" if cleaned else digest
    return cleaned
