"""``spatialrl report RUN_DIR``: one run's results as a page to look at (HTML) and a Markdown twin.

Reads what exists in ``RUN_DIR`` (the layout ``spatialrl demo`` writes; see ``docs/report.md``):

- ``metrics.json``: scores in percent of ``sft`` (the model RL starts from), ``control``,
  ``rl`` and ``baseline`` (the no-perception predictor), each ``{"overall", "per_type"}``;
  optionally ``seed``, ``seconds`` and ``seeds`` (a list of such dicts, one per seed);
- ``grpo/log_history.jsonl`` (or ``log_history.jsonl``): the GRPO trainer's log history;
- ``control/log_history.jsonl``: the SFT control's log history (its ``loss``);
- ``sweep.json`` (or ``eval/sweep.json``): a checkpoint sweep as ``spatialrl eval run`` writes it;
- ``grpo/spatialrl_config.yaml`` (or ``spatialrl_config.yaml``): the sharpness schedule and SNRA
  operator (paper defaults when absent).

Writes ``OUT/report.html`` (self-contained: CSS inline, every plot a base64 PNG data URI, a
Content-Security-Policy that forbids any request) and ``OUT/report.md`` (plots as PNG files in
``OUT/report_files/``), each through a temporary file and a rename. ``OUT`` is ``RUN_DIR``
unless ``--out`` says otherwise. A missing input skips its part with a note in the report and
a ``missing:`` line on stdout; a malformed one is an error naming the file and the field
(exit status 2, nothing written). Output is deterministic except the "Generated" line
(which honours ``SOURCE_DATE_EPOCH``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import json
import math
import os
import re
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatialrl._fs import write_text_atomic

HELP = "write a run's report: HTML with embedded plots and a Markdown twin, from its metrics, logs and sweep"

__all__ = ["HELP", "ReportError", "ReportResult", "add_arguments", "load_inputs", "run", "write_report"]

#: Model keys of metrics.json, in display order, with a short label and what each one is.
MODELS: dict[str, tuple[str, str]] = {
    "sft": ("start", "the model RL starts from (metrics.json `sft`)"),
    "control": ("control", "the start trained further with SFT for the same budget, no RL"),
    "rl": ("RL", "the start after GRPO"),
    "baseline": ("baseline", "a constant / majority predictor that never looks at the image"),
}
#: RL more than this many points below its start on a question type is flagged.
REGRESSION_POINTS = 5.0

METRICS_FILES = ("metrics.json",)
GRPO_LOG_FILES = ("grpo/log_history.jsonl", "log_history.jsonl")
CONTROL_LOG_FILES = ("control/log_history.jsonl",)
SWEEP_FILES = ("sweep.json", "eval/sweep.json")
CONFIG_FILES = ("grpo/spatialrl_config.yaml", "spatialrl_config.yaml")

#: Paper defaults (Smooth Operator sec. 3.3, 4.1) used when no config is found.
DEFAULT_PARAMS: dict[str, Any] = {
    "sharpness_kind": "sigmoid", "k_min": 1.0, "k_max": 100.0, "tau": 0.5, "steepness": 10.0,
    "snra_operator": "sigmoid", "e_max": 5.3, "max_steps": None,
}
SNRA_KS = (1.0, 5.0, 20.0, 100.0)

# Log-history keys the report plots; their values must be numbers (or null / NaN).
_LOG_KEYS = {
    "loss", "reward", "reward_std", "sharpness/k", "adv/mean", "adv/abs_mean", "adv/variance",
    "adv/zero_std_group_frac", "adv/near_miss_use", "adv/unscorable_frac", "consistency/delta",
    "consistency/abs_delta", "consistency/pairs", "kl", "entropy", "completions/mean_length",
    "learning_rate", "frac_reward_zero_std",
}
_REWARD_KEY = re.compile(r"^rewards/(.+)/(mean|std)$")


class ReportError(ValueError):
    """A malformed input; the message names the file (relative to the run) and the field."""


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

Series = tuple[list[float], list[float]]


@dataclass
class Scores:
    overall: float | None
    per_type: dict[str, float | None]


@dataclass
class Metrics:
    models: dict[str, Scores]
    seed: int | None = None
    seconds: float | None = None
    seeds: list["Metrics"] = field(default_factory=list)


@dataclass
class LogHistory:
    path: str  # relative to the run directory
    rows: list[dict[str, Any]]

    def series(self, key: str) -> Series | None:
        """``(steps, values)`` of ``key`` over the rows that have it and a step, sorted by step.

        A step logged twice keeps the per-step row (the one with ``loss``) over a summary row.
        """
        by_step: dict[float, tuple[bool, float]] = {}
        for row in self.rows:
            if key not in row or "step" not in row:
                continue
            value = row[key]
            value = math.nan if value is None else float(value)
            has_loss = "loss" in row
            old = by_step.get(row["step"])
            if old is None or (has_loss and not old[0]):
                by_step[row["step"]] = (has_loss, value)
        if not by_step:
            return None
        steps = sorted(by_step)
        return [float(s) for s in steps], [by_step[s][1] for s in steps]

    def reward_components(self) -> list[str]:
        names: list[str] = []
        for row in self.rows:
            for key in row:
                m = _REWARD_KEY.match(key)
                if m and m.group(2) == "mean" and m.group(1) not in names:
                    names.append(m.group(1))
        return names


@dataclass
class SweepEntry:
    name: str
    step: int | None
    overall: float


@dataclass
class Sweep:
    path: str
    benchmark: str | None
    entries: list[SweepEntry]


@dataclass
class Params:
    values: dict[str, Any]
    source: dict[str, str]  # key -> file it came from, or "default"
    path: str | None

    def schedule(self):
        from spatialrl.rewards import SharpnessSchedule

        v = self.values
        return SharpnessSchedule(v["sharpness_kind"], v["k_min"], v["k_max"], v["tau"], v["steepness"])

    def describe_schedule(self) -> str:
        v = self.values
        if v["sharpness_kind"] == "fixed":
            return f"fixed, k = {v['k_min']:g}"
        text = f"{v['sharpness_kind']}, k {v['k_min']:g} → {v['k_max']:g}"
        if v["sharpness_kind"] == "sigmoid":
            text += f", τ {v['tau']:g}, s {v['steepness']:g} (eq. 5)"
        return text


@dataclass
class Inputs:
    run_dir: Path
    metrics: Metrics | None = None
    grpo_log: LogHistory | None = None
    control_log: LogHistory | None = None
    sweep: Sweep | None = None
    params: Params | None = None
    read: list[tuple[str, str]] = field(default_factory=list)  # (what, relative path)
    missing: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)  # (what, looked for, consequence)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, where: str, name: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if not _is_number(value):
        kind = "a number or null" if allow_none else "a number"
        raise ReportError(f"{where}: field '{name}' must be {kind}, got {value!r}")
    return float(value)


def _read_json(path: Path, rel: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{rel}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{rel}: not valid JSON: {exc}") from None


def _parse_scores(obj: Any, rel: str, name: str) -> Scores:
    if not isinstance(obj, dict):
        raise ReportError(f"{rel}: field '{name}' must be an object with 'overall' and 'per_type', got {obj!r}")
    if "overall" not in obj:
        raise ReportError(f"{rel}: field '{name}.overall' is missing")
    overall = _number(obj["overall"], rel, f"{name}.overall", allow_none=True)
    per_type_raw = obj.get("per_type", {})
    if per_type_raw is None:
        per_type_raw = {}
    if not isinstance(per_type_raw, dict):
        raise ReportError(f"{rel}: field '{name}.per_type' must be an object (question type -> percent), "
                          f"got {per_type_raw!r}")
    per_type = {str(k): _number(v, rel, f"{name}.per_type.{k}", allow_none=True) for k, v in per_type_raw.items()}
    return Scores(overall, per_type)


def _parse_metrics(obj: Any, rel: str, prefix: str = "") -> Metrics:
    if not isinstance(obj, dict):
        where = f"field '{prefix[:-1]}'" if prefix else "the top level"
        raise ReportError(f"{rel}: {where} must be a JSON object, got {type(obj).__name__}")
    models = {key: _parse_scores(obj[key], rel, prefix + key) for key in MODELS if key in obj}
    seed = obj.get("seed")
    if seed is not None and (not _is_number(seed) or float(seed) != int(seed)):
        raise ReportError(f"{rel}: field '{prefix}seed' must be an integer, got {seed!r}")
    seconds = _number(obj.get("seconds"), rel, prefix + "seconds", allow_none=True)
    seeds: list[Metrics] = []
    if "seeds" in obj and not prefix:
        if not isinstance(obj["seeds"], list):
            raise ReportError(f"{rel}: field 'seeds' must be a list of per-seed objects, got {obj['seeds']!r}")
        seeds = [_parse_metrics(s, rel, f"seeds[{i}].") for i, s in enumerate(obj["seeds"])]
    if not prefix and not models and not any(s.models for s in seeds):
        raise ReportError(f"{rel}: no model scores: expected at least one of the fields "
                          f"{', '.join(repr(k) for k in MODELS)}")
    return Metrics(models, None if seed is None else int(seed), seconds, seeds)


def _read_log(path: Path, rel: str) -> LogHistory:
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{rel}: cannot read: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReportError(f"{rel} line {n}: not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise ReportError(f"{rel} line {n}: expected a JSON object, got {type(row).__name__}")
        where = f"{rel} line {n}"
        if "step" in row:
            step = row["step"]
            if not _is_number(step) or not math.isfinite(step) or float(step) != int(step) or step < 0:
                raise ReportError(f"{where}: field 'step' must be a non-negative integer, got {step!r}")
            row["step"] = int(step)
        for key, value in row.items():
            if key in _LOG_KEYS or _REWARD_KEY.match(key):
                _number(value, where, key, allow_none=True)
        rows.append(row)
    return LogHistory(rel, rows)


def _parse_sweep(obj: Any, rel: str) -> Sweep:
    if not isinstance(obj, dict):
        raise ReportError(f"{rel}: the top level must be a JSON object, got {type(obj).__name__}")
    if "models" not in obj:
        raise ReportError(f"{rel}: field 'models' is missing")
    models = obj["models"]
    if isinstance(models, dict):  # name -> {"overall", "step"}
        items = [(f"models.{name}", {"name": name, **m} if isinstance(m, dict) else m) for name, m in models.items()]
    elif isinstance(models, list):  # as spatialrl eval run writes it
        items = [(f"models[{i}]", m) for i, m in enumerate(models)]
    else:
        raise ReportError(f"{rel}: field 'models' must be a list or an object, got {type(models).__name__}")
    entries = []
    for where, m in items:
        if not isinstance(m, dict):
            raise ReportError(f"{rel}: field '{where}' must be an object, got {m!r}")
        name = m.get("name")
        if not isinstance(name, str) or not name:
            raise ReportError(f"{rel}: field '{where}.name' must be a non-empty string, got {name!r}")
        if "overall" not in m:
            raise ReportError(f"{rel}: field '{where}.overall' is missing")
        overall = _number(m["overall"], rel, f"{where}.overall")
        step = m.get("step")
        if step is not None and (not _is_number(step) or float(step) != int(step)):
            raise ReportError(f"{rel}: field '{where}.step' must be an integer or null, got {step!r}")
        entries.append(SweepEntry(name, None if step is None else int(step), float(overall)))
    benchmark = obj.get("benchmark")
    return Sweep(rel, benchmark if isinstance(benchmark, str) else None, entries)


def _read_params(path: Path | None, rel: str | None) -> Params:
    from spatialrl.rewards import OPERATORS
    from spatialrl.rewards.schedules import KINDS

    values = dict(DEFAULT_PARAMS)
    source = {k: "default" for k in values}
    if path is not None:
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ReportError(f"{rel}: cannot read: {exc}") from None
        except yaml.YAMLError as exc:
            raise ReportError(f"{rel}: not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ReportError(f"{rel}: expected a mapping of key: value, got {type(data).__name__}")
        for key in values:
            if key in data:
                values[key] = data[key]
                source[key] = rel
        for key in ("k_min", "k_max", "tau", "steepness", "e_max"):
            values[key] = _number(values[key], rel, key)
        if values["max_steps"] is not None and (not _is_number(values["max_steps"]) or values["max_steps"] < 1
                                                or float(values["max_steps"]) != int(values["max_steps"])):
            raise ReportError(f"{rel}: field 'max_steps' must be a positive integer, got {values['max_steps']!r}")
        if values["sharpness_kind"] not in KINDS:
            raise ReportError(f"{rel}: field 'sharpness_kind' must be one of {KINDS}, got {values['sharpness_kind']!r}")
        if values["snra_operator"] not in OPERATORS:
            raise ReportError(f"{rel}: field 'snra_operator' must be one of {sorted(OPERATORS)}, "
                              f"got {values['snra_operator']!r}")
    params = Params(values, source, rel)
    try:
        params.schedule()
    except ValueError as exc:
        m = re.search(r"SharpnessSchedule\.(kind|k_min|k_max|tau|steepness)\b", str(exc))
        name = {"kind": "sharpness_kind"}.get(m.group(1), m.group(1)) if m else "k_min/k_max"
        raise ReportError(f"{rel}: field '{name}': {exc}") from None
    return params


def _find(run_dir: Path, candidates: tuple[str, ...]) -> tuple[Path, str] | None:
    for rel in candidates:
        p = run_dir / rel
        if p.is_file():
            return p, rel
    return None


def load_inputs(run_dir: str | os.PathLike) -> Inputs:
    """Read and validate everything the report uses from ``run_dir``; raise ``ReportError`` if malformed."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ReportError(f"run directory not found: {root}")
    inputs = Inputs(root)

    def look(what: str, candidates: tuple[str, ...], consequence: str):
        found = _find(root, candidates)
        if found is None:
            inputs.missing.append((what, candidates, consequence))
            return None
        inputs.read.append((what, found[1]))
        return found

    if found := look("scores", METRICS_FILES, "no summary, no per-type accuracy"):
        inputs.metrics = _parse_metrics(_read_json(*found), found[1])
    if found := look("GRPO log history", GRPO_LOG_FILES, "no training curves"):
        inputs.grpo_log = _read_log(*found)
    if found := look("SFT control log history", CONTROL_LOG_FILES, "no control loss curve"):
        inputs.control_log = _read_log(*found)
    if found := look("checkpoint sweep", SWEEP_FILES, "no checkpoint sweep"):
        inputs.sweep = _parse_sweep(_read_json(*found), found[1])
    found = look("SNRA / schedule config", CONFIG_FILES, "schedule and SNRA curves use the paper's defaults")
    inputs.params = _read_params(*(found or (None, None)))
    if inputs.metrics is None and inputs.grpo_log is None and inputs.control_log is None and inputs.sweep is None:
        looked = ", ".join(METRICS_FILES + GRPO_LOG_FILES + CONTROL_LOG_FILES + SWEEP_FILES)
        raise ReportError(f"nothing to report in {root}: none of {looked} exists")
    return inputs


# --------------------------------------------------------------------------------------
# The document: sections of blocks, rendered to HTML and to Markdown
# --------------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str
    cls: str = ""  # "num", "pos", "neg", "best", ...
    value: float | None = None  # exact value, written as data-value in HTML


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    row_classes: list[str] = field(default_factory=list)
    caption: str = ""


@dataclass
class Card:
    label: str
    text: str
    detail: str
    key: str
    value: float | None
    cls: str = ""


@dataclass
class Fig:
    name: str  # file stem under report_files/
    png: bytes
    alt: str
    caption: str


@dataclass
class Para:
    text: str  # `code` spans allowed


@dataclass
class Note:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Cards:
    cards: list[Card]


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Any]


def _code_list(paths: tuple[str, ...]) -> str:
    return " or ".join(f"`{p}`" for p in paths)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _fmt_diff(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.1f}".replace("-", "−")


def _diff(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return None
    return a - b


def _sign_cls(value: float | None) -> str:
    if value is None:
        return "num"
    return "num pos" if value > 0 else "num neg" if value < 0 else "num"


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


def _summary(inputs: Inputs) -> Section:
    blocks: list[Any] = []
    if inputs.metrics is None:
        blocks.append(Note("No `metrics.json`: no scores to summarise. Training curves and the sweep follow "
                           "where their files exist."))
    else:
        scores, label = _headline(inputs.metrics)
        overall = {k: s.overall for k, s in scores.items()}
        cards = [Card(MODELS[k][0], f"{_fmt(v)} %", MODELS[k][1], k, v) for k, v in overall.items()]
        gains = [("rl_minus_sft", "RL − start", _diff(overall.get("rl"), overall.get("sft"))),
                 ("rl_minus_control", "RL − control", _diff(overall.get("rl"), overall.get("control")))]
        for key, name, value in gains:
            if value is not None:
                cards.append(Card(name, f"{_fmt_diff(value)} pts", "percentage points, overall", key, value,
                                  "pos" if value > 0 else "neg" if value < 0 else ""))
        blocks.append(Para(f"Overall score (percent) on the evaluation set, {label}."))
        blocks.append(Cards(cards))
        sentence = []
        if overall.get("rl") is not None:
            sentence.append(f"RL reaches {_fmt(overall['rl'])} %")
            parts = [f"{_fmt_diff(v)} points over {who} ({_fmt(overall[k2])} %)"
                     for (_, _, v), k2, who in zip(gains, ("sft", "control"), ("its start", "the control"))
                     if v is not None]
            if parts:
                sentence[-1] += ": " + " and ".join(parts)
        if overall.get("baseline") is not None:
            sentence.append(f"the no-perception baseline scores {_fmt(overall['baseline'])} %")
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
            f"{_code_list(looked)} ({consequence})" for _, looked, consequence in inputs.missing) + "."))
    return Section("summary", "Summary", blocks)


def _regressions(scores: dict[str, Scores]) -> list[str]:
    if "rl" not in scores or "sft" not in scores:
        return []
    out = []
    for t, v in scores["rl"].per_type.items():
        d = _diff(v, scores["sft"].per_type.get(t))
        if d is not None and d < -REGRESSION_POINTS:
            out.append(t)
    return out


def _per_type_section(inputs: Inputs) -> Section:
    from spatialrl import report_plots as rp

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
            row.append(Cell(_fmt(v), "num", v))
        if has_diff_start:
            d = _diff(table_scores["rl"].get(t), table_scores["sft"].get(t))
            row.append(Cell(_fmt_diff(d), _sign_cls(d), d))
        if has_diff_control:
            d = _diff(table_scores["rl"].get(t), table_scores["control"].get(t))
            row.append(Cell(_fmt_diff(d), _sign_cls(d), d))
        rows.append(row)
        classes.append("total" if t == "overall" else "regress" if flagged else "")
    caption = "Percent correct; differences in percentage points."
    if has_diff_start:
        caption += f" ▼: RL more than {REGRESSION_POINTS:g} points below its start."
    blocks.append(Table(headers, rows, classes, caption))
    return Section("per-type", title, blocks)


def _seeds_section(inputs: Inputs) -> Section | None:
    from spatialrl import report_plots as rp

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
        return Cell(_fmt(value) if key in MODELS else _fmt_diff(value),
                    "num" if key in MODELS else _sign_cls(value), value)

    overall_by_seed = []
    for i, s in enumerate(seeds):
        ov = {k: s.models[k].overall if k in s.models else None for k in keys}
        overall_by_seed.append({k: v for k, v in ov.items() if v is not None})
        row = [Cell(str(s.seed) if s.seed is not None else f"#{i}")] + [add(k, ov[k]) for k in keys]
        if with_start:
            row.append(add("d_start", _diff(ov["rl"], ov["sft"])))
        if with_control:
            row.append(add("d_control", _diff(ov["rl"], ov["control"])))
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
            row.append(Cell(_fmt(v) if (k in MODELS or name == "std") else _fmt_diff(v),
                            "num" if (k in MODELS or name == "std") else _sign_cls(v), v))
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


def _training_sections(inputs: Inputs) -> list[Section]:
    from spatialrl import report_plots as rp
    from spatialrl.rewards import OPERATORS

    log = inputs.grpo_log
    params = inputs.params
    none = Note(f"Skipped: no {_code_list(GRPO_LOG_FILES)}.")

    def s(key: str) -> Series | None:
        return log.series(key) if log else None

    def absent(keys: str) -> Note:
        return Note(f"`{log.path}` has no {keys} entries: not logged in this run.")

    sections = []
    # 1. rewards
    blocks: list[Any] = []
    if log is None:
        blocks.append(none)
    else:
        comps = {name: s(f"rewards/{name}/mean") for name in log.reward_components()}
        comps = {n: v for n, v in comps.items() if v}
        png = rp.plot_rewards(s("reward"), comps)
        if png:
            blocks.append(Fig("rewards", png, "Reward components and total reward over training steps",
                              "Mean reward over the step's completions of each component (`rewards/<name>/mean`) "
                              "and the weighted total `reward` that the advantages use."))
        else:
            blocks.append(absent("`reward` or `rewards/*/mean`"))
    sections.append(Section("rewards", "Rewards during GRPO", blocks))

    # 2-3. sharpness and SNRA
    blocks = []
    v = params.values
    logged_k = s("sharpness/k")
    total = v["max_steps"]
    total_note = None
    if total is None:
        steps = [st for row in (log.rows if log else []) if isinstance(st := row.get("step"), int)]
        total = max(steps) if steps else 100
        total_note = ("`max_steps` unknown (no config): T = the last logged step" if steps
                      else "`max_steps` unknown: T = 100 (the config default)") + f" = {total}."
    png = rp.plot_sharpness(logged_k, params.schedule(), total, params.describe_schedule())
    if png:
        blocks.append(Fig("sharpness", png, "Sharpness k over training steps: logged values and the schedule",
                          f"Logged `sharpness/k` (points) and the schedule's formula k(t) over T = {total} steps "
                          f"(line; dotted: t = T). A logged point is the mean of k over the steps since the previous log, "
                          "so it trails the curve when logging is sparse."
                          + ("" if logged_k else " Nothing logged: formula only.")))
    if total_note:
        blocks.append(Note(total_note))
    ks = sorted({*SNRA_KS, v["k_min"], v["k_max"]})
    labels = []
    for k in ks:
        tags = [n for n, kv in (("k_min", v["k_min"]), ("k_max", v["k_max"])) if kv == k]
        labels.append((k, f"k = {k:g}" + (f" ({', '.join(tags)})" if tags else "")))
    op_name, op_source = {
        "sigmoid": ("SNRA 2/(1+exp(k·e))", ")"),
        "tanh": ("SNRA 1−tanh(k·e)", "; tanh variant, Table 8)"),
        "binary": ("binary 1[e ≤ 0.01]", "'s k → ∞ limit; Table 2, S1)"),
    }[v["snra_operator"]]
    png = rp.plot_snra(OPERATORS[v["snra_operator"]], labels, 5.3, op_name)
    blocks.append(Fig("snra", png, "SNRA reward as a function of squared error for several sharpness values",
                      f"Reward r = {op_name.split(' ', 1)[1]} (Smooth Operator eq. 2" + op_source
                      + " against the squared error e, linear and log axes; dotted: e_max = 5.3, where a "
                        "wrong discrete answer or a parse failure lands."))
    rows = []
    for key in ("sharpness_kind", "k_min", "k_max", "tau", "steepness", "snra_operator", "e_max", "max_steps"):
        val = v[key]
        src = params.source[key]
        rows.append([Cell(key), Cell("–" if val is None else f"{val:g}" if _is_number(val) else str(val)),
                     Cell("paper default" if src == "default" else src)])
    blocks.append(Table(["parameter", "value", "source"], rows, [], "SNRA and sharpness parameters of this run."))
    if params.path is None:
        blocks.append(Note(f"No {_code_list(CONFIG_FILES)}: the paper's defaults are shown."))
    sections.append(Section("sharpness", "Sharpness schedule and SNRA reward", blocks))

    # 4-5. advantages
    blocks = []
    if log is None:
        blocks.append(none)
    else:
        png = rp.plot_adv_variance(s("adv/variance"), s("adv/abs_mean"))
        if png:
            blocks.append(Fig("adv_variance", png, "Advantage variance over training steps",
                              "Advantage variance `adv/variance` (Smooth Operator sec. 4.3: mean over prompt "
                              "groups of the variance of the advantages the loss uses) and mean |A|."))
        else:
            blocks.append(absent("`adv/variance`"))
        zero = s("adv/zero_std_group_frac") or s("frac_reward_zero_std")
        png = rp.plot_zero_variance(zero, s("adv/near_miss_use"), s("adv/unscorable_frac"))
        if png:
            blocks.append(Fig("zero_variance", png, "Zero-variance group fraction and near-miss use over steps",
                              "Fraction of prompt groups whose rewards are all equal (their GRPO advantages "
                              "vanish) and near-miss use: the share of imperfect answers (r̂ < 1) that still "
                              "get a non-zero advantage. Gaps: no imperfect answer in that step."))
        else:
            blocks.append(absent("`adv/zero_std_group_frac` or `adv/near_miss_use`"))
        blocks.append(_convergence_block(log))
    sections.append(Section("advantages", "Advantages and learning signal", blocks))

    # 6. consistency
    blocks = []
    if log is None:
        blocks.append(none)
    else:
        png = rp.plot_consistency(s("consistency/delta"), s("consistency/abs_delta"))
        if png:
            pairs = s("consistency/pairs")
            n_pairs = f" ({_fmt(max(_finite(pairs[1])), 0)} mirror pairs per step at most)" if pairs and _finite(
                pairs[1]) else ""
            blocks.append(Fig("consistency", png, "View-consistency gap between original and mirrored views over steps",
                              "delta = mean reward on the original view − mean reward on its mirror, averaged "
                              f"over pairs{n_pairs}; the penalty acts on |delta| (SVQA-R1 eq. 2-4)."))
        else:
            blocks.append(absent("`consistency/delta` (the run had no mirror pairs)"))
    sections.append(Section("consistency", "View consistency (mirror pairs)", blocks))

    # policy and losses
    blocks = []
    png = rp.plot_policy([("KL to reference", "KL (nats)", s("kl")), ("entropy", "entropy (nats/token)", s("entropy")),
                          ("mean completion length", "length (tokens)", s("completions/mean_length"))])
    if png:
        blocks.append(Fig("policy", png, "KL to the reference model, entropy and completion length over steps",
                          "Policy drift: KL to the reference model (β-weighted in the loss), token entropy, "
                          "and mean completion length."))
    control = inputs.control_log.series("loss") if inputs.control_log else None
    png = rp.plot_losses(s("loss"), control)
    if png:
        blocks.append(Fig("losses", png, "Training loss of GRPO and of the SFT control over steps",
                          "Training loss per logged step. GRPO's surrogate loss is near zero by construction; "
                          "the control's cross-entropy should fall."))
    if log is None:
        blocks.append(none)
    if inputs.control_log is None:
        blocks.append(Note(f"No {_code_list(CONTROL_LOG_FILES)}: no control loss curve."))
    elif control is None:
        blocks.append(Note(f"`{inputs.control_log.path}` has no `loss` entries."))
    sections.append(Section("policy", "Policy and losses", blocks))
    return sections


def _convergence_block(log: LogHistory) -> Any:
    """Smooth Operator's convergence steps T_conv (sec. 4.3, Table 2) of the logged accuracy curve."""
    from spatialrl.train.callbacks import training_diagnostics

    d = training_diagnostics(log.rows)
    if d["t_conv"] is None:
        return Note(f"Convergence steps T_conv: `{log.path}` has no `{d['t_conv_series']}` entries "
                    "(no accuracy reward in this run).")
    rows = [[Cell("T_conv (steps)"), Cell(f"{d['t_conv']:g}", "num", d["t_conv"])],
            [Cell("Acc_max (smoothed)"), Cell(f"{d['t_conv_acc_max']:.3f}", "num", d["t_conv_acc_max"])],
            [Cell(f"threshold {d['t_conv_fraction']:g} × Acc_max"),
             Cell(f"{d['t_conv_threshold']:.3f}", "num", d["t_conv_threshold"])]]
    return Table(["convergence", "value"], rows, [],
                 f"Convergence steps T_conv = min{{t : Acc_t ≥ {d['t_conv_fraction']:g} · Acc_max}} (Smooth Operator "
                 f"sec. 4.3, Table 2). Acc_t: the accuracy reward's mean per logged step (`{d['t_conv_series']}`, "
                 f"{d['t_conv_logged_steps']} logged values), smoothed by a trailing mean over "
                 f"{d['t_conv_window']} values. A training-reward curve, not a benchmark score; under a rising "
                 "sharpness k(t) the same answers earn less reward later.")


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _sweep_section(inputs: Inputs) -> Section:
    from spatialrl import report_plots as rp

    title = "Checkpoint sweep"
    sweep = inputs.sweep
    if sweep is None:
        return Section("sweep", title, [Note(f"Skipped: no {_code_list(SWEEP_FILES)}.")])
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
                     Cell(_fmt(e.overall), "num", e.overall)])
        classes.append("best" if e is best else "")
    if not rows:
        blocks.append(Note(f"`{sweep.path}` lists no models."))
    else:
        blocks.append(Table(["checkpoint", "step", "overall (%)"], rows, classes, "★: best overall score."))
    return Section("sweep", title, blocks)


def _inputs_section(inputs: Inputs) -> Section:
    rows = [[Cell(what), Cell(f"`{rel}`"), Cell("read")] for what, rel in inputs.read]
    rows += [[Cell(what), Cell(_code_list(looked)), Cell(f"missing: {consequence}")]
             for what, looked, consequence in inputs.missing]
    classes = [""] * len(inputs.read) + ["missing"] * len(inputs.missing)
    return Section("inputs", "Inputs", [Table(["input", "file (relative to the run)", "status"], rows, classes)])


def build_document(inputs: Inputs) -> list[Section]:
    sections = [_summary(inputs), _per_type_section(inputs)]
    seeds = _seeds_section(inputs)
    if seeds:
        sections.append(seeds)
    sections += _training_sections(inputs)
    sections += [_sweep_section(inputs), _inputs_section(inputs)]
    return sections


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

_CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg-alt: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; font: 15px/1.5 system-ui, -apple-system, "Segoe UI",
  "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
p.generated { color: var(--muted); margin: 0 0 16px; font-size: 13px; }
nav { font-size: 14px; color: var(--muted); margin-bottom: 8px; }
nav a { color: #0b5cad; text-decoration: none; margin-right: 14px; white-space: nowrap; display: inline-block; }
code { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--bg-alt); padding: 1px 4px;
  border-radius: 3px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { flex: 1 1 150px; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  border-top: 5px solid #b8c0cc; }
.card .label { font-size: 13px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .detail { font-size: 12px; color: var(--muted); }
.card.m-sft { border-top-color: #0072B2; } .card.m-control { border-top-color: #E69F00; }
.card.m-rl { border-top-color: #009E73; } .card.m-baseline { border-top-color: #8C8C8C; }
.card.pos .value, td.pos { color: #0a7d3b; } .card.neg .value, td.neg { color: #b3261e; }
.note { background: #fff8e1; border-left: 4px solid #f2b705; padding: 8px 12px; margin: 12px 0; border-radius: 4px; }
figure { margin: 16px 0 24px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
table { border-collapse: collapse; margin: 12px 0 4px; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left; }
th { background: var(--bg-alt); font-weight: 600; }
td.num, th.num { text-align: right; }
tr.total td { font-weight: 650; border-bottom: 2px solid var(--line); }
tr.regress td { background: #fdecea; }
tr.best td { background: #e8f5ec; }
tr.missing td { color: var(--muted); }
.tcap { font-size: 13px; color: var(--muted); margin: 0 0 16px; }
ul { padding-left: 20px; }
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out)


def _png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def render_html(title: str, generated: str, sections: list[Section]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body><main>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="generated">{_inline_html(generated)}</p>',
        "<nav>" + "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections) + "</nav>",
    ]
    for section in sections:
        parts.append(f'<section id="{section.id}">')
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            parts.append(_block_html(block))
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _block_html(block: Any) -> str:
    if isinstance(block, Para):
        return f"<p>{_inline_html(block.text)}</p>"
    if isinstance(block, Note):
        return f'<div class="note">{_inline_html(block.text)}</div>'
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Cards):
        out = ['<div class="cards">']
        for c in block.cards:
            value = "" if c.value is None else f' data-value="{c.value!r}"'
            out.append(f'<div class="card m-{c.key} {c.cls}" data-key="{c.key}"{value}>'
                       f'<div class="label">{html.escape(c.label)}</div><div class="value">{html.escape(c.text)}</div>'
                       f'<div class="detail">{_inline_html(c.detail)}</div></div>')
        out.append("</div>")
        return "".join(out)
    if isinstance(block, Fig):
        w, h = _png_size(block.png)
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure id="fig-{block.name}"><img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}" '
                f'width="{w}" height="{h}"><figcaption>{_inline_html(block.caption)}</figcaption></figure>')
    if isinstance(block, Table):
        numeric = [all("num" in row[i].cls.split() for row in block.rows if i < len(row)) and bool(block.rows)
                   for i in range(len(block.headers))]
        out = ["<table><thead><tr>"]
        num_attr = ' class="num"'
        out += [f"<th{num_attr if numeric[i] else ''}>{html.escape(h)}</th>" for i, h in enumerate(block.headers)]
        out.append("</tr></thead><tbody>")
        for i, row in enumerate(block.rows):
            cls = block.row_classes[i] if i < len(block.row_classes) else ""
            out.append(f'<tr class="{cls}">' if cls else "<tr>")
            for c in row:
                attrs = (f' class="{c.cls}"' if c.cls else "") + (f' data-value="{c.value!r}"' if c.value is not None else "")
                out.append(f"<td{attrs}>{_inline_html(c.text)}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
        if block.caption:
            out.append(f'<p class="tcap">{_inline_html(block.caption)}</p>')
        return "".join(out)
    raise TypeError(f"unknown block {block!r}")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, generated: str, sections: list[Section], files_dir: str) -> str:
    out = [f"# {title}", "", f"_{generated}_", ""]
    out.append("Contents: " + " · ".join(f"[{s.title}](#{s.id})" for s in sections))
    out.append("")
    for section in sections:
        out += [f'<a id="{section.id}"></a>', "", f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Para):
                out += [block.text, ""]
            elif isinstance(block, Note):
                out += [f"> **Note:** {block.text}", ""]
            elif isinstance(block, Bullets):
                out += [f"- {i}" for i in block.items] + [""]
            elif isinstance(block, Cards):
                out.append("| " + " | ".join(_md_cell(c.label) for c in block.cards) + " |")
                out.append("|" + "|".join("---:" for _ in block.cards) + "|")
                out.append("| " + " | ".join(_md_cell(c.text) for c in block.cards) + " |")
                out.append("")
            elif isinstance(block, Fig):
                out += [f"![{block.alt}]({files_dir}/{block.name}.png)", "", f"*{block.caption}*", ""]
            elif isinstance(block, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                align = ["---:" if block.rows and all("num" in r[i].cls.split() for r in block.rows) else "---"
                         for i in range(len(block.headers))]
                out.append("|" + "|".join(align) + "|")
                for i, row in enumerate(block.rows):
                    bold = i < len(block.row_classes) and block.row_classes[i] == "total"
                    cells = [f"**{_md_cell(c.text)}**" if bold and c.text not in ("", "–") else _md_cell(c.text)
                             for c in row]
                    out.append("| " + " | ".join(cells) + " |")
                if block.caption:
                    out += ["", f"*{block.caption}*"]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


@dataclass
class ReportResult:
    html: Path
    markdown: Path
    files_dir: Path
    figures: list[str]
    missing: list[str]  # "path (consequence)" for each input not found


def _write_files_dir(files_dir: Path, figures: list[Fig]) -> None:
    """Replace ``files_dir`` with a fresh one holding ``figures`` (built aside, then renamed in)."""
    from spatialrl._fs import replace_dir

    tmp = files_dir.with_name(f".{files_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in figures:
        (tmp / f"{f.name}.png").write_bytes(f.png)
    replace_dir(tmp, files_dir)


def _generated_line(run_dir: Path) -> str:
    from spatialrl import __version__

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (_dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch and epoch.isdigit()
           else _dt.datetime.now(_dt.timezone.utc))
    return f"Generated {now:%Y-%m-%d %H:%M} UTC by spatialrl {__version__} from `{run_dir}`."


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 title: str | None = None) -> ReportResult:
    """Write ``report.html``, ``report.md`` and ``report_files/`` for ``run_dir`` into ``out`` (default: run_dir).

    Raises:
        ReportError: the run directory does not exist, holds none of the inputs, or one is malformed.
    """
    inputs = load_inputs(run_dir)
    root = Path(run_dir).resolve()
    out_dir = Path(out) if out is not None else Path(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = title or f"spatialrl run report: {root.name}"
    sections = build_document(inputs)
    figures = [b for s in sections for b in s.blocks if isinstance(b, Fig)]
    generated = _generated_line(root)
    files_dir = out_dir / "report_files"
    _write_files_dir(files_dir, figures)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md_path, render_markdown(title, generated, sections, files_dir.name))
    write_text_atomic(html_path, render_html(title, generated, sections))
    return ReportResult(html_path, md_path, files_dir, [f.name for f in figures],
                        [f"{' or '.join(looked)} ({consequence})" for _, looked, consequence in inputs.missing])


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="the run directory (metrics.json, grpo/log_history.jsonl, control/, sweep.json, ...)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where to write report.html, report.md and report_files/ (default: RUN_DIR)")
    parser.add_argument("--title", metavar="T", default=None,
                        help="the report's title (default: 'spatialrl run report: <run dir name>')")


def run(args: argparse.Namespace) -> int:
    try:
        result = write_report(args.run_dir, out=args.out, title=args.title)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for item in result.missing:
        print(f"missing: {item}")
    print(f"report: {result.html} and {result.markdown} ({len(result.figures)} plots in {result.files_dir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spatialrl report", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
