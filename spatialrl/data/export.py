"""Export dataset rows to the trainers' formats: TRL (one node), verl and EasyR1 (many nodes).

Both keep ``pair_id`` (and ``view``) so that Spatial-GRPO (SVQA-R1 eq. 2-4) can pair an
original with its mirrored twin, and both prompt with :func:`spatialrl.prompts.prompt_text`:
the question, then the answer-format instruction of SVQA-R1 Table 9 ("Original" prompt).
Writing a dataset in a format is
``spatialrl data build --format`` (``--from DIR`` converts a built one;
:func:`spatialrl.data.build.convert_dataset` in Python).

TRL (``GRPOTrainer``, trl 1.16)
    ``prompt``: conversational, one user message whose content is one unfilled
    ``{"type": "image"}`` placeholder per image of the row, then ``{"type": "text", "text":
    question + instruction}``; ``images``: the row's images in order
    (:func:`spatialrl.data.schema.row_images`: the one picture of a single-image row, the K
    frames of a multi-frame row). TRL fills the placeholders from ``images``, the one column that
    holds several images per example. ``image`` and ``frames`` are left out: TRL 1.16's SFT
    collator (``DataCollatorForVisionLanguageModeling._collate_prompt_completion``) replaces
    ``images`` with ``[image]`` whenever an ``image`` column exists, which would hand a
    multi-frame row ``[None]``. Every other column of :mod:`spatialrl.data.schema` is kept as
    is: TRL passes all non-prompt columns to reward functions as keyword arguments
    (``answer_type``, ``answer``, ``answer_value``, ``dimension``, ``options``,
    ``answer_index``, ``bbox``, ``pair_id`` ...).

verl (``RLHFDataset``, e.g. its ``examples/data_preprocess/geo3k.py`` layout)
    ``data_source`` (``"spatialrl"``), ``prompt`` (``[{"role": "user", "content":
    "<image>" * K + question + instruction}]``; verl splits the text at ``<image>`` and fills
    the K segments from ``images`` in order), ``images`` (the row's K images: the one PNG of a
    single-image row, the frames of a multi-frame one), ``ability`` (``"spatial"``), ``reward_model`` (``{"style":
    "rule", "ground_truth": answer}``), ``extra_info`` (split, index and every reward field);
    ``id``, ``pair_id``, ``view``, ``question_type``, ``answer_type`` are also top-level
    columns, so they reach a custom reward manager in ``non_tensor_batch``.

EasyR1 (``verl.utils.dataset.RLHFDataset`` of hiyouga/EasyR1, ``data.prompt_key=problem``,
``data.answer_key=answer``, ``data.image_key=images``)
    ``problem``: ``"<image>" * K + question + instruction`` as one string (EasyR1 splits it at
    ``<image>``; recipes set ``data.format_prompt=null`` because the instruction is already
    there), ``images`` (the row's K images), ``answer``: a JSON object as text holding the
    answer and every reward field (EasyR1 hands a reward function only ``response`` and this
    ``ground_truth``), so the reward can score, and pair an original with its mirror, from it
    alone. ``id``, ``pair_id``, ``view``, ``question_type`` are top-level columns too.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from spatialrl.data.schema import row_images
from spatialrl.prompts import prompt_text

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Features

__all__ = [
    "DATA_SOURCE",
    "FORMATS",
    "easyr1_row",
    "features_for",
    "transform",
    "trl_prompt",
    "trl_row",
    "verl_row",
    "with_trl_prompts",
]

FORMATS = ("hf", "trl", "verl", "easyr1")
DATA_SOURCE = "spatialrl"
ABILITY = "spatial"

#: Row fields copied into verl's ``extra_info`` (besides ``split`` and ``index``).
VERL_EXTRA = (
    "id", "pair_id", "view", "scene_id", "source", "question", "question_type", "answer_type",
    "answer", "answer_value", "dimension", "unit", "options", "answer_index", "bbox", "meta",
)  # fmt: skip


def trl_prompt(question: str, n_images: int = 1, separator: str | None = None) -> list[dict[str, Any]]:
    """TRL's conversational prompt: one user turn with ``n_images`` unfilled image placeholders
    (TRL fills them from ``images`` in order), then the question and the answer-format
    instruction (:func:`spatialrl.prompts.prompt_text`, joined by ``separator``)."""
    content: list[dict[str, Any]] = [{"type": "image", "text": None} for _ in range(n_images)]
    content.append({"type": "text", "text": prompt_text(question, separator)})
    return [{"role": "user", "content": content}]


def trl_row(row: dict[str, Any], separator: str | None = None) -> dict[str, Any]:
    """A dataset row in TRL's conversational vision format (see the module docstring)."""
    images = row_images(row)
    out: dict[str, Any] = {"prompt": trl_prompt(row["question"], len(images), separator)}
    out.update((k, v) for k, v in row.items() if k not in ("image", "frames"))
    out["images"] = images
    return out


def with_trl_prompts(ds: Any, separator: str | None = None) -> Any:
    """A ``datasets.Dataset`` of schema rows with TRL's ``prompt`` (one placeholder per image)
    and ``images`` (``List(Image())``, every image of a row) in place of ``image`` and
    ``frames``: what the SFT and GRPO trainers read, for single-image and multi-frame rows alike
    (a batch may mix them).

    The image columns are read undecoded, so the pictures are copied as bytes, never decoded
    and re-encoded; the trainers decode them when they fetch a batch."""
    from datasets import Image, List

    kinds = [c for c in ("image", "frames") if c in ds.column_names]
    if "image" in kinds:
        ds = ds.cast_column("image", Image(decode=False))
    if "frames" in kinds:
        ds = ds.cast_column("frames", List(Image(decode=False)))
    features = ds.features.copy()
    for c in kinds:
        del features[c]
    features["prompt"] = features_for("trl")["prompt"]
    features["images"] = List(Image())

    def convert(questions: list[str], *stored: list[Any]) -> dict[str, list[Any]]:
        images = [row_images(dict(zip(kinds, values))) for values in zip(*stored)] if kinds else [[] for _ in questions]
        return {"prompt": [trl_prompt(q, len(im), separator) for q, im in zip(questions, images)], "images": images}

    return ds.map(convert, input_columns=["question", *kinds], batched=True, remove_columns=kinds, features=features)


def verl_row(row: dict[str, Any], split: str, index: int) -> dict[str, Any]:
    """A dataset row in verl's RL parquet format (see the module docstring)."""
    extra = {"split": split, "index": int(index)}
    extra.update({k: row[k] for k in VERL_EXTRA})
    images = row_images(row)
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": "<image>" * len(images) + prompt_text(row["question"])}],
        "images": images,
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": row["answer"]},
        "extra_info": extra,
        "id": row["id"],
        "pair_id": row["pair_id"],
        "view": row["view"],
        "question_type": row["question_type"],
        "answer_type": row["answer_type"],
    }


#: Row fields in EasyR1's ``answer`` JSON: what the reward reads, and the pair it belongs to.
EASYR1_ANSWER = (
    "id", "pair_id", "view", "question_type", "answer_type", "answer", "answer_value", "dimension", "unit",
    "options", "answer_index", "bbox",
)  # fmt: skip


def easyr1_row(row: dict[str, Any]) -> dict[str, Any]:
    """A dataset row in EasyR1's RL layout (see the module docstring)."""
    import json

    images = row_images(row)
    truth = {k: row[k] for k in EASYR1_ANSWER}
    return {
        "problem": "<image>" * len(images) + prompt_text(row["question"]),
        "images": images,
        "answer": json.dumps(truth, ensure_ascii=False, sort_keys=True),
        "id": row["id"],
        "pair_id": row["pair_id"],
        "view": row["view"],
        "question_type": row["question_type"],
    }


@functools.cache
def features_for(fmt: str) -> Features:
    """``datasets.Features`` of the rows of format ``fmt`` (``hf``, ``trl``, ``verl`` or ``easyr1``)."""
    from datasets import Features, Image, List, Value

    from spatialrl.data.schema import features

    base = features()
    if fmt == "hf":
        return base
    if fmt == "trl":
        f = {"prompt": List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})})}
        f.update((k, v) for k, v in base.items() if k not in ("image", "frames"))
        f["images"] = List(Image())
        return Features(f)
    if fmt == "verl":
        extra = {"split": Value("string"), "index": Value("int64")}
        extra.update({k: base[k] for k in VERL_EXTRA})
        return Features(
            {
                "data_source": Value("string"),
                "prompt": List({"role": Value("string"), "content": Value("string")}),
                "images": List(Image()),
                "ability": Value("string"),
                "reward_model": {"style": Value("string"), "ground_truth": Value("string")},
                "extra_info": extra,
                "id": Value("string"),
                "pair_id": Value("string"),
                "view": Value("string"),
                "question_type": Value("string"),
                "answer_type": Value("string"),
            }
        )
    if fmt == "easyr1":
        return Features({"problem": Value("string"), "images": List(Image()), "answer": Value("string"),
                         "id": Value("string"), "pair_id": Value("string"), "view": Value("string"),
                         "question_type": Value("string")})
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def transform(rows: list[dict[str, Any]], fmt: str, split: str, start_index: int) -> list[dict[str, Any]]:
    """Rows of :mod:`spatialrl.data.schema` converted to ``fmt``; ``start_index`` numbers
    verl's ``extra_info.index`` within the split."""
    if fmt == "hf":
        return rows
    if fmt == "trl":
        return [trl_row(r) for r in rows]
    if fmt == "verl":
        return [verl_row(r, split, start_index + k) for k, r in enumerate(rows)]
    if fmt == "easyr1":
        return [easyr1_row(r) for r in rows]
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
