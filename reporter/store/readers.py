"""Reading usage files: CSV and JSON Lines as ``(line, row)`` pairs. A fault of framing (a
stray quote, an oversized field, a line that is not JSON) is an error of the line where it
starts, and every line after it is read again on its own: nothing is swallowed."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from reporter.errors import IngestError
from reporter.store.validate import FIELDS, REQUIRED

Row = tuple[int, dict[str, Any] | str]
_STRAY = "is a '\"' stray?"


class _Lines:
    """Physical lines and their numbers; the lines a record took can be put back."""

    def __init__(self, stream: Iterable[str]) -> None:
        self._stream = iter(stream)
        self._back: list[tuple[int, str]] = []  # a stack: the next line is the last
        self._read = 0
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            line = self._back.pop()
        else:
            text = next(self._stream)
            self._read += 1
            line = (self._read, text)
        self.taken.append(line)
        return line[1]

    def start(self) -> None:
        """Begin a record: forget the lines taken so far."""
        self.taken = []

    def put_back(self, lines: list[tuple[int, str]]) -> None:
        """Read these lines again, in order, before any new one."""
        self._back.extend(reversed(lines))


def _framing(exc: csv.Error, taken: list[tuple[int, str]]) -> str:
    why = str(exc)
    if len(taken) > 1:
        return (f"a quoted field opened on this line runs on to line {taken[-1][0]} "
                f"without closing; {_STRAY}")
    if "field larger than field limit" in why:
        return f"a field is longer than {csv.field_size_limit():,} characters"
    if "unexpected end of data" in why:
        return f"a quoted field opened on this line is never closed; {_STRAY}"
    if "expected after" in why:
        return f"text follows a closing quote; {_STRAY}"
    return f"not valid CSV ({why})"


def _header(reader: Any, name: str) -> list[str] | None:
    try:
        header = next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise IngestError(f"{name}:1: the header is not valid CSV ({exc})") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if any("\udc80" <= c <= "\udcff" for h in header for c in h):
        raise IngestError(f"{name}:1: not UTF-8 text")
    unknown = [h for h in header if h not in FIELDS]
    missing = [h for h in REQUIRED if h not in header]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append("unknown column(s) " + ", ".join(repr(h) for h in unknown))
        if missing:
            parts.append("missing column(s) " + ", ".join(repr(h) for h in missing))
        raise IngestError(f"{name}:1: {'; '.join(parts)} (known: {', '.join(sorted(FIELDS))})")
    return header


def read_csv(stream: Iterable[str], name: str) -> Iterator[Row]:
    """``(line, row)`` or ``(line, error)`` for each record of a CSV file with a header."""
    lines = _Lines(stream)
    reader = csv.reader(lines, strict=True)
    header = _header(reader, name)
    if header is None:
        return
    while True:
        lines.start()
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            taken = lines.taken
            if not taken:
                raise IngestError(f"{name}: not valid CSV ({exc})") from None
            yield taken[0][0], _framing(exc, taken)
            lines.put_back(taken[1:])
            reader = csv.reader(lines, strict=True)
            continue
        taken = lines.taken
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            if len(taken) > 1:  # a quote opened a field that swallowed line ends
                yield taken[0][0], (f"a quoted field opened on this line runs on to line "
                                    f"{taken[-1][0]}; {_STRAY}")
                lines.put_back(taken[1:])
            else:
                yield taken[0][0], f"expected {len(header)} fields, found {len(values)}"
            continue
        yield taken[0][0], dict(zip(header, values, strict=True))


def read_jsonl(stream: Iterable[str]) -> Iterator[Row]:
    """``(line, row)`` or ``(line, error)`` for each non-blank line of a JSON Lines file."""
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg})"
            continue
        except RecursionError:
            yield number, "not valid JSON (nested too deeply)"
            continue
        except ValueError:  # a number of more digits than Python reads
            yield number, "not valid JSON (a number is too long)"
            continue
        if not isinstance(data, dict):
            yield number, "expected a JSON object"
            continue
        yield number, data


def read_rows(stream: Iterable[str], name: str, fmt: str) -> Iterator[Row]:
    """Yield ``(line, row)`` or ``(line, error message)`` from a CSV or JSONL stream."""
    if fmt == "csv":
        return read_csv(stream, name)
    if fmt == "jsonl":
        return read_jsonl(stream)
    raise IngestError(f"{name}: unknown format {fmt!r} (csv or jsonl)")


def detect_format(name: str, default: str | None = None) -> str:
    """``csv`` or ``jsonl`` from a file name's extension (else ``default``)."""
    lower = name.lower()
    for suffix, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
                        (".json", "jsonl")):
        if lower.endswith(suffix):
            return fmt
    if default:
        return default
    raise IngestError(f"{name}: cannot tell the format from the name (use .csv or .jsonl)")
