"""Writing the mirrored dataset: parquet shards, the report, the dataset card."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from spatialrl.data.mirror_text.reasons import REASONS, MirrorInputError

__all__ = ["ShardWriter", "dataset_card", "prepare_out", "safe_url", "write_json_atomic"]


_OUR_FILES = ("README.md", "mirror_report.json", "skipped.jsonl")


class ShardWriter:
    """Parquet shards ``data/<split>-NNNNN-of-MMMMM.parquet`` with Hugging Face features."""

    def __init__(self, out: Path, split: str, features: Any, max_rows: int) -> None:
        self.dir = out / "data"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.split = split
        self.features = features
        self.schema = features.arrow_schema
        self.max_rows = max_rows
        self.paths: list[Path] = []
        self._writer: Any = None
        self._rows_in_shard = 0
        self.rows = 0

    def _open(self) -> None:
        import pyarrow.parquet as pq

        path = self.dir / f".{self.split}-{len(self.paths):05d}.parquet.partial"
        self.paths.append(path)
        self._writer = pq.ParquetWriter(str(path), self.schema)
        self._rows_in_shard = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        while rows:
            if self._writer is None or self._rows_in_shard >= self.max_rows:
                self._close_current()
                self._open()
            room = self.max_rows - self._rows_in_shard
            # keep pairs together in a shard: room is even because max_rows is even
            chunk, rows = rows[:room], rows[room:]
            batch = {name: [r.get(name) for r in chunk] for name in self.features}
            table = pa.Table.from_pydict(self.features.encode_batch(batch), schema=self.schema)
            self._writer.write_table(table)
            self._rows_in_shard += len(chunk)
            self.rows += len(chunk)

    def _close_current(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        """Drop the partial shards (after an error)."""
        self._close_current()
        for path in self.paths:
            path.unlink(missing_ok=True)
        self.paths = []

    def close(self) -> list[Path]:
        if not self.paths:
            self._open()  # an empty dataset still has its schema
        self._close_current()
        total = len(self.paths)
        final = []
        for i, path in enumerate(self.paths):
            target = self.dir / f"{self.split}-{i:05d}-of-{total:05d}.parquet"
            os.replace(path, target)
            final.append(target)
        return final


def prepare_out(out: Path, overwrite: bool) -> None:
    existing = [out / n for n in _OUR_FILES if (out / n).exists()]
    data = out / "data"
    shards = sorted(data.glob("*.parquet")) + sorted(data.glob(".*.parquet.partial")) if data.is_dir() else []
    if (existing or shards) and not overwrite:
        raise MirrorInputError(f"{out}: already holds a mirrored dataset; pass --overwrite to replace it")
    for p in existing + shards:
        p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    from spatialrl._fs import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def dataset_card(report: dict[str, Any], split: str) -> str:
    skipped = "\n".join(
        f"| `{reason}` | {n} | {REASONS.get(reason, '')} |" for reason, n in sorted(report["skipped"].items())
    ) or "| (none) | 0 | |"
    # No `configs:` block: with one, datasets 5.2.0's load_dataset(<local dir>) caches the
    # prepared data by directory *name* and config, and returns stale rows for another
    # directory of the same name. The shard names follow the default pattern
    # data/<split>-NNNNN-of-NNNNN.parquet, which load_dataset finds on its own.
    return f"""---
tags:
- spatial-reasoning
- mirror-augmentation
---

# Mirrored pairs of `{report['input_name']}`

Made by `spatialrl data mirror` (SVQA-R1 sec. 3.1): each kept row appears twice, as
`view = "original"` and `view = "mirror"` (horizontally flipped image, left/right words,
rotation senses, clock directions and x coordinates rewritten), linked by `pair_id`.
`mirror_rewrite` tells how the mirror's text was made (`rules`, `llm` or `unchanged`).
See `docs/mirroring.md` in spatialrl for the rules.

- rows read: {report['rows_in']}
- pairs kept: {report['pairs']} ({report['rewritten']} rewritten, {report['unchanged']} unchanged text)
- rows skipped: {report['skipped_total']}

| skipped because | rows | meaning |
| --- | --- | --- |
{skipped}

`mirror_report.json` has the full counts, `skipped.jsonl` one line per skipped row.
"""


def safe_url(url: str | None) -> str | None:
    """A base URL without credentials or query string, for the report."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
