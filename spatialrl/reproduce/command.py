"""``spatialrl reproduce``: re-measure the papers' claims over seeds, with verdicts.

    spatialrl reproduce --list
    spatialrl reproduce all --seeds 5 --jobs 2
    spatialrl reproduce smoothop-t3-advantage --seeds 5 --model DIR --data DIR --out runs/reproduce
    spatialrl reproduce --render runs/reproduce/results.json --doc docs/RESULTS.md

Each claim is a grid of cells (spatialrl/reproduce/claims.yaml, or --claims FILE) sharing one
start checkpoint, one dataset and one evaluation set. Every trained cell runs at every seed;
finished cells are kept under --out, so an interrupted run continues where it stopped. At the
end the results file (every cell's metrics per seed, the paired differences, the verdicts) and
the Markdown made from it are written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HELP = "re-measure the papers' ablation claims over seeds and write RESULTS.md with verdicts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = HELP + "\n\n" + (__doc__ or "").split("\n\n", 1)[1]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("claims", nargs="*", metavar="CLAIM", help="claim ids (spatialrl reproduce --list), or all")
    parser.add_argument("--list", action="store_true", help="list the claims: paper, table, what is compared, cells")
    parser.add_argument("--seeds", type=int, default=5, metavar="N",
                        help="seeds 0..N-1 of every trained cell (default 5; verdicts need at least 2)")
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="start checkpoint (default: the shipped every-type 1,200-step tiny model)")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="dataset built by spatialrl data build, its test split the evaluation set (default: "
                             "build the world dataset of the grid's sizing into OUT/data)")
    parser.add_argument("--out", default="runs/reproduce", metavar="DIR",
                        help="run directory: shared stages, one directory per cell and seed (default runs/reproduce)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="cells run at once, each in its own process with the sizing's threads (default 1)")
    parser.add_argument("--claims-file", dest="claims_file", default=None, metavar="FILE",
                        help="a grid file of your own (default: spatialrl/reproduce/claims.yaml)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="override a sizing field of every cell (spatialrl demo --list-keys), e.g. --set "
                             "grpo_steps=200 --set eval_items=3000")
    parser.add_argument("--grpo", dest="grpo_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a GRPO job key of every cell (spatialrl train --list-keys), e.g. --grpo "
                             "use_vllm=true")
    parser.add_argument("--results", default=None, metavar="PATH",
                        help="results file to write (default OUT/results.json)")
    parser.add_argument("--doc", default=None, metavar="PATH", help="Markdown to write (default OUT/RESULTS.md)")
    parser.add_argument("--render", default=None, metavar="RESULTS_JSON",
                        help="only regenerate --doc from a results file; runs nothing")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the run each cell resolves to (cells with one job share it) and the trained cells in all; "
                             "runs nothing")
    parser.add_argument("--keep-models", action="store_true", help="keep every trained cell's weights")
    parser.add_argument("--force", action="store_true", help="redo finished cells instead of reusing them")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _print_list(grid: Any) -> None:
    from spatialrl.reproduce.runner import cell_runs, sizing

    cfg = sizing(grid, [])
    _, runs = cell_runs(grid, grid.claims, cfg)
    width = max(len(c.id) for c in grid.claims)
    print(f"{'claim':<{width}}  {'paper, table':<26}  cells  compares")
    for claim in grid.claims:
        where = f"{claim.paper}, {claim.table}"
        print(f"{claim.id:<{width}}  {where:<26}  {len(claim.cells):>5}  {claim.compares}")
    print(f"\n{len(grid.claims)} claims, {len(runs)} distinct trained runs per seed (cells shared between claims "
          "run once); spatialrl reproduce CLAIM... --seeds N runs them")


def _flags(args: argparse.Namespace) -> list[str]:
    """The command's flags that shape the results (not --jobs, --results, --doc), normalised."""
    flags = ["--seeds", str(args.seeds)]
    for name in ("model", "data", "out", "claims_file"):
        value = getattr(args, name)
        if value is not None and not (name == "out" and value == "runs/reproduce"):
            flags += [f"--{name.replace('_', '-')}", str(value)]
    for name, values in (("set", args.settings), ("grpo", args.grpo_overrides)):
        for value in values:
            flags += [f"--{name}", value]
    return flags


def _render(results_path: Path, doc_path: Path) -> None:
    from spatialrl._fs import write_text_atomic
    from spatialrl.reproduce.results_doc import render_results

    results = json.loads(results_path.read_text(encoding="utf-8"))
    write_text_atomic(doc_path, render_results(results, results_path, doc_path))


def run(args: argparse.Namespace) -> int:
    from spatialrl.reproduce.grid import GridError, load_grid, select_claims

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.render:
        if not args.doc:
            print("error: --render needs --doc PATH (the Markdown to write)", file=sys.stderr)
            return 2
        try:
            _render(Path(args.render), Path(args.doc))
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: --render {args.render}: {exc}", file=sys.stderr)
            return 2
        print(f"reproduce: wrote {args.doc} from {args.render}")
        return 0
    try:
        grid = load_grid(args.claims_file)
        if args.list:
            _print_list(grid)
            return 0
        if not args.claims:
            print("error: name the claims to run (spatialrl reproduce --list), or all", file=sys.stderr)
            return 2
        if args.seeds < 1:
            raise GridError(f"--seeds {args.seeds}: give at least 1 (verdicts need 2 or more; the default is 5)")
        if args.jobs < 1:
            raise GridError(f"--jobs {args.jobs}: give at least 1")
        claims = select_claims(grid, args.claims)
        return _run(args, grid, claims)
    except GridError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, grid: Any, claims: list[Any]) -> int:
    import dataclasses

    from spatialrl._fs import write_text_atomic
    from spatialrl.reproduce.results_doc import render_results, results_document
    from spatialrl.reproduce.runner import cell_runs, default_start, reproduce, sizing

    cfg = sizing(grid, args.settings, model=None)
    if args.grpo_overrides:
        cfg = dataclasses.replace(cfg, grpo_overrides=[*cfg.grpo_overrides, *args.grpo_overrides])
    seeds = list(range(args.seeds))
    if args.dry_run:
        cell_of, runs = cell_runs(grid, claims, cfg)
        for (claim_id, name), key in cell_of.items():
            print(f"{claim_id}/{name}: {'the start checkpoint (evaluated once)' if key is None else key}")
        for key, run_spec in runs.items():
            print(f"run {key}: {json.dumps(run_spec.fields)}")
        print(f"{len(runs)} distinct runs x {len(seeds)} seeds = {len(runs) * len(seeds)} trained cells")
        return 0
    out = Path(args.out)
    try:
        outcome = reproduce(grid, claims, cfg, seeds, out, jobs=args.jobs, data_dir=args.data, model_dir=args.model,
                            keep_models=args.keep_models, force=args.force, progress=not args.quiet,
                            log=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        print(f"\nreproduce: interrupted; finished cells are kept in {out}: run the same command to finish the rest",
              file=sys.stderr)
        return 130
    start_note = None
    if args.model is None:
        start_note = ("the shipped every-type, 1,200-step pretraining" if default_start().name.endswith("-start")
                      else "the shipped demo model")
    flags = _flags(args)
    results = results_document(claims, outcome, seeds, dataclasses.asdict(cfg), grid.recipes,
                               [*args.claims, *flags], flags, start_note)
    results_path = Path(args.results) if args.results else out / "results.json"
    doc_path = Path(args.doc) if args.doc else out / "RESULTS.md"
    write_text_atomic(results_path, json.dumps(results, indent=1) + "\n")
    write_text_atomic(doc_path, render_results(results, results_path, doc_path))
    print(f"reproduce: {outcome['cells_total'] - outcome['cells_missing']} of {outcome['cells_total']} cells done, "
          f"{outcome['compute_seconds'] / 60:.0f} min of cell time")
    for claim in results["claims"]:
        print(f"  {claim['id']}: {claim['verdict']} ({claim['min_seeds']} seeds)")
    print(f"reproduce: results {results_path}; Markdown {doc_path}")
    return 0 if outcome["cells_missing"] == 0 else 1
