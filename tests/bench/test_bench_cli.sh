#!/bin/bash
# The benchmarks' command lines (bench/bench_cli.h), without running any benchmark: --help exits 0
# and lists every option; an unknown flag, a missing value or a bad number exits non-zero with
# nothing on stdout and one line on stderr, "<program>: error: <flag>: ...".
# Usage: test_bench_cli.sh BENCH_DIR (the directory of the built bench_* programs)
set -u
dir=$1
err=$(mktemp)
trap 'rm -f "$err"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# lists PROGRAM OPTION...: `PROGRAM --help` exits 0 and names every OPTION.
lists() {
  local program=$1 out option
  shift
  if ! out=$("$dir/$program" --help 2>"$err"); then
    fail "$program --help exited non-zero: $(cat "$err")"
    return
  fi
  for option in "$@"; do
    grep -q -e "^ *$option " <<<"$out" || fail "$program --help does not list $option"
  done
}

# refuses PROGRAM FLAG ARG...: `PROGRAM ARG...` exits non-zero at once (a timeout means it started
# the benchmark), prints nothing on stdout and one line on stderr that names FLAG.
refuses() {
  local program=$1 flag=$2 out rc
  shift 2
  out=$(timeout 60 "$dir/$program" "$@" 2>"$err")
  rc=$?
  local lines
  lines=$(wc -l <"$err")
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    fail "$program $*: exit code $rc"
  elif [ -n "$out" ] || [ "$lines" -ne 1 ] || ! grep -q -F -e "$program: error: $flag" "$err"; then
    fail "$program $*: expected one line '$program: error: $flag...' on stderr and nothing on stdout, got" \
      "stdout '$out', stderr '$(cat "$err")'"
  fi
}

lists bench_export --env -o --threads
refuses bench_export --bogus --bogus
refuses bench_export --threads --threads zero
refuses bench_export --env --env

lists bench_methods --images --batch --threads --quick --filter
refuses bench_methods --images --images 0
refuses bench_methods --batch --batch 4x
refuses bench_methods --filter --quick --filter

lists bench_metrics PROBE BATCH SECTION REPEATS
refuses bench_metrics PROBE abc
refuses bench_metrics BATCH 64 -- -1
refuses bench_metrics SECTION 64 256 everything
refuses bench_metrics REPEATS 64 256 unit 0

lists bench_perturbation --images --quick --method --repeats --side
refuses bench_perturbation --repeats --repeats 0
refuses bench_perturbation --side --side maybe
refuses bench_perturbation --method --method

lists bench_runtime --batches --fb-batches --size --seconds --modes --rounds --envs
refuses bench_runtime --help-me --help-me
refuses bench_runtime --batches --batches 1,,64
refuses bench_runtime --size --size -224
refuses bench_runtime --seconds --seconds soon
refuses bench_runtime --rounds --rounds 0
refuses bench_runtime --envs --envs

lists bench_smooth_mask --rounds --calls --threads --size
refuses bench_smooth_mask --calls --calls 1e3
refuses bench_smooth_mask --size --size 100

lists bench_study --ranks --threads --study --quick --first-model --all-models --compare
refuses bench_study --ranks --ranks 0
refuses bench_study --threads --threads many
refuses bench_study --ranks --ranks 2 --threads 1

lists bench_torch_methods --out --size --images --threads --only
refuses bench_torch_methods --out --size 64
refuses bench_torch_methods --images --out "$dir/unused" --images 1.5

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "every bench program's command line: ok"
