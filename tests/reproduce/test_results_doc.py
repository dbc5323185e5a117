"""The results file and its Markdown (spatialrl/reproduce/results_doc.py and
templates/RESULTS.md.jinja) on a hand-made outcome: one section per claim with its anchor,
verdict, paper numbers, intervals, per-claim command and the verdict rule; empty columns left
out; a file of another schema refused. No training: the cells' metrics are made up."""

from __future__ import annotations

import json
import re

import pytest

from spatialrl.reproduce.grid import Claim
from spatialrl.reproduce.results_doc import SCHEMA, render_results, results_document, verdict_rule_text


def claim(claim_id: str, table: str, cells: dict, comparisons: list) -> Claim:
    return Claim.model_validate({"id": claim_id, "paper": "Smooth Operator", "table": table, "title": f"title {claim_id}",
                                 "compares": "things", "recipe": "smooth_operator", "note": f"note of {claim_id}",
                                 "cells": cells, "comparisons": comparisons})


CLAIMS = [
    claim("t2-toy", "Table 2", {"S0": {"start": True, "label": "SFT start", "paper": 49.7},
                                "S1": {"label": "GRPO", "set": {"advantage": "grpo"}, "paper": 54.4}},
          [{"a": "S1", "b": "S0", "expect": "greater"}]),
    claim("ds-toy", "ours", {"bin": {"label": "binary", "set": {}},
                             "ds": {"label": "dynamic sampling", "set": {"dynamic_sampling": True}}},
          [{"a": "ds", "b": "bin", "expect": "equal"},
           {"a": "ds", "b": "bin", "expect": "greater", "metric": "train_seconds"}]),
]


def m(greedy, train_seconds=None):
    return {"metrics": {"greedy": greedy, "train_seconds": train_seconds}}


CELLS = {
    "t2-toy/S0": {"run": "start", "seeds": {"0": m(50.0)}},
    "t2-toy/S1": {"run": "r1", "seeds": {"0": m(55.0, 100.0), "1": m(56.0, 110.0), "2": m(57.0, 90.0)}},
    "ds-toy/bin": {"run": "r1", "seeds": {"0": m(55.0, 100.0), "1": m(56.0, 110.0), "2": m(57.0, 90.0)}},
    "ds-toy/ds": {"run": "r2", "seeds": {"0": m(55.5, 300.0), "1": m(55.0, 330.0), "2": m(57.5, 310.0)}},
}
CONFIG = {"eval_items": 800, "sample_items": 240, "sample_k": 4, "grpo_steps": 40, "grpo_batch_size": 32,
          "num_generations": 8, "grpo_learning_rate": 3e-5}


def document(seeds=(0, 1, 2), cells=CELLS, claims=CLAIMS):
    outcome = {"cells": cells, "compute_seconds": 7200.04, "cells_total": 7, "cells_missing": 0,
               "data": "/tmp/data", "model": "/tmp/start-model"}
    return results_document(claims, outcome, list(seeds), CONFIG, {"smooth_operator": {"consistency_eta": 0.0}},
                            argv=["all", "--seeds", "0,1,2", "--out", "my out"],
                            claim_args=["--seeds", "0,1,2", "--out", "my out"])


def section(markdown: str, claim_id: str) -> str:
    start = markdown.index(f'<a id="{claim_id}"></a>')
    following = markdown.find('<a id="', start + 1)
    return markdown[start:following if following != -1 else markdown.index("## Metrics")]


def table_header(text: str, first: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {first} |"))


def test_results_document_fields():
    doc = document()
    assert doc["schema"] == SCHEMA
    assert doc["seeds"] == [0, 1, 2] and doc["compute_seconds"] == 7200.0
    assert doc["command"] == "spatialrl reproduce all --seeds 0,1,2 --out 'my out'"
    assert [c["id"] for c in doc["claims"]] == ["t2-toy", "ds-toy"]
    assert doc["claims"][0]["command"] == "spatialrl reproduce t2-toy --seeds 0,1,2 --out 'my out'"
    assert doc["claims"][0]["verdict"] == "replicates"
    assert doc["start_model"] == "/tmp/start-model" and doc["data"] == "/tmp/data"
    assert doc["level"] == 0.95 and doc["min_seeds_for_interval"] == 2
    json.dumps(doc)  # a results file is JSON


def test_markdown_has_one_section_per_claim():
    md = render_results(document())
    assert md.count('<a id="') == 2
    t2 = section(md, "t2-toy")
    assert "## Smooth Operator, Table 2: title t2-toy" in t2
    assert "**Verdict: replicates** (from 3 seeds)." in t2
    assert "note of t2-toy" in t2
    assert "| S0: SFT start | 50.0 | 49.7 |" in t2  # one evaluation: no interval
    assert "| S1: GRPO | 56.0 [53.5, 58.5] | 54.4 |" in t2
    # paper difference +4.7; ours a - start = 5, 6, 7: +6.0 [+3.5, +8.5]
    assert "| S1 > S0 | greedy acc. | +4.7 | +6.0 [+3.5, +8.5] (3) | replicates |" in t2
    assert "Command: `spatialrl reproduce t2-toy --seeds 0,1,2 --out 'my out'`" in t2
    assert "| [title t2-toy](#t2-toy) | Smooth Operator | Table 2 | **replicates** | 3 |" in md
    assert "| [title ds-toy](#ds-toy) | Smooth Operator | ours |" in md
    assert "**Command:** `spatialrl reproduce all --seeds 0,1,2 --out 'my out'`" in md
    assert "2.0 h of cell time" in md


def test_equal_comparison_and_used_metric_column():
    ds = section(render_results(document()), "ds-toy")
    # ds - bin greedy = 0.5, -1.0, 0.5: interval wider than the 1-point margin -> inconclusive
    assert re.search(r"\| ds = bin \(within ±1\.0\) \| greedy acc\. \| n/a \| \+0\.0 \[-2\.\d, \+2\.\d\] \(3\) "
                     r"\| inconclusive \|", ds), ds
    assert "| ds > bin | train s | n/a | +213 [" in ds and "(3) | replicates |" in ds
    assert "**Verdict: inconclusive**" in ds
    # train_seconds is not a default column: shown only because a comparison uses it
    assert table_header(ds, "cell") == "| cell | greedy acc. | train s | paper |"
    assert "train s" not in table_header(section(render_results(document()), "t2-toy"), "cell")


def test_columns_without_values_are_left_out():
    t2 = section(render_results(document()), "t2-toy")
    header = table_header(t2, "cell")
    assert header == "| cell | greedy acc. | paper |"
    for absent in ("sampled acc.", "T_conv", "pair consistency", "zero-var groups"):
        assert absent not in header
    cells = {**CELLS, "t2-toy/S1": {"run": "r1", "seeds": {
        s: {"metrics": {"greedy": 55.0 + int(s), "sampled": 40.0 + int(s)}} for s in ("0", "1", "2")}}}
    header = table_header(section(render_results(document(cells=cells)), "t2-toy"), "cell")
    assert header == "| cell | greedy acc. | sampled acc. | paper |"


def test_one_seed_has_no_interval():
    md = render_results(document(seeds=[0]))
    t2 = section(md, "t2-toy")
    assert "**Verdict: inconclusive** (from 1 seed)." in t2
    assert "| S1: GRPO | 55.0 | 54.4 |" in t2
    assert "| S1 > S0 | greedy acc. | +4.7 | +5.0 (1) | inconclusive |" in t2
    rows = [line for line in t2.splitlines() if line.startswith("| S")]
    assert len(rows) == 3 and not any("[" in row for row in rows)


def test_verdict_rule_text_is_in_the_document():
    rule = verdict_rule_text()
    assert "**replicates** when the interval lies\n  above 0" in rule
    assert "`EQUIVALENCE_MARGINS`" in rule and ":data:" not in rule and "``" not in rule
    md = render_results(document())
    assert "## The verdict rule\n\n" + rule in md


def test_render_round_trips_through_json():
    doc = document()
    assert render_results(json.loads(json.dumps(doc))) == render_results(doc)


def test_render_refuses_another_schema():
    doc = {**document(), "schema": "something/v0"}
    with pytest.raises(ValueError, match=r"^runs/results\.json: not a spatialrl reproduce results file") as info:
        render_results(doc, results_path="runs/results.json")
    assert "'something/v0'" in str(info.value) and SCHEMA in str(info.value)
    with pytest.raises(ValueError, match="schema None"):
        render_results({"claims": []}, results_path="x.json")
