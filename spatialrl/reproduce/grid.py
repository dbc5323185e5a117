"""The claims as declarative grids: ``claims.yaml`` read and validated.

A grid file has three parts (``spatialrl/reproduce/claims.yaml`` is the shipped one):

- ``defaults``: the sizing of every cell, fields of ``spatialrl demo``'s
  :class:`~spatialrl.demo.DemoConfig` (``--set KEY=VALUE`` overrides them);
- ``recipes``: named GRPO job settings (``spatialrl train --list-keys``) laid over the demo's
  GRPO job (:func:`spatialrl.demo.grpo_job`);
- ``claims``: each claim a grid of cells that share one start checkpoint, one dataset and one
  evaluation set and differ only in the settings compared, with the paper's numbers and the
  comparisons the paper makes (which cell beats which, on which metric).

Nothing here runs anything; :mod:`spatialrl.reproduce.runner` resolves each trained cell into a
GRPO job, and identical jobs (the same settings reached from two claims, e.g. Table 2's S5 and
Table 3's AP-GRPO) are trained once per seed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spatialrl.reproduce.cell_metrics import METRICS
from spatialrl.reproduce.verdicts import EQUIVALENCE_MARGINS

__all__ = ["CellSpec", "Claim", "Comparison", "DEFAULT_GRID", "Grid", "GridError", "load_grid", "select_claims"]

#: The grid shipped with the package.
DEFAULT_GRID = Path(__file__).resolve().parent / "claims.yaml"


class GridError(ValueError):
    """A grid file or a claim selection that cannot be used; the message says where and how to fix it."""


class CellSpec(BaseModel):
    """One cell: the start checkpoint itself (``start``) or a GRPO run (``set``)."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, description="what the cell is, as the paper's table names it")
    start: bool = Field(False, description="the start checkpoint, evaluated without training")
    set: dict[str, Any] = Field(default_factory=dict, description="GRPO job settings changed from the recipe")
    data_fraction: float | None = Field(None, gt=0.0, le=1.0,
                                        description="one pass over this fraction of the full run's prompts")
    paper: float | None = Field(None, description="the paper's number for the cell (its table's main metric)")

    @model_validator(mode="after")
    def _start_is_untrained(self) -> "CellSpec":
        if self.start and (self.set or self.data_fraction is not None):
            raise ValueError("a start cell is not trained: remove `set` and `data_fraction`, or `start: true`")
        return self


class Comparison(BaseModel):
    """What the paper claims of two cells: ``a`` beats ``b``, loses to it, or matches it."""

    model_config = ConfigDict(extra="forbid")
    a: str
    b: str
    expect: Literal["greater", "less", "equal"]
    metric: str = "greedy"

    @model_validator(mode="after")
    def _known_metric(self) -> "Comparison":
        if self.metric not in METRICS:
            raise ValueError(f"metric {self.metric!r} is not a cell metric; use one of {sorted(METRICS)}")
        if self.expect == "equal" and self.metric not in EQUIVALENCE_MARGINS:
            raise ValueError(f"expect: equal needs an equivalence margin, which metric {self.metric!r} has not "
                             f"(metrics with one: {sorted(EQUIVALENCE_MARGINS)})")
        if self.a == self.b:
            raise ValueError(f"compares cell {self.a!r} with itself")
        return self


class Claim(BaseModel):
    """One claim of a paper: its table, a grid of cells and the comparisons it makes."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="name on the command line")
    paper: str
    table: str
    title: str
    compares: str
    recipe: str
    note: str | None = None
    cells: dict[str, CellSpec] = Field(min_length=2)
    paper_metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    comparisons: list[Comparison] = Field(min_length=1)

    @model_validator(mode="after")
    def _cells_exist(self) -> "Claim":
        for name in self.cells:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
                raise ValueError(f"cell name {name!r}: use letters, digits, '_', '-' and '.' (it names a directory)")
        for i, comparison in enumerate(self.comparisons):
            for side in ("a", "b"):
                name = getattr(comparison, side)
                if name not in self.cells:
                    raise ValueError(f"comparisons[{i}].{side} names cell {name!r}, which is not one of "
                                     f"this claim's cells ({', '.join(self.cells)})")
        for metric, values in self.paper_metrics.items():
            if metric not in METRICS:
                raise ValueError(f"paper_metrics names {metric!r}, not a cell metric ({sorted(METRICS)})")
            unknown = sorted(set(values) - set(self.cells))
            if unknown:
                raise ValueError(f"paper_metrics.{metric} names unknown cells {unknown}")
        return self

    def paper_value(self, cell: str, metric: str = "greedy") -> float | None:
        """The paper's number for ``cell`` on ``metric`` (the cell's ``paper`` for accuracy)."""
        if metric == "greedy":
            return self.cells[cell].paper
        return self.paper_metrics.get(metric, {}).get(cell)

class Grid(BaseModel):
    """A whole grid file."""

    model_config = ConfigDict(extra="forbid")
    defaults: dict[str, Any] = Field(default_factory=dict)
    recipes: dict[str, dict[str, Any]]
    claims: list[Claim] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Grid":
        seen: set[str] = set()
        for i, claim in enumerate(self.claims):
            if claim.id in seen:
                raise ValueError(f"claims[{i}]: the id {claim.id!r} is used twice")
            seen.add(claim.id)
            if claim.recipe not in self.recipes:
                raise ValueError(f"claims[{i}] ({claim.id}): recipe {claim.recipe!r} is not in recipes "
                                 f"({', '.join(self.recipes)})")
        return self

    def claim(self, claim_id: str) -> Claim:
        return next(c for c in self.claims if c.id == claim_id)


def load_grid(path: str | Path | None = None) -> Grid:
    """The validated :class:`Grid` of ``path`` (default: the shipped ``claims.yaml``).

    Raises :class:`GridError` naming the file and the field (``claims[2].cells.S1.set``) when
    the file is missing, is not YAML, or does not validate.
    """
    path = Path(path) if path is not None else DEFAULT_GRID
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GridError(f"grid file {path}: cannot be read ({exc.strerror}); give a claims YAML file "
                        "(spatialrl/reproduce/claims.yaml is the shipped one)") from None
    except yaml.YAMLError as exc:
        raise GridError(f"grid file {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise GridError(f"grid file {path}: expected a mapping with defaults, recipes and claims; "
                        f"got {type(data).__name__}")
    try:
        return Grid.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(top level)"
            lines.append(f"  {where}: {error['msg']}")
        raise GridError(f"grid file {path} does not validate:\n" + "\n".join(lines)) from None


def select_claims(grid: Grid, names: list[str]) -> list[Claim]:
    """The claims named (ids, or ``all``), in the grid's order; an unknown name is a
    :class:`GridError` listing the valid ones."""
    ids = [c.id for c in grid.claims]
    if not names or names == ["all"]:
        return list(grid.claims)
    unknown = [n for n in names if n not in ids and n != "all"]
    if unknown:
        raise GridError(f"unknown claim{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: valid claims are "
                        f"{', '.join(ids)} or all (spatialrl reproduce --list)")
    if "all" in names:
        return list(grid.claims)
    return [c for c in grid.claims if c.id in names]
