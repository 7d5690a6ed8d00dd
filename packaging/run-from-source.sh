#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine to build Verbatim from this checkout, then starts it.
# Until the desktop app lands, that is the headless phone answering calls on 127.0.0.1:5060.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends \
    ca-certificates curl build-essential pkg-config cmake libasound2-dev >/dev/null

if ! command -v cargo >/dev/null 2>&1; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

cargo build --release
echo "Verbatim answers calls to sip:verbatim@127.0.0.1:5060 (Ctrl+C to stop)."
exec target/release/verbatim answer --listen 127.0.0.1:5060 --calls 1000000 "$@"
