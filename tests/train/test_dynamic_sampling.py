"""Dynamic sampling (DAPO): the pure selection and re-padding functions, and the trainer end to end
on the shipped tiny model with a reward that leaves some groups without spread."""

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from spatialrl.train.dynamic_sampling import (
    RoundGroups,
    assemble,
    concat_outputs,
    needs_refill,
    pick_logged,
    plan_batch,
    take_rows,
    units_of,
    zero_spread_groups,
)

SHIPPED = str(Path(__file__).resolve().parents[2] / "spatialrl" / "assets" / "tiny-spatial-vlm")
PAD = 99


# -- pure parts ------------------------------------------------------------------------
def test_zero_spread_groups_ignores_unscorable_rows():
    rewards = [1, 1, 1, 0.5, 0.2, 0.2, np.nan, 0.3, np.nan, np.nan, np.nan, 0.7]
    assert zero_spread_groups(rewards, 3).tolist() == [True, False, True, True]
    with pytest.raises(ValueError):
        zero_spread_groups([1, 2, 3], 2)


def test_units_join_consecutive_groups_of_a_pair():
    assert units_of(None, 3) == [[0], [1], [2]]
    assert units_of(["a", "a", "b", "b", "c"], 5) == [[0, 1], [2, 3], [4]]


def test_plan_prefers_informative_units_then_fills_with_silent_ones():
    r0 = RoundGroups(np.array([True, False, True, False]), units_of(None, 4))
    r1 = RoundGroups(np.array([False, False, True, False]), units_of(None, 4))
    assert needs_refill([r0], 4) and not needs_refill([r0, r1], 4)
    plan = plan_batch([r0, r1], 4)
    assert plan.picks == [(0, 1), (0, 3), (1, 0), (1, 1)]
    assert (plan.dropped_groups, plan.kept_zero_std_groups, plan.surplus_groups) == (3, 0, 1)
    short = plan_batch([r0], 4)  # rounds ran out: keep the silent groups needed, and say so
    assert short.picks == [(0, 1), (0, 3), (0, 0), (0, 2)] and short.kept_zero_std_groups == 2
    assert short.dropped_groups == 0


def test_a_pair_is_dropped_only_when_both_views_are_silent():
    keys = ["p", "p", "q", "q", "r", "r"]
    r0 = RoundGroups(np.array([True, False, True, True, False, False]), units_of(keys, 6))
    r1 = RoundGroups(np.array([False, True, False, False, True, True]), units_of(keys, 6))
    plan = plan_batch([r0, r1], 6)
    assert plan.picks == [(0, 0), (0, 1), (0, 4), (0, 5), (1, 0), (1, 1)]  # whole pairs, in order
    # kept: the silent half of p in both rounds; dropped: round 0's q and round 1's r (both views
    # silent); surplus: round 1's q, informative but not needed
    assert plan.zero_std_groups_in_kept_pairs == 2 and plan.dropped_groups == 4
    assert plan.kept_zero_std_groups == 0 and plan.surplus_groups == 2


def _output(prompt_lengths, completion_lengths, images_per_row, seed):
    """A fake TRL generation output: left-padded prompts, right-padded completions, one 2x2 grid per image."""
    g = torch.Generator().manual_seed(seed)
    n, p, c = len(prompt_lengths), max(prompt_lengths), max(completion_lengths)
    prompt_ids = torch.full((n, p), PAD)
    prompt_mask = torch.zeros((n, p), dtype=torch.long)
    completion_ids = torch.full((n, c), PAD)
    completion_mask = torch.zeros((n, c), dtype=torch.long)
    mm = torch.zeros((n, p + c), dtype=torch.long)
    for i, (lp, lc) in enumerate(zip(prompt_lengths, completion_lengths)):
        prompt_ids[i, p - lp:] = torch.randint(0, 50, (lp,), generator=g)
        prompt_mask[i, p - lp:] = 1
        mm[i, p - lp] = 1  # an image token at the start of the prompt
        completion_ids[i, :lc] = torch.randint(0, 50, (lc,), generator=g)
        completion_mask[i, :lc] = 1
    n_images = sum(images_per_row)
    return {
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
        "completion_mask": completion_mask, "advantages": torch.randn(n, generator=g),
        "old_per_token_logps": torch.randn(n, c, generator=g) * completion_mask,
        "mm_token_type_ids": mm, "num_images": list(images_per_row),
        "image_grid_thw": torch.tensor([[1, 2, 2]] * n_images),
        "pixel_values": torch.randn(4 * n_images, 6, generator=g), "num_items_in_batch": completion_mask.sum(),
    }


def _strip(output, row):
    """Row ``row`` of an output without its padding: what must survive re-padding."""
    pm, cm = output["prompt_mask"][row].bool(), output["completion_mask"][row].bool()
    p = output["prompt_ids"].shape[1]
    mm = output["mm_token_type_ids"][row]
    return (output["prompt_ids"][row][pm].tolist(), output["completion_ids"][row][cm].tolist(),
            mm[:p][pm].tolist(), mm[p:][cm].tolist(), output["old_per_token_logps"][row][cm].tolist(),
            float(output["advantages"][row]))


def _images(output, row):
    first = sum(output["num_images"][:row])
    k = output["num_images"][row]
    return output["pixel_values"][4 * first:4 * (first + k)].tolist(), output["image_grid_thw"][first:first + k].tolist()


def test_concat_and_take_rows_keep_each_row_and_its_images():
    a = _output([3, 5], [2, 4], [1, 2], seed=0)
    b = _output([7, 2, 4], [1, 6, 3], [1, 0, 1], seed=1)
    merged = concat_outputs([a, b], PAD)
    assert merged["prompt_ids"].shape == (5, 7) and merged["completion_ids"].shape == (5, 6)
    assert merged["mm_token_type_ids"].shape == (5, 13) and "num_items_in_batch" not in merged
    sources = [(a, 0), (a, 1), (b, 0), (b, 1), (b, 2)]
    for row, (src, i) in enumerate(sources):
        assert _strip(merged, row) == _strip(src, i)
        assert _images(merged, row) == _images(src, i)
    # padding stays on its side: prompt masks are left-padded, completion masks right-padded
    assert merged["prompt_mask"][:, -1].all() and merged["completion_mask"][:, 0].all()
    picked = take_rows(merged, [4, 1, 3])
    for row, (src, i) in enumerate([sources[4], sources[1], sources[3]]):
        assert _strip(picked, row) == _strip(src, i)
        assert _images(picked, row) == _images(src, i)
    assert picked["num_images"] == [1, 2, 0] and picked["pixel_values"].shape[0] == 12


def test_assemble_takes_whole_groups_in_plan_order():
    a = _output([3, 3, 4, 4], [2, 2, 3, 1], [1, 1, 1, 1], seed=2)
    b = _output([5, 5, 2, 2], [4, 4, 2, 2], [1, 1, 1, 1], seed=3)
    out = assemble([a, b], [(1, 0), (0, 1)], group_size=2, pad_token_id=PAD)
    for row, (src, i) in enumerate([(b, 0), (b, 1), (a, 2), (a, 3)]):
        assert _strip(out, row) == _strip(src, i)


def test_unknown_keys_are_refused_with_a_reason():
    a = _output([3], [2], [1], seed=4)
    a["image_position_ids"] = torch.zeros(1)
    with pytest.raises(ValueError, match="image_position_ids"):
        concat_outputs([a], PAD)


def test_pick_logged_leaves_out_columns_it_cannot_match():
    rounds = [{"prompt": ["a", "b"], "images": []}, {"prompt": ["c", "d"], "images": []}]
    assert pick_logged(rounds, [(1, 0), (0, 1)], 2) == {"prompt": ["c", "b"]}


# -- the trainer, end to end -----------------------------------------------------------------
def _silent(pair_id):
    return int(hashlib.sha256(pair_id.encode()).hexdigest()[:2], 16) % 2 == 0


def _reward(all_silent=False):
    counter = itertools.count()

    def accuracy(completions, pair_id, **kwargs):
        # silent prompts get one reward for all G completions; the others get distinct rewards
        # whatever the (nearly greedy) shipped model writes
        return [0.5 if all_silent or _silent(p) else (next(counter) % 7) / 7 for p in pair_id]

    return accuracy


@pytest.fixture(scope="module")
def tiny_data():
    from datasets import Dataset

    from spatialrl.data.build import BuildConfig, scene_rows
    from spatialrl.data.export import with_trl_prompts
    from spatialrl.data.schema import features
    from spatialrl.models import prompt_separator
    from spatialrl.train.sampler import find_pairs

    rows = [r for i in range(2) for r in scene_rows(i, BuildConfig(scenes=2, seed=0))]
    ds = with_trl_prompts(Dataset.from_list(rows, features=features()), prompt_separator(SHIPPED))
    ds = ds.remove_columns(["scene_json", "meta"])
    pairs, _ = find_pairs(ds["pair_id"], ds["view"])
    return ds, pairs


def _train(tmp_path, ds, pairs, reward, max_rounds=3, use_pairs=False, steps=2):
    from trl import GRPOConfig

    from spatialrl.models import load_model_and_processor
    from spatialrl.train.advantage_step import AdvantageSettings
    from spatialrl.train.trainer import SpatialGRPOTrainer, vision_token_suppression

    torch.manual_seed(0)
    model, processor = load_model_and_processor(SHIPPED)
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=16, num_generations=4,
                      max_steps=steps, max_completion_length=4, use_cpu=True, bf16=False, report_to="none",
                      logging_steps=1, save_strategy="no", seed=0,
                      generation_kwargs=vision_token_suppression(model.config, processor))
    trainer = SpatialGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds,
                                 processing_class=processor, advantage_settings=AdvantageSettings(estimator="grpo"),
                                 pairs=pairs if use_pairs else None, dynamic_sampling=True,
                                 dynamic_sampling_max_rounds=max_rounds)
    batches, losses = [], []
    generate, compute_loss = trainer._generate_and_score_completions, trainer._compute_loss

    def spy_generate(inputs):
        out = generate(inputs)
        batches.append(out)
        return out

    def spy_loss(model_, inputs):
        losses.append(inputs["prompt_ids"].shape[0])
        return compute_loss(model_, inputs)

    trainer._generate_and_score_completions, trainer._compute_loss = spy_generate, spy_loss
    trainer.train()
    history = [h for h in trainer.state.log_history if "dynamic_sampling/rounds" in h]
    return trainer, batches, losses, history


@pytest.mark.parametrize("use_pairs", [False, True])
def test_refill_replaces_silent_groups(tmp_path, tiny_data, use_pairs):
    ds, pairs = tiny_data
    trainer, batches, losses, history = _train(tmp_path, ds, pairs, _reward(), max_rounds=4, use_pairs=use_pairs)
    assert losses == [16, 16] and len(batches) == 2 and len(history) == 2
    assert any(h["dynamic_sampling/dropped_groups"] > 0 for h in history)  # the filter did act
    for batch, h in zip(batches, history):
        assert batch["prompt_ids"].shape[0] == 16 and len(batch["num_images"]) == 16
        assert batch["pixel_values"].shape[0] == int(batch["image_grid_thw"].prod(-1).sum())
        groups = batch["advantages"].view(-1, 4)
        if h["dynamic_sampling/kept_zero_std_groups"] == 0 and h["dynamic_sampling/zero_std_groups_in_kept_pairs"] == 0:
            assert (groups.abs().sum(1) > 0).all()  # no silent group reached the loss
    assert all(h["dynamic_sampling/kept_zero_std_groups"] == 0 for h in history)  # refill succeeded here
    # the completions table shows the assembled batch, not the last round generated
    assert np.allclose(list(trainer._logs["advantages"]), batches[-1]["advantages"].tolist())
    logged_pairs = list(trainer._logs["extra"]["pair_id"])
    assert not any(_silent(p) for p in logged_pairs)
    if use_pairs:  # whole pairs: both views of every pair id in the batch
        views = {}
        for pid, view in zip(logged_pairs, trainer._logs["extra"]["view"]):
            views.setdefault(pid, set()).add(view)
        assert all(v == {"original", "mirror"} for v in views.values())


def test_rounds_run_out_and_silent_groups_fill_the_batch(tmp_path, tiny_data):
    ds, pairs = tiny_data
    _, batches, losses, history = _train(tmp_path, ds, pairs, _reward(all_silent=True), max_rounds=2, steps=1)
    assert losses == [16]
    (h,) = history
    assert h["dynamic_sampling/rounds"] == 2
    assert h["dynamic_sampling/kept_zero_std_groups"] == 4  # the whole batch, said so
    assert h["dynamic_sampling/dropped_groups"] == 8  # the two extra rounds' groups
    assert batches[0]["prompt_ids"].shape[0] == 16 and torch.all(batches[0]["advantages"] == 0)


def test_off_by_default_and_max_rounds_validated():
    import inspect

    from spatialrl.train.trainer import SpatialGRPOTrainer

    params = inspect.signature(SpatialGRPOTrainer.__init__).parameters
    assert params["dynamic_sampling"].default is False and params["dynamic_sampling_max_rounds"].default == 3
    with pytest.raises(ValueError, match="dynamic_sampling_max_rounds"):
        SpatialGRPOTrainer(model=None, dynamic_sampling_max_rounds=-1)


_TWO_PROCESS_SCRIPT = '''
import itertools, json, os, sys
import torch
sys.path.insert(0, {tests!r})
from test_dynamic_sampling import SHIPPED, _reward, _silent
from datasets import Dataset
from trl import GRPOConfig
from spatialrl.data.build import BuildConfig, scene_rows
from spatialrl.data.export import with_trl_prompts
from spatialrl.data.schema import features
from spatialrl.models import load_model_and_processor, prompt_separator
from spatialrl.train.advantage_step import AdvantageSettings
from spatialrl.train.trainer import SpatialGRPOTrainer, vision_token_suppression

torch.manual_seed(0)
rows = [r for i in range(2) for r in scene_rows(i, BuildConfig(scenes=2, seed=0))]
model, processor = load_model_and_processor(SHIPPED)
ds = with_trl_prompts(Dataset.from_list(rows, features=features()), prompt_separator(model)).remove_columns(["scene_json", "meta"])
args = GRPOConfig(output_dir={out!r}, per_device_train_batch_size=8, num_generations=4, max_steps=2,
                  max_completion_length=4, use_cpu=True, bf16=False, report_to="none", logging_steps=1,
                  save_strategy="no", seed=0, generation_kwargs=vision_token_suppression(model.config, processor))
trainer = SpatialGRPOTrainer(model=model, reward_funcs=[_reward()], args=args, train_dataset=ds, processing_class=processor,
                             advantage_settings=AdvantageSettings(estimator="grpo"), dynamic_sampling=True)
sizes = []
generate = trainer._generate_and_score_completions
def spy(inputs):
    out = generate(inputs)
    sizes.append(out["prompt_ids"].shape[0])
    return out
trainer._generate_and_score_completions = spy
trainer.train()
rounds = [h["dynamic_sampling/rounds"] for h in trainer.state.log_history if "dynamic_sampling/rounds" in h]
print("RESULT " + json.dumps({{"rank": trainer.accelerator.process_index, "sizes": sizes, "rounds": rounds,
                               "processes": trainer.accelerator.num_processes}}), flush=True)
'''


def test_two_processes_run_the_same_rounds_and_finish(tmp_path):
    """Each process decides it is full at a different time; a gathered flag keeps their rounds (and
    TRL's collectives) in step, so the run finishes instead of hanging."""
    import json
    import os
    import shutil
    import socket
    import subprocess
    import sys

    torchrun = Path(sys.executable).parent / "torchrun"
    if shutil.which(str(torchrun)) is None:
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "two.py"
    script.write_text(_TWO_PROCESS_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path / "out")))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    done = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                           str(port), str(script)], env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line.split("RESULT ", 1)[1]) for line in done.stdout.splitlines() if "RESULT " in line]
    assert sorted(r["rank"] for r in results) == [0, 1] and all(r["processes"] == 2 for r in results)
    assert all(r["sizes"] == [8, 8] for r in results)  # every process keeps its share of the batch
    assert results[0]["rounds"] == results[1]["rounds"] and any(x > 0 for x in results[0]["rounds"])
