"""From views to training batches: the :class:`Bank` holds every view's image, dense truth and
tokenised questions (with where each question names an object, an option or its answer), the
:class:`Sampler` draws a step's views and questions, and :func:`_collate` lays them out as the
model's inputs plus the targets of the auxiliary losses (:class:`Batch`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spatialrl.train.sft import OPTION_LINE

if TYPE_CHECKING:  # pragma: no cover
    from spatialrl.train.pretrain.config import PretrainConfig

__all__ = ["Bank", "Batch", "Sampler", "make_bank", "target_text"]


class Bank:
    """Every view's image, dense truth and tokenised questions, ready for batching."""

    def __init__(self, views: list[Any], processor: Any, think: str, image_size: int, progress: bool = False,
                 separator: str = "\n"):
        import numpy as np

        from spatialrl.prompts import prompt_text

        tok = processor.tokenizer
        self.images = np.stack([v.image for v in views])
        self.dense = {k: np.stack([v.dense[k] for v in views]) for k in views[0].dense}
        self.n = len(views)
        marker = "\x00QUESTION\x00"
        rendered = processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": marker}]}],
            add_generation_prompt=True, tokenize=False,
        )
        before, after = rendered.split(marker)
        image_tag = "<|image_pad|>"
        pre, post = before.split(image_tag)
        self.image_token_id = tok.convert_tokens_to_ids(image_tag)
        self.n_image_tokens = (image_size // 28) ** 2
        self.prefix = tok(pre, add_special_tokens=False)["input_ids"]
        self.after_image = tok(post, add_special_tokens=False)["input_ids"]
        self.suffix = tok(after, add_special_tokens=False)["input_ids"]
        self.eos = tok.convert_tokens_to_ids("<|im_end|>")
        self.pad = tok.pad_token_id
        self.attend_think = False  # answer attention also from the <think> text (recipe answer_attend_think)
        # The answer value sits between the tokens "answer" (of "<answer>") and the last "</".
        self.answer_word_id = tok.convert_tokens_to_ids("answer")
        self.close_tag_id = tok.convert_tokens_to_ids("</")
        # Tokenise every question once: items[view][family] = [(kind, prompt ids, target ids, mentions)],
        # mentions = [(token index in the prompt, 0 object | 1 count, target (8,))] (see mention_spans).
        from spatialrl.train.pretrain.data import mention_spans

        questions, targets, answers, keys = [], [], [], []
        for vi, v in enumerate(views):
            for qt, q, a in v.qa:
                keys.append((vi, "qa", qt))
                questions.append(prompt_text(q, separator))
                targets.append(target_text(a, qt, think, q))
                answers.append(a)
            for kind, q, a in v.texts:
                keys.append((vi, "ground", kind))
                questions.append(prompt_text(q, separator))
                targets.append(target_text(a, None, think))
                answers.append(a)
        enc = tok(questions, add_special_tokens=False, return_offsets_mapping=True)
        t_ids = tok(targets, add_special_tokens=False)["input_ids"]
        self.items: list[dict[str, list[tuple[str, list[int], list[int], list[Any]]]]] = [
            {"qa": [], "ground": []} for _ in views]
        self.prompt_offset = len(self.prefix) + self.n_image_tokens + len(self.after_image)
        self.image_start = len(self.prefix)
        for n, ((vi, fam, kind), qi, ti) in enumerate(zip(keys, enc["input_ids"], t_ids)):
            offsets = enc["offset_mapping"][n]
            mentions = []
            for start, end, mkind, target, where in mention_spans(questions[n], views[vi]):
                last = max((i for i, (a, b) in enumerate(offsets) if a < end and b > start), default=None)
                if last is not None:
                    vec = np.zeros(8, dtype=np.float32)
                    vec[: len(target)] = target
                    mentions.append((last, 0 if mkind == "object" else 1, vec, where.astype(np.float32)))
            options = []  # the last token of each option's text ("A. <text>" lines), in order
            for m in OPTION_LINE.finditer(questions[n]):
                last = max((i for i, (a, b) in enumerate(offsets) if a < m.end(2) and b > m.start(2)), default=None)
                if last is not None:
                    options.append(last)
            letter = answers[n].strip()
            correct = "ABCDEFGH".index(letter) if len(letter) == 1 and letter in "ABCDEFGH"[:len(options)] else -1
            self.items[vi][fam].append((kind, qi, ti, mentions, options, correct))

    def sequence(self, prompt_ids: list[int], target_ids: list[int]) -> tuple[list[int], int]:
        """Token ids of one conversation and the index where the answer starts."""
        ids = (self.prefix + [self.image_token_id] * self.n_image_tokens + self.after_image + prompt_ids
               + self.suffix)
        start = len(ids)
        return ids + target_ids + [self.eos], start


def target_text(answer: str, question_type: str | None, think: str, question: str = "") -> str:
    """``<think>...</think><answer>{answer}</answer>``: the format the format reward checks,
    exactly as ``spatialrl sft`` writes it (:func:`spatialrl.train.sft.target_text`). ``think``:
    ``empty``; ``template`` (sft's rationale per question type); ``option`` (the text of the option
    whose letter ``answer`` is, read from the ``A. text`` lines of ``question``, so the model says
    the answer in words before it copies that option's letter); ``option_text`` (that text in
    both blocks: the answer names the option by its text)."""
    from spatialrl.train.sft import target_text as sft_target_text

    return sft_target_text(answer, question_type, think, question)


def make_bank(cfg: PretrainConfig, processor: Any, indices: range, progress: bool, desc: str) -> Bank:
    from tqdm.auto import tqdm

    from spatialrl.train.pretrain.data import make_views

    views = []
    for i in tqdm(indices, desc=desc, unit="scene", disable=not progress, dynamic_ncols=True, file=sys.stderr):
        views.extend(make_views(i, cfg.world_seed, cfg.image_size, tuple(cfg.ground_extra)))
    bank = Bank(views, processor, cfg.think, cfg.image_size, separator=cfg.prompt_separator)
    bank.attend_think = cfg.answer_attend_think
    return bank


# --------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------


@dataclass
class Batch:
    pixel_values: Any
    grid_thw: Any
    dense: dict[str, Any]
    image_of_seq: Any | None = None
    input_ids: Any | None = None
    attention_mask: Any | None = None
    position_ids: Any | None = None
    labels: Any | None = None
    kinds: list[str] | None = None
    mention_seq: Any | None = None
    mention_pos: Any | None = None
    mention_kind: Any | None = None
    mention_target: Any | None = None
    mention_where: Any | None = None
    image_start: int = 0
    answer_seq: Any | None = None  # (n,) sequence of each answer-predicting position with mentions
    answer_pos: Any | None = None  # (n,) the position
    answer_targets: Any | None = None  # (n, L) bool: the mentions of its question
    answer_named: Any | None = None  # (n, 2) position of the first / second distinct object named (-1: none)
    answer_options: Any | None = None  # (n, 2) position of the end of option A's / B's text (-1: none)
    answer_correct: Any | None = None  # (n,) position of the end of the correct option's text (-1: none)
    compare_target: Any | None = None  # (n, 8) first named object's properties minus the second's
    compare_mask: Any | None = None  # (n,) bool: the first two things named are objects


def _collate(bank: Bank, model: Any, mean: Any, std: Any, views: list[int],
             questions: list[tuple[int, list[int], list[int], str]] | None) -> Batch:
    """A batch of ``views`` (indices into the bank) and, optionally, questions
    ``(image slot, prompt ids, target ids, kind)`` asked of them."""
    import numpy as np
    import torch

    from spatialrl.train.pretrain.data import patchify

    imgs = bank.images[views]
    pixel_values = torch.from_numpy(patchify(imgs, mean, std))
    g = bank.images.shape[1] // 14
    grid_thw = torch.tensor([[1, g, g]] * len(views))
    dense = {k: torch.from_numpy(np.ascontiguousarray(v[views])) for k, v in bank.dense.items()}
    batch = Batch(pixel_values, grid_thw, dense)
    if not questions:
        return batch
    seqs, starts = zip(*(bank.sequence(q[1], q[2]) for q in questions))
    L = max(len(s) for s in seqs)
    n = len(seqs)
    input_ids = torch.full((n, L), bank.pad, dtype=torch.long)
    attention = torch.zeros((n, L), dtype=torch.long)
    labels = torch.full((n, L), -100, dtype=torch.long)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        input_ids[i, : len(s)] = torch.tensor(s)
        attention[i, : len(s)] = 1
        labels[i, st - 1 : len(s) - 1] = torch.tensor(s[st:])  # position t predicts token t + 1
    mm = (input_ids == bank.image_token_id).long()
    position_ids, _ = model.model.get_rope_index(input_ids, image_grid_thw=grid_thw[[q[0] for q in questions]],
                                                 attention_mask=attention, mm_token_type_ids=mm)
    batch.image_of_seq = torch.tensor([q[0] for q in questions])
    batch.input_ids, batch.attention_mask, batch.position_ids, batch.labels = input_ids, attention, position_ids, labels
    batch.kinds = [q[3] for q in questions]
    rows = [(i, bank.prompt_offset + tok_i, kind, vec, where) for i, q in enumerate(questions) if len(q) > 4
            for tok_i, kind, vec, where in q[4]]
    if rows:
        batch.mention_seq = torch.tensor([r[0] for r in rows])
        batch.mention_pos = torch.tensor([r[1] for r in rows])
        batch.mention_kind = torch.tensor([r[2] for r in rows])
        batch.mention_target = torch.from_numpy(np.stack([r[3] for r in rows]))
        batch.mention_where = torch.from_numpy(np.stack([r[4] for r in rows]))
        batch.image_start = bank.image_start
        mentions_of: dict[int, list[int]] = {}
        # distinct things named (objects, counted categories) in text order: (position, kind, target)
        named: dict[int, list[tuple[int, int, Any]]] = {}
        for r in sorted(rows, key=lambda r: (r[0], r[1])):
            mentions_of.setdefault(r[0], []).append(r[1])
            if all(k != r[2] or not np.array_equal(r[3], v) for _, k, v in named.get(r[0], [])):
                named.setdefault(r[0], []).append((r[1], r[2], r[3]))
        answer_rows = []
        for i, (s, st) in enumerate(zip(seqs, starts)):
            if i not in mentions_of:
                continue
            for p in _answer_positions(s[st:], bank.answer_word_id, bank.close_tag_id, bank.attend_think):
                answer_rows.append((i, st + p))
        if answer_rows:
            batch.answer_seq = torch.tensor([r[0] for r in answer_rows])
            batch.answer_pos = torch.tensor([r[1] for r in answer_rows])
            batch.answer_targets = torch.zeros((len(answer_rows), L), dtype=torch.bool)
            batch.answer_named = torch.full((len(answer_rows), 2), -1, dtype=torch.long)
            batch.answer_options = torch.full((len(answer_rows), 2), -1, dtype=torch.long)
            batch.answer_correct = torch.full((len(answer_rows),), -1, dtype=torch.long)
            batch.compare_target = torch.zeros((len(answer_rows), 8))
            batch.compare_mask = torch.zeros(len(answer_rows), dtype=torch.bool)
            for j, (i, _) in enumerate(answer_rows):
                batch.answer_targets[j, mentions_of[i]] = True
                options = questions[i][5] if len(questions[i]) > 5 else []
                for k, p in enumerate(options[:2]):
                    batch.answer_options[j, k] = bank.prompt_offset + p
                correct = questions[i][6] if len(questions[i]) > 6 else -1
                if correct >= 0:
                    batch.answer_correct[j] = bank.prompt_offset + options[correct]
                first_two = named.get(i, [])[:2]
                for k, (p, _, _) in enumerate(first_two):
                    batch.answer_named[j, k] = p
                if len(first_two) == 2 and first_two[0][1] == first_two[1][1] == 0:  # two objects
                    batch.compare_target[j] = torch.from_numpy(first_two[0][2] - first_two[1][2])
                    batch.compare_mask[j] = True
    return batch


#: At most this many answer-predicting positions per question get the answer attention supervision.
ANSWER_POSITIONS = 4


def _answer_positions(target: list[int], answer_word: int, close_tag: int, think: bool = False) -> list[int]:
    """Indices into ``target`` (``<think>..</think><answer>VALUE</answer><|im_end|>``) of the
    positions that predict the value's tokens: from the token ``answer`` of ``<answer>`` up to the
    one before the value's last token (at most :data:`ANSWER_POSITIONS`). With ``think``, first
    the positions that predict the think text's tokens (from the ``>`` of ``<think>``, index 1,
    up to the one before the first ``</``; at most :data:`ANSWER_POSITIONS`)."""
    out = []
    if think:
        first_close = next((i for i, t in enumerate(target) if t == close_tag), -1)
        out = list(range(1, min(first_close - 1, 1 + ANSWER_POSITIONS))) if first_close - 1 > 1 else []
    try:
        first = target.index(answer_word)
    except ValueError:
        return out
    close = max((i for i, t in enumerate(target) if t == close_tag), default=-1)
    return out + (list(range(first, min(close - 1, first + ANSWER_POSITIONS))) if close - 1 > first else [])


class Sampler:
    """Draws the views and questions of a step (seeded)."""

    def __init__(self, bank: Bank, cfg: PretrainConfig, seed: int):
        import numpy as np

        self.bank, self.cfg = bank, cfg
        self.rng = np.random.default_rng(seed)

    def draw_views(self, n: int) -> list[int]:
        return [int(v) for v in self.rng.choice(self.bank.n, size=min(n, self.bank.n), replace=False)]

    def draw(self, stage: str) -> tuple[list[int], list[tuple[int, list[int], list[int], str]]]:
        cfg, rng = self.cfg, self.rng
        views = self.draw_views(cfg.images_per_step)
        ground_share = 1.0 - cfg.ground_qa_share if stage == "ground" else cfg.mix_ground_share
        questions = []
        for slot, v in enumerate(views):
            pools = self.bank.items[v]
            for _ in range(cfg.questions_per_image):
                fam = "ground" if (rng.random() < ground_share and pools["ground"]) or not pools["qa"] else "qa"
                pool = pools[fam]
                weights = cfg.type_weights if fam == "qa" else cfg.ground_weights
                if weights:
                    w = [weights.get(item[0], 1.0) for item in pool]
                    s = sum(w)
                    k = int(rng.choice(len(pool), p=[x / s for x in w])) if s > 0 else int(rng.integers(len(pool)))
                else:
                    k = int(rng.integers(len(pool)))
                kind, p, t, mentions, options, correct = pool[k]
                questions.append((slot, p, t, f"{fam}:{kind}", mentions, options, correct))
        return views, questions



def _held_batch(cfg: PretrainConfig, held: Bank, model: Any, mean: Any, std: Any) -> Batch:
    """The fixed held-out diagnostic batch: ``heldout_samples`` questions (QA and grounding) of the
    held-out views, each asked of its own view."""
    import numpy as np

    questions = []
    for slot in range(held.n):
        for fam in ("qa", "ground"):
            for kind, p, t, mentions, options, correct in held.items[slot][fam]:
                questions.append((slot, p, t, f"{fam}:{kind}", mentions, options, correct))
    order = np.random.default_rng(cfg.seed + 1).permutation(len(questions))[: cfg.heldout_samples]
    return _collate(held, model, mean, std, list(range(held.n)), [questions[i] for i in sorted(order)])
