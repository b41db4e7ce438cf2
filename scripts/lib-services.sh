# Shared by scripts/test.sh and scripts/bench.sh: start and stop the real services the tests use,
# each on a free loopback port in a temporary directory. Source it; call the functions.

KASM_SERVICES_DIR="${KASM_SERVICES_DIR:-$(mktemp -d /tmp/kasm-services.XXXXXX)}"
chmod 755 "$KASM_SERVICES_DIR"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command as the unprivileged postgres user when we are root (PostgreSQL refuses root).
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  echo "postgresql server binaries not found (apt-get install postgresql)" >&2
  return 1
}

# Starts PostgreSQL with password authentication over TCP and exports KASM_TEST_POSTGRES_URL.
start_postgres() {
  local bin port dir pw
  bin=$(pg_bin) || return 1
  port=$(free_port)
  dir="$KASM_SERVICES_DIR/pg"
  pw="kasm-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
  echo "$pw" > "$KASM_SERVICES_DIR/pg.pw"
  chmod 644 "$KASM_SERVICES_DIR/pg.pw"
  as_pg_user "$bin/initdb" -D "$dir/data" -U kasm --pwfile="$KASM_SERVICES_DIR/pg.pw" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >"$KASM_SERVICES_DIR/initdb.log" 2>&1 ||
    { cat "$KASM_SERVICES_DIR/initdb.log"; return 1; }
  as_pg_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-k $dir -h 127.0.0.1 -p $port -c max_connections=200 -c fsync=off" start >/dev/null ||
    { cat "$dir/server.log"; return 1; }
  export KASM_TEST_POSTGRES_URL="postgresql://kasm:${pw}@127.0.0.1:${port}/postgres"
  KASM_PG_DATA="$dir/data"
  echo "services: PostgreSQL on 127.0.0.1:$port"
}

stop_postgres() {
  if [ -n "${KASM_PG_DATA:-}" ] && [ -d "$KASM_PG_DATA" ]; then
    as_pg_user "$(pg_bin)/pg_ctl" -D "$KASM_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
}

stop_services() {
  stop_postgres
  rm -rf "$KASM_SERVICES_DIR"
}
