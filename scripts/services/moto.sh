# moto's mock AWS server on a free loopback port for the aws-ec2 VM provider tests (tests/aws).
# Sourced by scripts/lib-services.sh. Needs a Python with moto 5 and its server extras (flask).
#
# start_moto exports:
#   KASM_TEST_MOTO_URL  http://127.0.0.1:PORT (any access key works; use region us-east-1)
#
# The Python is $KASM_MOTO_PYTHON when set, else the first of python3 on PATH and /usr/bin/python3
# that can import moto.server. moto keeps everything in memory: a new start is an empty account.

KASM_FIXED_SERVICES+=(moto)

# Prints the Python that can run moto's server; fails when there is none.
moto_python() {
  local py
  for py in "${KASM_MOTO_PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import moto.server' >/dev/null 2>&1; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

# Succeeds when moto answers on 127.0.0.1:$1.
moto_answers() {
  curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$1/moto-api/data.json" 2>/dev/null
}

start_moto() {
  local py dir port i
  if ! py=$(moto_python); then
    echo "moto not installed for any python3 (pip install 'moto[server]'; or set KASM_MOTO_PYTHON)" >&2
    return 1
  fi
  dir="$KASM_SERVICES_DIR/moto"
  mkdir -p "$dir"
  port=$(free_port)
  "$py" -m moto.server -H 127.0.0.1 -p "$port" </dev/null >"$dir/moto.log" 2>&1 &
  KASM_MOTO_PID=$!
  for i in $(seq 1 120); do
    if moto_answers "$port"; then
      export KASM_TEST_MOTO_URL="http://127.0.0.1:$port"
      echo "services: moto on 127.0.0.1:$port"
      return 0
    fi
    kill -0 "$KASM_MOTO_PID" 2>/dev/null || break
    sleep 0.25
  done
  echo "moto did not answer on 127.0.0.1:$port; its log:" >&2
  tail -n 30 "$dir/moto.log" >&2 2>/dev/null || true
  stop_moto
  return 1
}

stop_moto() {
  if [ -n "${KASM_MOTO_PID:-}" ]; then
    kill "$KASM_MOTO_PID" 2>/dev/null || true
    wait "$KASM_MOTO_PID" 2>/dev/null || true
    KASM_MOTO_PID=""
  fi
  unset KASM_TEST_MOTO_URL
}
