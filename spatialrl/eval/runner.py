"""``spatialrl eval run``: generate a model's answers to a benchmark, resumably, then score them.

For each model (a checkpoint directory: the tiny model or a real Qwen2.5-VL-class checkpoint):

1. the benchmark's items (``get_benchmark(name).load(data)``, the first ``--limit``);
2. ``OUT/<model>/predictions.jsonl`` is read if it exists (a torn last line left by a killed run
   is cut first); items already there are not generated again;
3. the rest are generated in batches by the chosen backend (``--backend``): one user message
   per item (one image placeholder per image, then ``benchmark.prompt(item, variant)``)
   through the processor's chat template, greedy decoding, ``--max-new-tokens``; ``hf`` (the
   default, any device: :func:`spatialrl.models.generate.generate_batch`, left padding) or
   ``vllm`` (GPU: :mod:`spatialrl.eval.vllm_backend`, the same prompt strings and images, vLLM
   imported only then); each finished item is appended to
   the predictions file at once (one JSON line, flushed), so an interrupted run loses at most
   the batch in flight;
4. the file is scored with the benchmark's official rules (``score_predictions``) and
   ``OUT/<model>/scores.json`` is written atomically.

Video benchmarks (VSI-Bench): ``--num-frames N`` (default: the benchmark's ``num_frames``, 32
for ``vsibench``, the paper's setting) is passed to ``benchmark.load``, whose items then carry
:class:`spatialrl.data.video.VideoFrames`; each batch's frames are decoded with PyAV as the
batch is built (``spatialrl.data.video``), and reach the model as N images per item.

Pixel budget: images are resized to ``--min-pixels`` / ``--max-pixels``, by default the budget
saved with the model's processor (``spatialrl.models.published.processor_pixels``; the trainers
save the processor with the recipe's budget into every checkpoint, so a checkpoint is evaluated
at its training budget), else Qwen2.5-VL's defaults. The HF backend sets it on the processor,
the vLLM backend passes it as ``mm_processor_kwargs``.

``OUT/<model>/run.json`` records the settings that determine the predictions (model path,
benchmark, prompt variant, max new tokens, backend, pixel budget, and for videos the frame
count and sampling rule); resuming with different ones is refused rather than mixing two runs
in one file (``--overwrite`` starts again). A ``run.json`` written before the backend and
budget were recorded is read as ``hf`` at the model's saved budget, which is what it used.

Several models (``--model a b``, or globs such as ``'runs/x/checkpoint-*'``) score a checkpoint
sweep (SVQA-R1 appendix F): checkpoints of one run are ordered by step number, each gets its
own directory, and ``OUT/sweep.json`` summarises model -> overall score.

The run prints one line per model, ``<model>: resuming: D of N done, generating K`` (``D`` is 0
on a fresh start), before generating.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatialrl.models.generate import generate_batch
from spatialrl.models.pixels import PixelBudget

HELP = "run models on a benchmark (batched greedy generation, resumable), write predictions and scores"

__all__ = [
    "HELP",
    "BACKENDS",
    "ModelRun",
    "add_arguments",
    "expand_models",
    "model_names",
    "resolve_budget",
    "run",
    "run_benchmark",
    "step_number",
]

PREDICTIONS_FILE = "predictions.jsonl"
SCORES_FILE = "scores.json"
RUN_FILE = "run.json"
SWEEP_FILE = "sweep.json"

#: Generation backends of ``--backend``: ``hf`` (transformers, any device, the default), ``vllm`` (GPU).
BACKENDS = ("hf", "vllm")
#: ``--batch-size`` when none is given: vLLM schedules its own batches, so it gets more at a time.
DEFAULT_BATCH_SIZE = {"hf": 8, "vllm": 64}

_GLOB_CHARS = re.compile(r"[*?\[]")
_STEP = re.compile(r"(?:checkpoint|step|global_step|iter)[-_]?(\d+)$", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# Models: expansion, ordering, names
# --------------------------------------------------------------------------------------


def step_number(path: str | Path) -> int | None:
    """The training step a checkpoint directory's name carries (``checkpoint-500`` -> 500), else None."""
    match = _STEP.search(Path(path).name)
    return int(match.group(1)) if match else None


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def expand_models(specs: Sequence[str]) -> list[str]:
    """Paths from ``--model`` arguments, duplicates dropped. A glob expands to its directories
    in natural order (``x-2`` before ``x-10``). Then, where every model of one parent directory
    carries a step number (``checkpoint-500``), those are ordered by step (so a shell-expanded,
    lexicographic ``checkpoint-*`` comes out right), parents in order of first appearance;
    otherwise the order given is kept. Raises ``ValueError`` for a glob without a match."""
    paths: list[str] = []
    for spec in specs:
        if _GLOB_CHARS.search(spec):
            matches = sorted((m for m in glob.glob(spec) if os.path.isdir(m)), key=_natural_key)
            if not matches:
                raise ValueError(f"--model {spec!r} matches no directory")
            paths.extend(matches)
        else:
            paths.append(spec)
    unique = list(dict.fromkeys(os.path.normpath(p) for p in paths))
    parents: dict[str, list[str]] = {}
    for path in unique:
        parents.setdefault(os.path.dirname(os.path.abspath(path)), []).append(path)
    if not all(step_number(p) is not None for group in parents.values() for p in group if len(group) > 1):
        return unique
    ordered: list[str] = []
    for group in parents.values():
        ordered.extend(sorted(group, key=lambda p: step_number(p)))
    return ordered


def model_names(paths: Sequence[str]) -> list[str]:
    """Directory names for the models' outputs: each path's last component, or as many
    trailing components (joined with ``__``) as make the names unique."""
    parts = [Path(os.path.abspath(p)).parts for p in paths]
    depth = 1
    while True:
        names = ["__".join(p[-depth:]).lstrip("/") or "model" for p in parts]
        if len(set(names)) == len(names) or depth >= max((len(p) for p in parts), default=1):
            return names
        depth += 1


# --------------------------------------------------------------------------------------
# One model on one benchmark
# --------------------------------------------------------------------------------------


@dataclass
class ModelRun:
    """What :func:`run_benchmark` did for one model."""

    name: str
    path: str
    out_dir: Path
    total: int
    done_before: int
    generated: int
    repaired_torn_line: bool
    scores: dict[str, Any]


def resolve_budget(model_path: str, min_pixels: int | None = None, max_pixels: int | None = None) -> PixelBudget:
    """The pixel budget a run of ``model_path`` uses: ``min_pixels`` / ``max_pixels`` where
    given, else the model's saved processor's (``processor_pixels``), else Qwen2.5-VL's
    defaults (:class:`PixelBudget`). Raises ``ValueError`` for an impossible budget."""
    from spatialrl.models.published import processor_pixels

    saved = processor_pixels(model_path) or {}
    default = PixelBudget()
    try:
        return PixelBudget(int(min_pixels if min_pixels is not None else saved.get("min_pixels", default.min_pixels)),
                           int(max_pixels if max_pixels is not None else saved.get("max_pixels", default.max_pixels)))
    except ValueError as exc:
        raise ValueError(f"{model_path}: pixel budget: {exc} (--min-pixels / --max-pixels; the model's saved "
                         f"processor has {saved or 'none'})") from None


def _settings(model_path: str, benchmark: str, variant: str, max_new_tokens: int,
              video: dict[str, Any] | None = None, backend: str = "hf",
              budget: PixelBudget | None = None) -> dict[str, Any]:
    budget = budget or PixelBudget()
    return {
        "model": os.path.abspath(model_path),
        "benchmark": benchmark,
        "prompt_variant": variant,
        "max_new_tokens": int(max_new_tokens),
        "backend": backend,
        "min_pixels": budget.min_pixels,
        "max_pixels": budget.max_pixels,
        **(video or {}),
    }


def _video_settings(items: Sequence[Any]) -> dict[str, Any]:
    """How video items' frames are chosen (``num_frames``, ``frame_sampling``); {} without videos.
    Part of the settings: predictions made from 8 frames must not be resumed with 32."""
    from spatialrl.data.video import VideoFrames

    counts = sorted({item.images.num_frames for item in items if isinstance(item.images, VideoFrames)})
    if not counts:
        return {}
    return {"num_frames": counts[0] if len(counts) == 1 else counts, "frame_sampling": VideoFrames.sampling}


def _check_settings(out_dir: Path, settings: dict[str, Any], legacy: dict[str, Any] | None = None) -> None:
    """Refuse to resume ``out_dir`` when its ``run.json`` differs from ``settings``, then write
    them. ``legacy`` gives the values an older ``run.json`` that lacks a key was made with."""
    import json

    from spatialrl.eval.predictions import write_json_atomic

    path = out_dir / RUN_FILE
    if path.exists() and (out_dir / PREDICTIONS_FILE).exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            old = {**(legacy or {}), **old}
            diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
            if diff:
                detail = "; ".join(f"{k}: {a!r} before, {b!r} now" for k, (a, b) in diff.items())
                budget = ""
                if "min_pixels" in diff or "max_pixels" in diff:
                    budget = (f"pixel budget mismatch: the predictions there were made with min_pixels="
                              f"{old.get('min_pixels')}, max_pixels={old.get('max_pixels')} but this run uses "
                              f"min_pixels={settings['min_pixels']}, max_pixels={settings['max_pixels']} (the same "
                              "image would become a different number of image tokens); to resume, pass "
                              f"--min-pixels {old.get('min_pixels')} --max-pixels {old.get('max_pixels')}. ")
                raise ValueError(
                    f"{budget}{out_dir} holds predictions made with other settings ({detail}); "
                    "choose another --out, or pass --overwrite to start this model again"
                )
    write_json_atomic(path, settings)


class _HFGenerator:
    """The ``hf`` backend: transformers ``generate`` (:func:`generate_batch`) on ``device``."""

    def __init__(self, model_path: str, *, budget: PixelBudget, device: str | None = None, dtype: Any = None,
                 attn_implementation: str | None = None) -> None:
        from spatialrl.models import load_model_and_processor

        self.model, self.processor = load_model_and_processor(
            model_path, dtype=dtype, device=device, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels,
            attn_implementation=attn_implementation)

    def generate(self, texts: Sequence[str], images: Sequence[Sequence[Any]], max_new_tokens: int) -> list[str]:
        return generate_batch(self.model, self.processor, texts, images, max_new_tokens)

    def close(self) -> None:
        self.model = None


def _generator(backend: str, model_path: str, budget: PixelBudget, items: Sequence[Any], *, device: str | None,
               dtype: Any, attn_implementation: str | None, vllm_options: dict[str, Any] | None) -> Any:
    if backend == "hf":
        return _HFGenerator(model_path, budget=budget, device=device, dtype=dtype,
                            attn_implementation=attn_implementation)
    if backend == "vllm":
        from spatialrl.eval.vllm_backend import VLLMGenerator  # imports vllm: only on request

        # The most images one item has, over all items (not only those left): the engine's limit
        # must not depend on how far an interrupted run got.
        max_images = max((len(item.images) for item in items), default=0)
        return VLLMGenerator(model_path, budget=budget, max_images=max_images, **(vllm_options or {}))
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_benchmark(
    model_path: str,
    name: str,
    benchmark: Any,
    items: Sequence[Any],
    out_dir: str | Path,
    *,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    prompt_variant: str = "default",
    overwrite: bool = False,
    device: str | None = None,
    dtype: Any = None,
    progress: bool = True,
    log: Any = print,
    backend: str = "hf",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    attn_implementation: str | None = None,
    vllm_options: dict[str, Any] | None = None,
) -> ModelRun:
    """Generate the missing predictions of ``model_path`` on ``items``, append them to
    ``out_dir/predictions.jsonl``, score and write ``out_dir/scores.json``.

    ``backend`` is ``"hf"`` (``device``, ``dtype`` as a torch dtype, ``attn_implementation``)
    or ``"vllm"`` (``vllm_options``: ``dtype`` as a string, ``max_model_len``, ``seed``,
    ``tensor_parallel_size``, ``gpu_memory_utilization``). ``min_pixels`` / ``max_pixels``
    override the model's saved pixel budget (:func:`resolve_budget`); the budget used is
    recorded in ``run.json`` and ``scores.json``."""
    from tqdm.auto import tqdm

    from spatialrl.eval.benchmarks import score_predictions
    from spatialrl.eval.predictions import (
        append_prediction,
        read_predictions,
        repair_torn_tail,
        write_json_atomic,
    )

    from spatialrl.data.video import VideoFrames

    # A video item must come with its frames (VideoFrames, as vsibench's load(num_frames=N) gives).
    videos = [item.id for item in items if item.meta.get("video") and not isinstance(item.images, VideoFrames)]
    if videos:
        raise ValueError(
            f"{benchmark.name}: {len(videos)} items are videos without frames (e.g. {videos[0]!r}); `eval run` "
            "does not decode video paths itself: the benchmark's load must give spatialrl.data.video.VideoFrames "
            "(vsibench does with num_frames), or generate predictions elsewhere (e.g. lmms-eval) and score them "
            "with `spatialrl eval score`."
        )
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    budget = resolve_budget(model_path, min_pixels, max_pixels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred_path = out_dir / PREDICTIONS_FILE
    if overwrite:
        for stale in (PREDICTIONS_FILE, SCORES_FILE, RUN_FILE):
            (out_dir / stale).unlink(missing_ok=True)
    video = _video_settings(items)
    settings = _settings(model_path, benchmark.name, prompt_variant, max_new_tokens, video, backend, budget)
    # A run.json from before the backend and the budget were recorded: hf at the saved budget.
    saved = resolve_budget(model_path)
    _check_settings(out_dir, settings,
                    legacy={"backend": "hf", "min_pixels": saved.min_pixels, "max_pixels": saved.max_pixels})

    repaired = repair_torn_tail(pred_path)
    existing = read_predictions(pred_path, allow_torn_tail=True) if pred_path.exists() else {}
    todo = [item for item in items if item.id not in existing]
    # Items that share a video go together (a stable sort keeps every other order), so each video
    # is decoded once rather than once per question wherever the data file is not grouped by scene.
    todo.sort(key=lambda item: item.images.path if isinstance(item.images, VideoFrames) else "")
    done = len(items) - len(todo)
    if repaired:
        log(f"{name}: cut a torn last line from {pred_path} (a killed run's leftover); regenerating that item")
    log(f"{name}: resuming: {done} of {len(items)} done, generating {len(todo)}")

    if todo:
        generator = _generator(backend, model_path, budget, items, device=device, dtype=dtype,
                               attn_implementation=attn_implementation, vllm_options=vllm_options)
        bar = tqdm(total=len(items), initial=done, desc=name, unit="item", disable=not progress, dynamic_ncols=True)
        try:
            with open(pred_path, "a", encoding="utf-8") as fh:
                for batch in _batches(todo, batch_size):
                    texts = [benchmark.prompt(item, prompt_variant) for item in batch]
                    outputs = generator.generate(texts, [list(item.images) for item in batch], max_new_tokens)
                    for item, text in zip(batch, outputs, strict=True):
                        append_prediction(fh, item.id, text)
                    bar.update(len(batch))
        finally:
            bar.close()
            generator.close()

    predictions = read_predictions(pred_path) if pred_path.exists() else {}
    scores = score_predictions(benchmark, items, predictions, reasoning=True)
    scores["run"] = {**settings, "items": len(items), "generated_now": len(todo)}
    write_json_atomic(out_dir / SCORES_FILE, scores)
    return ModelRun(name=name, path=model_path, out_dir=out_dir, total=len(items), done_before=done,
                    generated=len(todo), repaired_torn_line=repaired, scores=scores)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, nargs="+", metavar="M",
                        help="checkpoint directory(ies); globs such as 'runs/x/checkpoint-*' (quoted) are expanded "
                             "and ordered by step; several models score a sweep and write OUT/sweep.json")
    parser.add_argument("--benchmark", required=True, help="benchmark name (see `spatialrl eval score --help`)")
    parser.add_argument("--data", required=True, help="path to the benchmark's files")
    parser.add_argument("--out", required=True,
                        help="output directory: OUT/<model>/predictions.jsonl, scores.json, run.json")
    parser.add_argument("--max-new-tokens", type=_positive, default=256, help="generation budget per item (default 256)")
    parser.add_argument("--batch-size", type=_positive, default=None,
                        help="items per generate call, also the most an interruption loses (default 8 with hf, "
                             "64 with vllm)")
    parser.add_argument("--prompt-variant", default="default",
                        help="prompt variant passed to the benchmark (its `prompt_variants`; default 'default')")
    parser.add_argument("--num-frames", type=_positive, default=None, metavar="N",
                        help="frames sampled uniformly from each video, for video benchmarks (vsibench; default: "
                             "the benchmark's, 32 for vsibench as in the VSI-Bench paper)")
    parser.add_argument("--limit", type=_positive, default=None, help="only the first N items of the benchmark")
    parser.add_argument("--backend", choices=BACKENDS, default="hf",
                        help="hf: transformers generate, any device (default); vllm: vLLM on a GPU (needs "
                             "`pip install vllm`; the same prompts, images and pixel budget)")
    for end in ("min", "max"):
        parser.add_argument(f"--{end}-pixels", type=_positive, default=None, metavar="N",
                            help=f"image processor's {end}_pixels (default: the model's saved processor's; a "
                                 "checkpoint of ours saves the training recipe's budget)")
    parser.add_argument("--device", default=None,
                        help="torch device, hf backend (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default="auto",
                        help="model dtype: auto (the checkpoint's), float32, bfloat16, float16")
    parser.add_argument("--attn-implementation", default=None, metavar="NAME",
                        help="hf backend: attention implementation passed to from_pretrained (sdpa, "
                             "flash_attention_2, eager; default transformers')")
    parser.add_argument("--max-model-len", type=_positive, default=None, metavar="N",
                        help="vllm backend: context length (prompt + image tokens + answer; default the model's)")
    parser.add_argument("--tensor-parallel-size", type=_positive, default=None, metavar="N",
                        help="vllm backend: GPUs the model is split over (default 1)")
    parser.add_argument("--gpu-memory-utilization", type=float, default=None, metavar="F",
                        help="vllm backend: fraction of GPU memory vLLM may take (default 0.9)")
    parser.add_argument("--seed", type=int, default=None,
                        help="vllm backend: engine seed (default 0; decoding is greedy)")
    parser.add_argument("--threads", type=_positive, default=None,
                        help="torch CPU threads (default: torch's choice; on a shared 2-core machine 1 is steadier)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard existing predictions in OUT/<model> instead of resuming")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a Python module or .py file first (e.g. one registering your own benchmark)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _import(spec: str) -> None:
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec).resolve()
        name = "_spatialrl_user_" + re.sub(r"\W", "_", path.stem)
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"--import {spec!r}: cannot import that file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        importlib.import_module(spec)


def _dtype(text: str) -> Any:
    if text == "auto":
        return None
    import torch

    value = getattr(torch, text, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"--dtype {text!r} is not a torch dtype (auto, float32, bfloat16, float16)")
    return value


#: The vLLM-only options (``--max-model-len`` ...: the ``vllm.LLM`` keyword of the same name) -> default.
_VLLM_FLAGS = {"max_model_len": None, "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9, "seed": 0}


def _backend_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``vllm_options`` for :func:`run_benchmark` (None with hf); a flag of the other backend
    is an error rather than silently ignored."""
    given = [name for name in _VLLM_FLAGS if getattr(args, name) is not None]
    if args.backend == "hf":
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} is an option of --backend vllm")
        return None
    if args.device is not None:
        raise ValueError("--device is an option of --backend hf; vLLM places the model itself "
                         "(choose GPUs with CUDA_VISIBLE_DEVICES, several with --tensor-parallel-size)")
    if args.attn_implementation is not None:
        raise ValueError("--attn-implementation is an option of --backend hf")
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise ValueError(f"--gpu-memory-utilization must be in (0, 1], got {args.gpu_memory_utilization}")
    options = {name: getattr(args, name) if getattr(args, name) is not None else default
               for name, default in _VLLM_FLAGS.items()}
    return {"dtype": args.dtype, **options}


def _load_options(benchmark: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``num_frames`` for a benchmark whose ``load`` takes it (videos); ``--num-frames`` elsewhere is an error."""
    import inspect

    if "num_frames" in inspect.signature(benchmark.load).parameters:
        default = getattr(benchmark, "num_frames", None)
        return {"num_frames": args.num_frames if args.num_frames is not None else default}
    if args.num_frames is not None:
        raise ValueError(f"--num-frames: {benchmark.name} has no videos")
    return {}


def run(args: argparse.Namespace) -> int:
    from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark
    from spatialrl.eval.predictions import PredictionsError, write_json_atomic

    try:
        for spec in args.imports:
            _import(spec)
        benchmark = get_benchmark(args.benchmark)
        if args.prompt_variant not in benchmark.prompt_variants:
            raise ValueError(f"{benchmark.name}: unknown prompt variant {args.prompt_variant!r}; "
                             f"choose from {', '.join(benchmark.prompt_variants)}")
        paths = expand_models(args.model)
        missing = [p for p in paths if not os.path.isdir(p)]
        if missing:
            raise ValueError(f"model directory not found: {', '.join(missing)}")
        items = benchmark.load(args.data, **_load_options(benchmark, args))
        if args.limit is not None:
            items = items[: args.limit]
        vllm_options = _backend_options(args)
        dtype = _dtype(args.dtype)  # checked for both; vLLM takes the name
        if args.backend == "vllm":
            dtype = None
    except (BenchmarkDataError, ValueError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    device = None
    if args.backend == "hf":
        import torch

        if args.threads is not None:
            torch.set_num_threads(args.threads)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE[args.backend]
    out = Path(args.out)
    results: list[ModelRun] = []
    for path, name in zip(paths, model_names(paths)):
        try:
            result = run_benchmark(
                path, name, benchmark, items, out / name,
                max_new_tokens=args.max_new_tokens, batch_size=batch_size,
                prompt_variant=args.prompt_variant, overwrite=args.overwrite,
                device=device, dtype=dtype, progress=not args.no_progress,
                log=lambda msg: print(msg, flush=True), backend=args.backend,
                min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                attn_implementation=args.attn_implementation, vllm_options=vllm_options,
            )
        except (PredictionsError, ValueError, ImportError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        results.append(result)
        report = result.scores
        print(f"{name}: {benchmark.name} overall {report['overall']:.2f}"
              + (f" (lenient {report['overall_lenient']:.2f})" if "overall_lenient" in report else "")
              + f" on {report['counts']['items']} items -> {result.out_dir / SCORES_FILE}", flush=True)

    if len(results) > 1:
        sweep = {
            "benchmark": benchmark.name,
            "prompt_variant": args.prompt_variant,
            "overall": {r.name: r.scores["overall"] for r in results},
            "models": [
                {
                    "name": r.name,
                    "path": os.path.abspath(r.path),
                    "step": step_number(r.path),
                    "overall": r.scores["overall"],
                    **({"overall_lenient": r.scores["overall_lenient"]} if "overall_lenient" in r.scores else {}),
                    "per_type": r.scores["per_type"],
                }
                for r in results
            ],
        }
        best = max(results, key=lambda r: r.scores["overall"])
        sweep["best"] = {"name": best.name, "overall": best.scores["overall"]}
        write_json_atomic(out / SWEEP_FILE, sweep)
        print(f"sweep: best {best.name} ({best.scores['overall']:.2f}) -> {out / SWEEP_FILE}", flush=True)
    return 0
