"""spatialrl.eval.paired: the paired difference equals the difference of the macro averages;
its intervals cover a known difference ~95 % of the time on synthetic clustered data (continuous
and 0/1 scores); clustering widens the interval when the two items of a pair are correlated and
changes nothing when every item is its own cluster; the bootstrap agrees with the normal
interval; pair consistency counts pairs with both views right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialrl.eval.paired import macro_mean, pair_consistency, paired_difference


def _pairs(n_pairs: int) -> list[str]:
    return [f"p{i}" for i in range(n_pairs) for _ in range(2)]


def _continuous(rng, n_pairs, delta, rho=0.8, n_types=4):
    """Item differences with mean ``delta``: a shared pair effect (weight rho) plus item noise."""
    pair_effect = np.repeat(rng.normal(size=n_pairs), 2)
    noise = rng.normal(size=2 * n_pairs)
    d = delta + math.sqrt(rho) * pair_effect + math.sqrt(1 - rho) * noise
    b = rng.uniform(size=2 * n_pairs)
    strata = [f"t{(i // 2) % n_types}" for i in range(2 * n_pairs)]
    return b + d, b, _pairs(n_pairs), strata


def _binary(rng, n_pairs, p, rho):
    """0/1 scores with P(right) = p; with probability rho both views of a pair share one draw."""
    first = rng.uniform(size=n_pairs) < p
    second = np.where(rng.uniform(size=n_pairs) < rho, first, rng.uniform(size=n_pairs) < p)
    return np.stack([first, second], axis=1).reshape(-1).astype(float)


def test_the_difference_is_the_difference_of_macro_averages():
    rng = np.random.default_rng(0)
    a, b, clusters, strata = _continuous(rng, 50, 0.1)
    strata = ["small" if i < 4 else s for i, s in enumerate(strata)]  # unequal strata sizes
    result = paired_difference(a, b, clusters, strata)
    assert result["diff"] == pytest.approx(macro_mean(a, strata) - macro_mean(b, strata), abs=1e-12)
    assert result["diff"] != pytest.approx(float(np.mean(a - b)), abs=1e-6), "the macro average, not the item mean"
    assert result["clusters"] == 50 and result["items"] == 100 and result["method"] == "normal"
    lo, hi = result["ci95"]
    assert lo < result["diff"] < hi
    assert paired_difference(a, b, clusters)["diff"] == pytest.approx(float(np.mean(a - b)))


def test_identical_models_differ_by_zero_with_a_zero_width_interval():
    rng = np.random.default_rng(1)
    a = rng.uniform(size=40)
    for method in ("normal", "bootstrap"):
        result = paired_difference(a, a, _pairs(20), method=method, n_boot=200)
        assert result["diff"] == 0.0 and result["ci95"] == [0.0, 0.0]


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_the_normal_interval_covers_the_true_difference_about_95_percent_of_the_time(kind):
    rng = np.random.default_rng(2)
    reps, covered, n_pairs = 600, 0, 150
    for _ in range(reps):
        if kind == "continuous":
            delta = 0.05
            a, b, clusters, strata = _continuous(rng, n_pairs, delta)
        else:
            delta = 0.62 - 0.55
            a, b = _binary(rng, n_pairs, 0.62, 0.7), _binary(rng, n_pairs, 0.55, 0.7)
            clusters, strata = _pairs(n_pairs), None
        lo, hi = paired_difference(a, b, clusters, strata)["ci95"]
        covered += lo <= delta <= hi
    # binomial sd of the coverage over 600 runs is ~0.9 points
    assert 0.92 <= covered / reps <= 0.98, covered / reps


def test_ignoring_the_pairs_undercovers_when_pair_items_are_correlated():
    rng = np.random.default_rng(3)
    reps, covered, n_pairs = 400, 0, 150
    for _ in range(reps):
        a, b = _binary(rng, n_pairs, 0.62, 0.9), _binary(rng, n_pairs, 0.55, 0.9)
        lo, hi = paired_difference(a, b, list(range(2 * n_pairs)))["ci95"]
        covered += lo <= 0.07 <= hi
    assert covered / reps < 0.92, "with items as if independent the interval is too narrow"


def test_clustering_widens_the_interval_when_pair_items_are_correlated():
    rng = np.random.default_rng(4)
    n_pairs = 300
    # perfectly correlated views: each pair's two items have the same difference
    d = np.repeat(rng.normal(size=n_pairs), 2)
    b = np.zeros(2 * n_pairs)
    items = list(range(2 * n_pairs))
    clustered = paired_difference(d, b, _pairs(n_pairs))
    naive = paired_difference(d, b, items)
    assert clustered["diff"] == pytest.approx(naive["diff"])
    assert clustered["se"] / naive["se"] == pytest.approx(math.sqrt(2), rel=0.01)
    # independent views: clustering changes the width little
    d = rng.normal(size=2 * n_pairs)
    ratio = paired_difference(d, b, _pairs(n_pairs))["se"] / paired_difference(d, b, items)["se"]
    assert ratio == pytest.approx(1.0, abs=0.1)
    # opposite views (a mirror the model always answers the other way): clustering narrows it
    half = rng.normal(size=n_pairs)
    d = np.stack([half, -half + 0.1 * rng.normal(size=n_pairs)], axis=1).reshape(-1)
    assert paired_difference(d, b, _pairs(n_pairs))["se"] < 0.5 * paired_difference(d, b, items)["se"]


def test_singleton_clusters_give_the_usual_paired_standard_error():
    rng = np.random.default_rng(5)
    d = rng.normal(size=200)
    result = paired_difference(d, np.zeros(200), list(range(200)))
    assert result["se"] == pytest.approx(float(np.std(d, ddof=1) / math.sqrt(200)))
    assert result["ci95"][1] - result["ci95"][0] == pytest.approx(2 * 1.959964 * result["se"], rel=1e-5)


def test_the_bootstrap_agrees_with_the_normal_interval_and_is_seeded():
    rng = np.random.default_rng(6)
    a, b, clusters, strata = _continuous(rng, 200, 0.1)
    normal = paired_difference(a, b, clusters, strata)
    boot = paired_difference(a, b, clusters, strata, method="bootstrap", n_boot=3000, seed=1)
    assert boot["diff"] == normal["diff"]
    assert boot["se"] == pytest.approx(normal["se"], rel=0.1)
    for x, y in zip(boot["ci95"], normal["ci95"]):
        assert x == pytest.approx(y, abs=0.25 * normal["se"])
    assert paired_difference(a, b, clusters, strata, method="bootstrap", n_boot=3000, seed=1)["ci95"] == boot["ci95"]
    with pytest.raises(ValueError, match="one stratum"):
        paired_difference([1, 0, 1, 1], [0, 0, 0, 1], ["p", "p", "q", "q"], ["x", "y", "x", "x"],
                          method="bootstrap")
    # the normal method takes clusters that span strata
    assert paired_difference([1, 0, 1, 1], [0, 0, 0, 1], ["p", "p", "q", "q"], ["x", "y", "x", "y"])["ci95"]


def test_edge_cases_and_input_errors():
    one = paired_difference([1.0, 0.0], [0.0, 0.0], ["p", "p"])
    assert one["diff"] == 0.5 and one["ci95"] is None and one["clusters"] == 1
    assert paired_difference([], [], [])["ci95"] is None
    with pytest.raises(ValueError, match="same items"):
        paired_difference([1.0], [1.0, 0.0], ["p"])
    with pytest.raises(ValueError, match="clusters"):
        paired_difference([1.0, 0.0], [1.0, 0.0], ["p"])
    with pytest.raises(ValueError, match="method"):
        paired_difference([1.0], [1.0], ["p"], method="exact")
    with pytest.raises(ValueError, match="level"):
        paired_difference([1.0], [1.0], ["p"], level=95)


def test_pair_consistency_counts_pairs_with_both_views_right():
    scores = [1.0, 1.0, 1.0, 0.0, 0.6, 0.5, 0.2, 0.9, 1.0]
    clusters = ["a", "a", "b", "b", "c", "c", "d", "d", "alone"]
    assert pair_consistency(scores, clusters) == pytest.approx(2 / 4)  # a and c; the lone item is no pair
    assert pair_consistency(scores, clusters, threshold=0.95) == pytest.approx(1 / 4)
    assert pair_consistency([1.0], ["alone"]) is None


def test_pair_consistency_matches_the_world_benchmarks_both_right():
    from spatialrl.eval.benchmarks.world import RIGHT_THRESHOLD

    rng = np.random.default_rng(7)
    scores = rng.choice([0.0, 0.3, 0.5, 0.7, 1.0], size=200)
    clusters = _pairs(100)
    expected = np.mean([(scores[2 * i] >= RIGHT_THRESHOLD) and (scores[2 * i + 1] >= RIGHT_THRESHOLD)
                        for i in range(100)])
    assert pair_consistency(scores, clusters, RIGHT_THRESHOLD) == pytest.approx(expected)
