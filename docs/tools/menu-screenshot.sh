#!/usr/bin/env bash
# Screenshot of the real GIMP 3 menu with the plug-in installed, under Xvfb in the
# test chroot (tests/gimp/build_chroot.sh with GIMP3_EXTRA_PACKAGES="xvfb xdotool imagemagick xauth").
# Usage: docs/tools/menu-screenshot.sh OUT.png "FILTERS_X FILTERS_Y" "COLORIZE_X COLORIZE_Y" ["ITEM_X ITEM_Y" ["OK_X OK_Y"]]
# (the item click opens the plug-in dialog; the OK click runs it and the shot shows the result)
set -euo pipefail
ROOT=${GIMP3_CHROOT:-/var/tmp/colorize-gimp3}
OUT=$1; FILTERS=${2:-}; COLORIZE=${3:-}; ITEM=${4:-}; OK=${5:-}
cp "$(dirname "$0")/../../samples/sample.jpg" "$ROOT/tmp/sample.jpg"
cat > "$ROOT/tmp/shot.sh" <<SH
export HOME=/root DISPLAY=:99 LANG=C.UTF-8
Xvfb :99 -screen 0 1200x800x24 -nolisten tcp > /tmp/xvfb.log 2>&1 & XPID=\$!
sleep 2
gimp-3.0 --no-splash /tmp/sample.jpg > /tmp/gimp-gui.log 2>&1 & GPID=\$!
for i in \$(seq 1 90); do xdotool search --name 'GNU Image Manipulation Program' >/dev/null 2>&1 && break; sleep 1; done
sleep 6
if [ -n "$FILTERS" ]; then xdotool mousemove $FILTERS click 1; sleep 2; fi
if [ -n "$COLORIZE" ]; then xdotool mousemove $COLORIZE; sleep 2; fi
if [ -n "$ITEM" ]; then xdotool mousemove $ITEM click 1; sleep 5; fi
if [ -n "$OK" ]; then xdotool mousemove $OK click 1; sleep 15; fi
import -window root /tmp/shot.png
kill \$GPID; sleep 1; kill -9 \$GPID 2>/dev/null; kill \$XPID
SH
chroot "$ROOT" bash /tmp/shot.sh
cp "$ROOT/tmp/shot.png" "$OUT"
