#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite; exits non-zero if any fails.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/setup.sh
ctest --test-dir build --output-on-failure
