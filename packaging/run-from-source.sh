#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine to build Verbatim from this checkout, then opens the
# desktop app (arguments go to the window, e.g. --listen 127.0.0.1:5070).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
# Build packages, then what the window loads at run time (X11 or Wayland, OpenGL via EGL),
# and xdg-open, with which the history opens a recording's folder.
as_root apt-get install -y -qq --no-install-recommends \
    ca-certificates curl build-essential pkg-config cmake libasound2-dev \
    libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon0 libxkbcommon-x11-0 \
    libwayland-client0 libwayland-cursor0 libwayland-egl1 \
    libgl1 libegl1 libgl1-mesa-dri xdg-utils >/dev/null

if ! command -v cargo >/dev/null 2>&1; then
    # rustup-init.sh from its canonical location (sh.rustup.rs serves the same script).
    curl --proto '=https' --tlsv1.2 -sSf https://static.rust-lang.org/rustup/rustup-init.sh |
        sh -s -- -y --profile minimal --default-toolchain 1.95.0
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

cargo build --release
exec target/release/verbatim gui "$@"
