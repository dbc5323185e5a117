"""Job configs: every shipped recipe loads and carries the papers' values; invalid values fail
naming the field; overrides parse types; save/load round-trips; the TRL arguments build."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spatialrl.train.config import (
    ConfigError,
    GRPOJobConfig,
    SFTJobConfig,
    apply_overrides,
    describe,
    dump_yaml,
    load_config,
    parse_override,
    save_config,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))
SMOOTHOP = ["smoothop_qwen2_5_vl_3b.yaml", "smoothop_qwen2_5_vl_7b.yaml"]


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)


def _write(tmp_path: Path, data: dict, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


BASE = {"job": "grpo", "model": "m", "dataset": "d", "output_dir": "o"}


# -- shipped recipes -------------------------------------------------------------------------


def test_the_recipes_are_shipped():
    names = {p.name for p in RECIPES}
    assert {"demo.yaml", "sft_demo.yaml", "svqa_r1_qwen2_5_vl_3b.yaml", "combined_qwen2_5_vl_3b.yaml", *SMOOTHOP} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_loads_validates_and_names_its_launch_command(path):
    cfg = load_config(path)
    assert isinstance(cfg, (GRPOJobConfig, SFTJobConfig))
    header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
    command = "spatialrl sft" if isinstance(cfg, SFTJobConfig) else "spatialrl train"
    assert command in header and f"configs/{path.name}" in header, "the header comment gives the launch command"
    assert load_config(path, job=cfg.JOB) == cfg


@pytest.mark.parametrize("name", SMOOTHOP)
def test_smooth_operator_recipes_have_the_paper_values(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.advantage == "ap_grpo" and cfg.num_generations == 8
    assert (cfg.learning_rate, cfg.weight_decay, cfg.beta) == (1e-6, 0.01, 0.02)
    assert (cfg.sharpness_kind, cfg.k_min, cfg.k_max, cfg.tau, cfg.steepness) == ("sigmoid", 1.0, 100.0, 0.5, 10.0)
    assert (cfg.alpha, cfg.adv_clip) == (1.0, 1.5)
    assert cfg.rewards == {"accuracy": 0.9, "format": 0.1} and cfg.abs_rewards == ["accuracy"]
    assert not cfg.mirror_pairs and cfg.consistency_reward is None
    assert cfg.mirror_twins == "drop", "one epoch trains each question once, not once per view"
    assert ("7B" in cfg.model) == ("7b" in name)
    schedule = cfg.sharpness_schedule()
    assert schedule(0, 100) < 2 and schedule(100, 100) > 99


def test_svqa_r1_recipe_has_the_paper_values():
    cfg = load_config(CONFIGS / "svqa_r1_qwen2_5_vl_3b.yaml")
    assert cfg.advantage == "grpo" and cfg.rewards == {"format": 0.5, "semantic": 0.5}
    assert cfg.mirror_pairs and cfg.consistency_reward == "semantic"
    assert (cfg.consistency_threshold, cfg.consistency_eta) == (0.5, 1.0)
    assert (cfg.num_generations, cfg.max_completion_length) == (8, 2048)
    assert (cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps) == (8, 2)


def test_combined_and_demo_recipes_combine_everything():
    for name in ("combined_qwen2_5_vl_3b.yaml", "demo.yaml"):
        cfg = load_config(CONFIGS / name)
        assert cfg.advantage == "ap_grpo" and "accuracy" in cfg.rewards and cfg.abs_rewards == ["accuracy"]
        assert cfg.mirror_pairs and cfg.consistency_reward == "accuracy"
        prompts = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps // cfg.num_generations
        assert prompts % 2 == 0
    demo = load_config(CONFIGS / "demo.yaml")
    assert 4 <= demo.num_generations <= 8 and demo.max_completion_length <= 64
    assert demo.model.startswith("runs/demo/") and demo.dataset.startswith("runs/demo/")
    assert not demo.bf16 and not demo.lora
    sft = load_config(CONFIGS / "sft_demo.yaml")
    assert isinstance(sft, SFTJobConfig) and sft.output_dir == demo.model


@pytest.mark.parametrize("name", ["ddp.yaml", "zero3.yaml"])
def test_accelerate_configs_are_valid(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(CONFIGS / "accelerate" / name))
    assert cfg.mixed_precision == "bf16" and cfg.num_processes == 8
    if name == "zero3.yaml":
        assert str(cfg.distributed_type).endswith("DEEPSPEED") and cfg.deepspeed_config["zero_stage"] == 3
        assert "pip install deepspeed" in (CONFIGS / "accelerate" / name).read_text()
    else:
        assert str(cfg.distributed_type).endswith("MULTI_GPU")


# -- validation ------------------------------------------------------------------------------

INVALID = [
    # (overrides of BASE, substrings the message must contain)
    ({"learning_rat": 1e-6}, ["unknown key 'learning_rat'", "did you mean 'learning_rate'", "valid keys"]),
    ({"advantage": "apgrpo"}, ["GRPOJobConfig.advantage", "'ap_grpo'", "register_advantage"]),
    ({"num_generations": 1}, ["GRPOJobConfig.num_generations must be >= 2", "at least two samples", "got 1"]),
    ({"mirror_pairs": True, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1},
     ["GRPOJobConfig.gradient_accumulation_steps", "must be even", "pairs are never split"]),
    ({"consistency_reward": "accuracy"}, ["GRPOJobConfig.consistency_reward", "mirror_pairs: true"]),
    ({"stratify_pairs_by": "question_type"}, ["GRPOJobConfig.stratify_pairs_by", "mirror_pairs: true"]),
    ({"mirror_pairs": True, "gradient_accumulation_steps": 2, "consistency_reward": "semantic"},
     ["GRPOJobConfig.consistency_reward", "not in rewards"]),
    ({"k_min": 10.0, "k_max": 5.0}, ["GRPOJobConfig.k_max", "must be >= k_min"]),
    ({"sharpness_kind": "fixed"}, ["GRPOJobConfig.k_max", "k_min == k_max"]),
    ({"sharpness_kind": "cosine"}, ["GRPOJobConfig.sharpness_kind"]),
    ({"tau": 1.5}, ["GRPOJobConfig.tau"]),
    ({"rewards": {"acuracy": 1.0}}, ["GRPOJobConfig.rewards", "did you mean 'accuracy'"]),
    ({"rewards": {"format": 1.0}}, ["GRPOJobConfig.abs_rewards", "'accuracy'", "not in rewards"]),
    ({"rewards": {"accuracy": 0.0}}, ["GRPOJobConfig.rewards", "positive weight"]),
    ({"abs_rewards": []}, ["GRPOJobConfig.abs_rewards", "'ap_grpo'"]),
    ({"per_device_train_batch_size": 6}, ["GRPOJobConfig.per_device_train_batch_size", "multiple of num_generations"]),
    ({"learning_rate": "fast"}, ["GRPOJobConfig.learning_rate must be a number", "'fast'"]),
    ({"max_steps": 2.5}, ["GRPOJobConfig.max_steps must be an integer"]),
    ({"lora": "yes"}, ["GRPOJobConfig.lora must be true/false"]),
    ({"loss_type": "ppo"}, ["GRPOJobConfig.loss_type", "'dapo'"]),
    ({"snra_operator": "relu"}, ["GRPOJobConfig.snra_operator"]),
    ({"mirror_twins": "dedup"}, ["GRPOJobConfig.mirror_twins must be one of ['drop', 'keep']", "'dedup'"]),
    ({"question_types": ["object_counts"]}, ["GRPOJobConfig.question_types", "did you mean 'object_count'"]),
    ({"adv_clip": 0.0}, ["GRPOJobConfig.adv_clip must be > 0"]),
    ({"max_samples": 0}, ["GRPOJobConfig.max_samples must be >= 1"]),
    ({"extra_trl_args": {"warmup_stesp": 0.1}}, ["GRPOJobConfig.extra_trl_args", "'warmup_stesp'", "warmup_steps"]),
    ({"extra_trl_args": {"beta": 0.1}}, ["GRPOJobConfig.extra_trl_args", "top-level key `beta"]),
]


@pytest.mark.parametrize("changes,expected", INVALID, ids=[",".join(c) for c, _ in INVALID])
def test_invalid_values_fail_naming_the_field(tmp_path, changes, expected):
    path = _write(tmp_path, {**BASE, **changes})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for text in expected:
        assert text in str(info.value), str(info.value)


def test_missing_required_key_and_wrong_job(tmp_path):
    with pytest.raises(ConfigError, match=r"GRPOJobConfig.model is required"):
        load_config(_write(tmp_path, {"dataset": "d", "output_dir": "o"}))
    with pytest.raises(ConfigError, match=r"job must be one of grpo, sft \(did you mean 'sft'\?\)"):
        load_config(_write(tmp_path, {**BASE, "job": "sf"}))
    with pytest.raises(ConfigError, match="is a grpo job config.*spatialrl train"):
        load_config(_write(tmp_path, BASE), job="sft")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="YAML mapping"):
        load_config(_write(tmp_path, [1, 2]))  # type: ignore[arg-type]


def test_sft_config_errors_name_the_field(tmp_path):
    base = {**BASE, "job": "sft"}
    cases = [({"think": "long"}, "SFTJobConfig.think"), ({"max_steps": 0}, "SFTJobConfig.max_steps must be >= 1"),
             ({"lora_dropout": 1.0}, "SFTJobConfig.lora_dropout"), ({"num_generations": 8}, "unknown key 'num_generations'"),
             ({"extra_trl_args": {"packingg": True}}, "did you mean 'packing'")]
    for changes, text in cases:
        with pytest.raises(ConfigError, match=text.replace("(", r"\(").replace(")", r"\)")):
            load_config(_write(tmp_path, {**base, **changes}))


def test_batch_rule_counts_processes(monkeypatch):
    # TRL's rule is on the global generation batch: 2 processes x 4 completions hold one group of 8.
    monkeypatch.setenv("WORLD_SIZE", "2")
    GRPOJobConfig(model="m", dataset="d", output_dir="o", per_device_train_batch_size=4)
    with pytest.raises(ConfigError, match="x 2 processes"):
        GRPOJobConfig(model="m", dataset="d", output_dir="o", per_device_train_batch_size=3)
    # Pairs must stay on one process: 4 completions per process are not even one group.
    with pytest.raises(ConfigError, match="per_device_train_batch_size"):
        GRPOJobConfig(model="m", dataset="d", output_dir="o", per_device_train_batch_size=4, mirror_pairs=True)


def test_defaults_are_smooth_operator_and_every_field_is_documented():
    cfg = GRPOJobConfig(model="m", dataset="d", output_dir="o")
    assert (cfg.advantage, cfg.alpha, cfg.adv_clip, cfg.num_generations, cfg.beta) == ("ap_grpo", 1.0, 1.5, 8, 0.02)
    assert cfg.rewards == {"accuracy": 0.9, "format": 0.1}
    for cls in (GRPOJobConfig, SFTJobConfig):
        for f in dataclasses.fields(cls):
            assert len(f.metadata.get("help", "")) > 10, f"{cls.__name__}.{f.name} has no help text"
        text = describe(cls)
        assert all(f.name in text for f in dataclasses.fields(cls))
    assert cfg.rewards is not GRPOJobConfig(model="m", dataset="d", output_dir="o").rewards  # no shared defaults


# -- overrides -----------------------------------------------------------------------------------


def test_overrides_parse_types(tmp_path):
    path = _write(tmp_path, BASE)
    cfg = load_config(path, [
        "max_steps=20", "learning_rate=2e-6", "lora=true", "adv_clip=null", "report_to=wandb",
        "question_types=[object_count, rel_direction]", "rewards.accuracy=0.8", "rewards.iou=0.1",
        "extra_trl_args.warmup_steps=0.1", "use_cpu=false", "alpha=2", "lora_target_modules=[q_proj, v_proj]",
    ])
    assert cfg.max_steps == 20 and type(cfg.max_steps) is int
    assert cfg.learning_rate == 2e-6 and type(cfg.learning_rate) is float
    assert cfg.lora is True and cfg.adv_clip is None and cfg.report_to == "wandb" and cfg.use_cpu is False
    assert cfg.question_types == ["object_count", "rel_direction"]
    assert cfg.rewards == {"accuracy": 0.8, "format": 0.1, "iou": 0.1}
    assert cfg.extra_trl_args == {"warmup_steps": 0.1}
    assert cfg.alpha == 2.0 and type(cfg.alpha) is float
    assert cfg.lora_target_modules == ["q_proj", "v_proj"]
    # an override can repair a file value
    bad = _write(tmp_path, {**BASE, "num_generations": 1}, "bad.yaml")
    assert load_config(bad, ["num_generations=4"]).num_generations == 4


def test_override_errors(tmp_path):
    path = _write(tmp_path, BASE)
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, ["max_steps"])
    with pytest.raises(ConfigError, match=r"unknown key 'max_step'.*did you mean 'max_steps'"):
        load_config(path, ["max_step=3"])
    with pytest.raises(ConfigError, match="k_max is not a mapping"):
        load_config(path, ["k_max.x=3"])
    with pytest.raises(ConfigError, match="GRPOJobConfig.num_generations"):
        load_config(path, ["num_generations=1"])
    assert parse_override("a.b= [1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("x=") == (["x"], None)


def test_apply_overrides_returns_a_new_validated_config():
    cfg = GRPOJobConfig(model="m", dataset="d", output_dir="o")
    new = apply_overrides(cfg, ["k_max=50", "sharpness_kind=linear"])
    assert (new.k_max, new.sharpness_kind, cfg.k_max) == (50.0, "linear", 100.0)
    assert new.sharpness_schedule()(100, 100) == 50.0
    with pytest.raises(ConfigError, match="GRPOJobConfig.k_max"):
        apply_overrides(cfg, ["k_max=0.5"])


# -- round trip and TRL arguments -------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [
    GRPOJobConfig(model="m", dataset="d", output_dir="o", mirror_pairs=True, gradient_accumulation_steps=2,
                  consistency_reward="accuracy", question_types=["object_count"], adv_clip=None, lora=True,
                  lora_target_modules=["q_proj"], extra_trl_args={"warmup_steps": 5}, use_cpu=True),
    SFTJobConfig(model="m", dataset="d", output_dir="o", think="empty", max_steps=7, max_length=None),
], ids=["grpo", "sft"])
def test_save_load_round_trip(tmp_path, cfg):
    path = save_config(cfg, tmp_path / "sub" / "saved.yaml")
    assert load_config(path) == cfg
    assert to_dict(cfg)["job"] == cfg.JOB
    assert "# " in path.read_text()  # help comments
    assert yaml.safe_load(dump_yaml(cfg, comments=False)) == to_dict(cfg)


def test_to_trl_args_build_trl_configs(tmp_path):
    from trl import GRPOConfig, SFTConfig

    cfg = load_config(CONFIGS / "demo.yaml", [f"output_dir={tmp_path}", "use_cpu=true", "bf16=true",
                                              "extra_trl_args.warmup_steps=0.1"])
    args = cfg.to_grpo_args()
    assert args["bf16"] is False and args["use_cpu"] is True, "bf16 is forced off on CPU"
    assert args["warmup_steps"] == 0.1
    grpo = GRPOConfig(**args)
    assert (grpo.num_generations, grpo.beta, grpo.loss_type, grpo.gradient_checkpointing) == (8, 1.0, "grpo", False)  # demo.yaml
    assert grpo.learning_rate == cfg.learning_rate and grpo.max_steps == cfg.max_steps
    assert cfg.lora_config() is None
    assert load_config(CONFIGS / "demo.yaml", ["lora=true"]).lora_config().r == 16

    sft_cfg = load_config(CONFIGS / "sft_demo.yaml", [f"output_dir={tmp_path}", "use_cpu=true"])
    sft = SFTConfig(**sft_cfg.to_sft_args())
    assert sft.completion_only_loss is True and sft.max_steps == sft_cfg.max_steps and not sft.bf16
    none_steps = apply_overrides(sft_cfg, ["max_steps=null"])
    assert none_steps.to_sft_args()["max_steps"] == -1


# -- the train command and import cost --------------------------------------------------------------


def _train_args(argv):
    import argparse

    from spatialrl.train import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli, parser.parse_args(argv)


def test_train_command_dry_run_list_keys_and_errors(capsys, tmp_path):
    cli, args = _train_args(["--config", str(CONFIGS / "demo.yaml"), "max_steps=7", "--dry-run"])
    assert cli.run(args) == 0
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and yaml.safe_load(out)["job"] == "grpo"

    cli, args = _train_args(["--list-keys"])
    assert cli.run(args) == 0 and "consistency_reward" in capsys.readouterr().out

    cli, args = _train_args(["--config", str(CONFIGS / "demo.yaml"), "num_generations=1"])
    assert cli.run(args) == 2
    assert "GRPOJobConfig.num_generations must be >= 2" in capsys.readouterr().err

    cli, args = _train_args(["--config", str(CONFIGS / "sft_demo.yaml"), "--dry-run"])
    assert cli.run(args) == 2 and "spatialrl sft" in capsys.readouterr().err
    cli, args = _train_args([])
    assert cli.run(args) == 2 and "--config is required" in capsys.readouterr().err


def test_train_command_calls_train_grpo(monkeypatch, capsys):
    from spatialrl.train import grpo

    calls = []
    monkeypatch.setattr(grpo, "train_grpo", lambda cfg, resume=False: calls.append((cfg, resume)) or {"steps": 1})
    cli, args = _train_args(["--config", str(CONFIGS / "demo.yaml"), "max_steps=3", "--resume"])
    monkeypatch.setattr(cli, "input_problem", lambda cfg: None)  # the recipe's runs/demo/* need not exist here
    assert cli.run(args) == 0
    (cfg, resume), = calls
    assert isinstance(cfg, GRPOJobConfig) and cfg.max_steps == 3 and resume is True


def test_train_package_import_is_light():
    code = ("import sys, spatialrl.train, spatialrl.train.config, spatialrl.train.cli, spatialrl.train.sft; "
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_commands_register_with_the_spatialrl_cli(monkeypatch, capsys):
    from spatialrl import cli

    wanted = [("sft", "spatialrl.train.sft"), ("train", "spatialrl.train.cli")]
    monkeypatch.setattr(cli, "COMMANDS", [c for c in cli.COMMANDS if c not in wanted] + wanted)
    assert cli.main(["train", "--config", str(CONFIGS / "demo.yaml"), "seed=3", "--dry-run"]) == 0
    assert "seed: 3" in capsys.readouterr().out
    assert cli.main(["sft", "--config", str(CONFIGS / "sft_demo.yaml"), "--dry-run"]) == 0
    assert "job: sft" in capsys.readouterr().out


def test_a_duplicate_key_in_a_recipe_is_refused(tmp_path, capsys):
    from spatialrl.cli import main

    path = tmp_path / "dup.yaml"
    path.write_text("job: grpo\nmax_steps: 5\nseed: 1\nmax_steps: 7\n")  # PyYAML alone keeps 7 silently
    with pytest.raises(ConfigError, match=r"duplicate key 'max_steps' \(first on line 2\)") as exc:
        load_config(path)
    assert str(path) in str(exc.value) and "line 4" in str(exc.value)
    nested = tmp_path / "nested.yaml"
    nested.write_text("rewards: {accuracy: 0.9, format: 0.1, accuracy: 0.5}\n")
    with pytest.raises(ConfigError, match="duplicate key 'accuracy'"):
        load_config(nested)
    assert main(["train", "--config", str(path), "--dry-run"]) == 2
    assert "duplicate key 'max_steps'" in capsys.readouterr().err
    from spatialrl.train.config import _yaml_load_unique

    # a key a YAML merge (<<) brings in may be overridden: that is not a duplicate
    assert _yaml_load_unique("a: &b {x: 1}\nc: {<<: *b, x: 2}\n") == {"a": {"x": 1}, "c": {"x": 2}}


def test_a_duplicate_key_in_an_override_is_refused_too():
    from spatialrl.train.config import parse_override

    with pytest.raises(ConfigError, match="duplicate key 'accuracy'"):
        parse_override("rewards={accuracy: 0.9, accuracy: 0.5}")
    assert parse_override("rewards={accuracy: 0.9, format: 0.1}") == (["rewards"], {"accuracy": 0.9, "format": 0.1})
    assert parse_override("model=a: b: c") == (["model"], "a: b: c")  # not YAML: kept as text
