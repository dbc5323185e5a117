"""``spatialrl data build``: the synthetic world (:mod:`.build`) or real scans (:mod:`.scan_build`).

One command, two builders: ``--source synthetic`` (the default, the CPU test bed) renders
procedural rooms; ``--source scannet`` / ``arkitscenes`` reads a real-scan dataset from
``--root``. Both write the same schema (:mod:`spatialrl.data.schema`) and layout.
"""

from __future__ import annotations

import argparse

from spatialrl.data import build, scan_build

HELP = ("build a spatial QA dataset (mirror-paired views, parquet with embedded images) from the synthetic world "
        "or from real scans (--source scannet|arkitscenes --root DIR)")  # fmt: skip

__all__ = ["HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    build.add_arguments(parser)
    scan_build.add_arguments(parser)


def recipe_max_pixels(path: str) -> int:
    """A training recipe's ``max_pixels`` (read as YAML, without loading the training stack)."""
    from pathlib import Path

    import yaml

    recipe = Path(path)
    if not recipe.is_file():
        raise ValueError(f"--pixels-from: recipe {path!r} not found")
    try:
        data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"--pixels-from: {path} is not valid YAML ({exc})") from None
    value = data.get("max_pixels") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"--pixels-from: {path} sets no max_pixels (got {value!r}); add `max_pixels: N` to the recipe "
                         "or give --max-pixels N")
    return value


def run(args: argparse.Namespace) -> int:
    import sys

    if getattr(args, "pixels_from", None):
        if getattr(args, "source", "synthetic") == "synthetic":
            print("error: --pixels-from is for real scans (--source scannet|arkitscenes); the synthetic world's budget "
                  "is --image-size squared", file=sys.stderr)
            return 2
        try:
            wanted = recipe_max_pixels(args.pixels_from)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.max_pixels is not None and args.max_pixels != wanted:
            print(f"error: --max-pixels {args.max_pixels} differs from max_pixels {wanted} of {args.pixels_from}; give "
                  "one of them", file=sys.stderr)
            return 2
        args.max_pixels = wanted
    if getattr(args, "source", "synthetic") != "synthetic":
        return scan_build.run(args)
    return build.run(args)
