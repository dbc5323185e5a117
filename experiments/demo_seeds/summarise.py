"""The default demo over seeds: scores, paired intervals, mechanisms, and the worst question type.

For each ``spatialrl demo`` run directory given: greedy and sampled overall scores of the start
(``sft``), the control, RL and the baseline; RL − start and RL − control with their paired 95 %
intervals (``metrics.json`` → ``paired``); the zero-variance group fraction of the RL stage's
own completions under SNRA and under the binary reward (``mechanisms``); the computation time;
and, per question type, RL − start with its pair-clustered standard error (the functions of
``experiments/paired_noise/demo_paired.py``), flagging a type that ends more than 5 points and
more than 2 standard errors below the start (issue #25's acceptance).

    .venv/bin/python experiments/demo_seeds/summarise.py /tmp/demo-seeds/D0 /tmp/demo-seeds/D1 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "paired_noise"))
from demo_paired import item_scores, paired_table  # noqa: E402


def _ci(block: dict) -> str:
    lo, hi = block["ci95"]
    return f"{block['diff']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def main(runs: list[Path]) -> int:
    from spatialrl.eval.benchmarks import get_benchmark

    benchmark = get_benchmark("world")
    print("| seed | s | greedy start / control / RL / baseline | sampled start / control / RL | RL − start greedy | "
          "RL − start sampled | RL − control greedy | RL − control sampled | zero-var SNRA / binary | worst type (RL − start ± SE) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    flagged = []
    for run in runs:
        m = json.loads((run / "metrics.json").read_text())
        greedy = " / ".join(f"{m[k]['overall']:.1f}" for k in ("sft", "control", "rl", "baseline"))
        sampled = " / ".join(f"{m['sampled'][k]['overall']:.1f}" for k in ("sft", "control", "rl"))
        p = m["paired"]
        mech = m["mechanisms"]["summary"]
        items = {item.id: item for item in benchmark.load(str(run / "data"), split="test", with_images=False)}
        rows = paired_table(item_scores(run, "rl", items, benchmark), item_scores(run, "sft", items, benchmark))
        worst = min(rows, key=lambda r: r[2])
        for qtype, n, diff, _, se_pairs, _ in rows:
            if diff < -5 and diff < -2 * se_pairs:
                flagged.append(f"{run.name}: {qtype} {diff:+.1f} ± {se_pairs:.1f} (n {n})")
        print(f"| {m.get('seed', run.name)} | {m['seconds']:.0f} | {greedy} | {sampled} | {_ci(p['rl_minus_sft']['greedy'])} | "
              f"{_ci(p['rl_minus_sft']['sampled'])} | {_ci(p['rl_minus_control']['greedy'])} | "
              f"{_ci(p['rl_minus_control']['sampled'])} | {mech['zero_var_frac_snra']:.2f} / {mech['zero_var_frac_binary']:.2f} | "
              f"{worst[0]} {worst[2]:+.1f} ± {worst[4]:.1f} |")
    print()
    print("types more than 5 points and more than 2 pair-clustered SEs below the start: "
          + ("; ".join(flagged) if flagged else "none"))
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main([Path(a) for a in sys.argv[1:]]))
