#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, browser tests included.
# Uses DATABASE_URL / REDIS_URL when set (CI: PostgreSQL and Redis), else SQLite and locmem.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" tests/slides
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
# Debian packages the tests need: chromium (browser tests), poppler (pdftoppm/pdftotext read the
# report PDFs back) and pango (WeasyPrint renders them).
need=""
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -x /usr/bin/pdftoppm ] || need="$need poppler-utils"
ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0 || need="$need libpango-1.0-0 libpangoft2-1.0-0"
if [ -n "$need" ]; then
  echo "==> installing Debian packages:$need"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $need >/dev/null
fi
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
