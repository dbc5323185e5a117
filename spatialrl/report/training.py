"""The report's sections about GRPO training, from its log history and config.

Rewards, the sharpness schedule with the SNRA reward (Smooth Operator eq. 2, 5), advantages
with the convergence steps T_conv (sec. 4.3, Table 2), the papers' mechanisms measured on the
step's own completions under the alternatives (``mechanisms/*``, :mod:`spatialrl.train.mechanisms`),
view consistency (SVQA-R1 eq. 2-4), and
policy drift with the losses of GRPO and the SFT control. ``training_sections(inputs)`` returns
them in that order; a missing log history becomes a note in each.
"""

from __future__ import annotations

from typing import Any

from spatialrl.report import plots as rp
from spatialrl.report.document import Cell, Fig, Note, Para, Section, Table, code_list, finite, fmt
from spatialrl.report.gather import CONFIG_FILES, CONTROL_LOG_FILES, GRPO_LOG_FILES, Inputs, LogHistory, Series, is_number

#: Sharpness values whose SNRA curves are always drawn (with the run's k_min and k_max).
SNRA_KS = (1.0, 5.0, 20.0, 100.0)


def training_sections(inputs: Inputs) -> list[Section]:
    return [rewards_section(inputs), sharpness_section(inputs), advantages_section(inputs),
            mechanisms_section(inputs), consistency_section(inputs), policy_section(inputs)]


def _series(log: LogHistory | None, key: str) -> Series | None:
    return log.series(key) if log else None


def _no_log() -> Note:
    return Note(f"Skipped: no {code_list(GRPO_LOG_FILES)}.")


def _absent(log: LogHistory, keys: str) -> Note:
    return Note(f"`{log.path}` has no {keys} entries: not logged in this run.")


def rewards_section(inputs: Inputs) -> Section:
    log = inputs.grpo_log
    blocks: list[Any] = []
    if log is None:
        blocks.append(_no_log())
    else:
        comps = {name: log.series(f"rewards/{name}/mean") for name in log.reward_components()}
        comps = {n: v for n, v in comps.items() if v}
        png = rp.plot_rewards(log.series("reward"), comps)
        if png:
            blocks.append(Fig("rewards", png, "Reward components and total reward over training steps",
                              "Mean reward over the step's completions of each component (`rewards/<name>/mean`) "
                              "and the weighted total `reward` that the advantages use."))
        else:
            blocks.append(_absent(log, "`reward` or `rewards/*/mean`"))
    return Section("rewards", "Rewards during GRPO", blocks)


def sharpness_section(inputs: Inputs) -> Section:
    from spatialrl.rewards import OPERATORS

    log, params = inputs.grpo_log, inputs.params
    blocks: list[Any] = []
    v = params.values
    logged_k = _series(log, "sharpness/k")
    total = v["max_steps"]
    total_note = None
    if total is None:
        steps = [st for row in (log.rows if log else []) if isinstance(st := row.get("step"), int)]
        total = max(steps) if steps else 100
        total_note = ("`max_steps` unknown (no config): T = the last logged step" if steps
                      else "`max_steps` unknown: T = 100 (the config default)") + f" = {total}."
    png = rp.plot_sharpness(logged_k, params.schedule(), total, params.describe_schedule())
    if png:
        blocks.append(Fig("sharpness", png, "Sharpness k over training steps: logged values and the schedule",
                          f"Logged `sharpness/k` (points) and the schedule's formula k(t) over T = {total} steps "
                          f"(line; dotted: t = T). A logged point is the mean of k over the steps since the previous log, "
                          "so it trails the curve when logging is sparse."
                          + ("" if logged_k else " Nothing logged: formula only.")))
    if total_note:
        blocks.append(Note(total_note))
    ks = sorted({*SNRA_KS, v["k_min"], v["k_max"]})
    labels = []
    for k in ks:
        tags = [n for n, kv in (("k_min", v["k_min"]), ("k_max", v["k_max"])) if kv == k]
        labels.append((k, f"k = {k:g}" + (f" ({', '.join(tags)})" if tags else "")))
    op_name, op_source = {
        "sigmoid": ("SNRA 2/(1+exp(k·e))", ")"),
        "tanh": ("SNRA 1−tanh(k·e)", "; tanh variant, Table 8)"),
        "binary": ("binary 1[e ≤ 0.01]", "'s k → ∞ limit; Table 2, S1)"),
    }[v["snra_operator"]]
    png = rp.plot_snra(OPERATORS[v["snra_operator"]], labels, 5.3, op_name)
    blocks.append(Fig("snra", png, "SNRA reward as a function of squared error for several sharpness values",
                      f"Reward r = {op_name.split(' ', 1)[1]} (Smooth Operator eq. 2" + op_source
                      + " against the squared error e, linear and log axes; dotted: e_max = 5.3, where a "
                        "wrong discrete answer or a parse failure lands."))
    rows = []
    for key in ("sharpness_kind", "k_min", "k_max", "tau", "steepness", "snra_operator", "e_max", "max_steps"):
        val = v[key]
        src = params.source[key]
        rows.append([Cell(key), Cell("–" if val is None else f"{val:g}" if is_number(val) else str(val)),
                     Cell("paper default" if src == "default" else src)])
    blocks.append(Table(["parameter", "value", "source"], rows, [], "SNRA and sharpness parameters of this run."))
    if params.path is None:
        blocks.append(Note(f"No {code_list(CONFIG_FILES)}: the paper's defaults are shown."))
    return Section("sharpness", "Sharpness schedule and SNRA reward", blocks)


def advantages_section(inputs: Inputs) -> Section:
    log = inputs.grpo_log
    blocks: list[Any] = []
    if log is None:
        blocks.append(_no_log())
    else:
        png = rp.plot_adv_variance(log.series("adv/variance"), log.series("adv/abs_mean"))
        if png:
            blocks.append(Fig("adv_variance", png, "Advantage variance over training steps",
                              "Advantage variance `adv/variance` (Smooth Operator sec. 4.3: mean over prompt "
                              "groups of the variance of the advantages the loss uses) and mean |A|."))
        else:
            blocks.append(_absent(log, "`adv/variance`"))
        zero = log.series("adv/zero_std_group_frac") or log.series("frac_reward_zero_std")
        png = rp.plot_zero_variance(zero, log.series("adv/near_miss_use"), log.series("adv/unscorable_frac"))
        if png:
            blocks.append(Fig("zero_variance", png, "Zero-variance group fraction and near-miss use over steps",
                              "Fraction of prompt groups whose rewards are all equal (their GRPO advantages "
                              "vanish) and near-miss use: the share of imperfect answers (r̂ < 1) that still "
                              "get a non-zero advantage. Gaps: no imperfect answer in that step."))
        else:
            blocks.append(_absent(log, "`adv/zero_std_group_frac` or `adv/near_miss_use`"))
        blocks.append(convergence_block(log))
    return Section("advantages", "Advantages and learning signal", blocks)


def convergence_block(log: LogHistory) -> Any:
    """Smooth Operator's convergence steps T_conv (sec. 4.3, Table 2) of the logged accuracy curve."""
    from spatialrl.train.callbacks import training_diagnostics

    d = training_diagnostics(log.rows)
    if d["t_conv"] is None:
        return Note(f"Convergence steps T_conv: `{log.path}` has no usable `{d['t_conv_series']}` entries "
                    "(no accuracy reward in this run, or no step it applied to).")
    rows = [[Cell("T_conv (steps)"), Cell(f"{d['t_conv']:g}", "num", d["t_conv"])],
            [Cell("Acc_max (smoothed)"), Cell(f"{d['t_conv_acc_max']:.3f}", "num", d["t_conv_acc_max"])],
            [Cell(f"threshold {d['t_conv_fraction']:g} × Acc_max"),
             Cell(f"{d['t_conv_threshold']:.3f}", "num", d["t_conv_threshold"])]]
    return Table(["convergence", "value"], rows, [],
                 f"Convergence steps T_conv = min{{t : Acc_t ≥ {d['t_conv_fraction']:g} · Acc_max}} (Smooth Operator "
                 f"sec. 4.3, Table 2). Acc_t: `{d['t_conv_series']}` per logged step "
                 f"({d['t_conv_logged_steps']} logged values), smoothed by a trailing mean over "
                 f"{d['t_conv_window']} values; "
                 + ("the share answered correctly by the binary rule (error ≤ 0.01), independent of the "
                    "sharpness k(t). " if d["t_conv_series"] == "accuracy/correct" else
                    "the SNRA reward's mean (a log without `accuracy/correct`): under a rising sharpness k(t) "
                    "the same answers earn less reward later, so T_conv comes early. ")
                 + "A training curve, not a benchmark score.")


#: The mechanism figures: name, curves ``(label, key, colour, linestyle)``, y label, title, y range,
#: alt text, and the caption: the claim each tests, then what is plotted. Solid: the estimator or
#: reward as usually trained; dashed: the alternative on the same completions.
MECHANISM_FIGURES = (
    ("mech_zero_variance",
     [("SNRA at k(t)", "mechanisms/zero_var_frac_snra", "#009E73", "-"),
      ("binary 0/1 (Table 2, S1)", "mechanisms/zero_var_frac_binary", "#D55E00", "--")],
     "fraction of groups (0-1)", "Zero-variance groups: SNRA vs binary reward", (-0.03, 1.03),
     "Zero-variance group fraction per step under the SNRA and the binary reward, on the same completions",
     "**Claim** (Smooth Operator Fig. 1): a binary reward leaves near-miss groups with zero spread, so GRPO "
     "learns nothing from them; SNRA keeps them informative. Expected: the SNRA curve below the binary one. "
     "Both curves score the same completions of each step: the fraction of prompt groups whose total reward is "
     "constant, with the accuracy component as trained (SNRA at that step's k) and with it replaced by the binary "
     "reward (1 when the error is at most 0.01, else 0; `mechanisms/zero_var_frac_snra`, `..._binary`)."),
    ("mech_near_miss",
     [("AP-GRPO (eq. 8)", "mechanisms/near_miss_use_ap_grpo", "#0072B2", "-"),
      ("GRPO (eq. 7)", "mechanisms/near_miss_use_grpo", "#E69F00", "--")],
     "fraction of imperfect answers (0-1)", "Near-miss use: AP-GRPO vs GRPO", (-0.03, 1.03),
     "Near-miss use per step under AP-GRPO and GRPO advantages, on the same rewards",
     "**Claim** (Smooth Operator eq. 8, App. A.1): AP-GRPO keeps the advantage of near misses (r̂ close to 1) "
     "and suppresses that of far-off answers (r̂ → 0). Near-miss use: the share of imperfect answers (r̂ < 1) "
     "whose advantage is non-zero, under each estimator from the same rewards. AP-GRPO multiplies GRPO's "
     "advantage by r̂^α, so its curve can only equal or fall below GRPO's; the gap is the share of imperfect "
     "answers it silences. How a binary reward loses near misses is the figure above. Gaps: no imperfect answer."),
    ("mech_adv_variance",
     [("AP-GRPO (eq. 8)", "mechanisms/adv_variance_ap_grpo", "#0072B2", "-"),
      ("GRPO (eq. 7)", "mechanisms/adv_variance_grpo", "#E69F00", "--")],
     "advantage variance (unitless²)", "Advantage variance: AP-GRPO vs GRPO", None,
     "Advantage variance per step under AP-GRPO and GRPO, on the same rewards",
     "**Claim** (Smooth Operator App. A.2-A.3, Table 2's Adv. Var.): scaling by r̂^α lowers the advantage "
     "variance where rewards are low and recovers GRPO's as r̂ → 1. Sec. 4.3's σ_A² = 1/G Σ (A_i − Ā)², "
     "averaged over groups, for both estimators from the same rewards, with the run's clip."),
    ("mech_sharpness",
     [("k(t) (`sharpness/k`)", "sharpness/k", "#CC79A7", "-")],
     "sharpness k", "Reward hardening: sharpness k(t)", None,
     "Sharpness k per step",
     "**Claim** (Smooth Operator eq. 5, sec. 3.2, reward hardening): k(t) rises over training, so the same "
     "error earns less reward later and SNRA hardens toward a 0/1 reward (its k → ∞ limit). Read the "
     "zero-variance curves against it: as k grows, SNRA's fraction should move toward the binary one."),
    ("mech_abs_delta",
     [("mean |Δ| over mirror pairs", "mechanisms/abs_delta", "#D55E00", "-")],
     "|reward difference|, original vs mirror", "Spatial-GRPO view gap |Δ|", None,
     "Mean absolute view gap between mirror groups per step",
     "**Claim** (SVQA-R1 eq. 2-4): penalising the better view by |Δ| pushes a question and its mirrored twin "
     "toward equal rewards, so |Δ| should fall. Δ = mean reward on the original view − mean reward on its "
     "mirror (eq. 2), before the penalty, on the component the penalty acts on (the accuracy when it is off), "
     "averaged over the complete mirror pairs of each step; 0 for a step without one."),
)


def mechanisms_section(inputs: Inputs) -> Section:
    """Issue #25's mechanisms: each pair of curves on one axis, the claim it tests under the plot."""
    log = inputs.grpo_log
    blocks: list[Any] = []
    if log is None:
        blocks.append(_no_log())
        return Section("mechanisms", "Mechanisms on the same completions", blocks)
    if not any(k.startswith("mechanisms/") for row in log.rows for k in row):
        blocks.append(_absent(log, "`mechanisms/*`"))
        return Section("mechanisms", "Mechanisms on the same completions", blocks)
    blocks.append(Para("Every GRPO step's own completions, scored under the trained reward and estimator and "
                       "under the alternatives (`spatialrl.train.mechanisms`): the loss sees only the trained one. "
                       "Solid: SNRA and AP-GRPO; dashed: the binary reward and GRPO."))
    rows = []
    for name, curves, ylabel, title, ylim, alt, caption in MECHANISM_FIGURES:
        series = [(label, log.series(key), color, style) for label, key, color, style in curves]
        png = rp.plot_mechanism(series, ylabel, title, ylim)
        if png:
            blocks.append(Fig(name, png, alt, caption))
        else:
            blocks.append(_absent(log, " or ".join(f"`{key}`" for _, key, _, _ in curves)))
        for (label, key, _, _), (_, s, _, _) in zip(curves, series):
            values = finite(s[1]) if s else []
            mean = sum(values) / len(values) if values else None
            rows.append([Cell(f"`{key}`"), Cell(fmt(mean, 3), "num", mean), Cell(str(len(values)), "num")])
    blocks.append(Table(["series", "mean over steps", "steps"], rows, [],
                        "Means over the logged steps (what the demo's `metrics.json` → `mechanisms` → `summary` holds)."))
    return Section("mechanisms", "Mechanisms on the same completions", blocks)


def consistency_section(inputs: Inputs) -> Section:
    log = inputs.grpo_log
    blocks: list[Any] = []
    if log is None:
        blocks.append(_no_log())
    else:
        png = rp.plot_consistency(log.series("consistency/delta"), log.series("consistency/abs_delta"))
        if png:
            pairs = log.series("consistency/pairs")
            n_pairs = f" ({fmt(max(finite(pairs[1])), 0)} mirror pairs per step at most)" if pairs and finite(
                pairs[1]) else ""
            blocks.append(Fig("consistency", png, "View-consistency gap between original and mirrored views over steps",
                              "delta = mean reward on the original view − mean reward on its mirror, averaged "
                              f"over pairs{n_pairs}; the penalty acts on |delta| (SVQA-R1 eq. 2-4)."))
        else:
            blocks.append(_absent(log, "`consistency/delta` (the run had no mirror pairs)"))
    return Section("consistency", "View consistency (mirror pairs)", blocks)


def policy_section(inputs: Inputs) -> Section:
    log = inputs.grpo_log
    blocks: list[Any] = []
    png = rp.plot_policy([("KL to reference", "KL (nats)", _series(log, "kl")),
                          ("entropy", "entropy (nats/token)", _series(log, "entropy")),
                          ("mean completion length", "length (tokens)", _series(log, "completions/mean_length"))])
    if png:
        blocks.append(Fig("policy", png, "KL to the reference model, entropy and completion length over steps",
                          "Policy drift: KL to the reference model (β-weighted in the loss), token entropy, "
                          "and mean completion length."))
    control = inputs.control_log.series("loss") if inputs.control_log else None
    png = rp.plot_losses(_series(log, "loss"), control)
    if png:
        blocks.append(Fig("losses", png, "Training loss of GRPO and of the SFT control over steps",
                          "Training loss per logged step. GRPO's surrogate loss is near zero by construction; "
                          "the control's cross-entropy should fall."))
    if log is None:
        blocks.append(_no_log())
    if inputs.control_log is None:
        blocks.append(Note(f"No {code_list(CONTROL_LOG_FILES)}: no control loss curve."))
    elif control is None:
        blocks.append(Note(f"`{inputs.control_log.path}` has no `loss` entries."))
    return Section("policy", "Policy and losses", blocks)
