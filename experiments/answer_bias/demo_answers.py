"""What a demo run's models answer, per question type, against the truth.

For a ``spatialrl demo`` run directory and every evaluated model (``eval/<name>/``):

- each numeric question type: the number of scored held-out items, the mean true value, the
  mean of the model's greedy answers, their median relative error and how many distinct values
  it gave. A greedy mean far below the true mean is a systematic underestimate, which more SFT
  corrects quickly;
- each other type (``--choices``): the share of exact-match answers (the world scorer is
  kinder to boxes and free text) and the most common answers beside the
  most common true answers. A model whose answers pile onto one letter or one of yes/no has
  shifted its prior, not its perception.

docs/experiments/demo.md ("What the measurements say") cites both::

    .venv/bin/python experiments/answer_bias/demo_answers.py runs/demo
    .venv/bin/python experiments/answer_bias/demo_answers.py runs/demo --choices

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


def read_answers(path: Path) -> dict[str, str | None]:
    """``id -> extracted answer text`` of a predictions.jsonl (None when there is none)."""
    from spatialrl.answers import extract_answer

    return {(r := json.loads(line))["id"]: extract_answer(r["prediction"]) for line in path.read_text().splitlines()}


def as_number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def print_choices(truth: dict[str, tuple[str, str]], texts: dict[str, dict[str, str | None]], scored: dict) -> None:
    from collections import Counter

    models = sorted(texts)
    for qt in sorted({truth[i][0] for i in scored if i in truth} - set(NUMERIC_TYPES)):
        ids = [i for i in scored if i in truth and truth[i][0] == qt]
        true_counts = Counter(truth[i][1] for i in ids)
        print(f"{qt} (n={len(ids)}): truth {dict(true_counts.most_common(3))}")
        for name in models:
            got = Counter(texts[name].get(i) for i in ids)
            accuracy = 100 * sum(texts[name].get(i) == truth[i][1] for i in ids) / len(ids)
            print(f"    {name:10s} exact match {accuracy:5.1f} %  answers {dict(got.most_common(3))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a `spatialrl demo` output directory")
    parser.add_argument("--choices", action="store_true", help="answer counts of the non-numeric types instead")
    args = parser.parse_args(argv)
    from spatialrl.data.load import load_split

    if not (args.run / "eval").is_dir():
        parser.error(f"{args.run} has no eval/ directory: pass the --out of a finished `spatialrl demo` run")
    rows = load_split(str(args.run / "data"), "test").select_columns(["id", "question_type", "answer"])
    truth = {r["id"]: (r["question_type"], r["answer"]) for r in rows}
    models = sorted(p.parent.name for p in (args.run / "eval").glob("*/predictions.jsonl"))
    texts = {name: read_answers(args.run / "eval" / name / "predictions.jsonl") for name in models}
    answers = {name: {i: as_number(t) for i, t in got.items()} for name, got in texts.items()}
    scored = next(iter(answers.values()))
    if args.choices:
        print_choices(truth, texts, scored)
        return 0
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
