"""Start-up of a small problem: attncli against `python -c "import numpy, typer, rich"`.

Each round runs every command once, in turn, so both see the same machine load; the ratio
is of the medians. Usage: python bench/startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    attncli = shutil.which("attncli") or sys.exit("attncli is not on PATH: pip install .")
    commands = {
        "baseline": [sys.executable, "-c", "import numpy, typer, rich"],
        "attncli": [attncli, "compute", "--sample", "hello-shiny-sun", "--format", "json"],
    }
    # As `pip install .` does: byte-compile the package, so that neither side compiles source
    # at every run (an editable install under PYTHONDONTWRITEBYTECODE=1 otherwise would).
    import attncli

    compileall.compile_dir(Path(attncli.__file__).parent, quiet=1)
    for argv in commands.values():  # warm the file cache
        wall(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, argv in commands.items():
            times[name].append(wall(argv))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"start-up, median of {args.rounds} runs")
    for name, argv in commands.items():
        print(f"  {name:9} {median[name]:.3f} s   {' '.join(argv[-6:])}")
    print(f"  ratio     {median['attncli'] / median['baseline']:.2f}x  (target ≤ 1.5x)")


if __name__ == "__main__":
    main()
