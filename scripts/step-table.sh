#!/usr/bin/env bash
# Prints what each step of a run cost, slowest first, from the step log that
# scripts/env.sh's `step` writes (one line a step: start time, part, name).
# A step lasts until the next one starts; the last until the log's end time.
# Usage: scripts/step-table.sh LOG END_EPOCH
set -euo pipefail
log=$1 end=$2
[ -s "$log" ] || exit 0
awk -F'\t' -v end="$end" '
  { t[NR] = $1; part[NR] = $2; name[NR] = $3 }
  END {
    total = end - t[1]
    for (i = 1; i <= NR; i++) {
      d = (i < NR ? t[i + 1] : end) - t[i]
      per[part[i]] += d
      printf "%8.1f s  %-16s %s\n", d, part[i], name[i] | "sort -rn"
    }
    close("sort -rn")
    print "" ; print "per part:"
    for (p in per) printf "%8.1f s  %s\n", per[p], p | "sort -rn"
    close("sort -rn")
    printf "\n%8.1f s  in all (%d min %02d s)\n", total, int(total / 60), int(total) % 60
  }' "$log"
