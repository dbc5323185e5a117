"""`spatialrl doctor`: check that the installed environment matches the pinned, tested set."""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re

HELP = "check installed package versions against the pinned set, and what hardware is visible"


def _pinned() -> dict[str, str]:
    """Exact pins (``name==version``) from this distribution's metadata."""
    pins: dict[str, str] = {}
    try:
        requires = metadata.requires("spatialrl") or []
    except metadata.PackageNotFoundError:
        return pins
    for req in requires:  # the core's pins and every extra's (``name==version; extra == "train"``)
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)", req)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any pin is not met")


def run(args: argparse.Namespace) -> int:
    problems = 0
    print("package                      pinned       installed")
    for name, want in sorted(_pinned().items()):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = "missing"
        ok = have.split("+")[0] == want
        problems += not ok
        print(f"{name:28} {want:12} {have}{'' if ok else '   <-- differs'}")
    try:
        metadata.version("torchvision")
        print("torchvision is installed: it is not needed and its CUDA wheels conflict with the CPU torch pin")
        problems += 1
    except metadata.PackageNotFoundError:
        pass
    import torch

    print(f"torch threads: {torch.get_num_threads()}; CUDA available: {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}; bf16 supported: {torch.cuda.is_bf16_supported()}")
    print("all pins met" if problems == 0 else f"{problems} problem(s) found")
    return 1 if (problems and args.strict) else 0
