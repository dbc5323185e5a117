"""The figures of ``spatialrl report``: matplotlib (Agg, no pyplot state) to PNG bytes.

Every function takes already-validated data (``gather.py`` reads and checks the files)
and returns the PNG as ``bytes``, or ``None`` when its data is absent. Output is deterministic:
fixed figure sizes (a function of the data only), fixed dpi, a fixed style that ignores the
user's matplotlibrc, and no ``Software`` or date metadata in the PNG, so the same inputs give
byte-identical images.

Colours: one per model throughout (``MODEL_COLORS``, Okabe-Ito, colour-blind safe).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

#: Model keys of ``metrics.json`` in display order, with their short labels.
MODEL_LABELS: dict[str, str] = {"sft": "start", "control": "control", "rl": "RL", "baseline": "baseline"}
#: One colour per model (Okabe-Ito): start blue, control orange, RL green, baseline grey.
MODEL_COLORS: dict[str, str] = {"sft": "#0072B2", "control": "#E69F00", "rl": "#009E73", "baseline": "#8C8C8C"}
#: Colours of the reward components (and the total, black).
COMPONENT_COLORS: dict[str, str] = {
    "accuracy": "#009E73", "format": "#CC79A7", "semantic": "#0072B2", "iou": "#D55E00",
}
_EXTRA_COLORS = ("#56B4E9", "#E69F00", "#F0E442", "#000080", "#800000")
_UNSTEPPED_COLORS = ("#CC79A7", "#D55E00", "#000000", "#800000")

DPI = 100
WIDE = (9.0, 4.0)  # inches: 900 x 400 px
STEP_LABEL = "optimizer step"

_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "path.simplify": True,
    "svg.hashsalt": "spatialrl",
}

Series = tuple[list[float], list[float]]  # (steps, values)


def _figure(size: tuple[float, float], ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _render(build) -> bytes:
    """Run ``build()`` (which returns a Figure) under the fixed style and encode it."""
    import matplotlib

    with matplotlib.rc_context(rc=_STYLE):
        fig = build()
        return _png(fig)


def _marker(n: int) -> str | None:
    return "o" if n <= 60 else None


def _line(ax, series: Series, label: str, color: str | None = None, **kw: Any) -> None:
    steps, values = series
    ax.plot(steps, values, label=label, color=color, marker=_marker(len(steps)), markersize=3.5, linewidth=1.6, **kw)


def _finish_steps(ax, ylabel: str, title: str, legend: bool = True) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, steps=[1, 2, 5, 10]))
    ax.set_xlim(left=0)
    right = max((max(line.get_xdata(), default=0) for line in ax.get_lines()), default=0)
    ax.set_xlim(right=max(1.0, float(right)) * 1.03)
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


# --------------------------------------------------------------------------------------
# Training curves (GRPO log history)
# --------------------------------------------------------------------------------------


def plot_rewards(total: Series | None, components: dict[str, Series]) -> bytes | None:
    """1. Each reward component's mean per step and the total reward.

    Args:
        total: the logged ``reward`` (weighted total the advantages use), or None.
        components: ``name -> mean series`` from ``rewards/<name>/mean``.
    """
    if not components and not (total and total[0]):
        return None

    def build():
        fig, (ax,) = _figure(WIDE)
        for i, (name, mean) in enumerate(components.items()):
            color = COMPONENT_COLORS.get(name, _EXTRA_COLORS[i % len(_EXTRA_COLORS)])
            _line(ax, mean, name, color)
        if total and total[0]:
            _line(ax, total, "total reward R", "#000000", linestyle="--")
        values = _finite([v for series in [*components.values(), total] if series for v in series[1]])
        ax.set_ylim(min([0.0, *values]) - 0.03, max([1.0, *values]) + 0.03)
        _finish_steps(ax, "mean reward per completion (unitless)", "Rewards over training (mean over completions)",
                      legend=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="component")
        return fig

    return _render(build)


def plot_sharpness(logged: Series | None, schedule: Any, total_steps: float | None, describe: str) -> bytes | None:
    """2. Logged ``sharpness/k`` and the schedule's formula curve k(t) (eq. 5 / linear / fixed)."""
    if schedule is None and not (logged and logged[0]):
        return None

    def build():
        fig, (ax,) = _figure(WIDE)
        if schedule is not None and total_steps:
            end = max([total_steps] + (list(logged[0]) if logged else []))
            ts = [end * i / 400 for i in range(401)]
            ax.plot(ts, [schedule(t, total_steps) for t in ts], color="#444444", linewidth=1.4,
                    label=f"schedule: {describe}")
            ax.axvline(total_steps, color="#999999", linestyle=":", linewidth=1)
        if logged and logged[0]:
            ax.plot(logged[0], logged[1], linestyle="none", marker="o", markersize=5, color="#D55E00",
                    label="logged sharpness/k")
        ax.set_ylim(bottom=0)
        _finish_steps(ax, "sharpness k (1 / SI error)", "Sharpness k(t) of the SNRA reward")
        return fig

    return _render(build)


def plot_snra(operator, ks: list[tuple[float, str]], e_max: float, name: str) -> bytes | None:
    """3. SNRA reward r = op(e, k) for several k, over e in [0, e_max] (linear) and log-scaled e."""

    def build():
        import matplotlib
        import numpy as np

        fig, (lin, log) = _figure(WIDE, ncols=2)
        cmap = matplotlib.colormaps["viridis"]
        e_lin = np.linspace(0.0, e_max, 600)
        e_log = np.logspace(-4, math.log10(e_max), 600)
        for i, (k, label) in enumerate(ks):
            color = cmap(i / max(1, len(ks) - 1) * 0.9)
            lin.plot(e_lin, operator(e_lin, k), color=color, linewidth=1.6, label=label)
            log.plot(e_log, operator(e_log, k), color=color, linewidth=1.6, label=label)
        log.set_xscale("log")
        for ax, title in ((lin, "linear error axis"), (log, "log error axis")):
            ax.set_xlabel("squared error e (SI units)")
            ax.set_ylabel("reward r = snra(e, k)")
            ax.set_ylim(-0.02, 1.05)
            ax.set_title(f"{name}: {title}")
        log.axvline(e_max, color="#999999", linestyle=":", linewidth=1)
        lin.legend(loc="upper right", title="sharpness")
        return fig

    return _render(build)


def plot_adv_variance(variance: Series | None, abs_mean: Series | None) -> bytes | None:
    """4. Advantage variance per step (Smooth Operator sec. 4.3), and mean |A| on a second panel."""
    if not (variance and variance[0]):
        return None

    def build():
        fig, axes = _figure(WIDE, ncols=2 if abs_mean and abs_mean[0] else 1)
        _line(axes[0], variance, "adv/variance", "#0072B2")
        axes[0].set_ylim(bottom=0)
        _finish_steps(axes[0], "advantage variance (unitless²)", "Advantage variance (mean over groups)", legend=False)
        if len(axes) > 1:
            _line(axes[1], abs_mean, "adv/abs_mean", "#CC79A7")
            axes[1].set_ylim(bottom=0)
            _finish_steps(axes[1], "mean |advantage| (unitless)", "Mean absolute advantage", legend=False)
        return fig

    return _render(build)


def plot_zero_variance(zero_std: Series | None, near_miss: Series | None, unscorable: Series | None) -> bytes | None:
    """5. Fraction of groups with zero reward variance, near-miss use, and unscorable fraction."""
    if not any(s and s[0] for s in (zero_std, near_miss, unscorable)):
        return None

    def build():
        fig, (ax,) = _figure(WIDE)
        if zero_std and zero_std[0]:
            _line(ax, zero_std, "zero-variance groups (fraction of groups)", "#D55E00")
        if near_miss and near_miss[0]:
            _line(ax, near_miss, "near-miss use (fraction of imperfect answers with A ≠ 0)", "#009E73")
        if unscorable and unscorable[0] and any(_finite(unscorable[1])):
            _line(ax, unscorable, "unscorable completions (fraction)", "#8C8C8C", linestyle="--")
        ax.set_ylim(-0.03, 1.03)
        _finish_steps(ax, "fraction (0-1)", "Learning signal: zero-variance groups and near-miss use")
        return fig

    return _render(build)


def plot_mechanism(curves: list[tuple[str, Series | None, str, str]], ylabel: str, title: str,
                   ylim: tuple[float, float] | None = None) -> bytes | None:
    """A mechanism's curves on one axis, e.g. SNRA vs binary; ``curves``: ``(label, series, colour,
    linestyle)``, absent series skipped. The counterfactual curve is drawn dashed by the caller."""
    present = [c for c in curves if c[1] and c[1][0]]
    if not present:
        return None

    def build():
        fig, (ax,) = _figure(WIDE)
        for label, series, color, style in present:
            _line(ax, series, label, color, linestyle=style)
        if ylim is not None:
            ax.set_ylim(*ylim)
        else:
            ax.set_ylim(bottom=0)
        _finish_steps(ax, ylabel, title)
        return fig

    return _render(build)


def plot_consistency(delta: Series | None, abs_delta: Series | None) -> bytes | None:
    """6. Spatial-GRPO view-consistency gap delta = mean r - mean r_mirror, and |delta|."""
    if not any(s and s[0] for s in (delta, abs_delta)):
        return None

    def build():
        fig, (ax,) = _figure(WIDE)
        ax.axhline(0.0, color="#444444", linewidth=0.8)
        if delta and delta[0]:
            _line(ax, delta, "delta (mean over pairs)", "#0072B2")
        if abs_delta and abs_delta[0]:
            _line(ax, abs_delta, "|delta| (mean over pairs)", "#D55E00", linestyle="--")
        _finish_steps(ax, "reward difference, original − mirror", "View consistency (SVQA-R1 eq. 2-4)")
        return fig

    return _render(build)


def plot_policy(panels: list[tuple[str, str, Series]]) -> bytes | None:
    """Policy drift: one panel per available series, e.g. KL to the reference, entropy, completion length."""
    panels = [p for p in panels if p[2] and p[2][0]]
    if not panels:
        return None

    def build():
        fig, axes = _figure(WIDE, ncols=len(panels))
        for ax, (title, ylabel, series) in zip(axes, panels):
            _line(ax, series, title, "#56B4E9")
            _finish_steps(ax, ylabel, title, legend=False)
        return fig

    return _render(build)


def plot_losses(grpo: Series | None, control: Series | None) -> bytes | None:
    """Training loss: the GRPO surrogate and the SFT control's cross-entropy (separate panels: different objectives)."""
    panels = [(t, s, c) for t, s, c in (("GRPO loss (clipped surrogate + β·KL)", grpo, MODEL_COLORS["rl"]),
                                         ("SFT control loss (cross-entropy, nats/token)", control, MODEL_COLORS["control"]))
              if s and s[0]]
    if not panels:
        return None

    def build():
        fig, axes = _figure(WIDE, ncols=len(panels))
        for ax, (title, series, color) in zip(axes, panels):
            _line(ax, series, title, color)
            _finish_steps(ax, "loss", title, legend=False)
        return fig

    return _render(build)


# --------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------


def plot_per_type(types: list[str], scores: dict[str, dict[str, float | None]]) -> bytes | None:
    """7. Grouped bars: accuracy (%) per question type (and overall, first) for each model.

    Args:
        types: x-axis groups in order (``"overall"`` may be the first).
        scores: ``model key -> {type: percent or None}``, only models to draw, in display order.
    """
    if not types or not scores:
        return None

    def build():
        n, m = len(types), len(scores)
        width = min(14.0, max(9.0, 1.5 + 0.72 * n))
        fig, (ax,) = _figure((width, 4.8))
        bar = 0.8 / m
        top = 100.0
        for j, (key, per) in enumerate(scores.items()):
            xs, hs = [], []
            for i, t in enumerate(types):
                v = per.get(t)
                if v is not None and math.isfinite(v):
                    xs.append(i - 0.4 + bar * (j + 0.5))
                    hs.append(v)
                    top = max(top, v)
            ax.bar(xs, hs, width=bar * 0.95, color=MODEL_COLORS.get(key, "#333333"), label=MODEL_LABELS.get(key, key))
        if types[0] == "overall" and n > 1:
            ax.axvline(0.5, color="#444444", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(n))
        ax.set_xticklabels([t.replace("_", " ") for t in types], rotation=35, ha="right", rotation_mode="anchor")
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(0, top * 1.04)
        ax.set_ylabel("accuracy (%)")
        ax.set_xlabel("question type")
        ax.set_title("Accuracy per question type")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return fig

    return _render(build)


def plot_sweep(points: list[tuple[int, float, str]], unstepped: list[tuple[str, float]],
               references: dict[str, float]) -> bytes | None:
    """8. Checkpoint sweep: overall score (%) vs step; checkpoints without a step as dashed lines.

    Args:
        points: ``(step, overall, name)`` for checkpoints with a step number.
        unstepped: ``(name, overall)`` for models without one (e.g. ``final``).
        references: ``model key -> overall`` from metrics.json drawn as dotted reference lines.
    """
    if not points and not unstepped:
        return None

    def build():
        fig, (ax,) = _figure(WIDE)
        if points:
            pts = sorted(points)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=5, linewidth=1.6,
                    color=MODEL_COLORS["rl"], label="checkpoints")
            best = max(pts, key=lambda p: (p[1], -p[0]))
            first, last = pts[0][0], pts[-1][0]
            ha = "center" if len(pts) < 3 or first < best[0] < last else "left" if best[0] == first else "right"
            ax.annotate(f"best: {best[2]} ({best[1]:.1f} %)", (best[0], best[1]), textcoords="offset points",
                        xytext=(0, 9), ha=ha, fontsize=9)
            ax.margins(x=0.05, y=0.12)
        for i, (name, value) in enumerate(unstepped):
            ax.axhline(value, color=_UNSTEPPED_COLORS[i % len(_UNSTEPPED_COLORS)], linestyle="--", linewidth=1.2,
                       label=f"{name} (no step): {value:.1f} %")
        for key, value in references.items():
            ax.axhline(value, color=MODEL_COLORS[key], linestyle=":", linewidth=1.4,
                       label=f"{MODEL_LABELS[key]} (metrics.json): {value:.1f} %")
        ax.set_xlabel("checkpoint step (optimizer steps)")
        ax.set_ylabel("overall score (%)")
        ax.set_title("Checkpoint sweep")
        ax.legend(loc="best")
        return fig

    return _render(build)


def plot_seeds(seeds: list[dict[str, float]]) -> bytes | None:
    """Overall score (%) of each model for each seed (dots) and the mean over seeds (bar)."""
    keys = [k for k in MODEL_LABELS if any(k in s for s in seeds)]
    if len(seeds) < 2 or not keys:
        return None

    def build():
        fig, (ax,) = _figure((7.0, 4.0))
        for i, key in enumerate(keys):
            values = [s[key] for s in seeds if key in s and math.isfinite(s[key])]
            if not values:
                continue
            mean = sum(values) / len(values)
            ax.bar(i, mean, width=0.6, color=MODEL_COLORS[key], alpha=0.35)
            offsets = [((j - (len(values) - 1) / 2) * 0.06) for j in range(len(values))]
            ax.plot([i + o for o in offsets], values, linestyle="none", marker="o", markersize=5, color=MODEL_COLORS[key])
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([MODEL_LABELS[k] for k in keys])
        ax.set_ylabel("overall score (%)")
        ax.set_xlabel("model")
        ax.set_title(f"Overall score over {len(seeds)} seeds (dots: seeds, bars: mean)")
        ax.grid(axis="x", visible=False)
        return fig

    return _render(build)
