"""verl's RLHFDataset reads spatialrl's verl export; MirrorPairSampler in verl's dataloader."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf


#: A stand-in for Qwen2.5-VL's processor: RLHFDataset only checks that one exists when it splits a
#: prompt at "<image>" (and reads its patch size); the processor itself runs in the rollout.
PROCESSOR = SimpleNamespace(image_processor=SimpleNamespace(patch_size=14))


def _dataset(path, **data):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    config = OmegaConf.create({"prompt_key": "prompt", "image_key": "images", "max_prompt_length": 4096,
                               "filter_overlong_prompts": False, "return_raw_chat": True, **data})
    return RLHFDataset(data_files=str(path), tokenizer=None, config=config, processor=PROCESSOR)


def test_rlhf_dataset_reads_the_export_with_the_length_filter_off(verl_export):
    import datasets

    from verl.utils.dataset.rl_dataset import collate_fn

    rows = datasets.load_dataset("parquet", data_files=str(verl_export / "train.parquet"))["train"]
    ds = _dataset(verl_export / "train.parquet")
    assert len(ds) == len(rows) > 0  # every row survives (the multimodal filter would import qwen_vl_utils)
    item = ds[0]
    content = item["raw_prompt"][0]["content"]
    assert [part["type"] for part in content].count("image") == len(rows[0]["images"]) == 1
    assert item["extra_info"]["pair_id"] == rows[0]["pair_id"] and item["extra_info"]["answer_type"]
    batch = collate_fn([ds[i] for i in range(4)])
    assert list(batch["pair_id"]) == rows["pair_id"][:4]
    assert all("answer_type" in info for info in batch["extra_info"])


def test_mirror_pair_sampler_keeps_pairs_in_verl_batches_with_shuffle_on(verl_export):
    from torchdata.stateful_dataloader import StatefulDataLoader

    from spatialrl.integrations.verl import MirrorPairSampler, _create_pair_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    data = OmegaConf.create({"shuffle": True, "seed": 7, "train_batch_size": 8})
    ds = _dataset(verl_export / "train.parquet", shuffle=True, seed=7)
    sampler = _create_pair_sampler(data, ds)  # what the launcher puts in place of verl's create_rl_sampler
    assert isinstance(sampler, MirrorPairSampler)
    loader = StatefulDataLoader(ds, batch_size=8, sampler=sampler, drop_last=True, collate_fn=collate_fn)
    epochs = []
    for _ in range(2):
        order = []
        for batch in loader:
            counts = Counter(zip(batch["pair_id"], batch["view"]))
            assert {p for p, _ in counts} == {p for p, v in counts if v == "original"} \
                == {p for p, v in counts if v == "mirror"}  # whole pairs only
            assert list(batch["view"]) == ["original", "mirror"] * 4  # adjacent
            order += list(batch["pair_id"])
        epochs.append(order)
    assert epochs[0] != epochs[1] and sorted(epochs[0]) == sorted(epochs[1])  # reshuffled, same pairs
    with pytest.raises(ValueError, match="even"):
        MirrorPairSampler(ds, OmegaConf.create({"train_batch_size": 7}))
