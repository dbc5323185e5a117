"""Seed aggregation and the verdict rule (spatialrl/reproduce/verdicts.py): Student t intervals
against scipy, pairing by seed, each verdict at its boundaries, a claim's verdict from its
comparisons', and ``aggregate`` on hand-made cells (a start cell evaluated once)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from spatialrl.reproduce.grid import Claim
from spatialrl.reproduce.verdicts import (EQUIVALENCE_MARGINS, aggregate, claim_verdict, mean_interval,
                                          paired_interval, verdict)


def test_mean_interval_matches_scipy():
    xs = [52.0, 55.5, 49.0, 53.5]
    out = mean_interval(xs)
    mean, sd, n = sum(xs) / 4, stats.tstd(xs), 4
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert out["n"] == 4 and out["mean"] == pytest.approx(52.5)
    assert out["sd"] == pytest.approx(sd)
    assert out["ci95"] == pytest.approx([mean - half, mean + half])
    low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=stats.sem(xs))
    assert out["ci95"] == pytest.approx([low, high])
    # two values: t(0.975, 1) = 12.706
    assert mean_interval([1.0, 3.0])["ci95"] == pytest.approx([2.0 - 12.7062047, 2.0 + 12.7062047])


def test_mean_interval_small_and_non_finite():
    assert mean_interval([]) == {"mean": None, "ci95": None, "sd": None, "n": 0}
    assert mean_interval([float("nan"), None, True]) == {"mean": None, "ci95": None, "sd": None, "n": 0}
    assert mean_interval([7.5]) == {"mean": 7.5, "ci95": None, "sd": None, "n": 1}
    out = mean_interval([2.0, float("inf"), 4.0])
    assert out["n"] == 2 and out["mean"] == 3.0
    assert mean_interval([5.0, 5.0, 5.0])["ci95"] == [5.0, 5.0]


def test_paired_interval_pairs_by_seed():
    a = {"0": 60.0, "1": 58.0, "2": 61.0, "3": 59.0, "10": 70.0}
    b = {"0": 55.0, "1": None, "2": 57.0, "3": 56.5, "4": 50.0, "10": 66.0}
    out = paired_interval(a, b)
    assert out["seeds"] == ["0", "2", "3", "10"]  # "1" is None in b, "4" is missing in a; numeric order
    diffs = [5.0, 4.0, 2.5, 4.0]
    assert out["n"] == 4 and out["mean"] == pytest.approx(sum(diffs) / 4)
    assert out["ci95"] == pytest.approx(list(stats.t.interval(0.95, 3, loc=3.875, scale=stats.sem(diffs))))
    # no seed in common, or a NaN in one side: those seeds are skipped
    assert paired_interval({"0": 1.0}, {"1": 1.0}) == {"mean": None, "ci95": None, "sd": None, "n": 0, "seeds": []}
    one = paired_interval({"0": 3.0, "1": float("nan")}, {"0": 1.0, "1": 2.0})
    assert one["seeds"] == ["0"] and one["mean"] == 2.0 and one["ci95"] is None


@pytest.mark.parametrize("interval, expected", [
    ([0.1, 2.0], "replicates"), ([0.0, 2.0], "inconclusive"), ([-1.0, 1.0], "inconclusive"),
    ([-2.0, 0.0], "inconclusive"), ([-2.0, -0.1], "contradicts"), (None, "inconclusive")])
def test_verdict_greater(interval, expected):
    assert verdict("greater", interval) == expected


@pytest.mark.parametrize("interval, expected", [
    ([-2.0, -0.1], "replicates"), ([-2.0, 0.0], "inconclusive"), ([-1.0, 1.0], "inconclusive"),
    ([0.0, 2.0], "inconclusive"), ([0.1, 2.0], "contradicts"), (None, "inconclusive")])
def test_verdict_less(interval, expected):
    assert verdict("less", interval) == expected


@pytest.mark.parametrize("interval, expected", [
    ([-0.5, 0.5], "replicates"), ([-1.0, 1.0], "replicates"), ([0.2, 0.9], "replicates"),
    ([-0.5, 1.2], "inconclusive"), ([-3.0, 3.0], "inconclusive"), ([1.0, 2.0], "inconclusive"),
    ([1.1, 2.0], "contradicts"), ([-2.0, -1.1], "contradicts"), (None, "inconclusive")])
def test_verdict_equal(interval, expected):
    assert verdict("equal", interval, margin=1.0) == expected


def test_verdict_errors():
    with pytest.raises(ValueError, match="greater, less or equal"):
        verdict("more", [1.0, 2.0])
    with pytest.raises(ValueError, match="greater, less or equal"):
        verdict("bigger", None)
    with pytest.raises(ValueError, match="margin"):
        verdict("equal", [0.0, 0.1])


def test_claim_verdict():
    assert claim_verdict(["replicates", "replicates"]) == "replicates"
    assert claim_verdict(["replicates", "inconclusive"]) == "inconclusive"
    assert claim_verdict(["replicates", "inconclusive", "contradicts"]) == "contradicts"
    assert claim_verdict(["contradicts"]) == "contradicts"
    assert claim_verdict([]) == "inconclusive"


CLAIM = Claim.model_validate({
    "id": "toy", "paper": "P", "table": "Table 9", "title": "toy", "compares": "x", "recipe": "r",
    "cells": {"start": {"start": True, "label": "start", "paper": 50.0},
              "a": {"label": "A", "set": {"k_min": 2.0}, "paper": 56.0},
              "b": {"label": "B", "set": {"k_min": 5.0}, "paper": 55.5}},
    "paper_metrics": {"t_conv": {"a": 100.0, "b": 150.0}},
    "comparisons": [{"a": "a", "b": "start", "expect": "greater"},
                    {"a": "a", "b": "b", "expect": "equal"},
                    {"a": "a", "b": "b", "expect": "less", "metric": "t_conv"}]})


def metrics(greedy, t_conv=None):
    return {"metrics": {"greedy": greedy, "t_conv": t_conv}}


CELLS = {
    "toy/start": {"run": "start", "seeds": {"0": metrics(50.0)}},  # one evaluation for every seed
    "toy/a": {"run": "run-a", "seeds": {"0": metrics(55.0, 100), "1": metrics(56.0, 110), "2": metrics(57.0, 90)}},
    "toy/b": {"run": "run-b", "seeds": {"0": metrics(54.8, 140), "1": metrics(55.6, 160), "2": metrics(57.1, 120)}},
}


def test_aggregate_start_cell_stands_for_every_seed():
    (claim,) = aggregate([CLAIM], CELLS, seeds=[0, 1, 2])
    start = claim["cells"]["start"]
    assert start["start"] and start["run"] == "start" and start["paper"] == 50.0
    assert start["seeds_done"] == ["0", "1", "2"]
    assert start["per_seed"]["greedy"] == {"0": 50.0, "1": 50.0, "2": 50.0}
    assert start["summary"]["greedy"]["mean"] == 50.0 and start["summary"]["t_conv"]["mean"] is None
    assert start["summary"]["greedy"]["n"] == 1 and start["summary"]["greedy"]["ci95"] is None  # one evaluation
    cell_a = claim["cells"]["a"]
    assert cell_a["seeds_done"] == ["0", "1", "2"] and cell_a["paper_metrics"] == {"t_conv": 100.0}
    assert cell_a["summary"]["greedy"]["mean"] == pytest.approx(56.0)
    assert cell_a["summary"]["greedy"]["ci95"] == pytest.approx(
        list(stats.t.interval(0.95, 2, loc=56.0, scale=stats.sem([55.0, 56.0, 57.0]))))


def test_aggregate_comparisons():
    (claim,) = aggregate([CLAIM], CELLS, seeds=[0, 1, 2])
    over_start, equal, faster = claim["comparisons"]
    # a - start = 5, 6, 7: mean 6, interval 6 +- 4.303 * 1 / sqrt(3), above 0
    assert over_start["diff"]["seeds"] == ["0", "1", "2"]
    assert over_start["diff"]["mean"] == pytest.approx(6.0)
    assert over_start["diff"]["ci95"] == pytest.approx([6.0 - 2.4841377, 6.0 + 2.4841377])
    assert over_start["paper_diff"] == pytest.approx(6.0) and over_start["margin"] is None
    assert over_start["verdict"] == "replicates"
    # a - b = 0.2, 0.4, -0.1: mean 0.167, interval about [-0.46, 0.79], inside +-1 -> replicates
    assert equal["margin"] == EQUIVALENCE_MARGINS["greedy"] == 1.0
    assert equal["diff"]["mean"] == pytest.approx(0.5 / 3)
    assert equal["diff"]["ci95"] == pytest.approx([-0.4584, 0.7918], abs=1e-3)
    assert equal["paper_diff"] == pytest.approx(0.5)
    assert equal["verdict"] == "replicates"
    # t_conv a - b = -40, -50, -30: below 0
    assert faster["diff"]["mean"] == pytest.approx(-40.0) and faster["paper_diff"] == -50.0
    assert faster["verdict"] == "replicates"
    assert claim["verdict"] == "replicates" and claim["min_seeds"] == 3
    assert (claim["id"], claim["table"], claim["recipe"]) == ("toy", "Table 9", "r")


def test_aggregate_missing_cells_are_inconclusive():
    cells = {**CELLS, "toy/b": {"run": "run-b", "seeds": {"0": metrics(54.8, 140)}}}
    del cells["toy/start"]
    (claim,) = aggregate([CLAIM], cells, seeds=[0, 1, 2])
    assert claim["cells"]["start"]["seeds_done"] == [] and claim["cells"]["start"]["run"] is None
    assert claim["cells"]["b"]["seeds_done"] == ["0"]
    verdicts = [c["verdict"] for c in claim["comparisons"]]
    assert verdicts == ["inconclusive"] * 3
    assert [c["diff"]["n"] for c in claim["comparisons"]] == [0, 1, 1]
    assert claim["min_seeds"] == 0 and claim["verdict"] == "inconclusive"


def test_aggregate_contradiction_wins():
    cells = {**CELLS, "toy/start": {"run": "start", "seeds": {"0": metrics(60.0)}}}
    (claim,) = aggregate([CLAIM], cells, seeds=[0, 1, 2])
    assert claim["comparisons"][0]["diff"]["mean"] == pytest.approx(-4.0)
    assert claim["comparisons"][0]["verdict"] == "contradicts"
    assert claim["verdict"] == "contradicts"
