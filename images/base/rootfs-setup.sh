#!/bin/bash
# Runs INSIDE the debootstrapped root filesystem (chroot) as root, from build-images.sh.
# Installs the base packages and creates the workspace user. Arguments: the package list file, the
# Debian mirror and the security mirror (both taken from the build machine's apt configuration;
# the security one may be empty).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
mirror=$2
security_mirror=${3:-}

{
  echo "deb $mirror bookworm main"
  echo "deb $mirror bookworm-updates main"
  if [ -n "$security_mirror" ]; then echo "deb $security_mirror bookworm-security main"; fi
} >/etc/apt/sources.list

# Keep images small, here and in every image built on top: no recommends, no docs or man pages,
# no translations (copyright files stay); and no progress bars in build logs.
cat >/etc/apt/apt.conf.d/90kasm <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dpkg::Use-Pty "0";
APT
cat >/etc/dpkg/dpkg.cfg.d/90kasm-nodoc <<'DPKG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
DPKG

mapfile -t packages < <(grep -v '^\s*#' "$1" | grep -v '^\s*$')
apt-get update -qq
apt-get -y -qq upgrade
apt-get install -y -qq "${packages[@]}"
# No apt-get clean here: /var/cache/apt/archives is the build cache, bind-mounted by the build script.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old
# What debootstrap installed before the path-exclude rules existed.
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
find /usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/*

# The workspace user: uid/gid 1000, a home it owns, bash as its shell.
groupadd --gid 1000 kasm-user
useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash kasm-user

# X server socket directory, owned by root as Xvnc expects when run as an unprivileged user.
mkdir -p /tmp/.X11-unix
chmod 1777 /tmp /tmp/.X11-unix

# Docker supplies these at run time.
: >/etc/machine-id
: >/etc/resolv.conf
rm -f /etc/hostname
