"""Read one split of a `spatialrl data build` directory into memory (no dataset cache files).

``datasets.load_dataset(DIR)`` also works, but it writes an Arrow cache under ~/.cache; the
trainers read the parquet shards directly instead.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def data_files(path: str | Path, split: str) -> list[Path]:
    """Parquet shards of ``split`` in a ``spatialrl data build`` directory (``data/<split>-*.parquet``)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset {str(root)!r} is not a directory; build one with "
                                f"`spatialrl data build --out {root}`")
    for folder in (root / "data", root):
        files = sorted(f for f in folder.glob(f"{split}-*.parquet") if f.is_file())
        if not files and (folder / f"{split}.parquet").is_file():
            files = [folder / f"{split}.parquet"]
        if files:
            return files
    found = sorted({f.name.split("-", 1)[0].removesuffix(".parquet") for folder in (root / "data", root)
                    if folder.is_dir() for f in folder.glob("*.parquet")})
    raise FileNotFoundError(f"dataset {root}: no split {split!r} (found: {', '.join(found) or 'no parquet files'}); "
                            "is this a directory written by `spatialrl data build`?")


def load_split(path: str | Path, split: str = "train", *, max_samples: int | None = None,
               question_types: Iterable[str] | None = None, seed: int = 0, whole_pairs: bool = True) -> Any:
    """One split of a ``spatialrl data build`` directory as an in-memory ``datasets.Dataset``
    (no cache files), filtered to ``question_types`` and cut to ``max_samples`` rows.

    The cut is a seeded random subset in file order; with ``whole_pairs`` it takes whole
    ``pair_id`` groups (original and mirror together; ``max_samples`` rounds down to whole pairs).
    """
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([read_shard(pq, f) for f in data_files(path, split)])
    ds = datasets.Dataset(table)
    if question_types is not None:
        wanted = set(question_types)
        keep = [i for i, qt in enumerate(ds["question_type"]) if qt in wanted]
        if not keep:
            raise ValueError(f"dataset {path} split {split!r} has no rows of question types {sorted(wanted)}")
        ds = ds.select(keep)
    return sample_rows(ds, max_samples, seed=seed, whole_pairs=whole_pairs)


def unreadable_shard(file: Path, exc: Exception) -> ValueError:
    """The error for a parquet file pyarrow cannot read: it names the file and how to fix it."""
    return ValueError(f"{file} is not a readable parquet file ({type(exc).__name__}: {exc}); it may be truncated "
                      "by an interrupted copy or build: copy it again or rebuild the dataset")


def read_shard(pq: Any, file: Path) -> Any:
    """``pq.read_table(file)``; a damaged file is a ``ValueError`` naming it (and how to fix it)."""
    import pyarrow as pa

    try:
        return pq.read_table(file)
    except (pa.ArrowException, OSError) as exc:  # what pyarrow raises for a damaged file
        raise unreadable_shard(file, exc) from None


def check_readable(path: str | Path, split: str = "train") -> None:
    """Open the footer of every shard of ``split`` (cheap); a damaged one is a ``ValueError`` naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for file in data_files(path, split):
        try:
            pq.ParquetFile(file).close()
        except (pa.ArrowException, OSError) as exc:
            raise unreadable_shard(file, exc) from None


def sample_rows(ds: Any, max_samples: int | None, *, seed: int = 0, whole_pairs: bool = True) -> Any:
    """``ds`` cut to ``max_samples`` rows: a seeded random subset in file order; with ``whole_pairs``
    it takes whole ``pair_id`` groups (``max_samples`` rounds down to whole groups). ``None``: all."""
    if max_samples is None or max_samples >= len(ds):
        return ds
    rng = random.Random(seed)
    if whole_pairs and "pair_id" in ds.column_names:
        groups: dict[str, list[int]] = {}
        for i, pid in enumerate(ds["pair_id"]):
            groups.setdefault(pid, []).append(i)
        order = list(groups)
        rng.shuffle(order)
        chosen: list[int] = []
        for pid in order:
            if len(chosen) + len(groups[pid]) > max_samples:
                continue
            chosen.extend(groups[pid])
        keep = sorted(chosen)
    else:
        keep = sorted(rng.sample(range(len(ds)), max_samples))
    return ds.select(keep)


#: Qwen2.5-VL's smallest image area (56 x 56), recorded as the budget's floor by the builders.
MIN_PIXELS = 56 * 56


def pixel_budget_record(max_pixels: int | None) -> dict[str, int | None]:
    """The dataset card's record of the pixel budget its images were made for (front matter key
    ``spatialrl``); ``max_pixels`` None: images kept at their source resolution."""
    return {"min_pixels": MIN_PIXELS, "max_pixels": None if max_pixels is None else int(max_pixels)}


def dataset_pixel_budget(path: str | Path) -> dict[str, int | None] | None:
    """``{"min_pixels", "max_pixels"}`` recorded in a build's dataset card (``README.md`` front
    matter), or None for a dataset whose card records none (older builds, other tools)."""
    import yaml

    card = Path(path) / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    try:
        front = yaml.safe_load(text[3:end]) if end > 0 else None
    except yaml.YAMLError:
        return None
    record = front.get("spatialrl") if isinstance(front, dict) else None
    if not isinstance(record, dict) or "max_pixels" not in record:
        return None
    return {"min_pixels": int(record.get("min_pixels") or MIN_PIXELS),
            "max_pixels": None if record["max_pixels"] is None else int(record["max_pixels"])}
