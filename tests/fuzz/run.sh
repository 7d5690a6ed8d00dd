#!/usr/bin/env bash
# Fuzzes every target in verbatim::fuzzing with libFuzzer (cargo-fuzz, on a nightly toolchain,
# with AddressSanitizer) for SECONDS each, then prints a line per target: executions, corpus
# size, and crashes. A crash's input lands in tests/fuzz/artifacts/TARGET/; move it to
# tests/fuzz/regressions/TARGET/ with a name saying what it broke, and fix the code, so that
# tests/fuzz_smoke.rs keeps it fixed.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET ...]      (default: 60 seconds, every target)
#
# Needs: rustup toolchain install nightly; cargo install cargo-fuzz --locked
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
toolchain=${VERBATIM_FUZZ_TOOLCHAIN:-nightly}
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for file in tests/fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$file" .rs)")
    done
fi

cargo "+$toolchain" fuzz build --fuzz-dir tests/fuzz -O --debug-assertions
results=()
status=0
# Crashes are counted from this run only: earlier ones may still wait in artifacts/.
started=$(mktemp)
trap 'rm -f "$started"' EXIT
for target in "${targets[@]}"; do
    corpus=target/fuzz-corpus/$target
    mkdir -p "$corpus" "tests/fuzz/artifacts/$target"
    seeds=(tests/fuzz/corpus/"$target")
    [ -d "tests/fuzz/regressions/$target" ] && seeds+=("tests/fuzz/regressions/$target")
    case "$target" in
        sip_message | recorder_invite | engine_datagrams) seeds+=(tests/data/torture) ;;
    esac
    log=target/fuzz-corpus/$target.log
    set +e
    cargo "+$toolchain" fuzz run --fuzz-dir tests/fuzz -O --debug-assertions "$target" \
        "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    set -e
    executions=$(awk '/stat::number_of_executed_units/ { print $NF }' "$log")
    crashes=$(find "tests/fuzz/artifacts/$target" -type f -newer "$started" | wc -l)
    corpus_size=$(find "$corpus" -type f | wc -l)
    verdict=ok
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        verdict="FAILED (exit $rc; see $log)"
        status=1
    fi
    results+=("$(printf '%-18s %12s execs  %6s corpus  %3s crashes  %s' \
        "$target" "${executions:-?}" "$corpus_size" "$crashes" "$verdict")")
done
printf 'fuzzed %s s per target\n' "$seconds"
printf '%s\n' "${results[@]}"
exit "$status"
