#!/bin/sh
# Scaling from 1 to N MPI ranks at the same global batch (16) of the reference decoder step and of
# the Transfusion step (recipes/compare/transfusion-unet-tiny.yaml, each rank computing its rows of
# the micro-batch through the task, as `fusion train` under mpirun does):
# efficiency = time(1 rank) / (N · time(N ranks)), i.e. throughput(N) / (N · throughput(1)).
# Each rank runs OpenBLAS and our loops on one thread (FUSION_THREADS=1), so N ranks use N cores;
# the one-rank, all-cores step is printed too for reference. On a machine shared with other jobs
# the figures measure the contention as much as the scaling: `uptime` is printed with them.
# Usage: bench/mpi_scaling.sh [N] [steps]   (needs mpirun: apt-get install -y openmpi-bin libopenmpi-dev)
set -e
N=${1:-2}; STEPS=${2:-7}
BENCH=${BENCH:-.build/release/fusion-bench}
if ! command -v mpirun >/dev/null; then
  echo "data-parallel scaling: skipped (mpirun not found; apt-get install -y openmpi-bin libopenmpi-dev)"; exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
echo "load: $(uptime | sed 's/.*load average: //')"
ms() { echo "$1" | head -1 | sed -n 's/.* step \([0-9.]*\) ms.*/\1/p'; }
# scale BENCHMARK LINE-PREFIX: one rank on all cores, one rank on one thread, N ranks on one thread each.
scale() {
  all=$($BENCH $1 --steps=$STEPS | grep "^$2")
  one=$(FUSION_THREADS=1 $BENCH $1 --steps=$STEPS | grep "^$2")
  many=$(mpirun -np $N --oversubscribe --bind-to none -x FUSION_THREADS=1 $BENCH $1 --steps=$STEPS | grep "^$2")
  echo "$all" | head -1; echo "$one" | head -1; echo "$many"
  awk -v t1="$(ms "$one")" -v tn="$(ms "$many")" -v ta="$(ms "$all")" -v n=$N -v name="$2" 'BEGIN {
    printf "%s scaling 1→%d ranks (1 thread each, global batch 16): %.1f ms → %.1f ms, speed-up %.2f×, efficiency %.0f%%; vs 1 rank on all cores (%.1f ms): %.2f×\n",
           name, n, t1, tn, t1 / tn, 100 * t1 / (n * tn), ta, ta / tn }'
}
scale decoder-dp decoder-step-dp
scale transfusion-dp transfusion-step-dp
