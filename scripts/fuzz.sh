#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, KASM_FUZZ=ON with clang-14) in build-fuzz and runs each
# for SECONDS (default 60) on a copy of its seed corpus in tests/fuzz/corpus/<target>/:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [target...]     e.g. scripts/fuzz.sh 20   (what CI runs)
#                                                             scripts/fuzz.sh 600 rfb_filter
#
# Prints, per target, the executions, executions per second, and "no crash" or the crashing input
# (kept under build-fuzz/fuzz-runs/<target>/); exits non-zero when any target crashed. Targets are
# named without the fuzz_ prefix; no names means all of them. Set KASM_FUZZ_BUILD_DIR for another
# build directory and KASM_FUZZ_JOBS to run that many fuzzing processes per target (libFuzzer -fork).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=60
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
build=${KASM_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${KASM_FUZZ_JOBS:-1}

all_targets() {
  for f in "$root"/tests/fuzz/fuzz_*.cpp; do
    f=${f##*/fuzz_}
    echo "${f%.cpp}"
  done
}
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(all_targets); fi
for t in "${targets[@]}"; do
  if [ ! -f "$root/tests/fuzz/fuzz_$t.cpp" ]; then
    echo "fuzz: no target '$t' (known: $(all_targets | tr '\n' ' '))" >&2
    exit 2
  fi
done

# Configure once; the targets need only the core library (and Beast's headers), so the optional
# components are off. Tests, benchmarks and install rules are not wanted in this build.
if [ ! -f "$build/build.ninja" ] || ! grep -q '^KASM_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S "$root" -B "$build" -G Ninja -DKASM_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKASM_BUILD_TESTS=OFF -DKASM_BUILD_BENCHMARKS=OFF -DKASM_INSTALL=OFF \
    -DKASM_WITH_POSTGRES=OFF -DKASM_WITH_REDIS=OFF -DKASM_WITH_DOCKER=OFF -DKASM_WITH_NET=OFF \
    -DKASM_WITH_PYTHON=OFF >/dev/null
fi
ninja -C "$build" "${targets[@]/#/fuzz_}"

# Stack traces for UBSan reports too; a leak is a finding like any other.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

status=0
printf '%-16s %14s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  run="$build/fuzz-runs/$t"
  rm -rf "$run/corpus"
  mkdir -p "$run/corpus"
  cp "$root/tests/fuzz/corpus/$t/"* "$run/corpus/" 2>/dev/null || true
  fork=()
  if [ "$jobs" -gt 1 ]; then fork=(-fork="$jobs" -ignore_crashes=0); fi
  set +e
  (cd "$run" && "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$run/" "${fork[@]}" corpus >"$run/log" 2>&1)
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$run/log" | grep -o '[0-9]*$' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$run/log" | grep -o '[0-9]*$' | tail -1 || true)
  crash=$(grep -o "Test unit written to .*" "$run/log" | head -1 | sed 's/Test unit written to //' || true)
  if [ $rc -eq 0 ] && [ -z "$crash" ]; then
    result="no crash"
  else
    result="CRASH ${crash:-(exit $rc, see $run/log)}"
    status=1
  fi
  printf '%-16s %14s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
done
exit $status
