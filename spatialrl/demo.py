"""``spatialrl demo``: the whole method end to end on a CPU, against an equal-time SFT control.

    spatialrl demo [--out runs/demo] [--seed S] [--model DIR] [--set KEY=VALUE ...]

Stages, in order; each writes one directory under ``OUT`` (default ``runs/demo``):

1. ``data``: ``spatialrl data build``: synthetic world scenes, questions of every type, each
   asked of the rendered view and of its exact mirror (``pair_id`` links the two); ``train``
   and a held-out ``test`` split (split by scene). Writes ``OUT/data/``.
2. ``model``: the start checkpoint. ``--model DIR`` if given; else the pretrained tiny spatial
   VLM shipped in the package (``spatialrl/assets/tiny-spatial-vlm``); else, with a loud
   warning, a tiny Qwen2.5-VL built from random weights into ``OUT/model/`` (no perception
   pretraining: RL gains are not expected from it). ``metrics.json`` records which.
3. ``sft``: a short SFT on the answer format (``<think></think><answer>...</answer>``, or the
   correct option's text in ``<think>`` for a start model pretrained with ``think=option``), so
   that GRPO's groups have reward variance. Writes the model RL starts from to ``OUT/sft/``
   (the *start* of the report).
4. ``grpo``: AP-GRPO (Smooth Operator eq. 8) with the SNRA accuracy reward under the sigmoid
   sharpness schedule (eq. 2-5) plus the format reward (eq. 4), and Spatial-GRPO mirror pairs
   with the view-consistency penalty on the accuracy (SVQA-R1 eq. 2-4), on all question types
   (relative SNRA error, KL coefficient 1.0, pairs stratified by type: see ``grpo_job``).
   Writes ``OUT/grpo/{final/, log_history.jsonl, generations.jsonl, spatialrl_config.yaml}``.
5. ``control``: the same start trained further by SFT, on the same training split, for the
   GRPO stage's measured training wall-clock time (``max_seconds``). Writes
   ``OUT/control/`` (model, ``log_history.jsonl``).
6. ``eval/{baseline,sft,rl,control}``: greedy answers on one fixed subset of the held-out split
   (stratified by question type, whole mirror pairs, the same for every model), scored with
   the world benchmark's rules (``spatialrl.eval.benchmarks.world``); ``baseline`` is the
   no-perception constant predictor (``spatialrl.eval.baselines``, fitted on ``train``). Each
   writes ``predictions.jsonl`` and ``scores.json``. The model stages also sample
   ``sample_k`` answers to each of ``sample_items`` of those items (whole mirror pairs) at the
   GRPO stage's temperature, seeded (``samples.jsonl``): sampled accuracy, the quantity GRPO
   optimises; the baseline does not sample (its sampled score is its greedy one).
7. ``OUT/metrics.json`` (the schema ``spatialrl report`` reads: ``sft``, ``control``, ``rl``,
   ``baseline``, each ``{"overall", "per_type"}`` in percent, plus ``seed``, ``seconds``,
   ``start_model``, per-stage times; ``sampled`` scores per model, ``paired`` differences
   RL - start and RL - control, greedy and sampled, with 95 % intervals that take mirror pairs
   as clusters (``spatialrl.eval.paired``), ``pair_consistency`` (both views right, greedy) and
   ``mechanisms``, ``spatialrl.train.mechanisms.summarise`` of the GRPO log) and the report
   (``spatialrl report OUT``: ``report.html``, ``report.md``, ``report_files/``).

Stage reuse: a stage runs in ``OUT/.<stage>.partial`` and is renamed into place only when it
has finished, with a marker ``OUT/<stage>/.done.json`` that holds the fingerprint of its
settings and of its inputs (the completion ids of the stages it reads). A rerun reuses every
stage whose marker matches; a stage whose settings or inputs changed, whose directory has no
marker (an interrupted run) or that a dependency redid is run again and replaces the old
directory. So interrupting the demo and starting it again continues where it stopped.

Budgets (fields of :class:`DemoConfig`, measured on a 2-core CPU, training with one thread):
data a few seconds, the fallback model ~10 s, SFT ~1 min (``sft_steps``, capped by
``sft_max_seconds``), GRPO ~2-2.5 min (``grpo_steps``, capped by ``grpo_max_seconds``), the
control the same time as GRPO (``control_seconds`` overrides it), evaluation ~55 s per model
with two threads (``eval_items``, ``eval_threads``) plus ~35 s per model for the sampled
answers (``sample_items``, ``sample_k``). See ``docs/demo.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatialrl._fs import replace_dir
from spatialrl.train.config import ConfigError, _did_you_mean, _JobConfig, _opt, replace_job

HELP = ("the whole method on a CPU: world data -> start model -> SFT -> AP-GRPO vs. an equal-time SFT control "
        "-> held-out scores, metrics.json and the report")

__all__ = [
    "HELP",
    "MARKER",
    "DemoConfig",
    "StageResult",
    "add_arguments",
    "apply_settings",
    "eval_subset",
    "grpo_job",
    "resolve_start_model",
    "run",
    "run_demo",
    "sample_answers",
    "sft_job",
    "shipped_model_dir",
    "summary_lines",
]

#: Completion marker written into every finished stage directory.
MARKER = ".done.json"
#: Stages in run order (the model stage has a directory only when the fallback is built).
STAGES = ("data", "model", "sft", "grpo", "control", "eval/baseline", "eval/sft", "eval/rl", "eval/control", "report")
#: Job-config keys the demo wires itself; overrides may not set them.
WIRED_KEYS = ("model", "dataset", "output_dir")
#: Models scored, in metrics.json order: key -> (eval stage, label).
SCORED = {"sft": "start (SFT)", "control": "control (SFT, same time as RL)", "rl": "RL (AP-GRPO)"}


def shipped_model_dir() -> Path:
    """Where the package ships its pretrained tiny spatial VLM (may not exist)."""
    import spatialrl

    return Path(spatialrl.__file__).resolve().parent / "assets" / "tiny-spatial-vlm"


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


#: SFT learning rates when ``sft_learning_rate`` is null (measured, docs/experiments/demo.md): the pretrained
#: start already answers in the format, and 2e-4 cost it 4-8 of its 58.8 points on the demo's
#: items, 2e-5 about 1.5.
SFT_LR_PRETRAINED = 2e-5
SFT_LR_FALLBACK = 2e-3


@dataclass
class DemoConfig(_JobConfig):
    """Settings of ``spatialrl demo`` (``--set KEY=VALUE`` sets any field; ``--list-keys`` lists them)."""

    JOB: typing.ClassVar[str] = "demo"

    out: str = _opt("runs/demo", "run directory: every stage's output, metrics.json and the report")
    seed: int = _opt(0, "seed of the training stages (SFT, GRPO, control) and of a fallback model's weights; the "
                        "data and the evaluation subset use data_seed, so seeds are scored on the same items")
    model: str | None = _opt(None, "start checkpoint directory (--model); null: the shipped pretrained tiny spatial "
                                   "VLM (spatialrl/assets/tiny-spatial-vlm), else a tiny model built from random "
                                   "weights (no perception pretraining: RL gains are not expected)")
    threads: int = _opt(1, "torch CPU threads for every stage (1 was steadiest on a shared 2-core machine)")

    # -- data
    data_seed: int = _opt(0, "seed of `spatialrl data build` and of the evaluation subset")
    scenes: int = _opt(450, "world scenes to build (each ~16 questions x 2 mirrored views; 450 with test_fraction "
                                 "0.2 trains on 360 and leaves ~2,980 held-out items, enough for eval_items)")
    image_size: int = _opt(112, "rendered image side in pixels (the tiny model's processor budgets for 112)")
    test_fraction: float = _opt(0.2, "share of scenes held out as the test split, in (0, 1)")

    # -- fallback model
    model_size: str = _opt("small", "size of the fallback tiny model (spatialrl model tiny --size): tiny or small")

    # -- SFT on the answer format
    sft_steps: int = _opt(60, "optimiser steps of the SFT stage (budget ~1 min)")
    sft_max_seconds: float | None = _opt(90.0, "wall-clock cap on the SFT stage's training, in seconds; null: none")
    sft_batch_size: int = _opt(16, "SFT samples per step")
    sft_learning_rate: float | None = _opt(None, "SFT learning rate (linear decay to 0 over sft_steps); null: "
                                                 f"{SFT_LR_PRETRAINED:g} from a pretrained start (it knows the format; "
                                                 f"2e-4 cost it 4-8 points), {SFT_LR_FALLBACK:g} from the fallback "
                                                 "random-weight model (it needs ~1e-3 or more to learn the format "
                                                 "in a minute)")
    sft_think: str | None = _opt(None, "<think> block of the SFT targets: empty (shortest completions, fastest "
                                       "GRPO), template (a generic rationale per question type) or option (a "
                                       "multiple-choice question's correct option text), option_text (that text "
                                       "as the answer too); null: the start model's think mode when its "
                                       "pretrain_summary.json says option or option_text, else empty")

    # -- GRPO
    grpo_steps: int = _opt(55, "optimiser steps of the GRPO stage, also T of the sharpness schedule (budget ~3 min)")
    grpo_max_seconds: float | None = _opt(200.0, "wall-clock cap on GRPO training, in seconds (k then stops short "
                                                 "of k_max); null: none")
    grpo_batch_size: int = _opt(32, "completions per GRPO step (32 = 4 prompts = 2 mirror pairs at G 8)")
    num_generations: int = _opt(8, "completions per prompt, G")
    grpo_learning_rate: float = _opt(3e-5, "GRPO learning rate (the paper's 1e-6 is for 3B models; docs/experiments/demo.md "
                                             "measures 1e-5 to 1e-4 here)")
    max_completion_length: int = _opt(40, "maximum new tokens per GRPO completion (answers take <= 31 tokens "
                                          "with sft_think empty)")

    # -- control
    control_seconds: float | None = _opt(None, "training wall-clock of the SFT control, in seconds; null: exactly "
                                               "the GRPO stage's measured training time")

    # -- evaluation
    eval_items: int = _opt(2400, "held-out items scored per model (one stratified subset of whole mirror pairs, "
                                 "the same for every model; ~145 per question type, so a 5-point change is ~7 "
                                 "items and a type's standard error ~1-3 points); ~55 s per model")
    eval_batch_size: int = _opt(32, "items per generate() call")
    eval_threads: int = _opt(2, "torch CPU threads of the evaluation stages (2 uses both cores of an otherwise "
                                "idle machine, ~1.3x faster than 1; with another job on the machine set 1: more "
                                "threads than free cores made greedy decoding ~15x slower here, docs/demo.md)")
    eval_max_new_tokens: int = _opt(40, "greedy generation budget per item")
    sample_items: int = _opt(480, "held-out items scored by sampled accuracy as well (a stratified subset of "
                                  "eval_items in whole mirror pairs, chosen with data_seed, the same for every "
                                  "model; ~28 per question type); 0: no sampled scores. With sample_k 4, ~35 s per "
                                  "model on a 2-core CPU")
    sample_k: int = _opt(4, "sampled answers per item; an item's sampled score is the mean over them, at the GRPO "
                            "stage's temperature (and top_p, top_k, max_completion_length): the quantity GRPO "
                            "optimises. Seeded with seed")
    sample_batch_size: int = _opt(32, "items per sampling generate() call (each gives sample_k completions)")
    baseline: str = _opt("best_constant", "no-perception predictor of spatialrl.eval.baselines: best_constant, "
                                          "mean, median or majority")

    # -- pass-through
    sft_overrides: list[str] = _opt([], "KEY=VALUE overrides of the SFT and control job configs (spatialrl sft "
                                        "--list-keys), e.g. [weight_decay=0.01] (--sft KEY=VALUE)")
    grpo_overrides: list[str] = _opt([], "KEY=VALUE overrides of the GRPO job config (spatialrl train --list-keys), "
                                         "e.g. [beta=0.04] (--grpo KEY=VALUE)")
    report: bool = _opt(True, "write report.html and report.md at the end (spatialrl report OUT)")

    def __post_init__(self) -> None:
        self._coerce_fields()
        self._check_nonempty("out")
        for name in ("seed", "data_seed"):
            self._check_at_least(name, 0)
        self._check_at_least("threads", 1)
        self._check_at_least("eval_threads", 1)
        if self.model is not None:
            path = Path(self.model)
            if not path.is_dir():
                raise ConfigError(f"--model {self.model}: no such directory; give a checkpoint directory (one with "
                                  "config.json), or leave --model out to use the shipped pretrained tiny spatial VLM")
            if not (path / "config.json").is_file():
                raise ConfigError(f"--model {self.model}: no config.json there; give a checkpoint directory written "
                                  "by save_pretrained (e.g. spatialrl model tiny --out DIR)")
        self._check_at_least("scenes", 2, "the held-out split needs at least one scene besides the training scenes")
        if not 16 <= self.image_size <= 4096:
            self._value_error("image_size", "in [16, 4096] pixels")
        if not 0.0 < self.test_fraction < 1.0:
            self._value_error("test_fraction", "in (0, 1)", "the demo scores on the held-out split")
        from spatialrl.models.tiny import SIZES

        if self.model_size not in SIZES:
            self._value_error("model_size", f"one of {sorted(SIZES)}")
        for name in ("sft_steps", "sft_batch_size", "grpo_steps", "grpo_batch_size", "max_completion_length",
                     "eval_items", "eval_batch_size", "eval_max_new_tokens", "sample_k", "sample_batch_size"):
            self._check_at_least(name, 1)
        self._check_at_least("sample_items", 0, "0 turns the sampled scores off")
        for name in ("sft_max_seconds", "grpo_max_seconds", "control_seconds"):
            self._check_positive(name, "null: no limit", optional=True)
        from spatialrl.eval.baselines import KINDS

        if self.baseline not in KINDS:
            self._value_error("baseline", f"one of {list(KINDS)}")
        # The job configs validate the rest (learning rates, think, G and the batch, overrides).
        for what, build, overrides in (("SFT", sft_job, "sft_overrides"), ("GRPO", grpo_job, "grpo_overrides")):
            for text in getattr(self, overrides):
                key = text.split("=", 1)[0].strip()
                if key in WIRED_KEYS:
                    self._fail(overrides, f"sets {key!r}, which the demo wires itself (stage outputs); remove {text!r}")
            try:
                build(self, "model", "data", "out")
            except ConfigError as exc:
                raise ConfigError(f"DemoConfig: the {what} stage's job config is invalid: {exc} (set it through "
                                  f"the demo's {what.lower()}_* fields or {overrides})") from None


def apply_settings(cfg: DemoConfig, settings: Sequence[str]) -> DemoConfig:
    """A new, validated config: ``cfg`` with ``KEY=VALUE`` settings (values in YAML syntax)."""
    from spatialrl.train.config import parse_override

    names = [f.name for f in dataclasses.fields(DemoConfig)]
    changes: dict[str, Any] = {}
    for text in settings:
        path, value = parse_override(text)
        if len(path) != 1 or path[0] not in names:
            raise ConfigError(f"--set {text!r}: unknown key {'.'.join(path)!r}{_did_you_mean(path[0], names)}; "
                              f"valid keys: {', '.join(names)} (spatialrl demo --list-keys)")
        changes[path[0]] = value
    return dataclasses.replace(cfg, **changes)


def sft_job(cfg: DemoConfig, model: str, dataset: str, output_dir: str, **changes: Any) -> Any:
    """The SFT job of the demo (the ``sft`` stage; the ``control`` stage passes ``changes``)."""
    from spatialrl.train.config import apply_overrides, make_job

    fields = dict(
        model=model, dataset=dataset, output_dir=output_dir, train_split="train", max_samples=None,
        question_types=None, think="empty" if cfg.sft_think is None else cfg.sft_think, weight_decay=0.0,
        learning_rate=SFT_LR_PRETRAINED if cfg.sft_learning_rate is None else cfg.sft_learning_rate,
        max_steps=cfg.sft_steps, max_seconds=cfg.sft_max_seconds, per_device_train_batch_size=cfg.sft_batch_size,
        gradient_accumulation_steps=1, max_length=512, seed=cfg.seed, logging_steps=5, save_steps=500,
        save_total_limit=1, gradient_checkpointing=False, bf16=False, torch_threads=cfg.threads,
        report_to="none", save_strategy="no",
    )  # fmt: skip
    job = apply_overrides(make_job("sft", **fields), cfg.sft_overrides)
    return replace_job(job, **changes) if changes else job


def grpo_job(cfg: DemoConfig, model: str, dataset: str, output_dir: str) -> Any:
    """The GRPO job of the demo: configs/demo.yaml's method (AP-GRPO, SNRA with the sigmoid
    schedule, format reward, Spatial-GRPO pairs with the penalty on the accuracy) at the demo's
    budget.

    Three settings differ from the papers' for this 2-minute run of a tiny model (measured in
    docs/experiments/demo.md, "Reward settings, the KL term and a stratified order"): the SNRA error is
    relative (``error_mode="relative"``; with eq. 1's squared error in SI units a room area in m²
    scores ~0 on nearly every sample), the KL coefficient is 1.0 instead of 0.02 (it keeps the
    few questions of a type from shifting the type's answers wholesale) and the mirror pairs
    come in an order stratified by question type (each type gets ~7 of the run's 110 questions).
    """
    from spatialrl.train.config import apply_overrides, make_job

    fields = dict(
        model=model, dataset=dataset, output_dir=output_dir, train_split="train", max_samples=None,
        question_types=None, advantage="ap_grpo", alpha=1.0, adv_clip=1.5, adv_eps=1e-6,
        rewards={"accuracy": 0.9, "format": 0.1}, abs_rewards=["accuracy"], sharpness_kind="sigmoid", k_min=1.0,
        k_max=100.0, tau=0.5, steepness=10.0, snra_operator="sigmoid", error_mode="relative", e_max=5.3,
        require_think=True, mirror_pairs=True, consistency_reward="accuracy", consistency_threshold=0.5,
        consistency_eta=1.0, num_generations=cfg.num_generations, per_device_train_batch_size=cfg.grpo_batch_size,
        gradient_accumulation_steps=1, learning_rate=cfg.grpo_learning_rate, weight_decay=0.01, beta=1.0,
        epsilon=0.2, loss_type="grpo", max_steps=cfg.grpo_steps, max_seconds=cfg.grpo_max_seconds,
        max_completion_length=cfg.max_completion_length, temperature=1.0, seed=cfg.seed, logging_steps=1,
        save_steps=500, save_total_limit=1, gradient_checkpointing=False, bf16=False,
        torch_threads=cfg.threads, report_to="none", save_strategy="no", share_prompt_pass=True,
        stratify_pairs_by="question_type",
    )  # fmt: skip
    return apply_overrides(make_job("grpo", **fields), cfg.grpo_overrides)


# --------------------------------------------------------------------------------------
# Stages: fingerprints, markers, atomic directories
# --------------------------------------------------------------------------------------


@dataclass
class StageResult:
    """A finished stage: where it is, its fingerprint, the id that dependants fingerprint, and
    what it reported (``info``)."""

    name: str
    path: Path
    fingerprint: str
    token: str
    info: dict[str, Any]
    seconds: float
    reused: bool


def stable_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "fingerprint" in marker and "token" in marker else None


def _dir_fingerprint(path: Path) -> str:
    """Names, sizes and modification times of a directory's top-level files (a model checkpoint)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return stable_hash([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])


class Stages:
    """Runs stages into ``OUT/.<name>.partial`` and renames them into place with a marker.

    ``tag`` and ``order`` label the log lines (``[demo 3/10] sft: ...``); a stage not in
    ``order`` is labelled by its name alone (``spatialrl reproduce``'s cells)."""

    def __init__(self, out: Path, log: Callable[[str], None], force: bool = False, tag: str = "demo",
                 order: Sequence[str] = STAGES) -> None:
        self.out = out
        self.log = log
        self.force = force
        self.tag = tag
        self.order = tuple(order)
        self.results: dict[str, StageResult] = {}

    def header(self, name: str, text: str) -> None:
        where = f" {self.order.index(name) + 1}/{len(self.order)}" if name in self.order else ""
        self.log(f"[{self.tag}{where}] {name}: {text}")

    @staticmethod
    def fingerprint(name: str, settings: dict[str, Any], inputs: Sequence[StageResult]) -> str:
        """What a stage's marker must record for the stage to be reused."""
        from spatialrl import __version__

        return stable_hash({"stage": name, "version": __version__, "settings": settings,
                            "inputs": {i.name: i.token for i in inputs}})

    def finished(self, name: str, settings: dict[str, Any], inputs: Sequence[StageResult]) -> StageResult | None:
        """``OUT/name`` as a reused result when its marker matches ``settings`` and ``inputs``
        (and not ``force``), else None; writes nothing."""
        fingerprint = self.fingerprint(name, settings, inputs)
        final = self.out / name
        marker = _read_marker(final)
        if marker is None or marker["fingerprint"] != fingerprint or self.force:
            return None
        return StageResult(name, final, fingerprint, marker["token"], marker.get("info", {}),
                           float(marker.get("seconds", 0.0)), True)

    def run(self, name: str, what: str, settings: dict[str, Any], inputs: Sequence[StageResult],
            fn: Callable[[Path], dict[str, Any]]) -> StageResult:
        """Reuse ``OUT/name`` if its marker matches ``settings`` and ``inputs``; otherwise run
        ``fn(tmp_dir) -> info`` and move ``tmp_dir`` into place with a new marker."""
        done = self.finished(name, settings, inputs)
        if done is not None:
            marker = _read_marker(done.path) or {}
            self.header(name, f"reusing {done.path} (finished {marker.get('finished', '?')} in "
                              f"{done.seconds:.0f} s)")
            self.results[name] = done
            return done
        fingerprint = self.fingerprint(name, settings, inputs)
        final = self.out / name
        marker = _read_marker(final)
        if final.exists():
            if marker is None:
                why = "no completion marker (an interrupted run)"
            elif marker["fingerprint"] == fingerprint:
                why = "--force"
            elif marker.get("settings") != json.loads(json.dumps(settings, default=str)):
                why = "its settings changed"
            else:
                why = "a stage it reads was redone"
            self.header(name, f"redoing {final}: {why}")
        self.header(name, what)
        tmp = final.parent / f".{final.name}.partial"
        if tmp.exists():
            self.log(f"  {name}: removing {tmp}, left by an interrupted run")
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        start = time.perf_counter()
        info = fn(tmp)
        seconds = time.perf_counter() - start
        finished = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        token = stable_hash({"fingerprint": fingerprint, "finished": finished, "nonce": os.urandom(8).hex()})
        marker = {"stage": name, "fingerprint": fingerprint, "token": token, "finished": finished,
                  "seconds": round(seconds, 2), "settings": settings, "inputs": {i.name: i.token for i in inputs},
                  "info": info}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, default=str) + "\n", encoding="utf-8")
        replace_dir(tmp, final)
        self.log(f"  {name}: done in {seconds:.0f} s -> {final}")
        result = StageResult(name, final, fingerprint, token, info, seconds, False)
        self.results[name] = result
        return result

    def external(self, name: str, path: Path, kind: str) -> StageResult:
        """A stage whose output already exists outside OUT (a given or shipped checkpoint)."""
        token = stable_hash({"path": str(path.resolve()), "files": _dir_fingerprint(path)})
        result = StageResult(name, path, token, token, {"source": kind, "path": str(path)}, 0.0, True)
        self.results[name] = result
        return result


def job_settings(job: Any) -> dict[str, Any]:
    """A job config as fingerprint settings: every field but the wired paths (inputs cover them)."""
    from spatialrl.train.config import to_dict

    return {k: v for k, v in to_dict(job).items() if k not in WIRED_KEYS}


def save_job_config(job: Any, tmp: Path, final: Path) -> None:
    """Record the job config with the stage's final output directory (training ran in ``tmp``)."""
    from spatialrl.train.config import save_config

    save_config(replace_job(job, output_dir=str(final)), tmp / "spatialrl_config.yaml")


def progress_callback(stage: str, log: Callable[[str], None], keys: Sequence[tuple[str, str]]) -> Any:
    """A TrainerCallback printing one compact line per logged step (instead of the log dicts)."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "train_runtime" in logs:
                return
            parts = [f"{label} {logs[key]:.3g}" for key, label in keys
                     if isinstance(logs.get(key), (int, float)) and math.isfinite(logs[key])]
            log(f"  {stage} step {state.global_step}/{state.max_steps}  {time.perf_counter() - self.start:4.0f} s  "
                + "  ".join(parts))

    return Progress()


# --------------------------------------------------------------------------------------
# Evaluation subset
# --------------------------------------------------------------------------------------


def eval_subset(items: Sequence[Any], n: int, seed: int, type_of: Callable[[Any], str]) -> list[Any]:
    """At most ``n`` of ``items``, stratified by ``type_of(item)``, in whole mirror pairs.

    Items are grouped by ``meta["pair_id"]`` (an item without one is its own group); each
    type's groups are shuffled with ``random.Random(seed)`` and the types take turns (in
    sorted order) adding one group while it fits in ``n``. The result keeps the input order.
    Pure and deterministic: the same items, ``n`` and ``seed`` give the same subset.
    """
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(str(item.meta.get("pair_id") or f"item:{item.id}"), []).append(i)
    by_type: dict[str, list[list[int]]] = {}
    for members in groups.values():
        by_type.setdefault(type_of(items[members[0]]), []).append(members)
    rng = random.Random(seed)
    queues = {}
    for kind in sorted(by_type):
        order = by_type[kind]
        rng.shuffle(order)
        queues[kind] = order
    chosen: list[int] = []
    progress = True
    while progress:
        progress = False
        for kind in sorted(queues):
            queue = queues[kind]
            while queue and len(chosen) + len(queue[0]) > n:
                queue.pop(0)  # a pair that no longer fits; a smaller group might
            if queue:
                chosen.extend(queue.pop(0))
                progress = True
    return [items[i] for i in sorted(chosen)]


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def resolve_start_model(model: str | None) -> tuple[str, Path | None]:
    """``("given", path)`` for ``--model``, ``("shipped", path)`` when the package ships the
    pretrained tiny spatial VLM, else ``("fallback", None)`` (build one from random weights)."""
    if model is not None:
        path = Path(model)
        if not (path / "config.json").is_file():
            raise ConfigError(f"--model {model}: not a checkpoint directory (no config.json there)")
        return "given", path
    shipped = shipped_model_dir()
    if (shipped / "config.json").is_file():
        return "shipped", shipped
    return "fallback", None


def start_model_think(path: Path | str | None) -> str:
    """The <think> format a start model answers in: ``option`` / ``option_text`` /
    ``direction_text`` for a checkpoint ``spatialrl pretrain --set think=...`` wrote (its
    ``pretrain_summary.json``), else ``empty``."""
    summary = Path(path) / "pretrain_summary.json" if path is not None else None
    if summary is None or not summary.is_file():
        return "empty"
    try:
        think = json.loads(summary.read_text()).get("config", {}).get("think", "empty")
    except (OSError, ValueError, AttributeError):
        return "empty"
    return think if think in ("option", "option_text", "direction_text") else "empty"


FALLBACK_WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
WARNING: no pretrained tiny spatial VLM is shipped ({shipped} is missing) and no --model
was given, so the demo builds a tiny Qwen2.5-VL from random weights. It has NO perception
pretraining: it cannot read the images, and RL gains over the start and the control are
NOT expected. The run still exercises every stage.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def score_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"overall": report["overall"], "per_type": dict(report["per_type"])}


# --------------------------------------------------------------------------------------
# Sampled answers, paired intervals, pair consistency, mechanisms
# --------------------------------------------------------------------------------------

#: Sampled answers of an eval stage: one JSON line per item, ``{"id", "samples": [k texts]}``.
SAMPLES_FILE = "samples.jsonl"
#: Models with held-out scores, in metrics.json order.
MODELS = ("sft", "control", "rl", "baseline")
#: The paired differences reported: name -> (model, minus model).
PAIRED = {"rl_minus_sft": ("rl", "sft"), "rl_minus_control": ("rl", "control")}
BASELINE_SAMPLING_NOTE = ("a no-perception constant predictor has no sampling: its sampled score is its greedy "
                          "score on the same items")


def sampling_settings(cfg: DemoConfig, gjob: Any, items: Sequence[Any]) -> dict[str, Any]:
    """How the eval stages sample: the GRPO stage's generation settings, ``sample_k`` per item,
    seeded with ``seed`` (also the eval stages' fingerprint of it)."""
    trl = gjob.trl
    return {"k": cfg.sample_k, "temperature": trl.temperature, "top_p": trl.top_p, "top_k": trl.top_k,
            "min_p": trl.min_p, "repetition_penalty": trl.repetition_penalty,
            "max_new_tokens": trl.max_completion_length, "seed": cfg.seed, "batch_size": cfg.sample_batch_size,
            "items": len(items), "ids": stable_hash([item.id for item in items])}


def sample_answers(model_dir: Path | str, items: Sequence[Any], benchmark: Any, path: Path,
                   sampling: dict[str, Any], device: str | None = None) -> None:
    """Write ``sampling["k"]`` sampled answers to each of ``items`` into ``path`` (JSON lines
    ``{"id", "samples"}``): the eval runner's prompts and pixel budget, ``generate_batch`` with
    a sampling config (the GRPO trainer's settings and its vision-token suppression), torch
    seeded with ``sampling["seed"]`` first."""
    import torch

    from spatialrl.eval.runner import resolve_budget
    from spatialrl.models import load_model_and_processor
    from spatialrl.models.generate import generate_batch, sampling_config
    from spatialrl.train.trainer import vision_token_suppression

    budget = resolve_budget(str(model_dir))
    model, processor = load_model_and_processor(str(model_dir), dtype=torch.float32, device=device,
                                                min_pixels=budget.min_pixels, max_pixels=budget.max_pixels)
    k, max_new = int(sampling["k"]), int(sampling["max_new_tokens"])
    config = sampling_config(model, getattr(processor, "tokenizer", processor), max_new, k,
                             **{name: sampling[name] for name in ("temperature", "top_p", "top_k", "min_p",
                                                                  "repetition_penalty")},
                             **vision_token_suppression(model.config, processor))
    torch.manual_seed(int(sampling["seed"]))
    size = int(sampling["batch_size"])
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, len(items), size):
            batch = items[start:start + size]
            texts = generate_batch(model, processor, [benchmark.prompt(item, "default") for item in batch],
                                   [list(item.images) for item in batch], max_new, generation_config=config)
            for j, item in enumerate(batch):
                fh.write(json.dumps({"id": item.id, "samples": texts[j * k:(j + 1) * k]}) + "\n")


def item_scores(benchmark: Any, items: Sequence[Any], texts: Sequence[str | None]) -> list[float]:
    """Each item's score under the benchmark's rules (what ``score_predictions`` averages)."""
    benchmark.prepare(items, texts)
    return [float(benchmark.score_item(item, text).score) for item, text in zip(items, texts)]


def _per_type(scores: Sequence[float], types: Sequence[str]) -> dict[str, float]:
    by_type: dict[str, list[float]] = {}
    for score, kind in zip(scores, types):
        by_type.setdefault(kind, []).append(score)
    return {kind: 100.0 * sum(v) / len(v) for kind, v in sorted(by_type.items())}


def overall_of(scores: Sequence[float], types: Sequence[str]) -> dict[str, Any]:
    """``{"overall", "per_type"}`` in percent: the macro average over types, as the benchmark's."""
    per_type = _per_type(scores, types)
    return {"overall": sum(per_type.values()) / len(per_type) if per_type else math.nan, "per_type": per_type}


def _held_out_statistics(benchmark: Any, subset: Sequence[Any], sample_subset: Sequence[Any],
                         sampling: dict[str, Any], results: dict[str, StageResult],
                         log: Callable[[str], None]) -> dict[str, Any]:
    """metrics.json's ``sampled``, ``paired`` and ``pair_consistency``, from the eval stages'
    predictions (greedy) and samples, scored item by item (``spatialrl.eval.paired``)."""
    from spatialrl.eval.benchmarks.world import RIGHT_THRESHOLD
    from spatialrl.eval.paired import pair_consistency, paired_difference
    from spatialrl.eval.predictions import read_predictions

    def clusters_of(items: Sequence[Any]) -> list[str]:
        return [str(item.meta.get("pair_id") or f"item:{item.id}") for item in items]

    types = [benchmark.type_of(item) for item in subset]
    clusters = clusters_of(subset)
    greedy: dict[str, list[float]] = {}
    for key in MODELS:
        records = read_predictions(results[key].path / "predictions.jsonl")
        greedy[key] = item_scores(benchmark, subset,
                                   [records[i.id]["prediction"] if i.id in records else None for i in subset])

    def interval(a: Sequence[float], b: Sequence[float], items_clusters: list[str], items_types: list[str]):
        r = paired_difference([100.0 * x for x in a], [100.0 * x for x in b], items_clusters, items_types)
        return {"diff": round(r["diff"], 3), "ci95": None if r["ci95"] is None else [round(v, 3) for v in r["ci95"]],
                "se": None if r["se"] is None else round(r["se"], 3), "clusters": r["clusters"], "items": r["items"],
                "method": "cluster-robust normal (mirror pairs as clusters; macro average over question types)"}

    paired = {name: {"greedy": interval(greedy[a], greedy[b], clusters, types)} for name, (a, b) in PAIRED.items()}
    consistency = {}
    for key in MODELS:
        value = pair_consistency(greedy[key], clusters, RIGHT_THRESHOLD)
        consistency[key] = None if value is None else round(100.0 * value, 3)

    sampled: dict[str, Any] = {}
    if sample_subset:
        position = {item.id: i for i, item in enumerate(subset)}
        s_types = [benchmark.type_of(item) for item in sample_subset]
        s_clusters = clusters_of(sample_subset)
        k = int(sampling["k"])
        per_item: dict[str, list[float]] = {}
        for key in MODELS:
            greedy_here = [greedy[key][position[item.id]] for item in sample_subset]
            if key == "baseline":
                per_item[key] = greedy_here
                sampled[key] = {**overall_of(greedy_here, s_types), "k": None, "temperature": None,
                                "items": len(sample_subset), "greedy_same_items": overall_of(greedy_here, s_types)["overall"],
                                "sampling": False, "note": BASELINE_SAMPLING_NOTE}
                continue
            rows = {}
            with open(results[key].path / SAMPLES_FILE, encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    rows[row["id"]] = row["samples"]
            flat_items = [item for item in sample_subset for _ in range(k)]
            flat = item_scores(benchmark, flat_items, [text for item in sample_subset for text in rows[item.id]])
            per_item[key] = [sum(flat[i * k:(i + 1) * k]) / k for i in range(len(sample_subset))]
            sampled[key] = {**overall_of(per_item[key], s_types), "k": k, "temperature": sampling["temperature"],
                            "items": len(sample_subset), "greedy_same_items": overall_of(greedy_here, s_types)["overall"],
                            "sampling": True}
        for name, (a, b) in PAIRED.items():
            paired[name]["sampled"] = interval(per_item[a], per_item[b], s_clusters, s_types)
    else:
        log("  metrics: sample_items is 0: no sampled scores")
    return {"sampled": sampled, "paired": paired, "pair_consistency": consistency}


def _mechanisms(grpo_dir: Path, log: Callable[[str], None]) -> dict[str, Any] | None:
    """``spatialrl.train.mechanisms.summarise`` of the GRPO stage's ``log_history.jsonl`` (the
    papers' mechanisms measured on the stage's own completions); None, with a note, where that
    module or the log is missing."""
    try:
        from spatialrl.train.mechanisms import summarise
    except ImportError:
        log("  metrics: spatialrl.train.mechanisms is not available: metrics.json -> mechanisms is null")
        return None
    path = grpo_dir / "log_history.jsonl"
    if not path.is_file():
        log(f"  metrics: {path} is missing: metrics.json -> mechanisms is null")
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return summarise(rows)


def _interval_text(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    ci = entry.get("ci95")
    return f"{entry['diff']:+.1f}" + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else " [no interval]")


def _mechanisms_line(mechanisms: dict[str, Any] | None) -> str | None:
    """One line from ``mechanisms["summary"]`` (means over the GRPO steps): the zero-variance
    group fraction under SNRA vs the binary reward, and near-miss use under AP-GRPO vs GRPO."""
    summary = mechanisms.get("summary") if isinstance(mechanisms, dict) else None
    if not isinstance(summary, dict):
        return None

    def pct(key: str) -> str:
        value = summary.get(key)
        return f"{100 * value:.0f} %" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"

    return (f"  mechanisms (GRPO's own completions, mean over {len(mechanisms.get('steps') or [])} steps): "
            f"zero-variance groups {pct('zero_var_frac_snra')} under SNRA vs {pct('zero_var_frac_binary')} under "
            f"the binary reward; near-miss use {pct('near_miss_use_ap_grpo')} under AP-GRPO vs "
            f"{pct('near_miss_use_grpo')} under GRPO")


def summary_lines(metrics: dict[str, Any], baseline: str) -> list[str]:
    """The demo's closing table: greedy and sampled score per model, the paired differences
    with their 95 % intervals, pair consistency and the mechanisms line."""
    sampled = metrics.get("sampled") or {}
    any_model = sampled.get("rl") or {}
    head = (f"  {'':<34} {'greedy':>7} {'sampled':>8}   (sampled: mean of k={any_model.get('k')} at temperature "
            f"{any_model.get('temperature')} on {any_model.get('items')} items)" if any_model else
            f"  {'':<34} {'greedy':>7}")
    lines = [head]
    for key, label in (*SCORED.items(), ("baseline", f"baseline ({baseline}, no image)")):
        entry = sampled.get(key)
        text = f"{entry['overall']:8.1f}" if entry else ""
        note = "  (no sampling: greedy)" if entry and not entry.get("sampling", True) else ""
        lines.append(f"  {label:<34} {metrics[key]['overall']:7.1f}{text}{note}")
    for name, label in (("rl_minus_sft", "RL - start"), ("rl_minus_control", "RL - control")):
        entry = (metrics.get("paired") or {}).get(name, {})
        lines.append(f"  {label:<14} greedy {_interval_text(entry.get('greedy'))}   sampled "
                     f"{_interval_text(entry.get('sampled'))}   (points, 95 % interval, mirror pairs as clusters)")
    consistency = metrics.get("pair_consistency") or {}
    if consistency:
        lines.append("  pair consistency (both views right, greedy): " + ", ".join(
            f"{key} {value:.1f}" for key, value in consistency.items() if value is not None))
    mech = _mechanisms_line(metrics.get("mechanisms"))
    if mech:
        lines.append(mech)
    return lines


def run_demo(cfg: DemoConfig, log: Callable[[str], None] = print, force: bool = False) -> dict[str, Any]:
    """Run (or continue) the demo described by ``cfg``; returns the metrics written to
    ``OUT/metrics.json``. ``force`` redoes every stage. See the module docstring."""
    import torch

    run_start = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out, log, force)

    # 1. data
    from spatialrl.data.build import BuildConfig

    build = BuildConfig(scenes=cfg.scenes, seed=cfg.data_seed, image_size=cfg.image_size,
                        test_fraction=cfg.test_fraction)

    def build_data(tmp: Path) -> dict[str, Any]:
        from spatialrl.data.build import build_dataset

        summary = build_dataset(str(tmp), build, progress=True)
        rows = summary["rows"]
        log(f"  data: {rows.get('train', 0)} train + {rows.get('test', 0)} held-out test rows (split by scene; "
            "every question in two mirrored views)")
        return {"rows": summary["rows"]}

    data = stages.run("data", f"building {cfg.scenes} world scenes with mirror pairs (seed {cfg.data_seed})",
                      dataclasses.asdict(build), [], build_data)

    # 2. start model
    kind, path = resolve_start_model(cfg.model)
    if kind == "fallback":
        log(FALLBACK_WARNING.format(shipped=shipped_model_dir()))
        settings = {"size": cfg.model_size, "seed": cfg.seed, "corpus_scenes": 100, "image_size": cfg.image_size}

        def build_model(tmp: Path) -> dict[str, Any]:
            from spatialrl.models.tiny import build_tiny_model

            info = build_tiny_model(tmp, size=cfg.model_size, seed=cfg.seed, corpus_scenes=100,
                                    image_size=cfg.image_size)
            log(f"  model: {info['parameters']:,} parameters, random weights")
            return {"source": "fallback", "parameters": info["parameters"], "size": cfg.model_size}

        model = stages.run("model", f"building a tiny Qwen2.5-VL (--size {cfg.model_size}) from random weights (fallback)",
                           settings, [], build_model)
    else:
        assert path is not None
        model = stages.external("model", path, kind)
        what = "the given checkpoint (--model)" if kind == "given" else "the shipped pretrained tiny spatial VLM"
        stages.header("model", f"using {what} at {path}")

    # 3. SFT on the answer format
    from spatialrl.train.sft import train_sft

    if cfg.sft_learning_rate is None:
        cfg = dataclasses.replace(cfg, sft_learning_rate=SFT_LR_FALLBACK if kind == "fallback" else SFT_LR_PRETRAINED)
    if cfg.sft_think is None:
        cfg = dataclasses.replace(cfg, sft_think=start_model_think(model.path))

    sft_final = out / "sft"
    job = sft_job(cfg, str(model.path), str(data.path), str(sft_final))

    def run_sft(tmp: Path) -> dict[str, Any]:
        summary = train_sft(replace_job(job, output_dir=str(tmp)),
                            progress=progress_callback("sft", log, [("loss", "loss")]))
        save_job_config(job, tmp, sft_final)
        return {k: summary[k] for k in ("steps", "seconds", "steps_per_second", "first_loss", "last_loss",
                                        "stopped_by_time")}

    sft = stages.run("sft", f"SFT on the answer format, {job.trl.max_steps} steps of {job.trl.per_device_train_batch_size}",
                     job_settings(job), [data, model], run_sft)

    # 4. GRPO
    grpo_final = out / "grpo"
    gjob = grpo_job(cfg, str(sft.path), str(data.path), str(grpo_final))

    def run_grpo(tmp: Path) -> dict[str, Any]:
        from spatialrl.train.grpo import train_grpo

        keys = [("reward", "reward"), ("rewards/accuracy/mean", "accuracy"), ("rewards/format/mean", "format"),
                ("sharpness/k", "k"), ("kl", "kl")]
        summary = train_grpo(replace_job(gjob, output_dir=str(tmp)), log=lambda m: log(f"  grpo: {m}"),
                             progress=progress_callback("grpo", log, keys))
        save_job_config(gjob, tmp, grpo_final)
        log(f"  grpo: {summary['global_step']} steps in {summary['seconds']:.0f} s of training")
        return {"steps": summary["global_step"], "seconds": summary["seconds"],
                "stopped_by_time": summary["stopped_by_time"], "pairs": summary["pairs"]}

    grpo = stages.run("grpo", f"AP-GRPO + SNRA (sigmoid k 1 -> 100) + Spatial-GRPO pairs, {gjob.trl.max_steps} steps "
                              f"of {gjob.trl.per_device_train_batch_size} completions (G {gjob.trl.num_generations})",
                      job_settings(gjob), [data, sft], run_grpo)

    # 5. the control: SFT from the same start for the same wall-clock time
    budget = float(cfg.control_seconds if cfg.control_seconds is not None else grpo.info["seconds"])
    rate = sft.info.get("steps_per_second") or 1.0
    control_final = out / "control"
    # 1.5x the steps the SFT stage's throughput predicts, so that the clock ends the run
    cjob = sft_job(cfg, str(sft.path), str(data.path), str(control_final),
                   max_steps=max(1, math.ceil(1.5 * budget * rate)), max_seconds=budget, seed=cfg.seed + 1)

    def run_control(tmp: Path) -> dict[str, Any]:
        summary = train_sft(replace_job(cjob, output_dir=str(tmp)),
                            progress=progress_callback("control", log, [("loss", "loss")]))
        save_job_config(cjob, tmp, control_final)
        if not summary["stopped_by_time"]:
            log(f"  control: WARNING: reached max_steps {cjob.trl.max_steps} after {summary['seconds']:.0f} s, before "
                f"its {budget:.0f} s budget")
        return {"steps": summary["steps"], "seconds": summary["seconds"], "budget_seconds": budget,
                "stopped_by_time": summary["stopped_by_time"]}

    why = "control_seconds" if cfg.control_seconds is not None else "the GRPO stage's training time"
    control = stages.run("control", f"SFT from the start for {budget:.0f} s ({why})",
                         job_settings(cjob), [data, sft, grpo], run_control)

    # 6. evaluation on one held-out subset
    from spatialrl.eval.benchmarks import get_benchmark, score_predictions
    from spatialrl.eval.predictions import write_json_atomic

    benchmark = get_benchmark("world")
    test_items = benchmark.load(str(data.path), split="test")
    subset = eval_subset(test_items, cfg.eval_items, cfg.data_seed, benchmark.type_of)
    subset_settings = {"benchmark": "world", "split": "test", "n": cfg.eval_items, "seed": cfg.data_seed,
                       "ids": stable_hash([item.id for item in subset])}
    what_items = f"{len(subset)} held-out items of {len(test_items)}"
    sample_subset = eval_subset(subset, cfg.sample_items, cfg.data_seed, benchmark.type_of) if cfg.sample_items else []
    sampling = sampling_settings(cfg, gjob, sample_subset)

    def run_baseline(tmp: Path) -> dict[str, Any]:
        from spatialrl.eval.baselines import (
            baseline_predictions,
            fit_baselines,
            load_items,
        )

        stats = fit_baselines(load_items(str(data.path), "train"), benchmark)
        predictions = baseline_predictions(subset, stats, benchmark, cfg.baseline)
        with open(tmp / "predictions.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"id": item.id, "prediction": predictions.get(item.id)}) + "\n"
                          for item in subset)
        report = score_predictions(benchmark, subset, predictions)
        write_json_atomic(tmp / "scores.json", report)
        return score_summary(report)

    results = {"baseline": stages.run("eval/baseline", f"the {cfg.baseline} no-perception predictor on {what_items}",
                                      {**subset_settings, "kind": cfg.baseline}, [data], run_baseline)}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(cfg.eval_threads)
    for key, stage in (("sft", sft), ("rl", grpo), ("control", control)):
        model_dir = stage.path / "final" if key == "rl" else stage.path

        def run_eval(tmp: Path, key: str = key, model_dir: Path = model_dir) -> dict[str, Any]:
            from spatialrl.eval.runner import run_benchmark

            start = time.perf_counter()
            result = run_benchmark(str(model_dir), key, benchmark, subset, tmp,
                                   max_new_tokens=cfg.eval_max_new_tokens, batch_size=cfg.eval_batch_size,
                                   overwrite=True, device=device, dtype=torch.float32, progress=True,
                                   log=lambda m: log(f"  eval: {m}"))
            pairs = result.scores.get("metrics", {}).get("pairs", {})
            info = {**score_summary(result.scores), "pair_consistency": pairs.get("consistency"),
                    "greedy_seconds": round(time.perf_counter() - start, 2)}
            if sample_subset:
                start = time.perf_counter()
                sample_answers(model_dir, sample_subset, benchmark, tmp / SAMPLES_FILE, sampling, device=device)
                info["sampled_seconds"] = round(time.perf_counter() - start, 2)
                log(f"  eval: {key}: {sampling['k']} sampled answers to each of {len(sample_subset)} items in "
                    f"{info['sampled_seconds']:.0f} s")
            return info

        sampled_what = (f", {sampling['k']} sampled answers (temperature {sampling['temperature']:g}) on "
                        f"{len(sample_subset)} of them" if sample_subset else "")
        results[key] = stages.run(f"eval/{key}", f"{SCORED[key]}: greedy answers on {what_items}{sampled_what}",
                                  {**subset_settings, "max_new_tokens": cfg.eval_max_new_tokens,
                                   "batch_size": cfg.eval_batch_size, "sampling": sampling}, [data, stage], run_eval)

    torch.set_num_threads(cfg.threads)

    # 7. metrics.json and the report
    from spatialrl.eval.baselines import numeric_mean

    seconds = sum(s.seconds for s in stages.results.values())
    counts: dict[str, int] = {}
    for item in subset:
        counts[benchmark.type_of(item)] = counts.get(benchmark.type_of(item), 0) + 1
    metrics: dict[str, Any] = {key: {"overall": r.info["overall"], "per_type": r.info["per_type"]}
                               for key, r in (("sft", results["sft"]), ("control", results["control"]),
                                              ("rl", results["rl"]), ("baseline", results["baseline"]))}
    metrics.update({
        "seed": cfg.seed,
        "seconds": round(seconds, 1),
        "run_seconds": round(time.perf_counter() - run_start, 1),
        "start_model": {"source": kind, "path": str(model.path), "perception_pretraining": kind != "fallback"},
        "baseline_kind": cfg.baseline,
        "numeric_mean": {k: numeric_mean(metrics[k]["per_type"]) for k in ("sft", "control", "rl", "baseline")},
        "eval": {"benchmark": "world", "split": "test", "items": len(subset), "of": len(test_items),
                 "per_type_items": dict(sorted(counts.items())), "greedy": True,
                 "max_new_tokens": cfg.eval_max_new_tokens,
                 "sampled": {k: v for k, v in sampling.items() if k != "ids"} | {"of": len(subset)}},
        **_held_out_statistics(benchmark, subset, sample_subset, sampling, results, log),
        "mechanisms": _mechanisms(grpo.path, log),
        "training": {"sft": sft.info, "grpo": grpo.info, "control": control.info},
        "stages": {name: {"seconds": round(r.seconds, 1), "reused": r.reused,
                          "dir": os.path.relpath(r.path, out) if r.path.is_relative_to(out) else str(r.path)}
                   for name, r in stages.results.items()},
        "config": dataclasses.asdict(cfg),
    })
    write_json_atomic(out / "metrics.json", metrics)

    report_path = None
    if cfg.report:
        from spatialrl.report import write_report

        stages.header("report", f"writing the report (spatialrl report {out})")
        report = write_report(out)
        report_path = report.html
        for item in report.missing:
            log(f"  report: not shown: {item}")

    log("")
    if kind == "fallback":
        log("NOTE: the start model had no perception pretraining (fallback); RL gains are not expected.")
    log(f"demo: scores on {len(subset)} held-out world items (percent; macro average over question types), "
        f"seed {cfg.seed}, {seconds / 60:.1f} min of computation:")
    for line in summary_lines(metrics, cfg.baseline):
        log(line)
    log(f"demo: metrics: {out / 'metrics.json'}")
    if report_path is not None:
        log(f"demo: report: {report_path} (and {report_path.with_suffix('.md')})")
    else:
        log(f"demo: report: not written here (report=false); `spatialrl report {out}` writes {out / 'report.html'}")
    return metrics


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    import re

    stages = (__doc__ or "").split("\n\n", 2)[-1]
    stages = re.sub(r":class:`([^`]+)`", r"\1", stages).replace("``", "")
    parser.description = HELP + "\n\n" + stages
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/demo)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the training stages (default 0)")
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="start checkpoint directory (default: the shipped pretrained tiny spatial VLM, else a "
                             "tiny model from random weights, with a warning)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="set any demo field, e.g. --set grpo_steps=30 --set eval_items=120 (--list-keys)")
    parser.add_argument("--sft", dest="sft_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the SFT and control job configs (spatialrl sft --list-keys)")
    parser.add_argument("--grpo", dest="grpo_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the GRPO job config (spatialrl train --list-keys)")
    parser.add_argument("--force", action="store_true", help="redo every stage instead of reusing finished ones")
    parser.add_argument("--list-keys", action="store_true", help="print every demo field with its default and meaning")


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """The :class:`DemoConfig` of the command line (flags, then ``--set``, then job overrides)."""
    changes: dict[str, Any] = {}
    for name in ("out", "seed", "model", "threads"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    cfg = apply_settings(DemoConfig(**changes), args.settings)
    if args.sft_overrides or args.grpo_overrides:
        cfg = dataclasses.replace(cfg, sft_overrides=[*cfg.sft_overrides, *args.sft_overrides],
                                  grpo_overrides=[*cfg.grpo_overrides, *args.grpo_overrides])
    return cfg


def run(args: argparse.Namespace) -> int:
    from spatialrl.train.config import describe

    if args.list_keys:
        print(describe(DemoConfig))
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        run_demo(cfg, log=lambda m: print(m, flush=True), force=args.force)
    except KeyboardInterrupt:
        print(f"\ndemo: interrupted; finished stages are kept in {cfg.out}, run the same command to continue",
              file=sys.stderr)
        return 130
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
