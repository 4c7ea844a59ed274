#!/usr/bin/env bash
# Redraw the README's screenshots (docs/images/*.png) from the demo data: the weekly email at
# desktop and phone widths (Debian's chromium) and the PDF's first page (poppler's pdftoppm).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import playwright" 2>/dev/null || ! command -v pdftoppm >/dev/null; then
    echo "screenshots.sh needs Playwright, Chromium and poppler: run 'bash scripts/setup.sh --test' first" >&2
    exit 1
fi
PYTHONPATH=. exec .venv/bin/python docs/screenshots.py "$@"
