"""Small filesystem helpers shared by the commands that write run directories."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["replace_dir"]


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished directory ``tmp`` to ``final``, replacing what is there: the old
    directory is renamed aside first and deleted only after ``tmp`` is in place, so a crash
    never leaves ``final`` half written (at worst ``.<name>.old`` is left beside it)."""
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old"
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
