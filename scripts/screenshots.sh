#!/usr/bin/env bash
# Redraw the README's screenshots (docs/images/*.png) from the demo data: the weekly email at
# desktop and phone widths (Debian's chromium) and the PDF's first page (poppler's pdftoppm).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH=. exec .venv/bin/python docs/screenshots.py "$@"
