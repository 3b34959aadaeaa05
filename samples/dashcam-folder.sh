#!/usr/bin/env bash
# Annotate every recording in a dashcam folder: one annotated MP4, event log and summary per clip, then a
# merged report. Interrupt it whenever you like: running it again skips the clips already done.
# Usage: bash samples/dashcam-folder.sh [RECORDINGS] [OUT]
set -euo pipefail
recordings="${1:-$HOME/dashcam}"          # where the camera's files are (searched recursively)
out="${2:-$HOME/dashcam-annotated}"       # where the annotated copies go (not inside RECORDINGS)
status=0
roadwatch batch "$recordings" --out "$out" || status=$?   # 1 = some clips failed; they are listed
roadwatch batch --report "$out"
exit "$status"
