#!/usr/bin/env bash
# Runs the browser tests (tests/browser/*.test.mjs) against a real kasm-server:
#   tests/browser/run.sh <path/to/kasm-server> [web/dist directory]
# Starts the server on a free loopback port with a temporary data directory and a known admin
# password, waits for /readyz, runs the tests in headless Chromium (web_flow, fixed_servers,
# autoscale, portal_frame, the integration guide's Python, file_transfer, audio, microphone, then share_flow), then stops the server and
# removes the temporary directory. share_flow needs a licence with the "sharing" feature: a key pair and a licence are
# made with the vendor tool kasm-license ($KASM_LICENSE_TOOL, default: beside the server binary's
# build directory, build/tools/kasm-license/kasm-license), the server trusts the public key, and
# the licence is added after the other tests (web_flow checks the unlicensed state). Screenshots go to $KASM_ARTIFACTS_DIR (default
# build/browser-artifacts), with the server log beside them.
# fixed_servers uses the fixed VNC and SSH servers of scripts/services/ (KASM_TEST_VNC_*,
# KASM_TEST_SSHD_*, from the environment) and skips the parts whose server is not there.
# KASM_BROWSER_TESTS="fixed_servers share_flow" runs only the tests named (default: all of them:
# web_flow fixed_servers autoscale portal_frame doc_examples file_transfer audio microphone share_flow).
# Exit 77 (ctest SKIP_RETURN_CODE) when chromium, node or web/node_modules is missing, unless
# KASM_REQUIRE_SERVICES=1, when that is a failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
server="${1:?usage: run.sh <kasm-server binary> [web dist dir]}"
web_dist="$(cd "${2:-$repo/web/dist}" 2>/dev/null && pwd || true)"
artifacts="${KASM_ARTIFACTS_DIR:-$repo/build/browser-artifacts}"
mkdir -p "$artifacts"
artifacts="$(cd "$artifacts" && pwd)"

skip() {
  if [ "${KASM_REQUIRE_SERVICES:-0}" = "1" ]; then
    echo "browser test: $1 (KASM_REQUIRE_SERVICES=1, so this is a failure)" >&2
    exit 1
  fi
  echo "browser test: SKIPPED: $1" >&2
  exit 77
}

chromium="${KASM_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || skip "no Chromium at $chromium (apt-get install --no-install-recommends chromium)"
command -v node >/dev/null || skip "node is not installed"
[ -d "$repo/web/node_modules/playwright-core" ] || skip "web/node_modules is missing (run scripts/build-web.sh)"
[ -x "$server" ] || { echo "browser test: kasm-server binary '$server' not found" >&2; exit 1; }
[ -n "$web_dist" ] && [ -f "$web_dist/index.html" ] || { echo "browser test: no built web application (run scripts/build-web.sh)" >&2; exit 1; }

# True when test $1 is to run (KASM_BROWSER_TESTS unset or naming it).
selected() { [ -z "${KASM_BROWSER_TESTS:-}" ] || [[ " $KASM_BROWSER_TESTS " == *" $1 "* ]]; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port="$(free_port)"
portal_port="$(free_port)"
tmp="$(mktemp -d /tmp/kasm-browser.XXXXXX)"
password="browser-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
server_pid=""

cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT INT TERM

# The vendor's side of licensing, for share_flow: a key pair now (the server trusts the public key
# from the start) and an activation key, activated for this installation once the server runs.
license_tool="${KASM_LICENSE_TOOL:-$(cd "$(dirname "$server")/.." && pwd)/tools/kasm-license/kasm-license}"
license_args=()
if [ -x "$license_tool" ]; then
  mkdir -p "$tmp/license"
  "$license_tool" keygen --private-key "$tmp/license/private.pem" --public-key "$tmp/license/public.pem" >/dev/null
  "$license_tool" issue --private-key "$tmp/license/private.pem" --customer Test --type concurrent_sessions \
    --limit 10 --days 30 --features sharing --out "$tmp/license/activation.txt" >/dev/null
  license_args=(--license-public-key "$tmp/license/public.pem")
fi

echo "browser test: starting $server on 127.0.0.1:$port (web root $web_dist)"
KASM_ADMIN_PASSWORD="$password" KASM_WEB_ROOT="$web_dist" \
  "$server" --http --port "$port" --data-dir "$tmp/data" --frame-ancestor "http://127.0.0.1:$portal_port" \
  "${license_args[@]}" >"$artifacts/server.log" 2>&1 &
server_pid=$!

base="http://127.0.0.1:$port"
for i in $(seq 1 120); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "browser test: kasm-server exited during startup; its log:" >&2
    tail -n 40 "$artifacts/server.log" >&2
    exit 1
  fi
  if curl -fsS -m 2 "$base/readyz" >/dev/null 2>&1; then break; fi
  if [ "$i" -eq 120 ]; then
    echo "browser test: kasm-server was not ready within 60 s; its log:" >&2
    tail -n 40 "$artifacts/server.log" >&2
    exit 1
  fi
  sleep 0.5
done

# The web application must be mounted: "/" is the login page's HTML, /api/v1 answers JSON.
if ! curl -fsS -m 5 "$base/" | grep -qi '<div id="app"'; then
  echo "browser test: kasm-server does not serve the web application at / (mount kasm::net::StaticFiles on $web_dist)" >&2
  exit 1
fi

if selected web_flow; then
  KASM_URL="$base" KASM_PASSWORD="$password" KASM_USERNAME="admin@kasm.local" KASM_ARTIFACTS_DIR="$artifacts" \
    KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
    timeout 600 node "$here/web_flow.test.mjs"
fi

# Fixed servers (VNC, SSH) and a link workspace, made through the admin pages and launched from the
# dashboard; it removes what it made, so the tests after it see the server as before.
if selected fixed_servers; then
  KASM_URL="$base" KASM_PASSWORD="$password" KASM_USERNAME="admin@kasm.local" KASM_ARTIFACTS_DIR="$artifacts" \
    KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
    timeout 600 node "$here/fixed_servers.test.mjs"
fi

# Autoscaling through the admin pages: a configuration with the command provider (the reference
# script scripts/vm-providers/directory-vms.py, machines as files in a temporary directory) in a zone
# of its own, its status, decisions and machines, a masked provider secret; it removes what it made
# (winding its machine down takes up to a minute and a half).
if selected autoscale; then
  KASM_URL="$base" KASM_PASSWORD="$password" KASM_USERNAME="admin@kasm.local" KASM_ARTIFACTS_DIR="$artifacts" \
    KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
    timeout 540 node "$here/autoscale.test.mjs"
fi

# The integrator's path: a key made by the CLI beside the running server (same database), then a
# portal on another origin that frames the kasm_url request_kasm returns.
key_json="$("$server" api-key create --name browser-portal --data-dir "$tmp/data")"
api_key="$(printf '%s' "$key_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
api_secret="$(printf '%s' "$key_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key_secret"])')"
if selected portal_frame; then
  KASM_URL="$base" KASM_API_KEY="$api_key" KASM_API_SECRET="$api_secret" KASM_PORTAL_PORT="$portal_port" \
    KASM_ARTIFACTS_DIR="$artifacts" KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
    timeout 400 node "$here/portal_frame.test.mjs"
fi

# The integration guide's Python (docs/integrating.md) against this server, as written.
if selected doc_examples; then
  KASM_URL="$base" KASM_API_KEY="$api_key" KASM_API_SECRET="$api_secret" PYTHONPATH="${KASM_PYTHONPATH:-}" \
    KASM_REPO="$repo" timeout 300 "${KASM_PYTHON:-python3}" "$repo/tests/docs/doc_examples.py" python-with-server
fi

# File transfer in the session viewer: the admin's group allows uploads and downloads for the test
# (its settings are restored after it); a file goes up, is copied to ~/Downloads with
# exec_command_kasm, and comes back down.
if selected file_transfer; then
  KASM_URL="$base" KASM_PASSWORD="$password" KASM_USERNAME="admin@kasm.local" KASM_API_KEY="$api_key" \
    KASM_API_SECRET="$api_secret" KASM_ARTIFACTS_DIR="$artifacts" KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
    timeout 480 node "$here/file_transfer.test.mjs"
fi

# The desktop's sound in the session viewer: the admin's group allows audio for the test (its
# settings are restored after it); "Sound" plays the session's PulseAudio output, a 440 Hz tone
# made with exec_command_kasm shows in the page's analyser; then a refusal with audio not allowed.
if selected audio; then
  KASM_URL="$base" KASM_PASSWORD="$password" KASM_USERNAME="admin@kasm.local" KASM_API_KEY="$api_key" \
    KASM_API_SECRET="$api_secret" KASM_ARTIFACTS_DIR="$artifacts" KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
    timeout 480 node "$here/audio.test.mjs"
fi

# The browser's microphone in the desktop: the admin's group allows it for the test (restored
# after it); Chromium's fake microphone goes through "Mic" into the session's default source,
# recorded there with parec through exec_command_kasm; then a refusal with it not allowed.
if selected microphone; then
  KASM_URL="$base" KASM_PASSWORD="$password" KASM_USERNAME="admin@kasm.local" KASM_API_KEY="$api_key" \
    KASM_API_SECRET="$api_secret" KASM_ARTIFACTS_DIR="$artifacts" KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
    timeout 480 node "$here/microphone.test.mjs"
fi
selected share_flow || exit 0

# Session sharing: the licence for this installation (the admin's REST login reads its id), then
# two users sharing a desktop in two browsers.
if [ "${#license_args[@]}" -eq 0 ]; then
  if [ "${KASM_REQUIRE_SERVICES:-0}" = "1" ]; then
    echo "browser test: share_flow needs the licence tool, not found at $license_tool (KASM_REQUIRE_SERVICES=1, so this is a failure)" >&2
    exit 1
  fi
  echo "browser test: share_flow SKIPPED: no licence tool at $license_tool (set KASM_LICENSE_TOOL)" >&2
  exit 0
fi
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
jar="$tmp/admin.cookies"
csrf="$(curl -fsS -m 10 -c "$jar" -H 'Content-Type: application/json' \
  -d "$(python3 -c 'import json,sys; print(json.dumps({"username": "admin@kasm.local", "password": sys.argv[1]}))' "$password")" \
  "$base/api/v1/auth/login" | json_field csrf_token)"
installation="$(curl -fsS -m 10 -b "$jar" "$base/api/v1/installation" | json_field installation_id)"
"$license_tool" activate --private-key "$tmp/license/private.pem" --activation-key "$tmp/license/activation.txt" \
  --installation-id "$installation" --out "$tmp/license/license.txt" >/dev/null
python3 -c 'import json,sys; print(json.dumps({"license": open(sys.argv[1]).read()}))' "$tmp/license/license.txt" |
  curl -fsS -m 10 -b "$jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' --data-binary @- \
    -o /dev/null "$base/api/v1/licenses"
echo "browser test: licence with the sharing feature added for installation $installation"
KASM_URL="$base" KASM_PASSWORD="$password" KASM_USERNAME="admin@kasm.local" KASM_API_KEY="$api_key" \
  KASM_API_SECRET="$api_secret" KASM_ARTIFACTS_DIR="$artifacts" KASM_WEB_DIR="$repo/web" KASM_CHROMIUM="$chromium" \
  timeout 540 node "$here/share_flow.test.mjs"
