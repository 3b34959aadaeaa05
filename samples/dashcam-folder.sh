#!/usr/bin/env bash
# Annotate every recording in a dashcam folder: one annotated MP4, event log and summary per clip.
# Edit the two folders, then run: bash samples/dashcam-folder.sh
set -euo pipefail
recordings="${1:-$HOME/dashcam}"          # where the camera's files are (MP4, MOV, MKV, TS)
out="${2:-$HOME/dashcam-annotated}"       # where the annotated copies go
mkdir -p "$out"
find "$recordings" -type f \( -iname '*.mp4' -o -iname '*.mov' -o -iname '*.mkv' -o -iname '*.ts' \) -print0 | sort -z |
while IFS= read -r -d '' clip; do
    name="$(basename "${clip%.*}")"
    if [ -s "$out/$name.mp4" ] && [ -s "$out/$name.jsonl" ]; then
        echo "skip $clip (done)"; continue
    fi
    echo "== $clip"
    roadwatch run "$clip" -o "$out/$name.mp4" --events "$out/$name.jsonl" --quiet > "$out/$name.summary.txt" ||
        echo "failed: $clip (see above)" >&2
done
