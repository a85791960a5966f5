#!/usr/bin/env bash
# Debian packages bmadcc needs beyond Python's, installed only when missing (idempotent).
#   runtime: pango (WeasyPrint renders the report PDFs)
#   dev:     also chromium (browser tests) and poppler-utils (pdftoppm/pdftotext read PDFs back)
# Usage: scripts/debian.sh [runtime|dev]
set -euo pipefail
kind=${1:-runtime}
need=""
ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0 || need="$need libpango-1.0-0 libpangoft2-1.0-0"
if [ "$kind" = dev ]; then
  [ -x /usr/bin/chromium ] || need="$need chromium"
  [ -x /usr/bin/pdftoppm ] || need="$need poppler-utils"
fi
if [ -n "$need" ]; then
  echo "==> installing Debian packages:$need"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $need >/dev/null
fi
