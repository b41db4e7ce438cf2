#!/usr/bin/env bash
# The test command: installs what is missing, starts the services the tests need (PostgreSQL and
# Redis on loopback, dockerd and a registry), builds everything and runs the whole test suite. Extra arguments go to ctest, e.g.
# `scripts/test.sh -L unit`. Set KASM_REQUIRE_SERVICES=1 to fail instead of skipping when a
# service cannot be started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

"$root/scripts/install-deps.sh"

. "$root/scripts/lib-services.sh"
trap stop_services EXIT
if ! start_postgres; then
  echo "test: PostgreSQL could not be started" >&2
  if [ "${KASM_REQUIRE_SERVICES:-0}" = "1" ]; then exit 1; fi
fi
if ! start_redis; then
  echo "test: Redis could not be started" >&2
  if [ "${KASM_REQUIRE_SERVICES:-0}" = "1" ]; then exit 1; fi
fi
if ! start_docker_services; then
  echo "test: dockerd or the docker test images could not be set up" >&2
  if [ "${KASM_REQUIRE_SERVICES:-0}" = "1" ]; then exit 1; fi
fi

# The browser test launches the desktop workspace: build its image (skipped when up to date).
if docker_ping; then
  if ! "$root/scripts/build-images.sh" desktop; then
    echo "test: the desktop image could not be built" >&2
    if [ "${KASM_REQUIRE_SERVICES:-0}" = "1" ]; then exit 1; fi
  fi
fi

build_dir="${KASM_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j2 "$@"
