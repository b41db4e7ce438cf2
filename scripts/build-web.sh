#!/usr/bin/env bash
# Builds the web application (web/) into web/dist with npm.
# - `npm ci` runs only when web/node_modules is missing or package-lock.json changed since the last
#   install (a hash of the lock is kept in node_modules/.kasm-lock.sha256).
# - `npm run build` runs only when a source file is newer than the last build (web/dist/.kasm-stamp),
#   so a second run with nothing changed takes well under a second.
# Usage: scripts/build-web.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
web="$(cd "$here/../web" && pwd)"
force=0
if [ "${1:-}" = "--force" ]; then force=1; fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-web: '$tool' is not installed (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done

cd "$web"
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
lock_mark="node_modules/.kasm-lock.sha256"
if [ ! -d node_modules ] || [ ! -f "$lock_mark" ] || [ "$(cat "$lock_mark")" != "$lock_hash" ]; then
  echo "build-web: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > "$lock_mark"
  force=1
fi

stamp="dist/.kasm-stamp"
if [ "$force" -eq 0 ] && [ -f "$stamp" ] && [ -f dist/index.html ]; then
  newer="$(find index.html viewer.html terminal.html package.json package-lock.json tsconfig.json vite.config.ts src public \
             -newer "$stamp" -print -quit 2>/dev/null || true)"
  if [ -z "$newer" ]; then
    echo "build-web: web/dist is up to date"
    exit 0
  fi
fi

echo "build-web: npm run build"
npm run build --silent
touch "$stamp"
echo "build-web: built $(find dist -type f | wc -l) files into web/dist"
