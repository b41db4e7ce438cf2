#!/usr/bin/env bash
# Builds the kasm workspace images from Debian packages only (no Docker Hub):
#   kasm/base            debootstrap --variant=minbase bookworm + chroot apt-get -> docker import
#                        (kasm/base-rootfs:<hash>), then images/base/Dockerfile on top of it
#   kasm/desktop         FROM kasm/base      (openbox desktop, panel, xterm, a few tools)
#   kasm/firefox         FROM kasm/base      (firefox-esr as a single application)
#   kasm/desktop-deluxe  FROM kasm/desktop   (+ LibreOffice Writer/Calc, files, editor, firefox)
# Each image is tagged kasm/<name>:<VERSION> and kasm/<name>:latest.
#
# Usage: scripts/build-images.sh [--force] [--verbose] [base|desktop|firefox|desktop-deluxe|all]...
#   (no name = all). An image whose label org.kasm.image.build-hash equals the hash of its inputs
#   (its files under images/, the VERSION, its parent image's ID) is skipped unless --force.
#   --force rebuilds the named images (for base: a fresh apt-get from the cached debootstrap tarball,
#   which picks up Debian updates) and therefore everything built on them.
# Needs root for base (debootstrap, mount, chroot) and a Docker engine (started when it does not
# answer, like scripts/run.sh does). Caches in $KASM_IMAGES_CACHE (default /var/cache/kasm-images):
# the debootstrap tarball, downloaded .deb files and build logs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
images_dir="$root/images"
version=$(tr -d ' \n' <"$root/VERSION")
suite=bookworm
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
# Debian's mirrors come from this machine's own apt configuration (so the build also works behind a
# site's mirror); KASM_DEBIAN_MIRROR / KASM_DEBIAN_SECURITY_MIRROR override them.
# host_apt_uri main|security: the first URI whose suites are (not) the -security ones.
host_apt_uri() {
  local want=$1
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      # deb822 stanzas: print "URI SUITES" per stanza.
      awk 'BEGIN{RS="";FS="\n"} {u="";s=""; for(i=1;i<=NF;i++){ if($i ~ /^URIs:/){sub(/^URIs:[ \t]*/,"",$i); split($i,a," "); u=a[1]} if($i ~ /^Suites:/){sub(/^Suites:[ \t]*/,"",$i); s=$i} } if(u!="") print u, s}' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while (i<=NF && $i !~ /\]$/) i++; i++ } print $i, $(i+1) }' "$f"
    done
  } | while read -r uri suites; do
    kind=main
    case "$suites" in *-security*) kind=security ;; esac
    if [ "$kind" = "$want" ]; then echo "$uri"; fi
  done | head -n1 || true
}
mirror="${KASM_DEBIAN_MIRROR:-$(host_apt_uri main)}"
security_mirror="${KASM_DEBIAN_SECURITY_MIRROR:-$(host_apt_uri security)}"
[ -n "$mirror" ] || { echo "build-images: no Debian mirror in this machine's apt configuration; set KASM_DEBIAN_MIRROR" >&2; exit 1; }
cache="${KASM_IMAGES_CACHE:-/var/cache/kasm-images}"
# Bump when the rootfs recipe in this script changes in a way the hashed files do not show.
rootfs_recipe=2

force=0
verbose=0
targets=()

say() { echo "build-images: $*"; }
fail() {
  echo "build-images: FAILED: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --verbose | -v) verbose=1 ;;
    -h | --help) usage; exit 0 ;;
    base | desktop | firefox | desktop-deluxe) targets+=("$arg") ;;
    all) targets+=(base desktop firefox desktop-deluxe) ;;
    *) usage >&2; fail "unknown argument '$arg'" ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(base desktop firefox desktop-deluxe)

parent_of() {
  case "$1" in
    base) echo "" ;;
    desktop | firefox) echo base ;;
    desktop-deluxe) echo desktop ;;
  esac
}

# The requested images and their parents, parents first, each once.
order=()
add_with_parents() {
  local p
  p=$(parent_of "$1")
  [ -z "$p" ] || add_with_parents "$p"
  local o
  for o in "${order[@]}"; do [ "$o" = "$1" ] && return 0; done
  order+=("$1")
}
for t in "${targets[@]}"; do add_with_parents "$t"; done
# --force applies to the named images; their parents are only built when missing or outdated.
declare -A forced=()
if [ "$force" = 1 ]; then for t in "${targets[@]}"; do forced[$t]=1; done; fi

mkdir -p "$cache/logs" "$cache/apt-archives/partial" "$cache/services"

# ---- Docker engine -----------------------------------------------------------------------------
export KASM_SERVICES_DIR="$cache/services"
# shellcheck source=lib-services.sh
. "$root/scripts/lib-services.sh"
start_dockerd >/dev/null || fail "no Docker engine answers on ${KASM_DOCKER_SOCK} and dockerd could not be started"

# ---- helpers -----------------------------------------------------------------------------------
sha() { sha256sum | cut -d' ' -f1; }

# Hash of files (names relative to images/, modes and contents) plus extra words.
hash_inputs() {
  local extra=$1
  shift
  {
    echo "$extra"
    (cd "$images_dir" && find "$@" -type f ! -name '*~' -print0 | sort -z |
      xargs -0 stat -c '%n %a' && find "$@" -type f ! -name '*~' -print0 | sort -z | xargs -0 sha256sum)
  } | sha
}

image_label() { # image label
  docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# Runs a step with its output in a log; on failure prints the log's tail and stops.
run_logged() { # log-file description command...
  local log=$1 what=$2
  shift 2
  local rc=0
  if [ "$verbose" = 1 ]; then
    set +e
    "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    set -e
  else
    "$@" >>"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    echo "---- last lines of $log ----" >&2
    tail -n 40 "$log" >&2
    fail "$what (exit status $rc; full log: $log)"
  fi
}

# ---- base root filesystem ----------------------------------------------------------------------
work=""
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true; done
  mounts=()
  if [ -n "$work" ] && [ -d "$work" ]; then
    # Never delete through a mount that is still there (it could be the host's /dev or /proc).
    if findmnt -rn -o TARGET | grep -q "^$work/"; then
      echo "build-images: leaving $work in place: something is still mounted under it" >&2
    else
      rm -rf --one-file-system "$work"
    fi
  fi
  work=""
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

bind() { # source target [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
}

debootstrap_tarball() {
  local mirror_id tarball
  mirror_id=$(echo "$mirror" | sha | cut -c1-8)
  tarball="$cache/debootstrap-$suite-minbase-$arch-$mirror_id.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || fail "debootstrap is not installed (scripts/install-deps.sh installs it; or apt-get install debootstrap)"
    say "base: debootstrap --variant=minbase $suite from $mirror (cached afterwards in $tarball)"
    local t0=$SECONDS
    work=$(mktemp -d "$cache/work.debootstrap.XXXXXX") # removed by cleanup, also on failure
    : >"$cache/logs/debootstrap.log"
    run_logged "$cache/logs/debootstrap.log" "debootstrap $suite" \
      debootstrap --variant=minbase --arch="$arch" "$suite" "$work/rootfs" "$mirror"
    tar -C "$work/rootfs" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    cleanup
    say "base: debootstrap took $((SECONDS - t0)) s"
  fi
  echo "$tarball" >"$cache/.last-tarball"
}

# Builds kasm/base-rootfs:<hash> unless it exists (or --force for base).
build_rootfs() { # tag
  local tag=$1 t0=$SECONDS log="$cache/logs/base-rootfs.log"
  [ "$(id -u)" -eq 0 ] || fail "building the base root filesystem needs root (debootstrap, mount, chroot): run with sudo"
  : >"$log"
  debootstrap_tarball
  local tarball
  tarball=$(cat "$cache/.last-tarball")
  work=$(mktemp -d "$cache/work.rootfs.XXXXXX")
  local rootfs="$work/rootfs"
  mkdir -p "$rootfs"
  tar -C "$rootfs" --numeric-owner -xf "$tarball"
  # debootstrap leaves the .deb files it installed in the root filesystem: they belong in the
  # download cache, not in the image.
  find "$rootfs/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec mv -f -t "$cache/apt-archives" {} +
  # Services must not start in the chroot; apt gets the host's resolver and a shared .deb cache.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mkdir -p "$rootfs/proc" "$rootfs/sys"
  mount -t proc proc "$rootfs/proc" && mounts+=("$rootfs/proc")
  mount -t sysfs sysfs "$rootfs/sys" && mounts+=("$rootfs/sys")
  bind /dev "$rootfs/dev"
  bind /dev/pts "$rootfs/dev/pts"
  bind "$cache/apt-archives" "$rootfs/var/cache/apt/archives"
  mkdir -p "$rootfs/tmp/kasm-build"
  cp "$images_dir/base/packages.txt" "$images_dir/base/rootfs-setup.sh" "$rootfs/tmp/kasm-build/"
  say "base: installing $(grep -cv '^\s*\(#\|$\)' "$images_dir/base/packages.txt") packages in the chroot (apt-get)"
  local t1=$SECONDS
  run_logged "$log" "apt-get in the base chroot" chroot "$rootfs" /bin/bash /tmp/kasm-build/rootfs-setup.sh /tmp/kasm-build/packages.txt "$mirror" "$security_mirror"
  say "base: chroot apt-get took $((SECONDS - t1)) s"
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}"; done
  mounts=()
  rm -rf "$rootfs/tmp/kasm-build" "$rootfs/usr/sbin/policy-rc.d"
  say "base: docker import -> $tag"
  t1=$SECONDS
  tar -C "$rootfs" --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -c . |
    docker import -c "LABEL org.kasm.rootfs.suite=$suite org.kasm.rootfs.variant=minbase" - "$tag" >>"$log" 2>&1 ||
    fail "docker import of the base root filesystem (log: $log)"
  say "base: docker import took $((SECONDS - t1)) s"
  cleanup
  say "base: root filesystem ready in $((SECONDS - t0)) s"
}

# The tag of the root filesystem the current recipe makes.
rootfs_tag() {
  local h
  h=$(hash_inputs "rootfs $rootfs_recipe $suite $arch $mirror $security_mirror" base/packages.txt base/rootfs-setup.sh)
  echo "kasm/base-rootfs:${h:0:16}"
}

# ---- images ------------------------------------------------------------------------------------
icon_data_uri() {
  local svg="$images_dir/icons/$1.svg"
  [ -f "$svg" ] || { echo ""; return 0; }
  echo "data:image/svg+xml;base64,$(base64 -w0 "$svg")"
}

replaced=() # image IDs the new builds replaced, removed at the end (children first)

build_one() {
  local name=$1 ref="kasm/$name:$version" parent parent_id="" hash extra log="$cache/logs/$name.log"
  local t0=$SECONDS
  local build_args=()
  parent=$(parent_of "$name")
  if [ "$name" = base ]; then
    local rootfs_tag
    rootfs_tag=$(rootfs_tag)
    if [ -z "$(image_id "$rootfs_tag")" ] || [ -n "${forced[base]:-}" ]; then
      build_rootfs "$rootfs_tag"
    else
      say "base: root filesystem $rootfs_tag present"
    fi
    parent_id=$(image_id "$rootfs_tag")
    build_args+=(--build-arg "ROOTFS=$rootfs_tag")
  else
    parent_id=$(image_id "kasm/$parent:$version")
    [ -n "$parent_id" ] || fail "$name: parent image kasm/$parent:$version is missing"
    build_args+=(--build-arg "BASE=kasm/$parent:$version")
    local icon
    icon=$(icon_data_uri "$name")
    build_args+=(--build-arg "ICON=$icon")
  fi
  local inputs=("$name" common)
  [ -f "$images_dir/icons/$name.svg" ] && inputs+=("icons/$name.svg")
  hash=$(hash_inputs "$name $version parent=$parent_id" "${inputs[@]}")
  if [ -z "${forced[$name]:-}" ] && [ "$(image_label "$ref" org.kasm.image.build-hash)" = "$hash" ]; then
    say "$name: $ref is up to date (build hash ${hash:0:12}); skipped"
    docker tag "$ref" "kasm/$name:latest"
    return 0
  fi
  local previous
  previous=$(image_id "$ref")
  say "$name: docker build -> $ref (build hash ${hash:0:12}; log $log)"
  : >"$log"
  # --network host: apt-get in RUN steps reaches Debian's mirror exactly as the host does.
  run_logged "$log" "docker build of $ref" env DOCKER_BUILDKIT=0 docker build --network host \
    ${forced[$name]:+--no-cache} \
    "${build_args[@]}" --build-arg "VERSION=$version" --build-arg "BUILD_HASH=$hash" \
    -t "$ref" -t "kasm/$name:latest" -f "$images_dir/$name/Dockerfile" "$images_dir"
  if [ -n "$previous" ] && [ "$previous" != "$(image_id "$ref")" ]; then replaced+=("$previous"); fi
  local size
  size=$(docker image inspect -f '{{.Size}}' "$ref")
  say "$name: built $ref in $((SECONDS - t0)) s, $((size / 1000000)) MB"
}

say "version $version; images: ${order[*]}; cache $cache"
total0=$SECONDS
for name in "${order[@]}"; do build_one "$name"; done
# The images these builds replaced, and root filesystems no base uses, are removed unless
# something (a container, another tag) still uses them.
for ((i = ${#replaced[@]} - 1; i >= 0; i--)); do
  docker rmi "${replaced[$i]}" >/dev/null 2>&1 && say "removed the replaced image ${replaced[$i]:7:12}" || true
done
current_rootfs=$(rootfs_tag)
if [ -n "$(image_id "$current_rootfs")" ]; then
  for old_rootfs in $(docker images --format '{{.Repository}}:{{.Tag}}' kasm/base-rootfs); do
    [ "$old_rootfs" = "$current_rootfs" ] && continue
    docker rmi "$old_rootfs" >/dev/null 2>&1 && say "removed the unused root filesystem $old_rootfs" || true
  done
fi
say "done in $((SECONDS - total0)) s"
docker images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^  kasm/(base|desktop|firefox|desktop-deluxe):$version " || true
