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
if ! start_fixed_services; then
  echo "test: a fixed server (xrdp, sshd, Xvnc) could not be started" >&2
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

# Every parser of untrusted input under libFuzzer (clang-14, ASan+UBSan) for a few seconds each, on
# its seed corpus and the inputs that once found bugs (scripts/fuzz.sh; docs/robustness.md). Only
# for a whole run: a run of chosen tests (arguments) skips it.
if [ $# -eq 0 ] && [ "${KASM_SKIP_FUZZ:-0}" != "1" ]; then
  "$root/scripts/fuzz.sh" "${KASM_FUZZ_SECONDS:-10}"
fi

# The unit and net tests again under AddressSanitizer and UndefinedBehaviorSanitizer, and the
# concurrency tests under ThreadSanitizer (their own builds in build-asan and build-tsan;
# scripts/sanitize.sh; docs/robustness.md). Only for a whole run.
if [ $# -eq 0 ] && [ "${KASM_SKIP_SANITIZE:-0}" != "1" ]; then
  "$root/scripts/sanitize.sh" asan tsan
fi
