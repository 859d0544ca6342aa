#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build in build-sanitize/, then the whole test
# suite (every doctest executable, the end-to-end tests of the attrlab binary and the fuzz test)
# under it. Any sanitizer report fails the test that triggered it, and so this script.
#
#   bash scripts/sanitize.sh            # configure, build, run every test
#   bash scripts/sanitize.sh lab cli    # only these suites (ctest names; test_NAME is built)
#   JOBS=2 bash scripts/sanitize.sh     # parallel build jobs (default: all cores)
#   ATTRLAB_FUZZ_SECONDS=30 bash scripts/sanitize.sh   # shorter fuzzing
#
# Leak checking is on; the suppressions in scripts/sanitize.supp name the one-time allocations
# of the OpenMP and oneDNN runtimes that live until the process ends.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-sanitize"
jobs="${JOBS:-$(nproc)}"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DATTRLAB_BUILD_BENCH=OFF -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
suites=("$@")
if ((${#suites[@]})); then
  targets=()
  for s in "${suites[@]}"; do
    case "$s" in python) targets+=(_attrlab) ;; *) targets+=("test_$s") ;; esac  # python: pytest on the module
  done
  case " ${suites[*]} " in *" cli "* | *" fuzz "*) targets+=(attrlab) ;; esac
  nice cmake --build "$build" -j "$jobs" --target "${targets[@]}"
else
  nice cmake --build "$build" -j "$jobs"
fi

# intercept_tls_get_addr=0: the attrlab launcher dlopens the command, so the libraries' thread-locals
# are dynamic TLS, whose ranges this GCC 12 LeakSanitizer misreads under Debian 12's glibc 2.36
# (its tracer then crashes at exit: "LeakSanitizer has encountered a fatal error"); without the
# interception dynamic TLS is not scanned for pointers, and nothing it alone holds was reported.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=99:strict_string_checks=1:detect_stack_use_after_return=0:intercept_tls_get_addr=0"
export LSAN_OPTIONS="suppressions=$root/scripts/sanitize.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98"
# The sanitizers are several times slower: give every test the time it needs.
# The python and plugin suites run uninstrumented programs (/usr/bin/python3, cmake, make, the
# compiler) that load or start instrumented code: the sanitizer runtimes are preloaded into them,
# and leak checking and strict string checks are off there, since those programs' own allocations
# and their length-bounded string calls (make's strndup of unterminated buffers) would be reported.
preload="$(${CXX:-c++} -print-file-name=libasan.so) $(${CXX:-c++} -print-file-name=libubsan.so)"
hosted='python|plugin'
run_suites() {  # $1: ctest regex of the suites to run
  local plain="$1" hosted_now="" hosted_asan=""
  if [[ -z "$plain" ]]; then plain='.*'; fi
  ctest --test-dir "$build" --output-on-failure --timeout 3600 -R "$plain" -E "^($hosted)\$"
  hosted_now="$(ctest --test-dir "$build" -N -R "$plain" | sed -nE "s/^ *Test *#[0-9]+: ($hosted)$/\1/p" | paste -sd'|')"
  if [[ -n "$hosted_now" ]]; then
    hosted_asan="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}"
    LD_PRELOAD="$preload" ASAN_OPTIONS="${hosted_asan/strict_string_checks=1/strict_string_checks=0}" \
      ctest --test-dir "$build" --output-on-failure --timeout 3600 -R "^($hosted_now)\$"
  fi
}
if ((${#suites[@]})); then
  run_suites "^($(IFS='|'; echo "${suites[*]}"))\$"
  echo "sanitize: the suites ${suites[*]} passed under AddressSanitizer and UndefinedBehaviorSanitizer"
else
  run_suites ""
  echo "sanitize: every test passed under AddressSanitizer and UndefinedBehaviorSanitizer"
fi
