#!/usr/bin/env bash
# The tests that need no service, under sanitizers, each in its own build directory:
#   scripts/sanitize.sh [asan] [tsan]     (default: both)
# asan: AddressSanitizer + UndefinedBehaviorSanitizer over the unit tests (the manager, store,
#       APIs, sharing, chat, the RFB filter, ...) and the net tests (HTTP server, session proxy,
#       VNC bridge). tsan: ThreadSanitizer over the concurrency tests of the proxy, the HTTP server,
#       the manager and the chat. Builds only those two test binaries and what they link.
# Exit status: non-zero when a build fails or a sanitizer reports anything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(asan tsan)

configure() {  # dir sanitizer
  # -O1 -g1: line tables for the reports at less compile time than -O2 -g; asserts stay on.
  cmake -S "$root" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKASM_SANITIZE="$2" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DKASM_BUILD_BENCHMARKS=OFF -DKASM_WITH_PYTHON=OFF -DKASM_WITH_DOCKER=OFF >/dev/null
}

status=0
for mode in "${modes[@]}"; do
  start=$(date +%s)
  case "$mode" in
    asan)
      dir="${KASM_ASAN_BUILD_DIR:-$root/build-asan}"
      configure "$dir" "address,undefined"
      cmake --build "$dir" --target kasm_unit_tests kasm_net_tests
      export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1"
      export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
      "$dir/tests/kasm_unit_tests" --gtest_brief=1 || status=1
      "$dir/tests/kasm_net_tests" --gtest_brief=1 || status=1
      ;;
    tsan)
      dir="${KASM_TSAN_BUILD_DIR:-$root/build-tsan}"
      configure "$dir" "thread"
      cmake --build "$dir" --target kasm_unit_tests kasm_net_tests
      export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
      # The tests where threads meet: the proxy and HTTP server (I/O threads, the blocking pool,
      # closeSession/closeViewer from other threads), the manager under concurrent calls, sharing,
      # the chat's worker and the share database's delivery thread.
      "$dir/tests/kasm_net_tests" --gtest_brief=1 || status=1
      "$dir/tests/kasm_unit_tests" --gtest_brief=1 \
        --gtest_filter='*Concurren*:*Parallel*:*Race*:*Thread*:ManagerTest.*:Chat*:Sharing*:RemoteLink*' || status=1
      ;;
    *) echo "sanitize: unknown mode '$mode' (asan, tsan)" >&2; exit 2 ;;
  esac
  echo "sanitize: $mode took $(( $(date +%s) - start )) s (build and run)"
done
exit $status
