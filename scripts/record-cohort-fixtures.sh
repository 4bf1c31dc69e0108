#!/usr/bin/env bash
# Records xtask/tests/fixtures/cohort/: the check reports of a made-up cohort, each from a real
# run of `cargo xtask check --all --format json` on a scratch clone of this workshop, with the
# learner's fixes (solutions) and wrong fixes (maintainer half-fixes) copied in. The progress
# files (attempts, hints read) are written by hand: they stand for each learner's history.
# Re-record after a change of the report's format, then review the cohort snapshots:
#
#   scripts/record-cohort-fixtures.sh      (from the workshop's root; a few minutes once built)
#
# The runner's snapshot tests read these files; nothing else does.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/xtask/tests/fixtures/cohort
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The committed workshop, so that nothing uncommitted leaks into a learner's report; built into
# this checkout's target directory, whose dependencies are built already.
git clone -q "$root" "$scratch/workshop"
cd "$scratch/workshop"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$out"

dir() { ls -d exercises/*/"$(echo "$1" | tr '[:upper:]' '[:lower:]')"-*; }
solution() { local d; d=$(dir "$1"); echo "solutions/${d#exercises/}"; }
# The learner fixed these exercises: the solution's code over theirs.
solve() { for id in "$@"; do cp -r "$(solution "$id")/src/." "$(dir "$id")/src/"; done; }
# The learner wrote this wrong fix: a maintainer half-fix over the exercise's code.
half_fix() { cp -r "$(solution "$1")/variants/$2/src/." "$(dir "$1")/src/"; }
progress() { mkdir -p .workshop && cat >.workshop/progress.toml; }
start_over() { git checkout -q -- exercises && git clean -qfd exercises && rm -rf .workshop; }
record() {
  local status=0
  cargo xtask check --all --format json --learner "$1" --output "$out/$2" >/dev/null || status=$?
  # 1: an exercise is not solved, which is the point of most of these reports.
  [ "$status" -le 1 ] || exit "$status"
  echo "recorded $2"
}

# ada: a fresh clone, graded by CI: nothing solved, no progress recorded.
start_over
record ada ada.json

# bob, on Monday: J01 solved; on Tuesday: J01-J03, and J04 not started (it does not compile).
start_over
solve J01
progress <<'EOF'
[exercises.J01]
solved = true
hints_seen = 1
attempts = 3
EOF
record bob bob-monday.json
solve J02 J03
progress <<'EOF'
[exercises.J01]
solved = true
hints_seen = 1
attempts = 3
[exercises.J02]
solved = true
attempts = 2
[exercises.J03]
solved = true
hints_seen = 2
attempts = 5
EOF
record bob bob.json

# carol: J01-J05 solved; at J06 with a tokio Mutex held across the audit.
start_over
solve J01 J02 J03 J04 J05
half_fix J06 tokio-mutex-across-the-audit
progress <<'EOF'
[exercises.J01]
solved = true
attempts = 1
[exercises.J02]
solved = true
attempts = 1
[exercises.J03]
solved = true
attempts = 2
[exercises.J04]
solved = true
hints_seen = 1
attempts = 4
[exercises.J05]
solved = true
attempts = 2
[exercises.J06]
hints_seen = 2
attempts = 6
EOF
record carol carol.json

# dave: everything solved, graded by CI.
start_over
solve J01 J02 J03 J04 J05 J06 J07 J08 J09 J10
record dave dave.json

# erin (whose git user.name carries an e-mail address): J01 solved; J02's checks edited to pass
# it; J03 with a sleep instead of waiting for the slot.
start_over
solve J01
sed -i 's/assert_eq!(/assert_ne!(/' "$(dir J02)/tests/checks.rs"
half_fix J03 sleep-then-read-slot
progress <<'EOF'
[exercises.J01]
solved = true
attempts = 2
[exercises.J02]
attempts = 7
hints_seen = 3
[exercises.J03]
attempts = 1
EOF
record "erin <erin@example.com>" erin.json

# frank: J01 solved, then J08 (the session's pair exercise) with the guard in the handler.
start_over
solve J01
half_fix J08 guard-in-the-handler
progress <<'EOF'
[exercises.J01]
solved = true
attempts = 4
[exercises.J08]
attempts = 3
hints_seen = 1
EOF
record frank frank.json

# Not a report: a cohort folder holds other files too.
echo '{"room": "B-204", "seats": 24}' >"$out/seating.json"
