"""Where a demo run's numeric scores come from: greedy answers against the truth, per model.

For each numeric question type of a ``spatialrl demo`` run directory, prints the number of
scored held-out items, the mean true value, and for every evaluated model (``eval/<name>/``)
the mean of its greedy answers, their median relative error, and how many distinct values it
gave. A model whose greedy mean sits far below the true mean underestimates systematically,
which more SFT corrects quickly (docs/demo.md, "What the measurements say").

    .venv/bin/python benchmarks/demo_numeric_bias.py runs/demo

Answers that do not parse as one number are counted, not averaged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

NUMERIC_TYPES = ("abs_distance", "camera_depth", "horizontal_distance", "object_height", "object_size",
                 "room_size", "vertical_distance")


def greedy_answers(path: Path) -> dict[str, float | None]:
    """``id -> number`` of a predictions.jsonl (None when the answer is not one number)."""
    from spatialrl.answers import extract_answer

    out: dict[str, float | None] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        text = extract_answer(record["prediction"])
        try:
            out[record["id"]] = float(text) if text is not None else None
        except ValueError:
            out[record["id"]] = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a `spatialrl demo` output directory")
    args = parser.parse_args(argv)
    from spatialrl.data.load import load_split

    if not (args.run / "eval").is_dir():
        parser.error(f"{args.run} has no eval/ directory: pass the --out of a finished `spatialrl demo` run")
    rows = load_split(str(args.run / "data"), "test").select_columns(["id", "question_type", "answer"])
    truth = {r["id"]: (r["question_type"], r["answer"]) for r in rows}
    models = sorted(p.parent.name for p in (args.run / "eval").glob("*/predictions.jsonl"))
    answers = {name: greedy_answers(args.run / "eval" / name / "predictions.jsonl") for name in models}
    scored = next(iter(answers.values()))
    for qt in NUMERIC_TYPES:
        ids = [i for i in scored if i in truth and truth[i][0] == qt]
        if not ids:
            continue
        y = np.array([float(truth[i][1]) for i in ids])
        line = f"{qt:20s} n={len(ids):3d} true mean {y.mean():7.2f}"
        for name in models:
            got = [answers[name].get(i) for i in ids]
            ok = np.array([g is not None for g in got])
            p = np.array([g if g is not None else np.nan for g in got], dtype=float)
            rel = np.abs(p[ok] - y[ok]) / np.maximum(np.abs(y[ok]), 1e-9)
            line += (f" | {name}: mean {np.nanmean(p):6.2f} median rel. err {np.median(rel):.3f}"
                     f" distinct {len(set(np.round(p[ok], 3)))}" + (f" unparsed {int((~ok).sum())}" if (~ok).any() else ""))
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
