"""Saving what ``spatialrl pretrain`` trained: a plain Qwen2.5-VL checkpoint (the auxiliary heads
dropped), written into a staging directory that replaces the output only when the run succeeds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spatialrl._fs import replace_dir

if TYPE_CHECKING:  # pragma: no cover
    from spatialrl.train.pretrain.config import PretrainConfig

__all__ = ["save_checkpoint", "staged_dir"]


@contextlib.contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A fresh temporary sibling of ``out`` to write into; it replaces ``out`` when the block
    ends without an error and is removed when it raises."""
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_checkpoint(model: Any, processor: Any, path: Path, cfg: PretrainConfig) -> None:
    """A plain Qwen2.5-VL checkpoint (no auxiliary heads) in ``cfg.save_dtype``."""
    import torch

    from spatialrl.models import PROMPT_SEPARATOR_KEY

    model.eval()
    setattr(model.config, PROMPT_SEPARATOR_KEY, cfg.prompt_separator)  # the prompt it learned
    dtype = torch.float16 if cfg.save_dtype == "float16" else torch.float32
    model.to(dtype).save_pretrained(path)
    processor.save_pretrained(path)
    model.to(torch.float32)
    # Half-precision storage, single-precision compute: ``dtype="auto"`` (the eval runner's and
    # TRL's default) then loads float32 weights, which run several times faster than float16 on
    # a CPU; GPU users pass dtype=torch.bfloat16 as for any checkpoint.
    config_path = path / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
