#!/usr/bin/env bash
# The learner's edit-check loop, measured: a one-line edit in an exercise, then
# `cargo xtask check ID`. Prints every run and the median. Budget (DESIGN.md): median under
# 1 s for a behaviour-only exercise on the 2-core machine.
#
#   scripts/bench-learner-loop.sh [ID] [RUNS]      (defaults: J01, 7)
#
# This is a benchmark, not a test: it reports a figure and never fails on it.
set -euo pipefail
cd "$(dirname "$0")/.."

id=${1:-J01}
runs=${2:-7}
dir=$(ls -d exercises/*/"$(echo "$id" | tr '[:upper:]' '[:lower:]')"-* | head -n 1)
file="$dir/src/lib.rs"
backup=$(mktemp)
cp "$file" "$backup"
trap 'cp "$backup" "$file"; rm -f "$backup"' EXIT

# Warm up: the runner and the exercise are built once, as they are after a learner's first check.
cargo xtask check "$id" >/dev/null 2>&1 || true

times=()
for i in $(seq "$runs"); do
  # A one-line edit the compiler must see: a changed comment changes the file's hash.
  cp "$backup" "$file"
  echo "// edit $i $(date +%s%N)" >>"$file"
  start=$(date +%s%N)
  status=0
  cargo xtask check "$id" >/dev/null 2>/tmp/bench-learner-loop.err || status=$?
  end=$(date +%s%N)
  # 0 and 1 are verdicts (pass, fail); anything else means the run measured an error.
  if [ "$status" -gt 1 ]; then
    echo "run $i: cargo xtask check $id exited $status:" >&2
    cat /tmp/bench-learner-loop.err >&2
    exit 1
  fi
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "run $i: ${ms} ms"
done

median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}')
echo "median of $runs runs, edit + cargo xtask check $id: ${median} ms"
