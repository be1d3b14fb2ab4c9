#!/usr/bin/env bash
# Prints one JSON object; output_format json turns it into the result's data.
set -euo pipefail
read -r uptime _ </proc/uptime
printf '{"action": "%s", "kernel": "%s", "cpus": %d, "uptime_seconds": %d}\n' \
  "$ATTUNE_ACTION" "$(uname -r)" "$(nproc)" "${uptime%.*}"
