"""``spatialrl data vqasynth``: VQASynth's multi-turn dialogues as single-turn training rows.

SVQA-R1 trains on VQASynth data (``remyxai/vqasynth_spacellava``, ``remyxai/OpenSpaces``) and
splits each dialogue into single-turn question/answer items (sec. 4.2). The published rows hold
a ``messages`` column: a list of ``{"role": "user" | "assistant" | "system", "content": [parts]}``
turns, where a part is ``{"type": "image", "index": i}`` or ``{"type": "text", "text": ...}``
(a plain string content is accepted too; so is LLaVA's ``conversations`` layout, read by
``spatialrl.data.dialogues`` like the VQASynth benchmark reads it). They also hold ``images``, a list of images (an older
revision has a single ``image``). The layout is VQASynth ``docker/prompt_stage/process_prompts.py``,
and ``spatialrl.eval.benchmarks.vqasynth`` reads the same layout for evaluation.

This command writes one row per user/assistant pair:

- ``id``: ``<split>-<row>-t<turn>`` (row and turn 0-based, the row counted over the split's
  files in name order); it becomes the ``pair_id`` in ``spatialrl data mirror``.
- ``image``: the dialogue's image, embedded. When a row holds several images, it is the one the
  first image part of the dialogue points to (``index``, default 0).
- ``question``: the user turn's text parts joined with a space, with ``<image>`` tokens removed.
- ``answer``: the assistant turn's text.
- ``dialogue``: ``<split>-<row>``; ``turn``: the turn's 0-based index within the dialogue.

Our choice: every turn becomes an independent question on the image. The earlier turns of the
dialogue are not carried over, as in SVQA-R1's single-turn evaluation (sec. 4.2). A later turn
that refers back ("and the chair?") is therefore a weaker question; such turns are kept.
System turns are skipped. A dialogue that does not alternate user and assistant turns, an
empty turn, or a row without an image is malformed: the command stops with an error that
names the file, the row and the field, or with ``--skip-bad-rows`` it counts the row and goes on.

Output: ``OUT/data/<split>-00000-of-00001.parquet`` (Hugging Face layout) and
``OUT/vqasynth_rows.json`` (counts). The next step of SVQA-R1's data path is
``spatialrl data mirror --data OUT --out MIRRORED``. It adds the mirrored twin of each row, the
``pair_id`` / ``view`` columns and the typed answer columns that the rewards read
(``spatialrl.data.typed_answers``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from spatialrl.data.dialogues import DialogueError, split_dialogue
from spatialrl.data.mirror_text.reasons import MirrorInputError, Skip
from spatialrl.data.mirror_text.sources import read_image_bytes

__all__ = ["HELP", "VQASynthRowsError", "add_arguments", "dialogue_turns", "read_records", "run", "single_turn_rows"]

HELP = "split VQASynth multi-turn dialogues (messages + images) into single-turn training rows"

class VQASynthRowsError(ValueError):
    """Malformed input; the message names the file, the row and the field."""


def dialogue_turns(where: str, record: Mapping[str, Any]) -> tuple[list[tuple[str, str]], int]:
    """``([(question, answer), ...], image_index)`` of one row's ``messages`` (or LLaVA
    ``conversations``): ``spatialrl.data.dialogues.split_dialogue``, its errors as
    ``VQASynthRowsError``."""
    try:
        return split_dialogue(where, record)
    except DialogueError as exc:
        raise VQASynthRowsError(str(exc)) from None


def _image(where: str, record: Mapping[str, Any], index: int, root: Path) -> dict[str, Any]:
    """``{"bytes", "path"}`` of the row's image number ``index`` (``images`` list or ``image``),
    read as ``spatialrl data mirror`` reads images (bytes, base64, a path kept inside ``root``)."""
    images = record.get("images")
    if images is None and record.get("image") is not None:
        images = [record["image"]]
    if not isinstance(images, list) or not images:
        raise VQASynthRowsError(f"{where}: field 'images' must hold the dialogue's image, got {images!r:.80}")
    if not 0 <= index < len(images):
        raise VQASynthRowsError(f"{where}: field 'images': the dialogue points to image {index}, the row has {len(images)}")
    try:
        data, name = read_image_bytes(images[index], root, where, f"images[{index}]")
    except (MirrorInputError, Skip) as exc:
        raise VQASynthRowsError(str(exc) if isinstance(exc, MirrorInputError) else
                                f"{where}: field 'images[{index}]': {exc.detail}") from None
    return {"bytes": data, "path": name}


def _split_of(path: Path) -> str:
    return path.name.split("-", 1)[0].split(".", 1)[0]


def read_records(path: str | Path, split: str = "train") -> Iterator[tuple[str, Path, Mapping[str, Any]]]:
    """``(where, file, record)`` of every row of ``split`` at ``path``: a parquet or JSON Lines
    file, or a directory searched recursively for ``<split>*.parquet`` / ``<split>*.jsonl``."""
    import pyarrow.parquet as pq

    from spatialrl.data.load import read_shard

    root = Path(path).expanduser()
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in (".parquet", ".jsonl")
                       and _split_of(f) == split)
        if not files:
            raise VQASynthRowsError(f"{root}: no {split}*.parquet or {split}*.jsonl files (use --split)")
    else:
        raise VQASynthRowsError(f"{root}: no such file or directory")
    for file in files:
        if file.suffix == ".parquet":
            try:
                table = read_shard(pq, file)
            except ValueError as exc:
                raise VQASynthRowsError(str(exc)) from None
            for i, record in enumerate(table.to_pylist()):
                yield f"{file.name} row {i}", file, record
        else:
            with file.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            record = json.loads(line)
                        except ValueError as exc:
                            raise VQASynthRowsError(f"{file.name}:{lineno}: invalid JSON ({exc})") from None
                        if not isinstance(record, Mapping):
                            raise VQASynthRowsError(f"{file.name}:{lineno}: expected a JSON object")
                        yield f"{file.name}:{lineno}", file, record


def single_turn_rows(path: str | Path, split: str = "train", skip_bad_rows: bool = False,
                     bad: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The single-turn rows (module docstring) of ``split`` at ``path``. With ``skip_bad_rows`` a
    malformed dialogue is left out and its error message appended to ``bad``."""
    for row, (where, file, record) in enumerate(read_records(path, split)):
        try:
            pairs, image_index = dialogue_turns(where, record)
            image = _image(where, record, image_index, file.parent)
        except VQASynthRowsError as exc:
            if not skip_bad_rows:
                raise
            if bad is not None:
                bad.append(str(exc))
            continue
        for turn, (question, answer) in enumerate(pairs):
            yield {"id": f"{split}-{row:06d}-t{turn}", "image": image, "question": question, "answer": answer,
                   "dialogue": f"{split}-{row:06d}", "turn": turn}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="VQASynth data: a parquet or JSON Lines file, or a directory "
                                                      "(e.g. a download of remyxai/vqasynth_spacellava)")
    parser.add_argument("--out", required=True, help="output directory (data/<split>-00000-of-00001.parquet)")
    parser.add_argument("--split", default="train", help="split to read from a directory; also names the output split "
                                                         "(default: train)")
    parser.add_argument("--skip-bad-rows", action="store_true", help="leave malformed dialogues out (counted) instead "
                                                                     "of stopping with an error")
    parser.add_argument("--overwrite", action="store_true", help="replace the output of an earlier run in --out")


def run(args: argparse.Namespace) -> int:
    from datasets import Dataset, Features, Image, Value

    from spatialrl._fs import write_text_atomic

    out = Path(args.out).expanduser()
    target = out / "data" / f"{args.split}-00000-of-00001.parquet"
    if target.exists() and not args.overwrite:
        print(f"error: {target} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    bad: list[str] = []
    try:
        rows = list(single_turn_rows(args.data, args.split, args.skip_bad_rows, bad))
    except VQASynthRowsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: {args.data}: no dialogue could be read" + (f" ({len(bad)} malformed)" if bad else ""),
              file=sys.stderr)
        return 2
    features = Features({"id": Value("string"), "image": Image(), "question": Value("string"),
                         "answer": Value("string"), "dialogue": Value("string"), "turn": Value("int32")})
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    Dataset.from_list(rows, features=features).to_parquet(str(partial))
    partial.replace(target)
    dialogues = len({r["dialogue"] for r in rows})
    summary = {"input": str(args.data), "split": args.split, "dialogues": dialogues, "rows": len(rows),
               "skipped_dialogues": len(bad), "skipped": bad[:100]}
    write_text_atomic(out / "vqasynth_rows.json", json.dumps(summary, indent=2) + "\n")
    print(f"{dialogues} dialogues -> {len(rows)} single-turn rows in {target}"
          + (f"; skipped {len(bad)} malformed dialogues (vqasynth_rows.json)" if bad else ""))
    return 0
