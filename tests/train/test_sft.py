"""SFT cold start: targets in the answer format, completion-only labels, a short run on the tiny
model that lowers the loss and saves a reloadable model, LoRA merged on save, config errors."""

from __future__ import annotations

import math

import pytest

from spatialrl.answers import extract_answer
from spatialrl.rewards.format import format_reward
from spatialrl.train import sft
from spatialrl.train.config import ConfigError, SpatialSFTArguments, load_config, make_job
from spatialrl.world.questions import QUESTION_TYPES


def _config(tiny_model_dir, world_dataset_dir, out, **changes):
    fields = dict(model=tiny_model_dir, dataset=world_dataset_dir, output_dir=str(out), per_device_train_batch_size=8,
                  max_steps=2, learning_rate=3e-3, logging_steps=1, save_steps=1000, torch_threads=1,
                  use_cpu=True)
    fields.update(changes)
    return make_job("sft", **fields)


def _run_cli(argv):
    from spatialrl.cli import main

    return main(["sft", *argv])


# -- targets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("think", ["template", "empty"])
def test_targets_follow_the_answer_format(think):
    for qt in QUESTION_TYPES:
        text = sft.target_text("2.35", qt, think)
        assert format_reward(text) == 1.0 and extract_answer(text) == "2.35"
        assert (text.startswith("<think></think>")) == (think == "empty")
    assert set(QUESTION_TYPES) <= set(sft.THINK_TEMPLATES), "every question type has a rationale"
    assert not any(ch.isdigit() for ch in "".join(sft.THINK_TEMPLATES.values())), "rationales never hold numbers"


def test_option_think_says_the_correct_options_text_then_its_letter():
    question = "Is the A to the left or to the right of the B?\nA. right\nB. left\nAnswer with the option's letter."
    text = sft.target_text("B", "rel_direction", "option", question)
    assert text == "<think>left</think><answer>B</answer>"
    assert format_reward(text) == 1.0 and extract_answer(text) == "B"
    # a question without options (or a letter that is not one) leaves the block empty
    assert sft.target_text("2.35", "object_height", "option", "How tall is the lamp?") == \
        "<think></think><answer>2.35</answer>"
    assert sft.target_text("C", "rel_direction", "option", question).startswith("<think></think>")


def test_option_text_answers_name_the_option_the_scorer_reads():
    """``option_text`` answers a multiple-choice question with its option's text; the world
    scorer's ``parse_choice`` reads that text as the same option."""
    from spatialrl.answers import parse_choice

    question = ("As seen from the camera, how is the ball positioned relative to the box?\n"
                "A. left and closer to the camera\nB. left and farther from the camera\n"
                "C. right and closer to the camera\nD. right and farther from the camera\n"
                "Answer with the option's letter.")
    options = [line[3:] for line in question.splitlines()[1:5]]
    for index, letter in enumerate("ABCD"):
        text = sft.target_text(letter, "rel_direction", "option_text", question)
        assert text == f"<think>{options[index]}</think><answer>{options[index]}</answer>"
        assert format_reward(text) == 1.0 and parse_choice(extract_answer(text), options) == index
    assert sft.target_text("3", "object_count", "option_text", "How many chairs?") == "<think></think><answer>3</answer>"


def test_direction_text_answers_direction_words_and_keeps_letters_for_names():
    """``direction_text``: rel_direction / rel_direction_allocentric answer with the option's
    text (read back as that option by ``parse_choice``); options that are names keep the letter."""
    from spatialrl.answers import parse_choice

    question = ("As seen from the camera, how is the ball positioned relative to the box?\n"
                "A. left and closer to the camera\nB. right and farther from the camera\n"
                "Answer with the option's letter.")
    options = [line[3:] for line in question.splitlines()[1:3]]
    for index, letter in enumerate("AB"):
        for qt in sft.DIRECTION_TEXT_TYPES:
            text = sft.target_text(letter, qt, "direction_text", question)
            assert text == f"<think></think><answer>{options[index]}</answer>"
            assert format_reward(text) == 1.0 and parse_choice(extract_answer(text), options) == index
    names = "Which is nearer to the camera?\nA. red box\nB. blue tv\nAnswer with the option's letter."
    assert sft.target_text("B", "closer_to_camera", "direction_text", names) == "<think></think><answer>B</answer>"
    assert sft.target_text("3", "object_count", "direction_text", "How many?") == "<think></think><answer>3</answer>"
    assert sft.target_text("left", None, "direction_text") == "<think></think><answer>left</answer>"


def test_examples_are_conversational_prompt_completion(world_dataset_dir):
    from spatialrl.prompts import prompt_text

    ds = sft.load_split(world_dataset_dir, "train", max_samples=4, seed=1, whole_pairs=True)
    assert len(ds) == 4 and len(set(ds["pair_id"])) == 2, "whole mirror pairs"
    row = ds[0]
    ex = sft.sft_example(row)
    (user,) = ex["prompt"]
    assert user["role"] == "user" and user["content"][0]["type"] == "image"
    assert user["content"][1]["text"] == prompt_text(row["question"])
    (assistant,) = ex["completion"]
    assert assistant["role"] == "assistant"
    assert extract_answer(assistant["content"][0]["text"]) == row["answer"]
    only = sft.load_split(world_dataset_dir, "train", question_types=["object_count"])
    assert set(only["question_type"]) == {"object_count"}
    with pytest.raises(FileNotFoundError, match="no split 'dev'"):
        sft.load_split(world_dataset_dir, "dev")


# -- labels ----------------------------------------------------------------------------------------


def test_loss_is_on_the_completion_only(tiny_model_dir, world_dataset_dir, tmp_path):
    cfg = _config(tiny_model_dir, world_dataset_dir, tmp_path / "out", max_samples=6)
    trainer, processor, train_set = sft.build_trainer(cfg)
    examples = [dict(train_set[i]) for i in range(3)]
    targets = [ex["completion"][0]["content"][0]["text"] for ex in examples]
    batch = trainer.data_collator(examples)
    tok = processor.tokenizer
    image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert "pixel_values" in batch and "mm_token_type_ids" in batch
    for i, target in enumerate(targets):
        ids, labels, mask = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        trained = labels != -100
        assert (labels[trained] == ids[trained]).all()
        assert tok.decode(ids[trained]) == target + "<|im_end|>", "exactly the target and the end of turn"
        # the chat template's newline after the end of turn is in the input but never generated, so not trained
        end = int((ids == tok.convert_tokens_to_ids("<|im_end|>")).nonzero()[-1])
        assert tok.decode(ids[end + 1:end + 2]) == "\n" and labels[end + 1] == -100
        # everything before the completion is masked: system turn, image tokens, question, generation prompt
        first = int(trained.nonzero()[0])
        assert not trained[:first].any() and (ids[:first] == image_pad).sum() > 0
        assert tok.decode(ids[:first][mask[:first].bool()]).endswith("<|im_start|>assistant\n")
        assert trained[first:end + 1][mask[first:end + 1].bool()].all()


# -- training ------------------------------------------------------------------------------------


def test_sft_lowers_the_loss_and_saves_a_reloadable_model(tiny_model_dir, world_dataset_dir, tmp_path, capsys):
    import torch

    from spatialrl.models import load_model_and_processor

    out = tmp_path / "sft"
    config = tmp_path / "sft.yaml"
    config.write_text(f"job: sft\nmodel: {tiny_model_dir}\ndataset: {world_dataset_dir}\noutput_dir: {out}\n")
    rc = _run_cli(["--config", str(config), "max_steps=16", "learning_rate=3e-3", "per_device_train_batch_size=8",
                   "logging_steps=1", "torch_threads=1", "use_cpu=true", "save_steps=1000"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "sft: 16 steps" in printed and "steps/s" in printed

    saved = load_config(out / "spatialrl_config.yaml")
    assert saved.kind == "sft" and isinstance(saved.spatial, SpatialSFTArguments) and saved.trl.max_steps == 16
    assert saved.spatial.model == tiny_model_dir and saved.trl.learning_rate == 3e-3
    model, processor = load_model_and_processor(out)
    assert type(processor).__name__ == "Qwen2_5_VLImageOnlyProcessor"
    trained = {k: v for k, v in model.state_dict().items()}
    base, _ = load_model_and_processor(tiny_model_dir)
    changed = [k for k, v in base.state_dict().items() if not torch.equal(v, trained[k])]
    assert changed, "the saved weights are the trained ones"

    import json
    history = json.loads(max(out.glob("checkpoint-*/trainer_state.json")).read_text())["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert len(losses) == 16 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4, losses
    # the whole log history, as spatialrl report reads it: the same losses, then the summary row
    written = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in written if "loss" in e] == losses
    assert "train_runtime" in written[-1]


def test_max_seconds_stops_training_on_the_clock(tiny_model_dir, world_dataset_dir, tmp_path):
    import json

    out = tmp_path / "timed"
    cfg = _config(tiny_model_dir, world_dataset_dir, out, max_steps=100_000, max_seconds=1.0)
    summary = sft.train_sft(cfg)
    assert summary["stopped_by_time"] and 1 <= summary["steps"] < 100_000
    assert 1.0 <= summary["seconds"] < 30
    rows = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, summary["steps"] + 1))


@pytest.mark.parametrize("ended_by", ["clock", "max_steps"])
def test_a_timed_run_logs_its_last_loss_between_logging_steps(tiny_model_dir, world_dataset_dir, tmp_path, ended_by):
    import json

    out = tmp_path / "timed"
    steps, seconds = (100_000, 0.5) if ended_by == "clock" else (3, 600.0)
    cfg = _config(tiny_model_dir, world_dataset_dir, out, max_steps=steps, max_seconds=seconds, logging_steps=10_000)
    summary = sft.train_sft(cfg)
    rows = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert summary["stopped_by_time"] == (ended_by == "clock")
    assert [r["step"] for r in rows if "loss" in r] == [summary["steps"]]
    with pytest.raises(ConfigError, match=r"SpatialSFTArguments\.max_seconds must be > 0"):
        _config(tiny_model_dir, world_dataset_dir, out, max_seconds=0)


def test_lora_is_merged_into_the_saved_model(tiny_model_dir, world_dataset_dir, tmp_path):
    from spatialrl.models import load_model_and_processor

    cfg = _config(tiny_model_dir, world_dataset_dir, tmp_path / "lora", lora=True, lora_r=4, max_samples=16)
    summary = sft.train_sft(cfg)
    assert summary["steps"] == 2 and math.isfinite(summary["train_loss"]) and not summary["stopped_by_time"]
    model, _ = load_model_and_processor(tmp_path / "lora")
    assert not any("lora" in k for k in model.state_dict())


def test_cli_errors_name_the_field_and_resume_without_checkpoint(tiny_model_dir, world_dataset_dir, tmp_path,
                                                                   capsys):
    config = tmp_path / "sft.yaml"
    config.write_text(f"job: sft\nmodel: {tiny_model_dir}\ndataset: {world_dataset_dir}\noutput_dir: {tmp_path}/o\n")
    assert _run_cli(["--config", str(config), "think=verbose"]) == 2
    from spatialrl.train.config import THINK_MODES

    assert f"SpatialSFTArguments.think must be one of {list(THINK_MODES)}; got 'verbose'" in capsys.readouterr().err
    assert _run_cli(["--config", str(config), "learnin_rate=1e-3"]) == 2
    assert "did you mean 'learning_rate'" in capsys.readouterr().err
    assert _run_cli(["--config", str(config), "--resume", "max_steps=1", "torch_threads=1", "save_steps=1"]) == 0
    assert "no checkpoint-* in" in capsys.readouterr().out, "resume without a checkpoint starts from the beginning"
    # now there is one: resuming with a higher max_steps continues from step 1
    assert _run_cli(["--config", str(config), "--resume", "max_steps=2", "torch_threads=1", "save_steps=1"]) == 0
    assert '"resumed_from":' in (printed := capsys.readouterr().out) and "checkpoint-1" in printed
    assert _run_cli(["--config", str(config), f"dataset={tmp_path}/missing"]) == 2
    assert "spatialrl data build" in capsys.readouterr().err
    assert _run_cli(["--config", str(config), "--dry-run"]) == 0
    assert "think: template" in capsys.readouterr().out
