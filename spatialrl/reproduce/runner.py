"""Running the claims' grids: shared stages, then every (cell, seed), resumable one by one.

Layout of ``--out`` (default ``runs/reproduce``)::

    data/                     the dataset (built once; or --data DIR, used in place)
    start/                    the start checkpoint's evaluation (greedy + sampled), once
    cells/<run>/seed-<s>/     one trained cell at one seed: GRPO log, diagnostics, eval, metrics
    plan.json                 what the workers read: sizing, paths, evaluation items, every run's job
    results.json              every claim aggregated over seeds (spatialrl.reproduce.verdicts)

Every stage is written into ``.<name>.partial`` and renamed into place with a completion marker
(:class:`spatialrl.demo.Stages`); a finished stage whose settings and inputs are unchanged is
reused. So killing ``spatialrl reproduce`` loses at most the cells in flight, and running the
same command again finishes only the missing ones.

A *run* is one distinct GRPO job: two claims' cells that resolve to the same job (Table 2's S5
and Table 3's AP-GRPO) share it, so it is trained once per seed. A run's job is the demo's GRPO
job (:func:`spatialrl.demo.grpo_job`, sized by the grid's ``defaults`` and ``--set``) with the
claim's recipe and the cell's ``set`` laid over it; the seed is the job's seed (sampling, data
order, a ``data_fraction`` cell's subset) and the sampled evaluation's. The start cell is
evaluated once: its greedy answers do not depend on the seed, and its sampled ones use the
first seed.

With ``jobs`` > 1, cells run in that many worker processes (``python -m
spatialrl.reproduce.worker``), each with ``threads`` torch threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from spatialrl.demo import (
    DemoConfig,
    StageResult,
    Stages,
    apply_settings,
    eval_subset,
    grpo_job,
    job_settings,
    progress_callback,
    sampling_settings,
    shipped_model_dir,
    stable_hash,
)
from spatialrl.reproduce.cell_metrics import cell_metrics, sampled_scores
from spatialrl.reproduce.grid import Claim, Grid, GridError

__all__ = ["PLAN_FILE", "Plan", "RunSpec", "cell_runs", "load_plan", "reproduce", "run_cell", "sizing"]

PLAN_FILE = "plan.json"
#: Files of a trained model deleted after its evaluation (the metrics are what the grid needs;
#: keep_models keeps them).
MODEL_FILES = ("model.safetensors", "optimizer.pt")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One distinct GRPO job of the grid: ``fields`` are the job settings laid over the demo's
    GRPO job (recipe, then the cell's ``set``, then ``data_fraction``'s max_samples and
    max_steps); ``cells`` lists the ``(claim, cell)`` pairs that use it."""

    key: str
    fields: dict[str, Any]
    cells: tuple[tuple[str, str], ...]


def sizing(grid: Grid, settings: Sequence[str], model: str | None = None) -> DemoConfig:
    """The :class:`DemoConfig` that sizes every cell: the grid's ``defaults``, then ``--set``."""
    from spatialrl.train.config import ConfigError

    names = {f.name for f in dataclasses.fields(DemoConfig)}
    unknown = sorted(set(grid.defaults) - names)
    if unknown:
        raise GridError(f"grid defaults: unknown demo field(s) {unknown}; valid: spatialrl demo --list-keys")
    try:
        cfg = DemoConfig(**{**grid.defaults, **({"model": model} if model else {}), "report": False})
        return apply_settings(cfg, settings)
    except ConfigError as exc:
        raise GridError(f"cell sizing (grid defaults and --set): {exc}") from None


#: Job keys a cell or recipe may not set: the runner wires them (paths, the seed) or they would
#: break what the cells share (the evaluation set is the dataset's test split).
WIRED_FIELDS = ("model", "dataset", "output_dir", "seed", "train_split")


def _fields(grid: Grid, claim: Claim, cell_name: str, cfg: DemoConfig) -> dict[str, Any]:
    cell = claim.cells[cell_name]
    fields = {**grid.recipes[claim.recipe], **cell.set}
    wired = [k for k in WIRED_FIELDS if k in fields]
    if wired:
        raise GridError(f"claim {claim.id}, cell {cell_name}: its recipe or set sets {', '.join(wired)}, which the "
                        "runner wires itself (every cell shares the start, the data and the evaluation split; the "
                        "seed is --seeds); remove it")
    if cell.data_fraction is not None:
        # one pass over the fraction f of the full run's prompts: f x its steps, f x the rows they use,
        # read from the job as resolved (the sizing, the recipe, the cell and any --grpo override)
        from spatialrl.train.config import ConfigError

        try:
            trl = _job(cfg, fields, "MODEL", "DATA", "OUT", seed=0).trl
        except ConfigError as exc:
            raise GridError(f"claim {claim.id}, cell {cell_name}: its GRPO job is invalid: {exc}") from None
        steps = max(1, round(cell.data_fraction * trl.max_steps))
        prompts_per_step = trl.per_device_train_batch_size * trl.gradient_accumulation_steps // trl.num_generations
        fields.update(max_steps=steps, max_samples=max(2, steps * prompts_per_step))
    return fields


def cell_runs(grid: Grid, claims: Sequence[Claim], cfg: DemoConfig) -> tuple[dict[tuple[str, str], str | None],
                                                                               dict[str, RunSpec]]:
    """Resolve the claims' cells: ``(claim id, cell) -> run key`` (None for a start cell) and the
    distinct runs by key. A cell whose job does not validate is a :class:`GridError` naming it.

    A run is named after the first cell of the whole grid (not of the claims selected) that
    resolves to its job, so ``reproduce smoothop-t3-advantage`` and ``reproduce all`` store the
    AP-GRPO run in one directory and train it once per seed."""
    from spatialrl.train.config import ConfigError

    selected = {claim.id for claim in claims}
    of: dict[tuple[str, str], str | None] = {}
    runs: dict[str, dict[str, Any]] = {}
    for claim in grid.claims:
        for name, cell in claim.cells.items():
            if cell.start:
                of[(claim.id, name)] = None
                continue
            fields = _fields(grid, claim, name, cfg)
            try:
                job = _job(cfg, fields, "MODEL", "DATA", "OUT", seed=0)
            except ConfigError as exc:
                raise GridError(f"claim {claim.id}, cell {name}: its GRPO job is invalid: {exc}") from None
            identity = stable_hash({k: v for k, v in job_settings(job).items() if k != "seed"})
            key = f"{claim.id}.{name}"
            existing = next((k for k, r in runs.items() if r["identity"] == identity), None)
            if existing is None:
                runs[key] = {"identity": identity, "fields": fields, "cells": [(claim.id, name)]}
            else:
                key = existing
                runs[key]["cells"].append((claim.id, name))
            of[(claim.id, name)] = key
    of = {cell: key for cell, key in of.items() if cell[0] in selected}
    used = set(of.values())
    return of, {k: RunSpec(k, r["fields"], tuple(c for c in r["cells"] if c[0] in selected))
                for k, r in runs.items() if k in used}


def _job(cfg: DemoConfig, fields: dict[str, Any], model: str, dataset: str, output_dir: str, seed: int) -> Any:
    from spatialrl.train.config import replace_job

    return replace_job(grpo_job(cfg, model, dataset, output_dir), **{**fields, "seed": seed})


# --------------------------------------------------------------------------------------
# The plan: everything a worker needs to run one cell
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Plan:
    """What ``plan.json`` holds: the sizing, the shared stages and every run's fields."""

    out: str
    config: dict[str, Any]
    data: dict[str, Any]       # {"path", "token", "name"}
    model: dict[str, Any]      # {"path", "token", "name"}
    eval_ids: list[str]
    sample_ids: list[str]
    sampling: dict[str, Any]
    runs: dict[str, dict[str, Any]]
    keep_models: bool = False

    def demo_config(self) -> DemoConfig:
        return DemoConfig(**self.config)

    def inputs(self) -> list[StageResult]:
        return [StageResult(x["name"], Path(x["path"]), x["token"], x["token"], {}, 0.0, True)
                for x in (self.data, self.model)]


def load_plan(out: str | Path) -> Plan:
    path = Path(out) / PLAN_FILE
    try:
        return Plan(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise GridError(f"{path}: not a plan written by spatialrl reproduce ({exc}); run spatialrl reproduce "
                        "with this --out first") from None


def _eval_items(plan: Plan) -> tuple[Any, list[Any], list[Any]]:
    from spatialrl.eval.benchmarks import get_benchmark

    benchmark = get_benchmark("world")
    by_id = {item.id: item for item in benchmark.load(plan.data["path"], split="test")}
    missing = [i for i in plan.eval_ids if i not in by_id]
    if missing:
        raise GridError(f"{plan.data['path']}: {len(missing)} evaluation items of the plan are not in its test split "
                        f"(e.g. {missing[0]}): the data changed; use a new --out")
    return benchmark, [by_id[i] for i in plan.eval_ids], [by_id[i] for i in plan.sample_ids]


def _evaluate(plan: Plan, model_dir: Path, tmp: Path, seed: int, log: Callable[[str], None]) -> tuple[dict, dict]:
    """Greedy scores and sampled scores of ``model_dir`` on the plan's items, written under ``tmp``."""
    import torch

    from spatialrl.demo import SAMPLES_FILE, sample_answers
    from spatialrl.eval.runner import run_benchmark

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per weight load and shard, for every cell
    cfg = plan.demo_config()
    benchmark, items, sample_items = _eval_items(plan)
    torch.set_num_threads(cfg.eval_threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = run_benchmark(str(model_dir), "cell", benchmark, items, tmp, max_new_tokens=cfg.eval_max_new_tokens,
                           batch_size=cfg.eval_batch_size, overwrite=True, device=device, dtype=torch.float32,
                           progress=False, log=lambda m: None)
    sampled = None
    if sample_items:
        sample_answers(model_dir, sample_items, benchmark, tmp / SAMPLES_FILE, {**plan.sampling, "seed": seed},
                       device=device)
        sampled = sampled_scores(benchmark, sample_items, tmp / SAMPLES_FILE)
    return result.scores, sampled


def run_cell(plan: Plan, key: str | None, seed: int, log: Callable[[str], None] = print,
             force: bool = False, reuse_only: bool = False) -> StageResult | None:
    """Run (or reuse) one cell at one seed: ``key`` a run of the plan, or None for the start
    checkpoint's evaluation. Returns the finished stage; its ``info`` holds the cell's metrics.
    ``reuse_only``: return the cell if it is finished, else None; run nothing, write nothing."""
    import datasets

    datasets.disable_progress_bars()  # a bar per dataset map, for every cell
    stages = Stages(Path(plan.out), log, force=force, tag="reproduce", order=())
    cfg = plan.demo_config()
    eval_settings = {"items": stable_hash(plan.eval_ids), "sample_items": stable_hash(plan.sample_ids),
                     "sampling": plan.sampling, "max_new_tokens": cfg.eval_max_new_tokens}
    if key is None:
        start_settings = {**eval_settings, "seed": seed}
        if reuse_only:
            return stages.finished("start", start_settings, plan.inputs())

        def evaluate_start(tmp: Path) -> dict[str, Any]:
            scores, sampled = _evaluate(plan, Path(plan.model["path"]), tmp, seed, log)
            return cell_metrics(scores, sampled, None, None, None)

        with cell_lock(Path(plan.out) / "start"):
            return stages.run("start", f"evaluating the start checkpoint {plan.model['path']}",
                              start_settings, plan.inputs(), evaluate_start)

    run = plan.runs[key]
    name = f"cells/{key}/seed-{seed}"
    job = _job(cfg, run["fields"], plan.model["path"], plan.data["path"], "OUT", seed)
    settings = {**job_settings(job), "eval": eval_settings}
    if reuse_only:
        return stages.finished(name, settings, plan.inputs())

    def train_and_evaluate(tmp: Path) -> dict[str, Any]:
        from spatialrl.train.config import replace_job
        from spatialrl.train.grpo import train_grpo

        grpo_dir = tmp / "grpo"
        summary = train_grpo(replace_job(job, output_dir=str(grpo_dir)), log=lambda m: None,
                             progress=progress_callback(key, lambda m: None, []))
        scores, sampled = _evaluate(plan, grpo_dir / "final", tmp / "eval", seed, log)
        rows = [json.loads(line) for line in (grpo_dir / "log_history.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        diagnostics_path = grpo_dir / "diagnostics.json"
        diagnostics = json.loads(diagnostics_path.read_text(encoding="utf-8")) if diagnostics_path.is_file() else None
        if not plan.keep_models:
            for path in grpo_dir.rglob("*"):
                if path.name in MODEL_FILES:
                    path.unlink()
        info = cell_metrics(scores, sampled, rows, diagnostics, summary.get("seconds"))
        info["steps"] = summary.get("global_step")
        return info

    with cell_lock(Path(plan.out) / name):
        return stages.run(name, f"{key}, seed {seed}", settings, plan.inputs(), train_and_evaluate)


@contextlib.contextmanager
def cell_lock(final: Path) -> Iterator[None]:
    """Hold ``<final>.lock`` (an exclusive ``flock``) while a cell runs: a second process that
    reaches the same cell (a rerun beside the workers of a killed one) waits, then reuses the
    finished cell instead of deleting the other's work in progress."""
    import fcntl

    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------
# The whole command
# --------------------------------------------------------------------------------------


def _prepare(cfg: DemoConfig, out: Path, data_dir: str | None, model_dir: str | None,
             log: Callable[[str], None], force: bool) -> tuple[StageResult, StageResult]:
    """The shared dataset (built into ``out/data`` or given) and start checkpoint."""
    from spatialrl.data.build import BuildConfig

    stages = Stages(out, log, force=force, tag="reproduce", order=())
    if data_dir is not None:
        path = Path(data_dir)
        if not path.is_dir():
            raise GridError(f"--data {data_dir}: no such directory; give a dataset built by spatialrl data build "
                            "(with a test split: the evaluation set)")
        data = stages.external("data", path, "given")
        stages.header("data", f"using the given dataset {path}")
    else:
        build = BuildConfig(scenes=cfg.scenes, seed=cfg.data_seed, image_size=cfg.image_size,
                            test_fraction=cfg.test_fraction)

        def build_data(tmp: Path) -> dict[str, Any]:
            from spatialrl.data.build import build_dataset

            return {"rows": build_dataset(str(tmp), build, progress=True)["rows"]}

        data = stages.run("data", f"building {cfg.scenes} world scenes with mirror pairs (seed {cfg.data_seed})",
                          dataclasses.asdict(build), [], build_data)
    path = Path(model_dir) if model_dir else default_start()
    if not (path / "config.json").is_file():
        raise GridError(f"--model {path}: no config.json there; give a checkpoint directory (save_pretrained)")
    model = stages.external("model", path, "given" if model_dir else "default")
    stages.header("model", f"start checkpoint {path}")
    return data, model


def default_start() -> Path:
    """The default start: the shipped every-type, 1,200-step pretraining (a start with room to
    improve, docs/reproduce.md), else the shipped demo model."""
    room = shipped_model_dir().parent / "tiny-spatial-vlm-start"
    return room if (room / "config.json").is_file() else shipped_model_dir()


def _log_path(out: Path, key: str | None, seed: int) -> Path:
    return out / "logs" / f"{key or 'start'}.seed-{seed}.log"


def _worker_command(out: Path, key: str | None, seed: int) -> list[str]:
    return [sys.executable, "-m", "spatialrl.reproduce.worker", str(out), key or "start", str(seed)]


def reproduce(grid: Grid, claims: Sequence[Claim], cfg: DemoConfig, seeds: Sequence[int], out: str | Path,
              jobs: int = 1, data_dir: str | None = None, model_dir: str | None = None, keep_models: bool = False,
              force: bool = False, log: Callable[[str], None] = print, progress: bool = True) -> dict[str, Any]:
    """Run every missing cell of ``claims`` at every seed; returns ``{(claim, cell): {seed: metrics}}``
    in a JSON-ready form (``cells``), the runs and the compute seconds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _only_run(out):
        return _reproduce(grid, claims, cfg, seeds, out, jobs, data_dir, model_dir, keep_models, force, log, progress)


@contextlib.contextmanager
def _only_run(out: Path) -> Iterator[None]:
    """One ``spatialrl reproduce`` per ``--out`` at a time (a second would rewrite plan.json
    under the first one's workers)."""
    import fcntl

    with open(out / ".reproduce.lock", "w", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GridError(f"another spatialrl reproduce is running in {out}: wait for it to finish, or give "
                            "another --out") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _reproduce(grid: Grid, claims: Sequence[Claim], cfg: DemoConfig, seeds: Sequence[int], out: Path, jobs: int,
               data_dir: str | None, model_dir: str | None, keep_models: bool, force: bool,
               log: Callable[[str], None], progress: bool) -> dict[str, Any]:
    cell_of, runs = cell_runs(grid, claims, cfg)
    data, model = _prepare(cfg, out, data_dir, model_dir, log, force)
    from spatialrl.eval.benchmarks import get_benchmark

    benchmark = get_benchmark("world")
    try:
        test_items = benchmark.load(str(data.path), split="test")
    except ValueError as exc:  # BenchmarkDataError: a missing split or a malformed row, named
        raise GridError(f"--data {data.path}: its test split (the evaluation set) cannot be read: {exc}") from None
    if not test_items:
        raise GridError(f"{data.path}: the dataset has no test split rows: the evaluation set is its test split")
    subset = eval_subset(test_items, cfg.eval_items, cfg.data_seed, benchmark.type_of)
    sample_subset = eval_subset(subset, cfg.sample_items, cfg.data_seed, benchmark.type_of) if cfg.sample_items else []
    example_job = _job(cfg, {}, str(model.path), str(data.path), "OUT", seeds[0])
    plan = Plan(out=str(out), config=dataclasses.asdict(cfg),
                data={"name": "data", "path": str(data.path), "token": data.token},
                model={"name": "model", "path": str(model.path), "token": model.token},
                eval_ids=[item.id for item in subset], sample_ids=[item.id for item in sample_subset],
                sampling={k: v for k, v in sampling_settings(cfg, example_job, sample_subset).items() if k != "seed"},
                runs={k: {"fields": r.fields, "cells": [list(c) for c in r.cells]} for k, r in runs.items()},
                keep_models=keep_models)
    from spatialrl._fs import write_text_atomic

    write_text_atomic(out / PLAN_FILE, json.dumps(dataclasses.asdict(plan), indent=1, default=str) + "\n")

    tasks: list[tuple[str | None, int]] = []
    if any(key is None for key in cell_of.values()):
        tasks.append((None, seeds[0]))
    tasks += [(key, seed) for seed in seeds for key in runs]
    log(f"[reproduce] {len(claims)} claim(s), {len(runs)} distinct run(s) x {len(seeds)} seed(s)"
        f"{' + the start evaluation' if tasks and tasks[0][0] is None else ''}: {len(tasks)} cell(s), "
        f"{jobs} at a time; out {out}")
    finished = _run_tasks(plan, tasks, jobs, log, force, progress)

    cells: dict[str, dict[str, Any]] = {}
    for (claim_id, name), key in cell_of.items():
        by_seed = {}
        for seed in seeds:
            result = finished.get((key, seeds[0] if key is None else seed))
            if result is not None:
                by_seed[str(seed)] = {**result.info, "seconds": round(result.seconds, 1)}
        cells[f"{claim_id}/{name}"] = {"run": key or "start", "seeds": by_seed}
    seconds = sum(r.seconds for r in finished.values())
    missing = len(tasks) - len(finished)
    return {"cells": cells, "runs": {k: dataclasses.asdict(r) for k, r in runs.items()}, "compute_seconds": seconds,
            "cells_total": len(tasks), "cells_missing": missing, "data": str(data.path), "model": str(model.path)}


def _run_tasks(plan: Plan, tasks: list[tuple[str | None, int]], jobs: int, log: Callable[[str], None],
               force: bool, progress: bool) -> dict[tuple[str | None, int], StageResult]:
    """Run the tasks (in-process with one job, else ``jobs`` workers); a failed cell is logged
    and left missing (the others go on), reported in the returned count."""
    from tqdm.auto import tqdm

    finished: dict[tuple[str | None, int], StageResult] = {}
    bar = tqdm(total=len(tasks), desc="cells", unit="cell", disable=not progress)
    failures: list[str] = []
    if jobs <= 1:
        for key, seed in tasks:
            try:
                finished[(key, seed)] = run_cell(plan, key, seed, log, force=force)
            except Exception:  # noqa: BLE001 - one failed cell is reported; the others go on
                log(traceback.format_exc().rstrip())
                failures.append(f"{key or 'start'} seed {seed} (the traceback is above)")
            bar.update(1)
    else:
        if not force:  # finished cells are read here, not by a worker process each
            for key, seed in tasks:
                done = run_cell(plan, key, seed, log, reuse_only=True)
                if done is not None:
                    finished[(key, seed)] = done
                    bar.update(1)
            tasks = [t for t in tasks if t not in finished]
            if finished:
                log(f"[reproduce] reusing {len(finished)} finished cell(s)")
        out = Path(plan.out)
        (out / "logs").mkdir(exist_ok=True)

        children: set[subprocess.Popen] = set()
        stopping = threading.Event()
        lock = threading.Lock()  # no worker starts once stopping is set

        def launch(key: str | None, seed: int) -> int:
            env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(plan.config["threads"])}
            command = _worker_command(out, key, seed) + (["--force"] if force else [])
            with lock:
                if stopping.is_set():
                    return -1
                with open(_log_path(out, key, seed), "a", encoding="utf-8") as fh:
                    child = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env)
                children.add(child)
            try:
                return child.wait()
            finally:
                with lock:
                    children.discard(child)

        start_first = [t for t in tasks if t[0] is None]
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            for group in (start_first, [t for t in tasks if t[0] is not None]):
                futures = {pool.submit(launch, key, seed): (key, seed) for key, seed in group}
                for future in as_completed(futures):
                    key, seed = futures[future]
                    code = future.result()
                    done = run_cell(plan, key, seed, lambda m: None, reuse_only=True) if code == 0 else None
                    if done is not None:
                        finished[(key, seed)] = done
                    else:
                        failures.append(f"{key or 'start'} seed {seed} (exit {code}; log: {_log_path(out, key, seed)})")
                    bar.update(1)
        except BaseException:
            # Ctrl-C or an error: start no further worker, stop the ones running (their cells
            # stay unfinished and are redone next time), then let the interrupt through
            with lock:
                stopping.set()
                running = list(children)
            pool.shutdown(wait=False, cancel_futures=True)
            for child in running:
                child.terminate()
            for child in running:
                child.wait()
            raise
        pool.shutdown(wait=True)
    bar.close()
    for failure in failures:
        log(f"[reproduce] FAILED: {failure}")
    return finished
