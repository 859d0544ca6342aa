#!/usr/bin/env bash
# Writes the SHA-256 of every map, output and maps.json field that depends on the runtime, for every
# built-in method (and the composites of lrp) on both environments, with the attrlab binary $1,
# into the file $2. Two runtimes give the same maps iff the two files are equal:
#   scripts/same_maps.sh OLD/attrlab old.txt && scripts/same_maps.sh build/attrlab new.txt && cmp old.txt new.txt
set -euo pipefail
bin=$(realpath "$1")
out=$(realpath -m "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" generate --env multi-color-sum -o size=32 --count 6 --seed 3 --out multi >/dev/null
"$bin" generate --env single-color-modulo -o size=32 --count 6 --seed 3 --out modulo >/dev/null
runs=(
  "saliency" "input-x-gradient" "integrated-gradients" "integrated-gradients -p quadrature=exact -p baseline=background"
  "smoothgrad -p samples=4" "guided-backprop" "deconvnet"
  "lrp" "lrp -p composite=lrp-zplus" "lrp -p composite=lrp-alpha-beta -p alpha=2 -p beta=1" "lrp -p composite=lrp-epsilon-plus"
  "deeplift" "deeplift -p baseline=background" "deepshap -p baselines=data:2" "gradcam" "gradcam-plus-plus"
  "occlusion" "lime -p samples=50" "kernelshap -p samples=50" "rise -p masks=50"
  "extremal-perturbation -p iterations=20" "iba -p iterations=3" "random" "constant")
: > "$out"
for env in multi modulo; do
  for i in "${!runs[@]}"; do
    read -r -a args <<< "${runs[$i]}"
    method=${args[0]}
    if [[ $env == modulo && ( $method == integrated-gradients && ${runs[$i]} == *exact* ) ]]; then continue; fi
    "$bin" attribute --data "$env" --method "${args[@]}" --limit 4 --out "maps-$env-$i" >/dev/null 2>&1 \
      || { echo "$env ${runs[$i]}: failed" >> "$out"; continue; }
    (cd "maps-$env-$i" && sha256sum ./*.npy | sed "s|^|$env ${runs[$i]}: |" >> "$out"
     /usr/bin/python3 -c 'import json,sys; m=json.load(open("maps.json")); print(sys.argv[1], json.dumps([s.get("convergence-delta") for s in m["samples"]]), m["evaluations"])' "$env ${runs[$i]}:" >> "$out")
  done
  "$bin" predict --data "$env" --out "pred-$env.csv" >/dev/null 2>&1 && sha256sum "pred-$env.csv" | sed "s|^|$env predict: |" >> "$out"
done
