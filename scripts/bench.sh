#!/usr/bin/env bash
# Runs the benchmarks with the services they need. `scripts/bench.sh [store|scheduler|manager|all]`.
# JSON results land in build/bench-<name>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which="${1:-all}"
"$root/scripts/install-deps.sh"
. "$root/scripts/lib-services.sh"
trap stop_services EXIT
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" --target bench_store bench_scheduler bench_manager

if [ "$which" = "store" ] || [ "$which" = "all" ]; then
  start_postgres
  KASM_BENCH_POSTGRES_URL="$KASM_TEST_POSTGRES_URL" "$root/build/benchmarks/bench_store" \
    --benchmark_min_time=1 --benchmark_out="$root/build/bench-store.json" --benchmark_out_format=json
fi

if [ "$which" = "scheduler" ] || [ "$which" = "all" ]; then
  "$root/build/benchmarks/bench_scheduler" --benchmark_out="$root/build/bench-scheduler.json" --benchmark_out_format=json
fi

if [ "$which" = "manager" ] || [ "$which" = "all" ]; then
  [ -n "${KASM_TEST_POSTGRES_URL:-}" ] || start_postgres
  KASM_BENCH_POSTGRES_URL="$KASM_TEST_POSTGRES_URL" "$root/build/benchmarks/bench_manager" \
    --benchmark_out="$root/build/bench-manager.json" --benchmark_out_format=json
fi

# ---- proxy: kasm::net SessionProxy vs Debian nginx on the same upstream (begin) ----------------
if [ "$which" = "proxy" ] || [ "$which" = "all" ]; then
  cmake --build "$root/build" --target bench_proxy
  "$root/build/benchmarks/bench_proxy" --seconds 2 --connections 4 --rounds 5 --idle 5000 | tee "$root/build/bench-proxy.txt"
fi
# ---- proxy (end) ---------------------------------------------------------------------------------
