"""The spatialrl reward manager, estimators and launcher config against verl 0.9.1 itself."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import spatialrl.integrations.verl as V
from spatialrl.advantages import absolute, ap_grpo
from spatialrl.rewards.schedules import SharpnessSchedule

G = 4  # completions per prompt
T = 100  # total training steps


def _info(pair, view, answer_value):
    return {"answer_type": "numerical", "answer": f"{answer_value} m", "answer_value": answer_value,
            "dimension": "length", "unit": "m", "options": [], "answer_index": -1, "bbox": [],
            "pair_id": pair, "view": view, "id": f"{pair}-{view[0]}"}


def _batch(tokenizer, groups):
    """A DataProto as verl's trainer holds it after the rollout: groups of G completions per prompt."""
    from verl import DataProto

    texts, infos, uids = [], [], []
    for g, (info, completions) in enumerate(groups):
        texts += completions
        infos += [info] * len(completions)
        uids += [f"uid{g}"] * len(completions)
    prompt_len, resp_len = 5, max(len(t) for t in texts) + 3
    prompts = torch.ones(len(texts), prompt_len, dtype=torch.long) * ord("q")
    responses = torch.zeros(len(texts), resp_len, dtype=torch.long)
    mask = torch.zeros(len(texts), prompt_len + resp_len, dtype=torch.long)
    mask[:, :prompt_len] = 1
    for i, text in enumerate(texts):
        responses[i, : len(text)] = torch.tensor(tokenizer.encode(text))
        mask[i, prompt_len: prompt_len + len(text)] = 1
    data = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "attention_mask": mask,
                 "response_mask": mask[:, prompt_len:].clone()},
        non_tensors={"extra_info": np.array(infos, dtype=object), "uid": np.array(uids, dtype=object),
                     "data_source": np.array(["spatialrl"] * len(texts), dtype=object),
                     "reward_model": np.array([{"ground_truth": i["answer"]} for i in infos], dtype=object)},
    )
    return data, texts, infos


def _groups():
    right = "<think>a</think><answer>{} m</answer>"
    return [
        # pair p0: the original view is answered well, its mirror badly -> the original is penalised
        (_info("p0", "original", 2.0), [right.format(2.0), right.format(2.1), right.format(2.0), "2 m"]),
        (_info("p0", "mirror", 2.0), [right.format(4.0), right.format(2.0), "<answer>lots</answer>", right.format(3)]),
        # pair p1: equal views
        (_info("p1", "original", 1.5), [right.format(1.5), right.format(1.7), right.format(9), right.format(1.5)]),
        (_info("p1", "mirror", 1.5), [right.format(1.5), right.format(1.7), right.format(9), right.format(1.5)]),
    ]


def _manager(tokenizer, **settings):
    return V.SpatialRLRewardManager(OmegaConf.create({"spatialrl": settings}), tokenizer, None)


def test_registrations_on_import():
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    assert get_adv_estimator_fn("ap_grpo") is V.compute_ap_grpo_outcome_advantage
    assert get_adv_estimator_fn("absolute") is V.compute_absolute_outcome_advantage
    assert get_reward_manager_cls("spatialrl") is V.SpatialRLRewardManager


def test_reward_manager_schedule_pairs_and_token_rewards(char_tokenizer):
    data, texts, infos = _batch(char_tokenizer, _groups())
    manager = _manager(char_tokenizer)
    schedule = SharpnessSchedule.paper()
    lengths = data.batch["attention_mask"][:, 5:].sum(-1)
    previous = None
    for step in (1, 25, 50, 75, 100):
        data.meta_info.update(global_steps=step, total_steps=T)
        out = manager(data, return_dict=True)
        reward = out["reward_tensor"]
        assert out["metrics"]["sharpness/k"] == schedule(step - 1, T)
        # one reward per row, on its last valid response token
        nonzero = reward != 0
        assert (nonzero.sum(-1) <= 1).all()
        rows = torch.arange(len(texts))
        np.testing.assert_allclose(reward[rows, lengths - 1].numpy(), out["reward_extra_info"]["spatialrl_score"],
                                   rtol=1e-6, atol=1e-7)  # float32 tensor
        # the same rows without pairs: the TRL totals, compute_score's value
        plain = [V.compute_score("spatialrl", t, None, i, step=step - 1, total_steps=T) for t, i in zip(texts, infos)]
        scores = out["reward_extra_info"]["spatialrl_score"]
        np.testing.assert_allclose(scores[8:], plain[8:], rtol=0, atol=1e-12)  # p1: no gap, no penalty
        assert (scores[:4] < np.array(plain[:4]) - 1e-9).any()  # p0: the better (original) view is penalised
        np.testing.assert_allclose(scores[4:8], plain[4:8], rtol=0, atol=1e-12)
        assert out["metrics"]["consistency/pairs"] == 2.0
        r_hat = out["reward_extra_info"]["spatialrl_accuracy"]
        assert ((0 <= r_hat) & (r_hat <= 1)).all()
        if previous is not None:
            assert not np.allclose(previous, scores)  # k(t) moves the rewards
        previous = scores
    # without pairs in the settings the batch equals compute_score row by row
    off = _manager(char_tokenizer, consistency_reward=None)(data, return_dict=True)["reward_extra_info"]
    np.testing.assert_allclose(off["spatialrl_score"], [V.compute_score("spatialrl", t, None, i, step=T - 1,
                                                                        total_steps=T) for t, i in zip(texts, infos)])


def test_per_sample_stage_feeds_the_batch_stage(char_tokenizer):
    """run_single (verl's reward loop) returns the fixed-k reward and the k-free error; the batch
    stage reusing those fields equals the batch stage decoding the responses itself."""
    data, texts, infos = _batch(char_tokenizer, _groups())
    manager = _manager(char_tokenizer)
    results = [asyncio.run(manager.run_single(data[i:i + 1])) for i in range(len(texts))]
    for result, text, info in zip(results, texts, infos):
        assert result["reward_score"] == V.compute_score("spatialrl", text, None, info)
        assert set(result["reward_extra_info"]) == set(V.EXTRA_KEYS)
    data.meta_info.update(global_steps=60, total_steps=T)
    decoded = manager(data, return_dict=True)
    for key in ("spatialrl_error", "spatialrl_format"):
        data.non_tensor_batch[key] = np.array([r["reward_extra_info"][key] for r in results])
    reused = manager(data, return_dict=True)
    torch.testing.assert_close(decoded["reward_tensor"], reused["reward_tensor"])


@pytest.mark.parametrize("name", ["ap_grpo", "absolute"])
def test_estimator_through_verls_compute_advantage(char_tokenizer, name):
    """The driver-side path: the batch stage (as SpatialRLPPOTrainer runs it) then verl's own
    compute_advantage with our estimator; equal to spatialrl.advantages on the same numbers."""
    from verl.trainer.ppo.ray_trainer import compute_advantage

    data, texts, _ = _batch(char_tokenizer, _groups())
    data.batch["token_level_scores"] = torch.zeros_like(data.batch["responses"], dtype=torch.float32)
    data.batch["token_level_rewards"] = data.batch["token_level_scores"].clone()
    trainer = SimpleNamespace(global_steps=40, total_training_steps=T)
    V._rescore(trainer, _manager(char_tokenizer), data, name)
    assert V.ABS_REWARD_KEY in data.batch.keys()
    algorithm = OmegaConf.create({"adv_estimator": name, "spatialrl": {"alpha": 1.0, "clip": 1.5, "eps": 1e-6}})
    out = compute_advantage(data, adv_estimator=name, config=algorithm, num_repeat=G)
    scores = data.batch["token_level_rewards"].sum(-1).double().numpy()
    r_hat = data.batch[V.ABS_REWARD_KEY].double().numpy()
    uids = list(data.non_tensor_batch["uid"])
    expected = (ap_grpo(scores, r_hat, uids, alpha=1.0, clip=1.5, eps=1e-6) if name == "ap_grpo"
                else absolute(r_hat, uids, alpha=1.0, clip=1.5))
    mask = data.batch["response_mask"]
    adv = out.batch["advantages"]
    np.testing.assert_allclose((adv * mask).sum(-1).numpy() / mask.sum(-1).numpy(), expected, rtol=1e-6, atol=1e-7)
    assert ((adv != 0) <= (mask != 0)).all()  # advantages only on response tokens
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(scores, data.non_tensor_batch["spatialrl_score"], rtol=1e-6, atol=1e-7)


def test_estimator_refuses_a_missing_r_hat():
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    rewards = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="reward_baselines"):
        get_adv_estimator_fn("ap_grpo")(token_level_rewards=rewards, response_mask=torch.ones(4, 3),
                                        index=np.array(["a"] * 4, dtype=object), config=None)


def test_documented_overrides_compose_against_verls_config():
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    overrides = [
        "algorithm.adv_estimator=ap_grpo", "data.shuffle=true", "data.filter_overlong_prompts=false",
        "reward.reward_manager.source=importlib", "reward.reward_manager.module.path=pkg://spatialrl.integrations.verl",
        "reward.reward_manager.name=SpatialRLRewardManager", "+spatialrl.k_max=50.0",
        "+spatialrl.rewards={accuracy: 0.9, format: 0.1}", "+spatialrl.consistency_reward=accuracy",
        "+spatialrl.mirror_pairs=true", "+algorithm.spatialrl.alpha=1.0", "+algorithm.spatialrl.clip=1.5",
    ]
    config = V.compose_config(overrides)
    assert config.trainer.use_v1 is False
    assert V.settings_from(config).k_max == 50.0
    assert resolve_reward_manager_cls(config) is V.SpatialRLRewardManager
    registry = V.compose_config(["reward.reward_manager.name=spatialrl"])
    assert resolve_reward_manager_cls(registry) is V.SpatialRLRewardManager
    assert V._estimator_options(config.algorithm) == {"alpha": 1.0, "clip": 1.5, "eps": 1e-6}
    runner = V.task_runner_class()
    assert hasattr(runner, "remote")
