#!/usr/bin/env bash
# Install what the tests need, start PostgreSQL and Redis, then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/services.sh
.venv/bin/ruff check reporter tests bench
.venv/bin/mypy
# --cov: branch coverage of reporter/ ([tool.coverage] in pyproject.toml), the CLI, scheduler,
# pool and Celery worker processes the tests start included; reported, never a gate
.venv/bin/pytest -n 2 --dist loadgroup --cov --cov-report=term "$@"
