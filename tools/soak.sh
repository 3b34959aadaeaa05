#!/usr/bin/env bash
# tools/soak.sh CONFIG MINUTES: runs `roadwatch watch CONFIG` for MINUTES and prints how fast its resident
# memory, open files, threads and output folder grow after a warm-up (least-squares slope per minute).
#
#   ROADWATCH_BIN=path          the binary (default: .build/debug/roadwatch, then roadwatch on PATH)
#   SOAK_INTERVAL=10            seconds between samples
#   SOAK_WARMUP=60              seconds left out of the slopes (the model loading, the first clips, caches)
#   SOAK_MAX_RSS_MB_PER_MIN=    fail (exit 1) when the RSS slope is above this; likewise
#   SOAK_MAX_FDS_PER_MIN=, SOAK_MAX_THREADS_PER_MIN=, SOAK_MAX_OUTPUT_MB_PER_MIN=
#   SOAK_SAMPLES=file           also write the samples there (TSV: seconds, rss_kb, fds, threads, output_bytes)
#
# The config's cameras should be files with `loop: true` and `realtime: false` (full speed): the soak is about
# what grows with the hours, not about the pace. Exit 0 when every bound holds, 1 when one does not, 2 on misuse.
set -euo pipefail

usage() { echo "usage: tools/soak.sh CONFIG MINUTES" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
config=$1
minutes=$2
[[ -f $config ]] || { echo "soak: no config '$config'" >&2; exit 2; }
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "soak: MINUTES must be a number, got '$minutes'" >&2; exit 2; }
interval=${SOAK_INTERVAL:-10}
warmup=${SOAK_WARMUP:-60}
bin=${ROADWATCH_BIN:-}
if [[ -z $bin ]]; then
    if [[ -x .build/debug/roadwatch ]]; then bin=.build/debug/roadwatch; else bin=$(command -v roadwatch || true); fi
fi
[[ -n $bin && -x $bin ]] || { echo "soak: no roadwatch binary (build it, or set ROADWATCH_BIN)" >&2; exit 2; }
# The output folder, as the config names it (a plain `output:` line at the top level).
output=$(sed -n 's/^output:[[:space:]]*\([^#[:space:]]*\).*/\1/p' "$config" | head -n 1)
[[ -n $output ]] || { echo "soak: '$config' has no top-level output: line" >&2; exit 2; }

samples=$(mktemp)
log=$(mktemp)
cleanup() {
    if [[ -n ${pid:-} ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$samples"
}
trap cleanup EXIT

"$bin" watch "$config" >"$log" 2>&1 &
pid=$!
echo "soak: roadwatch watch $config (pid $pid) for $minutes min, a sample every ${interval} s, slopes after ${warmup} s; log $log"

status_field() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$pid/status" 2>/dev/null; }
start=$(date +%s.%N)
end=$(awk -v s="$start" -v m="$minutes" 'BEGIN { printf "%.3f", s + m * 60 }')
while :; do
    now=$(date +%s.%N)
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "soak: roadwatch exited before the end; its log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    t=$(awk -v n="$now" -v s="$start" 'BEGIN { printf "%.1f", n - s }')
    rss=$(status_field VmRSS)
    threads=$(status_field Threads)
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l || true)
    bytes=$(du -sb "$output" 2>/dev/null | cut -f1 || true)
    printf '%s\t%s\t%s\t%s\t%s\n' "$t" "${rss:-0}" "$fds" "${threads:-0}" "${bytes:-0}" >>"$samples"
    printf 'soak: %6.0f s  rss %6.1f MB  fds %4d  threads %3d  output %8.1f MB\n' "$t" \
        "$(awk -v k="${rss:-0}" 'BEGIN { print k / 1024 }')" "$fds" "${threads:-0}" "$(awk -v b="${bytes:-0}" 'BEGIN { print b / 1e6 }')"
    awk -v n="$now" -v e="$end" 'BEGIN { exit !(n >= e) }' && break
    sleep "$interval"
done
[[ -n ${SOAK_SAMPLES:-} ]] && cp "$samples" "$SOAK_SAMPLES"

# Least-squares slope per minute of each column over the samples after the warm-up.
slope() {
    awk -v col="$1" -v scale="$2" -v warm="$warmup" '
        $1 >= warm { n++; x = $1 / 60; y = $col / scale; sx += x; sy += y; sxx += x * x; sxy += x * y }
        END { if (n < 3 || sxx * n - sx * sx == 0) { print "nan"; exit } printf "%.3f", (n * sxy - sx * sy) / (n * sxx - sx * sx) }
    ' "$samples"
}
failed=0
check() {  # name value unit bound
    local verdict=""
    if [[ $2 == nan ]]; then
        verdict="  (too few samples after the warm-up)"
        [[ -n $4 ]] && failed=1
    elif [[ -n $4 ]]; then
        if awk -v v="$2" -v b="$4" 'BEGIN { exit !(v > b) }'; then verdict="  FAIL: above $4"; failed=1; else verdict="  ok (bound $4)"; fi
    fi
    printf 'soak: %-8s slope %10s %s/min%s\n' "$1" "$2" "$3" "$verdict"
}
check rss "$(slope 2 1024)" MB "${SOAK_MAX_RSS_MB_PER_MIN:-}"
check fds "$(slope 3 1)" fds "${SOAK_MAX_FDS_PER_MIN:-}"
check threads "$(slope 4 1)" threads "${SOAK_MAX_THREADS_PER_MIN:-}"
check output "$(slope 5 1000000)" MB "${SOAK_MAX_OUTPUT_MB_PER_MIN:-}"
if [[ $failed -ne 0 ]]; then
    echo "soak: a bound failed; the service's last lines:" >&2
    tail -n 10 "$log" >&2
fi
exit "$failed"
