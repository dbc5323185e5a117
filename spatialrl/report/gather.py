"""Reading a run directory for ``spatialrl report``: find each input, parse it, validate it.

What is read (the layout ``spatialrl demo`` writes; see ``docs/report.md``):

- ``metrics.json``: scores in percent of ``sft`` (the model RL starts from), ``control``,
  ``rl`` and ``baseline`` (the no-perception predictor), each ``{"overall", "per_type"}``;
  optionally ``seed``, ``seconds`` and ``seeds`` (a list of such dicts, one per seed);
- ``grpo/log_history.jsonl`` (or ``log_history.jsonl``): the GRPO trainer's log history;
- ``control/log_history.jsonl``: the SFT control's log history (its ``loss``);
- ``sweep.json`` (or ``eval/sweep.json``): a checkpoint sweep as ``spatialrl eval run`` writes it;
- ``grpo/spatialrl_config.yaml`` (or ``spatialrl_config.yaml``): the sharpness schedule and SNRA
  operator (paper defaults when absent).

``load_inputs`` returns them as ``Inputs`` (with what was read and what was missing); a
malformed file raises ``ReportError`` naming the file (relative to the run), the line for a log
history, and the field path.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Model keys of metrics.json, in display order, with a short label and what each one is.
MODELS: dict[str, tuple[str, str]] = {
    "sft": ("start", "the model RL starts from (metrics.json `sft`)"),
    "control": ("control", "the start trained further with SFT for the same budget, no RL"),
    "rl": ("RL", "the start after GRPO"),
    "baseline": ("baseline", "a constant / majority predictor that never looks at the image"),
}
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

# Log-history keys the report plots; their values must be numbers (or null / NaN).
_LOG_KEYS = {
    "loss", "reward", "reward_std", "sharpness/k", "adv/mean", "adv/abs_mean", "adv/variance",
    "adv/zero_std_group_frac", "adv/near_miss_use", "adv/unscorable_frac", "consistency/delta",
    "consistency/abs_delta", "consistency/pairs", "kl", "entropy", "completions/mean_length",
    "learning_rate", "frac_reward_zero_std",
    # spatialrl.train.mechanisms: the same completions under the alternatives
    "mechanisms/zero_var_frac_snra", "mechanisms/zero_var_frac_binary", "mechanisms/near_miss_use_ap_grpo",
    "mechanisms/near_miss_use_grpo", "mechanisms/adv_variance_ap_grpo", "mechanisms/adv_variance_grpo",
    "mechanisms/abs_delta",
}
_REWARD_KEY = re.compile(r"^rewards/(.+)/(mean|std)$")


class ReportError(ValueError):
    """A malformed input; the message names the file (relative to the run) and the field."""


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
    #: ``sampled``, ``paired`` and ``pair_consistency`` of a demo's metrics.json (spatialrl.demo), as written
    held_out: dict[str, Any] = field(default_factory=dict)


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


def is_number(value: Any) -> bool:
    """A JSON number: int or float, not bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, where: str, name: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if not is_number(value):
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
    if seed is not None and (not is_number(seed) or float(seed) != int(seed)):
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
    held_out = {}
    for key in ("sampled", "paired", "pair_consistency"):
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ReportError(f"{rel}: field '{prefix}{key}' must be a JSON object, got {type(value).__name__}")
        held_out[key] = value
    return Metrics(models, None if seed is None else int(seed), seconds, seeds, held_out)


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
            if not is_number(step) or not math.isfinite(step) or float(step) != int(step) or step < 0:
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
        if step is not None and (not is_number(step) or float(step) != int(step)):
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
        if values["max_steps"] is not None and (not is_number(values["max_steps"]) or values["max_steps"] < 1
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

