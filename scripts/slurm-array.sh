#!/usr/bin/env bash
# One attrlab experiment on a Slurm cluster: a job array runs its shards (one array task per
# shard, `attrlab run --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`), then a job that
# starts once every task has succeeded joins them with `attrlab merge`. On the login node:
#
#   bash scripts/slurm-array.sh EXPERIMENT RUN_ROOT SHARDS [attrlab run options...]
#   e.g. bash scripts/slurm-array.sh unseen-data-effect /shared/runs/ude 8 --paper-scale
#
# writes RUN_ROOT/shard-K (K = 0 .. SHARDS-1), RUN_ROOT/logs/ and finally RUN_ROOT/merged, the
# run directory (byte-identical results to a 1-process run). RUN_ROOT must be on a filesystem
# every node sees; ATTRLAB names the binary (default: attrlab on PATH).
#
# Node failures: every task runs with --resume, which keeps the units its shard has finished
# (each unit's .done marker is written last) and recomputes the rest. A task Slurm requeues
# (--requeue) therefore continues where it stopped; a task that failed is resubmitted alone with
#   SHARDS=8 sbatch --array=3 scripts/slurm-array.sh shard EXPERIMENT RUN_ROOT [options...]
# (SHARDS, because a one-task array has SLURM_ARRAY_TASK_COUNT=1), then the merge with
#   sbatch scripts/slurm-array.sh merge EXPERIMENT RUN_ROOT 8
#SBATCH --job-name=attrlab
#SBATCH --cpus-per-task=2
#SBATCH --requeue
set -euo pipefail

attrlab=${ATTRLAB:-attrlab}
usage="usage: bash scripts/slurm-array.sh EXPERIMENT RUN_ROOT SHARDS [attrlab run options...]"

if [[ -z "${SLURM_JOB_ID:-}" ]]; then
  # On the login node: submit the array, then the merge that depends on it.
  (($# >= 3)) || { echo "$usage" >&2; exit 1; }
  experiment=$1 root=$2 shards=$3
  shift 3
  [[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "slurm-array.sh: SHARDS $shards: expected a positive integer" >&2; exit 1; }
  mkdir -p "$root/logs"
  array=$(sbatch --parsable --array="0-$((shards - 1))" --output="$root/logs/shard-%a.log" \
    "$0" shard "$experiment" "$root" "$@")
  merge=$(sbatch --parsable --dependency="afterok:${array%%;*}" --output="$root/logs/merge.log" \
    "$0" merge "$experiment" "$root" "$shards")
  echo "slurm-array.sh: shards in job array $array, merge in job $merge; the run lands in $root/merged"
  exit 0
fi

mode=$1 experiment=$2 root=$3
shift 3
threads=${SLURM_CPUS_PER_TASK:-1}
case "$mode" in
  shard)
    k=$SLURM_ARRAY_TASK_ID
    n=${SHARDS:-$SLURM_ARRAY_TASK_COUNT}
    # --resume also starts a shard whose directory does not exist yet.
    exec "$attrlab" --threads "$threads" run "$experiment" "$@" --quiet --shard "$k/$n" --resume \
      --out "$root/shard-$k"
    ;;
  merge)
    shards=$1
    dirs=()
    for ((k = 0; k < shards; k++)); do dirs+=("$root/shard-$k"); done
    exec "$attrlab" merge "${dirs[@]}" --out "$root/merged"
    ;;
  *)
    echo "$usage" >&2
    exit 1
    ;;
esac
