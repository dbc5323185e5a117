"""``spatialrl demo``: a miniature end-to-end run writes metrics.json in the schema the report reads
and the report itself; a rerun reuses every finished stage; a changed stage reruns with its
dependants and nothing else; an interrupted stage is redone; bad input names its flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from spatialrl import demo
from spatialrl.cli import main
from spatialrl.demo import MARKER, DemoConfig
from spatialrl.train.config import ConfigError

# A run of a few seconds per stage: the 0.2 M model, 6 scenes, 2 steps each, 12 held-out items.
MINI = dict(model_size="tiny", scenes=6, test_fraction=0.34, sft_steps=2, sft_batch_size=4, grpo_steps=2,
            grpo_batch_size=16, max_completion_length=12, eval_items=12, eval_max_new_tokens=12, eval_batch_size=12,
            sample_items=8, sample_k=2, sample_batch_size=4)
STAGE_DIRS = ("data", "model", "sft", "grpo", "control", "eval/baseline", "eval/sft", "eval/rl", "eval/control")


def _no_shipped_model(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "shipped_model_dir", lambda: tmp_path / "no-shipped-model")


def _tokens(out: Path) -> dict[str, str]:
    return {name: json.loads((out / name / MARKER).read_text())["token"] for name in STAGE_DIRS}


def _rerun(out: Path, **changes):
    lines: list[str] = []
    metrics = demo.run_demo(DemoConfig(out=str(out), **{**MINI, **changes}), log=lines.append)
    return metrics, lines


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "shipped_model_dir", lambda: tmp / "no-shipped-model")
        lines: list[str] = []
        metrics = demo.run_demo(DemoConfig(out=str(tmp / "run"), **MINI), log=lines.append)
    return tmp / "run", metrics, lines


@pytest.fixture
def run_copy(mini_run, tmp_path, monkeypatch):
    """A private copy of the finished run (markers hold no absolute paths, so it is reusable)."""
    _no_shipped_model(monkeypatch, tmp_path)
    out = tmp_path / "copy"
    shutil.copytree(mini_run[0], out)
    return out


# -- end to end ---------------------------------------------------------------------------------


def test_end_to_end_writes_metrics_in_the_report_schema_and_the_report(mini_run):
    from spatialrl.report import load_inputs

    out, metrics, lines = mini_run
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    for key in ("sft", "control", "rl", "baseline"):
        scores = metrics[key]
        assert set(scores) == {"overall", "per_type"}
        assert 0.0 <= scores["overall"] <= 100.0
        assert scores["per_type"] and all(0.0 <= v <= 100.0 for v in scores["per_type"].values())
    assert metrics["seed"] == 0 and metrics["seconds"] > 0
    assert metrics["start_model"]["source"] == "fallback" and not metrics["start_model"]["perception_pretraining"]
    assert any("NO perception" in line for line in lines), "the fallback model is announced loudly"
    assert metrics["config"]["sft_think"] == "empty", "the fallback model has no think format of its own"

    inputs = load_inputs(out)  # the report's own reader: raises on a schema error
    assert set(inputs.metrics.models) == {"sft", "control", "rl", "baseline"}
    assert inputs.grpo_log is not None and inputs.grpo_log.series("sharpness/k") is not None
    assert inputs.control_log is not None and inputs.control_log.series("loss") is not None
    assert inputs.params.source["max_steps"] == "grpo/spatialrl_config.yaml" and inputs.params.values["max_steps"] == 2
    html = (out / "report.html").read_text()
    assert "Accuracy per question type" in html and (out / "report.md").is_file()
    assert lines[-1].startswith("demo: report: ") and str(out / "report.html") in lines[-1]

    # every stage finished with a marker, nothing partial is left, configs name the final dirs
    for name in STAGE_DIRS:
        assert (out / name / MARKER).is_file(), name
    assert not list(out.rglob("*.partial"))
    assert f"output_dir: {out / 'grpo'}" in (out / "grpo" / "spatialrl_config.yaml").read_text()
    assert (out / "grpo" / "final" / "config.json").is_file()

    # the control trained from the same start for the GRPO stage's measured time
    training = metrics["training"]
    assert training["control"]["budget_seconds"] == training["grpo"]["seconds"]
    control_cfg = (out / "control" / "spatialrl_config.yaml").read_text()
    assert f"model: {out / 'sft'}" in control_cfg and f"max_seconds: {training['grpo']['seconds']}" in control_cfg

    # every model is scored on the same held-out items
    ids = {}
    for name in ("baseline", "sft", "rl", "control"):
        rows = [json.loads(line) for line in (out / "eval" / name / "predictions.jsonl").read_text().splitlines()]
        ids[name] = sorted(r["id"] for r in rows)
    assert len(ids["sft"]) == metrics["eval"]["items"] <= 12
    assert ids["sft"] == ids["rl"] == ids["control"] == ids["baseline"]


def test_metrics_hold_sampled_scores_paired_intervals_pair_consistency_and_mechanisms(mini_run):
    from spatialrl.eval.benchmarks import get_benchmark

    out, metrics, lines = mini_run
    models = ("sft", "control", "rl", "baseline")
    # sampled: k answers per item on a subset of whole mirror pairs, at the GRPO stage's temperature
    assert set(metrics["sampled"]) == set(models)
    benchmark = get_benchmark("world")
    items = {item.id: item for item in benchmark.load(str(out / "data"), split="test")}
    greedy_ids = [json.loads(line)["id"] for line in (out / "eval" / "sft" / "predictions.jsonl").read_text().splitlines()]
    for key in ("sft", "control", "rl"):
        entry = metrics["sampled"][key]
        assert entry["k"] == 2 and entry["temperature"] == 1.0 and entry["sampling"] is True
        assert 0 < entry["items"] <= 8 and 0.0 <= entry["overall"] <= 100.0 and entry["per_type"]
        rows = [json.loads(line) for line in (out / "eval" / key / "samples.jsonl").read_text().splitlines()]
        assert len(rows) == entry["items"] and all(len(r["samples"]) == 2 for r in rows)
        ids = [r["id"] for r in rows]
        assert set(ids) <= set(greedy_ids)
        pairs = [items[i].meta["pair_id"] for i in ids]
        assert all(pairs.count(p) == 2 for p in pairs), "whole mirror pairs"
        assert entry["overall"] == pytest.approx(sum(entry["per_type"].values()) / len(entry["per_type"]))
    same = [json.loads(line)["id"] for line in (out / "eval" / "rl" / "samples.jsonl").read_text().splitlines()]
    assert same == [json.loads(line)["id"] for line in (out / "eval" / "sft" / "samples.jsonl").read_text().splitlines()]
    base = metrics["sampled"]["baseline"]
    assert base["sampling"] is False and base["k"] is None and "greedy score" in base["note"]
    assert base["overall"] == base["greedy_same_items"]
    assert metrics["eval"]["sampled"]["k"] == 2 and metrics["eval"]["sampled"]["items"] == base["items"]

    # paired intervals: the greedy difference is the difference of the reported overall scores
    for name, other in (("rl_minus_sft", "sft"), ("rl_minus_control", "control")):
        for kind, source in (("greedy", metrics), ("sampled", metrics["sampled"])):
            entry = metrics["paired"][name][kind]
            assert entry["diff"] == pytest.approx(source["rl"]["overall"] - source[other]["overall"], abs=1e-3)
            assert entry["clusters"] >= 1 and entry["items"] >= entry["clusters"]
            if entry["clusters"] >= 2:
                lo, hi = entry["ci95"]
                assert lo <= entry["diff"] <= hi
    assert metrics["paired"]["rl_minus_sft"]["greedy"]["items"] == metrics["eval"]["items"]

    # pair consistency, greedy, in percent, matches the world benchmark's both_right
    for key in ("sft", "control", "rl"):
        scores = json.loads((out / "eval" / key / "scores.json").read_text())
        assert metrics["pair_consistency"][key] == pytest.approx(scores["metrics"]["pairs"]["both_right"], abs=1e-3)
    assert set(metrics["pair_consistency"]) == set(models)

    # mechanisms: spatialrl.train.mechanisms.summarise of the GRPO log, where that module exists
    mechanisms = metrics["mechanisms"]
    assert mechanisms["steps"] == [1, 2], "summarise() of the GRPO stage's log_history.jsonl"
    for key in ("zero_var_frac_snra", "zero_var_frac_binary"):
        assert 0.0 <= mechanisms["summary"][key] <= 1.0
    assert any("zero-variance groups" in line and "binary" in line for line in lines)

    # the closing printout: greedy and sampled per model, both paired differences with intervals
    text = "\n".join(lines)
    assert "greedy" in text and "sampled" in text
    assert any(line.strip().startswith("RL - start") and "sampled" in line for line in lines), lines
    assert any(line.strip().startswith("RL - control") for line in lines)
    assert any("pair consistency" in line for line in lines)


def test_sampling_can_be_turned_off(run_copy):
    metrics, lines = _rerun(run_copy, sample_items=0)
    assert metrics["sampled"] == {} and all("sampled" not in v for v in metrics["paired"].values())
    assert not (run_copy / "eval" / "rl" / "samples.jsonl").exists()
    assert any("no sampled scores" in line for line in lines)


# -- stage reuse --------------------------------------------------------------------------------


def test_a_rerun_reuses_every_stage(run_copy):
    before = _tokens(run_copy)
    times = {name: (run_copy / name / MARKER).stat().st_mtime_ns for name in STAGE_DIRS}
    metrics, lines = _rerun(run_copy)
    assert _tokens(run_copy) == before
    assert {name: (run_copy / name / MARKER).stat().st_mtime_ns for name in STAGE_DIRS} == times
    reused = [line for line in lines if ": reusing " in line]
    assert len(reused) == len(STAGE_DIRS), lines
    assert not any("redoing" in line for line in lines)
    assert all(stage["reused"] for stage in metrics["stages"].values())


def test_a_changed_stage_reruns_with_its_dependants_only(run_copy):
    before = _tokens(run_copy)
    # GRPO gets a wall-clock cap that binds after its first step
    metrics, lines = _rerun(run_copy, grpo_steps=3, grpo_max_seconds=0.01)
    after = _tokens(run_copy)
    changed = {name for name in STAGE_DIRS if after[name] != before[name]}
    assert changed == {"grpo", "control", "eval/rl", "eval/control"}
    assert any("grpo: redoing" in line and "settings changed" in line for line in lines)
    assert any("control: redoing" in line and "redone" in line for line in lines)
    grpo = metrics["training"]["grpo"]
    assert grpo["stopped_by_time"] and grpo["steps"] == 1
    assert metrics["training"]["control"]["budget_seconds"] == grpo["seconds"]


def test_a_given_control_budget_reruns_the_control_only_and_says_so(run_copy):
    before = _tokens(run_copy)
    metrics, lines = _rerun(run_copy, control_seconds=0.5)
    after = _tokens(run_copy)
    assert {name for name in STAGE_DIRS if after[name] != before[name]} == {"control", "eval/control"}
    assert any("SFT from the start for 0 s (control_seconds)" in line for line in lines), lines
    assert not any("the GRPO stage's training time" in line for line in lines)
    assert metrics["training"]["control"]["budget_seconds"] == 0.5


def test_an_interrupted_stage_is_redone(run_copy):
    before = _tokens(run_copy)
    (run_copy / "eval" / "rl" / MARKER).unlink()  # killed before its marker was written
    (run_copy / "eval" / "rl" / "junk.txt").write_text("half a stage")
    (run_copy / ".sft.partial").mkdir()  # a partial directory left by a kill
    _, lines = _rerun(run_copy)
    after = _tokens(run_copy)
    assert {name for name in STAGE_DIRS if after[name] != before[name]} == {"eval/rl"}
    assert any("eval/rl: redoing" in line and "no completion marker" in line for line in lines)
    assert not (run_copy / "eval" / "rl" / "junk.txt").exists(), "the incomplete directory is replaced"
    assert (run_copy / "eval" / "rl" / "predictions.jsonl").is_file()


# -- inputs and configuration -------------------------------------------------------------------


def test_a_missing_model_names_the_flag(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"--model .*nope: no such directory"):
        DemoConfig(out=str(tmp_path / "run"), model=str(missing))
    assert main(["demo", "--out", str(tmp_path / "run"), "--model", str(missing)]) == 2
    assert "--model" in capsys.readouterr().err
    assert not (tmp_path / "run").exists(), "nothing is written for bad input"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="--model .*no config.json"):
        DemoConfig(model=str(tmp_path / "empty"))


def test_invalid_settings_are_reported_by_name():
    with pytest.raises(ConfigError, match="grpo_steps"):
        demo.apply_settings(DemoConfig(), ["grpo_step=3"])
    with pytest.raises(ConfigError, match="wires itself"):
        DemoConfig(sft_overrides=["output_dir=x"])
    with pytest.raises(ConfigError, match="GRPO stage.*num_generations"):
        DemoConfig(grpo_batch_size=12)
    with pytest.raises(ConfigError, match="test_fraction"):
        DemoConfig(test_fraction=0.0)
    with pytest.raises(ConfigError, match="eval_threads"):
        DemoConfig(eval_threads=0)
    with pytest.raises(ConfigError, match="sample_k"):
        DemoConfig(sample_k=0)
    with pytest.raises(ConfigError, match="sample_items"):
        DemoConfig(sample_items=-1)
    cfg = demo.apply_settings(DemoConfig(), ["grpo_steps=30", "control_seconds=12.5"])
    assert (cfg.grpo_steps, cfg.control_seconds) == (30, 12.5)


def test_the_start_model_is_given_then_shipped_then_built(tmp_path, monkeypatch):
    shipped = tmp_path / "assets" / "tiny-spatial-vlm"
    monkeypatch.setattr(demo, "shipped_model_dir", lambda: shipped)
    assert demo.resolve_start_model(None) == ("fallback", None)
    shipped.mkdir(parents=True)
    assert demo.resolve_start_model(None) == ("fallback", None), "an empty directory is no checkpoint"
    (shipped / "config.json").write_text("{}")
    assert demo.resolve_start_model(None) == ("shipped", shipped)
    given = tmp_path / "mine"
    given.mkdir()
    (given / "config.json").write_text("{}")
    assert demo.resolve_start_model(str(given)) == ("given", given)
    monkeypatch.undo()
    assert demo.shipped_model_dir().parts[-3:] == ("spatialrl", "assets", "tiny-spatial-vlm")


def test_the_sft_think_format_follows_the_start_model(tmp_path):
    """A start model pretrained with think=option is fine-tuned in that format; anything else
    (no summary, another think mode, an unreadable summary) gets the empty block."""
    import json

    assert demo.start_model_think(None) == "empty"
    assert demo.start_model_think(tmp_path) == "empty"
    summary = tmp_path / "pretrain_summary.json"
    summary.write_text(json.dumps({"config": {"think": "option"}}))
    assert demo.start_model_think(tmp_path) == "option"
    summary.write_text(json.dumps({"config": {"think": "option_text"}}))
    assert demo.start_model_think(tmp_path) == "option_text"
    summary.write_text(json.dumps({"config": {"think": "direction_text"}}))
    assert demo.start_model_think(tmp_path) == "direction_text"
    summary.write_text(json.dumps({"config": {"think": "template"}}))
    assert demo.start_model_think(tmp_path) == "empty"
    summary.write_text("{not json")
    assert demo.start_model_think(tmp_path) == "empty"
    assert demo.DemoConfig().sft_think is None
    assert demo.sft_job(demo.DemoConfig(), "m", "d", "o").spatial.think == "empty"


def test_a_start_model_pretrained_with_option_think_is_fine_tuned_in_that_format(run_copy, tmp_path, monkeypatch):
    import spatialrl.train.sft as sft_module

    given = tmp_path / "given"
    shutil.copytree(run_copy / "model", given)
    (given / "pretrain_summary.json").write_text(json.dumps({"config": {"think": "option"}}))
    seen = {}

    class Stop(Exception):
        pass

    def capture(job, progress=None):
        seen["think"] = job.spatial.think
        raise Stop

    monkeypatch.setattr(sft_module, "train_sft", capture)
    with pytest.raises(Stop):
        demo.run_demo(DemoConfig(out=str(run_copy), model=str(given), **MINI), log=lambda line: None)
    assert seen == {"think": "option"}


def test_eval_subset_is_stratified_in_whole_pairs_and_deterministic():
    items = []
    for t, n_pairs in (("count", 30), ("depth", 3), ("left", 10)):
        for p in range(n_pairs):
            for view in ("o", "m"):
                items.append(SimpleNamespace(id=f"{t}-{p}-{view}", kind=t, meta={"pair_id": f"{t}-{p}"}))
    type_of = lambda item: item.kind
    subset = demo.eval_subset(items, 20, seed=0, type_of=type_of)
    assert len(subset) == 20
    kinds = [item.kind for item in subset]
    assert kinds.count("depth") == 6, "a small type gives all it has"
    assert sorted([kinds.count("count"), kinds.count("left")]) == [6, 8], "the others share the rest, pair by pair"
    pairs = [item.meta["pair_id"] for item in subset]
    assert all(pairs.count(p) == 2 for p in pairs), "mirror pairs stay whole"
    assert [i.id for i in demo.eval_subset(items, 20, 0, type_of)] == [i.id for i in subset]
    assert [i.id for i in demo.eval_subset(items, 20, 1, type_of)] != [i.id for i in subset]
    assert [i for i in items if i in subset] == subset, "input order is kept"
    assert len(demo.eval_subset(items, 1000, 0, type_of)) == len(items)


def test_help_explains_the_stages_and_what_is_written(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("data", "sft", "grpo", "control", "eval/{baseline,sft,rl,control}", "metrics.json", "report.html",
                 ".done.json", "--model", "--seed", "tiny-spatial-vlm", "same"):
        assert word in text, word
