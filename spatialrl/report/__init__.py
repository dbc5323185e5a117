"""``spatialrl report RUN_DIR``: one run's results as a page to look at (HTML) and a Markdown twin.

Reads what exists in ``RUN_DIR`` (the layout ``spatialrl demo`` writes; see ``docs/report.md``):
``metrics.json``, the GRPO and SFT-control log histories, a checkpoint sweep and the GRPO job's
config. Writes ``OUT/report.html`` (self-contained: CSS inline, every plot a base64 PNG data URI,
a Content-Security-Policy that forbids any request) and ``OUT/report.md`` (plots as PNG files in
``OUT/report_files/``). ``OUT`` is ``RUN_DIR`` unless ``--out`` says otherwise. A missing input
skips its part with a note in the report and a ``missing:`` line on stdout; a malformed one is an
error naming the file and the field (exit status 2, nothing written).

The package, in the order the data flows:

- ``gather.py``: find and validate the inputs (``load_inputs``, ``ReportError``);
- ``document.py``: the report as sections of blocks, and the number formatting they share;
- ``scores.py`` and ``training.py``: the sections, from the scores and from the training logs;
- ``plots.py``: the figures (matplotlib to PNG bytes);
- ``render.py`` with ``templates/``: HTML and Markdown from jinja2 templates;
- ``write.py``: ``write_report``, which runs all of the above and writes the files;
- ``command.py``: the command line (``HELP``, ``add_arguments``, ``run``, ``main``).
"""

from spatialrl.report.command import HELP, add_arguments, main, run
from spatialrl.report.gather import ReportError, load_inputs
from spatialrl.report.write import ReportResult, write_report

__all__ = ["HELP", "ReportError", "ReportResult", "add_arguments", "load_inputs", "main", "run", "write_report"]
