#!/usr/bin/env bash
# Checks that a workspace image keeps the contract of images/CONTRACT.md, for real:
#   1. runs it with RFB published on a loopback port (-p 127.0.0.1::5901) and no password; waits
#      (bounded) for the "RFB 003.xxx" banner on that port and reports the start-to-ready time;
#      checks that security type None is offered, that Xvnc, openbox and the application run
#      (docker exec pgrep), that the session's sound server answers on /tmp/kasm-pulse/native with
#      the sink kasm_output and its monitor gives PCM (images with PulseAudio; sound is optional),
#      and that Docker's health check turns healthy;
#   2. runs it again with KASM_VNC_PASSWORD set and checks that only VncAuth is offered.
# Test containers are removed afterwards, also on failure.
#
# Usage: tests/images/check_image.sh IMAGE [--process NAME] [--timeout SECONDS] [--screenshot FILE]
#   --process     the application process to expect (default: the image's command, e.g. xterm)
#   --timeout     bound for the banner wait and for each later wait (default 30)
#   --screenshot  also save the screen of the first run as a PNG (after the application runs)
# Exit status: 0 passed, 1 failed, 77 skipped (no Docker engine or no such image) unless
# KASM_REQUIRE_SERVICES=1, which turns a skip into a failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
probe="$here/rfb_probe.py"
image=""
process=""
timeout=30
screenshot=""
while [ $# -gt 0 ]; do
  case "$1" in
    --process) process=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --screenshot) screenshot=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "check_image: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$image" ] || { echo "check_image: one image only" >&2; exit 2; }; image=$1; shift ;;
  esac
done
[ -n "$image" ] || { echo "usage: $0 IMAGE [--process NAME] [--timeout SECONDS] [--screenshot FILE]" >&2; exit 2; }

say() { echo "check_image: $image: $*"; }
fail() {
  echo "check_image: $image: FAILED: $*" >&2
  exit 1
}
skip() {
  if [ "${KASM_REQUIRE_SERVICES:-0}" = 1 ]; then fail "$* (KASM_REQUIRE_SERVICES=1)"; fi
  echo "check_image: $image: SKIPPED: $*"
  exit 77
}

command -v docker >/dev/null || skip "no docker client"
docker version -f '{{.Server.Version}}' >/dev/null 2>&1 || skip "no Docker engine answers"
docker image inspect "$image" >/dev/null 2>&1 || skip "image not present (build it: scripts/build-images.sh)"

containers=()
cleanup() {
  local c
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

show_logs() {
  echo "---- docker logs $1 ----" >&2
  docker logs --tail 30 "$1" >&2 2>&1 || true
}

# Starts the image; prints the container id. Extra arguments go to docker run.
start() {
  docker run -d --label kasm.test=check_image -p 127.0.0.1::5901 "$@" "$image"
}

published_port() {
  local hostport
  hostport=$(docker port "$1" 5901/tcp | grep '^127\.0\.0\.1:' | head -n1)
  [ -n "$hostport" ] || return 1
  echo "${hostport##*:}"
}

# Waits up to $timeout s for a command to succeed.
wait_until() {
  local deadline=$((SECONDS + timeout))
  while [ $SECONDS -lt $deadline ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  return 1
}

if [ -z "$process" ]; then
  process=$(docker image inspect -f '{{if .Config.Cmd}}{{index .Config.Cmd 0}}{{end}}' "$image")
  process=$(basename "${process:-xterm}")
fi

# ---- 1: no password --------------------------------------------------------------------------
t0=$(python3 -c 'import time; print(time.time())')
c=$(start) || fail "docker run failed"
containers+=("$c")
port=$(published_port "$c") || { show_logs "$c"; fail "5901/tcp is not published on 127.0.0.1"; }
if ! ready=$(python3 "$probe" wait 127.0.0.1 "$port" "$timeout" "$t0"); then
  show_logs "$c"
  fail "no RFB banner on 127.0.0.1:$port within $timeout s"
fi
banner=${ready% *}
seconds=${ready##* }
say "RFB ready on 127.0.0.1:$port after $seconds s ($banner)"
[ "$banner" = "RFB 003.008" ] || say "note: banner is $banner, not RFB 003.008"

types=$(python3 "$probe" security 127.0.0.1 "$port") || { show_logs "$c"; fail "RFB security handshake"; }
[[ " $types " == *" 1 "* ]] || fail "without KASM_VNC_PASSWORD security type None (1) must be offered; got: $types"
say "security types without a password: $types (1 = None)"

for p in Xvnc openbox "$process"; do
  wait_until docker exec "$c" pgrep -x "${p:0:15}" || { show_logs "$c"; fail "process $p is not running"; }
done
user=$(docker exec "$c" ps -o user= -C Xvnc | head -n1 | tr -d ' ')
[ "$user" != root ] || fail "Xvnc runs as root"
say "processes running: Xvnc (as $user), openbox, $process"

# Sound (CONTRACT.md, "Audio"): optional, but an image with PulseAudio must keep the contract.
if docker exec "$c" sh -c 'command -v pulseaudio' >/dev/null 2>&1; then
  pulse_ok() { docker exec "$c" pactl --server=unix:/tmp/kasm-pulse/native info 2>/dev/null | grep -qx 'Default Sink: kasm_output'; }
  wait_until pulse_ok || { show_logs "$c"; fail "no sound server with the default sink kasm_output on /tmp/kasm-pulse/native"; }
  owner=$(docker exec "$c" stat -c '%U %a' /tmp/kasm-pulse)
  [ "${owner% *}" != root ] && [ "${owner#* }" = 700 ] || fail "/tmp/kasm-pulse must be the session user's, mode 700; it is: $owner"
  # The server's recorder, for 0.1 s of sound (24 kHz, stereo, 16 bit: 9600 bytes).
  bytes=$(docker exec "$c" sh -c 'timeout 10 parec --server=unix:/tmp/kasm-pulse/native --device=kasm_output.monitor --format=s16le --rate=24000 --channels=2 --latency-msec=20 --raw 2>/dev/null | head -c 9600 | wc -c') || true
  [ "${bytes:-0}" -eq 9600 ] || fail "parec from kasm_output.monitor gave ${bytes:-0} of 9600 bytes within 10 s"
  docker exec "$c" pactl --server=unix:/tmp/kasm-pulse/native info | grep -qx 'Default Source: kasm_mic_sink.monitor' ||
    fail "the default source must be kasm_mic_sink.monitor (the microphone)"
  # The microphone's way in: what pacat plays into kasm_mic_sink is what the default source records.
  mic=$(docker exec "$c" sh -c 'timeout 10 parec --server=unix:/tmp/kasm-pulse/native --format=s16le --rate=24000 --channels=1 --raw 2>/dev/null | head -c 48000 | tr -d "\000" | wc -c & sleep 0.5; head -c 96000 /dev/urandom | timeout 5 pacat --playback --server=unix:/tmp/kasm-pulse/native --device=kasm_mic_sink --format=s16le --rate=24000 --channels=1 --raw; wait') || true
  [ "${mic:-0}" -gt 1000 ] || fail "the default source recorded silence while pacat played into kasm_mic_sink"
  say "sound: PulseAudio on /tmp/kasm-pulse/native ($owner), default sink kasm_output, its monitor records; the microphone sink reaches the default source"
else
  say "note: no PulseAudio in the image: no sound (optional)"
fi

if [ -n "$screenshot" ]; then
  sleep 2 # let the application draw its first window
  shot=$(python3 "$probe" screenshot 127.0.0.1 "$port" "$screenshot") || fail "screenshot"
  say "screenshot $screenshot: $shot"
fi

if [ -n "$(docker inspect -f '{{if .Config.Healthcheck}}yes{{end}}' "$c")" ]; then
  health_ok() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ]; }
  wait_until health_ok || { show_logs "$c"; fail "health check not healthy within $timeout s: $(docker inspect -f '{{json .State.Health}}' "$c")"; }
  say "health check: healthy"
else
  say "note: the image has no HEALTHCHECK"
fi
docker rm -f "$c" >/dev/null

# ---- 2: with a password ----------------------------------------------------------------------
c=$(KASM_VNC_PASSWORD="chk$RANDOM" start -e KASM_VNC_PASSWORD) || fail "docker run (with a password) failed"
containers+=("$c")
port=$(published_port "$c") || fail "5901/tcp is not published on 127.0.0.1"
python3 "$probe" wait 127.0.0.1 "$port" "$timeout" >/dev/null || { show_logs "$c"; fail "no RFB banner with a password set"; }
types=$(python3 "$probe" security 127.0.0.1 "$port") || fail "RFB security handshake (with a password)"
[ "$types" = 2 ] || fail "with KASM_VNC_PASSWORD only VncAuth (2) may be offered; got: $types"
wait_until docker exec "$c" pgrep -x openbox || fail "openbox is not running (with a password)"
if docker exec "$c" sh -c 'tr "\0" "\n" </proc/$(pgrep -x openbox | head -n1)/environ' | grep -q '^KASM_VNC_PASSWORD=.'; then
  fail "the session's applications see KASM_VNC_PASSWORD"
fi
say "security types with KASM_VNC_PASSWORD: $types (VncAuth only)"

say "PASSED (start to RFB ready: $seconds s)"
