"""SpatialGRPOTrainer: the advantages the loss consumes are the chosen formula applied to the
logged rewards; pairs stay whole across generation batches and processes."""

import hashlib
import random

import numpy as np
import pytest
import torch
from accelerate.data_loader import BatchSamplerShard
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import BatchSampler
from trl.trainer.utils import RepeatSampler

from spatialrl.rewards.trl import completion_text
from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages
from spatialrl.train.sampler import PairRepeatSampler, find_pairs


class HashReward:
    """A deterministic reward in [0, 1] that varies between completions (an untrained model's
    SNRA rewards are all ~0, which would make every advantage 0 and the test vacuous)."""

    def __init__(self, name):
        self.__name__ = name

    def __call__(self, completions, **kwargs):
        return [int(hashlib.sha256((self.__name__ + completion_text(c)).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
                for c in completions]


def _job(model, dataset, out):
    from spatialrl.train.config import make_job

    return make_job("grpo", model=model, dataset=dataset, output_dir=out, mirror_pairs=True, num_generations=4,
                    per_device_train_batch_size=8)


@pytest.mark.parametrize("estimator,consistency", [("ap_grpo", "accuracy"), ("grpo", None)])
def test_loss_consumes_the_formula_of_the_logged_rewards(tiny_model_dir, world_dataset_dir, tmp_path, estimator,
                                                         consistency):
    from trl import GRPOConfig

    from spatialrl.models import load_model_and_processor
    from spatialrl.train.grpo import (
        SpatialGRPOTrainer,
        prepare_dataset,
        vision_token_suppression,
    )

    torch.manual_seed(0)
    job = _job(tiny_model_dir, world_dataset_dir, str(tmp_path / "out"))
    dataset, pairs = prepare_dataset(job.spatial, log=lambda *_: None, seed=job.trl.seed)
    model, processor = load_model_and_processor(tiny_model_dir)
    with torch.no_grad():  # a random but not degenerate policy: completions differ within a group
        for p in model.parameters():
            p.normal_(0, 0.5)
    settings_ = AdvantageSettings(estimator=estimator, consistency_reward=consistency)
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_generations=4, max_steps=2,
                      max_completion_length=8, learning_rate=1e-4, beta=0.02, loss_type="grpo", use_cpu=True,
                      bf16=False, report_to="none", logging_steps=1, save_strategy="no", reward_weights=[0.9, 0.1],
                      seed=0, generation_kwargs=vision_token_suppression(model.config))
    trainer = SpatialGRPOTrainer(model=model, reward_funcs=[HashReward("accuracy"), HashReward("format")], args=args,
                                 train_dataset=dataset, processing_class=processor, advantage_settings=settings_,
                                 pairs=pairs)
    consumed = []
    compute_loss = trainer._compute_loss

    def spy(model_, inputs):
        consumed.append(inputs["advantages"].detach().clone())
        return compute_loss(model_, inputs)

    trainer._compute_loss = spy
    trainer.train()
    assert len(consumed) == 2

    # Recompute from what was logged for the last generation batch (TRL keeps only that one).
    names = trainer.reward_func_names
    logged_rewards = np.stack([np.array(trainer._logs["rewards"][name]) for name in names], axis=1)
    pair_ids = list(trainer._logs["extra"]["pair_id"])
    views = list(trainer._logs["extra"]["view"])
    n = len(logged_rewards)
    expected = spatial_advantages(logged_rewards, names, [0.9, 0.1], (np.arange(n) // 4).tolist(), settings_,
                                  pair_ids=pair_ids, is_mirror=[v == "mirror" for v in views]).advantages
    assert np.any(np.abs(expected) > 1e-3)  # the check is not vacuous
    assert np.allclose(sorted(consumed[-1].tolist()), sorted(expected.tolist()), atol=1e-6)
    assert np.allclose(list(trainer._logs["advantages"]), expected, atol=1e-12)  # logged == used
    # independent hand formula for the plain-GRPO case
    if estimator == "grpo":
        total = logged_rewards @ np.array([0.9, 0.1])
        grouped = total.reshape(-1, 4)
        manual = (grouped - grouped.mean(1, keepdims=True)) / (grouped.std(1, ddof=1, keepdims=True) + 1e-6)
        assert np.allclose(expected, manual.ravel(), atol=1e-9)
    history = [h for h in trainer.state.log_history if "adv/variance" in h]
    assert len(history) == 2 and all("sharpness/k" not in h or h["sharpness/k"] > 0 for h in history)
    # every generation batch held whole pairs: the two views of each pair id appear together
    by_pair = {}
    for pid, view in zip(pair_ids, views):
        by_pair.setdefault(pid, set()).add(view)
    assert all(v == {"original", "mirror"} for v in by_pair.values())


def test_spatial_advantages_penalty_and_absolute_term():
    # two groups of G = 2: pair p, original (rows 0-1) and mirror (rows 2-3)
    rpf = np.array([[0.9, 1.0], [0.7, 0.0], [0.3, 1.0], [0.1, 1.0]])
    step = spatial_advantages(rpf, ["accuracy", "format"], [0.9, 0.1], [0, 0, 1, 1],
                              AdvantageSettings(estimator="ap_grpo", clip=None, consistency_reward="accuracy"),
                              pair_ids=["p"] * 4, is_mirror=[False, False, True, True])
    delta = 0.8 - 0.2  # eq. 2 on the accuracy component
    assert step.deltas.tolist() == pytest.approx([delta])
    assert step.rewards_per_func[:, 0].tolist() == pytest.approx([0.9 - delta, 0.7 - delta, 0.3, 0.1])
    # absolute term: the penalised accuracy clipped to [0, 1]
    assert step.abs_rewards.tolist() == pytest.approx([0.3, 0.1, 0.3, 0.1])
    assert step.metrics["consistency/pairs"] == 1.0


def test_unscorable_rows_get_zero_and_stay_out_of_the_baseline():
    rpf = np.array([[1.0], [0.0], [np.nan], [0.5], [0.5], [np.nan]])
    step = spatial_advantages(rpf, ["accuracy"], [1.0], [0, 0, 0, 1, 1, 1], AdvantageSettings(estimator="grpo", clip=None))
    assert step.advantages[2] == 0.0 and step.advantages[5] == 0.0
    assert step.advantages[0] == pytest.approx(1 / np.sqrt(2), rel=1e-5)  # baseline over rows 0-1 only
    assert step.metrics["adv/unscorable_frac"] == pytest.approx(2 / 6)


def _prompt_runs(indices, g):
    return indices[::g]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), g=st.sampled_from([2, 4, 8]), pairs_per_process=st.integers(1, 3),
       steps_per_generation=st.integers(1, 4), num_processes=st.integers(1, 4), n_pairs=st.integers(6, 40),
       epoch=st.integers(0, 3))
def test_pairs_never_split(seed, g, pairs_per_process, steps_per_generation, num_processes, n_pairs, epoch):
    """Simulate TRL + accelerate: the sampler's stream is cut into per-process batches of
    per_device_batch * steps_per_generation rows, dealt round-robin to processes by accelerate's
    own BatchSamplerShard; each process's generation batch must hold whole pairs."""
    prompts_per_process = 2 * pairs_per_process
    local_rows = prompts_per_process * g  # per_device_train_batch_size * steps_per_generation
    # per-device batch must divide it: any split works for the sampler; use steps_per_generation slices
    generation_prompts = prompts_per_process * num_processes
    if n_pairs * 2 < generation_prompts:
        return
    order = list(range(2 * n_pairs))
    random.Random(seed).shuffle(order)  # pairs need not be adjacent in the dataset
    pairs = [(order[2 * i], order[2 * i + 1]) for i in range(n_pairs)]
    twin = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    sampler = PairRepeatSampler(pairs, mini_repeat_count=g, batch_size=generation_prompts,
                                repeat_count=steps_per_generation, seed=seed)
    sampler.set_epoch(epoch)
    for rank in range(num_processes):
        shard = BatchSamplerShard(BatchSampler(sampler, local_rows, drop_last=False), num_processes=num_processes,
                                  process_index=rank, split_batches=False, even_batches=True)
        for batch in shard:
            prompts = set(_prompt_runs(batch, g))
            assert all(twin[p] in prompts for p in prompts), (rank, batch)


def test_stock_sampler_would_split_pairs():
    """The property above is not vacuous: TRL's RepeatSampler splits pairs across processes."""
    pairs = [(2 * i, 2 * i + 1) for i in range(20)]
    twin = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    sampler = RepeatSampler(list(range(40)), mini_repeat_count=2, batch_size=8, repeat_count=1, seed=0)
    split = False
    for rank in range(2):
        for batch in BatchSamplerShard(BatchSampler(sampler, 8, drop_last=False), num_processes=2, process_index=rank):
            prompts = set(batch[::2])
            split |= any(twin[p] not in prompts for p in prompts)
    assert split


def test_find_pairs_reports_lonely_rows():
    pairs, lonely = find_pairs(["a", "a", "b", "c", "c", "c"], ["original", "mirror", "original", "mirror", "original", "x"])
    assert sorted(pairs) == [(0, 1), (4, 3)] and lonely == [2, 5]


def test_sampler_order_depends_on_seed_and_epoch_only():
    pairs = [(2 * i, 2 * i + 1) for i in range(10)]
    a = PairRepeatSampler(pairs, 2, 4, seed=3)
    b = PairRepeatSampler(pairs, 2, 4, seed=3)
    b.set_epoch(1)
    first = list(a)
    b.set_epoch(0)
    assert list(b) == first
    a.set_epoch(1)
    assert list(a) != first
    with pytest.raises(ValueError, match="even"):
        PairRepeatSampler(pairs, 2, 3)


def test_stratified_order_cycles_through_every_stratum():
    """With strata, every round holds one pair of each stratum that has pairs left, and the
    whole order is still a permutation of the pairs, fixed by (seed, epoch)."""
    strata = ["a"] * 9 + ["b"] * 5 + ["c"] * 2 + ["d"] * 5
    order = list(range(len(strata)))
    random.Random(0).shuffle(order)  # strata need not be contiguous in the dataset
    strata = [strata[i] for i in order]
    pairs = [(2 * i, 2 * i + 1) for i in range(len(strata))]
    sampler = PairRepeatSampler(pairs, 2, 4, seed=5, strata=strata)
    first = sampler.pair_order()
    assert sorted(first) == list(range(len(pairs)))
    labels = [strata[i] for i in first]
    assert sorted(labels[:4]) == sorted(labels[4:8]) == ["a", "b", "c", "d"]  # c runs out after round 2
    assert sorted(labels[8:11]) == sorted(labels[11:14]) == sorted(labels[14:17]) == ["a", "b", "d"]
    assert labels[17:] == ["a"] * 4
    assert sampler.pair_order() == first
    sampler.set_epoch(1)
    assert sampler.pair_order() != first
    # unstratified, the same seed gives an order whose first rounds are not balanced
    plain = [strata[i] for i in PairRepeatSampler(pairs, 2, 4, seed=5).pair_order()]
    assert any(sorted(plain[k:k + 4]) != ["a", "b", "c", "d"] for k in (0, 4))
    with pytest.raises(ValueError, match="one label per pair"):
        PairRepeatSampler(pairs, 2, 4, strata=strata[:-1])


def test_nested_strata_alternate_the_second_level_within_the_first():
    """(type, answer) labels: types still cycle, and within the yes/no type the answers alternate
    (five "no" in a row is what one random order gave the demo's seed 1); a level whose values
    are all distinct (numeric answers) leaves its type's order random."""
    labels = [("yes_no", "no")] * 6 + [("yes_no", "yes")] * 6 + [("numeric", str(i)) for i in range(12)]
    order = list(range(len(labels)))
    random.Random(1).shuffle(order)
    labels = [labels[i] for i in order]
    pairs = [(2 * i, 2 * i + 1) for i in range(len(labels))]
    sampler = PairRepeatSampler(pairs, 2, 4, seed=7, strata=labels)
    nested = [labels[i] for i in sampler.pair_order()]
    assert sorted(nested) == sorted(labels)
    assert all({a[0], b[0]} == {"yes_no", "numeric"} for a, b in zip(nested[::2], nested[1::2]))
    answers = [answer for qtype, answer in nested if qtype == "yes_no"]
    assert all(answers[i] != answers[i + 1] for i in range(0, len(answers), 2))  # each round holds a yes and a no
    assert not any(answers[i] == answers[i + 1] == answers[i + 2] for i in range(len(answers) - 2))
    # with the type alone, the same seed's yes/no answers are not balanced in every pair of rounds
    flat = [labels[i][1] for i in PairRepeatSampler(pairs, 2, 4, seed=7, strata=[lb[0] for lb in labels]).pair_order()
            if labels[i][0] == "yes_no"]
    assert any(flat[i] == flat[i + 1] for i in range(0, len(flat), 2))


def test_mirror_twins_are_the_mirrors_of_questions_with_an_original():
    from spatialrl.train.sampler import mirror_twins

    pair_ids = ["a", "a", "b", "c", "c", "d"]
    views = ["original", "mirror", "mirror", "mirror", "original", "original"]
    assert mirror_twins(pair_ids, views) == [1, 3]  # "b" has no original: its mirror is its only view


@pytest.mark.parametrize("twins", ["drop", "keep"])
def test_without_mirror_pairs_each_question_is_trained_once_unless_kept(world_dataset_dir, twins):
    from spatialrl.data.load import load_split
    from spatialrl.train.config import SpatialGRPOArguments, make_job
    from spatialrl.train.grpo import prepare_dataset

    rows = load_split(world_dataset_dir, "train")
    questions = set(rows["pair_id"])
    assert len(rows) == 2 * len(questions)  # the build writes both views of every question
    cfg = SpatialGRPOArguments(model="m", dataset=world_dataset_dir, mirror_twins=twins)
    logged = []
    ds, pairs = prepare_dataset(cfg, log=logged.append)
    assert pairs is None
    if twins == "keep":
        assert len(ds) == len(rows) and not logged
    else:
        assert sorted(ds["pair_id"]) == sorted(questions) and set(ds["view"]) == {"original"}
        assert logged == [f"mirror_twins=drop: dropped {len(questions)} of {len(rows)} rows of train, the mirrored "
                          "twins of questions whose original view stays (mirror_twins=keep trains both views)"]
        # max_samples counts questions (applied after the twins are dropped)
        cut, _ = prepare_dataset(SpatialGRPOArguments(model="m", dataset=world_dataset_dir, max_samples=10),
                                 log=lambda *_: None)
        assert len(cut) == 10 and len(set(cut["pair_id"])) == 10
    # with mirror pairs both views stay, whatever mirror_twins says
    paired_job = make_job("grpo", model="m", dataset=world_dataset_dir, output_dir="o", mirror_pairs=True,
                          mirror_twins=twins, num_generations=4, per_device_train_batch_size=8)
    paired, pairs = prepare_dataset(paired_job.spatial, log=lambda *_: None, seed=paired_job.trl.seed)
    assert len(paired) == len(rows) and len(pairs) == len(questions)


def test_prompts_follow_the_separator_the_start_model_learned(world_dataset_dir):
    """SVQA-R1 Table 9 joins question and instruction with a space; the shipped tiny VLM records
    the newline it was pretrained with, and GRPO prompts it the way it learned."""
    from pathlib import Path

    import spatialrl
    from spatialrl.prompts import FORMAT_INSTRUCTION
    from spatialrl.train.config import SpatialGRPOArguments
    from spatialrl.train.grpo import prepare_dataset

    shipped = str(Path(spatialrl.__file__).parent / "assets" / "tiny-spatial-vlm")
    for model, separator in (("Qwen/Qwen2.5-VL-3B-Instruct", " "), (shipped, "\n")):
        ds, _ = prepare_dataset(SpatialGRPOArguments(model=model, dataset=world_dataset_dir, max_samples=3),
                                log=lambda *_: None)
        for row in ds:
            text = row["prompt"][0]["content"][1]["text"]
            assert text == row["question"] + separator + FORMAT_INSTRUCTION


def test_the_train_job_freezes_the_vision_tower_and_samples_dynamically(tiny_model_dir, world_dataset_dir, tmp_path):
    """The recipe's knobs reach the trainer: freeze_vision_tower keeps the vision blocks' weights,
    dynamic_sampling logs its counts, and the processor saved with the model carries the budget."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    from spatialrl.models.published import processor_pixels
    from spatialrl.train.config import load_config
    from spatialrl.train.grpo import train_grpo

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "run"
    job = load_config(repo / "configs" / "demo.yaml", [
        f"model={tiny_model_dir}", f"dataset={world_dataset_dir}", f"output_dir={out}", "max_steps=2",
        "save_strategy=no", "num_generations=4", "per_device_train_batch_size=8", "max_completion_length=8",
        "logging_steps=1", "--freeze_vision_tower", "true", "--dynamic_sampling", "true",
        "--dynamic_sampling_max_rounds", "1", "--learning_rate", "1e-2"])
    summary = train_grpo(job, log=lambda *_: None)
    before = load_file(str(Path(tiny_model_dir) / "model.safetensors"))
    after = load_file(str(Path(summary["final_model"]) / "model.safetensors"))
    vision = [k for k in after if "visual.blocks." in k or "visual.patch_embed." in k]
    language = [k for k in after if "visual" not in k and "layers." in k and k.endswith("mlp.up_proj.weight")]
    assert vision and language
    assert all(torch.equal(before[k], after[k]) for k in vision), "the frozen vision tower did not move"
    assert any(not torch.equal(before[k], after[k]) for k in language), "the language model trained"
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    logged = [row for row in history if "dynamic_sampling/rounds" in row]
    assert logged, "dynamic sampling logs its rounds"
    saved = processor_pixels(summary["final_model"])
    assert saved is not None and saved["max_pixels"] == summary["pixel_budget"]["max_pixels"]
