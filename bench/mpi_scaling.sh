#!/bin/sh
# Scaling of the reference decoder step from 1 to N MPI ranks at the same global batch (16):
# efficiency = time(1 rank) / (N · time(N ranks)), i.e. throughput(N) / (N · throughput(1)).
# Each rank runs OpenBLAS and our loops on one thread (FUSION_THREADS=1), so N ranks use N cores;
# the one-rank, all-cores step is printed too for reference. On a machine shared with other jobs
# the figures measure the contention as much as the scaling: `uptime` is printed with them.
# Usage: bench/mpi_scaling.sh [N] [steps]   (needs mpirun: apt-get install -y openmpi-bin libopenmpi-dev)
set -e
N=${1:-2}; STEPS=${2:-7}
BENCH=${BENCH:-.build/release/fusion-bench}
if ! command -v mpirun >/dev/null; then
  echo "decoder-step-dp scaling: skipped (mpirun not found; apt-get install -y openmpi-bin libopenmpi-dev)"; exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
all=$($BENCH decoder-dp --steps=$STEPS | grep '^decoder-step-dp')
one=$(FUSION_THREADS=1 $BENCH decoder-dp --steps=$STEPS | grep '^decoder-step-dp')
many=$(mpirun -np $N --oversubscribe --bind-to none -x FUSION_THREADS=1 $BENCH decoder-dp --steps=$STEPS | grep '^decoder-step-dp')
echo "load: $(uptime | sed 's/.*load average: //')"; echo "$all" | head -1; echo "$one" | head -1; echo "$many"
ms() { echo "$1" | head -1 | sed -n 's/.* step \([0-9.]*\) ms.*/\1/p'; }
awk -v t1="$(ms "$one")" -v tn="$(ms "$many")" -v ta="$(ms "$all")" -v n=$N 'BEGIN {
  printf "decoder-step-dp scaling 1→%d ranks (1 thread each, global batch 16): %.1f ms → %.1f ms, speed-up %.2f×, efficiency %.0f%%; vs 1 rank on all cores (%.1f ms): %.2f×\n",
         n, t1, tn, t1 / tn, 100 * t1 / (n * tn), ta, ta / tn }'
