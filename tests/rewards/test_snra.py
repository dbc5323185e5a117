"""SNRA (Smooth Operator eq. 2, 12), error maps (eq. 1, sec. 3.1) and the composite (eq. 4)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spatialrl.rewards import (
    DEFAULT_E_MAX,
    DISCRETE_ERROR_SCALE,
    composite_reward,
    discrete_error,
    numeric_error,
    snra,
    snra_tanh,
)


@pytest.mark.parametrize(
    "error,k,expected",
    [
        (0.0, 1.0, 1.0),
        (1.0, 1.0, 2 / (1 + math.e)),  # 0.537883
        (0.25, 4.0, 2 / (1 + math.e)),  # only k * e matters
        (2.0, 1.0, 2 / (1 + math.exp(2))),  # 0.238406
        (0.01, 100.0, 2 / (1 + math.e)),
        (1e4, 100.0, 0.0),  # underflows, never overflows to NaN
    ],
)
def test_snra_hand_values(error, k, expected):
    assert snra(error, k) == pytest.approx(expected, abs=1e-12)


def test_snra_tanh_hand_values():
    assert snra_tanh(0.0, 3.0) == 1.0
    assert snra_tanh(0.5, 1.0) == pytest.approx(1 - math.tanh(0.5))  # 0.537883
    assert snra_tanh(10.0, 10.0) == pytest.approx(0.0, abs=1e-12)


def test_snra_keeps_the_container_kind():
    assert isinstance(snra(1.0, 1.0), float)
    out = snra(np.array([[0.0, 1.0], [2.0, 3.0]]), 1.0)
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
    tensor = snra(torch.tensor([0.0, 1.0], dtype=torch.float32), 1.0)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    assert tensor.tolist() == pytest.approx([1.0, 2 / (1 + math.e)])
    assert snra([0.0, 1.0], 1.0).tolist() == pytest.approx([1.0, 2 / (1 + math.e)])


@pytest.mark.parametrize("bad_error", [-0.1, [0.0, -1.0], float("nan"), [float("inf")]])
def test_snra_rejects_bad_errors(bad_error):
    with pytest.raises(ValueError, match="error"):
        snra(bad_error, 1.0)


@pytest.mark.parametrize("bad_k", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_snra_rejects_bad_sharpness(bad_k):
    with pytest.raises(ValueError, match="k"):
        snra(1.0, bad_k)


@settings(max_examples=200, deadline=None)
@given(
    e1=st.floats(0, 7, allow_nan=False),
    e2=st.floats(0, 7, allow_nan=False),
    k=st.floats(0.01, 100, allow_nan=False),
)
def test_snra_bounded_and_decreasing(e1, e2, k):
    lo, hi = sorted((e1, e2))
    for op in (snra, snra_tanh):
        r_lo, r_hi = op(lo, k), op(hi, k)
        assert 0.0 <= r_hi <= r_lo <= 1.0
    # in (0, 1] while k * e stays below the float underflow point
    assert 0.0 < snra(hi, k) <= 1.0
    assert snra(0.0, k) == 1.0 and snra_tanh(0.0, k) == 1.0


def test_numeric_error_absolute_relative_and_parse_failure():
    assert numeric_error(2.5, 2.0) == pytest.approx(0.25)  # eq. 1: (2.5 - 2)^2
    assert numeric_error(2.5, 2.0, mode="relative") == pytest.approx(0.0625)  # (0.5 / 2)^2
    assert numeric_error(None, 2.0) == DEFAULT_E_MAX  # parse failure gets e_max
    assert numeric_error(None, 2.0, e_max=9.0) == 9.0
    # a wrong but parsable answer never scores below an unparsable one: clipped at e_max
    assert numeric_error(100.0, 2.0) == DEFAULT_E_MAX
    assert numeric_error(1e300, 2.0) == DEFAULT_E_MAX
    # gt = 0 in relative mode divides by min_scale, not by zero
    assert numeric_error(0.001, 0.0, mode="relative", min_scale=1e-3) == pytest.approx(1.0)
    batch = numeric_error([2.0, None, 3.0], [2.0, 1.0, 1.0], e_max=3.0)
    assert batch.tolist() == pytest.approx([0.0, 3.0, 3.0])
    with pytest.raises(ValueError, match="mode"):
        numeric_error(1.0, 1.0, mode="squared")
    with pytest.raises(ValueError, match="target"):
        numeric_error(1.0, float("nan"))


def test_discrete_error_constant_lands_in_high_penalty_region():
    assert discrete_error(1.0) == 0.0
    assert discrete_error(0.0) == DISCRETE_ERROR_SCALE
    assert discrete_error(None) == DISCRETE_ERROR_SCALE
    assert discrete_error(0.75) == pytest.approx(0.25 * DISCRETE_ERROR_SCALE)
    # the documented choice: V = 0 gives snra(k_min = 1) < 0.01, and the point is tight
    assert snra(discrete_error(0.0), 1.0) < 0.01
    assert snra(discrete_error(0.0) - 0.1, 1.0) > 0.01
    with pytest.raises(ValueError, match="score"):
        discrete_error(1.5)


def test_composite_reward_eq4():
    assert composite_reward(0.5, 1.0) == pytest.approx(0.9 * 0.5 + 0.1)
    assert composite_reward([1.0, 0.0], [0.0, 1.0], lam=0.1).tolist() == pytest.approx([0.9, 0.1])
    with pytest.raises(ValueError, match="format_score"):
        composite_reward([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="lam"):
        composite_reward(1.0, 1.0, lam=1.5)


def test_binary_reward_is_table2_s1():
    """Smooth Operator Table 2, S1: 0/1, no partial credit, k ignored; selectable by name."""
    from spatialrl.rewards import BINARY_TOLERANCE, OPERATORS, binary_reward

    assert OPERATORS["binary"] is binary_reward
    assert binary_reward(0.0) == 1.0 and binary_reward(BINARY_TOLERANCE) == 1.0
    assert binary_reward(BINARY_TOLERANCE * 1.01) == 0.0
    assert binary_reward([0.0, 0.5, 5.3], 100.0).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        binary_reward(-1.0)


def test_binary_operator_in_the_trl_reward_and_the_config():
    from spatialrl.rewards.trl import accuracy_reward
    from spatialrl.train.config import ConfigError, SpatialGRPOArguments

    reward = accuracy_reward(operator="binary")
    rows = dict(answer_type=["numerical"] * 3, answer_value=[3.0] * 3, dimension=["length"] * 3,
                options=[[]] * 3, answer_index=[-1] * 3, answer=["3"] * 3, bbox=[[]] * 3)
    completions = ["<answer>3 m</answer>", "<answer>3.05 m</answer>", "<answer>3.5 m</answer>"]
    assert reward(completions=completions, **rows) == [1.0, 1.0, 0.0]  # within 10 cm, then not
    config = SpatialGRPOArguments(model="m", dataset="d", snra_operator="binary")
    assert config.snra_operator == "binary"
    with pytest.raises(ConfigError, match=r"SpatialGRPOArguments\.snra_operator must be one of .*'binary'"):
        SpatialGRPOArguments(model="m", dataset="d", snra_operator="binar")


def test_scalar_error_path_equals_numpy_path():
    """The reward's float fast path gives numeric_error's numpy result, clipping included."""
    for pred, target in [(2.5, 3.0), (1e200, 3.0), (3.0, 3.0), (0.0, 1e-9)]:
        for mode in ("absolute", "relative"):
            fast = numeric_error(pred, target, mode=mode)
            slow = float(numeric_error(np.array([pred]), np.array([target]), mode=mode)[0])
            assert fast == pytest.approx(slow)
