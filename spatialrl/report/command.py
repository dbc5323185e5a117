"""``spatialrl report RUN_DIR [--out DIR] [--title T]``: the command line of the report.

Exit status 2, with ``error: <file>: <field> ...`` on stderr and nothing written, when an input
is malformed; a ``missing:`` line on stdout for each input not found.
"""

from __future__ import annotations

import argparse
import sys

from spatialrl.report.gather import ReportError
from spatialrl.report.write import write_report

HELP = "write a run's report: HTML with embedded plots and a Markdown twin, from its metrics, logs and sweep"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="the run directory (metrics.json, grpo/log_history.jsonl, control/, sweep.json, ...)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where to write report.html, report.md and report_files/ (default: RUN_DIR)")
    parser.add_argument("--title", metavar="T", default=None,
                        help="the report's title (default: 'spatialrl run report: <run dir name>')")


def run(args: argparse.Namespace) -> int:
    try:
        result = write_report(args.run_dir, out=args.out, title=args.title)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for item in result.missing:
        print(f"missing: {item}")
    print(f"report: {result.html} and {result.markdown} ({len(result.figures)} plots in {result.files_dir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spatialrl report", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))
