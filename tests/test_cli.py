"""The `spatialrl` command: help, version, doctor, and errors for unknown commands."""

import subprocess
import sys

import pytest

from spatialrl.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for words, _ in COMMANDS:
        assert words.split()[0] in out


def test_console_script_runs_and_prints_help():
    result = subprocess.run([sys.executable, "-m", "spatialrl", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "data" in result.stdout and "doctor" in result.stdout


def test_group_without_subcommand_prints_its_help(capsys):
    assert main(["data"]) == 2
    assert "build" in capsys.readouterr().out


def test_unknown_command_is_an_error():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_doctor_reports_pins(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "trl" in out


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from spatialrl.data.build import BuildConfig, build_dataset

    out = tmp_path_factory.mktemp("cli") / "data"
    build_dataset(str(out), BuildConfig(scenes=2, seed=0), progress=False)
    return out


@pytest.mark.parametrize("command", ["train", "sft"])
@pytest.mark.parametrize("override,expected", [
    ("dataset=nope", r"Arguments\.dataset: dataset 'nope' is not a directory; build one with `spatialrl data build"),
    ("model=./missing", r"Arguments\.model: './missing': no such directory"),
    ("model=DATASET", r"Arguments\.model: '.*' is a directory without config\.json"),
])
def test_train_with_a_missing_dataset_or_model_is_an_error_not_a_traceback(small_dataset, tmp_path, capsys, command,
                                                                             override, expected):
    import re
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / ("demo.yaml" if command == "train" else "sft_demo.yaml")
    override = override.replace("DATASET", str(small_dataset))
    args = [command, "--config", str(config), f"dataset={small_dataset}", "model=./missing",
            f"output_dir={tmp_path / 'out'}", override]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.search(expected, err) and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "sft"])
def test_train_on_a_truncated_shard_names_the_file(small_dataset, tmp_path, capsys, command):
    """An interrupted copy leaves a shard cut short: the error names it instead of a bare Arrow traceback."""
    import shutil
    from pathlib import Path

    from spatialrl.data.load import load_split

    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    shard = sorted((data / "data").glob("train-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"{shard.name} is not a readable parquet file.*truncated"):
        load_split(data, "train")
    config = Path(__file__).resolve().parents[1] / "configs" / ("demo.yaml" if command == "train" else "sft_demo.yaml")
    shipped = Path(__file__).resolve().parents[1] / "spatialrl" / "assets" / "tiny-spatial-vlm"
    assert main([command, "--config", str(config), f"dataset={data}", f"model={shipped}",
                 f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and shard.name in err and len(err.strip().splitlines()) == 1, err
