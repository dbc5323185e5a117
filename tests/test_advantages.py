"""Advantage estimators (Smooth Operator eq. 7-8, Table 3, appendix A.1) and diagnostics (sec. 4.3)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spatialrl.advantages import (
    ADVANTAGE_ESTIMATORS,
    absolute,
    advantage_diagnostics,
    ap_grpo,
    compute_advantages,
    convergence,
    convergence_step,
    get_advantage,
    grpo,
    register_advantage,
)


def test_grpo_hand_values():
    # group [1, 0, 0, 0]: mean 0.25, unbiased std sqrt(0.75 / 3) = 0.5
    adv = grpo([1.0, 0.0, 0.0, 0.0], [7, 7, 7, 7], eps=0.0)
    assert adv.tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5])
    # two groups are normalised independently
    adv = grpo([1.0, 3.0, 10.0, 20.0], ["a", "a", "b", "b"], eps=0.0)
    s = math.sqrt(2.0)  # unbiased std of two values 2 apart
    assert adv.tolist() == pytest.approx([-1 / s, 1 / s, -5 / (5 * s), 5 / (5 * s)])


def test_ap_grpo_hand_values():
    rewards = [0.9, 0.5, 0.1, 0.1]
    r_hat = [1.0, 0.5, 0.0, 0.2]
    base = grpo(rewards, [0] * 4, eps=1e-6)
    adv = ap_grpo(rewards, r_hat, [0] * 4, alpha=1.0, clip=None)
    assert adv.tolist() == pytest.approx([b * r for b, r in zip(base, r_hat)])  # eq. 8
    adv2 = ap_grpo(rewards, r_hat, [0] * 4, alpha=2.0, clip=None)
    assert adv2.tolist() == pytest.approx([b * r * r for b, r in zip(base, r_hat)])
    # alpha = 0 recovers GRPO (Table 7)
    assert ap_grpo(rewards, r_hat, [0] * 4, alpha=0.0, clip=None).tolist() == pytest.approx(list(base))


def test_ap_grpo_clips_symmetrically():
    # one winner among 8: GRPO gives 7/sqrt(8) ~ 2.47 > 1.5
    rewards = [1.0] + [0.0] * 7
    adv = ap_grpo(rewards, rewards, [0] * 8, alpha=1.0, clip=1.5)
    assert adv[0] == pytest.approx(1.5)
    assert np.all(np.abs(adv) <= 1.5)
    neg = ap_grpo([0.0] + [1.0] * 7, [1.0] * 8, [0] * 8, alpha=1.0, clip=1.5)
    assert neg[0] == pytest.approx(-1.5)


def test_absolute_estimator_table3():
    assert absolute([0.25, 1.0], alpha=1.0).tolist() == pytest.approx([0.25, 1.0])
    assert absolute([0.5], alpha=2.0).tolist() == pytest.approx([0.25])
    assert absolute([1.0], alpha=1.0, clip=0.5).tolist() == pytest.approx([0.5])


def test_all_equal_group_gives_exact_zeros_never_nan():
    for value in (0.0, 0.1, 1.0 / 3.0, 0.7):
        adv = grpo([value] * 8, [0] * 8)
        assert np.all(adv == 0.0)
        adv = ap_grpo([value] * 8, [min(value, 1.0)] * 8, [0] * 8)
        assert np.all(adv == 0.0)
    assert np.all(grpo([0.5] * 4, [0] * 4, eps=0.0) == 0.0)  # no 0/0 even without eps
    assert grpo([0.3], [0]).tolist() == [0.0]  # a group of one


def test_torch_in_torch_out():
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5], dtype=torch.float32)
    adv = ap_grpo(rewards, rewards, torch.tensor([0, 0, 1, 1]))
    assert isinstance(adv, torch.Tensor) and adv.dtype == torch.float32
    assert adv[2:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: grpo([1.0, 2.0], [0]), "group_ids"),
        (lambda: grpo([[1.0, 2.0]], [0, 0]), "rewards"),
        (lambda: grpo([1.0, float("nan")], [0, 0]), "rewards"),
        (lambda: ap_grpo([1.0, 0.0], [1.0], [0, 0]), "abs_rewards"),
        (lambda: ap_grpo([1.0, 0.0], [1.0, float("nan")], [0, 0]), "abs_rewards"),
        (lambda: ap_grpo([1.0, 0.0], [1.0, 1.5], [0, 0]), "abs_rewards"),
        (lambda: ap_grpo([1.0, 0.0], [1.0, 0.0], [0, 0], clip=0), "clip"),
        (lambda: ap_grpo([1.0, 0.0], [1.0, 0.0], [0, 0], alpha=-1), "alpha"),
        (lambda: grpo(["a", "b"], [0, 0]), "rewards"),
        (lambda: grpo([1.0, 2.0], [[0], [1]]), "group_ids"),
    ],
)
def test_bad_inputs_raise_value_error_naming_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


group_rewards = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=16)


@settings(max_examples=300, deadline=None)
@given(r_hat=group_rewards, fmt=st.lists(st.sampled_from([0.0, 1.0]), min_size=16, max_size=16),
       alpha=st.sampled_from([1.0, 1.5, 2.0, 3.0]), clip=st.sampled_from([None, 1.5, 0.5]))
def test_ap_grpo_appendix_a1_properties(r_hat, fmt, alpha, clip):
    # R from eq. 4 with lambda = 0.1; r_hat is monotone in R whenever formats are equal, so
    # test A.1 on a single-format group (its assumption) and boundedness on any group.
    n = len(r_hat)
    rewards = [0.9 * r + 0.1 * f for r, f in zip(r_hat, fmt[:n])]
    adv = ap_grpo(rewards, r_hat, [0] * n, alpha=alpha, clip=clip)
    assert np.all(np.isfinite(adv))
    if clip is not None:
        assert np.all(np.abs(adv) <= clip + 1e-12)
    base = grpo(rewards, [0] * n)
    # (1) sign preserved where the weight is non-zero; zero weight can only zero it
    for a, b, r in zip(adv, base, r_hat):
        if r**alpha > 1e-300 and abs(b) > 1e-9:
            assert np.sign(a) == np.sign(b)
        else:
            assert a == 0 or np.sign(a) == np.sign(b)
    # (2) order of positive advantages kept under A.1's monotonicity assumption
    same_format = ap_grpo([0.9 * r for r in r_hat], r_hat, [0] * n, alpha=alpha, clip=clip)
    base_same = grpo([0.9 * r for r in r_hat], [0] * n)
    for i in range(n):
        for j in range(n):
            if base_same[i] > base_same[j] > 1e-9:
                assert same_format[i] >= same_format[j] - 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=40))
def test_grpo_zero_mean_per_group(rows):
    ids = [g for g, _ in rows]
    rewards = [r for _, r in rows]
    adv = grpo(rewards, ids)
    for g in set(ids):
        members = [a for a, i in zip(adv, ids) if i == g]
        assert abs(sum(members)) < 1e-6 * max(1, len(members))


def test_registry_and_uniform_call():
    assert {"grpo", "ap_grpo", "absolute"} <= set(ADVANTAGE_ESTIMATORS)
    inputs = dict(rewards=[1.0, 0.0], abs_rewards=[1.0, 0.0], group_ids=[0, 0], alpha=1.0, clip=1.5, eps=1e-6)
    assert compute_advantages("grpo", **inputs).tolist() == pytest.approx(grpo([1.0, 0.0], [0, 0]).tolist())
    assert compute_advantages("absolute", **inputs).tolist() == pytest.approx([1.0, 0.0])

    @register_advantage("test_sign")
    def sign_only(rewards, group_ids, **_):
        return np.sign(grpo(rewards, group_ids))

    try:
        assert compute_advantages("test_sign", **inputs).tolist() == [1.0, -1.0]
        with pytest.raises(ValueError, match="already registered"):
            register_advantage("test_sign")(lambda rewards: rewards)
    finally:
        ADVANTAGE_ESTIMATORS.pop("test_sign")
    with pytest.raises(ValueError, match="known"):
        get_advantage("ppo")


def test_diagnostics_hand_values():
    rewards = [1.0, 0.0, 0.5, 0.5]
    r_hat = [1.0, 0.0, 0.5, 0.5]
    adv = ap_grpo(rewards, r_hat, [0, 0, 1, 1], clip=None, eps=0.0)
    # group 0: grpo = [+0.7071, -0.7071] times r_hat [1, 0] -> [0.7071, 0]; group 1 all-equal -> [0, 0]
    d = advantage_diagnostics(adv, rewards, [0, 0, 1, 1], abs_rewards=r_hat)
    a0 = 1 / math.sqrt(2)
    assert d["adv/mean"] == pytest.approx(a0 / 4)
    assert d["adv/variance"] == pytest.approx(((a0 / 2) ** 2 + (a0 / 2) ** 2) / 2 / 2)  # sec. 4.3, mean over groups
    assert d["adv/zero_std_group_frac"] == 0.5
    # samples with r_hat < 1: indices 1, 2, 3, none with a non-zero advantage
    assert d["adv/near_miss_use"] == 0.0
    d = advantage_diagnostics(grpo(rewards, [0, 0, 1, 1]), rewards, [0, 0, 1, 1], abs_rewards=r_hat)
    assert d["adv/near_miss_use"] == pytest.approx(1 / 3)
    assert math.isnan(advantage_diagnostics([0.0], [1.0], [0], abs_rewards=[1.0])["adv/near_miss_use"])
    with pytest.raises(ValueError, match="rewards"):
        advantage_diagnostics([0.0, 1.0], [1.0], [0, 0])


def test_convergence_step_is_the_first_step_at_95_percent_of_the_maximum():
    # Smooth Operator sec. 4.3: T_conv = min{t : Acc_t >= 0.95 Acc_max}
    acc = [0.10, 0.50, 0.80, 0.95, 0.97, 1.00, 0.90]
    assert convergence_step(acc) == 4  # 0.95 >= 0.95 * 1.0; steps default to 1..T
    assert convergence_step(acc, steps=[10, 20, 30, 40, 50, 60, 70]) == 40
    assert convergence_step([0.5, 0.4], fraction=1.0) == 1
    d = convergence(acc)
    assert d["acc_max"] == 1.0 and d["threshold"] == pytest.approx(0.95)


def test_convergence_skips_missing_values_and_smooths_when_asked():
    assert convergence_step([0.1, None, math.nan, 1.0], steps=[1, 2, 3, 4]) == 4
    assert convergence(np.array([math.nan]))["t_conv"] is None
    assert convergence([])["t_conv"] is None
    # one lucky step sets the raw maximum; a 3-value trailing mean does not converge on it
    noisy = [0.1, 1.0, 0.1, 0.96, 0.97, 0.98]
    assert convergence_step(noisy) == 2
    d = convergence(noisy, window=3)  # smoothed: 0.1, 0.55, 0.4, 0.687, 0.677, 0.97
    assert d["t_conv"] == 6 and d["acc_max"] == pytest.approx(0.97)


def test_convergence_rejects_bad_input():
    for kwargs, match in (({"fraction": 0.0}, "fraction"), ({"fraction": 1.5}, "fraction"), ({"window": 0}, "window"),
                          ({"window": 2.5}, "window"), ({"steps": [1, 1, 2]}, "increasing"), ({"steps": [1]}, "steps")):
        with pytest.raises(ValueError, match=match):
            convergence([0.1, 0.2, 0.3], **kwargs)
    with pytest.raises(ValueError, match=">= 0"):
        convergence([-0.5, 0.2])
