#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts dockerd when it does not answer, and runs
# kasm-server on its embedded default: SQLite in ./kasm-data, an in-process agent on the local
# Docker engine, HTTPS on 127.0.0.1:8443 with a generated certificate. The first start prints the
# admin credentials. Extra arguments go to kasm-server (e.g. --http --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
"$root/scripts/install-deps.sh"
data_dir="${KASM_DATA_DIR:-$root/kasm-data}"
mkdir -p "$data_dir/services"
export KASM_SERVICES_DIR="$data_dir/services"
. "$root/scripts/lib-services.sh"
if start_dockerd; then
  # The default desktop workspace needs its image; the first build takes a few minutes.
  "$root/scripts/build-images.sh" desktop ||
    echo "run: the desktop image could not be built; see the messages above" >&2
else
  echo "run: no Docker engine; kasm-server starts without its local agent" >&2
fi
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" --target kasm-server
cmake --build "$root/build" --target kasm_web ||
  echo "run: the web application could not be built (it needs node >= 20 and npm); the APIs still work" >&2
echo "run: open the URL below and log in as admin@kasm.local with the password in $data_dir/admin-password (first start)" \
  "(or set KASM_ADMIN_PASSWORD before the first start)" >&2
exec "$root/build/reference-server/kasm-server" --data-dir "$data_dir" "$@"
