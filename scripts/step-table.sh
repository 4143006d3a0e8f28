#!/usr/bin/env bash
# Prints what each step of a run cost, slowest first, from the step logs that
# scripts/env.sh's `step` writes (one line a step: start time, part, name).
# In each log a step lasts until the next one starts, the last until a line
# of part `-` (where a lane of scripts/test.sh ended) or the run's end.
# `make test` runs two lanes of parts side by side, each with its own log.
# Usage: scripts/step-table.sh END_EPOCH LOG [LOG...]
set -euo pipefail
end=$1
shift
awk -F'\t' -v end="$end" '
  FNR == 1 { file++ }
  { n++; t[n] = $1; part[n] = $2; name[n] = $3; f[n] = file
    if (start == "" || $1 < start) start = $1 }
  END {
    if (n == 0) exit
    for (i = 1; i <= n; i++) {
      if (part[i] == "-") continue
      d = (i < n && f[i + 1] == f[i] ? t[i + 1] : end) - t[i]
      per[part[i]] += d
      printf "%8.1f s  %-16s %s\n", d, part[i], name[i] | "sort -rn"
    }
    close("sort -rn")
    print "" ; print "per part (the lanes ran side by side: \"lanes\" is their wall time):"
    for (p in per) printf "%8.1f s  %s\n", per[p], p | "sort -rn"
    close("sort -rn")
    total = end - start
    printf "\n%8.1f s  in all (%d min %02d s)\n", total, int(total / 60), int(total) % 60
  }' "$@"
