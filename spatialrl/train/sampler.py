"""A pair-preserving repeat sampler for Spatial-GRPO (SVQA-R1 sec. 3.3).

TRL's ``RepeatSampler`` draws ``batch_size`` distinct prompts per generation batch (over all
processes) and repeats each ``mini_repeat_count`` (= G) times. Accelerate then hands each
process a contiguous run of ``batch_size / num_processes`` prompts. This sampler shuffles
*pairs* (an original and its mirrored twin) instead of rows and lays each pair out as two
adjacent prompts, so as long as every process receives an even number of prompts per
generation batch (the config checks it), a pair is never split across generation batches or
processes, whatever the batch size, accumulation steps or process count.

The permutation depends only on ``(seed, epoch)``: a run resumed from a checkpoint sees the
same data order as an uninterrupted one (the trainer calls ``set_epoch``).

With ``strata`` (a label per pair, e.g. its question type; our addition, not in the papers) the
order is stratified: rounds that each hold one pair of every stratum that has pairs left, in a
random order within the round. A short run then sees every question type about equally often
and spread over the run, instead of what one random permutation happens to give (in a 55-step
demo run, 2 to 15 questions per type). Each stratum still exhausts its own pairs in a random
order; strata with more pairs go on after the smaller ones are used up. A label may be a tuple
of levels, e.g. ``(question_type, answer)``: then the order within each first-level stratum is
itself stratified by the second level, and so on, so a yes/no type alternates its answers
instead of meeting five "no" in a row (a level whose values are all distinct, such as a numeric
answer, leaves that stratum's random order as it is).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from spatialrl._extras import requires_extra

with requires_extra("train"):
    import torch
    from torch.utils.data import Sampler


class PairRepeatSampler(Sampler[int]):
    """Yield dataset indices pair by pair, each repeated as TRL's RepeatSampler does.

    Args:
        pairs: ``(original_index, mirror_index)`` for every pair in the dataset.
        mini_repeat_count: repetitions of each index in a row (G, the group size).
        batch_size: distinct prompts per generation batch over all processes (even).
        repeat_count: how many times each generation batch is yielded (TRL reuses it
            ``num_iterations * steps_per_generation`` times).
        shuffle: shuffle pair order (per epoch, from ``seed``).
        seed: base seed.
        strata: a label per pair (same length as ``pairs``), a string or a tuple of levels; when
            given with ``shuffle``, the order is stratified by label (see the module docstring).
    """

    def __init__(self, pairs: Sequence[tuple[int, int]], mini_repeat_count: int, batch_size: int,
                 repeat_count: int = 1, shuffle: bool = True, seed: int = 0,
                 strata: Sequence[str | tuple[str, ...]] | None = None) -> None:
        if batch_size % 2:
            raise ValueError(f"batch_size (prompts per generation batch) must be even to hold whole pairs, got {batch_size}")
        if len(pairs) * 2 < batch_size:
            raise ValueError(
                f"the dataset has {len(pairs)} pairs, fewer than one generation batch needs ({batch_size // 2}); "
                "use more data or a smaller per_device_train_batch_size"
            )
        if strata is not None and len(strata) != len(pairs):
            raise ValueError(f"strata must hold one label per pair: {len(strata)} labels for {len(pairs)} pairs")
        self.pairs = [tuple(p) for p in pairs]
        self.strata = None if strata is None else [
            tuple(str(level) for level in label) if isinstance(label, tuple) else (str(label),) for label in strata
        ]
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def pair_order(self) -> list[int]:
        if not self.shuffle:
            return list(range(len(self.pairs)))
        generator = torch.Generator()
        generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.pairs), generator=generator).tolist()
        if self.strata is None:
            return order
        return self._interleave(order, 0, generator)

    def _interleave(self, order: list[int], level: int, generator: torch.Generator) -> list[int]:
        """``order`` stratified by level ``level`` of the labels (and, within, by the next levels)."""
        # Each stratum keeps the order its pairs have in ``order`` (random, or stratified by the
        # next level); round r takes the r-th pair of every stratum that has one, in a fresh
        # random order of the strata.
        by_stratum: dict[str, list[int]] = {}
        for index in order:
            by_stratum.setdefault(self.strata[index][level], []).append(index)
        queues = list(by_stratum.values())
        if level + 1 < min(len(self.strata[i]) for i in order):
            queues = [self._interleave(q, level + 1, generator) for q in queues]
        stratified: list[int] = []
        for round_index in range(max(len(q) for q in queues)):
            in_round = [q[round_index] for q in queues if round_index < len(q)]
            stratified += [in_round[i] for i in torch.randperm(len(in_round), generator=generator).tolist()]
        return stratified

    def __iter__(self) -> Iterator[int]:
        flat = [index for p in self.pair_order() for index in self.pairs[p]]
        usable = len(flat) - len(flat) % self.batch_size
        for start in range(0, usable, self.batch_size):
            chunk = flat[start:start + self.batch_size]
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index
        self.epoch += 1  # without set_epoch, successive passes still differ

    def __len__(self) -> int:
        usable = (len(self.pairs) * 2) // self.batch_size * self.batch_size
        return usable * self.mini_repeat_count * self.repeat_count


def find_pairs(pair_ids: Sequence[str], views: Sequence[str]) -> tuple[list[tuple[int, int]], list[int]]:
    """Indices of complete ``(original, mirror)`` pairs, and the indices of rows without a twin."""
    by_pair: dict[str, dict[str, list[int]]] = {}
    for index, (pid, view) in enumerate(zip(pair_ids, views)):
        by_pair.setdefault(pid, {}).setdefault(view, []).append(index)
    pairs, lonely = [], []
    for views_of in by_pair.values():
        originals, mirrors = views_of.get("original", []), views_of.get("mirror", [])
        for o, m in zip(originals, mirrors):
            pairs.append((o, m))
        lonely += originals[len(mirrors):] + mirrors[len(originals):]
        for view, rows in views_of.items():
            if view not in ("original", "mirror"):
                lonely += rows
    return pairs, sorted(lonely)


def mirror_twins(pair_ids: Sequence[str], views: Sequence[str]) -> list[int]:
    """Indices of the ``mirror`` rows whose ``pair_id`` also has an ``original`` row: the rows to drop
    so that each question is trained once, on its original view (a mirror without an original is
    the only view of its question and stays)."""
    has_original = {pid for pid, view in zip(pair_ids, views) if view == "original"}
    return [i for i, (pid, view) in enumerate(zip(pair_ids, views)) if view == "mirror" and pid in has_original]
