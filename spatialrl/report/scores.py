"""The report's sections about scores: summary, accuracy per question type, seeds, checkpoint sweep, inputs.

Each ``*_section(inputs)`` turns validated ``Inputs`` (``gather.py``) into a ``Section`` of
blocks (``document.py``); a part whose input is missing becomes a note that says which file
was looked for.
"""

from __future__ import annotations

import math
from typing import Any

from spatialrl.report import plots as rp
from spatialrl.report.document import (Bullets, Card, Cards, Cell, Fig, Note, Para, Section, Table, code_list,
                                       diff, fmt, fmt_diff, sign_cls)
from spatialrl.report.gather import MODELS, SWEEP_FILES, Inputs, Metrics, Scores

#: RL more than this many points below its start on a question type is flagged.
REGRESSION_POINTS = 5.0


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m} min {s} s" if h else f"{m} min {s} s" if m else f"{s} s"


def _mean_scores(seeds: list[Metrics]) -> dict[str, Scores]:
    """Mean over seeds of each model's overall and per-type scores (finite values only)."""
    out: dict[str, Scores] = {}
    for key in MODELS:
        runs = [s.models[key] for s in seeds if key in s.models]
        if not runs:
            continue

        def mean(values):
            vals = [v for v in values if v is not None and math.isfinite(v)]
            return sum(vals) / len(vals) if vals else None

        types: list[str] = []
        for r in runs:
            types += [t for t in r.per_type if t not in types]
        out[key] = Scores(mean(r.overall for r in runs), {t: mean(r.per_type.get(t) for r in runs) for t in types})
    return out


def _headline(metrics: Metrics) -> tuple[dict[str, Scores], str]:
    if metrics.models:
        label = f"seed {metrics.seed}" if metrics.seed is not None else "this run"
        return metrics.models, label
    return _mean_scores(metrics.seeds), f"mean over {len(metrics.seeds)} seeds"


def summary_section(inputs: Inputs) -> Section:
    blocks: list[Any] = []
    if inputs.metrics is None:
        blocks.append(Note("No `metrics.json`: no scores to summarise. Training curves and the sweep follow "
                           "where their files exist."))
    else:
        scores, label = _headline(inputs.metrics)
        overall = {k: s.overall for k, s in scores.items()}
        cards = [Card(MODELS[k][0], f"{fmt(v)} %", MODELS[k][1], k, v) for k, v in overall.items()]
        gains = [("rl_minus_sft", "RL − start", diff(overall.get("rl"), overall.get("sft"))),
                 ("rl_minus_control", "RL − control", diff(overall.get("rl"), overall.get("control")))]
        for key, name, value in gains:
            if value is not None:
                cards.append(Card(name, f"{fmt_diff(value)} pts", "percentage points, overall", key, value,
                                  "pos" if value > 0 else "neg" if value < 0 else ""))
        blocks.append(Para(f"Overall score (percent) on the evaluation set, {label}."))
        blocks.append(Cards(cards))
        sentence = []
        if overall.get("rl") is not None:
            sentence.append(f"RL reaches {fmt(overall['rl'])} %")
            parts = [f"{fmt_diff(v)} points over {who} ({fmt(overall[k2])} %)"
                     for (_, _, v), k2, who in zip(gains, ("sft", "control"), ("its start", "the control"))
                     if v is not None]
            if parts:
                sentence[-1] += ": " + " and ".join(parts)
        if overall.get("baseline") is not None:
            sentence.append(f"the no-perception baseline scores {fmt(overall['baseline'])} %")
        if sentence:
            blocks.append(Para("; ".join(sentence) + "."))
        regress = _regressions(scores)
        if regress:
            blocks.append(Note(f"RL falls more than {REGRESSION_POINTS:g} points below its start on "
                               f"{len(regress)} question type(s): {', '.join(regress)} (see the per-type table)."))
        items = [f"**{MODELS[k][0]}**: {MODELS[k][1]}" for k in scores]
        extra = []
        if inputs.metrics.seed is not None:
            extra.append(f"seed {inputs.metrics.seed}")
        if inputs.metrics.seconds is not None and math.isfinite(inputs.metrics.seconds):
            extra.append(f"wall time {_duration(inputs.metrics.seconds)}")
        if inputs.metrics.seeds:
            extra.append(f"{len(inputs.metrics.seeds)} seeds (see Seeds)")
        if extra:
            items.append("**run**: " + ", ".join(extra))
        blocks.append(Bullets(items))
    if inputs.missing:
        blocks.append(Note("Missing inputs (their parts are skipped): " + "; ".join(
            f"{code_list(looked)} ({consequence})" for _, looked, consequence in inputs.missing) + "."))
    return Section("summary", "Summary", blocks)


def _regressions(scores: dict[str, Scores]) -> list[str]:
    if "rl" not in scores or "sft" not in scores:
        return []
    out = []
    for t, v in scores["rl"].per_type.items():
        d = diff(v, scores["sft"].per_type.get(t))
        if d is not None and d < -REGRESSION_POINTS:
            out.append(t)
    return out


def per_type_section(inputs: Inputs) -> Section:
    title = "Accuracy per question type"
    if inputs.metrics is None:
        return Section("per-type", title, [Note("Skipped: no `metrics.json`.")])
    scores, label = _headline(inputs.metrics)
    keys = [k for k in MODELS if k in scores]
    types: list[str] = []
    for k in keys:
        types += [t for t in scores[k].per_type if t not in types]
    blocks: list[Any] = []
    if not types:
        blocks.append(Note("`metrics.json` has no `per_type` scores; only the overall row is shown."))
    groups = ["overall"] + types
    table_scores = {k: {"overall": scores[k].overall, **scores[k].per_type} for k in keys}
    png = rp.plot_per_type(groups, table_scores)
    if png:
        blocks.append(Fig("per_type", png, "Grouped bars of accuracy per question type for each model",
                          f"Accuracy (%) per question type, {label}; the first group is the overall score. "
                          "Colours: start blue, control orange, RL green, baseline grey."))
    has_diff_start = "rl" in scores and "sft" in scores
    has_diff_control = "rl" in scores and "control" in scores
    headers = ["question type"] + [f"{MODELS[k][0]} (%)" for k in keys]
    if has_diff_start:
        headers.append("RL − start")
    if has_diff_control:
        headers.append("RL − control")
    rows, classes = [], []
    regress = set(_regressions(scores))
    for t in groups:
        row = []
        flagged = t in regress
        row.append(Cell(t + (" ▼" if flagged else "")))
        for k in keys:
            v = table_scores[k].get(t)
            row.append(Cell(fmt(v), "num", v))
        if has_diff_start:
            d = diff(table_scores["rl"].get(t), table_scores["sft"].get(t))
            row.append(Cell(fmt_diff(d), sign_cls(d), d))
        if has_diff_control:
            d = diff(table_scores["rl"].get(t), table_scores["control"].get(t))
            row.append(Cell(fmt_diff(d), sign_cls(d), d))
        rows.append(row)
        classes.append("total" if t == "overall" else "regress" if flagged else "")
    caption = "Percent correct; differences in percentage points."
    if has_diff_start:
        caption += f" ▼: RL more than {REGRESSION_POINTS:g} points below its start."
    blocks.append(Table(headers, rows, classes, caption))
    return Section("per-type", title, blocks)


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def held_out_section(inputs: Inputs) -> Section | None:
    """Greedy and sampled scores, the paired differences with their 95 % intervals, and pair
    consistency (a demo's ``sampled``, ``paired``, ``pair_consistency``); None without them."""
    metrics = inputs.metrics
    if metrics is None or not metrics.held_out:
        return None
    sampled = metrics.held_out.get("sampled", {})
    consistency = metrics.held_out.get("pair_consistency", {})
    rows = []
    for key, scores in metrics.models.items():
        block = sampled.get(key) or {}
        values = [scores.overall, _number_or_none(block.get("overall")), _number_or_none(block.get("greedy_same_items")),
                  _number_or_none(consistency.get(key))]
        rows.append([Cell(MODELS[key][0])] + [Cell(fmt(v), "num", v) for v in values])
    some = next((b for b in sampled.values() if isinstance(b, dict) and b.get("k")), {})
    blocks: list[Any] = [Table(
        ["model", "greedy (%)", "sampled (%)", "greedy, same items (%)", "pair consistency (%)"], rows, [],
        f"Greedy: the evaluation set. Sampled: the mean over k = {some.get('k', '?')} answers at temperature "
        f"{some.get('temperature', '?')} (the quantity GRPO optimises) on {some.get('items', '?')} of its items, whole "
        "mirror pairs; the baseline does not sample. Pair consistency: mirror pairs with both views right (greedy).")]
    paired = metrics.held_out.get("paired", {})
    prow = []
    for key, name in (("rl_minus_sft", "RL − start"), ("rl_minus_control", "RL − control")):
        for mode in ("greedy", "sampled"):
            block = (paired.get(key) or {}).get(mode)
            if not isinstance(block, dict):
                continue
            d = _number_or_none(block.get("diff"))
            lo, hi = (block.get("ci95") or [None, None])[:2]
            prow.append([Cell(name), Cell(mode), Cell(fmt_diff(d), sign_cls(d), d),
                         Cell(f"[{fmt_diff(_number_or_none(lo))}, {fmt_diff(_number_or_none(hi))}]"),
                         Cell(str(block.get("clusters", "")), "num")])
    if prow:
        blocks.append(Table(["difference", "answers", "points", "95 % interval", "clusters"], prow, [],
                            "Paired differences of the overall score, item by item on the same items, with mirror pairs "
                            "as clusters; an interval that holds 0 is no evidence of a difference."))
    return Section("held-out", "Greedy and sampled, paired", blocks)


def seeds_section(inputs: Inputs) -> Section | None:
    if inputs.metrics is None or not inputs.metrics.seeds:
        return None
    seeds = inputs.metrics.seeds
    keys = [k for k in MODELS if any(k in s.models for s in seeds)]
    headers = ["seed"] + [f"{MODELS[k][0]} (%)" for k in keys]
    with_start = "rl" in keys and "sft" in keys
    with_control = "rl" in keys and "control" in keys
    headers += ["RL − start"] * with_start + ["RL − control"] * with_control
    columns: dict[str, list[float]] = {}
    rows, classes = [], []

    def add(key: str, value: float | None) -> Cell:
        if value is not None and math.isfinite(value):
            columns.setdefault(key, []).append(value)
        return Cell(fmt(value) if key in MODELS else fmt_diff(value),
                    "num" if key in MODELS else sign_cls(value), value)

    overall_by_seed = []
    for i, s in enumerate(seeds):
        ov = {k: s.models[k].overall if k in s.models else None for k in keys}
        overall_by_seed.append({k: v for k, v in ov.items() if v is not None})
        row = [Cell(str(s.seed) if s.seed is not None else f"#{i}")] + [add(k, ov[k]) for k in keys]
        if with_start:
            row.append(add("d_start", diff(ov["rl"], ov["sft"])))
        if with_control:
            row.append(add("d_control", diff(ov["rl"], ov["control"])))
        rows.append(row)
        classes.append("")
    order = keys + ["d_start"] * with_start + ["d_control"] * with_control
    for name in ("mean", "std"):
        row = [Cell(name)]
        for k in order:
            vals = columns.get(k, [])
            if not vals or (name == "std" and len(vals) < 2):
                v = None
            elif name == "mean":
                v = sum(vals) / len(vals)
            else:
                mu = sum(vals) / len(vals)
                v = math.sqrt(sum((x - mu) ** 2 for x in vals) / (len(vals) - 1))
            row.append(Cell(fmt(v) if (k in MODELS or name == "std") else fmt_diff(v),
                            "num" if (k in MODELS or name == "std") else sign_cls(v), v))
        rows.append(row)
        classes.append("total")
    blocks: list[Any] = []
    png = rp.plot_seeds(overall_by_seed)
    if png:
        blocks.append(Fig("seeds", png, "Overall score per seed for each model",
                          "Overall score (%) per seed: dots are seeds, bars their mean."))
    blocks.append(Table(headers, rows, classes, "Overall score per seed (percent; differences in points; "
                                                "std is the sample standard deviation)."))
    return Section("seeds", "Seeds", blocks)



def sweep_section(inputs: Inputs) -> Section:
    title = "Checkpoint sweep"
    sweep = inputs.sweep
    if sweep is None:
        return Section("sweep", title, [Note(f"Skipped: no {code_list(SWEEP_FILES)}.")])
    blocks: list[Any] = []
    refs = {}
    if inputs.metrics is not None:
        scores, _ = _headline(inputs.metrics)
        refs = {k: scores[k].overall for k in ("sft", "baseline")
                if k in scores and scores[k].overall is not None and math.isfinite(scores[k].overall)}
    points = [(e.step, e.overall, e.name) for e in sweep.entries if e.step is not None]
    unstepped = [(e.name, e.overall) for e in sweep.entries if e.step is None]
    png = rp.plot_sweep(points, unstepped, refs)
    if png:
        blocks.append(Fig("sweep", png, "Overall score against checkpoint step",
                          "Overall score (%) of each checkpoint" + (f" on `{sweep.benchmark}`" if sweep.benchmark else "")
                          + "; dotted lines: start and baseline from metrics.json."))
    best = max(sweep.entries, key=lambda e: e.overall) if sweep.entries else None
    rows, classes = [], []
    for e in sorted(sweep.entries, key=lambda e: (e.step is None, e.step or 0, e.name)):
        rows.append([Cell(e.name + (" ★" if e is best else "")), Cell("–" if e.step is None else str(e.step), "num"),
                     Cell(fmt(e.overall), "num", e.overall)])
        classes.append("best" if e is best else "")
    if not rows:
        blocks.append(Note(f"`{sweep.path}` lists no models."))
    else:
        blocks.append(Table(["checkpoint", "step", "overall (%)"], rows, classes, "★: best overall score."))
    return Section("sweep", title, blocks)


def inputs_section(inputs: Inputs) -> Section:
    rows = [[Cell(what), Cell(f"`{rel}`"), Cell("read")] for what, rel in inputs.read]
    rows += [[Cell(what), Cell(code_list(looked)), Cell(f"missing: {consequence}")]
             for what, looked, consequence in inputs.missing]
    classes = [""] * len(inputs.read) + ["missing"] * len(inputs.missing)
    return Section("inputs", "Inputs", [Table(["input", "file (relative to the run)", "status"], rows, classes)])
