"""JSON of large arrays: the standard library against orjson, as attncli reads and writes it.

Reading: a problem whose x is (n, d) of random floats, parsed by ``json.loads`` and by
attncli's reader (orjson first). Writing: a trace's steps rendered through nested lists
(``Trace.to_dict()``, then orjson) and through numpy arrays passed to orjson whole (what
``--format json`` does). Both sides run in this one process, in turn, best of ``--rounds``.

Usage: python bench/json_io.py [--n 2048] [--d 512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from attncli import attend
from attncli.config import AttentionConfig
from attncli.io import load_problem
from attncli.io.json_reader import read_json_value
from attncli.render.json import render_json


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    x = np.random.default_rng(0).normal(size=(args.n, args.d))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "problem.json"
        path.write_text(json.dumps({"x": x.tolist()}))
        size = path.stat().st_size
        read_std = best(lambda: json.loads(path.read_text()), args.rounds)
        read_fast = best(lambda: read_json_value(str(path)), args.rounds)
        problem = load_problem(str(path))
    trace = attend(problem, AttentionConfig(project=False), steps=["weights", "context"])
    lists = best(lambda: orjson.dumps(trace.to_dict()), args.rounds)
    arrays = best(lambda: render_json(trace, None), args.rounds)
    cells = args.n * args.n + args.n * args.d
    print(f"JSON of large arrays, best of {args.rounds}")
    print(f"  read  x ({args.n}, {args.d}), {size / 2**20:.0f} MiB: json.loads {read_std:.3f} s, "
          f"attncli (orjson) {read_fast:.3f} s, ratio {read_std / read_fast:.1f}x")
    print(f"  write weights + context, {cells:,} numbers: nested lists {lists:.3f} s, "
          f"numpy arrays {arrays:.3f} s, ratio {lists / arrays:.1f}x")


if __name__ == "__main__":
    main()
