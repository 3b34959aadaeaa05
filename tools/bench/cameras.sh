#!/usr/bin/env bash
# Several cameras in one `roadwatch watch`: each camera is a loopback TCP sender of a clip in real time
# (ffmpeg -re, MPEG-TS), watched at SIZE with no recording for SECONDS, then stopped with SIGINT.
# Prints watch's closing line per camera and the process's CPU time and peak memory.
#
#   tools/bench/cameras.sh ROADWATCH CAMERAS [SECONDS=40] [SIZE=512x256] [CLIP=samples/solidWhiteRight.mp4]
set -euo pipefail
roadwatch=$1 cameras=$2 seconds=${3:-40} size=${4:-512x256}
clip=$(realpath "${5:-$(dirname "$0")/../../samples/solidWhiteRight.mp4}")
work=$(mktemp -d /tmp/roadwatch-cameras-XXXXXX)
senders=()
cleanup() { for pid in "${senders[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

{
    echo "output: $work/out"
    echo "log_level: warning"
    echo "http: {enabled: false}"
    echo "defaults: {size: $size, events: {clips: false}}"
    echo "cameras:"
} > "$work/watch.yaml"
for i in $(seq 1 "$cameras"); do
    port=$((19200 + i))
    # The senders complain of a broken pipe when watch stops: kept out of the lines this script reports.
    ffmpeg -nostdin -v error -re -stream_loop -1 -i "$clip" -an -c copy -f mpegts "tcp://127.0.0.1:$port?listen=1" 2>/dev/null &
    senders+=($!)
    echo "  cam$i: {input: \"tcp://127.0.0.1:$port\"}" >> "$work/watch.yaml"
done
sleep 1
/usr/bin/time -f "cpu %U s user + %S s system in %e s; peak %M KB" \
    timeout -s INT "$seconds" "$roadwatch" watch "$work/watch.yaml" 2>&1 | grep -v "^$" || true
python3 - "$work/out/status.json" <<'EOF'
import json, sys
cams = json.load(open(sys.argv[1]))["cameras"]
total = sum(c["fps"] for c in cams)
for c in cams:
    print(f'{c["name"]}: {c["frames"]} frames, {c["dropped"]} dropped, {c["fps"]:.2f} frames/s, latency p99 {c["latency_p99_ms"]:.0f} ms')
print(f"total {total:.2f} frames/s over {len(cams)} camera(s)")
EOF
