"""Re-measuring the papers' claims: declarative grids, seeds, verdicts, docs/RESULTS.md.

- :mod:`~spatialrl.reproduce.grid`: ``claims.yaml`` (the claims as grids of cells) read and
  validated;
- :mod:`~spatialrl.reproduce.runner`: the shared stages and every (cell, seed), resumable;
- :mod:`~spatialrl.reproduce.cell_metrics`: one cell's metrics from its files;
- :mod:`~spatialrl.reproduce.verdicts`: seeds aggregated, paired differences, the verdict rule;
- :mod:`~spatialrl.reproduce.results_doc`: the results file and its Markdown;
- :mod:`~spatialrl.reproduce.command`: ``spatialrl reproduce``.
"""
