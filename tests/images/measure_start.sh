#!/usr/bin/env bash
# Measures a workspace image N times (default 5): from `docker run` to the RFB banner on the
# published loopback port, and to the application's process; after the last run, the memory of
# the idle session (docker stats, 8 s after start). Prints each run and the medians.
# Usage: tests/images/measure_start.sh IMAGE [N] [PROCESS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=$1
runs=${2:-5}
process=${3:-}
if [ -z "$process" ]; then
  process=$(docker image inspect -f '{{if .Config.Cmd}}{{index .Config.Cmd 0}}{{end}}' "$image")
  process=$(basename "${process:-xterm}")
fi
c=""
trap '[ -z "$c" ] || docker rm -f "$c" >/dev/null 2>&1 || true' EXIT
now() { python3 -c 'import time; print(time.time())'; }
ready_all=()
app_all=()
for i in $(seq 1 "$runs"); do
  t0=$(now)
  c=$(docker run -d --label kasm.test=measure_start -p 127.0.0.1::5901 "$image")
  port=$(docker port "$c" 5901/tcp | grep '^127\.0\.0\.1:' | head -n1)
  port=${port##*:}
  ready=$(python3 "$here/rfb_probe.py" wait 127.0.0.1 "$port" 30 "$t0")
  ready=${ready##* }
  app=""
  for _ in $(seq 1 300); do
    if docker exec "$c" pgrep -x "${process:0:15}" >/dev/null 2>&1; then
      app=$(python3 -c "import time; print('%.3f' % (time.time() - $t0))")
      break
    fi
    sleep 0.1
  done
  echo "run $i: RFB ready ${ready} s, $process running ${app:-never} s"
  ready_all+=("$ready")
  app_all+=("${app:-999}")
  if [ "$i" = "$runs" ]; then
    sleep 8
    echo "idle memory 8 s after start: $(docker stats --no-stream --format '{{.MemUsage}}' "$c" | cut -d/ -f1)"
  fi
  docker rm -f "$c" >/dev/null
  c=""
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "$image: median RFB ready $(median "${ready_all[@]}") s, median $process running $(median "${app_all[@]}") s ($runs runs); size $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1000000}')"
