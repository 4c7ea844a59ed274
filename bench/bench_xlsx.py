"""Benchmark: XLSX rendering for a week, a month and a year, against XlsxWriter writing the same.

Run: .venv/bin/python -m bench.bench_xlsx [--events 500000] [--repeat 3]

The usage store is built once (fixed seed) under bench/results/ and reused. Every
measurement runs in a fresh interpreter that loads the pickled report (its members' shares
read into memory first, so the time is the writing alone, not the database's; bench_store
measures a report streamed from the database), and its peak memory is that process's own.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import FIRST, child_json, table
from reporter import periods
from reporter.render.xlsx_report import _views
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import db
from reporter.store import orgs as store
from reporter.store.demo import synthetic_events
from reporter.store.ingest import ingest_rows

RESULTS = Path(__file__).parent / "results"
TZ = "America/New_York"
LAST = FIRST + timedelta(days=364)
AS_OF = datetime(LAST.year, LAST.month, LAST.day, 23, tzinfo=UTC)
PERIODS = ("past-week", "past-month", "past-year")


def usage_db(count: int, seed: int = 42, members: int = 50) -> Path:
    """A SQLite store holding ``count`` synthetic events over a year, built once and reused."""
    path = RESULTS / f"xlsx-{count}-{seed}.db"
    if path.exists():
        return path
    RESULTS.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    engine = db.open_engine(f"sqlite:///{tmp}")
    store.set_org(engine, "bench", timezone=TZ)
    events = synthetic_events(count, FIRST + timedelta(days=1), 363, org="bench",
                              members=members, seed=seed)
    result = ingest_rows(engine, enumerate(events, start=1), "bench")
    assert result.inserted == count, result
    engine.dispose()
    tmp.replace(path)
    return path


def xlsxwriter_render(report: Report, path: str) -> None:
    """The same sheets, rows, formats, widths, filters and chart, written with XlsxWriter."""
    import xlsxwriter

    places = report.cost_places
    wb = xlsxwriter.Workbook(path, {"constant_memory": True})
    wb.set_properties({"title": report.title, "author": "reporter"})
    bold = wb.add_format({"bold": True})
    total_label = wb.add_format({"bold": True, "top": 1})
    head = wb.add_format({"bold": True, "bg_color": "#DDE3EA", "bottom": 1})
    head_right = wb.add_format({"bold": True, "bg_color": "#DDE3EA", "bottom": 1,
                                "align": "right"})
    total_usd = wb.add_format({"bold": True, "top": 1, "num_format": '"$"#,##0.' + "0" * places})
    total_count = wb.add_format({"bold": True, "top": 1, "num_format": "#,##0"})
    day = wb.add_format({"num_format": "yyyy-mm-dd"})
    usd = wb.add_format({"num_format": '"$"#,##0.' + "0" * places})
    count = wb.add_format({"num_format": "#,##0"})

    summary = wb.add_worksheet("Summary")
    summary.write_string(0, 0, report.title, bold)
    for col, title in enumerate(("Date", "Cost (USD)", "Requests", "Tokens"), start=3):
        summary.write_string(2, col, title, head)
    for index, point in enumerate(report.daily, start=3):
        summary.write_datetime(index, 3, datetime.combine(point.date, datetime.min.time()), day)
        summary.write_number(index, 4, point.cost_nanos / 1e9, usd)
        summary.write_number(index, 5, point.requests, count)
        summary.write_number(index, 6, point.tokens, count)
    chart = wb.add_chart({"type": "column"})
    end = 3 + len(report.daily)
    chart.add_series({"categories": ["Summary", 3, 3, end - 1, 3],
                      "values": ["Summary", 3, 4, end - 1, 4]})
    summary.insert_chart("I3", chart)

    # tables are not available in XlsxWriter's constant_memory mode: a filter stands in for
    # each (a table is one small XML part; the cells are the work)
    for view in _views(report):
        columns, totals = view.columns, view.totals
        ws = wb.add_worksheet(view.title)
        formats = [{"date": day, "usd": usd, "count": count}.get(c.kind) for c in columns]
        for col, column in enumerate(columns):
            ws.set_column(col, col, column.width or 16)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(view.count, 1), len(columns) - 1)
        for col, column in enumerate(columns):
            ws.write_string(0, col, column.header, head if column.kind == "text" else head_right)
        for r, values in enumerate(view.rows, start=1):
            for c, (kind, value) in enumerate(zip(columns, values, strict=True)):
                if value is None:
                    continue
                if kind.kind == "text":
                    ws.write_string(r, c, value)
                elif kind.kind == "date":
                    ws.write_datetime(r, c, datetime.combine(value, datetime.min.time()), day)
                elif kind.kind == "usd":
                    ws.write_number(r, c, value / 1e9, usd)
                else:
                    ws.write_number(r, c, value, formats[c])
        last = max(view.count, 1) + 1
        ws.write_string(view.count + 2, 0, "Total", total_label)
        for c, value in enumerate(totals[1:], start=1):
            if value is not None:
                letter = chr(ord("A") + c)
                usd_column = columns[c].kind == "usd"
                ws.write_formula(view.count + 2, c, f"=SUBTOTAL(109,{letter}2:{letter}{last})",
                                 total_usd if usd_column else total_count,
                                 value / 1e9 if usd_column else value)
    wb.close()


CHILD = """
import json, pickle, sys, time, tracemalloc
from bench.bench_xlsx import xlsxwriter_render
from reporter.render import xlsx_report
with open(sys.argv[1], "rb") as handle:
    report = pickle.load(handle)
if sys.argv[4] == "memory":
    tracemalloc.start()
start = time.perf_counter()
if sys.argv[2] == "ours":
    data = xlsx_report.render(report)
    with open(sys.argv[3], "wb") as handle:
        handle.write(data)
    del data
else:
    xlsxwriter_render(report, sys.argv[3])
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1] / 2**20 if tracemalloc.is_tracing() else 0
# VmHWM: this program's own peak (ru_maxrss keeps the parent's when it forked by vfork)
peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")]
print(json.dumps({"seconds": seconds, "peak_mb": peak[0] / 1024, "traced_mb": traced}))
"""


def measure(pickled: Path, writer: str, out: Path, repeat: int) -> dict[str, Any]:
    """The fastest of ``repeat`` fresh-process runs; then one run tracing the render's memory
    (the peak of Python allocations during the render, and the whole process's peak RSS)."""
    runs = [child_json(CHILD, str(pickled), writer, str(out), "time") for _ in range(repeat)]
    best = min(runs, key=lambda r: r["seconds"])
    memory = child_json(CHILD, str(pickled), writer, str(out), "memory")
    best["traced_mb"] = memory["traced_mb"]
    best["bytes"] = out.stat().st_size
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = usage_db(args.events, args.seed)
    engine = db.open_engine(f"sqlite:///{path}")
    rows = [["period", "requests", "sheet rows", "ours", "XlsxWriter", "ratio",
             "ours: render peak MB", "process peak RSS MB", "XlsxWriter: render peak MB",
             "file"]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in PERIODS:
            period = periods.resolve(name, TZ, AS_OF)
            report = aggregate.build(engine, "bench", period, now=AS_OF)
            report.materialize()
            pickled = folder / f"{name}.pickle"
            pickled.write_bytes(pickle.dumps(report))
            sheet_rows = sum(view.count for view in _views(report)) + len(report.daily)
            ours = measure(pickled, "ours", folder / f"{name}.xlsx", args.repeat)
            theirs = measure(pickled, "xlsxwriter", folder / f"{name}-xw.xlsx", args.repeat)
            rows.append([name, f"{report.summary.requests:,}", f"{sheet_rows:,}",
                         f"{ours['seconds']:.2f} s", f"{theirs['seconds']:.2f} s",
                         f"{ours['seconds'] / theirs['seconds']:.2f}x",
                         f"{ours['traced_mb']:.1f}", f"{ours['peak_mb']:.0f}",
                         f"{theirs['traced_mb']:.1f}", f"{ours['bytes'] / 1e6:.1f} MB"])
            print(table(rows[:1] + rows[-1:]), flush=True)
    engine.dispose()
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
