"""Large problems (issue 4): attncli end to end against plain torch and plain numpy scripts.

Speed: n = 4096 tokens, d_model = 512, 8 heads, float32, ``--steps output``, NPZ in and out.
attncli --backend torch is timed against bench/reference_torch.py (torch's
scaled_dot_product_attention) and attncli --backend numpy against bench/reference_numpy.py
(blocked numpy); target: each ratio ≤ 1.3. Each command runs as a subprocess, once to warm the
caches and check its output, then in interleaved rounds (every command once per round, so all
see the same machine load); the ratio is of the medians. GFLOP/s count the matmuls (see
make_problems.flops) over the end-to-end time, beside a 2048×2048 float32 matmul's GFLOP/s
measured in this same run.

Memory: n = 16384, d = 64, one head, float64, ``--steps context``; peak RSS of each command,
target < 1 GiB for attncli on both backends (the references are shown for comparison). Peak
RSS is the kernel's high-water mark for each command alone, through bench/peak_rss.py. The
"attncli … +" rows add --alibi --softcap 30 --causal (issue 12: score modifications stay
row-local, so memory stays n·d); they are compared with each other.

Modern (issue 12): the speed case with 2 key/value heads for the 8 query heads, RoPE and a
causal mask (--kv-heads 2 --rope --causal, the same words for attncli and both references:
SDPA with enable_gqa, blocked numpy with shared key/value heads); target ≤ 1.3 too. Skipped
while attncli has no --kv-heads / --rope.

Exit status 0 (this reports, it does not judge) unless a command fails or outputs disagree.
Usage: python bench/large.py [--rounds 5] [--quick] [--workdir DIR] [--skip speed|memory|modern]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from make_problems import flops, make_large, make_memory

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 1.3
MEMORY_TARGET_MIB = 1024
# agreement: max |attncli − reference| ≤ RTOL × max |reference|
RTOL = {"float32": 1e-4, "float64": 1e-9}

MATMUL = {
    "numpy": """
import time, numpy as np
a = np.random.default_rng(0).standard_normal((N, N), dtype=np.float32); b = a.copy()
best = float("inf")
for _ in range(6):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(2 * N**3 / best / 1e9, "numpy", np.__version__)
""",
    "torch": """
import time, torch
torch.manual_seed(0); a = torch.randn(N, N); b = a.clone()
best = float("inf")
for _ in range(6):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(2 * N**3 / best / 1e9, "torch", torch.__version__, torch.get_num_threads(), "threads")
""",
}


class CommandFailed(Exception):
    pass


@dataclass
class Command:
    """One subprocess to time: it writes ``key`` into the NPZ ``out``."""

    name: str
    argv: list[str]
    out: Path
    key: str

    def run(self, timeout: float, wrapper: list[str] | None = None) -> tuple[float, str]:
        """Run once; returns (wall seconds, stderr). Raises CommandFailed."""
        argv = (wrapper or []) + self.argv
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CommandFailed(f"{self.name}: no result after {timeout:.0f} s") from None
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()
                     and not line.startswith("peak_rss_kib")]
            last = lines[-1] if lines else "(nothing on stderr)"
            raise CommandFailed(f"{self.name}: exit status {done.returncode}: {last}")
        return seconds, done.stderr

    def result(self) -> np.ndarray:
        """The array it wrote. Raises CommandFailed when the file is not an NPZ holding key."""
        try:
            with np.load(self.out) as archive:
                return archive[self.key]
        except (OSError, ValueError, KeyError, EOFError, AttributeError,
                zipfile.BadZipFile) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CommandFailed(f"{self.name}: {self.out.name} is not an NPZ with key "
                                f"{self.key!r} (is NPZ output written yet?): {reason}") from None


def matmul_gflops(backend: str, size: int = 2048) -> tuple[float, str]:
    """GFLOP/s of a size×size float32 matmul, best of 6, in a fresh process."""
    code = f"N = {size}\n" + MATMUL[backend]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    value, *about = done.stdout.split()
    return float(value), " ".join(about)


def check(command: Command, reference: np.ndarray, dtype: str, failures: list[str]) -> bool:
    """Compare command's output with the reference's (float64 copy of a ``dtype`` result);
    print one line. False when it fails."""
    try:
        result = command.result()
    except CommandFailed as exc:
        print(f"  {command.name:16} {exc}")
        failures.append(str(exc))
        return False
    if result.shape != reference.shape:
        message = f"{command.name}: shape {result.shape}, the reference's is {reference.shape}"
        print(f"  {message}")
        failures.append(message)
        return False
    tolerance = RTOL[dtype] * float(np.abs(reference).max())
    diff = float(np.abs(result.astype(np.float64) - reference).max())
    verdict = "ok" if diff <= tolerance else "DISAGREE"
    print(f"  {command.name:16} max |diff| {diff:.2e}  (tolerance {tolerance:.1e}, "
          f"{result.dtype})  {verdict}")
    if verdict != "ok":
        failures.append(f"{command.name}: max |diff| {diff:.2e} > {tolerance:.1e}")
    return verdict == "ok"


def warm_and_check(commands: list[Command], reference: Command, timeout: float,
                   failures: list[str]) -> list[Command]:
    """Run each once (warming the file cache and .pyc files); returns the reference and the
    commands that work and agree with it. Raises CommandFailed when the reference fails."""
    reference.run(timeout)  # a failing reference ends the benchmark
    expected = reference.result()
    dtype, expected = expected.dtype.name, expected.astype(np.float64)
    print(f"  {reference.name:16} (reference, shape {expected.shape})")
    working = [reference]
    for command in commands:
        try:
            command.run(timeout)
        except CommandFailed as exc:
            print(f"  {command.name:16} FAILED {exc}")
            failures.append(str(exc))
            continue
        if check(command, expected, dtype, failures):
            working.append(command)
    return working


#: The modern case's options, the same words for attncli and both reference scripts:
#: grouped-query attention (8 query heads, 2 key/value heads), RoPE, causal.
MODERN = ["--kv-heads", "2", "--rope", "--causal"]
#: The memory case's score modifications (issue 12): they must keep memory n·d.
MEMORY_MODERN = ["--alibi", "--softcap", "30", "--causal"]


def speed(args, attncli: list[str], workdir: Path, backends: list[str],
          failures: list[str], modern: bool = False) -> None:
    n, d_model, heads = (1024, 512, 8) if args.quick else (4096, 512, 8)
    options = MODERN if modern else []
    kv_width = d_model // heads * 2 if modern else None
    problem = workdir / ("modern.npz" if modern else "large.npz")
    np.savez(problem, **make_large(n, d_model, "float32", kv_width=kv_width))
    total = flops(n, d_model, projected=True)
    if modern:  # W_k and W_v are 2·d_head wide: 2 of the 3 projections a quarter as large
        total -= 2 * 2 * n * d_model * (d_model - kv_width)
        print(f"\nmodern problem: n = {n}, d_model = {d_model}, {heads} query heads, 2 key/value "
              f"heads, RoPE, causal, float32, --steps output ({total / 1e9:.1f} GFLOP of "
              "matmuls, the causal half of the scores counted whole)")
    else:
        print(f"large problem: n = {n}, d_model = {d_model}, {heads} heads, float32, "
              f"--steps output ({total / 1e9:.1f} GFLOP of matmuls)")

    machine = {backend: matmul_gflops(backend) for backend in backends}
    for gflops, about in machine.values():
        print(f"  matmul 2048×2048 float32, {about}: {gflops:.1f} GFLOP/s (best of 6)")

    cases: dict[str, tuple[Command, Command]] = {}
    for backend in backends:
        reference = Command(f"reference {backend}",
                            [sys.executable, str(HERE / f"reference_{backend}.py"), str(problem),
                             str(workdir / f"ref_{backend}.npz"), "--heads", str(heads), *options]
                            + (["--device", args.device] if backend == "torch" else []),
                            workdir / f"ref_{backend}.npz", "output")
        ours = Command(f"attncli {backend}",
                       attncli + ["compute", str(problem), "--heads", str(heads), "--steps",
                                  "output", "--backend", backend, "--dtype", "float32",
                                  "--device", args.device if backend == "torch" else "cpu",
                                  *options, "-o", str(workdir / f"attncli_{backend}.npz")],
                       workdir / f"attncli_{backend}.npz", "output")
        cases[backend] = (reference, ours)

    print("check (warm-up run of each; max |attncli − reference| ≤ "
          f"{RTOL['float32']:g} × max |reference|):")
    timed: list[Command] = []
    for reference, ours in cases.values():
        timed += warm_and_check([ours], reference, args.timeout, failures)

    times: dict[str, list[float]] = {command.name: [] for command in timed}
    for _ in range(args.rounds):
        for command in timed:
            seconds, _ = command.run(args.timeout)
            times[command.name].append(seconds)
    median = {name: statistics.median(values) for name, values in times.items()}

    print(f"end to end, median of {args.rounds} interleaved rounds "
          f"(target: attncli ≤ {TARGET_RATIO}× the reference):")
    print(f"  {'backend':8} {'reference s':>11} {'attncli s':>10} {'ratio':>11} "
          f"{'ref GFLOP/s':>12} {'attncli GFLOP/s':>16} {'matmul GFLOP/s':>15}")
    for backend, (reference, ours) in cases.items():
        ref_s = median[reference.name]
        our_s = median.get(ours.name)
        if our_s is None:
            ratio, our_col, our_rate = "-", "-", "-"
        else:
            verdict = "ok" if our_s / ref_s <= TARGET_RATIO else "over"
            ratio = f"{our_s / ref_s:.2f}x {verdict}"
            our_col, our_rate = f"{our_s:.3f}", f"{total / our_s / 1e9:.1f}"
        print(f"  {backend:8} {ref_s:11.3f} {our_col:>10} {ratio:>11} "
              f"{total / ref_s / 1e9:12.1f} {our_rate:>16} {machine[backend][0]:15.1f}")


def memory(args, attncli: list[str], workdir: Path, backends: list[str],
           failures: list[str]) -> None:
    n, d = (4096, 64) if args.quick else (16384, 64)
    problem = workdir / "memory.npz"
    np.savez(problem, **make_memory(n, d, "float64"))
    print(f"\nmemory problem: n = {n}, d = {d}, one head, float64, --steps context "
          f"(the full scores would be {n * n * 8 / 2**20:.0f} MiB)")
    commands = []
    modern = not args.modern_skipped
    for backend in ("numpy", "torch"):
        if backend not in backends:
            continue
        commands.append(Command(f"attncli {backend}",
                                attncli + ["compute", str(problem), "--steps", "context",
                                           "--backend", backend,
                                           "-o", str(workdir / f"mem_attncli_{backend}.npz")],
                                workdir / f"mem_attncli_{backend}.npz", "context"))
        if modern:  # issue 12: score modifications stay row-local, memory n·d
            commands.append(Command(f"attncli {backend} +", attncli + [
                "compute", str(problem), "--steps", "context", "--backend", backend,
                *MEMORY_MODERN, "-o", str(workdir / f"mem_modern_{backend}.npz")],
                workdir / f"mem_modern_{backend}.npz", "context"))
    for backend in backends:
        commands.append(Command(f"reference {backend}",
                                [sys.executable, str(HERE / f"reference_{backend}.py"),
                                 str(problem), str(workdir / f"mem_ref_{backend}.npz"),
                                 "--steps", "context"],
                                workdir / f"mem_ref_{backend}.npz", "context"))
    wrapper = [sys.executable, str(HERE / "peak_rss.py")]
    reference = next(c for c in commands if c.name == "reference numpy")
    commands = [reference] + [c for c in commands if c is not reference]
    print(f"  {'command':18} {'peak RSS MiB':>12} {'target':>8} {'wall s':>7}  "
          f"max |diff| vs reference numpy (tolerance {RTOL['float64']:g} × max)")
    rows = []
    for command in commands:
        try:
            seconds, stderr = command.run(args.timeout, wrapper)
        except CommandFailed as exc:
            if command is reference:
                raise
            print(f"  {command.name:18} FAILED {exc}")
            failures.append(str(exc))
            continue
        kib = int(stderr.splitlines()[-1].split()[-1])
        rows.append((command, kib / 1024, seconds))
    expected = reference.result().astype(np.float64)
    tolerance = RTOL["float64"] * float(np.abs(expected).max())
    modern_numpy = next((c for c, _, _ in rows if c.name == "attncli numpy +"), None)
    for command, mib, seconds in rows:
        target = command.name.startswith("attncli")
        verdict = ("ok" if mib < MEMORY_TARGET_MIB else "over") if target else ""
        try:
            # the "+" rows (ALiBi, soft-capping) against each other: the references have neither
            against = (modern_numpy.result().astype(np.float64)
                       if command.name.endswith("+") and modern_numpy is not None else expected)
            diff = float(np.abs(command.result() - against).max())
            agreement = f"{diff:.1e}" + ("" if diff <= tolerance else "  DISAGREE")
            if diff > tolerance:
                failures.append(f"memory, {command.name}: max |diff| {diff:.2e}")
        except (CommandFailed, ValueError) as exc:
            agreement = str(exc)
            failures.append(agreement)
        limit = f"<{MEMORY_TARGET_MIB}" if target else ""
        print(f"  {command.name:18} {mib:12.0f} {limit:>5} {verdict:4} {seconds:7.2f}  "
              f"{agreement}")
    print("  peak RSS: ru_maxrss of each command alone (os.wait4 in bench/peak_rss.py, a bare "
          "Python wrapper: floor ≈ 9 MiB)")
    if modern:
        print(f"  attncli … +: with {' '.join(MEMORY_MODERN)} (issue 12), compared with "
              "attncli numpy + (the references have neither)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: n = 1024 (speed) and n = 4096 (memory)")
    parser.add_argument("--workdir", type=Path,
                        help="write the problems and outputs here and keep them (default: a "
                             "temporary directory)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per command")
    parser.add_argument("--skip", choices=["speed", "memory", "modern"], action="append",
                        default=[])
    parser.add_argument("--device", default="cpu",
                        help="the torch cases' device (cuda on a GPU machine); numpy stays on cpu")
    args = parser.parse_args()

    attncli = shutil.which("attncli")
    if attncli is None:
        sys.exit("large.py: attncli is not on PATH: pip install -e '.[torch]'")
    backends = ["torch", "numpy"] if importlib.util.find_spec("torch") else ["numpy"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
          f"Python {platform.python_version()}")
    if "torch" not in backends:
        print("torch is not installed: numpy cases only (pip install -e '.[torch]')")

    failures: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="attncli-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        help_text = subprocess.run([attncli, "compute", "--help"], capture_output=True,
                                   text=True, env={**os.environ, "COLUMNS": "200"}).stdout
        args.modern_skipped = "modern" in args.skip or not all(
            flag in help_text for flag in ("--kv-heads", "--rope", "--alibi", "--softcap"))
        try:
            if "speed" not in args.skip:
                speed(args, [attncli], workdir, backends, failures)
            if "memory" not in args.skip:
                memory(args, [attncli], workdir, backends, failures)
            if "modern" not in args.skip:
                if not args.modern_skipped:
                    speed(args, [attncli], workdir, backends, failures, modern=True)
                else:
                    print("\nmodern problem: skipped, this attncli has no --kv-heads / --rope")
        except CommandFailed as exc:
            sys.exit(f"large.py: {exc}")
    print(f"\n(the benchmark took {time.perf_counter() - start:.0f} s)")
    if failures:
        print(f"\n{len(failures)} problem(s):", *failures, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
