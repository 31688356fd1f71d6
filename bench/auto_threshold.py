"""Where torch starts to pay for its import: the FLOP count for ``--backend auto``.

For a range of problem sizes (the multi-head family of bench/large.py: n tokens, d_model = 512,
8 heads, W_q/W_k/W_v/W_o, ``--steps output``, in float64, attncli's default dtype), times
``attncli compute`` end to end with ``--backend numpy`` and with ``--backend torch``, as
subprocesses, in interleaved rounds (median; one warm-up run of each first). About three
minutes on 2 cores, most of it at n = 8192. torch pays a fixed start-up (importing it takes one
to two seconds on a small machine) and must win it back on the arithmetic, so the question is the
FLOP count from which its total is the smaller. Two answers are printed:

- measured: the first size from which torch stays faster, with the crossover interpolated on
  log(FLOPs) between the two bracketing sizes;
- fitted: time ≈ start-up + FLOPs / rate for each backend (least squares over all sizes), and
  the FLOPs where the two lines cross (none when torch's rate is not the higher).

Usage: python bench/auto_threshold.py [--rounds 3] [--sizes 16,64,...] [--d-model 512 --heads 8]
       [--dtype float64|float32]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from make_problems import flops, make_large

BACKENDS = ("numpy", "torch")


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(nothing on stderr)"]
        sys.exit(f"auto_threshold.py: {' '.join(argv)}\n  exit status {done.returncode}: "
                 f"{lines[-1]}")
    return seconds


def measured_crossover(sizes: list[int], total: list[int],
                       median: dict[str, list[float]]) -> str:
    """The crossover from the measurements themselves, in words."""
    gap = [t - n for t, n in zip(median["torch"], median["numpy"], strict=True)]  # > 0: numpy
    last_numpy = max((i for i, g in enumerate(gap) if g >= 0), default=None)
    if last_numpy is None:
        return f"torch was faster at every size (below {total[0]:.2e} FLOPs)"
    if last_numpy == len(gap) - 1:
        return (f"numpy was faster up to the largest size (n = {sizes[-1]}, "
                f"{total[-1]:.2e} FLOPs): the threshold is above it, if torch ever wins here")
    i = last_numpy
    lo, hi = math.log(total[i]), math.log(total[i + 1])
    crossing = math.exp(lo + (hi - lo) * gap[i] / (gap[i] - gap[i + 1]))
    return (f"≈ {crossing:.2e} FLOPs: numpy faster at n = {sizes[i]} ({total[i]:.2e}), "
            f"torch faster from n = {sizes[i + 1]} ({total[i + 1]:.2e}) on")


def fitted_crossover(total: list[int], median: dict[str, list[float]]) -> list[str]:
    """time ≈ start-up + FLOPs / rate per backend, and where the lines cross, in words."""
    lines, fits = [], {}
    for backend in BACKENDS:
        slope, intercept = np.polyfit(np.array(total, dtype=float), median[backend], 1)
        fits[backend] = slope, intercept
        rate = f"{1 / slope / 1e9:.1f} GFLOP/s" if slope > 0 else "no rate (flat)"
        lines.append(f"{backend:6} start-up {intercept:.3f} s, {rate}")
    (slope_n, start_n), (slope_t, start_t) = fits["numpy"], fits["torch"]
    if slope_t >= slope_n:
        lines.append("the lines do not cross: torch's fitted rate is not the higher")
    else:
        lines.append(f"the lines cross at {(start_t - start_n) / (slope_n - slope_t):.2e} FLOPs")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="16,64,256,1024,2048,4096,8192",
                        help="token counts n, comma-separated")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="attncli's --dtype and the problem's (default: attncli's default)")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.sizes.split(","))
    attncli = shutil.which("attncli") or sys.exit("attncli is not on PATH: pip install -e "
                                                  "'.[torch]'")
    if importlib.util.find_spec("torch") is None:
        sys.exit("auto_threshold.py: torch is not installed: pip install -e '.[torch]'")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"problems: n tokens, d_model = {args.d_model}, {args.heads} heads, {args.dtype}, "
          f"--steps output, NPZ in and out; median of {args.rounds} interleaved rounds")

    total = [flops(n, args.d_model, projected=True) for n in sizes]
    median: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
    with tempfile.TemporaryDirectory(prefix="attncli-auto-") as tmp:
        print(f"  {'n':>5} {'FLOPs':>9} {'numpy s':>8} {'torch s':>8}  faster")
        for n, count in zip(sizes, total, strict=True):
            problem = Path(tmp) / f"n{n}.npz"
            np.savez(problem, **make_large(n, args.d_model, args.dtype))
            argv = {backend: [attncli, "compute", str(problem), "--heads", str(args.heads),
                              "--steps", "output", "--backend", backend, "--dtype", args.dtype,
                              "-o", str(Path(tmp) / f"out_{backend}.npz")]
                    for backend in BACKENDS}
            if n == sizes[0]:  # warm the file cache and the .pyc files, once
                for backend in BACKENDS:
                    wall(argv[backend])
            times: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
            for _ in range(args.rounds):
                for backend in BACKENDS:
                    times[backend].append(wall(argv[backend]))
            for backend in BACKENDS:
                median[backend].append(statistics.median(times[backend]))
            numpy_s, torch_s = median["numpy"][-1], median["torch"][-1]
            faster = "torch" if torch_s < numpy_s else "numpy"
            print(f"  {n:5} {count:9.2e} {numpy_s:8.3f} {torch_s:8.3f}  {faster}", flush=True)

    print(f"measured crossover: {measured_crossover(sizes, total, median)}")
    print("fitted, time ≈ start-up + FLOPs / rate:")
    for line in fitted_crossover(total, median):
        print(f"  {line}")


if __name__ == "__main__":
    main()
