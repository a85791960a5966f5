#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, browser tests included.
# Uses DATABASE_URL / REDIS_URL when set (CI: PostgreSQL and Redis), else SQLite and locmem.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" tests/slides
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
scripts/debian.sh dev
source scripts/env.sh
export DEBUG=false
# Jobs run in-process in tests (django-q2 sync mode), through the same task functions.
export Q_SYNC=${Q_SYNC:-true}
mkdir -p artifacts
.venv/bin/python manage.py collectstatic --noinput -v0
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Types: django-stubs and DRF stubs; settings in pyproject.toml.
.venv/bin/mypy apps ml bmadcc_web
.venv/bin/python -m pytest "$@"
