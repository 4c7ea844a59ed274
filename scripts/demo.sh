#!/usr/bin/env bash
# Install reporter and run the main job: demo data in SQLite, every job once, files in output/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/reporter demo
