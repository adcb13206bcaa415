#!/usr/bin/env bash
# Build (once) a Debian trixie chroot holding GIMP 3.0.4 with Python plug-in support
# and pyzmq, for the real-GIMP end-to-end tests. Needs root and a Debian mirror.
# Usage: tests/gimp/build_chroot.sh [ROOT]   (default $GIMP3_CHROOT or /var/tmp/colorize-gimp3)
set -euo pipefail
ROOT=${1:-${GIMP3_CHROOT:-/var/tmp/colorize-gimp3}}
PACKAGES="gimp python3-zmq"
EXTRA=${GIMP3_EXTRA_PACKAGES:-}

if [ -x "$ROOT/usr/bin/gimp-console-3.0" ] && { [ -z "$EXTRA" ] || chroot "$ROOT" dpkg -s $EXTRA >/dev/null 2>&1; }; then
  echo "$ROOT: GIMP $(chroot "$ROOT" gimp-console-3.0 --version | awk '{print $NF}') ready"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "building the GIMP chroot needs root" >&2; exit 1; }

MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian

command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
mkdir -p "$(dirname "$ROOT")"
[ -x "$ROOT/usr/bin/apt-get" ] || debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 \
  || { tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || true' EXIT
chroot "$ROOT" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -qq --no-install-recommends \
  $PACKAGES $EXTRA > "$ROOT.apt.log" 2>&1 || { tail -20 "$ROOT.apt.log" >&2; exit 1; }
chroot "$ROOT" apt-get clean
echo "$ROOT: GIMP $(chroot "$ROOT" gimp-console-3.0 --version | awk '{print $NF}') built"
