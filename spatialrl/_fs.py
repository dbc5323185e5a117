"""Small filesystem helpers shared by the commands that write run directories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["replace_dir", "write_text_atomic"]


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (creating its directory) through a temporary file beside it and a
    rename, so a reader or a crash never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
