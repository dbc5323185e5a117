"""SpatialGRPOTrainer's public API: vision-token suppression for HF generate and vLLM, the guard
against TRL moving, the documented constructor, and the runnable example."""

import inspect
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from spatialrl.train.trainer import (
    SUPPORTED_TRL,
    SpatialGRPOTrainer,
    check_trl_compatibility,
    vision_token_suppression,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = str(REPO / "spatialrl" / "assets" / "tiny-spatial-vlm")


@pytest.fixture(scope="module")
def tiny():
    from spatialrl.models import load_model_and_processor

    return load_model_and_processor(SHIPPED)


def _vision_ids(processor):
    vocab = processor.tokenizer.get_vocab()
    return sorted(vocab[t] for t in ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                                     "<|video_pad|>"))


def test_hf_generate_gets_suppress_tokens(tiny):
    model, processor = tiny
    config_only = vision_token_suppression(model.config)
    assert config_only == {"suppress_tokens": sorted({model.config.image_token_id, model.config.video_token_id,
                                                      model.config.vision_start_token_id,
                                                      model.config.vision_end_token_id})}
    # with the tokenizer, <|vision_pad|> (in no config field) is forbidden too
    assert vision_token_suppression(model.config, processor) == {"suppress_tokens": _vision_ids(processor)}


def test_vllm_gets_logit_bias_that_survives_server_json(tiny):
    model, processor = tiny
    kwargs = vision_token_suppression(model.config, processor, use_vllm=True)
    assert set(kwargs) == {"logit_bias"}  # vLLM's SamplingParams has no suppress_tokens
    assert kwargs["logit_bias"] == {i: -100.0 for i in _vision_ids(processor)}
    # server mode: TRL posts the kwargs as JSON, so the keys arrive as strings; vLLM validates
    # sampling_params against ``logit_bias: dict[int, float]`` with pydantic, which converts them back
    from pydantic import TypeAdapter

    wire = json.loads(json.dumps(kwargs))
    assert all(isinstance(k, str) for k in wire["logit_bias"])
    assert TypeAdapter(dict[int, float]).validate_python(wire["logit_bias"]) == kwargs["logit_bias"]


def test_a_config_that_does_not_match_the_tokenizer_is_refused(tiny):
    model, processor = tiny
    wrong = types.SimpleNamespace(image_token_id=processor.tokenizer.convert_tokens_to_ids("a"))
    with pytest.raises(ValueError, match="do not belong together"):
        vision_token_suppression(wrong, processor)


def test_installed_trl_is_supported_and_passes_the_check():
    import trl
    from packaging.specifiers import SpecifierSet

    assert trl.__version__ in SpecifierSet(SUPPORTED_TRL)
    check_trl_compatibility()


def test_a_changed_private_signature_fails_with_a_clear_message(monkeypatch):
    import trl
    from trl import GRPOTrainer

    def _calculate_rewards(self, inputs, prompts, completions):  # a TRL release dropping an argument
        raise AssertionError("never called")

    monkeypatch.setattr(GRPOTrainer, "_calculate_rewards", _calculate_rewards)
    with pytest.raises(RuntimeError) as info:
        check_trl_compatibility()
    message = str(info.value)
    assert "GRPOTrainer._calculate_rewards(self, inputs, prompts, completions, completion_ids_list)" in message
    assert "found _calculate_rewards(self, inputs, prompts, completions)" in message
    assert f"installed trl {trl.__version__}" in message and SUPPORTED_TRL in message


def test_a_removed_method_and_a_missing_attribute_are_named(monkeypatch):
    from trl import GRPOTrainer

    monkeypatch.delattr(GRPOTrainer, "_generate_and_score_completions")
    with pytest.raises(RuntimeError, match=r"_generate_and_score_completions\(self, inputs\), found no such method"):
        check_trl_compatibility()
    monkeypatch.undo()
    # without TRL's override, transformers' own method (another signature) shows through
    monkeypatch.delattr(GRPOTrainer, "_get_train_sampler")
    with pytest.raises(RuntimeError, match=r"found _get_train_sampler\(self, train_dataset=None\)"):
        check_trl_compatibility()
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="reward_func_names"):
        check_trl_compatibility(types.SimpleNamespace())


def test_an_unsupported_version_with_matching_signatures_warns(monkeypatch):
    import trl

    monkeypatch.setattr(trl, "__version__", "1.17.0")
    with pytest.warns(UserWarning, match="installed trl 1.17.0"):
        check_trl_compatibility()


def test_every_constructor_argument_is_documented():
    documented = SpatialGRPOTrainer.__doc__
    ours = [name for name in inspect.signature(SpatialGRPOTrainer.__init__).parameters
            if name not in ("self", "args", "kwargs")]
    trl_args = ["model", "reward_funcs", "args", "train_dataset", "processing_class", "peft_config", "callbacks"]
    for name in ours + trl_args:
        assert f"    {name} (" in documented, name
    for metric in ("dynamic_sampling/dropped_groups", "dynamic_sampling/rounds", "dynamic_sampling/kept_zero_std_groups",
                   "adv/variance", "consistency/delta"):
        assert metric in documented


def test_the_example_trains_a_few_steps(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "examples" / "trainer_api.py"), "--steps", "2",
                           "--output-dir", str(tmp_path / "run")], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{\n"):])
    assert summary["steps"] == 2 and len(summary["reward"]) == 2 and summary["pairs"] > 0
    assert seconds < 60, seconds
