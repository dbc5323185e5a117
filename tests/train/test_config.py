"""Job configs, TRL-native: every shipped recipe loads through TRL's parser and carries the
papers' values; every GRPOConfig field is set by its own name on the command line; invalid
values fail naming the field; save/load round-trips; the train command's dry run prints the
resolved job and the plan."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spatialrl.train.config import (
    ConfigError,
    Job,
    SpatialGRPOArguments,
    SpatialSFTArguments,
    apply_overrides,
    describe,
    dump_yaml,
    load_config,
    make_job,
    parse_override,
    replace_job,
    save_config,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))
SMOOTHOP = ["smoothop_qwen2_5_vl_3b.yaml", "smoothop_qwen2_5_vl_7b.yaml"]
GPU_RECIPES = [*SMOOTHOP, "svqa_r1_qwen2_5_vl_3b.yaml", "combined_qwen2_5_vl_3b.yaml"]


def _write(tmp_path: Path, data: dict, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


BASE = {"job": "grpo", "model": "m", "dataset": "d", "output_dir": "o"}


# -- shipped recipes -------------------------------------------------------------------------


def test_the_recipes_are_shipped():
    names = {p.name for p in RECIPES}
    assert {"demo.yaml", "sft_demo.yaml", *GPU_RECIPES} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_loads_validates_and_names_its_launch_command(path):
    from trl import GRPOConfig, SFTConfig

    job = load_config(path)
    assert isinstance(job, Job)
    assert isinstance(job.trl, SFTConfig if job.kind == "sft" else GRPOConfig)
    assert isinstance(job.spatial, SpatialSFTArguments if job.kind == "sft" else SpatialGRPOArguments)
    header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
    command = "spatialrl sft" if job.kind == "sft" else "spatialrl train"
    assert command in header and f"configs/{path.name}" in header, "the header comment gives the launch command"
    again = load_config(path, job=job.kind)
    assert to_dict(again) == to_dict(job)


@pytest.mark.parametrize("name", SMOOTHOP)
def test_smooth_operator_recipes_have_the_paper_values(name):
    job = load_config(CONFIGS / name)
    cfg, trl = job.spatial, job.trl
    assert cfg.advantage == "ap_grpo" and trl.num_generations == 8
    assert (trl.learning_rate, trl.weight_decay, trl.beta) == (1e-6, 0.01, 0.02)
    assert (cfg.sharpness_kind, cfg.k_min, cfg.k_max, cfg.tau, cfg.steepness) == ("sigmoid", 1.0, 100.0, 0.5, 10.0)
    assert (cfg.alpha, cfg.adv_clip) == (1.0, 1.5)
    assert cfg.rewards == {"accuracy": 0.9, "format": 0.1} and cfg.abs_rewards == ["accuracy"]
    assert not cfg.mirror_pairs and cfg.consistency_reward is None
    assert cfg.mirror_twins == "drop", "one epoch trains each question once, not once per view"
    assert ("7B" in cfg.model) == ("7b" in name)
    schedule = cfg.sharpness_schedule()
    assert schedule(0, 100) < 2 and schedule(100, 100) > 99


@pytest.mark.parametrize("name", GPU_RECIPES)
def test_gpu_recipes_use_vllm_one_pixel_budget_and_a_plan(name):
    job = load_config(CONFIGS / name)
    assert job.trl.use_vllm and job.trl.vllm_mode == "colocate"
    assert job.spatial.max_pixels // (28 * 28) >= 256, "real-resolution frames: at least 256 image tokens"
    assert f"--max-pixels {job.spatial.max_pixels}" in (CONFIGS / name).read_text(), "the data build uses the same budget"
    assert job.spatial.distributed in ("zero3", "fsdp2") and job.spatial.num_processes == 8
    assert job.requested_bf16, "the plan sizes the recipe's bf16 even on a CPU machine"


def test_svqa_r1_recipe_has_the_paper_values():
    job = load_config(CONFIGS / "svqa_r1_qwen2_5_vl_3b.yaml")
    cfg, trl = job.spatial, job.trl
    assert cfg.advantage == "grpo" and cfg.rewards == {"format": 0.5, "semantic": 0.5}
    assert cfg.mirror_pairs and cfg.consistency_reward == "semantic"
    assert (cfg.consistency_threshold, cfg.consistency_eta) == (0.5, 1.0)
    assert (trl.num_generations, trl.max_completion_length) == (8, 2048)
    assert (trl.per_device_train_batch_size, trl.gradient_accumulation_steps) == (8, 2)


def test_combined_and_demo_recipes_combine_everything():
    for name in ("combined_qwen2_5_vl_3b.yaml", "demo.yaml"):
        job = load_config(CONFIGS / name)
        cfg, trl = job.spatial, job.trl
        assert cfg.advantage == "ap_grpo" and "accuracy" in cfg.rewards and cfg.abs_rewards == ["accuracy"]
        assert cfg.mirror_pairs and cfg.consistency_reward == "accuracy"
        prompts = trl.per_device_train_batch_size * trl.gradient_accumulation_steps // trl.num_generations
        assert prompts % 2 == 0
    demo = load_config(CONFIGS / "demo.yaml")
    assert 4 <= demo.trl.num_generations <= 8 and demo.trl.max_completion_length <= 64
    assert demo.spatial.model.startswith("runs/demo/") and demo.spatial.dataset.startswith("runs/demo/")
    assert not demo.trl.bf16 and not demo.spatial.lora
    sft = load_config(CONFIGS / "sft_demo.yaml")
    assert sft.kind == "sft" and sft.trl.output_dir == demo.spatial.model


ACCELERATE = {"ddp.yaml": ("MULTI_GPU", None), "zero2.yaml": ("DEEPSPEED", 2), "zero3.yaml": ("DEEPSPEED", 3),
              "fsdp2.yaml": ("FSDP", None)}


@pytest.mark.parametrize("name", sorted(ACCELERATE))
def test_accelerate_configs_are_valid(name):
    from accelerate.commands.config.config_args import load_config_from_file

    path = CONFIGS / "accelerate" / name
    cfg = load_config_from_file(str(path))
    kind, stage = ACCELERATE[name]
    assert cfg.mixed_precision == "bf16" and cfg.num_processes == 8
    assert str(cfg.distributed_type).endswith(kind)
    if stage is not None:
        assert cfg.deepspeed_config["zero_stage"] == stage and "pip install deepspeed" in path.read_text()
    if name == "fsdp2.yaml":
        assert int(cfg.fsdp_config["fsdp_version"]) == 2
        assert "Qwen2_5_VLDecoderLayer" in cfg.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]


def test_the_multi_node_example_is_valid_and_says_how_to_launch():
    from accelerate.commands.config.config_args import load_config_from_file

    path = CONFIGS / "accelerate" / "zero3_multinode.yaml"
    cfg = load_config_from_file(str(path))
    assert (cfg.num_machines, cfg.num_processes, cfg.deepspeed_config["zero_stage"]) == (2, 16, 3)
    assert "--machine_rank" in path.read_text() and "--main_process_ip" in path.read_text()


# -- the command line: every TRL field by its own name ---------------------------------------


def test_every_grpo_config_field_is_a_flag_of_the_train_command():
    from trl import GRPOConfig

    from spatialrl.train.config.recipe import job_parser

    flags = {action.dest for action in job_parser("grpo")._actions}
    missing = [f.name for f in dataclasses.fields(GRPOConfig) if f.init and f.name not in flags]
    assert not missing, f"GRPOConfig fields TRL's parser does not take: {missing}"
    assert {f.name for f in dataclasses.fields(SpatialGRPOArguments)} <= flags


def test_grpo_config_fields_are_overridden_by_their_trl_names():
    job = load_config(CONFIGS / "smoothop_qwen2_5_vl_3b.yaml", [
        "--learning_rate", "2e-6", "--num_generations", "4", "--beta", "0.04", "--warmup_steps", "5",
        "--lr_scheduler_type", "cosine", "--vllm_mode", "server", "--temperature", "0.7", "--max_completion_length",
        "512", "--top_p", "0.9", "--per_device_train_batch_size", "4",
    ])
    trl = job.trl
    assert (trl.learning_rate, trl.num_generations, trl.beta, trl.warmup_steps) == (2e-6, 4, 0.04, 5)
    assert str(getattr(trl.lr_scheduler_type, "value", trl.lr_scheduler_type)) == "cosine"
    assert (trl.vllm_mode, trl.temperature, trl.max_completion_length, trl.top_p) == ("server", 0.7, 512, 0.9)
    assert job.spatial.k_max == 100.0, "spatialrl's fields keep the recipe's values"
    # the paper's values stay where the command line says nothing
    assert load_config(CONFIGS / "smoothop_qwen2_5_vl_3b.yaml").trl.learning_rate == 1e-6


def test_spatialrl_fields_are_flags_too_and_flags_win_over_key_value():
    job = load_config(CONFIGS / "demo.yaml", [
        "--k_max", "50", "--question_types", "object_count", "rel_direction", "--rewards",
        "{accuracy: 0.8, format: 0.2}", "--mirror_pairs", "false", "--consistency_reward", "null",
        "--stratify_pairs_by", "null", "k_max=20", "--lora_target_modules", "q_proj", "v_proj",
    ])
    s = job.spatial
    assert s.k_max == 50.0 and s.question_types == ["object_count", "rel_direction"]
    assert s.rewards == {"accuracy": 0.8, "format": 0.2} and not s.mirror_pairs and s.consistency_reward is None
    assert s.lora_target_modules == ["q_proj", "v_proj"]


# -- validation ------------------------------------------------------------------------------

INVALID = [
    # (overrides of BASE, substrings the message must contain)
    ({"learning_rat": 1e-6}, ["unknown key 'learning_rat'", "did you mean 'learning_rate'", "--help"]),
    ({"extra_trl_args": {"warmup_steps": 0.1}}, ["extra_trl_args", "own name", "warmup_steps: 0.05"]),
    ({"reward_weights": [0.5, 0.5]}, ["reward_weights", "rewards: {accuracy"]),
    ({"advantage": "apgrpo"}, ["SpatialGRPOArguments.advantage", "'ap_grpo'", "register_advantage"]),
    ({"num_generations": 1}, ["trl.GRPOConfig", "at least 2 generations"]),
    ({"mirror_pairs": True, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1},
     ["gradient_accumulation_steps", "must be even", "pairs are never split"]),
    ({"consistency_reward": "accuracy"}, ["SpatialGRPOArguments.consistency_reward", "mirror_pairs: true"]),
    ({"stratify_pairs_by": "question_type"}, ["SpatialGRPOArguments.stratify_pairs_by", "mirror_pairs: true"]),
    ({"mirror_pairs": True, "gradient_accumulation_steps": 2, "consistency_reward": "semantic"},
     ["SpatialGRPOArguments.consistency_reward", "not in rewards"]),
    ({"k_min": 10.0, "k_max": 5.0}, ["SpatialGRPOArguments.k_max", "must be >= k_min"]),
    ({"sharpness_kind": "fixed"}, ["SpatialGRPOArguments.k_max", "k_min == k_max"]),
    ({"sharpness_kind": "cosine"}, ["SpatialGRPOArguments.sharpness_kind"]),
    ({"tau": 1.5}, ["SpatialGRPOArguments.tau"]),
    ({"rewards": {"acuracy": 1.0}}, ["SpatialGRPOArguments.rewards", "did you mean 'accuracy'"]),
    ({"rewards": {"format": 1.0}}, ["SpatialGRPOArguments.abs_rewards", "'accuracy'", "not in rewards"]),
    ({"rewards": {"accuracy": 0.0}}, ["SpatialGRPOArguments.rewards", "positive weight"]),
    ({"abs_rewards": []}, ["SpatialGRPOArguments.abs_rewards", "'ap_grpo'"]),
    ({"per_device_train_batch_size": 6}, ["trl.GRPOConfig", "divisible by num_generations"]),
    ({"lora_r": 0}, ["SpatialGRPOArguments.lora_r must be >= 1"]),
    ({"loss_type": "ppo"}, ["GRPOConfig.loss_type", "'dapo'"]),
    ({"snra_operator": "relu"}, ["SpatialGRPOArguments.snra_operator"]),
    ({"mirror_twins": "dedup"}, ["SpatialGRPOArguments.mirror_twins must be one of ['drop', 'keep']", "'dedup'"]),
    ({"question_types": ["object_counts"]}, ["SpatialGRPOArguments.question_types", "did you mean 'object_count'"]),
    ({"adv_clip": 0.0}, ["SpatialGRPOArguments.adv_clip must be > 0"]),
    ({"max_samples": 0}, ["SpatialGRPOArguments.max_samples must be >= 1"]),
    ({"max_pixels": 100}, ["SpatialGRPOArguments.max_pixels must be >= 784"]),
    ({"min_pixels": 200704, "max_pixels": 100352}, ["SpatialGRPOArguments.max_pixels", "must be >= min_pixels"]),
    ({"distributed": "zero4"}, ["SpatialGRPOArguments.distributed", "'zero3'"]),
    ({"attn_implementation": "flash"}, ["SpatialGRPOArguments.attn_implementation", "'sdpa'"]),
    ({"num_processes": 6, "num_nodes": 4}, ["SpatialGRPOArguments.num_processes", "multiple of num_nodes"]),
]


@pytest.mark.parametrize("changes,expected", INVALID, ids=[",".join(c) for c, _ in INVALID])
def test_invalid_values_fail_naming_the_field(tmp_path, changes, expected):
    path = _write(tmp_path, {**BASE, **changes})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for text in expected:
        assert text in str(info.value), str(info.value)
    assert str(path) in str(info.value), "the message names the recipe"


def test_missing_required_key_and_wrong_job(tmp_path):
    with pytest.raises(ConfigError, match="model"):
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
    cases = [({"think": "long"}, "SpatialSFTArguments.think"),
             ({"lora_dropout": 1.0}, "SpatialSFTArguments.lora_dropout"),
             ({"num_generations": 8}, "unknown key 'num_generations'"),
             ({"packingg": True}, "did you mean 'packing'"),
             ({"completion_only_loss": False}, "answer only")]
    for changes, text in cases:
        with pytest.raises(ConfigError, match=text.replace("(", r"\(").replace(")", r"\)")):
            load_config(_write(tmp_path, {**base, **changes}))


def test_defaults_are_smooth_operator_and_every_field_is_documented():
    cfg = SpatialGRPOArguments(model="m", dataset="d")
    assert (cfg.advantage, cfg.alpha, cfg.adv_clip) == ("ap_grpo", 1.0, 1.5)
    assert cfg.rewards == {"accuracy": 0.9, "format": 0.1}
    for cls in (SpatialGRPOArguments, SpatialSFTArguments):
        for f in dataclasses.fields(cls):
            assert len(f.metadata.get("help", "")) > 10, f"{cls.__name__}.{f.name} has no help text"
        text = describe(cls)
        assert all(f.name in text for f in dataclasses.fields(cls))
    assert cfg.rewards is not SpatialGRPOArguments(model="m", dataset="d").rewards  # no shared defaults


def test_a_cpu_machine_turns_bf16_off_and_says_so(monkeypatch):
    from spatialrl.train.config import recipe

    monkeypatch.setattr(recipe, "_cuda_available", lambda: False)
    job = load_config(CONFIGS / "smoothop_qwen2_5_vl_3b.yaml")
    assert not job.trl.bf16 and job.trl.use_cpu and job.requested_bf16
    assert any("bf16: false" in note for note in job.adjusted)
    monkeypatch.setattr(recipe, "_cuda_available", lambda: True)
    assert make_job("grpo", model="m", dataset="d", output_dir="o", bf16=False).adjusted == []


# -- overrides -----------------------------------------------------------------------------------


def test_overrides_parse_types(tmp_path):
    path = _write(tmp_path, BASE)
    job = load_config(path, [
        "max_steps=20", "learning_rate=2e-6", "lora=true", "adv_clip=null", "report_to=wandb",
        "question_types=[object_count, rel_direction]", "rewards.accuracy=0.8", "rewards.iou=0.1",
        "warmup_steps=0.1", "alpha=2", "lora_target_modules=[q_proj, v_proj]",
    ])
    s, t = job.spatial, job.trl
    assert t.max_steps == 20 and type(t.max_steps) is int
    assert t.learning_rate == 2e-6 and type(t.learning_rate) is float
    assert s.lora is True and s.adv_clip is None and "wandb" in t.report_to
    assert s.question_types == ["object_count", "rel_direction"]
    assert s.rewards == {"accuracy": 0.8, "format": 0.1, "iou": 0.1}
    assert t.warmup_steps == 0.1
    assert s.alpha == 2.0 and type(s.alpha) is float
    assert s.lora_target_modules == ["q_proj", "v_proj"]
    # an override can repair a file value
    bad = _write(tmp_path, {**BASE, "num_generations": 1}, "bad.yaml")
    assert load_config(bad, ["num_generations=4", "per_device_train_batch_size=8"]).trl.num_generations == 4


def test_override_errors(tmp_path):
    path = _write(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"unknown key 'max_step'.*did you mean 'max_steps'"):
        load_config(path, ["max_step=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'max_stepz'"):
        load_config(path, ["--max_stepz", "3"])
    with pytest.raises(ConfigError, match=r"unknown key 'max_step'"):  # no abbreviations: a prefix is a typo
        load_config(path, ["--max_step", "3"])
    with pytest.raises(ConfigError, match="k_max is not a mapping"):
        load_config(path, ["k_max.x=3"])
    with pytest.raises(ConfigError, match="at least 2 generations"):
        load_config(path, ["--num_generations", "1"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("max_steps")
    assert parse_override("a.b= [1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("x=") == (["x"], None)


def test_apply_overrides_and_replace_return_new_validated_jobs():
    job = make_job("grpo", model="m", dataset="d", output_dir="o")
    new = apply_overrides(job, ["k_max=50", "--sharpness_kind", "linear"])
    assert (new.spatial.k_max, new.spatial.sharpness_kind, job.spatial.k_max) == (50.0, "linear", 100.0)
    assert new.spatial.sharpness_schedule()(100, 100) == 50.0
    with pytest.raises(ConfigError, match="SpatialGRPOArguments.k_max"):
        apply_overrides(job, ["k_max=0.5"])
    moved = replace_job(job, output_dir="elsewhere", k_max=30.0)
    assert moved.trl.output_dir == "elsewhere" and moved.spatial.k_max == 30.0 and job.trl.output_dir == "o"


# -- round trip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,fields", [
    ("grpo", dict(model="m", dataset="d", output_dir="o", mirror_pairs=True, gradient_accumulation_steps=2,
                  consistency_reward="accuracy", question_types=["object_count"], adv_clip=None, lora=True,
                  lora_target_modules=["q_proj"], warmup_steps=5, use_vllm=True, max_pixels=200704)),
    ("sft", dict(model="m", dataset="d", output_dir="o", think="empty", max_steps=7, max_length=None)),
], ids=["grpo", "sft"])
def test_save_load_round_trip(tmp_path, kind, fields):
    job = make_job(kind, **fields)
    path = save_config(job, tmp_path / "sub" / "saved.yaml")
    again = load_config(path)
    assert to_dict(again) == to_dict(job) and to_dict(job)["job"] == kind
    assert again.trl.to_dict() == job.trl.to_dict()
    assert "# " in path.read_text()  # help comments
    assert yaml.safe_load(dump_yaml(job, comments=False)) == to_dict(job)


# -- the train command ---------------------------------------------------------------------------


def test_train_dry_run_prints_the_resolved_job_and_the_plan(capsys):
    from spatialrl.cli import main

    assert main(["train", "--config", str(CONFIGS / "smoothop_qwen2_5_vl_3b.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "use_vllm: true" in out and "max_pixels: 401408" in out
    assert "image tokens per sample" in out and "512" in out
    assert "peak per GPU" in out and "GiB" in out


def test_plan_command_warns_when_the_gpu_is_too_small(capsys):
    from spatialrl.cli import main

    assert main(["plan", "--config", str(CONFIGS / "smoothop_qwen2_5_vl_7b.yaml"), "--num_processes", "1",
                 "--distributed", "ddp", "--gpu_memory_gib", "24"]) == 0
    out = capsys.readouterr().out
    assert "use_vllm: true" in out and "warning" in out and "24 GiB" in out


def test_train_command_dry_run_list_keys_help_and_errors(capsys):
    from spatialrl.cli import main

    assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "max_steps=7", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and "job: grpo" in out

    assert main(["train", "--list-keys"]) == 0 and "consistency_reward" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--learning_rate" in out and "--use_vllm" in out and "--k_max" in out

    assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "--num_generations", "1"]) == 2
    assert "at least 2 generations" in capsys.readouterr().err
    assert main(["train", "--config", str(CONFIGS / "sft_demo.yaml"), "--dry-run"]) == 2
    assert "spatialrl sft" in capsys.readouterr().err
    assert main(["train"]) == 2 and "--config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "build", "--no-such-flag"])  # other commands still refuse unknown flags


def test_train_command_calls_train_grpo(monkeypatch, capsys):
    from spatialrl.cli import main
    from spatialrl.train import cli, grpo

    calls = []
    monkeypatch.setattr(grpo, "train_grpo", lambda job, resume=False: calls.append((job, resume)) or {"steps": 1})
    monkeypatch.setattr(cli, "input_problem", lambda job: None)  # the recipe's runs/demo/* need not exist here
    assert main(["train", "--config", str(CONFIGS / "demo.yaml"), "--max_steps", "3", "--resume"]) == 0
    (job, resume), = calls
    assert isinstance(job, Job) and job.trl.max_steps == 3 and resume is True


# -- the pixel budget -------------------------------------------------------------------------------


def test_a_recipe_whose_pixel_budget_differs_from_its_data_is_refused(world_dataset_dir, tiny_model_dir, capsys):
    from spatialrl.cli import main
    from spatialrl.data.load import dataset_pixel_budget

    recorded = dataset_pixel_budget(world_dataset_dir)
    assert recorded is not None and recorded["max_pixels"] > 0, "the build records its pixel budget"
    args = ["train", "--config", str(CONFIGS / "demo.yaml"), "--model", tiny_model_dir, "--dataset", world_dataset_dir,
            "--max_pixels", "200704"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pixel budget mismatch" in err and "200704" in err and str(recorded["max_pixels"]) in err


def test_train_package_import_is_light():
    code = ("import sys, spatialrl.train, spatialrl.train.config, spatialrl.train.cli, spatialrl.train.sft, "
            "spatialrl.train.plan_command; "
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_commands_register_with_the_spatialrl_cli(monkeypatch, capsys):
    from spatialrl import cli

    wanted = [("sft", "spatialrl.train.sft"), ("train", "spatialrl.train.cli"), ("plan", "spatialrl.train.plan_command")]
    monkeypatch.setattr(cli, "COMMANDS", [c for c in cli.COMMANDS if c not in wanted] + wanted)
    assert cli.main(["train", "--config", str(CONFIGS / "demo.yaml"), "seed=3", "--dry-run"]) == 0
    assert "seed: 3" in capsys.readouterr().out
    assert cli.main(["sft", "--config", str(CONFIGS / "sft_demo.yaml"), "--dry-run", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "job: sft" in out and "seed: 4" in out


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
