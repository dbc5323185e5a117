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


@pytest.mark.parametrize("kwargs,name", [
    (dict(eta=float("nan")), "eta"), (dict(eta=float("inf")), "eta"), (dict(eta=-1.0), "eta"),
    (dict(threshold=float("nan")), "threshold"), (dict(threshold=float("-inf")), "threshold"),
    (dict(threshold="0.5"), "threshold"),
])
def test_non_finite_settings_are_refused_not_nan_or_silently_off(kwargs, name):
    # eta=nan returned NaN rewards and threshold=nan switched the penalty off without a word
    with pytest.raises(ValueError, match=name):
        view_consistency_penalty([0.9, 0.8], [0.1, 0.2], **kwargs)
    with pytest.raises(ValueError, match=name):
        apply_view_consistency([0.9, 0.1], ["p", "p"], [False, True], **kwargs)


@pytest.mark.parametrize("flags", [["False", "True"], ["0", "1"], [0.0, 1.0], [None, True], [2, 0]])
def test_is_mirror_must_be_booleans_or_0_1(flags):
    # bool("False") is True: both rows were taken as mirrors and the pair was skipped
    with pytest.raises(ValueError, match=r"is_mirror\[0\]"):
        apply_view_consistency([0.9, 0.1], ["p", "p"], flags)


@pytest.mark.parametrize("flags", [[False, True], [0, 1], np.array([False, True]), np.array([0, 1]),
                                   torch.tensor([False, True]), [np.bool_(False), np.bool_(True)]])
def test_is_mirror_accepts_booleans_and_0_1(flags):
    out, deltas = apply_view_consistency([0.9, 0.1], ["p", "p"], flags)
    assert out.tolist() == pytest.approx([0.9 - 0.8, 0.1]) and deltas.tolist() == pytest.approx([0.8])


def test_the_advantage_step_refuses_string_mirror_flags():
    from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages

    settings = AdvantageSettings(estimator="grpo", consistency_reward="accuracy")
    rows = [[0.9], [0.8], [0.1], [0.2]]
    with pytest.raises(ValueError, match="is_mirror"):
        spatial_advantages(rows, ["accuracy"], [1.0], [0, 0, 1, 1], settings, ["p"] * 4, ["False"] * 2 + ["True"] * 2)
    step = spatial_advantages(rows, ["accuracy"], [1.0], [0, 0, 1, 1], settings, ["p"] * 4, [False, False, True, True])
    assert step.deltas.tolist() == pytest.approx([0.7])
