#!/usr/bin/env bash
# Validates the OpenAPI document with Redocly's linter (npm, pinned in package-lock.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/node_modules/.bin/redocly" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
cd "$here"
exec ./node_modules/.bin/redocly lint --config "$here/redocly.yaml" "$1"
