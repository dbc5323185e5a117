"""Screen one GRPO setting from several finished demo runs at once, and judge it as issue #7 does.

One seed's screen says little: from the same start, RL − start moves by ±0.6 points between
seeds (docs/experiments/demo.md). This runs ``experiments/grpo_screen/demo_grpo_only.py`` for every RUN (a finished
``spatialrl demo`` directory, typically one per seed) with the same GRPO overrides, two at a
time, into ``OUT/<RUN's name>/``, then prints one row per run and a summary: RL − start,
RL − control, the question types more than 5 points below the start, and how many runs meet the
demo's condition (RL above its start and the control, no type more than 5 points below its start)::

    .venv/bin/python experiments/grpo_screen/demo_screen.py --out /tmp/screen_nc runs/s0 runs/s1 runs/s2 runs/s3 \\
        --set consistency_reward=null
    .venv/bin/python experiments/grpo_screen/demo_screen.py --out /tmp/screen_nc runs/s0 runs/s1 --table   # print only

A run whose ``OUT/<name>/rl.json`` exists is not redone (delete it to redo). Each child's log is
``OUT/<name>.log``. Like ``demo_grpo_only.py``, no control is trained: the control is the run's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The demo's per-type condition: no type more than this many points below its start.
MAX_FALL = 5.0


def screen_row(run: Path, result: Path) -> dict:
    """RL − start, RL − control and the falls of one screened run."""
    metrics = json.loads((run / "metrics.json").read_text())
    rl = json.loads((result / "rl.json").read_text())
    start, control = metrics["sft"], metrics["control"]
    falls = {t: rl["per_type"][t] - start["per_type"][t] for t in start["per_type"] if t in rl["per_type"]}
    below = {t: d for t, d in sorted(falls.items(), key=lambda kv: kv[1]) if d < -MAX_FALL}
    row = {
        "run": str(run), "start": start["overall"], "control": control["overall"], "rl": rl["overall"],
        "rl_minus_start": rl["overall"] - start["overall"], "rl_minus_control": rl["overall"] - control["overall"],
        "below": below,
    }
    row["meets"] = row["rl_minus_start"] > 0 and row["rl_minus_control"] > 0 and not below
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished spatialrl demo run directories")
    parser.add_argument("--out", type=Path, required=True, help="OUT/<run name>/ gets each screen's grpo/, eval/, rl.json")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="GRPO job override, repeatable (spatialrl train --list-keys)")
    parser.add_argument("--parallel", type=int, default=2, help="screens at a time (default 2, one thread each)")
    parser.add_argument("--table", action="store_true", help="only print the table of the finished screens")
    args = parser.parse_args()

    names = [run.resolve().name for run in args.runs]
    if len(set(names)) != len(names):
        sys.exit(f"demo_screen: the runs' directory names must differ (they name OUT's subdirectories): {names}")
    for run in args.runs:
        if not (run / "metrics.json").is_file():
            sys.exit(f"demo_screen: no {run / 'metrics.json'}; run `spatialrl demo --out {run}` to the end first")
    if args.parallel < 1:
        sys.exit(f"demo_screen: --parallel must be >= 1, got {args.parallel}")
    args.out.mkdir(parents=True, exist_ok=True)

    todo = [(run, args.out / name) for run, name in zip(args.runs, names) if not (args.out / name / "rl.json").exists()]
    if args.table:
        todo = []
    failed = []
    for begin in range(0, len(todo), args.parallel):
        batch = []
        for run, result in todo[begin:begin + args.parallel]:
            print(f"demo_screen: {run} -> {result} ({' '.join(args.overrides) or 'the run’s own settings'})", flush=True)
            log = open(result.with_suffix(".log"), "w", encoding="utf-8")
            cmd = [sys.executable, str(HERE / "demo_grpo_only.py"), str(run), str(result), *args.overrides]
            batch.append((run, result, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
        for run, result, log, proc in batch:
            if proc.wait() != 0:
                failed.append(f"{run} (exit {proc.returncode}; see {result.with_suffix('.log')})")
            log.close()

    rows = [screen_row(run, args.out / name) for run, name in zip(args.runs, names)
            if (args.out / name / "rl.json").exists()]
    missing = [str(run) for run, name in zip(args.runs, names) if not (args.out / name / "rl.json").exists()]
    setting = " ".join(args.overrides) or "the runs' own settings"
    print(f"\n{args.out}: {setting}\n")
    print("| run | start | control | RL | RL − start | RL − control | types > 5 below start |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        below = ", ".join(f"{t} {d:+.1f}" for t, d in row["below"].items()) or "none"
        print(f"| {row['run']} | {row['start']:.1f} | {row['control']:.1f} | {row['rl']:.1f} | "
              f"{row['rl_minus_start']:+.1f} | {row['rl_minus_control']:+.1f} | {below} |")
    if rows:
        gains = [row["rl_minus_start"] for row in rows]
        spread = f" ± {statistics.stdev(gains):.1f} (SD over runs)" if len(gains) > 1 else ""
        print(f"\nRL − start: mean {statistics.mean(gains):+.1f}{spread}; RL − control: mean "
              f"{statistics.mean(row['rl_minus_control'] for row in rows):+.1f}; the demo's condition holds on "
              f"{sum(row['meets'] for row in rows)} of {len(rows)} runs")
    if missing:
        print(f"not screened yet: {', '.join(missing)}")
    if failed:
        sys.exit("demo_screen: failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
