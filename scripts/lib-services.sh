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

# Starts a redis-server with a password on a free loopback port (no persistence) and exports
# KASM_TEST_REDIS_URL. The tests that stop and restart Redis start a private one of their own.
start_redis() {
  command -v redis-server >/dev/null 2>&1 || { echo "redis-server not installed (apt-get install redis-server)" >&2; return 1; }
  local port dir pw i
  port=$(free_port)
  dir="$KASM_SERVICES_DIR/redis"
  pw="kasm-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
    --requirepass "$pw" --logfile "$dir/redis.log" >/dev/null 2>&1 &
  KASM_REDIS_PID=$!
  for i in $(seq 1 60); do
    if [ "$(REDISCLI_AUTH="$pw" redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
      export KASM_TEST_REDIS_URL="redis://:${pw}@127.0.0.1:${port}/0"
      echo "services: Redis on 127.0.0.1:$port"
      return 0
    fi
    kill -0 "$KASM_REDIS_PID" 2>/dev/null || break
    sleep 0.25
  done
  cat "$dir/redis.log" >&2 2>/dev/null || true
  stop_redis
  return 1
}

stop_redis() {
  if [ -n "${KASM_REDIS_PID:-}" ]; then
    kill "$KASM_REDIS_PID" 2>/dev/null || true
    wait "$KASM_REDIS_PID" 2>/dev/null || true
    KASM_REDIS_PID=""
  fi
}

# ---- docker: dockerd, a local registry and the test images (begin) ----------------------------
KASM_DOCKER_SOCK="${KASM_DOCKER_SOCK:-/var/run/docker.sock}"

docker_ping() {
  curl -sf --max-time 3 --unix-socket "$KASM_DOCKER_SOCK" http://localhost/_ping >/dev/null 2>&1
}

# Uses the dockerd that answers on the socket, or starts one in the background (logs in
# $KASM_SERVICES_DIR). Only a dockerd started here is stopped by stop_services.
start_dockerd() {
  if docker_ping; then
    echo "services: dockerd already running on $KASM_DOCKER_SOCK"
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd not installed (apt-get install docker.io)" >&2
    return 1
  fi
  dockerd >"$KASM_SERVICES_DIR/dockerd.log" 2>&1 &
  KASM_DOCKERD_PID=$!
  local i
  for i in $(seq 1 120); do
    if docker_ping; then
      echo "services: dockerd started (pid $KASM_DOCKERD_PID)"
      return 0
    fi
    kill -0 "$KASM_DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd did not answer on $KASM_DOCKER_SOCK; its log:" >&2
  tail -n 30 "$KASM_SERVICES_DIR/dockerd.log" >&2
  KASM_DOCKERD_PID=""
  return 1
}

stop_dockerd() {
  if [ -n "${KASM_DOCKERD_PID:-}" ]; then
    kill "$KASM_DOCKERD_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 60); do kill -0 "$KASM_DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    KASM_DOCKERD_PID=""
  fi
}

# Debian's docker-registry on a free loopback port, storage in $KASM_SERVICES_DIR. The engine
# treats 127.0.0.0/8 registries as insecure (plain HTTP) by default, so no TLS is needed.
start_registry() {
  if ! command -v docker-registry >/dev/null 2>&1; then
    echo "docker-registry not installed (apt-get install docker-registry)" >&2
    return 1
  fi
  local port dir
  port=$(free_port)
  dir="$KASM_SERVICES_DIR/registry"
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF_REGISTRY
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF_REGISTRY
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  KASM_REGISTRY_PID=$!
  if ! wait_for_registry "$KASM_REGISTRY_PID" "$dir/registry.log" "http://127.0.0.1:$port/v2/"; then
    KASM_REGISTRY_PID=""
    return 1
  fi
  export KASM_TEST_REGISTRY="127.0.0.1:$port"
  echo "services: registry on $KASM_TEST_REGISTRY"
}

# Waits up to 15 s for a registry process to answer `url` (extra curl arguments follow); prints its
# log and fails when it dies or never answers.
wait_for_registry() {
  local pid=$1 log=$2 url=$3 i
  shift 3
  for i in $(seq 1 60); do
    curl -sf --max-time 2 "$@" "$url" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  cat "$log" >&2
  return 1
}

# A second registry over the same storage that demands a password (htpasswd, bcrypt), for the
# credential tests; exports KASM_TEST_AUTH_REGISTRY, KASM_TEST_AUTH_USER, KASM_TEST_AUTH_PASSWORD.
# Needs start_registry first. Images pushed to the open one can be pulled from this one.
start_auth_registry() {
  local port dir user=kasm password
  [ -n "${KASM_TEST_REGISTRY:-}" ] || return 1
  password="pw-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  port=$(free_port)
  dir="$KASM_SERVICES_DIR/registry-auth"
  mkdir -p "$dir"
  python3 -W ignore -c 'import crypt, sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
    "$user" "$password" >"$dir/htpasswd" || return 1
  cat >"$dir/config.yml" <<EOF_REGISTRY
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $KASM_SERVICES_DIR/registry/data
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: kasm-test
    path: $dir/htpasswd
EOF_REGISTRY
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  KASM_AUTH_REGISTRY_PID=$!
  if ! wait_for_registry "$KASM_AUTH_REGISTRY_PID" "$dir/registry.log" "http://127.0.0.1:$port/v2/" \
      -u "$user:$password"; then
    KASM_AUTH_REGISTRY_PID=""
    return 1
  fi
  export KASM_TEST_AUTH_REGISTRY="127.0.0.1:$port" KASM_TEST_AUTH_USER="$user" KASM_TEST_AUTH_PASSWORD="$password"
  echo "services: registry with a password on $KASM_TEST_AUTH_REGISTRY"
}

stop_registry() {
  if [ -n "${KASM_AUTH_REGISTRY_PID:-}" ]; then
    kill "$KASM_AUTH_REGISTRY_PID" 2>/dev/null || true
    wait "$KASM_AUTH_REGISTRY_PID" 2>/dev/null || true
    KASM_AUTH_REGISTRY_PID=""
  fi
  if [ -n "${KASM_REGISTRY_PID:-}" ]; then
    kill "$KASM_REGISTRY_PID" 2>/dev/null || true
    wait "$KASM_REGISTRY_PID" 2>/dev/null || true
    KASM_REGISTRY_PID=""
  fi
}

# A TLS endpoint for the engine, the way a remote dockerd with --tlsverify is reached: socat on a
# loopback port terminates TLS (client certificate required) and forwards to the unix socket.
# Exports KASM_TEST_DOCKER_TLS_ENDPOINT and KASM_TEST_DOCKER_CERT_DIR (ca.pem, cert.pem, key.pem).
start_docker_tls_endpoint() {
  command -v socat >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || {
    echo "socat or openssl missing (apt-get install socat openssl)" >&2
    return 1
  }
  local dir="$KASM_SERVICES_DIR/docker-tls" port i
  mkdir -p "$dir"
  (
    cd "$dir" &&
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=kasm-test-ca &&
      openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1 &&
      printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
        -extfile server.ext -out server-cert.pem &&
      openssl req -newkey rsa:2048 -nodes -keyout key.pem -out client.csr -subj /CN=kasm-test-client &&
      printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
      openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
        -extfile client.ext -out cert.pem
  ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
  port=$(free_port)
  socat "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,cert=$dir/server-cert.pem,key=$dir/server-key.pem,cafile=$dir/ca.pem,verify=1" \
    "UNIX-CONNECT:$KASM_DOCKER_SOCK" >"$dir/socat.log" 2>&1 &
  KASM_DOCKER_TLS_PID=$!
  for i in $(seq 1 40); do
    if curl -sf --max-time 2 --cacert "$dir/ca.pem" --cert "$dir/cert.pem" --key "$dir/key.pem" \
      "https://127.0.0.1:$port/_ping" >/dev/null 2>&1; then
      export KASM_TEST_DOCKER_TLS_ENDPOINT="tcp://127.0.0.1:$port" KASM_TEST_DOCKER_CERT_DIR="$dir"
      echo "services: docker over TLS on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.25
  done
  cat "$dir/socat.log" >&2
  return 1
}

stop_docker_tls_endpoint() {
  if [ -n "${KASM_DOCKER_TLS_PID:-}" ]; then
    kill "$KASM_DOCKER_TLS_PID" 2>/dev/null || true
    wait "$KASM_DOCKER_TLS_PID" 2>/dev/null || true
    KASM_DOCKER_TLS_PID=""
  fi
}

# Imports a busybox-static root filesystem as image $2 whose /marker holds $1 (different markers
# give different layers). It serves /www over HTTP on 8080.
import_busybox_image() {
  local marker="$1" ref="$2" root
  root="$KASM_SERVICES_DIR/rootfs-$marker"
  rm -rf "$root"
  mkdir -p "$root/bin" "$root/www" "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  local applet
  for applet in sh httpd sleep echo cat ls true false nc; do ln -s busybox "$root/bin/$applet"; done
  echo "$marker" >"$root/marker"
  echo "kasm test page $marker" >"$root/www/index.html"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]'     -c 'EXPOSE 8080' - "$ref" >/dev/null
  rm -rf "$root"
}

# Builds the busybox test image (exports KASM_TEST_IMAGE) and, when the registry runs, pushes two
# other images to it and removes them locally so that tests pull them for real (exports
# KASM_TEST_PULL_IMAGE and KASM_TEST_PULL_IMAGE_B).
build_docker_test_images() {
  if [ ! -x /bin/busybox ] || ! /bin/busybox --list 2>/dev/null | grep -x httpd >/dev/null; then
    echo "busybox with httpd not found (apt-get install busybox-static)" >&2
    return 1
  fi
  export KASM_TEST_IMAGE="kasm-test/busybox:1"
  import_busybox_image base "$KASM_TEST_IMAGE" || return 1
  echo "services: test image $KASM_TEST_IMAGE"
  if [ -n "${KASM_TEST_REGISTRY:-}" ]; then
    local a="$KASM_TEST_REGISTRY/kasm-test/pull:1" b="$KASM_TEST_REGISTRY/kasm-test/prune-b:1"
    import_busybox_image pull-a "$a" && docker push "$a" >/dev/null && docker rmi "$a" >/dev/null || return 1
    import_busybox_image pull-b "$b" && docker push "$b" >/dev/null && docker rmi "$b" >/dev/null || return 1
    # The one a launch pulls (tests/e2e/manager_docker_test.cpp), apart from the image sync's two.
    local c="$KASM_TEST_REGISTRY/kasm-test/pull-on-launch:1"
    import_busybox_image pull-c "$c" && docker push "$c" >/dev/null && docker rmi "$c" >/dev/null || return 1
    export KASM_TEST_PULL_IMAGE="$a" KASM_TEST_PULL_IMAGE_B="$b" KASM_TEST_LAUNCH_PULL_IMAGE="$c"
    echo "services: pushed $a, $b and $c"
  fi
}

# Starts everything the docker tests use; failure only means those tests skip (or fail in CI).
start_docker_services() {
  start_dockerd || return 1
  start_registry || echo "services: registry not started; pull tests will skip" >&2
  start_auth_registry || echo "services: password registry not started; credential tests will skip" >&2
  start_docker_tls_endpoint || echo "services: no TLS endpoint for the engine; the TLS test will skip" >&2
  build_docker_test_images
}

stop_docker_services() {
  # The test image is ours to remove; one still in use (another run) stays.
  if [ -n "${KASM_TEST_IMAGE:-}" ] && docker_ping; then docker rmi "$KASM_TEST_IMAGE" >/dev/null 2>&1 || true; fi
  stop_docker_tls_endpoint
  stop_registry
  stop_dockerd
}
# ---- docker (end) ------------------------------------------------------------------------------

# Fixed servers for the gateway and server tests (xrdp, sshd, a fixed Xvnc): one file each in
# scripts/services/, each defining start_<name> and stop_<name> and adding <name> to
# KASM_FIXED_SERVICES. start_fixed_services starts them all.
KASM_FIXED_SERVICES=()
for f in "$(dirname "${BASH_SOURCE[0]}")"/services/*.sh; do
  [ -f "$f" ] && . "$f"
done

start_fixed_services() {
  local name ok=0
  for name in "${KASM_FIXED_SERVICES[@]}"; do
    if ! "start_$name"; then
      echo "services: $name could not be started" >&2
      ok=1
    fi
  done
  return $ok
}

stop_fixed_services() {
  local name
  for name in "${KASM_FIXED_SERVICES[@]}"; do "stop_$name" || true; done
}

stop_services() {
  stop_fixed_services
  stop_docker_services
  stop_redis
  stop_postgres
  rm -rf "$KASM_SERVICES_DIR"
}
