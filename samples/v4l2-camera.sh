#!/usr/bin/env bash
# Watch a USB/CSI camera through v4l2 and record the annotated stream.
# Edit the device, size and rate for your camera (v4l2-ctl --list-formats-ext lists them), then run:
#   bash samples/v4l2-camera.sh
# Ctrl-C stops cleanly: the frames in flight are finished and the file is closed.
set -euo pipefail
device="${1:-/dev/video0}"
out="${2:-camera-$(date +%Y%m%d-%H%M%S).mp4}"
# A smaller network size (512x256) keeps up with more frames per second on a small CPU.
roadwatch run "$device" -o "$out" --events "${out%.mp4}.jsonl" --size 512x256 --fragmented
