#!/usr/bin/env bash
# Builds the Debian package: the binary, then its shell completions and manual page (generated
# by the binary itself, so they always match its command line), then cargo-deb.
#
#   packaging/deb/build.sh [OUTPUT_DIR]
#
# VERBATIM_DEB_PROFILE=dev packages the debug binary that is already built (the packaging test
# does this, to spare CI a release build); the default builds and packages a release binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=${VERBATIM_DEB_PROFILE:-release}
output=${1:-target/debian}
target_dir=${CARGO_TARGET_DIR:-target}
case "$profile" in
    release) binary_dir=release; cargo build --release --locked ;;
    dev) binary_dir=debug ;;
    *) echo "build.sh: VERBATIM_DEB_PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac
binary="$target_dir/$binary_dir/verbatim"
if [ ! -x "$binary" ]; then
    echo "build.sh: no built binary at $binary (build it first, e.g. cargo build)" >&2
    exit 2
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "build.sh: cargo-deb is not installed (cargo install cargo-deb --locked)" >&2
    exit 2
fi

# Cargo.toml's deb assets name these paths.
generated=target/packaging
mkdir -p "$generated/completions"
"$binary" completions bash >"$generated/completions/verbatim"
"$binary" completions zsh >"$generated/completions/_verbatim"
"$binary" completions fish >"$generated/completions/verbatim.fish"
"$binary" manpage | gzip -9n >"$generated/verbatim.1.gz"

mkdir -p "$output"
cargo deb --no-build --profile "$profile" --locked --fast --output "$output"
