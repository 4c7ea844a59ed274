"""Benchmark: HTML and PDF rendering (and the other formats) for a week, a month and a year.

Run: .venv/bin/python -m bench.bench_render [--per-day 700] [--repeat 1]

Synthetic usage (fixed seed, 50 members, 10 models) goes into a SQLite file in a temporary
folder; nothing is written to the repository. Each report is built once, its members' shares
read into memory, and pickled; every measurement then runs in a fresh interpreter that loads
the pickle, so its time is the render alone (bench_store measures a report streamed from
the database) and its peak memory (``VmHWM``) is that process's own. The week's PDF is compared
with ``chromium --headless --print-to-pdf`` printing the very HTML that reporter hands to
WeasyPrint (``pdf_report.print_page``), both timed the same way: one cold process from start
to finished file, runs alternated.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from reporter.periods import Period
from reporter.render import pdf_report
from reporter.report import aggregate
from reporter.store import db
from reporter.store import orgs as store
from reporter.store.demo import synthetic_events
from reporter.store.ingest import ingest_rows

FIRST = date(2025, 1, 1)
DAYS = 365
MEMBERS = 50
MODELS = [f"{vendor}/model-{n}" for vendor in ("anthropic", "openai") for n in range(5)]
PERIODS = {"week": 7, "month": 30, "year": 365}
CHROMIUM = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-sync", "--no-pdf-header-footer"]

#: the child's environment: bytecode caches written and used, as an installed package has them
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CHILD = """
import json, pickle, sys, time
report = pickle.loads(open(sys.argv[1], "rb").read())
start = time.perf_counter()
from reporter.render import render
data = render(report, sys.argv[2])
seconds = time.perf_counter() - start
open(sys.argv[3], "wb").write(data)
print(json.dumps({"seconds": seconds, "bytes": len(data),
                  "peak_mb": [int(line.split()[1]) for line in open("/proc/self/status")
                              if line.startswith("VmHWM")][0] / 1024}))
"""


def usage_db(folder: Path, per_day: int, seed: int) -> str:
    """A SQLite store with a year of synthetic usage: 50 members spread over 10 models."""
    url = f"sqlite:///{folder / 'usage.db'}"
    engine = db.open_engine(url)
    store.set_org(engine, "bench", name="Bench Org", timezone="UTC")
    rng = random.Random(seed)

    def events() -> Any:
        for number, event in enumerate(synthetic_events(per_day * DAYS, FIRST, DAYS,
                                                        members=MEMBERS, seed=seed), start=1):
            event["model"] = rng.choice(MODELS)
            yield number, event

    ingest_rows(engine, events(), "bench")
    engine.dispose()
    return url


def child(pickled: Path, fmt: str, out: Path) -> dict[str, Any]:
    """Render one format in a fresh interpreter; its time, size and peak memory."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(pickled), fmt, str(out)],
                          check=True, capture_output=True, text=True, env=CHILD_ENV)
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    result["wall"] = time.perf_counter() - started
    return result


def chromium_pdf(html: Path, out: Path) -> float:
    """Seconds for headless Chromium to print ``html`` to a PDF, start to finished file."""
    started = time.perf_counter()
    subprocess.run([*CHROMIUM, f"--print-to-pdf={out}", html.as_uri()], check=True,
                   capture_output=True)
    return time.perf_counter() - started


def pages(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(pdf).pages)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-day", type=int, default=700, help="events a day (default 700)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs")
    parser.add_argument("--periods", default=",".join(PERIODS),
                        help="which reports (default week,month,year)")
    args = parser.parse_args()
    formats = [f for f in ("html", "pdf", "xlsx", "json")
               if importlib.util.find_spec(f"reporter.render.{f}_report")]

    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        url = usage_db(folder, args.per_day, args.seed)
        print(f"{args.per_day * DAYS:,} events over {DAYS} days, {MEMBERS} members, "
              f"{len(MODELS)} models; store built in {time.perf_counter() - started:.1f} s",
              flush=True)
        engine = db.open_engine(url)
        last = FIRST + timedelta(days=DAYS - 1)
        rows = [["period", "format", "render s", "peak MB", "size", "pages"]]
        compare: list[list[str]] = [["report", "WeasyPrint (ours) s", "Chromium s",
                                     "ours / Chromium (bests)", "median of pairs", "our pages",
                                     "Chromium pages"]]
        for name in args.periods.split(","):
            days = PERIODS[name]
            period = Period("custom", last - timedelta(days=days - 1), last, "UTC")
            report = aggregate.build(engine, "bench", period,
                                     now=datetime(2026, 1, 1, tzinfo=UTC))
            report.materialize()
            pickled = folder / f"{name}.pickle"
            pickled.write_bytes(pickle.dumps(report))
            for fmt in formats:
                out = folder / f"{name}.{fmt}"
                runs = [child(pickled, fmt, out) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["seconds"])
                rows.append([name, fmt, f"{best['seconds']:.2f}", f"{best['peak_mb']:.0f}",
                             f"{best['bytes'] / 1e6:.2f} MB",
                             str(pages(out)) if fmt == "pdf" else ""])
                print(" | ".join(rows[-1]), flush=True)
            if name == "week":
                html = folder / "week-print.html"
                # the very page WeasyPrint prints: rolled up, with its column widths
                html.write_text(pdf_report.print_page(report), encoding="utf-8")
                ours, theirs = [], []
                for _ in range(args.repeat):  # alternate, so both see the same load
                    ours.append(child(pickled, "pdf", folder / "week.pdf")["wall"])
                    theirs.append(chromium_pdf(html, folder / "week-chromium.pdf"))
                ours_s, theirs_s = min(ours), min(theirs)
                paired = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
                compare.append([f"week, {MEMBERS} members, {len(MODELS)} models",
                                f"{ours_s:.2f}", f"{theirs_s:.2f}",
                                f"{ours_s / theirs_s:.2f}", f"{paired:.2f}",
                                str(pages(folder / "week.pdf")),
                                str(pages(folder / "week-chromium.pdf"))])
                print(" | ".join(compare[-1]), flush=True)
        engine.dispose()
    print()
    print(table(rows))
    print()
    print(table(compare))


if __name__ == "__main__":
    main()
