#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: generates a small multi-color-sum
# data directory and the designed network's predictions on it.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/setup.sh

out=runs/default
build/attrlab generate --env multi-color-sum -o size=64 --count 8 --seed 1 --out "$out/data"
build/attrlab predict --data "$out/data" --out "$out/predictions.csv"

echo "main: data directory in $out/data, predictions in $out/predictions.csv"
