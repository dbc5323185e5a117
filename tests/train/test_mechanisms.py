"""spatialrl.train.mechanisms: the papers' mechanisms measured counterfactually on one batch,
and their log in a short SpatialGRPOTrainer run."""

import math

import numpy as np
import pytest
import torch

from spatialrl.rewards.snra import binary_reward, snra
from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages
from spatialrl.train.mechanisms import KEYS, PREFIX, errors_from_rewards, mechanism_metrics, summarise

NAMES, WEIGHTS = ["accuracy", "format"], [0.9, 0.1]


def _batch(errors, k, operator=snra):
    errors = np.asarray(errors, dtype=np.float64)
    rpf = np.stack([operator(errors, k), np.ones(len(errors))], axis=1)
    return rpf, (np.arange(len(errors)) // 4).tolist()


def test_binary_reward_leaves_near_miss_groups_silent_snra_does_not():
    # group 0: four near misses (all wrong by the binary rule, all different); group 1: one exactly right
    errors = [0.2, 0.3, 0.5, 1.0, 0.0, 0.5, 0.5, 0.5]
    rpf, groups = _batch(errors, k=1.0)
    m = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, AdvantageSettings(), errors=errors, k=1.0)
    assert m[PREFIX + "zero_var_frac_snra"] == 0.0
    assert m[PREFIX + "zero_var_frac_binary"] == 0.5  # group 0 has zero spread under the binary reward
    # equals the trained diagnostic, and the binary one equals training with the binary column
    trained = spatial_advantages(rpf, NAMES, WEIGHTS, groups, AdvantageSettings())
    assert m[PREFIX + "zero_var_frac_snra"] == trained.metrics["adv/zero_std_group_frac"]
    hard = np.stack([binary_reward(np.asarray(errors)), np.ones(8)], axis=1)
    assert m[PREFIX + "zero_var_frac_binary"] == spatial_advantages(
        hard, NAMES, WEIGHTS, groups, AdvantageSettings()).metrics["adv/zero_std_group_frac"]
    # a run trained with the binary operator: the same two numbers, SNRA recomputed at k
    b = mechanism_metrics(hard, NAMES, WEIGHTS, groups, AdvantageSettings(), errors=errors, k=1.0, operator="binary")
    assert b[PREFIX + "zero_var_frac_snra"] == 0.0 and b[PREFIX + "zero_var_frac_binary"] == 0.5
    # no errors: the zero-variance comparison is left out, the rest is there
    none = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, AdvantageSettings())
    assert PREFIX + "zero_var_frac_binary" not in none and PREFIX + "adv_variance_grpo" in none


def test_binary_counterfactual_keeps_rows_the_accuracy_does_not_score():
    errors = [0.2, 0.3, None, None]
    rpf, groups = _batch([0.2, 0.3, 0.0, 0.0], k=1.0)
    rpf[2:, 0] = np.nan  # accuracy does not apply; the format reward still scores these rows
    rpf[2:, 1] = [1.0, 0.0]
    m = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, AdvantageSettings(), errors=errors, k=1.0)
    assert m[PREFIX + "zero_var_frac_binary"] == 0.0  # the format reward still differs within the group


def test_near_miss_use_ap_grpo_silences_far_off_answers_grpo_does_not():
    # at k = 100 the far-off answer's r_hat underflows to ~1e-230: AP-GRPO's advantage r_hat * A vanishes
    errors = [0.0, 0.005, 0.02, 5.3]
    rpf, groups = _batch(errors, k=100.0)
    settings = AdvantageSettings(estimator="ap_grpo")
    m = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, settings, errors=errors, k=100.0)
    assert m[PREFIX + "near_miss_use_grpo"] == 1.0  # all three imperfect answers get A != 0
    assert m[PREFIX + "near_miss_use_ap_grpo"] == pytest.approx(2 / 3)
    # the trained estimator's value is the trainer's own diagnostic
    assert m[PREFIX + "near_miss_use_ap_grpo"] == spatial_advantages(rpf, NAMES, WEIGHTS, groups,
                                                                     settings).metrics["adv/near_miss_use"]
    # on the same rewards AP-GRPO's near-miss use never exceeds GRPO's, nor its advantage variance (c >= |A|)
    rng = np.random.default_rng(0)
    for _ in range(200):
        e = rng.choice([0.0, 0.001, 0.05, 0.3, 2.0, 5.3], size=16)
        rpf, groups = _batch(e, k=float(rng.choice([1.0, 20.0, 100.0])))
        m = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, AdvantageSettings(clip=None), errors=e, k=1.0)
        if PREFIX + "near_miss_use_grpo" in m:
            assert m[PREFIX + "near_miss_use_ap_grpo"] <= m[PREFIX + "near_miss_use_grpo"]
        assert m[PREFIX + "adv_variance_ap_grpo"] <= m[PREFIX + "adv_variance_grpo"] + 1e-12


def test_advantage_variance_is_sec_4_3_for_each_estimator():
    errors = [0.0, 0.1, 0.4, 1.0, 0.0, 0.0, 0.2, 3.0]
    rpf, groups = _batch(errors, k=2.0)
    m = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, AdvantageSettings(clip=None), errors=errors, k=2.0)
    total = rpf @ np.array(WEIGHTS)
    for name, scale in (("grpo", np.ones(8)), ("ap_grpo", rpf[:, 0])):
        a = []
        for g in range(2):
            r = total[4 * g:4 * g + 4]
            a.append((r - r.mean()) / (r.std(ddof=1) + 1e-6) * scale[4 * g:4 * g + 4])
        by_hand = np.mean([np.mean((x - x.mean()) ** 2) for x in a])  # 1/G sum (A_i - mean A)^2, mean over groups
        assert m[PREFIX + f"adv_variance_{name}"] == pytest.approx(by_hand, rel=1e-12)


def test_abs_delta_over_the_pairs_present():
    # pair p: original group 0, mirror group 1; pair q: only its original (group 2) is in the batch
    errors = [0.0, 0.1, 0.2, 0.3, 1.0, 1.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    rpf, groups = _batch(errors, k=1.0)
    pair_ids = ["p"] * 8 + ["q"] * 4
    is_mirror = [False] * 4 + [True] * 4 + [False] * 4
    expected = abs(rpf[:4, 0].mean() - rpf[4:8, 0].mean())
    for consistency in (None, "accuracy"):  # penalty off: on the accuracy; on: eq. 2's delta before the penalty
        m = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, AdvantageSettings(consistency_reward=consistency),
                              errors=errors, k=1.0, pair_ids=pair_ids, is_mirror=is_mirror)
        assert m[PREFIX + "abs_delta"] == pytest.approx(expected, rel=1e-12)
    m = mechanism_metrics(rpf, NAMES, WEIGHTS, groups, AdvantageSettings(), errors=errors, k=1.0,
                          pair_ids=[str(i // 4) for i in range(12)], is_mirror=[False] * 12)
    assert m[PREFIX + "abs_delta"] == 0.0  # no complete pair


@pytest.mark.parametrize("operator", ["sigmoid", "tanh"])
def test_inversion_is_exact(operator):
    e = np.concatenate([[0.0], np.logspace(-9, math.log10(5.3), 400)])
    for k in (1.0, 7.3, 100.0, 400.0):
        x = k * e if operator == "sigmoid" else 2 * k * e
        # exact r: snra is computed this way; 1 - tanh(x) equals it mathematically, but numpy's 1 - tanh(x)
        # loses the low bits of small r to cancellation (a property of the forward formula, not of the inversion)
        r = 2 * np.exp(-x) / (1 + np.exp(-x))
        if operator == "sigmoid":
            assert np.array_equal(r, snra(e, k))
        keep = r > 1e-12
        assert np.allclose(errors_from_rewards(r[keep], k, operator), e[keep], rtol=0, atol=1e-9)
    assert errors_from_rewards([0.0, np.nan, 1.0], 5.0).tolist()[0] == math.inf
    assert math.isnan(errors_from_rewards([np.nan], 5.0)[0])
    assert errors_from_rewards([1.0, 0.0], 5.0, "binary").tolist() == [0.0, math.inf]
    # the binary rule on recovered errors equals the binary rule on the true ones away from the boundary
    e = np.array([0.0, 0.004, 0.02, 1.0])
    assert binary_reward(errors_from_rewards(snra(e, 3.0), 3.0)).tolist() == binary_reward(e).tolist()
    with pytest.raises(ValueError, match="operator"):
        errors_from_rewards([0.5], 1.0, "relu")


def test_summarise_a_log_history():
    rows = []
    for s in (1, 2, 3):
        row = {"loss": 0.0, "step": s, "sharpness/k": float(s)}
        row.update({PREFIX + key: s / 10 for key in KEYS})
        rows.append(row)
    del rows[1][PREFIX + "near_miss_use_grpo"]  # a step without imperfect answers
    rows[2][PREFIX + "abs_delta"] = float("nan")
    rows.append({"eval_loss": 1.0, "eval_" + PREFIX + "abs_delta": 9.0, "step": 3})  # evaluation row: ignored
    rows.append({"train_runtime": 1.0, "step": 3})  # the trainer's final summary line
    out = summarise(rows)
    assert out["steps"] == [1, 2, 3] and out["k"] == [1.0, 2.0, 3.0]
    assert out["zero_var_frac"] == {"snra": [0.1, 0.2, 0.3], "binary": [0.1, 0.2, 0.3]}
    assert out["near_miss_use"]["grpo"] == [0.1, None, 0.3] and out["near_miss_use"]["ap_grpo"] == [0.1, 0.2, 0.3]
    assert out["adv_variance"] == {"ap_grpo": [0.1, 0.2, 0.3], "grpo": [0.1, 0.2, 0.3]}
    assert out["abs_delta"] == [0.1, 0.2, None]
    assert set(out["summary"]) == set(KEYS)
    assert out["summary"]["near_miss_use_grpo"] == pytest.approx(0.2)
    assert out["summary"]["abs_delta"] == pytest.approx(0.15)
    assert out["summary"]["zero_var_frac_snra"] == pytest.approx(0.2)
    import json

    json.dumps(out, allow_nan=False)  # strict JSON for metrics.json
    assert summarise([])["summary"]["abs_delta"] is None


def test_short_trainer_run_logs_the_mechanisms(tiny_model_dir, world_dataset_dir, tmp_path):
    from trl import GRPOConfig

    from spatialrl.models import load_model_and_processor
    from spatialrl.rewards.schedules import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward, format_reward_func
    from spatialrl.train.config import make_job
    from spatialrl.train.grpo import SpatialGRPOTrainer, prepare_dataset, vision_token_suppression

    torch.manual_seed(0)
    job = make_job("grpo", model=tiny_model_dir, dataset=world_dataset_dir, output_dir=str(tmp_path / "out"),
                   mirror_pairs=True, num_generations=4, per_device_train_batch_size=8)
    dataset, pairs = prepare_dataset(job.spatial, log=lambda *_: None, seed=job.trl.seed)
    model, processor = load_model_and_processor(tiny_model_dir)
    settings_ = AdvantageSettings(estimator="ap_grpo", consistency_reward="accuracy")
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_generations=4, max_steps=2,
                      max_completion_length=8, learning_rate=1e-4, beta=0.02, loss_type="grpo", use_cpu=True,
                      bf16=False, report_to="none", logging_steps=1, save_strategy="no", reward_weights=[0.9, 0.1],
                      seed=0, generation_kwargs=vision_token_suppression(model.config))
    accuracy = accuracy_reward(SharpnessSchedule("sigmoid", 1.0, 100.0))
    trainer = SpatialGRPOTrainer(model=model, reward_funcs=[accuracy, format_reward_func()], args=args,
                                 train_dataset=dataset, processing_class=processor, advantage_settings=settings_,
                                 pairs=pairs)
    trainer.train()
    rows = [h for h in trainer.state.log_history if "loss" in h]
    assert len(rows) == 2
    for row in rows:
        for key in ("zero_var_frac_snra", "zero_var_frac_binary", "adv_variance_ap_grpo", "adv_variance_grpo",
                    "abs_delta"):
            assert PREFIX + key in row, key
        # the trained estimator's counterfactual is the trainer's own diagnostic (one generation batch per step)
        assert row[PREFIX + "adv_variance_ap_grpo"] == pytest.approx(row["adv/variance"], abs=1e-12)
        assert row[PREFIX + "zero_var_frac_snra"] == pytest.approx(row["adv/zero_std_group_frac"], abs=1e-12)
        assert row[PREFIX + "abs_delta"] == pytest.approx(row["consistency/abs_delta"], abs=1e-12)
        if "adv/near_miss_use" in row:
            assert row[PREFIX + "near_miss_use_ap_grpo"] == pytest.approx(row["adv/near_miss_use"], abs=1e-12)
            assert PREFIX + "near_miss_use_grpo" in row
    # the errors the trainer used are the accuracy reward's own, whose binary rule is accuracy/correct
    assert accuracy.last_errors is not None and accuracy.last_k == pytest.approx(rows[-1]["sharpness/k"])
    block = summarise(trainer.state.log_history)
    assert block["steps"] == [1, 2] and all(v is not None for v in block["zero_var_frac"]["binary"])
