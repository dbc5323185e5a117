"""EasyR1's reward function: the export's JSON answer is enough to score; without the penalty
the overall reward equals the TRL path's weighted total; with it, the TRL trainer's own
advantage step (spatial_advantages, penalty on accuracy) gives the same totals; EasyR1 can load
the shipped reward-function file by path."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest

from spatialrl.integrations.easyr1 import compute_score, reward_fields
from spatialrl.rewards.schedules import SharpnessSchedule
from spatialrl.rewards.trl import AccuracyReward, FormatReward
from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages

ROOT = Path(__file__).resolve().parents[2]
G = 4


@pytest.fixture(scope="module")
def export_rows(tmp_path_factory):
    import pyarrow.parquet as pq

    from spatialrl.cli import main

    out = tmp_path_factory.mktemp("easyr1") / "data"
    assert main(["data", "build", "--out", str(out), "--scenes", "8", "--seed", "5", "--quiet", "--format", "easyr1"]) == 0
    return pq.read_table(out / "train.parquet", columns=["answer", "pair_id", "view"]).to_pylist()


def _responses(truth: dict, rng: random.Random) -> list[str]:
    """G completions: right, wrong, malformed, gamed (two answers), in a varying mix."""
    right = f"<think>look</think><answer>{truth['answer']}</answer>"
    options = truth.get("options") or ["3", "7 meters", "left"]
    wrong = f"<think>guess</think><answer>{rng.choice(options)}</answer>"
    pool = [right, wrong, f"<answer>{truth['answer']}</answer>", f"{truth['answer']}",
            f"<think>x</think><answer>{truth['answer']} or {rng.choice(options)}</answer>",
            "<think>a</think><answer>2.5 m</answer>", "<think></think><answer></answer>"]
    return [rng.choice(pool) for _ in range(G)]


def _batch(rows: list[dict], n_pairs: int, seed: int) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    inputs, texts = [], []
    for row in rows[: 2 * n_pairs]:  # pairs are adjacent rows of the export
        truth = json.loads(row["answer"])
        for text in _responses(truth, rng):
            inputs.append({"response": text, "response_length": len(text), "ground_truth": row["answer"]})
            texts.append(text)
    return inputs, texts


def _trl_rewards(inputs: list[dict], texts: list[str], k: float) -> tuple[list[dict], list, list]:
    """The TRL path's accuracy and format rewards for the same completions and rows."""
    rows = [reward_fields(item["ground_truth"]) for item in inputs]
    columns = {name: [row.get(name) for row in rows] for name in
               ("answer_type", "answer", "answer_value", "dimension", "options", "answer_index", "bbox")}
    return rows, AccuracyReward(SharpnessSchedule("fixed", k, k))(completions=texts, **columns), \
        FormatReward()(completions=texts)


def test_without_the_penalty_the_overall_reward_is_the_trl_total(export_rows):
    inputs, texts = _batch(export_rows, n_pairs=40, seed=1)
    assert len(inputs) >= 100
    scores = compute_score(inputs, k=7.0, consistency=False)
    _, acc, fmt = _trl_rewards(inputs, texts, 7.0)
    for score, a, f in zip(scores, acc, fmt):
        expected = 0.1 * f + (0.0 if a is None else 0.9 * a)
        assert score["overall"] == pytest.approx(expected, abs=1e-12)
        assert score["format"] == f and score["accuracy_applies"] == float(a is not None)
    assert len({round(s["overall"], 6) for s in scores}) > 5, "the cases are not all alike"


def test_with_the_penalty_the_totals_match_the_trl_advantage_step(export_rows):
    inputs, texts = _batch(export_rows, n_pairs=30, seed=2)
    scores = compute_score(inputs, k=3.0, consistency=True)
    rows, acc, fmt = _trl_rewards(inputs, texts, 3.0)
    per_func = np.array([[np.nan if a is None else a, f] for a, f in zip(acc, fmt)], dtype=np.float64)
    step = spatial_advantages(
        per_func, ["accuracy", "format"], [0.9, 0.1], group_ids=[i // G for i in range(len(texts))],
        settings=AdvantageSettings(consistency_reward="accuracy"),
        pair_ids=[row["pair_id"] for row in rows], is_mirror=[row["view"] == "mirror" for row in rows])
    np.testing.assert_allclose([s["overall"] for s in scores], step.total_rewards, atol=1e-12)
    assert step.deltas.size == 30 and np.abs(step.deltas).max() > 0, "some pairs were penalised"


def test_bad_ground_truth_and_k_are_refused_with_the_index():
    with pytest.raises(ValueError, match="reward input 1: ground_truth is not spatialrl's JSON"):
        compute_score([{"response": "", "ground_truth": json.dumps({"answer_type": "discrete", "answer": "A",
                                                                     "pair_id": "p", "view": "original"})},
                       {"response": "", "ground_truth": "4.2"}])
    with pytest.raises(ValueError, match="positive number"):
        compute_score([], k=0)


def test_easyr1_loads_the_shipped_reward_function_file_by_path():
    path = ROOT / "examples" / "easyr1" / "reward_function.py"
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)  # as EasyR1's AutoRewardManager does
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.REWARD_TYPE == "batch" and module.compute_score is compute_score
    config = (ROOT / "examples" / "easyr1" / "spatialrl_qwen2_5_vl_3b.yaml").read_text()
    assert "reward_function: ./examples/easyr1/reward_function.py:compute_score" in config
