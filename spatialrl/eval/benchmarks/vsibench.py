"""VSI-Bench (Yang et al. 2025, "Thinking in Space"), scored with the official rules.

Official code: vision-x-nyu/thinking-in-space @ 51e089c3ae69b9435e9489058610f5b3964c56a8,
``lmms_eval/tasks/vsibench/utils.py`` (last changed in c26ba543) and ``vsibench.yaml``, read for
this module. The same task ships in EvolvingLMMs-Lab/lmms-eval, identical in its scoring up to
20e1c96d; since eab6655a (2026) lmms-eval reads numerical answers with ``extract_number`` (the
first number or number words anywhere in the reply), which the authors' repository does not --
we follow the authors' repository. Every rule below is a re-implementation of a named function
there (docs/benchmarks.md lists them):

- Data: the HF dataset ``nyu-visionx/VSI-Bench`` (``test-00000-of-00001.parquet``; a JSON Lines
  export works too): ``id``, ``dataset``, ``scene_name``, ``question_type``, ``question``,
  ``ground_truth`` (a string), ``options`` (multiple choice only). The video is
  ``<dataset>/<scene_name>.mp4`` under the directory you downloaded (``vsibench_doc_to_visual``;
  the zips ``arkitscenes.zip``, ``scannet.zip``, ``scannetpp.zip`` unpacked there). Scoring
  never opens it: ``load(path)`` puts the path in ``EvalItem.images``.
- Frames (for ``spatialrl eval run``): ``load(path, num_frames=N)`` checks that every video
  exists (the official ``vsibench_doc_to_visual`` raises for a missing one) and gives each
  item a lazily decoded :class:`spatialrl.data.video.VideoFrames`: N frames at the official
  indices ``np.linspace(0, total - 1, N, dtype=int)`` (``llava_onevision.py::load_video``),
  decoded with PyAV when the runner builds the batch. N = 32 (:data:`NUM_FRAMES`) is the
  paper's setting (``evaluate_all_in_one.sh``: ``num_frames=32``); the frames reach the model
  as N images after one another, under the pre-prompt below.
- Prompt (``vsibench_doc_to_text``): pre-prompt ``"These are frames of a video."`` (the yaml's
  empty ``pre_prompt`` falls back to it), then the question; numerical questions end with the
  ``na_post_prompt``, multiple-choice ones with ``"Options:\\n" + options`` and the
  ``mca_post_prompt``. Variants ``default`` and ``gpt4v`` / ``gemini_api`` (whose numerical
  post-prompt is ``"Do not response anything other than a single number!"``, typo included),
  plus ``think`` (the SVQA-R1 thinking instruction instead of the post-prompt).
- Extraction (``fuzzy_matching``): the text up to the first space, trailing dots removed.
  Multiple choice: case-insensitive equality with the ground-truth letter (``exact_match``), so
  ``"A or B"`` counts as ``A``. Numerical: Python ``float()`` of that token (``to_float``); a
  failure is ``None``, which makes the metric raise ``TypeError`` and score the worst case 0.
- Metric (``mean_relative_accuracy``): share of the 10 thresholds ``linspace(.5, .95, 10)`` with
  ``|pred - gt| / gt <= 1 - theta`` (``spatialrl.eval.metrics.mean_relative_accuracy``).
- Aggregation (``vsibench_aggregate_results``): mean per question type; the three relative
  direction levels are averaged (each level's mean, not pooled) into ``object_rel_direction``;
  ``overall`` is the mean over the resulting 8 types.

Deviations (documented, each affects only cases where the official code crashes):

- ``gt = 0`` on a numerical question: the official division raises ``ZeroDivisionError``, which
  ``vsibench_process_results`` does not catch (the whole evaluation stops). We score 0 there
  (our metric's rule) and list the ids under ``metrics.gt_zero_ids``.
- A subset with only some relative-direction levels: the official aggregate pops all three and
  raises ``KeyError``; we average the levels present, and leave ``object_rel_direction`` out
  when none is present. On the full benchmark all three are present and the results are
  identical.

``per_type`` lists the 10 official question types (the three levels separately, as the official
per-item records do); the 8-column table of the paper, with ``object_rel_direction``, is under
``metrics.official_table``. ``lenient`` scores use ``spatialrl.answers``: the ``<answer>``
block (or the whole text), ``parse_choice`` on the options, ``parse_quantity`` with units
(counts; meters; square meters; object sizes in centimeters, the unit of the questions).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from spatialrl.answers import parse_quantity
from spatialrl.eval.benchmarks._benchmark_files import (
    LETTERS,
    THINK_INSTRUCTION,
    Record,
    check_unique_ids,
    find_data_files,
    lenient_choice,
    lenient_text,
    read_all,
)
from spatialrl.eval.benchmarks.base import Benchmark, EvalItem, ItemScore, register_benchmark
from spatialrl.eval.metrics import mean_relative_accuracy
from spatialrl.data.video import VideoFrames

MCA_QUESTION_TYPES = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
NA_QUESTION_TYPES = (
    "object_abs_distance",
    "object_counting",
    "object_size_estimation",
    "room_size_estimation",
)
REL_DIRECTION_LEVELS = MCA_QUESTION_TYPES[:3]
REL_DIRECTION = "object_rel_direction"

#: Frames per video in the paper's evaluation (thinking-in-space ``evaluate_all_in_one.sh``:
#: ``num_frames=32``, passed as ``max_frames_num`` to the open models).
NUM_FRAMES = 32

PRE_PROMPT = "These are frames of a video."
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."
NA_POST_PROMPTS = {
    "default": "Please answer the question using a single word or phrase.",
    "gpt4v": "Do not response anything other than a single number!",
    "gemini_api": "Do not response anything other than a single number!",
}

# Lenient parsing of numerical answers: (dimension, default unit, factor from SI to the gt's unit).
_NA_UNITS = {
    "object_counting": ("count", None, 1.0),
    "object_abs_distance": ("length", "m", 1.0),
    "object_size_estimation": ("length", "cm", 100.0),  # questions ask for centimeters
    "room_size_estimation": ("area", "m^2", 1.0),
}


def fuzzy_matching(pred: str) -> str:
    """Official ``fuzzy_matching``: the text before the first space, trailing dots stripped."""
    return pred.split(" ")[0].rstrip(".").strip()


def official_number(pred: str) -> float | None:
    """Official ``to_float(fuzzy_matching(pred))``: Python ``float()`` or ``None``."""
    try:
        return float(fuzzy_matching(pred))
    except (ValueError, TypeError, OverflowError):
        return None


@register_benchmark
class VSIBench(Benchmark):
    """VSI-Bench with the official lmms-eval task rules (see the module docstring)."""

    name = "vsibench"
    source = "vision-x-nyu/thinking-in-space: lmms_eval/tasks/vsibench/utils.py, vsibench.yaml"
    prompt_variants = ("default", "gpt4v", "gemini_api", "think")

    # -- data -------------------------------------------------------------------------

    #: ``spatialrl eval run`` passes ``num_frames`` to ``load`` (``--num-frames``, this default).
    num_frames = NUM_FRAMES

    def load(self, path: str | Path, *, with_images: bool = True, num_frames: int | None = None) -> list[EvalItem]:
        """Read the VSI-Bench test file (parquet / JSON Lines / JSON) or the downloaded directory.

        Args:
            path: the file, or the directory holding it and the unzipped videos
                (``<dataset>/<scene_name>.mp4``).
            with_images: False never touches the videos (as ``num_frames=None``).
            num_frames: None (default): ``images`` holds the video path, for scoring. N: each
                video must exist (else ``BenchmarkDataError`` naming it), and ``images`` is the
                item's N frames at the official indices, decoded when first iterated.
        """
        if num_frames is not None and (isinstance(num_frames, bool) or int(num_frames) < 1):
            raise ValueError(f"{self.name}: num_frames must be >= 1, got {num_frames!r}")
        frames = int(num_frames) if with_images and num_frames is not None else None
        files = find_data_files(
            path,
            ("test-*.parquet", "test.parquet", "test.jsonl", "*.parquet", "*.jsonl", "*.json"),
            "VSI-Bench test file (test-00000-of-00001.parquet)",
        )
        root = Path(path) if Path(path).is_dir() else Path(path).parent
        columns = ("id", "dataset", "scene_name", "question_type", "question", "ground_truth", "options")
        records = read_all(files, columns)
        exists: dict[Path, bool] = {}  # ~18 questions share each scene's video: stat it once
        items = [self._item(rec, root, frames, exists) for rec in records]
        check_unique_ids(items, records, "id")
        return items

    def _item(self, rec: Record, root: Path, num_frames: int | None = None,
              exists: dict[Path, bool] | None = None) -> EvalItem:
        item_id = rec.ident("id")
        qtype = rec.text("question_type")
        if qtype not in MCA_QUESTION_TYPES and qtype not in NA_QUESTION_TYPES:
            raise rec.error("question_type", f"is {qtype!r}, not a VSI-Bench question type "
                                             f"({', '.join(MCA_QUESTION_TYPES + NA_QUESTION_TYPES)})")
        question = rec.text("question")
        gt_raw = rec.require("ground_truth")
        gt = str(gt_raw).strip() if isinstance(gt_raw, (str, int, float)) and not isinstance(gt_raw, bool) else None
        if not gt:
            raise rec.error("ground_truth", "must be a non-empty string")
        options: list[str] = []
        if qtype in MCA_QUESTION_TYPES:
            options = rec.string_list("options")
        else:
            try:
                value = float(gt)
            except ValueError:
                raise rec.error("ground_truth", f"is {gt!r}, not a number (question type {qtype})") from None
            if not math.isfinite(value):
                raise rec.error("ground_truth", f"is {gt!r}, not a finite number")
        images: Any = []
        dataset, scene = rec.get("dataset"), rec.get("scene_name")
        if num_frames is not None:
            # The official doc_to_visual fails on a missing video; so do we, before any model loads.
            video = root / rec.text("dataset") / f"{rec.text('scene_name')}.mp4"
            if exists is None:
                exists = {}
            if video not in exists:
                exists[video] = video.is_file()
            if not exists[video]:
                raise rec.error("scene_name", f"names the video {video}, which does not exist (unzip "
                                              "arkitscenes.zip, scannet.zip and scannetpp.zip from "
                                              f"nyu-visionx/VSI-Bench into {root})")
            images = VideoFrames(video, num_frames, item_id)
        elif isinstance(dataset, str) and isinstance(scene, str) and dataset and scene:
            images = [str(root / dataset / f"{scene}.mp4")]
        item = EvalItem(
            id=item_id,
            question_type=qtype,
            prompt="",
            answer=gt,
            images=images,
            options=options,
            meta={"question": question, "dataset": dataset, "scene_name": scene, "video": True},
        )
        item.prompt = self.prompt(item)
        return item

    # -- prompt -----------------------------------------------------------------------

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        question = item.meta["question"]
        if item.question_type in NA_QUESTION_TYPES:
            if variant == "think":
                return f"{PRE_PROMPT}\n{question} {THINK_INSTRUCTION}"
            return f"{PRE_PROMPT}\n{question}\n{NA_POST_PROMPTS[variant]}"
        options = "Options:\n" + "\n".join(item.options)
        if variant == "think":
            return "\n".join([PRE_PROMPT, question, options]) + " " + THINK_INSTRUCTION
        return "\n".join([PRE_PROMPT, question, options, MCA_POST_PROMPT])

    # -- scoring ----------------------------------------------------------------------

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        if prediction is None:
            return ItemScore(score=0.0, lenient=0.0, parsed=None)
        if item.question_type in MCA_QUESTION_TYPES:
            parsed = fuzzy_matching(prediction)
            score = 1.0 if parsed.lower() == str(item.answer).lower() else 0.0
            idx = lenient_choice(prediction, item.options)
            lenient = 1.0 if idx is not None and LETTERS[idx].lower() == str(item.answer).strip().lower() else 0.0
            return ItemScore(score=score, lenient=lenient, parsed=parsed)
        gt = float(item.answer)
        value = official_number(prediction)
        score = float(mean_relative_accuracy(value, gt))
        dimension, unit, factor = _NA_UNITS[item.question_type]
        body = lenient_text(prediction)
        mine = None if body is None else parse_quantity(body, dimension, default_unit=unit)
        lenient = float(mean_relative_accuracy(None if mine is None else mine * factor, gt))
        return ItemScore(score=score, lenient=lenient, parsed=value)

    def aggregate(self, per_type: Mapping[str, float], counts: Mapping[str, int]) -> float:
        table = _official_table(per_type)
        return sum(table.values()) / len(table) if table else 0.0

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        official: dict[str, list[float]] = {}
        lenient: dict[str, list[float]] = {}
        gt_zero: list[str] = []
        unparsed = 0
        for item, text in zip(items, texts):
            result = self.score_item(item, text)
            official.setdefault(item.question_type, []).append(result.score)
            lenient.setdefault(item.question_type, []).append(float(result.lenient or 0.0))
            if item.question_type in NA_QUESTION_TYPES:
                if float(item.answer) == 0.0:
                    gt_zero.append(item.id)
                if result.parsed is None:
                    unparsed += 1
        table = _official_table({k: sum(v) / len(v) for k, v in official.items()})
        table_lenient = _official_table({k: sum(v) / len(v) for k, v in lenient.items()})
        out: dict[str, Any] = {
            "official_table": {k: 100.0 * v for k, v in table.items()},
            "official_table_lenient": {k: 100.0 * v for k, v in table_lenient.items()},
            "numerical_unparsed": unparsed,
        }
        if gt_zero:
            out["gt_zero_ids"] = gt_zero
        return out


def _official_table(per_type: Mapping[str, float]) -> dict[str, float]:
    """The official output: per-type means with the relative-direction levels averaged into one."""
    table = {k: v for k, v in per_type.items() if k not in REL_DIRECTION_LEVELS}
    levels = [per_type[k] for k in REL_DIRECTION_LEVELS if k in per_type]
    if levels:
        table[REL_DIRECTION] = sum(levels) / len(levels)
    return table
