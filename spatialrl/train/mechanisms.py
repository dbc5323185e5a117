"""The papers' mechanisms, measured counterfactually on one generation batch's own completions.

For every GRPO generation batch, SpatialGRPOTrainer scores the SAME completions under the
alternatives as well as under the trained reward and estimator, and logs (``mechanisms/...``):

- ``zero_var_frac_snra`` / ``zero_var_frac_binary``: the fraction of prompt groups whose total
  reward ``R`` (Smooth Operator eq. 4 / SVQA-R1 eq. 1, through the same Spatial-GRPO penalty as
  trained) has zero spread (group std <= 1e-8, the ``adv/zero_std_group_frac`` rule), with the
  accuracy component as trained (SNRA, eq. 2 or the tanh variant, at this step's k(t), eq. 5)
  and with it replaced by Table 2's S1 binary reward ``1[e <= BINARY_TOLERANCE]``. Smooth
  Operator Fig. 1: a binary reward leaves near-miss groups with zero spread, SNRA keeps them
  informative. (A run trained with the binary operator gets SNRA's sigmoid at k recomputed.)
- ``near_miss_use_ap_grpo`` / ``near_miss_use_grpo``: near-miss use as
  :func:`spatialrl.advantages.advantage_diagnostics` defines it (``adv/near_miss_use``): among
  the scorable samples with a non-zero error (absolute term ``r_hat < 1 - 1e-12``), the share
  whose advantage is non-zero (``|A| > 1e-8``), with the advantages of AP-GRPO (eq. 8) and of
  GRPO (eq. 7) computed from the same trained ``R`` and ``r_hat``, with the run's alpha, clip
  and eps. AP-GRPO multiplies GRPO's advantage by ``r_hat ** alpha``, so on the same rewards its
  near-miss use is at most GRPO's: the gap counts imperfect answers whose advantage AP-GRPO
  silences (``r_hat`` at or near 0, i.e. far-off answers; App. A.1's suppression). Not logged
  for a batch without such samples (the diagnostic's NaN).
- ``adv_variance_ap_grpo`` / ``adv_variance_grpo``: sec. 4.3's advantage variance
  ``sigma_A^2 = 1/G sum_i (A_i - mean A)^2`` averaged over groups (``adv/variance``), for the same
  two advantage vectors (App. A.2-A.3: AP-GRPO's is smaller where rewards are low, equal as r -> 1).
- ``abs_delta``: the mean ``|delta|`` over the complete mirror pairs in the batch, ``delta =
  mean(r_s) - mean(r_s_mirror)`` (SVQA-R1 eq. 2) before the penalty, on the component the
  penalty acts on (``consistency_reward``) or, when the penalty is off, on the accuracy
  component; 0 when the batch holds no complete pair.

k(t) is the accuracy reward's ``sharpness/k``, logged already.

The per-sample error e: taken directly, not by inverting the operator. The accuracy reward
(:class:`spatialrl.rewards.trl.AccuracyReward`) keeps the errors and k of its last call
(``last_errors``, ``last_k``), per process; the trainer gathers them over processes with
``gather_object`` in process order, the order in which TRL gathers the rewards, so row i of the
errors is row i of ``rewards_per_func``. Why not invert: TRL stores rewards as float32, and the
binary rule's boundary (``e <= 0.01`` exactly, e.g. a 10 cm miss is ``0.1**2 = 0.010000000000000002``
and counts wrong) cannot be recovered from a float32 SNRA value; underflow (``k e > ~103`` in
float32) loses the error altogether. The exact errors cost nothing. :func:`errors_from_rewards`
(the inversion ``e = ln(2/r - 1)/k``, ``artanh(1 - r)/k``) remains for analysing rewards whose
errors were not kept; it is exact in float64 where ``r > 1e-12``.

:func:`mechanism_metrics` is pure (numpy in, dict out) and costs about a millisecond per batch
(one extra :func:`~spatialrl.train.advantage_step.spatial_advantages` and two estimator calls on
N rows); nothing it computes reaches the loss. :func:`summarise` turns a run's log history into
the ``mechanisms`` block of the demo's ``metrics.json``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from spatialrl.advantages import advantage_diagnostics, compute_advantages
from spatialrl.rewards.consistency import apply_view_consistency
from spatialrl.rewards.snra import binary_reward, snra
from spatialrl.train.advantage_step import AdvantageSettings, AdvantageStep, spatial_advantages

PREFIX = "mechanisms/"
#: The per-step keys, without ``PREFIX``, in the order of ``summarise``'s summary.
KEYS = ("zero_var_frac_snra", "zero_var_frac_binary", "near_miss_use_ap_grpo", "near_miss_use_grpo",
        "adv_variance_ap_grpo", "adv_variance_grpo", "abs_delta")
ESTIMATORS = ("ap_grpo", "grpo")


def errors_from_rewards(rewards: Any, k: float, operator: str = "sigmoid") -> np.ndarray:
    """Invert the accuracy operator: the error e of each reward r at sharpness k.

    - ``sigmoid`` (Smooth Operator eq. 2, ``r = 2/(1 + exp(k e))``): ``e = ln(2/r - 1) / k``;
    - ``tanh`` (eq. 12, ``r = 1 - tanh(k e) = 2/(1 + exp(2 k e))``): ``e = artanh(1 - r) / k``,
      i.e. ``ln(2/r - 1) / (2 k)``;
    - ``binary`` (Table 2, S1): no error can be recovered; returns ``0`` for ``r = 1`` and ``inf``
      for ``r = 0`` (which ``binary_reward`` maps back to the same 1 / 0).

    Computed as ``log1p(2 (1 - r) / r)``, accurate at both ends in float64. ``r = 0`` (underflow)
    gives ``inf``; NaN (reward not applicable) stays NaN; rounding just above ``r = 1`` gives 0.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if not (k > 0 and math.isfinite(k)):
        raise ValueError(f"k must be a positive finite number, got {k!r}")
    scale = {"sigmoid": 1.0, "tanh": 2.0, "binary": None}
    if operator not in scale:
        raise ValueError(f"operator must be one of {sorted(scale)}, got {operator!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        if operator == "binary":
            e = np.where(r >= 1.0, 0.0, np.inf)
        else:
            e = np.log1p(2.0 * np.maximum(1.0 - r, 0.0) / r) / (scale[operator] * k)
    e = np.where(r <= 0.0, np.inf, e)
    return np.where(np.isnan(r), np.nan, e)


def _zero_spread_frac(total: np.ndarray, groups: np.ndarray) -> float:
    keep = np.isfinite(total)
    if not keep.any():
        return 0.0
    return advantage_diagnostics(np.zeros(int(keep.sum())), total[keep], groups[keep].tolist())["adv/zero_std_group_frac"]


def _with_accuracy(rpf: np.ndarray, col: int, values: np.ndarray) -> np.ndarray:
    out = rpf.copy()
    out[:, col] = values
    return out


def mechanism_metrics(
    rewards_per_func: Any,
    names: Sequence[str],
    weights: Sequence[float],
    group_ids: Sequence[Any],
    settings: AdvantageSettings,
    *,
    errors: Sequence[float | None] | None = None,
    k: float | None = None,
    operator: str = "sigmoid",
    accuracy: str = "accuracy",
    pair_ids: Sequence[Any] | None = None,
    is_mirror: Sequence[bool] | None = None,
    trained: AdvantageStep | None = None,
) -> dict[str, float]:
    """The ``mechanisms/*`` metrics of one generation batch (definitions in the module docstring).

    Args:
        rewards_per_func: ``(N, F)`` rewards before the penalty, NaN where a component does not
            apply (what :func:`~spatialrl.train.advantage_step.spatial_advantages` takes).
        names, weights, group_ids, settings, pair_ids, is_mirror: as for ``spatial_advantages``.
        errors: ``(N,)`` the accuracy component's error per row (``None``/NaN where it does not
            apply); without it (or without ``k`` when ``operator`` is ``binary``) the two
            zero-variance keys that need it are left out.
        k: the sharpness this batch's accuracy reward used.
        operator: the trained accuracy operator (``sigmoid``, ``tanh`` or ``binary``).
        accuracy: the name of the accuracy component.
        trained: the ``AdvantageStep`` already computed for this batch (saves recomputing it).

    Returns:
        ``{"mechanisms/<key>": float}``; keys whose value is undefined for this batch are absent.
    """
    rpf = np.array(rewards_per_func, dtype=np.float64)
    groups = np.asarray(list(group_ids))
    step = trained if trained is not None else spatial_advantages(
        rpf, names, weights, groups.tolist(), settings, pair_ids=pair_ids, is_mirror=is_mirror)
    out: dict[str, float] = {}

    def total_with(values: np.ndarray) -> np.ndarray:
        return spatial_advantages(_with_accuracy(rpf, col, values), names, weights, groups.tolist(), settings,
                                  pair_ids=pair_ids, is_mirror=is_mirror).total_rewards

    col = list(names).index(accuracy) if accuracy in names else None
    err = None
    if errors is not None and col is not None:
        err = np.array([np.nan if e is None else float(e) for e in errors], dtype=np.float64)
        if len(err) != len(rpf):
            raise ValueError(f"errors has {len(err)} entries but there are {len(rpf)} rows")
    if operator == "binary":
        if err is not None and k is not None:
            applies = ~np.isnan(err)
            smooth = np.full(len(err), np.nan)
            smooth[applies] = snra(err[applies], k)
            out[PREFIX + "zero_var_frac_snra"] = _zero_spread_frac(total_with(smooth), groups)
    else:
        out[PREFIX + "zero_var_frac_snra"] = _zero_spread_frac(step.total_rewards, groups)
    if err is not None:
        applies = ~np.isnan(err)
        hard = np.full(len(err), np.nan)
        hard[applies] = binary_reward(err[applies])
        # trained with the binary operator: the trained total is already the binary one
        out[PREFIX + "zero_var_frac_binary"] = _zero_spread_frac(
            step.total_rewards if operator == "binary" else total_with(hard), groups)

    scorable = np.isfinite(step.total_rewards)
    if scorable.any():
        total, r_hat, g = step.total_rewards[scorable], step.abs_rewards[scorable], groups[scorable].tolist()
        for name in ESTIMATORS:
            adv = np.asarray(compute_advantages(name, rewards=total, abs_rewards=r_hat, group_ids=g,
                                                alpha=settings.alpha, clip=settings.clip, eps=settings.eps),
                             dtype=np.float64)
            d = advantage_diagnostics(adv, total, g, abs_rewards=r_hat)
            if not math.isnan(d["adv/near_miss_use"]):
                out[f"{PREFIX}near_miss_use_{name}"] = d["adv/near_miss_use"]
            out[f"{PREFIX}adv_variance_{name}"] = d["adv/variance"]

    deltas = step.deltas
    if settings.consistency_reward is None and col is not None and pair_ids is not None and is_mirror is not None:
        applies = ~np.isnan(rpf[:, col])
        if applies.any():
            pids = np.asarray(list(pair_ids), dtype=object)[applies]
            mirrored = np.asarray(list(is_mirror), dtype=bool)[applies]
            _, deltas = apply_view_consistency(rpf[applies, col], pids, mirrored)
    out[PREFIX + "abs_delta"] = float(np.abs(deltas).mean()) if len(deltas) else 0.0
    return out


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _value(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def summarise(log_history: list[dict]) -> dict:
    """The ``mechanisms`` block of ``metrics.json`` from a GRPO run's log history.

    Reads the training rows (``step`` and at least one ``mechanisms/`` key; evaluation rows are
    prefixed ``eval_`` by transformers and ignored); a step logged twice keeps its first row.
    Missing or non-finite values are ``None`` (JSON ``null``); the summary means are over the
    finite values (``None`` when there are none).

    Returns:
        ``{"steps", "k", "zero_var_frac": {"snra", "binary"}, "near_miss_use": {"ap_grpo", "grpo"},
        "adv_variance": {"ap_grpo", "grpo"}, "abs_delta", "summary": {<KEYS>: mean}}``.
    """
    by_step: dict[int, dict] = {}
    for row in log_history:
        if "step" in row and any(str(key).startswith(PREFIX) for key in row):
            by_step.setdefault(int(row["step"]), row)
    steps = sorted(by_step)
    series = {key: [_value(by_step[s], PREFIX + key) for s in steps] for key in KEYS}
    return {
        "steps": steps,
        "k": [_value(by_step[s], "sharpness/k") for s in steps],
        "zero_var_frac": {"snra": series["zero_var_frac_snra"], "binary": series["zero_var_frac_binary"]},
        "near_miss_use": {"ap_grpo": series["near_miss_use_ap_grpo"], "grpo": series["near_miss_use_grpo"]},
        "adv_variance": {"ap_grpo": series["adv_variance_ap_grpo"], "grpo": series["adv_variance_grpo"]},
        "abs_delta": series["abs_delta"],
        "summary": {key: _mean(series[key]) for key in KEYS},
    }


__all__ = ["ESTIMATORS", "KEYS", "PREFIX", "errors_from_rewards", "mechanism_metrics", "summarise"]
