#!/usr/bin/env bash
# Installs the missing Debian 12 build dependencies (only those missing), then configures and
# builds attrlab (Release) into build/: every target, or only the targets given as arguments.
# Safe to run again: nothing is installed twice and the build is incremental. Runs as root,
# without questions.
set -euo pipefail

cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev libdnnl-dev libopencv-dev libopencv-contrib-dev libfmt-dev doctest-dev libtbb-dev
  libvlfeat-dev nlohmann-json3-dev libcli11-dev libplplot-dev plplot-driver-cairo
  libonnx-dev libprotobuf-dev libpng-dev libxbyak-dev
  openmpi-bin libopenmpi-dev
  pybind11-dev python3-dev python3-numpy python3-pytest python3-torch
  libcmark-gfm-dev libcmark-gfm-extensions-dev chromium
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update
  apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
fi

# Ninja, not Make: Ninja compiles a library's units while the libraries it links are still being
# compiled, where Make builds the libraries one after the other; with a few large unity units
# per library (cmake/Unity.cmake) only that keeps both cores busy. A build/ configured before
# keeps its generator.
generator=()
if [[ ! -f build/CMakeCache.txt ]]; then generator=(-G Ninja); fi
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3
# Arguments name the targets to build (scripts/main.sh: the command and the Python module);
# without any, everything is built, the test suites and benchmarks included.
cmake --build build -j"$(nproc)" ${1:+--target "$@"}

# Debian's python3 imports attrlab from build/python (the package and its extension) through a
# .pth file in its site directory.
site=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')
mkdir -p "$site"
echo "$(pwd)/build/python" > "$site/attrlab.pth"
