"""The claims grid (spatialrl/reproduce/grid.py): the shipped claims.yaml loads and holds the
papers' tables, and a bad grid file or claim selection is a GridError that names the file and
the field to fix. Pure: YAML and pydantic only."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from spatialrl.reproduce.grid import DEFAULT_GRID, GridError, load_grid, select_claims

EXPECTED_TABLES = {
    ("Smooth Operator", "Table 2"), ("Smooth Operator", "Table 3"), ("Smooth Operator", "Table 4"),
    ("Smooth Operator", "Table 5"), ("Smooth Operator", "Table 6"), ("Smooth Operator", "Table 7"),
    ("Smooth Operator", "Table 8"), ("SVQA-R1", "Table 5"), ("SVQA-R1", "Table 6"),
}

# A minimal valid grid; each bad case below changes one thing in a copy.
BASE = {
    "defaults": {"grpo_steps": 2},
    "recipes": {"r": {"consistency_eta": 0.0}},
    "claims": [{
        "id": "c1", "paper": "P", "table": "Table 1", "title": "t", "compares": "x", "recipe": "r",
        "cells": {"s0": {"start": True, "label": "start"}, "g": {"label": "trained", "set": {"k_min": 2.0}}},
        "comparisons": [{"a": "g", "b": "s0", "expect": "greater"}],
    }],
}


@pytest.fixture(scope="module")
def grid():
    return load_grid()


def write(tmp_path: Path, data, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def changed(mutate) -> dict:
    data = copy.deepcopy(BASE)
    mutate(data)
    return data


def test_default_grid_is_the_shipped_file(grid):
    assert DEFAULT_GRID.name == "claims.yaml" and DEFAULT_GRID.is_file()
    assert load_grid(DEFAULT_GRID).model_dump() == grid.model_dump()


def test_shipped_grid_has_every_table(grid):
    tables = {(c.paper, c.table) for c in grid.claims}
    assert EXPECTED_TABLES <= tables
    dynamic = [c for c in grid.claims if "dynamic" in c.id]
    assert len(dynamic) == 1 and dynamic[0].paper == "spatialrl" and dynamic[0].table == "ours"
    assert len(grid.claims) == len(EXPECTED_TABLES) + 1
    assert len({c.id for c in grid.claims}) == len(grid.claims)
    assert set(grid.recipes) == {"smooth_operator", "svqa_r1"}


def test_shipped_comparisons_name_existing_cells(grid):
    for claim in grid.claims:
        assert claim.recipe in grid.recipes
        assert claim.comparisons, claim.id
        for comparison in claim.comparisons:
            assert comparison.a in claim.cells and comparison.b in claim.cells, (claim.id, comparison)
            assert comparison.a != comparison.b


def test_shipped_paper_numbers(grid):
    t2 = grid.claim("smoothop-t2-roadmap")
    assert t2.cells["S0"].start and t2.cells["S0"].set == {}
    assert t2.paper_value("S5") == 60.0
    assert t2.paper_value("S1", "t_conv") == 310
    assert t2.paper_value("S0", "t_conv") is None
    assert t2.paper_value("S5", "sampled") is None
    assert grid.claim("smoothop-t4-data").cells["grpo_10k"].data_fraction == 0.2
    assert grid.claim("svqa-t5-rewards").cells["e"].paper == 58.42


def test_minimal_grid_loads(tmp_path):
    grid = load_grid(write(tmp_path, BASE))
    assert [c.id for c in grid.claims] == ["c1"]
    assert grid.claims[0].comparisons[0].metric == "greedy"
    assert grid.defaults == {"grpo_steps": 2}


def check_error(tmp_path: Path, data, *fragments: str) -> str:
    path = write(tmp_path, data)
    with pytest.raises(GridError) as info:
        load_grid(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_cell_in_comparison(tmp_path):
    bad = changed(lambda d: d["claims"][0]["comparisons"][0].update(b="nope"))
    check_error(tmp_path, bad, "claims.0", "comparisons[0].b", "'nope'", "g, s0")


def test_unknown_metric(tmp_path):
    bad = changed(lambda d: d["claims"][0]["comparisons"][0].update(metric="accuracy"))
    check_error(tmp_path, bad, "claims.0.comparisons.0", "'accuracy'", "greedy")


def test_unknown_paper_metric(tmp_path):
    bad = changed(lambda d: d["claims"][0].update(paper_metrics={"t_conv": {"ghost": 3.0}}))
    check_error(tmp_path, bad, "claims.0", "paper_metrics.t_conv", "ghost")


def test_equal_on_metric_without_margin(tmp_path):
    # t_conv has no equivalence margin: the verdict of an `equal` comparison on it cannot be
    # computed, so the grid must be refused when loaded, not after every cell has trained.
    bad = changed(lambda d: d["claims"][0]["comparisons"][0].update(expect="equal", metric="t_conv"))
    check_error(tmp_path, bad, "claims.0.comparisons.0", "t_conv")


def test_start_cell_with_set(tmp_path):
    bad = changed(lambda d: d["claims"][0]["cells"]["s0"].update(set={"k_min": 2.0}))
    check_error(tmp_path, bad, "claims.0.cells.s0", "start cell")


def test_duplicated_claim_id(tmp_path):
    bad = changed(lambda d: d["claims"].append(copy.deepcopy(d["claims"][0])))
    check_error(tmp_path, bad, "claims[1]", "'c1'", "twice")


def test_unknown_recipe(tmp_path):
    bad = changed(lambda d: d["claims"][0].update(recipe="missing"))
    check_error(tmp_path, bad, "claims[0] (c1)", "'missing'", "recipes (r)")


def test_unknown_top_level_key(tmp_path):
    bad = changed(lambda d: d.update(claim=[]))
    check_error(tmp_path, bad, "claim:", "Extra inputs")


def test_unknown_cell_field(tmp_path):
    bad = changed(lambda d: d["claims"][0]["cells"]["g"].update(sets={}))
    check_error(tmp_path, bad, "claims.0.cells.g.sets")


def test_not_yaml(tmp_path):
    check_error(tmp_path, "claims: [unclosed\n  - {a: b", "not valid YAML")


def test_not_a_mapping(tmp_path):
    check_error(tmp_path, "- just\n- a list\n", "expected a mapping", "list")


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(GridError, match="cannot be read") as info:
        load_grid(path)
    assert str(path) in str(info.value)


def test_select_claims(grid):
    ids = [c.id for c in grid.claims]
    assert [c.id for c in select_claims(grid, [])] == ids
    assert [c.id for c in select_claims(grid, ["all"])] == ids
    assert [c.id for c in select_claims(grid, ["smoothop-t3-advantage", "all"])] == ids
    # grid order, whatever the order named
    picked = select_claims(grid, ["svqa-t6-eta", "smoothop-t2-roadmap"])
    assert [c.id for c in picked] == ["smoothop-t2-roadmap", "svqa-t6-eta"]


def test_select_unknown_claims(grid):
    with pytest.raises(GridError) as info:
        select_claims(grid, ["smoothop-t2-roadmap", "table-9", "nope"])
    message = str(info.value)
    assert message.startswith("unknown claims table-9, nope:")
    for claim in grid.claims:
        assert claim.id in message
    with pytest.raises(GridError, match="^unknown claim nope:"):
        select_claims(grid, ["nope"])
