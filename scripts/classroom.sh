#!/usr/bin/env bash
# The commands of the classroom autograding workflow (.github/classroom/classroom.yml), kept
# here so that a test of this repository runs exactly what the workflow runs
# (xtask/tests/classroom.rs): the workflow cannot rot unnoticed.
#
#   scripts/classroom.sh grade        check every exercise once; writes target/classroom/
#                                     report.json (the learner's report) and junit.xml
#   scripts/classroom.sh verdict ID   what that run says about one exercise; exits 0 if it is
#                                     solved, which is what earns its points
#
# The learner's name in the report is $LEARNER, else the repository's name on GitHub
# (GitHub Classroom names each learner's repository after the assignment and the learner).
set -euo pipefail
cd "$(dirname "$0")/.."

# The test points this at the runner it built; everyone else uses the cargo alias.
xtask=${XTASK:-cargo xtask}
out=target/classroom

case "${1:-}" in
  grade)
    mkdir -p "$out"
    learner=${LEARNER:-}
    if [ -z "$learner" ] && [ -n "${GITHUB_REPOSITORY:-}" ]; then
      learner=${GITHUB_REPOSITORY##*/}
    fi
    args=(check --all --format json --output "$out/report.json")
    [ -z "$learner" ] || args+=(--learner "$learner")
    status=0
    $xtask "${args[@]}" || status=$?
    # 1 means an exercise is not solved yet: that is a grade, not a failure of the grading.
    if [ "$status" -gt 1 ]; then
      echo "classroom.sh: cargo xtask check --all failed (exit $status)" >&2
      exit "$status"
    fi
    status=0
    $xtask check --from "$out/report.json" --format junit --output "$out/junit.xml" >/dev/null || status=$?
    [ "$status" -le 1 ] || exit "$status"
    ;;
  verdict)
    if [ -z "${2:-}" ]; then
      echo "usage: scripts/classroom.sh verdict ID" >&2
      exit 2
    fi
    if [ ! -f "$out/report.json" ]; then
      echo "classroom.sh: no $out/report.json; run \`scripts/classroom.sh grade\` first" >&2
      exit 2
    fi
    exec $xtask check "$2" --from "$out/report.json"
    ;;
  *)
    echo "usage: scripts/classroom.sh grade | verdict ID" >&2
    exit 2
    ;;
esac
