#!/usr/bin/env python3
"""Two builds of Fusion side by side, step by step: is a change faster?

Both fusion-bench binaries run the same benchmark in lockstep (see run.py): each warms up, then
they take turns one timed step at a time, A, B, A, B, …, so both see the same load on a shared
machine whose speed drifts over seconds. Prints each build's median step and the median of the
per-step A/B ratios with its quartiles, over every round.

    git worktree add /tmp/base HEAD && (cd /tmp/base && swift build -c release --product fusion-bench)
    python3 bench/ab.py --b /tmp/base/.build/release/fusion-bench --only decoder,transfusion --rounds 3
"""
import argparse
import os
import statistics
import tempfile

from run import Lockstep, run_lockstep


def quartiles(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[1], q[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", default=".build/release/fusion-bench", help="the build under test")
    ap.add_argument("--b", required=True, help="the build to compare it with")
    ap.add_argument("--only", default="decoder", help="comma-separated fusion-bench benchmarks")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=2, help="rounds; A and B start in turn first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    a = ap.parse_args()
    env = dict(os.environ, FUSION_THREADS=str(a.threads))
    tmp = tempfile.mkdtemp(prefix="fusion-ab-")
    print(f"{'benchmark':<20}{'A ms':>9}{'B ms':>9}{'A/B':>7}{'quartiles':>15}{'steps':>7}")
    for name in filter(None, a.only.split(",")):
        times = {"A": [], "B": []}
        ratios = []
        for r in range(a.rounds):
            procs = []
            for label in (("A", "B") if r % 2 == 0 else ("B", "A")):
                cmd = [a.a if label == "A" else a.b, name, f"--steps={a.steps}", f"--precision={a.precision}",
                       f"--dump={os.path.join(tmp, label + '.json')}"]
                procs.append(Lockstep(label, cmd, env))
            if not all(p.ready() for p in procs):
                for p in procs:
                    p.finish()
                raise SystemExit(f"ab.py: {name}: a build did not start its timed steps")
            for section in run_lockstep(procs[0], procs[1:], a.steps):
                times["A"] += section["A"]
                times["B"] += section["B"]
                ratios += [x / y for x, y in zip(section["A"], section["B"])]
            for p in procs:
                p.finish()
        lo, mid, hi = quartiles(ratios)
        print(f"{name:<20}{statistics.median(times['A']):>9.1f}{statistics.median(times['B']):>9.1f}{mid:>7.3f}"
              f"{f'{lo:.3f}-{hi:.3f}':>15}{len(ratios):>7}")


if __name__ == "__main__":
    main()
