"""``docs/RESULTS.md`` from a reproduce results file (jinja2 template ``templates/RESULTS.md.jinja``).

The results file (``results.json``, :func:`results_document`) is the whole record: command,
sizing, seeds, every cell's per-seed metrics, the comparisons and verdicts. The Markdown is a
view of it, so ``spatialrl reproduce --render results.json --doc RESULTS.md`` regenerates it
without rerunning anything.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shlex
from pathlib import Path
from typing import Any, Sequence

from spatialrl.reproduce.cell_metrics import METRICS
from spatialrl.reproduce.verdicts import LEVEL, MIN_SEEDS_FOR_INTERVAL, aggregate

__all__ = ["COLUMNS", "METRIC_NAMES", "SCHEMA", "render_results", "results_document", "verdict_rule_text"]

SCHEMA = "spatialrl.reproduce/v1"
#: Short column names of the metrics.
METRIC_NAMES = {"greedy": "greedy acc.", "sampled": "sampled acc.", "pair_consistency": "pair consistency",
                "consistency_gap": "view gap", "t_conv": "T_conv", "adv_variance": "adv. var.",
                "zero_var_frac": "zero-var groups", "near_miss_use": "near-miss use", "train_seconds": "train s"}
#: Columns of the cell tables, in order; a column without a value in a claim is left out.
COLUMNS = ("greedy", "sampled", "t_conv", "adv_variance", "zero_var_frac", "near_miss_use", "pair_consistency",
           "consistency_gap")
_DECIMALS = {"%": 1, "points": 1, "steps": 0, "s": 0, "fraction": 3, "": 3}


def verdict_rule_text() -> str:
    """The rule of :mod:`spatialrl.reproduce.verdicts`, from its docstring (one source)."""
    from spatialrl.reproduce import verdicts

    doc = verdicts.__doc__ or ""
    start = doc.index("The rule")
    text = doc[start:doc.index("Pure functions")].strip()
    text = text.split("\n", 1)[1].strip() if text.startswith("The rule") else text
    intro = doc[doc.index("Every trained cell"):start].strip()
    return re.sub(r":(?:func|data|mod):`~?([^`]+)`", r"`\1`", (intro + "\n\n" + text).replace("``", "`"))


def _number(value: Any, metric: str, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    decimals = _DECIMALS.get(METRICS[metric][1], 3)
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _interval(entry: dict[str, Any] | None, metric: str, signed: bool = False) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    text = _number(entry["mean"], metric, signed)
    ci = entry.get("ci95")
    return text + (f" [{_number(ci[0], metric, signed)}, {_number(ci[1], metric, signed)}]" if ci else "")


def _paper_text(cell: dict[str, Any]) -> str:
    parts = [] if cell.get("paper") is None else [f"{cell['paper']:g}"]
    parts += [f"{METRIC_NAMES[m]} {v:g}" for m, v in (cell.get("paper_metrics") or {}).items() if v is not None]
    return ", ".join(parts) or "—"


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it (a results file is
    committed: no machine's absolute paths), else as given."""
    resolved = Path(path).resolve()
    cwd = Path.cwd().resolve()
    return str(resolved.relative_to(cwd)) if resolved.is_relative_to(cwd) else path


def results_document(claims: Sequence[Any], outcome: dict[str, Any], seeds: Sequence[int], config: dict[str, Any],
                     recipes: dict[str, Any], argv: Sequence[str], claim_args: Sequence[str],
                     start_note: str | None = None) -> dict[str, Any]:
    """The results file's content: the aggregate (:func:`spatialrl.reproduce.verdicts.aggregate`)
    with the command, sizing and compute. ``argv`` is the command as run; ``claim_args`` are
    its flags without the claim names (each claim's section gives its own command)."""
    import platform

    aggregated = aggregate(claims, outcome["cells"], seeds)
    flags = " ".join(shlex.quote(a) for a in claim_args)
    for claim in aggregated:
        claim["command"] = f"spatialrl reproduce {claim['id']}" + (f" {flags}" if flags else "")
    return {
        "schema": SCHEMA,
        "generated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": "spatialrl reproduce " + " ".join(shlex.quote(a) for a in argv),
        "seeds": list(seeds),
        "config": config,
        "recipes": recipes,
        "start_model": _shown_path(outcome["model"]),
        "start_note": start_note,
        "data": _shown_path(outcome["data"]),
        "compute_seconds": round(outcome["compute_seconds"], 1),
        "cells_total": outcome["cells_total"],
        "cells_missing": outcome["cells_missing"],
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
        "level": LEVEL,
        "min_seeds_for_interval": MIN_SEEDS_FOR_INTERVAL,
        "claims": aggregated,
    }


def render_results(results: dict[str, Any], results_path: str | Path = "results.json",
                   doc_path: str | Path = "RESULTS.md") -> str:
    """The Markdown of a results file's content."""
    import jinja2

    if results.get("schema") != SCHEMA:
        raise ValueError(f"{results_path}: not a spatialrl reproduce results file (schema {results.get('schema')!r}, "
                         f"expected {SCHEMA!r})")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters.update(interval=_interval, number=_number, paper_text=_paper_text)
    claims = []
    for claim in results["claims"]:
        used = {c["metric"] for c in claim["comparisons"]}
        columns = [m for m in (*COLUMNS, *(m for m in METRICS if m not in COLUMNS))
                   if (m in COLUMNS or m in used)
                   and any(cell["summary"][m]["mean"] is not None for cell in claim["cells"].values())]
        claims.append({**claim, "columns": columns})
    seconds = float(results["compute_seconds"])
    compute = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
    recipes_text = ", ".join(f"`{name}`: {json.dumps(fields)}" for name, fields in results["recipes"].items())
    return env.get_template("RESULTS.md.jinja").render(
        **{**results, "claims": claims}, results_path=str(results_path), doc_path=str(doc_path),
        rule=verdict_rule_text(), metric_names=METRIC_NAMES, metrics=METRICS, compute=compute, recipes_text=recipes_text)
