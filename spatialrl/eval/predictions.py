"""Predictions files: JSON Lines, one object per line with at least ``id`` and ``prediction``.

Reading validates every line and names the file, line and field of a problem. A torn last line
(a run killed mid-write) can be tolerated when resuming (``allow_torn_tail=True``): it is
reported and dropped, and the runner regenerates that item. Writing appends one line per item
and flushes it, so an interrupted run keeps everything it finished.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any


class PredictionsError(ValueError):
    """A malformed predictions file; the message names the file, line and field."""


def read_predictions(path: str | Path, *, allow_torn_tail: bool = False) -> dict[str, dict[str, Any]]:
    """Map id -> record for every line of ``path``.

    Raises ``PredictionsError`` for a line that is not a JSON object, lacks ``id`` or
    ``prediction``, has a ``prediction`` that is neither a string nor null, or repeats an id.
    With ``allow_torn_tail`` a final line without a newline that does not parse is dropped.
    """
    path = Path(path)
    if not path.exists():
        raise PredictionsError(f"{path}: predictions file not found")
    records: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    torn = not raw.endswith(b"\n") and raw != b""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if allow_torn_tail and torn and number == len(lines):
                break
            raise PredictionsError(f"{path}:{number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise PredictionsError(f"{path}:{number}: expected a JSON object with 'id' and 'prediction'")
        if "id" not in record:
            raise PredictionsError(f"{path}:{number}: field 'id' missing")
        if not isinstance(record["id"], (str, int)) or isinstance(record["id"], bool):
            raise PredictionsError(f"{path}:{number}: field 'id' must be a string or an integer")
        if "prediction" not in record:
            raise PredictionsError(f"{path}:{number}: field 'prediction' missing")
        if record["prediction"] is not None and not isinstance(record["prediction"], str):
            raise PredictionsError(f"{path}:{number}: field 'prediction' must be the raw model text (a string)")
        key = str(record["id"])
        if key in records:
            raise PredictionsError(f"{path}:{number}: id {key!r} already given on line {first_line[key]}")
        first_line[key] = number
        records[key] = record
    return records


def repair_torn_tail(path: str | Path) -> bool:
    """Cut a final line that lacks its newline (a killed writer's leftover); True if one was cut."""
    path = Path(path)
    if not path.exists():
        return False
    raw = path.read_bytes()
    if not raw or raw.endswith(b"\n"):
        return False
    keep = raw[: raw.rfind(b"\n") + 1]
    with open(path, "r+b") as fh:
        fh.truncate(len(keep))
    return True


def append_prediction(fh: IO[str], item_id: str, prediction: str | None, **extra: Any) -> None:
    """Write one record as a line and flush it to the OS."""
    fh.write(json.dumps({"id": item_id, "prediction": prediction, **extra}, ensure_ascii=False) + "\n")
    fh.flush()


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename, so a crash never leaves half a file."""
    from spatialrl._fs import write_text_atomic

    write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=True) + "\n")
