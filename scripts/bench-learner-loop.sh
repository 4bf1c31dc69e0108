#!/usr/bin/env bash
# The learner's edit → verdict loop, measured against rustlings' on the same machine, in one run.
#
#   scripts/bench-learner-loop.sh [RUNS]          (default: 9 rounds)
#   BENCH_EDIT=middle scripts/bench-learner-loop.sh [RUNS]
#
# Each round makes a one-line edit and times, interleaved so that the machine's load falls on
# both alike:
#
#   - `cargo xtask check ID` for one exercise of each kind of check (srv, vt, loom, cf, snap),
#     and one behaviour-only middle exercise (M09), compared with J01 (issue 12);
#   - `cargo xtask watch ID` for a srv and a vt exercise: from the save to the line watch prints
#     after every verdict (it ends in "Press Ctrl-C to stop."), the watcher already running;
#   - `rustlings run tests1` after the same kind of edit, once after each of ours.
#
# rustlings is installed on first use into target/tools (`cargo install rustlings --locked`),
# its exercises are set up in $BENCH_SCRATCH (default: ${TMPDIR:-/tmp}/bench-learner-loop) and
# `tests1` is solved there. It prints every time, each median, its ratio to rustlings' median,
# the load average next to every figure, and whether issue 11's bounds are met:
#
#   check median ≤ 1.25 × rustlings' and watch median ≤ 1.0 × rustlings', for srv and vt.
#
# The edit is a comment line added to the file. BENCH_EDIT=end (the default, and issue 11's
# setting) appends it: nothing in the code moves, the cheapest edit there is. BENCH_EDIT=middle
# adds it after the first item that ends past the middle of the file: every line below moves,
# so every panic location below changes and the compiler redoes their code, as after a
# learner's edit that adds or removes a line in a function.
#
# A run counts only if the edit was compiled (cargo decides by file times, and a save it does not
# see would time a build that did nothing); such a run is measured again with a new edit.
#
# This is a benchmark, not a test: a bound that is not met is reported, and the exit status is
# still 0. It exits non-zero only when it could not measure (a command failed, a watcher hung).
# It restores every file it edits and the learner's progress, and stops the watchers it started.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME's decimal point is the locale's.
cd "$(dirname "$0")/.."
root=$PWD

runs=${1:-9}
edit_at=${BENCH_EDIT:-end}
if [[ $edit_at != end && $edit_at != middle ]]; then
  echo "BENCH_EDIT must be end or middle, not '$edit_at'" >&2
  exit 2
fi
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/bench-learner-loop.sh [RUNS]   (RUNS: a positive number of rounds, default 9)" >&2
  exit 2
fi

# kind:ID. One exercise per kind of check; the untouched exercise, so every verdict is a failure
# the learner would see (cf: the crate does not compile yet). `middle` is a behaviour-only
# exercise of the middle level (vt and snap), held to the junior level's figure (J01's).
check_targets=(srv:J02 vt:J10 loom:J07 cf:J03 snap:J01 middle:M09)
watch_targets=(srv:J02 vt:J10)
# The line watch prints after each verdict (see `watch` in xtask/src/learner.rs).
marker="Press Ctrl-C to stop."
# A sample whose edit was not compiled is taken again, at most this many times in all.
attempts=3

scratch=${BENCH_SCRATCH:-${TMPDIR:-/tmp}/bench-learner-loop}
mkdir -p "$scratch"
target_dir=${CARGO_TARGET_DIR:-target}
rustlings_bin=$root/target/tools/bin/rustlings
rustlings_dir=$scratch/rustlings
tests1=$rustlings_dir/exercises/17_tests/tests1.rs

now_us() { echo "${EPOCHREALTIME/./}"; }
load() { cut -d' ' -f1 /proc/loadavg; }
say() { printf '%s\n' "$*"; }
die() {
  printf 'bench-learner-loop: %s\n' "$*" >&2
  exit 1
}

exercise_dir() {
  local lower dirs
  lower=$(tr '[:upper:]' '[:lower:]' <<<"$1")
  dirs=(exercises/*/"$lower"-*)
  [ -d "${dirs[0]}" ] || die "no exercise $1 under exercises/"
  echo "${dirs[0]}"
}

# --- Restore everything on exit -------------------------------------------------------------

backups=()  # "original|copy"
watchers=() # process group ids of the watchers we started
cleanup() {
  local pgid pair
  for pgid in "${watchers[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  for pair in "${backups[@]}"; do cp "${pair#*|}" "${pair%|*}"; done
}
trap cleanup EXIT
backup() {
  local copy
  copy=$scratch/backup.$(echo "$1" | tr '/' '_')
  cp "$1" "$copy"
  backups+=("$1|$copy")
}
# A one-line edit the compiler must see: a new comment changes the file's hash. The new text is
# written in one go, so a watcher never sees half an edit.
edits=0
edit() {
  local file=$1 original=$2 line
  edits=$((edits + 1))
  line="// bench edit $edits $(now_us)"
  if [ "$edit_at" = end ]; then
    { cat "$original"; echo "$line"; } >"$scratch/edit.tmp"
  else
    # After a `}` in column 0 (the end of an item: never inside a string or a body) at or past
    # the middle of the file; at the end when there is none.
    awk -v line="$line" -v half="$(($(wc -l <"$original") / 2))" '
      { print } !done && NR >= half && /^}/ { print line; done = 1 }
      END { if (!done) print line }' "$original" >"$scratch/edit.tmp"
  fi
  cp "$scratch/edit.tmp" "$file"
}

# Whether the compiler ran on package `$1` after `$2` was saved: cargo touches the package's
# `invoked.timestamp` just before it does; when the runner reran cargo's last rustc command
# itself (xtask/src/replay.rs), the library rustc wrote is newer than the save.
compiled() {
  [ -n "$(find "$target_dir"/*/.fingerprint -maxdepth 2 -path "*/.fingerprint/$1-????????????????/invoked.timestamp" \
    -newer "$2" -print -quit 2>/dev/null)" ] ||
    [ -n "$(find "$target_dir"/*/deps -maxdepth 1 -name "lib${1//-/_}-????????????????.rlib" \
      -newer "$2" -print -quit 2>/dev/null)" ]
}

# --- rustlings, installed and set up once ---------------------------------------------------

if [ ! -x "$rustlings_bin" ]; then
  say "installing rustlings into target/tools (once)..."
  cargo install rustlings --locked --root target/tools >"$scratch/install.log" 2>&1 ||
    die "cargo install rustlings failed; see $scratch/install.log"
fi
if [ ! -f "$tests1" ]; then
  say "setting up rustlings' exercises in $rustlings_dir (once)..."
  rm -rf "$rustlings_dir"
  (cd "$scratch" && echo | "$rustlings_bin" init >"$scratch/init.log" 2>&1) ||
    die "rustlings init failed; see $scratch/init.log"
fi
# Solve tests1 (the same as rustlings' own solution): import the function, assert twice.
sed -i -e 's|^    // TODO: Import `is_even`.*|    use super::*;|' -e '/^    \/\/ the outer module\.$/d' \
  -e '0,/^        assert!();/s//        assert!(is_even(2));/' \
  -e '0,/^        assert!();/s//        assert!(!is_even(3));/' "$tests1"
grep -q 'assert!(!is_even(3));' "$tests1" || die "could not solve $tests1 (a new rustlings version?)"
tests1_original=$scratch/tests1.rs.solved
sed '/^\/\/ bench edit /d' "$tests1" >"$tests1_original"

# --- One sample of each loop; each sets `ms` and `fresh` (whether the edit was compiled) ------

ms=0
fresh=false

sample_rustlings() {
  local start end status=0
  edit "$tests1" "$tests1_original"
  start=$(now_us)
  (cd "$rustlings_dir" && "$rustlings_bin" run tests1) </dev/null >"$scratch/rustlings.out" 2>&1 || status=$?
  end=$(now_us)
  [ "$status" -eq 0 ] || die "rustlings run tests1 exited $status; see $scratch/rustlings.out"
  ms=$(((end - start) / 1000))
  fresh=false
  [ "$rustlings_dir/target/debug/tests1" -nt "$tests1" ] && fresh=true
  return 0
}

declare -A source original package
for target in "${check_targets[@]}" "${watch_targets[@]}"; do
  id=${target#*:}
  [ -n "${source[$id]:-}" ] && continue
  dir=$(exercise_dir "$id")
  git diff --quiet -- "$dir" 2>/dev/null ||
    say "note: $dir differs from git; its timings are of your version, not the untouched one"
  source[$id]=$dir/src/lib.rs
  package[$id]=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | head -n 1)
  backup "${source[$id]}"
  original[$id]=$scratch/original.$id.rs
  cp "${source[$id]}" "${original[$id]}"
done
[ -f .workshop/progress.toml ] && backup .workshop/progress.toml

sample_check() {
  local id=$1 start end status=0
  edit "${source[$id]}" "${original[$id]}"
  start=$(now_us)
  cargo xtask check "$id" >"$scratch/check.out" 2>&1 || status=$?
  end=$(now_us)
  # 0 and 1 are verdicts (pass, fail); anything else means the run measured an error.
  [ "$status" -le 1 ] || die "cargo xtask check $id exited $status; see $scratch/check.out"
  ms=$(((end - start) / 1000))
  fresh=false
  compiled "${package[$id]}" "${source[$id]}" && fresh=true
  return 0
}

# Waits until the watcher's output holds `count` marker lines, reading only what is new since
# the last call, with builtins (a grep per poll would steal CPU from the build being timed).
exec {sleep_fd}<> <(:)
watch_fd=0
seen=0
partial=""
wait_for_marker() {
  local count=$1 deadline=$((EPOCHSECONDS + $2)) line
  while [ "$seen" -lt "$count" ]; do
    if IFS= read -r -u "$watch_fd" line; then
      [[ "$partial$line" == *"$marker"* ]] && seen=$((seen + 1))
      partial=""
    else
      partial+=$line # EOF in the middle of a line: keep it for the next read.
      [ "$EPOCHSECONDS" -lt "$deadline" ] || return 1
      read -r -t 0.002 -u "$sleep_fd" _ || true
    fi
  done
}

watch_id=""
watch_out=""
start_watcher() {
  watch_id=$1
  watch_out=$scratch/watch.$1.out
  : >"$watch_out"
  # Its own session, so the watcher and everything it starts are stopped as one group.
  setsid cargo xtask watch "$watch_id" >"$watch_out" 2>&1 </dev/null &
  watchers+=("$!")
  exec {watch_fd}<"$watch_out"
  seen=0 partial=""
  # The first verdict, untimed: the watcher is running, as it is for a learner mid-exercise.
  wait_for_marker 1 300 || die "cargo xtask watch $watch_id printed no verdict in 300 s; see $watch_out"
}
stop_watcher() {
  exec {watch_fd}<&-
  kill -TERM -- "-${watchers[-1]}" 2>/dev/null || true
  wait "${watchers[-1]}" 2>/dev/null || true
  unset 'watchers[-1]'
}
sample_watch() {
  local start end
  start=$(now_us)
  edit "${source[$watch_id]}" "${original[$watch_id]}"
  wait_for_marker $((seen + 1)) 120 ||
    die "cargo xtask watch $watch_id did not react to a save in 120 s; see $watch_out"
  end=$(now_us)
  ms=$(((end - start) / 1000))
  fresh=false
  compiled "${package[$watch_id]}" "${source[$watch_id]}" && fresh=true
  return 0
}

# Takes one sample with `$1 ARGS...`, again with a new edit while the edit was not compiled;
# appends its time and the load when it started to the lists named `times_$key`, `loads_$key`.
declare -A times loads
retried=0
measure() {
  local key=$1 label=$2 l try
  shift 2
  for try in $(seq "$attempts"); do
    l=$(load)
    "$@"
    $fresh && break
    retried=$((retried + 1))
    printf '    %-28s %5d ms  (load %s)  not compiled: measured again\n' "$label" "$ms" "$l"
  done
  $fresh || die "$label: $attempts edits in a row were not compiled (are file times sane here?)"
  times[$key]+=" $ms"
  loads[$key]+=" $l"
  printf '    %-28s %5d ms  (load %s)\n' "$label" "$ms" "$l"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
mean() { tr ' ' '\n' | grep . | awk '{s+=$1} END {printf "%.2f", s/NR}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
# The bound is judged on the ratio as printed, to two decimals.
within() { awk -v r="$1" -v bound="$2" 'BEGIN {exit !(r <= bound)}'; }

# --- The run --------------------------------------------------------------------------------

say "edit: a comment line added at the $edit_at of the file (BENCH_EDIT=end|middle)"
say "load at start: $(uptime)"
say "warming up: one untimed run of each, as after a learner's first check..."
for target in "${check_targets[@]}"; do
  sample_check "${target#*:}"
done
# Its first run greets a new user and waits for Enter.
(cd "$rustlings_dir" && echo | "$rustlings_bin" run tests1) >"$scratch/rustlings.out" 2>&1 ||
  die "rustlings run tests1 failed; see $scratch/rustlings.out"

for round in $(seq "$runs"); do
  say "round $round of $runs"
  for target in "${check_targets[@]}"; do
    measure "check:$target" "check ${target#*:} (${target%%:*})" sample_check "${target#*:}"
    measure rustlings "rustlings run tests1" sample_rustlings
  done
  for target in "${watch_targets[@]}"; do
    start_watcher "${target#*:}"
    measure "watch:$target" "watch ${target#*:} (${target%%:*})" sample_watch
    stop_watcher
    measure rustlings "rustlings run tests1" sample_rustlings
  done
done

rustlings_median=$(echo "${times[rustlings]}" | median)
say ""
say "load at end: $(uptime)"
[ "$retried" -eq 0 ] || say "$retried samples were taken again: their edit had not been compiled"
say ""
say "medians of $runs rounds; load: the 1-minute load average when each sample started, mean"
printf '  %-34s %8s  %12s  %5s\n' "loop" "median" "vs rustlings" "load"
printf '  %-34s %5d ms  %11sx  %5s\n' "rustlings run tests1" "$rustlings_median" "1.00" \
  "$(echo "${loads[rustlings]}" | mean)"
verdicts=()
report() {
  local key=$1 what=$2 bound=$3 m r
  m=$(echo "${times[$key]}" | median)
  r=$(ratio "$m" "$rustlings_median")
  printf '  %-34s %5d ms  %11sx  %5s\n' "$what" "$m" "$r" "$(echo "${loads[$key]}" | mean)"
  if [ -n "$bound" ]; then
    if within "$r" "$bound"; then
      verdicts+=("met:     $what: ${r}x ≤ ${bound}x")
    else
      verdicts+=("NOT met: $what: ${r}x > ${bound}x")
    fi
  fi
}
for target in "${check_targets[@]}"; do
  bound=""
  [[ ${target%%:*} == srv || ${target%%:*} == vt ]] && bound=1.25
  report "check:$target" "cargo xtask check ${target#*:} (${target%%:*})" "$bound"
done
for target in "${watch_targets[@]}"; do
  report "watch:$target" "watch ${target#*:} (${target%%:*}), save to verdict" 1.0
done
say ""
say "issue 11's bounds (check ≤ 1.25x and watch ≤ 1.0x rustlings' median, for srv and vt):"
for v in "${verdicts[@]}"; do say "  $v"; done
middle_median=$(echo "${times[check:middle:M09]}" | median)
junior_median=$(echo "${times[check:snap:J01]}" | median)
say ""
say "the middle level's loop against the junior level's (M09 against J01, same run):" \
  "$(ratio "$middle_median" "$junior_median")x"
