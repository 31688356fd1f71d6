"""Golden outputs: every sample × every format and the usual options, written to a folder.

Not a test: a refactor's before-and-after check. Record the outputs before a change that must
not change behaviour, again after it, and compare the folders byte for byte:

    python -m tests.golden /tmp/golden-before
    … the change …
    python -m tests.golden /tmp/golden-after && diff -r /tmp/golden-before /tmp/golden-after

Each case is one command line run in this process (typer's CliRunner, COLUMNS=120); the file
holds its exit status, stdout and stderr. Binary outputs are recorded as their bytes (NPY,
PNG) or, for NPZ (whose zip entries carry the time they were written), as each array's name,
dtype, shape and SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

SAMPLES = ("hello-shiny-sun", "three-inputs", "your-journey-causal", "multihead-einsum",
           "translation-cross")
FORMATS = ("table", "json", "csv", "markdown", "torch")
#: Options tried on every sample, in JSON (every step, full precision) and as a table.
OPTIONS = (
    (), ("--causal",), ("--window", "1"), ("--causal", "--window", "1"),
    ("--causal", "--causal-align", "bottom-right"), ("--normalize", "hard"),
    ("--normalize", "topk", "--top-k", "2"), ("--dropout", "0.5", "--seed", "7"),
    ("--temperature", "2"), ("--no-scale",), ("--scale", "0.3"), ("--variant", "simple"),
    ("--heads", "2"), ("--heads", "3"), ("--score", "general"), ("--query", "1"),
    ("--query", "1", "--causal"), ("--dtype", "float32"), ("--backend", "torch"),
    ("--weight-layout", "out_in"), ("--no-project",), ("--variant", "causal"),
    ("--variant", "local"), ("--steps", "weights,context"),
)


def cases(root: Path, workdir: Path):
    """(name, argv) of every case; files an argv writes go under ``workdir``."""
    answers = sorted(Path("samples", "answers").glob("*.json"))  # relative: the same anywhere
    for sample in SAMPLES:
        base = ["compute", "--sample", sample]
        for fmt in FORMATS:
            yield f"{sample}.{fmt}", [*base, "--format", fmt]
        for i, options in enumerate(OPTIONS):
            yield f"{sample}.opt{i:02d}.json", [*base, "--format", "json", *options]
            yield f"{sample}.opt{i:02d}.table", [*base, *options]
            yield f"{sample}.opt{i:02d}.markdown", [*base, "--format", "markdown", *options]
        yield f"{sample}.heatmap", [*base, "--heatmap", "--steps", "weights"]
        yield f"{sample}.heatmap-causal", [*base, "--heatmap", "--causal", "--steps",
                                           "scaled_scores,masked_scores,weights"]
        yield f"{sample}.npz", [*base, "-o", str(workdir / f"{sample}.npz")]
        yield f"{sample}.npy", [*base, "--steps", "weights", "-o", str(workdir / f"{sample}.npy")]
        yield f"{sample}.png", [*base, "--causal", "--plot", str(workdir / f"{sample}.png")]
        for fmt in ("text", "markdown", "latex"):
            yield f"{sample}.explain.{fmt}", ["explain", "--sample", sample, "--query", "1",
                                              "--format", fmt]
        yield f"{sample}.explain-causal", ["explain", "--sample", sample, "--query", "1",
                                           "--causal", "--key", "0"]
        for answer in answers:
            if answer.name.startswith(sample + "."):
                for fmt in ("table", "json", "csv"):
                    yield (f"{sample}.check.{answer.stem}.{fmt}",
                           ["check", "--sample", sample, str(answer), "--format", fmt])
    yield "variants", ["variants"]
    yield "variants.json", ["variants", "--json"]
    yield "samples", ["samples"]


def record(folder: Path) -> int:
    from typer.testing import CliRunner

    from attncli.cli import app

    root = Path(__file__).resolve().parents[1]
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    runner = CliRunner()
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name, argv in cases(root, workdir):
            result = runner.invoke(app, argv, env={"COLUMNS": "120"})
            text = (f"$ attncli {' '.join(a.replace(str(workdir), 'WORK') for a in argv)}\n"
                    f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n"
                    f"--- stderr\n{result.stderr.replace(str(workdir), 'WORK')}")
            for written in sorted(workdir.iterdir()):
                text += f"\n--- {written.name}\n{_digest(written)}"
                written.unlink()
            (folder / name).write_text(text, encoding="utf-8")
            count += 1
    return count


def _digest(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".npz":
        with np.load(io.BytesIO(data)) as npz:
            return "".join(f"{k} {npz[k].dtype} {npz[k].shape} "
                           f"{hashlib.sha256(npz[k].tobytes()).hexdigest()}\n" for k in npz)
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}\n"


if __name__ == "__main__":
    os.environ["COLUMNS"] = "120"
    n = record(Path(sys.argv[1]).resolve())
    print(f"{n} cases recorded in {sys.argv[1]}")
