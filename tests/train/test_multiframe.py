"""Multi-frame rows (``image`` null, ``frames`` a list of K images) train and evaluate.

A small dataset in the published layout (``data/{split}-*.parquet``) holds one mirror pair of
single-image rows of the world build and one pair turned into K-frame rows. ``spatialrl sft``
and ``spatialrl train`` take one step on it with the tiny model, ``spatialrl eval run
--benchmark world`` scores it; each time a spy on the language model's forward pass reads
what the model was given: a multi-frame row must arrive with K images, and each row's image
tokens must be exactly its images' tokens.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

K = 3  # frames of a multi-frame row
FRAME = 56  # px: the tiny processor's smallest image, 4 image tokens


def _frames(png: bytes) -> list[bytes]:
    """K distinct FRAME x FRAME PNGs cut from one picture (so that the K images differ)."""
    from PIL import Image

    from spatialrl.data.schema import encode_png

    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    step = (w - h // 2) // (K - 1)
    return [encode_png(image.crop((k * step, 0, k * step + h // 2, h // 2)).resize((FRAME, FRAME))) for k in range(K)]


@pytest.fixture(scope="module")
def multiframe_dir(world_dataset_dir, tmp_path_factory):
    """Two pairs per split: the first pair of the world build as is (one image per row), the
    second with its image replaced by K frames (``image`` null)."""
    import datasets

    from spatialrl.data.schema import features, validate_row

    rows = pq.read_table(min((Path(world_dataset_dir) / "data").glob("train-*.parquet"))).to_pylist()
    pairs: dict[str, list[dict]] = {}
    for row in rows:
        pairs.setdefault(row["pair_id"], []).append(row)
    single, multi = [p for p in pairs.values() if len(p) == 2][:2]
    for row in multi:
        row["frames"] = [{"bytes": b, "path": None} for b in _frames(row["image"]["bytes"])]
        row["image"] = None
    out = tmp_path_factory.mktemp("multiframe") / "data"
    (out / "data").mkdir(parents=True)
    for row in single + multi:
        validate_row(row)
    for split in ("train", "test"):
        datasets.Dataset.from_list(single + multi, features=features()).to_parquet(
            str(out / "data" / f"{split}-00000-of-00001.parquet"))
    return out


@pytest.fixture
def model_inputs(monkeypatch):
    """Every forward pass of the language model that carries images: ``(input_ids, tokens per
    image)``, the images listed row by row. Training passes ``pixel_values`` and
    ``image_grid_thw``; generation encodes the images first and passes ``mm_encoder_outputs``
    (one embedding per image, one row per image token)."""
    from transformers import Qwen2_5_VLModel

    seen: list[tuple] = []
    forward = Qwen2_5_VLModel.forward

    def spy(self, *args, **kwargs):
        input_ids, encoded = kwargs.get("input_ids"), (kwargs.get("mm_encoder_outputs") or {}).get("image")
        if input_ids is not None and kwargs.get("pixel_values") is not None:
            merge = self.config.vision_config.spatial_merge_size
            seen.append((input_ids.clone(), (kwargs["image_grid_thw"].prod(dim=-1) // merge**2).tolist()))
        elif input_ids is not None and encoded is not None:
            seen.append((input_ids.clone(), [int(e.shape[0]) for e in encoded.pooler_output]))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(Qwen2_5_VLModel, "forward", spy)
    return seen


def _images_per_row(seen, model_dir) -> list[int]:
    """The number of images of each row the model saw; every row's image tokens are checked to
    be exactly those of its own images."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    counts = []
    for input_ids, tokens_per_image in seen:
        at = 0
        for ids in input_ids:
            n = int((ids == config.vision_start_token_id).sum())
            assert int((ids == config.image_token_id).sum()) == sum(tokens_per_image[at:at + n])
            at += n
            counts.append(n)
        assert at == len(tokens_per_image), "every image of the batch belongs to one row"
    return counts


def test_the_fixture_has_both_kinds_of_rows(multiframe_dir):
    from spatialrl.data.load import load_split
    from spatialrl.data.schema import row_images

    ds = load_split(multiframe_dir, "train")
    assert sorted(len(row_images(r)) for r in ds) == [1, 1, K, K]


def test_training_examples_hold_one_placeholder_per_image(multiframe_dir, tiny_model_dir):
    """SFT and GRPO see the same prompt: K placeholders and K images for a multi-frame row."""
    from spatialrl.train import sft
    from spatialrl.train.config import make_job
    from spatialrl.train.grpo import prepare_dataset

    grpo_job = make_job("grpo", model=tiny_model_dir, dataset=str(multiframe_dir), output_dir="o", mirror_pairs=True,
                        num_generations=2)
    grpo, pairs = prepare_dataset(grpo_job.spatial, log=lambda *_: None, seed=grpo_job.trl.seed)
    # the mirror pairs survive the image conversion: each pair is an original and its twin
    assert pairs and all(grpo[a]["pair_id"] == grpo[b]["pair_id"] and {grpo[a]["view"], grpo[b]["view"]}
                         == {"original", "mirror"} for a, b in pairs)
    sft_job = make_job("sft", model=tiny_model_dir, dataset=str(multiframe_dir), output_dir="o")
    sft_set = sft.build_sft_dataset(sft_job.spatial, seed=sft_job.trl.seed)
    for ds in (grpo, sft_set):
        assert "images" in ds.column_names and "image" not in ds.column_names and "frames" not in ds.column_names
        counts = []
        for row in ds:
            (user,) = row["prompt"]
            slots = [part for part in user["content"] if part["type"] == "image"]
            assert len(slots) == len(row["images"]) and user["content"][-1]["type"] == "text"
            counts.append(len(row["images"]))
        assert sorted(counts) == [1, 1, K, K]
    frames = [row["images"] for row in grpo if len(row["images"]) == K][0]
    assert [im.size for im in frames] == [(FRAME, FRAME)] * K


def test_sft_trains_a_step_on_multiframe_rows(multiframe_dir, tiny_model_dir, tmp_path, model_inputs):
    from spatialrl.cli import main

    config = Path(__file__).resolve().parents[2] / "configs" / "sft_demo.yaml"
    out = tmp_path / "sft"
    assert main(["sft", "--config", str(config), f"model={tiny_model_dir}", f"dataset={multiframe_dir}",
                 f"output_dir={out}", "max_steps=1", "per_device_train_batch_size=4", "logging_steps=1",
                 "save_steps=1000", "torch_threads=1", "use_cpu=true"]) == 0
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert [e["step"] for e in history if "loss" in e] == [1]
    assert sorted(_images_per_row(model_inputs, tiny_model_dir)) == [1, 1, K, K], "one batch of all four rows"


def test_grpo_trains_a_step_on_a_batch_mixing_image_counts(multiframe_dir, tiny_model_dir, tmp_path, model_inputs):
    from spatialrl.cli import main

    config = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    out = tmp_path / "grpo"
    assert main(["train", "--config", str(config), f"model={tiny_model_dir}", f"dataset={multiframe_dir}",
                 f"output_dir={out}", "max_steps=1", "num_generations=2", "per_device_train_batch_size=8",
                 "max_completion_length=4", "logging_steps=1", "save_steps=1000", "torch_threads=1",
                 "use_cpu=true"]) == 0
    assert (out / "final" / "config.json").is_file()
    (record,) = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert len(record["prompts"]) == 4, "both pairs in the one generation batch"
    counts = _images_per_row(model_inputs, tiny_model_dir)
    # generation, then the policy's (and the reference's) log-prob passes: each sees 2 + 2 rows x 2 generations
    assert counts and counts.count(K) == counts.count(1) > 0 and set(counts) == {1, K}


def test_eval_run_scores_multiframe_items(multiframe_dir, tiny_model_dir, tmp_path, model_inputs):
    from spatialrl.cli import main
    from spatialrl.eval.benchmarks import get_benchmark

    items = get_benchmark("world").load(multiframe_dir)
    assert sorted(len(it.images) for it in items) == [1, 1, K, K]
    out = tmp_path / "eval"
    assert main(["eval", "run", "--model", tiny_model_dir, "--benchmark", "world", "--data", str(multiframe_dir),
                 "--out", str(out), "--batch-size", "4", "--max-new-tokens", "4", "--no-progress"]) == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(it.id for it in items)
    scores = json.loads((run / "scores.json").read_text())
    assert scores["counts"]["items"] == 4 and scores["counts"]["missing"] == 0
    assert sorted(_images_per_row(model_inputs, tiny_model_dir)) == [1, 1, K, K]


def test_exports_carry_every_frame(multiframe_dir):
    from spatialrl.data.export import trl_row, verl_row

    rows = pq.read_table(multiframe_dir / "data" / "train-00000-of-00001.parquet").to_pylist()
    for row in rows:
        n = len(row["frames"]) or 1
        stored = [f["bytes"] for f in row["frames"]] or [row["image"]["bytes"]]
        trl = trl_row(row)
        content = trl["prompt"][0]["content"]
        assert [part["type"] for part in content] == ["image"] * n + ["text"]
        assert [im["bytes"] for im in trl["images"]] == stored
        verl = verl_row(row, "train", 0)
        text = verl["prompt"][0]["content"]
        assert len(re.findall("<image>", text)) == n and text.startswith("<image>" * n + row["question"])
        assert [im["bytes"] for im in verl["images"]] == stored
