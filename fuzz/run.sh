#!/usr/bin/env bash
# Runs every fuzz target built in BUILD (cmake -DDROVER_FUZZ=ON): first over its past findings
# (fuzz/regressions/<target>/, each must now pass), then for SECONDS from its seed corpus, two
# targets at a time. A finding is saved in BUILD/fuzz-work/<target>/ and fails the run; fix it,
# then copy the input into fuzz/regressions/<target>/ so it stays fixed.
#   fuzz/run.sh BUILD SECONDS
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "$1" && pwd)"
seconds="$2"

run_one() {
  local bin=$1 t work
  t=$(basename "$bin")
  work="$build/fuzz-work/$t"
  mkdir -p "$work/corpus" "$work/findings"
  if compgen -G "$here/regressions/$t/*" >/dev/null; then
    "$bin" -timeout=10 -rss_limit_mb=2048 "$here/regressions/$t"/* >"$work/regressions.log" 2>&1 || {
      echo "FAIL $t: a past finding fails again (see $work/regressions.log)"
      tail -n 30 "$work/regressions.log"
      return 1
    }
  fi
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
       -artifact_prefix="$work/findings/" -print_final_stats=1 \
       "$work/corpus" "$here/corpus/$t" >"$work/fuzz.log" 2>&1; then
    echo "ok   $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/fuzz.log" | awk '{print $2}') runs in ${seconds}s"
  else
    echo "FAIL $t: a finding in $work/findings/ (log: $work/fuzz.log)"
    grep -v -E "^#[0-9]+" "$work/fuzz.log" | tail -n 25
    return 1
  fi
}
export -f run_one
export here build seconds
ls "$build"/fuzz/*_fuzz | xargs -P 2 -I{} bash -c 'run_one {}'
