"""The tokenizer corpus: the text a tiny model's BPE tokenizer is trained on.

``spatialrl model tiny`` and ``spatialrl pretrain`` build it here, from the synthetic world, and
hand it to :func:`spatialrl.models.tiny.build_tokenizer` (the models layer takes its corpus as
an argument and does not know the world). The text: fixed format strings (the chat template's
words, option letters, units, yes/no, boxes, every prompt of :mod:`spatialrl.prompts`), then for
seeded scenes every question of :mod:`spatialrl.world.questions` with the answer-format
instruction of SVQA-R1 Table 9, and its answer in the ``<think> </think> <answer> </answer>``
format. Deterministic in its arguments: the same arguments give the same texts, hence a
byte-identical tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterator

from spatialrl.prompts import FORMAT_INSTRUCTION, PROMPT_VARIANTS, apply_prompt, prompt_text

__all__ = ["FIXED_TEXT", "tokenizer_corpus"]

#: Format strings every tokenizer learns (each repeated so that its merges are learned).
FIXED_TEXT: tuple[str, ...] = (
    "You are a helpful assistant.",
    "system", "user", "assistant",
    FORMAT_INSTRUCTION,
    "<think> </think> <answer> </answer>",
    "<think>\n</think>\n<answer>\n</answer>",
    "Answer with the option's letter from the given choices directly.",
    "Answer with a single word or phrase.",
    "Please answer the question using a single word or phrase.",
    "Answer with a number.", "Answer yes or no.",
    "A. B. C. D. E. F.", "(A) (B) (C) (D)", "A B C D", "yes no Yes No",
    "m cm mm km meters meter centimeters centimetres metres inches inch feet foot ft in yards",
    "m^2 m2 square meters square feet sq ft",
    "[x1, y1, x2, y2]", "[0, 0, 112, 112]", "(x1, y1), (x2, y2)",
    "0 1 2 3 4 5 6 7 8 9 . , - + = % / ( ) [ ] { } : ; ? ! ' \"",
)  # fmt: skip


def tokenizer_corpus(scenes: int = 100, seed: int = 0, image_size: int = 112) -> Iterator[str]:
    """Training text for the tokenizer: :data:`FIXED_TEXT` and the evaluation prompt templates
    (four times over), then for ``scenes`` seeded scenes every question (with the answer-format
    instruction, joined by a space or, every other scene, a newline) and its answer in the
    ``<think> </think> <answer> </answer>`` format. Deterministic in its arguments."""
    import numpy as np

    from spatialrl.world import questions as Q
    from spatialrl.world.render import render
    from spatialrl.world.scene import sample_scene

    fixed = list(FIXED_TEXT) + [apply_prompt("", variant) for variant in PROMPT_VARIANTS]
    for _ in range(4):  # make sure the fixed strings' merges are learned
        yield from fixed
    for index in range(scenes):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        scene = sample_scene(rng, f"tok{seed}-{index}")
        result = render(scene, image_size)
        ctx = Q.SceneContext(scene, Q.views_from_render(result), result.camera)
        for sample in Q.generate(ctx, rng):
            yield prompt_text(sample.question, "\n" if index % 2 else None)
            yield f"<think> {sample.question_type.replace('_', ' ')} </think> <answer>{sample.answer}</answer>"
            yield sample.answer
