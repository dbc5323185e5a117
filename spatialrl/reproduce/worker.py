"""One cell of a ``spatialrl reproduce`` run in its own process (what ``--jobs N`` launches).

    python -m spatialrl.reproduce.worker OUT RUN SEED [--force]

``OUT`` holds the ``plan.json`` that ``spatialrl reproduce`` wrote; ``RUN`` is a run key of
that plan, or ``start`` for the start checkpoint's evaluation. The exit status is 0 when the
cell is finished (run now or before), 1 when it failed (the traceback is in its log).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spatialrl.reproduce.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the reproduce run directory (with plan.json)")
    parser.add_argument("run", help="a run key of plan.json, or start")
    parser.add_argument("seed", type=int)
    parser.add_argument("--force", action="store_true", help="redo the cell even if it is finished")
    args = parser.parse_args(argv)

    import torch

    from spatialrl.reproduce.runner import load_plan, run_cell

    plan = load_plan(args.out)
    if args.run != "start" and args.run not in plan.runs:
        print(f"error: run {args.run!r} is not in {args.out}/plan.json ({', '.join(plan.runs)})", file=sys.stderr)
        return 2
    torch.set_num_threads(int(plan.config["threads"]))
    run_cell(plan, None if args.run == "start" else args.run, args.seed, log=lambda m: print(m, flush=True),
             force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
