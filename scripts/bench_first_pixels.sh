#!/usr/bin/env bash
# Time from the click on Launch to the first drawn desktop frame (benchmarks/browser/first_pixels.mjs),
# cold and from a staged session, on the desktop workspace, against a kasm-server of this build:
#   scripts/bench_first_pixels.sh [ROUNDS]
# Needs dockerd answering, the desktop image (scripts/build-images.sh desktop), Chromium, and the
# web application built (scripts/build-web.sh). The staged case needs a licence with the staging
# feature: one is made with the vendor tool of this build (build/tools/kasm-license).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
rounds="${1:-5}"
build="${KASM_BUILD_DIR:-$repo/build}"
server="$build/reference-server/kasm-server"
tool="$build/tools/kasm-license/kasm-license"
chromium="${KASM_CHROMIUM:-/usr/bin/chromium}"
for f in "$server" "$tool" "$chromium"; do [ -x "$f" ] || { echo "bench_first_pixels: $f is missing" >&2; exit 1; }; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
tmp=$(mktemp -d /tmp/kasm-first-pixels.XXXXXX)
password="bench-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$tool" keygen --private-key "$tmp/private.pem" --public-key "$tmp/public.pem" >/dev/null
"$tool" issue --private-key "$tmp/private.pem" --customer Bench --type concurrent_sessions --limit 10 --days 1 \
  --features staging --out "$tmp/activation.txt" >/dev/null
KASM_ADMIN_PASSWORD="$password" KASM_WEB_ROOT="$repo/web/dist" "$server" --http --port "$port" --data-dir "$tmp/data" \
  --license-public-key "$tmp/public.pem" >"$tmp/server.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do curl -fsS -m 2 "$base/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
run() {
  KASM_URL="$base" KASM_USERNAME="admin@kasm.local" KASM_PASSWORD="$password" KASM_WEB_DIR="$repo/web" \
    KASM_CHROMIUM="$chromium" KASM_ROUNDS="$rounds" node "$repo/benchmarks/browser/first_pixels.mjs"
}
KASM_LABEL=cold run
# The staged case: the licence for this installation, then a pool of one staged desktop.
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
jar="$tmp/cookies"
csrf=$(curl -fsS -c "$jar" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin@kasm.local\",\"password\":\"$password\"}" "$base/api/v1/auth/login" | json csrf_token)
installation=$(curl -fsS -b "$jar" "$base/api/v1/installation" | json installation_id)
"$tool" activate --private-key "$tmp/private.pem" --activation-key "$tmp/activation.txt" \
  --installation-id "$installation" --out "$tmp/license.txt" >/dev/null
python3 -c 'import json,sys; print(json.dumps({"license": open(sys.argv[1]).read()}))' "$tmp/license.txt" |
  curl -fsS -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' --data-binary @- -o /dev/null \
    "$base/api/v1/licenses"
zone=$(curl -fsS -b "$jar" "$base/api/v1/zones" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
curl -fsS -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' -o /dev/null \
  -d "{\"workspace_id\":\"desktop\",\"zone_id\":\"$zone\",\"desired\":1}" "$base/api/v1/staging"
KASM_LABEL=staged KASM_STAGED=1 run
