"""The `spatialrl` command.

Each subcommand lives in its own module, which provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their subcommand is built, and they keep heavy imports (torch, datasets)
inside ``run`` so that ``spatialrl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spatialrl._extras import MissingExtraError, extra_for, missing_extra

# (command words, module). Groups ("data build", "data mirror") share a parent parser.
COMMANDS: list[tuple[str, str]] = [
    ("data build", "spatialrl.data.build_command"),
    ("data mirror", "spatialrl.data.mirror_text"),
    ("data vqasynth", "spatialrl.data.vqasynth_rows"),
    ("data import", "spatialrl.data.llava_import"),
    ("model tiny", "spatialrl.models.tiny"),
    ("pretrain", "spatialrl.eval.pretrain_eval"),  # trains (spatialrl.train.pretrain), then evaluates
    ("sft", "spatialrl.train.sft"),
    ("train", "spatialrl.train.cli"),
    ("plan", "spatialrl.train.plan_command"),
    ("eval run", "spatialrl.eval.runner"),
    ("eval score", "spatialrl.eval.score"),
    ("report", "spatialrl.report"),
    ("demo", "spatialrl.demo"),
    ("reproduce", "spatialrl.reproduce.command"),
    ("doctor", "spatialrl.doctor"),
]

GROUP_HELP = {
    "data": "build the synthetic spatial QA dataset, mirror an existing one, or split VQASynth dialogues",
    "model": "build models (a tiny Qwen2.5-VL for CPU work)",
    "eval": "run a model on a benchmark, or score a predictions file",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatialrl",
        description=(
            "RL from verifiable rewards for spatial reasoning in vision-language models: "
            "SNRA rewards with scheduled sharpness, AP-GRPO, and Spatial-GRPO mirror pairs."
        ),
    )
    from spatialrl import __version__

    parser.add_argument("--version", action="version", version=f"spatialrl {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for words, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        parts = words.split()
        # A PASSTHROUGH command hands the tokens it does not know to its own parser (TRL's);
        # prefix matching is off so that no TRL flag is read as an abbreviation of ours.
        own = {"add_help": False, "allow_abbrev": False} if getattr(module, "PASSTHROUGH", False) else {}
        if len(parts) == 1:
            sub = top.add_parser(parts[0], help=module.HELP, description=module.HELP, **own)
        else:
            group, name = parts
            if group not in groups:
                group_parser = top.add_parser(group, help=GROUP_HELP.get(group, ""))
                groups[group] = group_parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
                group_parser.set_defaults(_group_parser=group_parser)
            sub = groups[group].add_parser(name, help=module.HELP, description=module.HELP, **own)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run, _passthrough=bool(own), _own_parser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "_passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group_parser", None) or parser).print_help()
        return 0 if args.command is None else 2
    try:
        return int(run(args) or 0)
    except ModuleNotFoundError as exc:  # a heavy import inside run(): name the extra that provides it
        extra = extra_for(exc.name)
        if isinstance(exc, MissingExtraError) or extra is None:
            raise
        words = " ".join(w for w in (args.command, getattr(args, "subcommand", None)) if w)
        raise missing_extra(extra, exc, f"`spatialrl {words}`") from exc


if __name__ == "__main__":
    sys.exit(main())
