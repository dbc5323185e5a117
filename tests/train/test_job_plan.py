"""The plan read from a job: image tokens measured on the built data under the job's pixel
budget, prompt tokens from the model's own tokenizer, and a plan that prints."""

from __future__ import annotations

from pathlib import Path

from spatialrl.train.config import load_config
from spatialrl.train.job_plan import measure_data, plan_inputs, plan_text

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_the_plan_measures_the_built_data_under_the_budget(world_dataset_dir, tiny_model_dir):
    from spatialrl.models.pixels import PixelBudget

    job = load_config(CONFIGS / "demo.yaml", [f"model={tiny_model_dir}", f"dataset={world_dataset_dir}"])
    measured = measure_data(world_dataset_dir, "train", PixelBudget(3136, 12544))
    assert measured is not None and measured["image_tokens_max"] == 16 and measured["rows"] > 0
    # a larger budget leaves the stored 112 px images unchanged: the same 16 tokens
    assert measure_data(world_dataset_dir, "train", PixelBudget(3136, 200704))["image_tokens_max"] == 16
    inputs, notes = plan_inputs(job)
    assert inputs.image_tokens_per_sample == 16
    assert any("over the first" in n and str(world_dataset_dir) in n for n in notes)
    assert any("the model's tokenizer" in n for n in notes)
    text = plan_text(job)
    assert "image tokens per sample" in text and "peak per GPU" in text
    assert measure_data(str(Path(world_dataset_dir) / "nope"), "train", None) is None
