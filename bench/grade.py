"""Grading a class of 500: `attncli grade` as a teacher runs it (a fresh process), and
`grade_class` in this process, on one exercise per student (`attncli exercise --roster`).

The submissions are worked here by numpy from each student's own problem.json (never the
key): right (full precision, 4 decimals, rounded by hand to 2 decimals at each step), one of
eight named mistakes, a step left out, a malformed file, or none; in the four forms students
hand in (the JSON template, a folder of CSVs, Markdown, text), in turn. Before timing, the
gradebook is checked: every right one has full marks, every mistaken one its mistake named.
Each round runs every measured command once, in turn; the figures are medians.

Usage: python bench/grade.py [--students 500] [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEPS = ("queries", "keys", "values", "scores", "scaled_scores", "masked_scores", "weights",
         "context", "output")
MISTAKES = ("no_scaling", "scaled_by_d_k", "softmax_wrong_axis", "transposed_weights",
            "keys_as_values", "queries_keys_swapped", "causal_forgotten", "mask_zero_fill",
            "W_o_forgotten")
FORMS = ("json", "csv", "md", "txt")
TARGET_S = 30.0


def worked(problem: dict, mistake: str | None = None, hand: int | None = None) -> dict:
    """softmax(Q Kᵀ / √d_k, causal) V W_o by numpy, with ``mistake`` made, each step rounded
    to ``hand`` decimals before the next uses it."""
    def keep(a):
        return a if hand is None else np.round(a, hand)

    x = np.array(problem["x"], dtype=float)
    W_q, W_k, W_v, W_o = (np.array(problem[n], dtype=float) for n in ("W_q", "W_k", "W_v",
                                                                      "W_o"))
    if mistake == "transposed_weights":
        W_q, W_k, W_v = W_q.T, W_k.T, W_v.T
    queries, keys, values = keep(x @ W_q), keep(x @ W_k), keep(x @ W_v)
    if mistake == "keys_as_values":
        values = keys
    scores = keep(keys @ queries.T if mistake == "queries_keys_swapped" else queries @ keys.T)
    d_k = queries.shape[1]
    scaled = keep(scores / {"no_scaling": 1.0, "scaled_by_d_k": d_k}.get(mistake, d_k ** 0.5))
    allowed = np.tril(np.ones(scores.shape, bool))
    masked = (scaled if mistake == "causal_forgotten" else
              np.where(allowed, scaled, 0.0 if mistake == "mask_zero_fill" else -np.inf))
    axis = 0 if mistake == "softmax_wrong_axis" else -1
    e = np.exp(masked - masked.max(axis=axis, keepdims=True))
    weights = keep(e / e.sum(axis=axis, keepdims=True))
    context = keep(weights @ values)
    output = context if mistake == "W_o_forgotten" else keep(context @ W_o)
    return dict(zip(STEPS, (queries, keys, values, scores, scaled, masked, weights, context,
                            output), strict=True))


def _cell(v: float, decimals: int | None, form: str) -> str:
    if np.isneginf(v):
        return "null" if form == "json" else "-inf"
    return repr(float(v)) if decimals is None else f"{v:.{decimals}f}"


def write(folder: Path, sid: str, form: str, answers: dict, decimals: int | None) -> None:
    """One student's answers in ``form``: sid.json, sid/STEP.csv, sid.md or sid.txt."""
    rows = {s: [[_cell(v, decimals, form) for v in row] for row in a]
            for s, a in answers.items()}
    if form == "json":
        (folder / f"{sid}.json").write_text(json.dumps(
            {s: [[json.loads(c) if c != "null" else None for c in row] for row in r]
             for s, r in rows.items()}))
    elif form == "csv":
        (folder / sid).mkdir()
        for s, r in rows.items():
            (folder / sid / f"{s}.csv").write_text("".join(",".join(row) + "\n" for row in r))
    elif form == "md":
        (folder / f"{sid}.md").write_text("".join(
            f"## {s}\n\n| " + " | ".join(map(str, range(len(r[0])))) + " |\n|"
            + "---|" * len(r[0]) + "\n" + "".join(f"| {' | '.join(row)} |\n" for row in r)
            + "\n" for s, r in rows.items()))
    else:
        (folder / f"{sid}.txt").write_text("".join(
            f"{s}:\n" + "".join(" ".join(row) + "\n" for row in r) + "\n"
            for s, r in rows.items()))


def make_class(root: Path, students: int, attncli: str) -> tuple[dict[str, str], float]:
    """The roster, the exercises (timed) and the submissions; returns each id's kind."""
    (root / "roster.csv").write_text("id,name\n" + "".join(
        f"s{i:04d},Student {i}\n" for i in range(students)))
    start = time.perf_counter()
    subprocess.run([attncli, "exercise", "--variant", "causal", "--tokens", "3", "--d-model",
                    "4", "--steps", ",".join(STEPS), "--assignment", "bench", "--roster",
                    "roster.csv", "-o", "hw"], cwd=root, check=True, stderr=subprocess.DEVNULL)
    made = time.perf_counter() - start
    subs = root / "subs"
    shutil.rmtree(subs, ignore_errors=True)
    subs.mkdir()
    kinds = {}
    plan = ["right"] * 3 + [f"mistake:{m}" for m in MISTAKES] + ["missing", "malformed",
                                                                  "none"]
    for i in range(students):
        sid, kind = f"s{i:04d}", plan[i % len(plan)]
        form = FORMS[(i // len(plan)) % len(FORMS)]
        kinds[sid] = kind
        if kind == "none":
            continue
        problem = json.loads((root / "hw" / sid / "problem.json").read_text())
        mistake = kind.split(":")[1] if kind.startswith("mistake") else None
        hand = 2 if kind == "right" and i % 3 == 2 else None
        decimals = (None, 4, 2)[i % 3] if kind == "right" else 4
        answers = worked(problem, mistake, hand)
        if kind == "missing":
            del answers["weights"]
        if kind == "malformed":
            answers["weights"] = answers["weights"][:, :2]  # a column short
        write(subs, sid, form, answers, decimals)
    (subs / "nobody.json").write_text((subs / "s0000.json").read_text())
    return kinds, made


def check(gradebook: str, kinds: dict[str, str]) -> list[str]:
    """Problems with the gradebook, if any (the right have full marks, the mistaken their
    mistake named, first or as one that gives the same numbers here, unless it changed
    nothing in that variant; the rest their note)."""
    from attncli.check import MISTAKES as KNOWN

    says = {m.name: m.says for m in KNOWN}
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(gradebook))}
    problems = []
    for sid, kind in kinds.items():
        row = rows.get(sid)
        if row is None:
            problems.append(f"{sid}: no row")
        elif kind == "right" and row["points"] != row["max"]:
            problems.append(f"{sid}: right, but {row['points']}/{row['max']}")
        elif kind.startswith("mistake") and says[kind.split(":")[1]] not in row[
                "diagnosis"] and row["points"] != row["max"]:  # named, or "the same numbers as"
            problems.append(f"{sid}: {kind}, diagnosed {row['diagnosis']!r}")
        elif kind in ("missing", "malformed", "none") and not row["note"]:
            problems.append(f"{sid}: {kind}, no note")
    if "nobody" not in rows:
        problems.append("nobody.json: no row")
    return problems


def wall(argv: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the class here (default: a "
                        "temporary folder)")
    args = parser.parse_args()
    beside = Path(sys.executable).with_name("attncli")  # this Python's own, venv or not
    attncli = (str(beside) if beside.is_file() else shutil.which("attncli")) or sys.exit(
        "attncli is not installed beside this Python nor on PATH: pip install .")
    from attncli.teach.classroom import grade_class

    with tempfile.TemporaryDirectory() as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        kinds, made = make_class(root, args.students, attncli)
        counts = {k: sum(1 for v in kinds.values() if v.split(":")[0] == k)
                  for k in ("right", "mistake", "missing", "malformed", "none")}
        print(f"a class of {args.students}: `attncli exercise --variant causal --tokens 3 "
              f"--d-model 4 --steps queries…output --roster` in {made:.2f} s; submissions: "
              + ", ".join(f"{n} {k}" for k, n in counts.items()) + ", 1 named after nobody; "
              f"forms {', '.join(FORMS)} in turn; {os.cpu_count()} CPUs")
        grade = [attncli, "grade", "--exercises", "hw", "--submissions", "subs", "--points",
                 "weights=2,context=3", "-f", "csv"]
        _, gradebook = wall(grade, root)  # warm the file cache; check the gradebook
        problems = check(gradebook, kinds)
        print("check: " + ("every right one full marks, every mistake named, every other "
                           "row its note" if not problems else
                           f"{len(problems)} problems: " + "; ".join(problems[:5])))
        commands = {"attncli grade -f csv": grade,
                    "attncli grade -f csv --feedback": [*grade, "--feedback", "fb"]}
        times: dict[str, list[float]] = {name: [] for name in [*commands, "grade_class()"]}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(wall(argv, root)[0])
            start = time.perf_counter()
            grade_class(root / "hw", root / "subs", points={"weights": 2.0, "context": 3.0})
            times["grade_class()"].append(time.perf_counter() - start)
        print(f"grading {args.students} submissions, median of {args.rounds} "
              f"(target ≤ {TARGET_S:.0f} s)")
        print(f"  {'measure':34} {'seconds':>8} {'ms each':>8}")
        for name, measured in times.items():
            median = statistics.median(measured)
            verdict = "ok" if median <= TARGET_S else "OVER"
            print(f"  {name:34} {median:8.2f} {1000 * median / args.students:8.1f}  {verdict}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
