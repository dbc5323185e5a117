"""``write_report``: gather a run's inputs, lay out the sections, render both templates, write the files.

``OUT/report.html`` and ``OUT/report.md`` are each written through a temporary file and a
rename; ``OUT/report_files/`` (the figures as PNG, for the Markdown) is built aside and renamed
in. Output is deterministic except the "Generated" line (which honours ``SOURCE_DATE_EPOCH``).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from spatialrl._fs import write_text_atomic
from spatialrl.report.document import Fig, Section
from spatialrl.report.gather import Inputs, load_inputs
from spatialrl.report.scores import (held_out_section, inputs_section, per_type_section, seeds_section, summary_section,
                                     sweep_section)
from spatialrl.report.training import training_sections


def build_document(inputs: Inputs) -> list[Section]:
    """The report's sections in reading order (Seeds only when metrics.json has per-seed scores)."""
    sections = [summary_section(inputs)]
    held_out = held_out_section(inputs)
    if held_out:
        sections.append(held_out)
    sections.append(per_type_section(inputs))
    seeds = seeds_section(inputs)
    if seeds:
        sections.append(seeds)
    sections += training_sections(inputs)
    sections += [sweep_section(inputs), inputs_section(inputs)]
    return sections


@dataclass
class ReportResult:
    html: Path
    markdown: Path
    files_dir: Path
    figures: list[str]
    missing: list[str]  # "path (consequence)" for each input not found


def _write_files_dir(files_dir: Path, figures: list[Fig]) -> None:
    """Replace ``files_dir`` with a fresh one holding ``figures`` (built aside, then renamed in)."""
    from spatialrl._fs import replace_dir

    tmp = files_dir.with_name(f".{files_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in figures:
        (tmp / f"{f.name}.png").write_bytes(f.png)
    replace_dir(tmp, files_dir)


def _generated_line(run_dir: Path) -> str:
    from spatialrl import __version__

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (_dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch and epoch.isdigit()
           else _dt.datetime.now(_dt.timezone.utc))
    return f"Generated {now:%Y-%m-%d %H:%M} UTC by spatialrl {__version__} from `{run_dir}`."


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 title: str | None = None) -> ReportResult:
    """Write ``report.html``, ``report.md`` and ``report_files/`` for ``run_dir`` into ``out`` (default: run_dir).

    Raises:
        ReportError: the run directory does not exist, holds none of the inputs, or one is malformed.
    """
    from spatialrl.report.render import render_html, render_markdown

    inputs = load_inputs(run_dir)
    root = Path(run_dir).resolve()
    out_dir = Path(out) if out is not None else Path(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = title or f"spatialrl run report: {root.name}"
    sections = build_document(inputs)
    figures = [b for s in sections for b in s.blocks if isinstance(b, Fig)]
    generated = _generated_line(root)
    files_dir = out_dir / "report_files"
    _write_files_dir(files_dir, figures)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md_path, render_markdown(title, generated, sections, files_dir.name))
    write_text_atomic(html_path, render_html(title, generated, sections))
    return ReportResult(html_path, md_path, files_dir, [f.name for f in figures],
                        [f"{' or '.join(looked)} ({consequence})" for _, looked, consequence in inputs.missing])
