#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the reference server need.
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libpqxx-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev
  libspdlog-dev libfmt-dev pybind11-dev python3-dev python3-pytest
  doxygen  # API reference (target kasm_docs)
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev  # fuzz targets (libFuzzer, scripts/fuzz.sh)
  postgresql redis-server
  freerdp2-dev libssh-dev  # desktop gateway backends (kasm::rdp, kasm::ssh)
  xrdp xorgxrdp openssh-server tigervnc-standalone-server tigervnc-tools xfonts-base openbox xterm  # fixed servers for tests
  docker.io docker-registry busybox-static curl socat openssl iproute2 iptables  # iproute2: chaos_dockerd.py's bridge; iptables: e2e_scaleout_netns.py
  debootstrap  # workspace images (scripts/build-images.sh)
  nginx wrk websockify  # benchmark peers only (bench_proxy)
  chromium  # browser tests (tests/browser); the web build also needs node + npm (>= 20)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The Debian postgresql package starts a cluster of its own via systemd on some hosts; tests run
# their own cluster on a free port, so the packaged one is left alone.
