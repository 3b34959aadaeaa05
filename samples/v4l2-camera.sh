#!/usr/bin/env bash
# Watch a USB/CSI camera through v4l2 and record the annotated stream in 10-minute files.
# Edit the device, size, rate and pixel format for your camera (v4l2-ctl --list-formats-ext lists them):
#   bash samples/v4l2-camera.sh [/dev/video0] [OUT_PREFIX]
# Live policy: the newest frame is processed, the rest dropped and counted; if the camera goes away the
# run waits for it and carries on. Ctrl-C stops cleanly: frames in flight are finished, files closed.
set -euo pipefail
device="${1:-/dev/video0}"
out="${2:-camera-$(date +%Y%m%d-%H%M%S)}"
# A smaller network size (512x256) keeps up with more frames per second on a small CPU.
roadwatch run "$device" -o "$out.mp4" --events "$out.jsonl" --summary-json "$out.summary.json" \
    --video-size 1280x720 --framerate 30 --input-format mjpeg --size 512x256 --segment-time 600 --fragmented
