#!/usr/bin/env bash
# Set up (idempotent) and run bmadcc: daphne on http://127.0.0.1:${PORT:-8000} and a django-q2 worker.
# Embedded defaults: SQLite under var/, in-memory channel layer, ORM job broker, demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh runtime
scripts/debian.sh runtime
source scripts/env.sh
export DEBUG=${DEBUG:-false}
PY=.venv/bin/python
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py setup_demo
# Queues the starter cell classifier's training once (needs the shared PBC cells; says so if not).
$PY manage.py setup_models

$PY manage.py qcluster &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo "==> bmadcc at http://127.0.0.1:${PORT:-8000}/  (Ctrl-C stops it)"
.venv/bin/daphne -b "${HOST:-127.0.0.1}" -p "${PORT:-8000}" bmadcc_web.asgi:application
