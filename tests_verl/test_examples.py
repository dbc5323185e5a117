"""examples/verl/: the launch script's overrides compose against verl 0.9.1's own config (the
launcher's compose_config), and what they set is what docs/verl.md promises."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import spatialrl.integrations.verl as V

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "verl" / "run_qwen2_5_vl_3b_smoothop.sh"


def script_overrides(data: str = "runs/data/x", model: str = "Qwen/Qwen2.5-VL-3B-Instruct") -> list[str]:
    """The script's `python -m spatialrl.integrations.verl` arguments, as the shell would pass them."""
    text = SCRIPT.read_text()
    command = text[text.index("python -m spatialrl.integrations.verl"):].split('"$@"')[0]
    command = command.replace("\\\n", " ").replace("$DATA", data).replace("$MODEL", model)
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "spatialrl.integrations.verl"]
    return words[3:]


def test_the_example_composes_and_sets_the_method():
    overrides = script_overrides()
    assert all(re.match(r"^\+?[a-z_][\w.]*=", o) for o in overrides), overrides
    config = V.compose_config(overrides)
    assert config.algorithm.adv_estimator == "ap_grpo" and config.trainer.use_v1 is False
    assert config.data.shuffle is True and config.data.train_batch_size % 2 == 0, "whole pairs per batch"
    assert config.actor_rollout_ref.rollout.name == "vllm" and config.actor_rollout_ref.rollout.n == 8
    assert config.actor_rollout_ref.actor.optim.lr == 1e-6 and config.actor_rollout_ref.actor.kl_loss_coef == 0.02
    assert dict(config.data.mm_processor_kwargs) == {"min_pixels": 3136, "max_pixels": 401408}
    settings = V.settings_from(config)
    assert (settings.sharpness_kind, settings.k_min, settings.k_max) == ("sigmoid", 1.0, 100.0)
    assert settings.rewards == {"accuracy": 0.9, "format": 0.1} and settings.consistency_reward == "accuracy"
    assert settings.mirror_pairs
    assert V._estimator_options(config.algorithm) == {"alpha": 1.0, "clip": 1.5, "eps": 1e-6}
    assert config.trainer.n_gpus_per_node == 8
    assert config.actor_rollout_ref.rollout.limit_images == 16, "vLLM takes a scene-level row's 16 frames"
