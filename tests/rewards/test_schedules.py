"""Sharpness schedules k(t) (Smooth Operator eq. 5, Table 2)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatialrl.rewards import SharpnessSchedule


def test_sigmoid_eq5_hand_values():
    s = SharpnessSchedule.paper()
    assert (s.kind, s.k_min, s.k_max, s.tau, s.steepness) == ("sigmoid", 1.0, 100.0, 0.5, 10.0)
    assert s(50, 100) == pytest.approx(50.5)  # sigmoid(0) = 1/2
    assert s(0, 100) == pytest.approx(1 + 99 / (1 + math.exp(5)))  # 1.6673
    assert s(100, 100) == pytest.approx(1 + 99 / (1 + math.exp(-5)))  # 99.333
    assert s(25, 100) == pytest.approx(1 + 99 / (1 + math.exp(2.5)))


def test_linear_and_fixed():
    lin = SharpnessSchedule("linear", 1.0, 100.0)
    assert lin(0, 10) == 1.0 and lin(10, 10) == 100.0 and lin(5, 10) == pytest.approx(50.5)
    assert lin(20, 10) == 100.0  # steps past T are clamped
    fixed = SharpnessSchedule.constant(7.0)
    assert fixed(0, 10) == fixed(10, 10) == 7.0


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(kind="cosine", k_min=1, k_max=2), "kind"),
        (dict(kind="linear", k_min=0, k_max=2), "k_min"),
        (dict(kind="linear", k_min=3, k_max=2), "k_max"),
        (dict(kind="fixed", k_min=1, k_max=2), "k_min == k_max"),
        (dict(kind="sigmoid", k_min=1, k_max=2, tau=1.0), "tau"),
        (dict(kind="sigmoid", k_min=1, k_max=2, steepness=0), "steepness"),
        (dict(kind="sigmoid", k_min=float("nan"), k_max=2), "k_min"),
    ],
)
def test_invalid_schedules_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SharpnessSchedule(**kwargs)


def test_bad_steps():
    s = SharpnessSchedule.paper()
    with pytest.raises(ValueError, match="total_steps"):
        s(0, 0)
    with pytest.raises(ValueError, match="step"):
        s(-1, 10)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["linear", "sigmoid"]),
    k_min=st.floats(0.01, 10),
    span=st.floats(0, 500),
    tau=st.floats(0.05, 0.95),
    steep=st.floats(0.5, 50),
    total=st.integers(1, 5000),
)
def test_schedules_monotone_within_bounds(kind, k_min, span, tau, steep, total):
    s = SharpnessSchedule(kind, k_min, k_min + span, tau, steep)
    values = [s(t, total) for t in range(0, total + 1, max(1, total // 50))] + [s(total, total)]
    assert all(b >= a - 1e-9 for a, b in zip(values, values[1:]))
    assert all(k_min - 1e-9 <= v <= k_min + span + 1e-9 for v in values)
    if kind == "linear":
        assert values[0] == pytest.approx(k_min) and values[-1] == pytest.approx(k_min + span)


@pytest.mark.parametrize("steep", [2000.0, 1e6, 1e300])
def test_a_very_steep_sigmoid_is_a_step_not_an_overflow(steep):
    # exp(s * tau) overflowed (OverflowError at step 0) for s >= ~1420 before the stable form
    s = SharpnessSchedule("sigmoid", 1.0, 100.0, 0.5, steep)
    assert s(0, 100) == pytest.approx(1.0)
    assert s(50, 100) == pytest.approx(50.5)
    assert s(100, 100) == pytest.approx(100.0)
    values = [s(t, 100) for t in range(101)]
    assert all(math.isfinite(v) and 1.0 <= v <= 100.0 for v in values)
    assert all(b >= a for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_steepness_is_refused(bad):
    with pytest.raises(ValueError, match="steepness must be a finite number"):
        SharpnessSchedule("sigmoid", 1.0, 100.0, 0.5, bad)
