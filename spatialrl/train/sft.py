"""Supervised cold start (``spatialrl sft``): teach a policy the answer format before RL.

TRL's ``SFTTrainer`` (trl 1.16) on the dataset's canonical answers, written in the format the
format reward checks (Smooth Operator eq. 4's r_fmt, SVQA-R1 sec. 3.2's r^f)::

    <think>{rationale}</think><answer>{answer}</answer>

Neither paper uses an SFT stage (Smooth Operator sec. 4.1 trains "one-stage RL ... bypassing ...
CoT cold-start"; SVQA-R1 starts from Qwen2.5-VL-3B's pre-trained weights). It is our addition,
for starting points that cannot follow the instruction at all, such as a tiny random model: a
group whose completions all fail the format has zero reward variance and no gradient.

Data: TRL's conversational prompt-completion format for vision-language models. ``prompt`` is
the user turn of :func:`spatialrl.data.export.trl_prompt` (one image placeholder per image of
the row, then the question and the <think>/<answer> instruction of
:func:`spatialrl.prompts.prompt_text`: exactly what GRPO prompts with); ``completion`` is one
assistant turn with the target; ``images`` the row's images (one PNG, or the K frames of a
multi-frame row: TRL's ``images`` key, since its ``image`` key holds one image per example).
TRL's ``DataCollatorForVisionLanguageModeling`` fills the image placeholders, renders both turns
with the processor's chat template, and, with ``completion_only_loss``, sets every prompt label
(system turn, image tokens, question) to -100: the loss is on the completion (target text and
the end-of-turn token) only. One deviation from TRL: Qwen's chat template writes a newline after
every ``<|im_end|>``, and TRL trains on the completion's trailing one. Generation stops at
``<|im_end|>``, so that newline is never sampled; a model pretrained without it (our tiny spatial
VLM) pays about 10 nats for it per example, which dominated the first SFT steps' gradient (mean
loss per token 0.99 with it, 0.25 without, on the demo data; docs/experiments/demo.md). :class:`EndOfTurnMasking`
masks every label that follows an end-of-turn token.

The <think> block (``think``): ``template`` (default) holds a short generic rationale chosen by
question type (:data:`THINK_TEMPLATES`): it names what to look at, never the answer, so the
policy learns to write a non-empty reasoning block without being taught invented reasoning;
``empty`` gives ``<think></think>`` (shortest completions; the format reward accepts it);
``option`` holds, for a multiple-choice question, the text of the correct option (then its letter
is the answer; empty for other questions), the format a checkpoint pretrained with
``spatialrl pretrain --set think=option`` answers in (docs/experiments/pretraining.md); ``option_text``
also answers with that text instead of the letter (the scorers accept an option named by its
text, ``spatialrl.answers.parse_choice``).

The final model and processor go to ``output_dir`` (LoRA adapters are merged first), loadable by
:func:`spatialrl.models.load_model_and_processor`; the resolved config goes to
``output_dir/spatialrl_config.yaml`` and the trainer's log history (one JSON object per logged
step, then the summary row) to ``output_dir/log_history.jsonl``, the format ``spatialrl report``
reads. ``max_seconds`` stops training after that much wall-clock time
(:class:`spatialrl.train.callbacks.WallClockLimit`), e.g. for a control run with the same time
budget as an RL run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from spatialrl.data.load import data_files, load_split  # noqa: F401  (re-exported for callers)
from spatialrl.train.job import add_job_arguments, is_main_process, load_job_config, replace_progress

HELP = "supervised cold start: learn the <think>/<answer> format on the dataset's canonical answers"

__all__ = [
    "DIRECTION_TEXT_TYPES",
    "HELP",
    "OPTION_LINE",
    "THINK_TEMPLATES",
    "add_arguments",
    "build_sft_dataset",
    "build_trainer",
    "data_files",
    "load_split",
    "run",
    "sft_completion",
    "sft_example",
    "target_text",
    "option_text",
    "think_text",
    "train_sft",
]

#: Generic rationale per question type for ``think: template`` (never contains the answer).
THINK_TEMPLATES: dict[str, str] = {
    "object_count": "I count the matching objects in the image.",
    "abs_distance": "I locate both objects and estimate the distance between their centers.",
    "object_size": "I find the object and estimate its longest side.",
    "room_size": "I estimate the length and width of the room and multiply them.",
    "camera_depth": "I estimate how far the object is from the camera.",
    "object_height": "I find the object and estimate its height.",
    "vertical_distance": "I compare the heights of the two object centers.",
    "horizontal_distance": "I locate both objects on the floor and estimate the distance between them.",
    "rel_distance": "I compare the distances of the options to the named object.",
    "rel_direction": "I compare the positions of the two objects in the image.",
    "rel_direction_allocentric": "I imagine the view from the first object toward the second.",
    "closer_to_camera": "I compare how far each object is from the camera.",
    "compare_yes_no": "I compare the two objects.",
    "compare_choice": "I compare the two objects.",
    "grounding_bbox": "I find the object and read its box in pixels.",
    "open_ended": "I look at the objects the question names.",
}
DEFAULT_THINK = "I look at the image."


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


#: An option line of a multiple-choice question: ``A. text``.
OPTION_LINE = re.compile(r"^([A-H])\. (.+)$", re.MULTILINE)


def option_text(question: str, answer: str) -> str:
    """The text of the option whose letter ``answer`` is (from the ``A. text`` lines of
    ``question``); empty when the question has no such option."""
    options = {m.group(1): m.group(2).strip() for m in OPTION_LINE.finditer(question)}
    return options.get(answer.strip(), "")


#: Question types whose options are direction words ("left", "in front of", "left and closer to
#: the camera"), answered by the option's text under ``think='direction_text'``.
DIRECTION_TEXT_TYPES = ("rel_direction", "rel_direction_allocentric")


def think_text(question_type: str | None, mode: str = "template", question: str = "", answer: str = "") -> str:
    """What goes between <think> and </think> for ``mode`` (``template``, ``empty`` or
    ``option``; ``option`` reads ``question`` and ``answer``)."""
    if mode in ("empty", "direction_text"):
        return ""
    if mode in ("option", "option_text"):
        return option_text(question, answer)
    if mode != "template":
        raise ValueError("think mode must be 'template', 'empty', 'option', 'option_text' or 'direction_text', "
                         f"got {mode!r}")
    return THINK_TEMPLATES.get(question_type or "", DEFAULT_THINK)


def target_text(answer: str, question_type: str | None = None, think: str = "template", question: str = "") -> str:
    """The SFT target: ``<think>{rationale}</think><answer>{answer}</answer>``. With
    ``think='option_text'`` a multiple-choice answer names its option by the text in both blocks
    (``<think>left</think><answer>left</answer>``), which the scorers' ``parse_choice`` reads as
    that option; other questions keep an empty block and their answer. With
    ``think='direction_text'`` only the types of :data:`DIRECTION_TEXT_TYPES` answer by the
    option's text (``<think></think><answer>left</answer>``: the direction word is the decision,
    with no letter lookup after it); names and everything else keep ``empty``'s bare answer."""
    if think == "direction_text":
        text = option_text(question, answer) if question_type in DIRECTION_TEXT_TYPES else ""
        return f"<think></think><answer>{text or answer}</answer>"
    if think == "option_text":
        text = option_text(question, answer)
        return f"<think>{text}</think><answer>{text or answer}</answer>"
    return f"<think>{think_text(question_type, think, question, answer)}</think><answer>{answer}</answer>"


def sft_completion(row: dict[str, Any], think: str = "template") -> list[dict[str, Any]]:
    """The assistant turn of a row's SFT example: its :func:`target_text`."""
    return [{"role": "assistant",
             "content": [{"type": "text", "text": target_text(row["answer"], row.get("question_type"), think,
                                                             row["question"])}]}]


def sft_example(row: dict[str, Any], think: str = "template", separator: str | None = None) -> dict[str, Any]:
    """A dataset row as a TRL conversational prompt-completion example with its ``images`` (one
    placeholder per image: :func:`spatialrl.data.schema.row_images`); ``separator`` joins
    question and instruction (``spatialrl.prompts.prompt_text``)."""
    from spatialrl.data.export import trl_prompt
    from spatialrl.data.schema import row_images

    images = row_images(row)
    return {"prompt": trl_prompt(row["question"], len(images), separator), "completion": sft_completion(row, think),
            "images": images}


def build_sft_dataset(cfg: Any, seed: int = 0) -> Any:
    """The training set of an SFT job (``cfg``: its :class:`~spatialrl.train.config.SpatialSFTArguments`,
    ``seed``: the run's): columns ``prompt``,
    ``completion`` (conversational) and ``images`` (every image of a row, whether it has one or
    several: :func:`spatialrl.data.export.with_trl_prompts`)."""
    from spatialrl.data.export import with_trl_prompts

    ds = load_split(cfg.dataset, cfg.train_split, max_samples=cfg.max_samples, question_types=cfg.question_types,
                    seed=seed, whole_pairs=False)
    text_columns = ["question", "answer", "question_type"]
    ds = ds.select_columns([c for c in ("image", "frames") if c in ds.column_names] + text_columns)
    from spatialrl.models import prompt_separator

    separator = prompt_separator(cfg.model)  # the prompt the start model learned, else Table 9's
    ds = with_trl_prompts(ds, separator)

    def convert(question: str, answer: str, question_type: str) -> dict[str, Any]:
        return {"completion": sft_completion({"question": question, "answer": answer, "question_type": question_type},
                                             cfg.think)}

    return ds.map(convert, input_columns=text_columns, remove_columns=text_columns)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _losses(log_history: list[dict[str, Any]]) -> list[float]:
    return [float(e["loss"]) for e in log_history if "loss" in e]


class EndOfTurnMasking:
    """A data collator wrapper: labels right after the end-of-turn token are set to -100 (they are
    never generated: decoding stops at the end of turn). See the module docstring."""

    def __init__(self, collator: Any, end_of_turn_id: int):
        self.collator = collator
        self.end_of_turn_id = int(end_of_turn_id)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(examples)
        labels = batch["labels"]
        after_end = batch["input_ids"][:, :-1] == self.end_of_turn_id
        labels[:, 1:][after_end] = -100
        return batch


def build_trainer(job: Any) -> tuple[Any, Any, Any]:
    """``(trl.SFTTrainer, processor, train_set)`` for the SFT job ``job``, ready to ``train()``."""
    import copy

    from trl import SFTTrainer

    from spatialrl.train.loading import load_for_training

    cfg = job.spatial
    train_set = build_sft_dataset(cfg, seed=job.trl.seed)  # first: a wrong dataset path fails before the model loads
    # fp32 master weights (bf16 is autocast by the Trainer); a LoRA run may keep a bf16 base frozen
    model, processor, _ = load_for_training(job, log=lambda line: print(f"sft: {line}", flush=True) if is_main_process() else None)
    args = copy.copy(job.trl)  # validated by TRL; spatialrl trains on the answer only
    args.completion_only_loss = True
    from spatialrl.train.checkpoints import CheckpointWeightsMixin

    class ResumableSFTTrainer(CheckpointWeightsMixin, SFTTrainer):
        """SFTTrainer whose resume restores Qwen2.5-VL's weights (see spatialrl.train.checkpoints)."""

    callbacks = None
    if cfg.max_seconds is not None:
        from spatialrl.train.callbacks import wall_clock_limit

        callbacks = [wall_clock_limit(cfg.max_seconds)]
    trainer = ResumableSFTTrainer(model=model, args=args, train_dataset=train_set, processing_class=processor,
                                  peft_config=cfg.lora_config(), callbacks=callbacks)
    end_of_turn = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end_of_turn, int) and end_of_turn != processor.tokenizer.unk_token_id:
        trainer.data_collator = EndOfTurnMasking(trainer.data_collator, end_of_turn)
    return trainer, processor, train_set


def train_sft(job: Any, resume: bool = False, callbacks: list[Any] | None = None,
              progress: Any = None) -> dict[str, Any]:
    """Run the SFT job ``job`` (a :class:`~spatialrl.train.config.Job`); returns a summary
    (steps, losses, seconds, steps/s, output_dir, stopped_by_time).

    ``callbacks``: further ``TrainerCallback``s. ``progress``: a ``TrainerCallback`` that replaces
    the Trainer's progress bar and its printing of every log dict (None keeps them).
    """
    import torch

    from spatialrl.train.callbacks import WallClockLimit, write_log_history
    from spatialrl.train.checkpoints import last_complete_checkpoint
    from spatialrl.train.config import save_config

    cfg = job.spatial
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    out = Path(job.trl.output_dir)
    say = (lambda line: print(f"sft: {line}", flush=True)) if is_main_process() else (lambda line: None)
    checkpoint = last_complete_checkpoint(out, log=say) if resume else None  # skips a save that was killed
    if resume and checkpoint is None and is_main_process():
        print(f"sft: --resume: no checkpoint-* in {out}; starting from the beginning", flush=True)

    trainer, processor, train_set = build_trainer(job)
    for callback in callbacks or []:
        trainer.add_callback(callback)
    if progress is not None:
        replace_progress(trainer, progress)
    if trainer.is_world_process_zero():
        save_config(job, out / "spatialrl_config.yaml")
        n_params = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        print(f"sft: {len(train_set)} samples from {cfg.dataset}:{cfg.train_split}, {n_params:,} trainable "
              f"parameters, think={cfg.think}, device={trainer.args.device}, -> {out}", flush=True)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - start

    model = trainer.model
    if cfg.lora:
        model = model.merge_and_unload()
    if trainer.is_world_process_zero():
        if cfg.lora:
            model.save_pretrained(str(out))
        processor.save_pretrained(str(out))
    if not cfg.lora:
        trainer.save_model(str(out))
    steps = int(trainer.state.global_step)
    losses = _losses(trainer.state.log_history)
    limit = next((c for c in trainer.callback_handler.callbacks if isinstance(c, WallClockLimit)), None)
    stopped_by_time = bool(limit is not None and limit.stopped)
    if trainer.is_world_process_zero():
        write_log_history(out / "log_history.jsonl", trainer.state.log_history)
    summary = {
        "output_dir": str(out),
        "samples": len(train_set),
        "steps": steps,
        "train_loss": float(result.training_loss),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "resumed_from": checkpoint,
        "seconds": round(seconds, 3),
        "steps_per_second": round(steps / seconds, 3) if seconds > 0 else None,
        "stopped_by_time": stopped_by_time,
    }
    if trainer.is_world_process_zero():
        loss = (f"loss {summary['first_loss']:.4f} -> {summary['last_loss']:.4f}" if losses
                else f"mean loss {summary['train_loss']:.4f}")
        why = f" (stopped by max_seconds {cfg.max_seconds:g})" if stopped_by_time else ""
        print(f"sft: {steps} steps in {seconds:.1f} s{why} ({summary['steps_per_second']} steps/s), {loss}; "
              f"model + processor saved to {out}", flush=True)
    return summary


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


#: Tokens the command's own options do not take go to TRL's parser (spatialrl.cli).
PASSTHROUGH = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser, "sft")


def run(args: argparse.Namespace) -> int:
    cfg, code = load_job_config(args, "sft")
    if cfg is None:
        return int(code or 0)
    try:
        summary = train_sft(cfg, resume=bool(args.resume))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if is_main_process():
        print(json.dumps(summary, indent=2))
    return 0
