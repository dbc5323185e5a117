"""Random model outputs for fuzzing the reward policy (``tests/rewards/test_fuzz.py``,
``benchmarks/reward_fuzz.py``).

``random_completion(rng)`` builds a completion from fragments that real and adversarial
outputs are made of: tags (closed, unclosed, nested, wrong case), numbers in many spellings,
units, letters, yes/no, boxes, negations, hedges, inequalities, LaTeX, invisible and other
non-ASCII characters, and raw random characters. ``row_for(rng)`` gives the dataset columns
of a matching row, so a whole TRL reward call can be made.
"""

from __future__ import annotations

import random

__all__ = ["FRAGMENTS", "random_completion", "row_for"]

FRAGMENTS = (
    "<answer>", "</answer>", "<think>", "</think>", "<ANSWER>", "< answer >", "</ answer>", "<answer", "answer>",
    "3", "3.5", "-2", "+3", "1e400", "nan", "inf", "0", "1,200", "2,5", ".5", "½", "3½", "٣", "３", "1⁄2",
    "m", "cm", "meters", "ft", "'", '"', "sq ft", "m^2", "m²", "square meters", "cubic", "km", "parsec",
    "three", "twenty-one", "a hundred", "none", "zero", "no", "yes", "true", "false", "nope",
    "A", "B", "C", "(B)", "B.", "Option", "answer is", "answer:", "left", "right", "closer", "farther",
    "chair", "table", "[10, 20, 30, 40]", "(1,2),(3,4)", "[30, 20, 10, 40]", "{", "}", "[", "]", "(", ")",
    "not", "n't", "never", "wrong", "incorrect", "no idea", "maybe", "perhaps", "or", "and", "between",
    "to", "-", "–", "more than", "<", ">", "at least", "±", "?", "!", ",", ".", ";", ":", "\n", " ", "  ",
    "\\scalar{", "\\distance_unit{", "\\text{m}", "$", "\u200b", "\ufeff", "\u2060", "\u2800", "\u00ad",
    "é", "ß", "İ", "\u202e", "𝟑", "*", "**", "/", "^", "×", "sqrt(", "eval(", "__import__", "\\",
)  # fmt: skip

_ALPHABET = "".join(sorted(set("".join(FRAGMENTS)))) + "\x00\x7f\ud7ff\U0001f600"


def random_completion(rng: random.Random, max_pieces: int = 24) -> str:
    """One random completion: fragments and random characters, often wrapped in tags."""
    pieces = []
    for _ in range(rng.randint(0, max_pieces)):
        if rng.random() < 0.8:
            pieces.append(rng.choice(FRAGMENTS))
        else:
            pieces.append("".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 6))))
        if rng.random() < 0.5:
            pieces.append(" ")
    text = "".join(pieces)
    roll = rng.random()
    if roll < 0.5:
        return f"<think>{text[: len(text) // 2]}</think><answer>{text[len(text) // 2:]}</answer>"
    if roll < 0.7:
        return f"<answer>{text}</answer>"
    return text


def row_for(rng: random.Random) -> dict:
    """Dataset columns of one random row (every answer type and dimension)."""
    base = dict(answer_value=None, dimension=None, options=[], answer_index=-1, bbox=[], answer="")
    kind = rng.randrange(7)
    if kind == 0:
        return base | dict(answer_type="numerical", answer_value=rng.uniform(0.0, 9.0), dimension="length", answer="3")
    if kind == 1:
        return base | dict(answer_type="numerical", answer_value=float(rng.randrange(6)), dimension="count", answer="3")
    if kind == 2:
        return base | dict(answer_type="numerical", answer_value=rng.uniform(1, 30), dimension="area", answer="12")
    if kind == 3:
        return base | dict(answer_type="discrete", options=["chair", "table", "left", "right"],
                           answer_index=rng.randrange(4), answer="B")
    if kind == 4:
        return base | dict(answer_type="discrete", answer=rng.choice(["yes", "no"]))
    if kind == 5:
        return base | dict(answer_type="grounding", answer="[10, 20, 30, 40]", bbox=[10.0, 20.0, 30.0, 40.0])
    return base | dict(answer_type="open_ended", answer=rng.choice([
        "Yes, the chair is to the left of the table.", "The table is closer to the camera than the chair.",
        "A free-text description."]))
