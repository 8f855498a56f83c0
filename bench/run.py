#!/usr/bin/env python3
"""`make bench`: every benchmark in Fusion (fusion-bench) and in its PyTorch CPU twin
(bench/torch_*.py), interleaved in one invocation, one line each with both times and their ratio.

Each benchmark runs as its own process on both sides, so peak RSS is that benchmark's alone;
"step" memory is that peak above the RSS the process had before its timed region (libraries and
weights excluded). The twins replay the batch fusion-bench packed (--dump). PyTorch's OpenMP
threads spin-wait by default, which on a loaded 2-core machine can cost it several times its
quiet speed, so each twin runs both with the default and with OMP_WAIT_POLICY=PASSIVE and the
faster median counts (PyTorch's best case). Without PyTorch the twins are skipped with a note.

The timed steps run in lockstep (FUSION_BENCH_LOCKSTEP=1): Fusion and its twins start and warm up
one after another, then the driver has them take turns, one step each (Fusion, PyTorch, PyTorch
passive, Fusion, …), so every step of Fusion has a PyTorch step beside it under the same load. A
shared machine's speed drifts over seconds, which whole runs one after the other see as noise
of ±30%; "paired" is the median of the per-step ratios, the figure that drift leaves alone.
Figures are medians over every step of every round.

On a CPU with AVX512-BF16 the training steps and the sample also run in bf16 (rows "…/bf16"):
Fusion with --precision=bf16 (matmul_precision bf16) beside PyTorch under CPU autocast to
bfloat16, and, in the last column, beside PyTorch's fp32 row.

    python3 bench/run.py [--rounds 3] [--only decoder,transfusion] [--precisions fp32,bf16]
                         [--bench .build/release/fusion-bench]
"""
import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# name in fusion-bench, twin script, BENCH names it reports, timed repeats, also run in bf16
BENCHES = [
    ("decoder", "torch_decoder.py", ["decoder-step"], 8, True),
    ("transfusion", "torch_transfusion.py", ["transfusion-step"], 10, True),
    ("chameleon", "torch_chameleon.py", ["chameleon-step"], 6, True),
    ("sample", "torch_sample.py", ["sample-t2i"], 3, True),
    ("vae", "torch_vae.py", ["vae-encode", "vae-decode"], 5, False),
]


def row_name(name, precision):
    return name if precision == "fp32" else f"{name}/{precision}"


def bench_lines(out):
    return [json.loads(line[6:]) for line in out.splitlines() if line.startswith("BENCH ")]


def run(cmd, env=None, timeout=None):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return []
    if p.returncode != 0:
        sys.stderr.write(f"run.py: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}\n")
        return []
    return bench_lines(p.stdout)


class Lockstep:
    """A benchmark process whose timed steps the driver triggers (see fusion-bench's `time`)."""

    def __init__(self, label, cmd, env):
        self.label, self.cmd = label, cmd
        self.lines = queue.Queue()
        self.output = []
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                  bufsize=1, env=dict(env, FUSION_BENCH_LOCKSTEP="1"))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.alive = True

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _until(self, prefix, timeout):
        """Output lines up to one starting with `prefix` (returned), or None at exit or timeout;
        a None prefix reads to the end."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                line = None
            if line is None:
                self.alive = False
                return None
            if prefix is not None and line.startswith(prefix):
                return line
            self.output.append(line)

    def _send(self, word):
        try:
            self.p.stdin.write(word + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            self.alive = False

    def ready(self, timeout=1800):
        return self.alive and self._until("READY", timeout) is not None

    def step(self, timeout=1800):
        self._send("step")
        line = self.alive and self._until("STEP ", timeout)
        return float(line.split()[1]) if line else None

    def next_section(self):
        """Ends the timed section; True when the process starts another (and is ready for it)."""
        self._send("done")
        return self.ready()

    def stop(self):
        self.alive = False
        self.p.kill()

    def finish(self):
        """Everything the process printed, once it has exited (an error report on failure)."""
        if self.alive:
            self._send("done")
        try:
            self.p.stdin.close()
        except OSError:
            pass
        rc = self.p.wait()
        self.reader.join()  # every line the process printed is queued
        self._until(None, 0)
        if rc not in (0, -9):
            self.err.seek(0)
            sys.stderr.write(f"run.py: {' '.join(self.cmd)} failed ({rc}):\n{self.err.read()[-2000:]}\n")
        return "\n".join(self.output)


def run_lockstep(ours, twins, steps, gap=0.05):
    """Steps Fusion and its twins in turn, section by section (a benchmark may time several things,
    as the VAE's encode and decode); returns per section each process's step times in ms. A twin
    whose first step takes over twice another's is stopped: that is its spinning policy under load.
    `gap` lets spinning OpenMP threads settle before the next process steps."""
    sections = []
    procs = [ours] + twins
    while True:
        times = {p.label: [] for p in procs}
        for i in range(steps):
            for p in procs:
                ms = p.step() if p.alive else None
                if ms is not None:
                    times[p.label].append(ms)
                time.sleep(gap)
            if i == 0 and len(twins) > 1:
                first = [(times[t.label] or [float("inf")])[0] for t in twins]
                for t, ms in zip(twins, first):
                    if ms > 2 * min(first):
                        t.stop()
        sections.append(times)
        if not ours.alive or not all([p.next_section() for p in procs if p.alive]):
            return sections


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", default="")
    ap.add_argument("--bench", default=".build/release/fusion-bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,bf16", help="bf16 rows only where the CPU has AVX512-BF16")
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    # Checked in a child: importing torch here would grow this process, and a child's peak RSS
    # (getrusage's ru_maxrss) starts from its parent's size at fork.
    have_torch = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    if not have_torch:
        print("PyTorch twins: skipped (PyTorch not installed; pip install torch to compare)")
    env = dict(os.environ, FUSION_THREADS=str(a.threads))
    tmp = tempfile.mkdtemp(prefix="fusion-bench-")
    print(f"load average before: {load()}")

    fusion, torch_, pairs = {}, {}, {}
    yards, ours, ours_bf16 = [], [], []
    precisions = [p for p in a.precisions.split(",") if p]
    for r in range(a.rounds):
        # The yardstick is measured every round, under the load the round's benchmarks see.
        gemm = run([a.bench, "gemm"], env)
        if gemm:
            yards.append(max(v for k, v in gemm[0].items() if k.startswith("openblas2_")))
            ours.append(max(v for k, v in gemm[0].items() if k.startswith("fusion_") and "bf16" not in k))
            bf16 = [v for k, v in gemm[0].items() if k.startswith("fusion_bf16_")]
            if bf16:
                ours_bf16.append(max(bf16))
            elif "bf16" in precisions:
                print("bf16 rows: skipped (this CPU has no AVX512-BF16)")
                precisions.remove("bf16")
            print(f"round {r + 1}: sgemm n=256/512/1024 peak: OpenBLAS 2-thread {yards[-1]:.1f} GFLOP/s, "
                  f"Fusion's split GEMM {ours[-1]:.1f} GFLOP/s" + (f", bf16 {ours_bf16[-1]:.1f} GFLOP/s" if bf16 else ""))
        for (name, twin, reports, steps, has_bf16), precision in [(b, p) for b in BENCHES for p in precisions]:
            if (only and name not in only) or (precision != "fp32" and not has_bf16):
                continue
            dump = os.path.join(tmp, name + ".json")
            bench_proc = Lockstep("fusion", [a.bench, name, f"--steps={steps}", f"--dump={dump}", f"--precision={precision}"], env)
            twins = []
            if not bench_proc.ready():
                bench_proc.finish()
                continue
            if have_torch:
                cmd = [sys.executable, os.path.join(HERE, twin), "--threads", str(a.threads), "--steps", str(steps),
                       "--precision", precision] + ([] if name == "decoder" else ["--batch", dump])
                for policy in ("PASSIVE", None):
                    e = dict(os.environ) if policy is None else dict(os.environ, OMP_WAIT_POLICY=policy)
                    twins.append(Lockstep(policy or "default", cmd, e))
            sections = run_lockstep(bench_proc, [t for t in twins if t.ready()], steps)
            for row in bench_lines(bench_proc.finish()):
                fusion.setdefault(row_name(row["name"], precision), []).append(row)
            rows = {t.label: {r["name"]: r for r in bench_lines(t.finish())} for t in twins}
            # Per benchmark the faster policy's row counts, and its steps pair with Fusion's.
            for report, times in zip(reports, sections):
                ts = [(statistics.median(times[t.label]), t.label) for t in twins if times.get(t.label)]
                label = min(ts)[1] if ts else None
                if label is None or report not in rows[label]:
                    continue
                row = dict(rows[label][report], omp=label)
                torch_.setdefault(row_name(report, precision), []).append(row)
                pairs.setdefault(row_name(report, precision), []).extend(
                    f / t for f, t in zip(times["fusion"], times[label]))
        print(f"round {r + 1}/{a.rounds} done, load average {load()}")

    yard = statistics.median(yards) if yards else 0
    if yards:
        print(f"sgemm peak, median over rounds: OpenBLAS 2-thread {yard:.1f} GFLOP/s, Fusion {statistics.median(ours):.1f} GFLOP/s"
              + (f", Fusion bf16 {statistics.median(ours_bf16):.1f} GFLOP/s" if ours_bf16 else ""))

    def med(rows, key):
        vals = [x[key] for x in rows if key in x]
        return statistics.median(vals) if vals else None

    print(f"\n{'benchmark':<22}{'Fusion ms':>10}{'PyTorch ms':>11}{'ratio':>7}{'paired':>8}{'GFLOP/s':>9}{'% sgemm2':>9}"
          f"{'alloc MiB':>10}{'RSS MiB F/T':>13}{'step RSS F/T':>14}{'vs fp32 twin':>14}")
    for name in [row_name(n, p) for p in ("fp32", "bf16") for b in BENCHES for n in b[2]]:
        if name not in fusion:
            continue
        f, t = fusion[name], torch_.get(name, [])
        fm, tm = med(f, "ms"), med(t, "ms")
        g = med(f, "gflops")
        ratio = f"{fm / tm:.2f}" if tm else "-"
        # The median of the step-by-step Fusion/PyTorch ratios: robust to the load drifting.
        paired = f"{statistics.median(pairs[name]):.2f}" if pairs.get(name) else "-"
        pct = f"{100 * g / yard:.0f}%" if g and yard else "-"
        rss = f"{med(f, 'peak_rss_mib'):.0f}/" + (f"{med(t, 'peak_rss_mib'):.0f}" if t else "-")
        step = f"{med(f, 'step_rss_mib'):.0f}/" + (f"{med(t, 'step_rss_mib'):.0f}" if t else "-")
        # A bf16 row beside PyTorch's fp32 time for the same benchmark.
        t32 = torch_.get(name.split("/")[0], []) if "/" in name else []
        vs32 = f"{fm / med(t32, 'ms'):.2f}" if t32 else ""
        print(f"{name:<22}{fm:>10.1f}{(f'{tm:.1f}' if tm else '-'):>11}{ratio:>7}{paired:>8}{(f'{g:.1f}' if g else '-'):>9}{pct:>9}"
              f"{med(f, 'peak_alloc_mib'):>10.0f}{rss:>13}{step:>14}{vs32:>14}")
    if torch_:
        print("PyTorch rows: the faster of OMP_WAIT_POLICY default/PASSIVE per round ("
              + ", ".join(f"{n}: {'/'.join(x['omp'] for x in rows)}" for n, rows in torch_.items()) + ")")
    print(f"load average after: {load()}  (2 cores, shared: figures are medians over {a.rounds} rounds of steps in lockstep)")


if __name__ == "__main__":
    main()
