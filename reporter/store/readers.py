"""Reading usage files: CSV and JSON Lines as ``(line, row)`` pairs. A fault of framing (a
stray quote, an oversized field, a line that is not JSON) is an error of the line where it
starts, and every line after it is read again on its own: nothing is swallowed."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from reporter.errors import IngestError
from reporter.store.validate import FIELDS, REQUIRED, JsonNumber, show

Row = tuple[int, dict[str, Any] | str]
#: told once per file about what was left out: ``usage.csv: ignored unknown column 'region'``
Warn = Callable[[str], None]
_STRAY = "is a '\"' stray?"
#: separators people's spreadsheets write instead of ','
_OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}
#: how many unknown names a warning lists
_SHOWN = 10


def _ignore(_message: str) -> None:
    """A Warn that says nothing."""


def _names(names: Iterable[str]) -> str:
    listed = sorted(set(names))
    text = ", ".join(show(n) for n in listed[:_SHOWN])
    return text + (f" and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else "")


def _delimiter_hint(header: list[str]) -> str:
    """A hint when the header is one field that another separator would split into ours."""
    for delimiter, called in _OTHER_DELIMITERS.items():
        parts = [p.strip().strip('"') for h in header for p in h.split(delimiter)]
        if len(parts) > len(header) and FIELDS.intersection(parts):
            return (f"the header is separated by {called}, not ',': reporter reads "
                    f"comma-separated CSV (export the file again with ',' as the delimiter)")
    return ""


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


def _header(reader: Any, name: str, strict: bool, warn: Warn) -> list[str] | None:
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
    hint = _delimiter_hint(header) if missing else ""
    if hint:
        raise IngestError(f"{name}:1: {hint}")
    if missing or (unknown and strict):
        parts = []
        if unknown:
            parts.append("unknown column(s) " + ", ".join(repr(h) for h in unknown))
        if missing:
            parts.append("missing column(s) " + ", ".join(repr(h) for h in missing))
        raise IngestError(f"{name}:1: {'; '.join(parts)} (known: {', '.join(sorted(FIELDS))})")
    if unknown:
        warn(f"{name}: ignored unknown column{'s' if len(unknown) > 1 else ''} "
             f"{_names(unknown)} (--strict refuses them)")
    return header


def read_csv(stream: Iterable[str], name: str, *, strict: bool = False,
             on_warning: Warn = _ignore) -> Iterator[Row]:
    """``(line, row)`` or ``(line, error)`` for each record of a CSV file with a header.
    Columns that are not usage fields are left out of every row, with one warning naming
    them; ``strict`` makes them an error of the file."""
    lines = _Lines(stream)
    reader = csv.reader(lines, strict=True)
    header = _header(reader, name, strict, on_warning)
    if header is None:
        return
    keep = [index for index, column in enumerate(header) if column in FIELDS]
    known = [header[index] for index in keep]
    every = len(keep) == len(header)  # no column to leave out
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
        if every:
            yield taken[0][0], dict(zip(known, values, strict=True))
        else:
            yield taken[0][0], dict(zip(known, [values[index] for index in keep],
                                                strict=True))


def read_jsonl(stream: Iterable[str], name: str = "<jsonl>", *, strict: bool = False,
               on_warning: Warn = _ignore) -> Iterator[Row]:
    """``(line, row)`` or ``(line, error)`` for each non-blank line of a JSON Lines file.
    Numbers keep the text they were written as (JsonNumber). Keys that are not usage
    fields are left out, with one warning naming them all once the file is read;
    ``strict`` makes them an error of their row."""
    unknown: set[str] = set()
    yield from _jsonl_rows(stream, strict, unknown)
    if unknown:
        on_warning(f"{name}: ignored unknown key{'s' if len(unknown) > 1 else ''} "
                   f"{_names(unknown)} (--strict refuses them)")


def _jsonl_rows(stream: Iterable[str], strict: bool, unknown: set[str]) -> Iterator[Row]:
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text, parse_float=JsonNumber)
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
        extra = [key for key in data if key not in FIELDS]
        if extra and strict:
            yield number, (f"unknown key{'s' if len(extra) > 1 else ''} {_names(extra)} "
                           f"(known: {', '.join(sorted(FIELDS))})")
            continue
        if extra:
            unknown.update(extra)
            data = {key: value for key, value in data.items() if key in FIELDS}
        yield number, data


def read_rows(stream: Iterable[str], name: str, fmt: str, *, strict: bool = False,
              on_warning: Warn | None = None) -> Iterator[Row]:
    """Yield ``(line, row)`` or ``(line, error message)`` from a CSV or JSONL stream; unknown
    columns and keys are left out with one ``on_warning`` per file, or refused when
    ``strict``."""
    warn = on_warning or _ignore
    if fmt == "csv":
        return read_csv(stream, name, strict=strict, on_warning=warn)
    if fmt == "jsonl":
        return read_jsonl(stream, name, strict=strict, on_warning=warn)
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
