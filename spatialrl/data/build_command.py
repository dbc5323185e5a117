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


def run(args: argparse.Namespace) -> int:
    if getattr(args, "source", "synthetic") != "synthetic":
        return scan_build.run(args)
    return build.run(args)
