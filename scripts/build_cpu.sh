#!/usr/bin/env bash
# The CPU seconds of a cold build, unit by unit: configures DIR as scripts/setup.sh does (Release,
# Ninja unless DIR was configured before, no ccache), builds the TARGETs (all without any) with
# every compile and link run under /usr/bin/time, and prints the sum over the steps, the build's
# own time and the 10 dearest steps.
# Each step's "wall user sys maxrss-KiB output" line is in DIR/build_cpu.log. CPU seconds hold on
# a loaded machine far better than wall seconds (README "The cold build").
#   bash scripts/build_cpu.sh build-cpu attrlab _attrlab   # the main job's build
#   bash scripts/build_cpu.sh build-cpu                    # then the rest of the tree
# Extra configure options go in BUILD_CPU_CMAKE_ARGS (e.g. -DATTRLAB_PRECOMPILE_HEADERS=OFF).
set -euo pipefail

if [[ -n "${BUILD_CPU_LOG:-}" ]]; then  # called by CMake as the compiler or linker launcher
  out=unknown
  prev=
  for arg in "$@"; do
    if [[ "$prev" == "-o" ]]; then out=$arg; fi
    prev=$arg
  done
  times=$(mktemp)
  status=0
  /usr/bin/time -o "$times" -f '%e %U %S %M' "$@" || status=$?
  echo "$(cat "$times") $out" >> "$BUILD_CPU_LOG"
  rm -f "$times"
  exit "$status"
fi

cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/build_cpu.sh DIR [TARGET...]}
shift
self="$(pwd)/scripts/build_cpu.sh"
generator=()
if [[ ! -f "$dir/CMakeCache.txt" ]]; then generator=(-G Ninja); fi
# shellcheck disable=SC2086
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 \
  -DCMAKE_CXX_COMPILER_LAUNCHER="$self" -DCMAKE_CXX_LINKER_LAUNCHER="$self" \
  ${BUILD_CPU_CMAKE_ARGS:-} > /dev/null
log="$(cd "$dir" && pwd)/build_cpu.log"
: > "$log"
echo "build_cpu: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
BUILD_CPU_LOG="$log" /usr/bin/time -o "$dir/build_cpu.time" \
  -f 'build_cpu: make: %e s wall, %U s user, %S s system' \
  cmake --build "$dir" -j"$(nproc)" ${1:+--target "$@"} > "$dir/build_cpu.out"
cat "$dir/build_cpu.time"
echo "build_cpu: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '{user += $2; sys += $3} END {printf "build_cpu: %d steps, %.1f CPU s (%.1f user, %.1f system)\n", NR, user + sys, user, sys}' "$log"
echo "build_cpu: the 10 dearest steps (CPU s, output):"
awk '{printf "%8.2f  %s\n", $2 + $3, $5}' "$log" | sort -rn | head -10
