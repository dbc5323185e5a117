"""Paired comparisons of two models scored on the same items, with mirror pairs as clusters.

Pure functions (sequences in, numbers out; numpy only). The demo (``spatialrl.demo``) uses
them for ``metrics.json`` -> ``paired`` (RL - start, RL - control, greedy and sampled) and
``pair_consistency``.

The statistic. Items ``i`` carry scores ``a_i`` and ``b_i`` of the two models (e.g. 0/1
accuracy or a mean relative accuracy in [0, 1], or a mean over k sampled answers), a cluster
(the mirror pair: the two views of one question are not independent) and optionally a stratum
(the question type). The difference is the one the scores report:

    d = (1/T) * sum_t mean_{i in t} (a_i - b_i)

the macro average over the T strata of the per-stratum mean item difference (with no strata,
the plain mean), so ``d = overall_a - overall_b`` exactly when ``overall`` is the macro average
over question types, as the world benchmark's is.

Intervals (``method``):

- ``"normal"`` (default; deterministic): the cluster-robust (linearisation / sandwich) standard
  error of ``d``. Writing ``d = sum_i w_i d_i`` with ``w_i = 1 / (T * n_t(i))``, each cluster
  contributes ``u_c = sum_{i in c} w_i (d_i - mean_t(i))``, and
  ``Var(d) = C / (C - 1) * sum_c u_c**2`` over the C clusters (the CR1 small-sample factor).
  The interval is ``d +- z * se`` with ``z`` the normal quantile of the level. Items of one
  cluster may lie in different strata. With every cluster a single item this is the usual
  paired standard error; positively correlated items within a cluster widen it.
- ``"bootstrap"``: a stratified cluster bootstrap: in every replicate each stratum's clusters
  are resampled with replacement (so every stratum keeps its number of clusters) and ``d`` is
  recomputed; the interval is the percentile interval. Needs every cluster inside one stratum.

With fewer than two clusters there is no interval (``ci95`` is None).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["METHODS", "macro_mean", "pair_consistency", "paired_difference"]

METHODS = ("normal", "bootstrap")


def _index(labels: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Integer codes 0..K-1 of ``labels`` in order of first appearance, and K."""
    codes: dict[Hashable, int] = {}
    out = np.fromiter((codes.setdefault(label, len(codes)) for label in labels), dtype=np.int64,
                      count=len(labels))
    return out, len(codes)


def _check(name: str, values: Sequence[Any], n: int) -> None:
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries, the scores {n}: give one per item")


def macro_mean(scores: Sequence[float], strata: Sequence[Hashable] | None = None) -> float:
    """The mean of ``scores`` per stratum, averaged over the strata (the plain mean without
    strata). NaN for no scores."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        return math.nan
    if strata is None:
        return float(x.mean())
    _check("strata", strata, x.size)
    s, t = _index(strata)
    return float(np.mean(np.bincount(s, weights=x, minlength=t) / np.bincount(s, minlength=t)))


def paired_difference(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable],
                      strata: Sequence[Hashable] | None = None, *, level: float = 0.95, method: str = "normal",
                      n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The paired difference ``macro(a) - macro(b)`` over the same items with a ``level``
    interval, clusters as the independent units (see the module docstring).

    Args:
        a, b: per-item scores of the two models, same length and item order.
        clusters: per-item cluster label (the mirror pair id; an item alone: a unique label).
        strata: per-item stratum (question type) or None (a plain mean).
        level: confidence level in (0, 1).
        method: ``"normal"`` (cluster-robust standard error) or ``"bootstrap"`` (stratified
            cluster bootstrap, ``n_boot`` replicates from ``numpy.random.default_rng(seed)``).

    Returns ``{"diff", "ci95": [lo, hi] | None, "se", "clusters", "items", "level", "method"}``
    (``ci95`` holds the interval at ``level``; ``se`` is the normal method's standard error, or
    the bootstrap replicates' standard deviation).
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level}: give a confidence level in (0, 1), e.g. 0.95")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = x.size
    if y.size != n:
        raise ValueError(f"a has {n} scores and b {y.size}: score both models on the same items")
    _check("clusters", clusters, n)
    if n == 0:
        return {"diff": math.nan, "ci95": None, "se": None, "clusters": 0, "items": 0, "level": level,
                "method": method}
    d = x - y
    c, n_clusters = _index(clusters)
    if strata is None:
        s, n_strata = np.zeros(n, dtype=np.int64), 1
    else:
        _check("strata", strata, n)
        s, n_strata = _index(strata)
    per_stratum = np.bincount(s, minlength=n_strata).astype(float)
    means = np.bincount(s, weights=d, minlength=n_strata) / per_stratum
    diff = float(means.mean())
    out: dict[str, Any] = {"diff": diff, "ci95": None, "se": None, "clusters": int(n_clusters), "items": int(n),
                           "level": level, "method": method}
    if n_clusters < 2:
        return out
    if method == "normal":
        w = 1.0 / (n_strata * per_stratum[s])
        u = np.bincount(c, weights=w * (d - means[s]), minlength=n_clusters)
        se = math.sqrt(n_clusters / (n_clusters - 1) * float(np.sum(u * u)))
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        out.update(se=se, ci95=[diff - z * se, diff + z * se])
        return out
    # stratified cluster bootstrap: cluster totals and sizes, clusters grouped by stratum
    cluster_stratum = np.full(n_clusters, -1, dtype=np.int64)
    for ci, si in zip(c.tolist(), s.tolist()):
        if cluster_stratum[ci] not in (-1, si):
            raise ValueError("method='bootstrap' needs every cluster inside one stratum (a mirror pair shares its "
                             "question type); use method='normal' for clusters that span strata")
        cluster_stratum[ci] = si
    totals = np.bincount(c, weights=d, minlength=n_clusters)
    sizes = np.bincount(c, minlength=n_clusters).astype(float)
    rng = np.random.default_rng(seed)
    reps = np.zeros(n_boot)
    for t in range(n_strata):
        members = np.flatnonzero(cluster_stratum == t)
        draws = rng.integers(0, members.size, size=(n_boot, members.size))
        picked = members[draws]
        reps += totals[picked].sum(axis=1) / sizes[picked].sum(axis=1)
    reps /= n_strata
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [tail, 1.0 - tail])
    out.update(se=float(reps.std(ddof=1)), ci95=[float(lo), float(hi)], n_boot=int(n_boot), seed=int(seed))
    return out


def pair_consistency(scores: Sequence[float], clusters: Sequence[Hashable], threshold: float = 0.5) -> float | None:
    """The share of clusters with at least two items (mirror pairs with both views among the
    items) whose every item scores ``>= threshold`` ("both views right": the world benchmark's
    ``RIGHT_THRESHOLD`` 0.5 and ``metrics.pairs.both_right``). A fraction in [0, 1]; None when
    no cluster has two items."""
    x = np.asarray(scores, dtype=float)
    _check("clusters", clusters, x.size)
    c, k = _index(clusters)
    sizes = np.bincount(c, minlength=k)
    right = np.bincount(c, weights=(x >= threshold).astype(float), minlength=k)
    whole = sizes >= 2
    if not whole.any():
        return None
    return float(np.mean(right[whole] == sizes[whole]))
