"""Group-relative advantage estimators and their training diagnostics.

- ``grpo``: ``A_i = (R_i - mean_g R) / (std_g R + eps)`` (Smooth Operator eq. 7).
- ``ap_grpo``: ``A'_i = (R_i - mean_g R) / (std_g R + eps) * r_hat_i ** alpha``, clipped to
  ``[-c, c]`` (Smooth Operator eq. 8 and sec. 3.4: "symmetric clipping"); paper alpha = 1, c = 1.5.
  The relative term uses the total reward ``R``; the absolute term the accuracy component
  ``r_hat`` only (eq. 8's ``tilde r``), which must lie in [0, 1]. Appendix A.1: the sign of the
  GRPO advantage is kept and positive advantages keep their order.
- ``absolute``: ``A_i = r_hat_i ** alpha``, clipped: the "pure absolute scalar" row of Table 3.

Our choices: the group standard deviation is the unbiased sample std, as TRL's GRPOTrainer and
verl's GRPO estimator compute it; a group of one, or of equal rewards, gets zero advantages
(never NaN). Inputs are 1-D (one scalar per completion); a completion's advantage is broadcast
over its tokens by the trainer.

Diagnostics (``advantage_diagnostics``): Smooth Operator sec. 4.3's advantage variance
``sigma_A^2 = 1/G sum_i (A_i - mean A)^2`` averaged over groups; the fraction of groups whose
rewards have zero variance (their GRPO advantages vanish); and near-miss use, the share of
samples with a non-zero error (``r_hat < 1``) that still receive a non-zero advantage.
``convergence_step`` is sec. 4.3's convergence steps (Table 2, "Conv."):
``T_conv = min{t : Acc_t >= 0.95 * Acc_max}`` over an accuracy curve; which curve a run uses
is chosen by the caller (``spatialrl.train.callbacks.training_diagnostics``).

Estimators live in a small registry: ``register_advantage("name")`` adds one, and
``compute_advantages("name", ...)`` calls it with the keyword options it accepts.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from spatialrl._arrays import as_float_array, as_group_index, as_vector, like_input

ADVANTAGE_ESTIMATORS: dict[str, Callable[..., Any]] = {}


def register_advantage(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding an estimator ``fn(rewards, ..., group_ids, **options)`` under ``name``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in ADVANTAGE_ESTIMATORS and ADVANTAGE_ESTIMATORS[name] is not fn:
            raise ValueError(f"an advantage estimator named {name!r} is already registered")
        ADVANTAGE_ESTIMATORS[name] = fn
        return fn

    return decorate


def get_advantage(name: str) -> Callable[..., Any]:
    """The registered estimator called ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return ADVANTAGE_ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown advantage estimator {name!r}; known: {sorted(ADVANTAGE_ESTIMATORS)} "
            "(add one with spatialrl.advantages.register_advantage)"
        ) from None


def compute_advantages(name: str, **inputs: Any) -> Any:
    """Call estimator ``name`` with those of ``inputs`` its signature accepts.

    Lets a trainer pass one uniform set (``rewards``, ``abs_rewards``, ``group_ids``, ``alpha``,
    ``clip``, ``eps``) to any estimator, built in or registered by a user.
    """
    fn = get_advantage(name)
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**inputs)
    return fn(**{k: v for k, v in inputs.items() if k in params})


def _group_stats(values: np.ndarray, index: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group mean, unbiased std (0 for groups of one) and size."""
    size = np.bincount(index, minlength=n_groups).astype(np.float64)
    mean = np.bincount(index, weights=values, minlength=n_groups) / size
    centred = values - mean[index]
    sq = np.bincount(index, weights=centred * centred, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(size > 1, np.sqrt(sq / np.maximum(size - 1, 1)), 0.0)
    return mean, std, size


def _check_clip(clip: float | None) -> None:
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be > 0 (or None for no clipping), got {clip!r}")


def _check_alpha(alpha: float) -> None:
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")


def _relative(rewards: np.ndarray, group_ids: Any, eps: float) -> np.ndarray:
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    index, n_groups = as_group_index(group_ids, len(rewards))
    mean, std, _ = _group_stats(rewards, index, n_groups)
    centred = rewards - mean[index]
    # Floating-point means leave ~1e-17 residues in all-equal groups; zero them exactly,
    # so a constant group contributes nothing rather than noise (and never 0/0 with eps = 0).
    low = np.full(n_groups, np.inf)
    high = np.full(n_groups, -np.inf)
    np.minimum.at(low, index, rewards)
    np.maximum.at(high, index, rewards)
    constant = (high == low)[index]
    denom = std[index] + eps
    return np.divide(centred, denom, out=np.zeros_like(centred), where=(denom > 0) & ~constant)


def _abs_term(abs_rewards: Any, n: int, alpha: float) -> np.ndarray:
    r_hat = as_vector(abs_rewards, "abs_rewards")
    if len(r_hat) != n:
        raise ValueError(f"abs_rewards has {len(r_hat)} entries but there are {n} rewards")
    if r_hat.size and (r_hat.min() < 0 or r_hat.max() > 1):
        raise ValueError(
            f"abs_rewards must lie in [0, 1] (the accuracy component r_hat, e.g. SNRA), "
            f"got range [{r_hat.min():.4g}, {r_hat.max():.4g}]"
        )
    return np.power(r_hat, alpha)


def _clip(values: np.ndarray, clip: float | None) -> np.ndarray:
    return values if clip is None else np.clip(values, -clip, clip)


@register_advantage("grpo")
def grpo(rewards: Any, group_ids: Any, eps: float = 1e-6, clip: float | None = None) -> Any:
    """Group-relative advantage (Smooth Operator eq. 7).

    Args:
        rewards: ``(N,)`` total reward per completion (float list, numpy or torch).
        group_ids: ``(N,)`` id of each completion's prompt group (any hashables).
        eps: added to the group std.
        clip: optional symmetric clip ``[-clip, clip]``; ``None`` (default) leaves it off.

    Returns:
        ``(N,)`` advantages, same kind as ``rewards``; zeros for all-equal groups.
    """
    _check_clip(clip)
    r = as_vector(rewards, "rewards")
    return like_input(_clip(_relative(r, group_ids, eps), clip), rewards)


@register_advantage("ap_grpo")
def ap_grpo(rewards: Any, abs_rewards: Any, group_ids: Any, alpha: float = 1.0, clip: float | None = 1.5,
            eps: float = 1e-6) -> Any:
    """Absolute-Preserving GRPO advantage (Smooth Operator eq. 8), clipped to ``[-clip, clip]``.

    Args:
        rewards: ``(N,)`` total reward R (e.g. eq. 4's composite) for the relative term.
        abs_rewards: ``(N,)`` accuracy component r_hat in [0, 1] for the absolute term.
        group_ids: ``(N,)`` prompt group of each completion.
        alpha: exponent of the absolute term (paper: 1; 0 recovers GRPO; Table 7).
        clip: symmetric clip bound c (paper: 1.5); ``None`` disables clipping.
        eps: added to the group std.
    """
    _check_alpha(alpha)
    _check_clip(clip)
    r = as_vector(rewards, "rewards")
    relative = _relative(r, group_ids, eps)
    return like_input(_clip(relative * _abs_term(abs_rewards, len(r), alpha), clip), rewards)


@register_advantage("absolute")
def absolute(abs_rewards: Any, group_ids: Any = None, alpha: float = 1.0, clip: float | None = 1.5) -> Any:
    """Pure absolute advantage ``r_hat ** alpha`` (Smooth Operator Table 3, "absolute only").

    ``group_ids`` is accepted for a uniform call but unused: this estimator has no baseline.
    """
    _check_alpha(alpha)
    _check_clip(clip)
    r_hat = as_vector(abs_rewards, "abs_rewards")
    if group_ids is not None:
        as_group_index(group_ids, len(r_hat))  # same length check as the others
    return like_input(_clip(_abs_term(r_hat, len(r_hat), alpha), clip), abs_rewards)


def advantage_diagnostics(advantages: Any, rewards: Any, group_ids: Any, abs_rewards: Any = None,
                          tol: float = 1e-8) -> dict[str, float]:
    """Namespaced training diagnostics for one batch.

    Args:
        advantages: ``(N,)`` the advantages the loss uses.
        rewards: ``(N,)`` the total rewards they came from.
        group_ids: ``(N,)`` prompt groups.
        abs_rewards: ``(N,)`` accuracy component r_hat; needed for ``adv/near_miss_use``.
        tol: magnitude under which an advantage or a reward spread counts as zero.

    Returns:
        ``adv/mean``, ``adv/variance`` (sec. 4.3, mean over groups of the population variance),
        ``adv/abs_mean``, ``adv/zero_std_group_frac``, and, with ``abs_rewards``,
        ``adv/near_miss_use`` (NaN when no sample has a non-zero error).
    """
    a = as_vector(advantages, "advantages")
    r = as_vector(rewards, "rewards")
    if len(a) != len(r):
        raise ValueError(f"advantages has {len(a)} entries but rewards has {len(r)}")
    index, n_groups = as_group_index(group_ids, len(a))
    _, a_std, size = _group_stats(a, index, n_groups)
    population_var = np.where(size > 1, a_std**2 * (size - 1) / size, 0.0)
    _, r_std, _ = _group_stats(r, index, n_groups)
    out = {
        "adv/mean": float(a.mean()) if a.size else 0.0,
        "adv/abs_mean": float(np.abs(a).mean()) if a.size else 0.0,
        "adv/variance": float(population_var.mean()) if n_groups else 0.0,
        "adv/zero_std_group_frac": float((r_std <= tol).mean()) if n_groups else 0.0,
    }
    if abs_rewards is not None:
        r_hat = as_vector(abs_rewards, "abs_rewards")
        if len(r_hat) != len(a):
            raise ValueError(f"abs_rewards has {len(r_hat)} entries but advantages has {len(a)}")
        near_miss = r_hat < 1.0 - 1e-12
        out["adv/near_miss_use"] = (
            float((np.abs(a[near_miss]) > tol).mean()) if near_miss.any() else float("nan")
        )
    return out


#: Smooth Operator sec. 4.3: a run has converged once its accuracy reaches 95 % of its maximum.
CONVERGENCE_FRACTION = 0.95


def convergence(accuracy: Any, steps: Any = None, fraction: float = CONVERGENCE_FRACTION,
                window: int = 1) -> dict[str, float | None]:
    """Convergence steps ``T_conv = min{t : Acc_t >= fraction * Acc_max}`` (Smooth Operator sec. 4.3).

    Args:
        accuracy: ``(T,)`` accuracy per logged step, >= 0; NaN (or None) entries, e.g. a step
            with no scorable sample, are skipped.
        steps: ``(T,)`` the step of each entry, strictly increasing; ``None``: ``1, 2, ..., T``.
        fraction: the share of the maximum that counts as converged (paper: 0.95), in (0, 1].
        window: a trailing moving average over this many finite entries (fewer at the start) is
            taken before the maximum and the threshold; 1 (default) uses the curve as it is. On a
            noisy per-step curve, one lucky step otherwise sets ``Acc_max``.

    Returns:
        ``{"t_conv": first step whose (smoothed) accuracy reaches the threshold, "acc_max": the
        (smoothed) maximum, "threshold": fraction * acc_max}``; all ``None`` when no entry is finite.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    acc = as_float_array(accuracy, "accuracy", allow_nan=True)
    if acc.ndim != 1:
        raise ValueError(f"accuracy must be 1-D with one value per logged step, got shape {tuple(acc.shape)}")
    at = np.arange(1, len(acc) + 1, dtype=np.float64) if steps is None else as_vector(steps, "steps")
    if len(at) != len(acc):
        raise ValueError(f"steps has {len(at)} entries but accuracy has {len(acc)}")
    if len(at) > 1 and not (np.diff(at) > 0).all():
        raise ValueError("steps must be strictly increasing")
    keep = np.isfinite(acc)
    acc, at = acc[keep], at[keep]
    if not acc.size:
        return {"t_conv": None, "acc_max": None, "threshold": None}
    if acc.min() < 0:
        raise ValueError(f"accuracy must be >= 0 (T_conv compares it with a share of its maximum), got {acc.min():.4g}")
    if window > 1:
        sums = np.concatenate([[0.0], np.cumsum(acc)])
        upto = np.arange(1, len(acc) + 1)
        start = np.maximum(upto - window, 0)
        acc = (sums[upto] - sums[start]) / (upto - start)
    acc_max = float(acc.max())
    threshold = fraction * acc_max
    step = float(at[int(np.argmax(acc >= threshold))])
    return {"t_conv": int(step) if step.is_integer() else step, "acc_max": acc_max, "threshold": threshold}


def convergence_step(accuracy: Any, steps: Any = None, fraction: float = CONVERGENCE_FRACTION,
                     window: int = 1) -> float | None:
    """``T_conv`` of :func:`convergence` alone (same arguments); ``None`` when no entry is finite."""
    return convergence(accuracy, steps, fraction, window)["t_conv"]
