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
