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
