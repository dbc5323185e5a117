"""Spatial-GRPO view-consistency penalty (SVQA-R1 eq. 2-4)."""

import numpy as np
import pytest
import torch

from spatialrl.rewards import apply_view_consistency, view_consistency_penalty


def test_original_better_penalises_its_confident_samples():
    r, rm = view_consistency_penalty([0.9, 0.6, 0.2], [0.5, 0.4, 0.3])
    # delta = mean(0.9, 0.6, 0.2) - mean(0.5, 0.4, 0.3) = 0.5667 - 0.4 = 0.1667 >= 0 (eq. 2)
    delta = (0.9 + 0.6 + 0.2) / 3 - 0.4
    assert r.tolist() == pytest.approx([0.9 - delta, 0.6 - delta, 0.2])  # eq. 3, only r > 0.5
    assert rm.tolist() == pytest.approx([0.5, 0.4, 0.3])


def test_mirror_better_penalises_mirror_only():
    r, rm = view_consistency_penalty([0.1, 0.2], [0.8, 0.5], threshold=0.5, eta=2.0)
    delta = 0.15 - 0.65  # < 0 -> eq. 4
    assert r.tolist() == pytest.approx([0.1, 0.2])
    assert rm.tolist() == pytest.approx([0.8 - 2.0 * abs(delta), 0.5])  # 0.5 is not > 0.5


def test_equal_views_unchanged_and_kinds_kept():
    r, rm = view_consistency_penalty(torch.tensor([0.7, 0.9]), np.array([0.9, 0.7]))
    assert isinstance(r, torch.Tensor) and isinstance(rm, np.ndarray)
    assert r.tolist() == pytest.approx([0.7, 0.9]) and rm.tolist() == pytest.approx([0.9, 0.7])


def test_batched_matches_pairwise_and_skips_lonely_groups():
    rewards = [0.9, 0.6, 0.5, 0.4, 0.2, 0.8, 0.7, 0.7]
    pair_ids = ["p", "p", "p", "p", "q", "q", "solo", "solo"]
    is_mirror = [0, 0, 1, 1, 0, 1, 0, 0]
    out, deltas = apply_view_consistency(rewards, pair_ids, is_mirror)
    a, b = view_consistency_penalty([0.9, 0.6], [0.5, 0.4])
    c, d = view_consistency_penalty([0.2], [0.8])
    assert out.tolist() == pytest.approx(list(a) + list(b) + list(c) + list(d) + [0.7, 0.7])
    assert deltas.tolist() == pytest.approx([0.3, -0.6])


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="r_mirror"):
        view_consistency_penalty([0.5], [float("nan")])
    with pytest.raises(ValueError, match="pair_ids"):
        apply_view_consistency([0.1, 0.2], ["a"], [0, 1])
    with pytest.raises(ValueError, match="is_mirror"):
        apply_view_consistency([0.1, 0.2], ["a", "a"], [0])
