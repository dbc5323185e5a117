"""Seeds aggregated, and each claim's verdict, by one rule.

Both papers report each ablation from a single run. Every trained cell here runs at several
seeds, and each comparison a paper makes (cell ``a`` beats ``b``, loses to it, or matches it,
on a metric) is judged on the **paired difference over seeds**: for every seed at which both
cells have the metric, ``d_s = metric(a, s) - metric(b, s)``; ``d`` is their mean and its 95 %
interval is Student's t, ``d +- t(0.975, n - 1) * sd / sqrt(n)``. Pairing by seed removes what
two cells of one seed share (the start, the data, the evaluation items); the interval is over
seeds, so it includes training noise, which a single run cannot show.

The rule (:func:`verdict`), stated once:

- ``expect: greater`` (the paper has ``a`` above ``b``): **replicates** when the interval lies
  above 0, **contradicts** when it lies below 0, **inconclusive** otherwise;
- ``expect: less``: the mirror image;
- ``expect: equal`` (the paper finds no difference): **replicates** when the interval lies
  inside ``[-m, m]``, **contradicts** when it lies wholly outside it, **inconclusive** otherwise,
  with the equivalence margin ``m`` of :data:`EQUIVALENCE_MARGINS` (1 point of accuracy);
- fewer than :data:`MIN_SEEDS_FOR_INTERVAL` seeds: no interval, **inconclusive**.

A claim **replicates** when every one of its comparisons does, **contradicts** when any of them
does, and is **inconclusive** otherwise. Each interval is a 95 % interval on its own; no
correction is made for a claim's several comparisons, so a claim of many comparisons
contradicts more easily by chance than one of a single comparison.

Pure functions: numbers in, dicts out (scipy for the t quantile).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

__all__ = ["EQUIVALENCE_MARGINS", "LEVEL", "MIN_SEEDS_FOR_INTERVAL", "VERDICTS", "aggregate", "claim_verdict",
           "mean_interval", "paired_interval", "verdict"]

LEVEL = 0.95
MIN_SEEDS_FOR_INTERVAL = 2
VERDICTS = ("replicates", "contradicts", "inconclusive")
#: metric -> margin of an ``equal`` comparison, in the metric's unit (points of percent here).
EQUIVALENCE_MARGINS = {"greedy": 1.0, "sampled": 1.0, "pair_consistency": 1.0, "consistency_gap": 1.0}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_interval(values: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """``{"mean", "ci95", "sd", "n"}`` of ``values`` (non-finite ones dropped); ``ci95`` is the
    Student t interval of the mean, None with fewer than two values; ``mean`` is None with none."""
    from scipy.stats import t

    xs = [float(v) for v in values if _finite(v)]
    n = len(xs)
    if n == 0:
        return {"mean": None, "ci95": None, "sd": None, "n": 0}
    mean = sum(xs) / n
    if n < MIN_SEEDS_FOR_INTERVAL:
        return {"mean": mean, "ci95": None, "sd": None, "n": n}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "ci95": [mean - half, mean + half], "sd": sd, "n": n}


def paired_interval(a: Mapping[str, float | None], b: Mapping[str, float | None],
                    level: float = LEVEL) -> dict[str, Any]:
    """:func:`mean_interval` of ``a[s] - b[s]`` over the seeds ``s`` where both are finite,
    with ``seeds`` (the seeds used)."""
    seeds = sorted((s for s in a if s in b and _finite(a[s]) and _finite(b[s])), key=lambda s: (len(s), s))
    result = mean_interval([a[s] - b[s] for s in seeds], level)  # type: ignore[operator]
    return {**result, "seeds": seeds}


def verdict(expect: str, interval: Sequence[float] | None, margin: float | None = None) -> str:
    """The verdict of one comparison (module docstring) from the paired difference's interval."""
    if expect not in ("greater", "less", "equal"):
        raise ValueError(f"expect must be greater, less or equal; got {expect!r}")
    if interval is None:
        return "inconclusive"
    low, high = interval
    if expect == "greater":
        return "replicates" if low > 0 else "contradicts" if high < 0 else "inconclusive"
    if expect == "less":
        return "replicates" if high < 0 else "contradicts" if low > 0 else "inconclusive"
    if margin is None:
        raise ValueError("an equal comparison needs an equivalence margin")
    if -margin <= low and high <= margin:
        return "replicates"
    return "contradicts" if low > margin or high < -margin else "inconclusive"


def claim_verdict(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its comparisons' (module docstring)."""
    if any(v == "contradicts" for v in verdicts):
        return "contradicts"
    return "replicates" if verdicts and all(v == "replicates" for v in verdicts) else "inconclusive"


def _per_type_means(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{"greedy" | "sampled": {question type: mean over the rows}}`` of cells' ``per_type`` scores."""
    out: dict[str, dict[str, float]] = {}
    for kind in ("greedy", "sampled"):
        values: dict[str, list[float]] = {}
        for row in rows:
            for qtype, score in ((row.get("per_type") or {}).get(kind) or {}).items():
                if _finite(score):
                    values.setdefault(qtype, []).append(float(score))
        out[kind] = {qtype: sum(v) / len(v) for qtype, v in sorted(values.items())}
    return out


def aggregate(claims: Sequence[Any], cells: Mapping[str, Any], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Every claim with its cells' per-seed metrics, their means and intervals, the per-type
    held-out scores averaged over seeds, and its comparisons' paired differences and verdicts.

    ``cells``: ``"claim/cell" -> {"run", "seeds": {seed: {"metrics": {...}, ...}}}`` (what
    :func:`spatialrl.reproduce.runner.reproduce` returns). A start cell's one evaluation stands
    for every seed.
    """
    from spatialrl.reproduce.cell_metrics import METRICS

    out = []
    for claim in claims:
        cell_rows: dict[str, Any] = {}
        by_seed: dict[str, dict[str, dict[str, float | None]]] = {}
        for name, spec in claim.cells.items():
            entry = cells.get(f"{claim.id}/{name}", {"run": None, "seeds": {}})
            runs = entry.get("seeds", {})
            values: dict[str, dict[str, float | None]] = {metric: {} for metric in METRICS}
            for seed in seeds:
                row = runs.get(str(seed))
                if row is None and spec.start and runs:
                    row = next(iter(runs.values()))  # the start's one evaluation stands for every seed
                if row is None:
                    continue
                for metric in METRICS:
                    values[metric][str(seed)] = row.get("metrics", {}).get(metric)
            by_seed[name] = values
            cell_rows[name] = {
                "label": spec.label, "start": spec.start, "run": entry.get("run"), "paper": spec.paper,
                "paper_metrics": {m: claim.paper_value(name, m) for m in claim.paper_metrics},
                "seeds_done": sorted(runs, key=lambda s: (len(s), s)) if not spec.start else
                [str(s) for s in seeds] if runs else [],
                # a start cell is one evaluation (n 1), however many seeds it is paired with
                "summary": {metric: mean_interval([v for v in values[metric].values() if v is not None]
                                                  [:1 if spec.start else None]) for metric in METRICS},
                "per_seed": {metric: values[metric] for metric in METRICS},
                "per_type": _per_type_means(list(runs.values())[:1] if spec.start else
                                            [runs[str(s)] for s in seeds if str(s) in runs]),
            }
        comparisons = []
        for comparison in claim.comparisons:
            diff = paired_interval(by_seed[comparison.a][comparison.metric], by_seed[comparison.b][comparison.metric])
            margin = EQUIVALENCE_MARGINS.get(comparison.metric) if comparison.expect == "equal" else None
            paper_a, paper_b = (claim.paper_value(comparison.a, comparison.metric),
                                claim.paper_value(comparison.b, comparison.metric))
            comparisons.append({
                "a": comparison.a, "b": comparison.b, "metric": comparison.metric, "expect": comparison.expect,
                "margin": margin,
                "paper_diff": None if paper_a is None or paper_b is None else paper_a - paper_b,
                "diff": diff, "verdict": verdict(comparison.expect, diff["ci95"], margin),
            })
        seeds_used = min((c["diff"]["n"] for c in comparisons), default=0)
        out.append({
            "id": claim.id, "paper": claim.paper, "table": claim.table, "title": claim.title,
            "compares": claim.compares, "recipe": claim.recipe, "note": claim.note,
            "cells": cell_rows, "comparisons": comparisons, "min_seeds": seeds_used,
            "verdict": claim_verdict([c["verdict"] for c in comparisons]),
        })
    return out
