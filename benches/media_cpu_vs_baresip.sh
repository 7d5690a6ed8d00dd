#!/usr/bin/env bash
# CPU per call-second of one phone's side of a call, Verbatim next to baresip, on this machine
# in the same run. Both play the same file on 127.0.0.1. Usage:
#   benches/media_cpu_vs_baresip.sh [SECONDS] [CODEC]      (defaults: 20 pcmu)
# Prints one JSON line per phone.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
codec=${2:-pcmu}
case "$codec" in
    pcmu) bcodec=pcmu; rate=8000; channels=1 ;;
    pcma) bcodec=pcma; rate=8000; channels=1 ;;
    g722) bcodec=g722; rate=16000; channels=1 ;;
    opus) bcodec=opus/48000/2; rate=48000; channels=2 ;;
    *) echo "codec must be pcmu, pcma, g722 or opus" >&2; exit 2 ;;
esac
command -v baresip >/dev/null || { echo "baresip missing: apt-get install baresip-core" >&2; exit 1; }
cargo build --release -q
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
sox -n -r "$rate" -c "$channels" -b 16 "$work/tone.wav" synth "$((seconds + 10))" sine 440 vol 0.5

# One call of verbatim (both ends in one process; the figure is per side), playing the file
# baresip plays. It exits non-zero, with the reason, when it could not measure a figure.
target/release/verbatim bench --calls 1 --duration "$seconds" --codec "$codec" \
    --play "$work/tone.wav" | sed 's/^/{"phone":"verbatim",/; s/,{/,/'

# One call between two baresip processes; CPU of both, halved.
port_a=27060; port_b=27070
for side in a b; do
    dir="$work/$side"; mkdir -p "$dir/rec"
    port=$([ "$side" = a ] && echo $port_a || echo $port_b)
    cat > "$dir/config" <<CFG
sip_listen 127.0.0.1:$port
audio_player aubridge,a_out
audio_source aufile,$work/tone.wav
audio_alert aubridge,a_alert
module_path /usr/lib/baresip/modules
module g711.so
module g722.so
module opus.so
module aufile.so
module aubridge.so
module_app account.so
module_app menu.so
dns_server 127.0.0.1:53
CFG
    if [ "$side" = b ]; then
        echo "<sip:peer@127.0.0.1:$port>;regint=0;answermode=auto;audio_codecs=$bcodec" > "$dir/accounts"
    else
        echo "<sip:caller@127.0.0.1:$port>;regint=0;audio_codecs=$bcodec" > "$dir/accounts"
    fi
done
baresip -f "$work/b" -n 127.0.0.1 -t "$((seconds + 8))" </dev/null >"$work/b.log" 2>&1 &
pid_b=$!
sleep 1
baresip -f "$work/a" -n 127.0.0.1 -t "$((seconds + 6))" -e "/dial sip:peer@127.0.0.1:$port_b" \
    </dev/null >"$work/a.log" 2>&1 &
pid_a=$!
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# A figure for a call that never connected would measure two idle processes.
for _ in $(seq 1 50); do
    grep -q "Call established" "$work/a.log" && break
    sleep 0.2
done
if ! grep -q "Call established" "$work/a.log"; then
    echo "baresip's call did not connect within 10 s; its log:" >&2
    cat "$work/a.log" >&2
    exit 1
fi
sleep 2   # the rest of call set-up, excluded
start_a=$(cpu $pid_a); start_b=$(cpu $pid_b)
sleep "$seconds"
end_a=$(cpu $pid_a); end_b=$(cpu $pid_b)
if grep -q "terminated\|Call closed" "$work/a.log"; then
    echo "baresip's call ended before the measurement did; its log:" >&2
    cat "$work/a.log" >&2
    exit 1
fi
ticks=$(getconf CLK_TCK)
awk -v a=$((end_a - start_a)) -v b=$((end_b - start_b)) -v t="$ticks" -v s="$seconds" -v c="$codec" \
    'BEGIN { ms = (a + b) * 1000 / t; printf "{\"phone\":\"baresip\",\"codec\":\"%s\",\"duration_s\":%d,\"cpu_ms_per_call_s\":%.3f,\"cpu_ms_total\":%.1f}\n", c, s, ms / s / 2, ms }'
