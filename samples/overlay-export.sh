#!/usr/bin/env bash
# Export an overlay video for review: the clip with the anomaly heat map, region outlines and the
# segmentation tint, at high quality, plus per-frame masks for editing tools.
# Run: bash samples/overlay-export.sh input.mp4 [output.mp4]
set -euo pipefail
in="${1:-samples/solidWhiteRight.mp4}"
out="${2:-overlay-$(basename "${in%.*}").mp4}"
roadwatch run "$in" -o "$out" --overlay both --crf 16 --preset medium \
    --events "${out%.mp4}.jsonl" --mask-dir "${out%.mp4}-masks"
echo "review: $out; masks: ${out%.mp4}-masks/"
