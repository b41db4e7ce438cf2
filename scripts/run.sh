#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs kasm on its embedded default (SQLite in
# ./kasm-data). Until the reference server lands this runs the quick-start example.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" --target kasm_quickstart
exec "$root/build/examples/kasm_quickstart" "${KASM_DATA_DIR:-$root/kasm-data}"
