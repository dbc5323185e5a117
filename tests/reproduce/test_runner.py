"""``spatialrl reproduce`` end to end with the shipped tiny model: a two-cell, one-seed grid
writes its results file and RESULTS.md section (in worker processes, --jobs 2); a killed run,
run again, finishes only the missing cells; a rerun reuses everything; bad input names itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spatialrl.cli import main
from spatialrl.demo import MARKER, shipped_model_dir

pytestmark = pytest.mark.slow

# Seconds per cell: 4 scenes, one GRPO step of 8 completions, 12 held-out items, 6 sampled twice.
GRID = """
defaults:
  scenes: 4
  test_fraction: 0.5
  grpo_steps: 1
  grpo_batch_size: 8
  num_generations: 4
  max_completion_length: 24
  eval_items: 12
  eval_max_new_tokens: 24
  sample_items: 6
  sample_k: 2
recipes:
  smooth_operator: {consistency_eta: 0.0}
claims:
  - id: advantage
    paper: Smooth Operator
    table: Table 3
    title: GRPO against AP-GRPO
    compares: the advantage estimator
    recipe: smooth_operator
    cells:
%(start)s      grpo: {label: GRPO, set: {advantage: grpo, adv_clip: null}, paper: 54.4}
      ap_grpo: {label: AP-GRPO, set: {}, paper: 60.0}
    comparisons:
      - {a: ap_grpo, b: grpo, expect: greater}
"""
START_CELL = "      start: {start: true, label: start, paper: 49.7}\n"


def _grid(tmp_path: Path, start: bool = False) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID % {"start": START_CELL if start else ""}, encoding="utf-8")
    return path


def _args(grid: Path, out: Path, *extra: str) -> list[str]:
    return ["reproduce", "all", "--claims-file", str(grid), "--seeds", "1", "--out", str(out),
            "--model", str(shipped_model_dir()), "--quiet", *extra]


def _marker(out: Path, run: str) -> dict:
    return json.loads((out / "cells" / run / "seed-0" / MARKER).read_text(encoding="utf-8"))


def test_two_cell_one_seed_grid(tmp_path, capsys):
    out = tmp_path / "out"
    results_path, doc_path = tmp_path / "results.json", tmp_path / "RESULTS.md"
    code = main(_args(_grid(tmp_path), out, "--jobs", "2", "--results", str(results_path), "--doc", str(doc_path)))
    assert code == 0, capsys.readouterr().err

    results = json.loads(results_path.read_text(encoding="utf-8"))
    assert results["schema"] == "spatialrl.reproduce/v1"
    assert results["cells_total"] == 2 and results["cells_missing"] == 0
    assert results["seeds"] == [0]
    (claim,) = results["claims"]
    assert claim["id"] == "advantage" and claim["verdict"] == "inconclusive"  # one seed: no interval
    for name in ("grpo", "ap_grpo"):
        cell = claim["cells"][name]
        assert cell["seeds_done"] == ["0"]
        metrics = {m: v["0"] for m, v in cell["per_seed"].items()}
        assert 0.0 <= metrics["greedy"] <= 100.0 and 0.0 <= metrics["sampled"] <= 100.0
        assert metrics["adv_variance"] is not None and metrics["adv_variance"] >= 0.0
        assert 0.0 <= metrics["zero_var_frac"] <= 1.0
        assert metrics["train_seconds"] > 0.0
        assert cell["summary"]["greedy"]["mean"] == metrics["greedy"] and cell["summary"]["greedy"]["ci95"] is None
        per_type = cell["per_type"]["greedy"]
        assert per_type and all(0.0 <= v <= 100.0 for v in per_type.values()) and cell["per_type"]["sampled"]
        # the cell's own record agrees with the results file, and the weights are gone
        assert _marker(out, f"advantage.{name}")["info"]["metrics"]["greedy"] == metrics["greedy"]
        assert not list((out / "cells" / f"advantage.{name}" / "seed-0").rglob("model.safetensors"))
    (comparison,) = claim["comparisons"]
    greedy = {n: claim["cells"][n]["per_seed"]["greedy"]["0"] for n in ("grpo", "ap_grpo")}
    assert comparison["diff"]["mean"] == pytest.approx(greedy["ap_grpo"] - greedy["grpo"])
    assert comparison["paper_diff"] == pytest.approx(5.6)

    doc = doc_path.read_text(encoding="utf-8")
    assert '<a id="advantage"></a>' in doc and "## Smooth Operator, Table 3: GRPO against AP-GRPO" in doc
    assert "**Verdict: inconclusive** (from 1 seed)." in doc
    assert f"spatialrl reproduce advantage --seeds 1 --model {shipped_model_dir()}" in doc
    assert f"| ap_grpo > grpo | greedy acc. | +5.6 | {comparison['diff']['mean']:+.1f} (1) | inconclusive |" in doc
    # run again: the finished cells are read by this process, no worker is started
    capsys.readouterr()
    assert main(_args(_grid(tmp_path), out, "--jobs", "2", "--results", str(results_path), "--doc", str(doc_path))) == 0
    assert "[reproduce] reusing 2 finished cell(s)" in capsys.readouterr().out
    assert not list((out / "logs").glob("*.log")) or all(
        log.read_text(encoding="utf-8").count("done in") == 1 for log in (out / "logs").glob("*.log"))
    doc = doc_path.read_text(encoding="utf-8")
    # the Markdown is a view of the results file: --render regenerates it byte for byte
    regenerated = tmp_path / "again.md"
    assert main(["reproduce", "--render", str(results_path), "--doc", str(regenerated)]) == 0
    assert regenerated.read_text(encoding="utf-8") == doc.replace(str(doc_path), str(regenerated))


def test_killed_run_finishes_only_the_missing_cells(tmp_path, capsys):
    grid, out = _grid(tmp_path, start=True), tmp_path / "out"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([sys.executable, "-m", "spatialrl", *_args(grid, out)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / "cells" / "advantage.grpo" / "seed-0" / MARKER
    deadline = time.monotonic() + 120
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert first.is_file(), "the first trained cell did not finish before the kill"
    assert (out / "start" / MARKER).is_file()
    done_before = _marker(out, "advantage.grpo")
    start_before = json.loads((out / "start" / MARKER).read_text(encoding="utf-8"))
    assert not (out / "cells" / "advantage.ap_grpo" / "seed-0" / MARKER).is_file(), \
        "the kill came after every cell had finished: nothing left to check"

    capsys.readouterr()
    assert main(_args(grid, out)) == 0
    log = capsys.readouterr().out
    assert _marker(out, "advantage.grpo")["token"] == done_before["token"]
    assert json.loads((out / "start" / MARKER).read_text(encoding="utf-8"))["token"] == start_before["token"]
    assert "cells/advantage.grpo/seed-0: reusing" in log and "start: reusing" in log
    assert "cells/advantage.ap_grpo/seed-0: advantage.ap_grpo, seed 0" in log  # run now
    assert _marker(out, "advantage.ap_grpo")["info"]["metrics"]["greedy"] is not None
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["cells_missing"] == 0
    start_cell = results["claims"][0]["cells"]["start"]
    assert start_cell["per_seed"]["greedy"]["0"] == start_before["info"]["metrics"]["greedy"]

    # a third run reuses every cell and runs nothing
    assert main(_args(grid, out)) == 0
    log = capsys.readouterr().out
    assert log.count("reusing") >= 3 and ", seed 0\n" not in log.replace("reusing", "")


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "no-such-claim"], "unknown claim no-such-claim: valid claims are smoothop-t2-roadmap"),
    (["reproduce"], "name the claims to run"),
    (["reproduce", "all", "--seeds", "0"], "--seeds 0: give at least 1"),
    (["reproduce", "all", "--set", "no_such_field=1"], "no_such_field"),
    (["reproduce", "--render", "missing.json"], "--render needs --doc"),
])
def test_bad_input_names_itself(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_list_names_every_claim(capsys):
    assert main(["reproduce", "--list"]) == 0
    text = capsys.readouterr().out
    for claim in ("smoothop-t2-roadmap", "smoothop-t3-advantage", "smoothop-t4-data", "smoothop-t5-kmin",
                  "smoothop-t6-kmax", "smoothop-t7-alpha", "smoothop-t8-operator", "svqa-t5-rewards", "svqa-t6-eta",
                  "dynamic-sampling"):
        assert claim in text
    assert "Smooth Operator, Table 2" in text and "SVQA-R1, Table 6" in text


# -- resolving cells and runs (no training) ---------------------------------------------------------

def test_runs_are_named_by_the_whole_grid_whichever_claims_are_selected():
    from spatialrl.reproduce.grid import load_grid, select_claims
    from spatialrl.reproduce.runner import cell_runs, sizing

    grid = load_grid()
    cfg = sizing(grid, [])
    of_all, runs_all = cell_runs(grid, grid.claims, cfg)
    of_one, runs_one = cell_runs(grid, select_claims(grid, ["smoothop-t3-advantage"]), cfg)
    assert of_one[("smoothop-t3-advantage", "ap_grpo")] == "smoothop-t2-roadmap.S5" == \
        of_all[("smoothop-t3-advantage", "ap_grpo")]
    assert set(runs_one) == {"smoothop-t2-roadmap.S5", "smoothop-t3-advantage.grpo", "smoothop-t3-advantage.absolute"}
    assert runs_one["smoothop-t2-roadmap.S5"].cells == (("smoothop-t3-advantage", "ap_grpo"),)
    assert len(runs_all) == 24


def test_data_fraction_reads_the_resolved_job(tmp_path):
    from spatialrl.reproduce.grid import load_grid
    from spatialrl.reproduce.runner import cell_runs, sizing

    grid = load_grid()
    claim = [grid.claim("smoothop-t4-data")]
    _, runs = cell_runs(grid, claim, sizing(grid, []))
    assert runs["smoothop-t4-data.grpo_10k"].fields["max_steps"] == 8  # 0.2 x 40 steps
    assert runs["smoothop-t4-data.grpo_10k"].fields["max_samples"] == 32  # 8 steps x 4 prompts
    cfg = sizing(grid, ["grpo_steps=100", "grpo_overrides=[gradient_accumulation_steps=2]"])
    _, runs = cell_runs(grid, claim, cfg)
    assert runs["smoothop-t4-data.ap_grpo_20k"].fields["max_steps"] == 40
    assert runs["smoothop-t4-data.ap_grpo_20k"].fields["max_samples"] == 320  # 40 steps x 8 prompts


@pytest.mark.parametrize("field", ["seed", "model", "train_split"])
def test_a_cell_may_not_set_what_the_runner_wires(tmp_path, field):
    from spatialrl.reproduce.grid import GridError, load_grid
    from spatialrl.reproduce.runner import cell_runs, sizing

    path = _grid(tmp_path)
    path.write_text(path.read_text().replace("set: {}", f"set: {{{field}: x}}"), encoding="utf-8")
    grid = load_grid(path)
    with pytest.raises(GridError, match=f"cell ap_grpo: its recipe or set sets {field}"):
        cell_runs(grid, grid.claims, sizing(grid, []))


def test_a_failed_cell_is_reported_and_the_others_go_on(tmp_path, monkeypatch, capsys):
    from spatialrl.reproduce import runner

    real = runner.run_cell

    def failing(plan, key, seed, *args, **kwargs):
        if key == "advantage.grpo":
            raise RuntimeError("out of memory (simulated)")
        return real(plan, key, seed, *args, **kwargs)

    monkeypatch.setattr(runner, "run_cell", failing)
    out = tmp_path / "out"
    assert main(_args(_grid(tmp_path), out)) == 1  # a cell is missing
    text = capsys.readouterr().out
    assert "RuntimeError: out of memory (simulated)" in text and "FAILED: advantage.grpo seed 0" in text
    assert (out / "cells" / "advantage.ap_grpo" / "seed-0" / MARKER).is_file()
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["cells_missing"] == 1 and results["claims"][0]["cells"]["grpo"]["seeds_done"] == []


def test_one_reproduce_per_out_directory(tmp_path, capsys):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".reproduce.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert main(_args(_grid(tmp_path), out)) == 2
    assert "another spatialrl reproduce is running in" in capsys.readouterr().err


def test_data_without_a_test_split_is_named(tmp_path, capsys):
    from spatialrl.data.build import BuildConfig, build_dataset

    data = tmp_path / "data"
    build_dataset(str(data), BuildConfig(scenes=2, test_fraction=0.5))
    for split in data.rglob("test-*.parquet"):
        split.unlink()
    assert main(_args(_grid(tmp_path), tmp_path / "out", "--data", str(data))) == 2
    assert f"--data {data}: its test split (the evaluation set) cannot be read" in capsys.readouterr().err


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored
    # across exec (Python then installs no KeyboardInterrupt handler): give the command the
    # terminal's default, whatever launched the tests.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_workers_and_starts_no_more(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([sys.executable, "-m", "spatialrl", *_args(_grid(tmp_path), out, "--seeds", "3"),
                                "--jobs", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=_default_sigint)
    logs = out / "logs"
    deadline = time.monotonic() + 120
    while not (logs.is_dir() and any(logs.iterdir())) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before a worker started"
    process.send_signal(signal.SIGINT)  # the parent alone, as a terminal's Ctrl-C would reach it first
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and b"interrupted; finished cells are kept" in err
    left = subprocess.run(["pgrep", "-f", f"spatialrl.reproduce.worker {out}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "workers outlived the interrupted run"
    assert len(list(logs.iterdir())) <= 2, "workers were started after the interrupt"
