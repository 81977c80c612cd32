#!/usr/bin/env bash
# bench/run.sh — run the codec comparison and print a markdown table.
#
# Works from any directory. Arguments go to cmd/compare, e.g.
#   ./bench/run.sh -count 8 -benchtime 200ms -o /tmp/table.md -raw /tmp/raw.txt
# Takes about two minutes on two cores with the defaults (-count 6,
# -benchtime 150ms, -cpu 1).
set -euo pipefail
cd "$(dirname "$0")"
exec go run ./cmd/compare "$@"
