#!/usr/bin/env bash
# Screenshots of the window at its default size (460 by 560), on an X server of its own
# (Xvfb): the calls page of a first start and the settings page. Usage:
#   packaging/screenshots.sh [OUT_DIR]        (default: assets/screenshots)
# Needs xvfb, xdotool and imagemagick (import).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-assets/screenshots}
for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install xvfb xdotool imagemagick" >&2; exit 1; }
done
cargo build -q
mkdir -p "$out"
work=$(mktemp -d)
display=":$((300 + RANDOM % 300))"
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
Xvfb "$display" -screen 0 1280x900x24 -nolisten tcp &
for _ in $(seq 1 100); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
# A first start: a home of its own, no session bus (no keyring, no tray), no sound card.
(cd "$work" && env -u DBUS_SESSION_BUS_ADDRESS -u WAYLAND_DISPLAY HOME="$work" \
    XDG_CONFIG_HOME="$work/.config" XDG_DATA_HOME="$work/.local/share" \
    XDG_RUNTIME_DIR="$work" DISPLAY="$display" \
    "$OLDPWD/target/debug/verbatim" --listen 127.0.0.1:0 >"$work/verbatim.log" 2>&1) &
window=$(DISPLAY="$display" xdotool search --sync --onlyvisible --name '^Verbatim$' | head -n 1)
sleep 2
DISPLAY="$display" import -window "$window" "$out/phone.png"
# The Settings tab, at the top left under the status line.
DISPLAY="$display" xdotool mousemove --window "$window" 100 55 click 1
sleep 1
DISPLAY="$display" import -window "$window" "$out/settings.png"
echo "wrote $out/phone.png and $out/settings.png"
