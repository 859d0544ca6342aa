#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: the default reproduction of the
# paper's studies with `attrlab run` — unseen-data-effect (Section 5: Tables 2, 5, 6) and
# faithfulness-test (Section 4) — at the default scale (16 images of 64×64 per model, minutes on
# 2 cores), then prints where the reports are.
# Extra arguments go to both runs: `bash scripts/main.sh --paper-scale` runs the paper's scale
# (224×224 images, 100 of them, full optimisation budgets) into runs/paper/ instead of
# runs/default/. A rerun continues (--resume) what an interrupted run left.
set -euo pipefail

cd "$(dirname "$0")/.."

# Only what the main job needs: the attrlab command and the Python module (scripts/test.sh
# builds the test suites and benchmarks too).
bash scripts/setup.sh attrlab _attrlab

scale=default
for arg in "$@"; do
  if [[ "$arg" == "--paper-scale" ]]; then scale=paper; fi
done
out="runs/$scale"
build/attrlab run unseen-data-effect "$@" --resume --out "$out/unseen-data-effect"
# The faithfulness test takes the maps it shares with the with-ude model (same method, data and
# settings) from that run instead of computing them again (--reuse; results unchanged).
build/attrlab run faithfulness-test "$@" --resume --reuse "$out/unseen-data-effect" --out "$out/faithfulness-test"

echo "main: reports in $out/unseen-data-effect/report.html and $out/faithfulness-test/report.html (Markdown: report.md beside them)"
