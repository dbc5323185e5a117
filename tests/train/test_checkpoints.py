"""Checkpoint weights are restored strictly (transformers' own resume path skips Qwen2.5-VL's renamed keys)."""

import pytest
import torch
from safetensors.torch import load_file

from spatialrl.models import load_model_and_processor
from spatialrl.train.checkpoints import load_checkpoint_weights


def test_restores_every_weight_and_the_plain_path_would_not(tiny_model_dir, tmp_path):
    model, _ = load_model_and_processor(tiny_model_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.save_pretrained(tmp_path / "ckpt")
    fresh, _ = load_model_and_processor(tiny_model_dir)
    # what transformers' Trainer does on resume: a non-strict load of the saved file matches nothing
    result = fresh.load_state_dict(load_file(str(tmp_path / "ckpt" / "model.safetensors")), strict=False)
    assert result.unexpected_keys and result.missing_keys
    load_checkpoint_weights(fresh, str(tmp_path / "ckpt"))
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_checkpoint_of_another_model_is_an_error(tiny_model_dir, tmp_path):
    from spatialrl.models.tiny import build_tiny_model

    build_tiny_model(tmp_path / "small", size="small", seed=0, corpus_scenes=5)
    model, _ = load_model_and_processor(tiny_model_dir)
    with pytest.raises((RuntimeError, ValueError)):
        load_checkpoint_weights(model, str(tmp_path / "small"))


def _complete(path, step):
    """What the Trainer leaves in a finished checkpoint, as far as completeness is judged."""
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    (path / "trainer_state.json").write_text(f'{{"global_step": {step}}}')


def test_resume_skips_an_empty_or_truncated_newest_checkpoint(tmp_path):
    from spatialrl.train.grpo import last_checkpoint

    _complete(tmp_path / "checkpoint-2", 2)
    (tmp_path / "checkpoint-4").mkdir()  # kill -9 right after the folder was made
    _complete(tmp_path / "checkpoint-6", 6)
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # killed while writing the state
    _complete(tmp_path / "checkpoint-8", 8)
    (tmp_path / "checkpoint-8" / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors"}}')  # killed between the shards
    lines = []
    assert last_checkpoint(tmp_path, log=lines.append) == str(tmp_path / "checkpoint-2")
    assert [line.split(":")[1].strip() for line in lines] == [
        f"skipping {tmp_path / name}" for name in ("checkpoint-8", "checkpoint-6", "checkpoint-4")]
    assert "missing" in lines[0] and "trainer_state.json is unreadable" in lines[1] and "no trainer_state" in lines[2]
    assert last_checkpoint(tmp_path / "nothing-here", log=lines.append) is None


def _grpo_config(model, dataset, out, max_steps):
    from spatialrl.train.config import load_config

    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    return load_config(repo / "configs" / "demo.yaml", [
        f"model={model}", f"dataset={dataset}", f"output_dir={out}", f"max_steps={max_steps}", "save_steps=1",
        "save_total_limit=null", "num_generations=4", "per_device_train_batch_size=8", "max_completion_length=8",
        "logging_steps=1"])


def test_a_save_killed_half_way_leaves_no_checkpoint_and_resume_uses_the_last_complete_one(
        tiny_model_dir, world_dataset_dir, tmp_path, monkeypatch):
    from transformers import Trainer

    from spatialrl.train.grpo import train_grpo

    out = tmp_path / "run"
    save_rng_state = Trainer._save_rng_state

    def killed_at_step_2(self, output_dir):  # the process dies after the weights, before the RNG and state files
        if self.state.global_step == 2:
            raise KeyboardInterrupt("killed while saving")
        return save_rng_state(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", killed_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train_grpo(_grpo_config(tiny_model_dir, world_dataset_dir, out, 3), log=lambda *_: None)
    monkeypatch.setattr(Trainer, "_save_rng_state", save_rng_state)
    assert (out / "checkpoint-1" / "trainer_state.json").is_file()
    assert not (out / "checkpoint-2").exists()  # written under a staging name, renamed only when complete
    (out / "checkpoint-3").mkdir()  # and a checkpoint a non-atomic save (several processes) left empty
    lines = []
    summary = train_grpo(_grpo_config(tiny_model_dir, world_dataset_dir, out, 3), resume=True, log=lines.append)
    assert summary["resumed_from"] == str(out / "checkpoint-1")
    assert any("skipping" in line and "checkpoint-3" in line for line in lines)
    assert any("ignoring" in line and ".checkpoint-staging" in line for line in lines)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert (out / "checkpoint-3" / "trainer_state.json").is_file()  # the empty one was replaced by a real save
    assert not (out / ".checkpoint-staging").exists()
