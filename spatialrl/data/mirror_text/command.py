"""``spatialrl data mirror``: read a QA dataset, mirror every row, write the pairs.

Each kept row is written twice, ``view = "original"`` and ``view = "mirror"`` (flipped image,
text from :mod:`.rules` or, with ``--llm``, from :mod:`.llm_rewrite`), linked by ``pair_id``;
every row left out is counted under its reason. Every output row also carries the typed answer
columns the rewards read (``answer_type``, ``answer_value``, ``dimension``, ``unit``,
``options``, ``answer_index``, ``bbox``), derived from that view's own text and box by
``spatialrl.data.typed_answers``. A non-finite number in a box is malformed input (an error
naming the row and field, or ``bad_row`` with --skip-bad-rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from spatialrl.data.mirror_text.coordinates import COORD_MODES
from spatialrl.data.mirror_text.images import flip_image, open_image
from spatialrl.data.mirror_text.llm_rewrite import LLMState, ask_llm, check_llm_rewrite
from spatialrl.data.mirror_text.output import ShardWriter, dataset_card, prepare_out, safe_url, write_json_atomic
from spatialrl.data.mirror_text.reasons import MirrorInputError, Skip
from spatialrl.data.mirror_text.rules import RowOutcome, mirror_fields
from spatialrl.data.mirror_text.sources import Row, Source, open_source, read_image_bytes

__all__ = ["HELP", "add_arguments", "run"]

HELP = "mirror an existing QA dataset: flip images, rewrite left/right text and boxes, keep pairs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="input: a JSON Lines file, a parquet file, or a Hugging Face dataset directory (load_dataset layout or save_to_disk)")
    parser.add_argument("--out", required=True, help="output directory (parquet shards under data/, README.md card, mirror_report.json, skipped.jsonl)")
    parser.add_argument("--split", default=None, help="split to read from a dataset directory (default: train, or the only split); also names the output split")
    parser.add_argument("--image-column", default="image", help="column holding the image: a path relative to the data root, a data: URI, or {bytes, path} (default: image)")
    parser.add_argument("--question-column", default="question", help="question column (default: question)")
    parser.add_argument("--answer-column", default="answer", help="answer column (default: answer)")
    parser.add_argument("--bbox-column", default=None, help="optional column of boxes [x1, y1, x2, y2] (or a list of them) to flip")
    parser.add_argument("--also-rewrite", action="append", default=[], metavar="COLUMN", help="another text column to rewrite with the rules (e.g. options); repeatable")
    parser.add_argument("--id-column", default=None, help="column whose value becomes pair_id (default: 'id' if present, else the row number)")
    parser.add_argument("--data-root", default=None, help="image paths must resolve inside this directory (default: the input's directory)")
    parser.add_argument("--coords", choices=COORD_MODES, default="pixel", help="coordinate system of boxes and points: pixel (x in [0, image width]), norm1 ([0,1]), norm1000 ([0,1000], Qwen2-VL style) or auto (per row; ambiguous rows are skipped) (default: pixel)")
    parser.add_argument("--box-format", choices=("xyxy", "xywh"), default="xyxy", help="4-number boxes are [x1, y1, x2, y2] or [x, y, w, h] (default: xyxy)")
    parser.add_argument("--jpeg-quality", type=int, default=95, help="quality for re-encoding flipped JPEG images (default: 95; PNG stays lossless)")
    parser.add_argument("--shard-rows", type=int, default=10000, help="rows per parquet shard (even; default: 10000)")
    parser.add_argument("--overwrite", action="store_true", help="replace a mirrored dataset already in --out")
    parser.add_argument("--skip-bad-rows", action="store_true", help="count malformed rows as skipped (reason bad_row) instead of stopping with an error")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    llm = parser.add_argument_group("LLM rewriter (SVQA-R1 sec. 3.1)")
    llm.add_argument("--llm", action="store_true", help="rewrite left/right text with an LLM through an OpenAI-compatible API; rewrites failing the rule check fall back to the rules")
    llm.add_argument("--base-url", default=None, help="API base URL including /v1 (default: $OPENAI_BASE_URL, else OpenAI's)")
    llm.add_argument("--model", default=None, help="model name (required with --llm)")
    llm.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (default: OPENAI_API_KEY); the key is never written or logged")
    llm.add_argument("--llm-cache", default=None, help="reply cache directory (default: ~/.cache/spatialrl/llm)")
    llm.add_argument("--llm-workers", type=int, default=4, help="concurrent LLM requests (default: 4)")
    llm.add_argument("--llm-retries", type=int, default=4, help="retries per request on transport errors, with exponential back-off (default: 4)")
    llm.add_argument("--llm-backoff", type=float, default=1.0, help="first retry delay in seconds, doubled each retry (default: 1.0)")
    llm.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per attempt: connect, reply and parse (default: 60); a whole call, retries included, also has an overall deadline (spatialrl.data.llm)")
    llm.add_argument("--llm-temperature", type=float, default=0.0, help="sampling temperature (default: 0)")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except MirrorInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    args.also_rewrite = list(getattr(args, "also_rewrite", None) or [])
    if args.shard_rows < 2 or args.shard_rows % 2:
        raise MirrorInputError(f"--shard-rows must be an even number >= 2, got {args.shard_rows}")
    state: LLMState | None = None
    if args.llm:
        if not args.model:
            raise MirrorInputError("--llm needs --model NAME")
        from spatialrl.data.llm import ChatClient

        try:
            client = ChatClient(
                args.model,
                base_url=args.base_url,
                api_key_env=args.api_key_env,
                cache_dir=args.llm_cache,
                timeout=args.llm_timeout,
                max_retries=args.llm_retries,
                backoff=args.llm_backoff,
            )
        except ValueError as exc:
            raise MirrorInputError(str(exc)) from None
        state = LLMState(client, max(1, args.llm_workers), args.llm_temperature)

    source = open_source(args)
    try:
        return _mirror(args, source, state)
    finally:
        if source.cleanup is not None:
            source.cleanup()


def _mirror(args: argparse.Namespace, source: Source, state: LLMState | None) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from datasets import List, Value
    from tqdm.auto import tqdm

    from spatialrl.data.typed_answers import TYPED_COLUMNS

    out = Path(args.out).expanduser()
    split = args.split or "train"

    features = source.features.copy()
    for extra in ("pair_id", "view", "mirror_rewrite"):
        if extra in features:
            raise MirrorInputError(f"{source.name}: input already has a {extra!r} column (is it mirrored already?)")
    id_column = args.id_column
    if id_column is None and "id" in features:
        id_column = "id"
    if id_column and id_column not in features:
        raise MirrorInputError(f"{source.name}: --id-column {id_column!r} not found")
    # The output's typed answer columns (and ``answer``, the reference the rewards read) are
    # ours; an input column of the same name is kept under ``input_<name>``, never dropped.
    reserved = [*TYPED_COLUMNS, *(["answer"] if args.answer_column != "answer" else [])]
    renamed = {c: f"input_{c}" for c in reserved if c in features and c != args.bbox_column}
    for column, new in renamed.items():
        if new in features or column in (args.question_column, args.answer_column, args.image_column, *args.also_rewrite):
            raise MirrorInputError(f"{source.name}: input column {column!r} is one the output writes (the typed answer "
                                   f"columns {', '.join(TYPED_COLUMNS)} and 'answer'); rename it")
        features[new] = features.pop(column)
    if renamed:
        print(f"mirror: input columns {', '.join(renamed)} kept as {', '.join(renamed.values())} (the output writes "
              "its own typed answer columns)", file=sys.stderr)
    args.renamed_columns = renamed
    if args.answer_column != "answer":
        features["answer"] = Value("string")  # the canonical reference the rewards read
    features["pair_id"] = Value("string")
    features["view"] = Value("string")
    features["mirror_rewrite"] = Value("string")
    features.update(answer_type=Value("string"), answer_value=Value("float64"), dimension=Value("string"),
                    unit=Value("string"), options=List(Value("string")), answer_index=Value("int32"),
                    bbox=List(Value("float64")))
    prepare_out(out, args.overwrite)

    text_fields = [args.question_column, args.answer_column, *args.also_rewrite]
    coord_fields = [args.bbox_column] if args.bbox_column else []
    writer = ShardWriter(out, split, features, args.shard_rows)
    skipped: Counter[str] = Counter()
    method_counts: Counter[str] = Counter()
    skipped_path = out / "skipped.jsonl"
    seen_ids: set[str] = set()
    pairs = 0

    try:
        skipped_fh = skipped_path.open("w", encoding="utf-8")
    except OSError as exc:
        raise MirrorInputError(f"{out}: cannot write the output ({exc})") from None
    try:

        def skip(row: Row, reason: str, detail: str = "", fld: str | None = None) -> None:
            skipped[reason] += 1
            skipped_fh.write(json.dumps({"row": row.ref, "index": row.index, "reason": reason, "field": fld, "detail": detail}, ensure_ascii=False) + "\n")

        for row in source.bad_rows:
            skip(row, "bad_row", row.error or "")

        progress = tqdm(total=source.num_rows, desc="mirror", unit="row", disable=args.quiet or None, file=sys.stderr)
        executor = ThreadPoolExecutor(max_workers=state.workers) if state else None
        try:
            batch: list[Row] = []
            for row in source.rows():
                batch.append(row)
                if len(batch) >= 64:
                    pairs += _process_batch(batch, args, source, state, executor, writer, skip, method_counts, text_fields, coord_fields, id_column, seen_ids)
                    progress.update(len(batch))
                    batch = []
            if batch:
                pairs += _process_batch(batch, args, source, state, executor, writer, skip, method_counts, text_fields, coord_fields, id_column, seen_ids)
                progress.update(len(batch))
        finally:
            progress.close()
            if executor:
                executor.shutdown(wait=True, cancel_futures=True)
    except BaseException:
        skipped_fh.close()
        writer.abort()
        skipped_path.unlink(missing_ok=True)
        raise
    skipped_fh.close()
    shards = writer.close()

    rows_in = source.num_rows + len(source.bad_rows)
    skipped_total = sum(skipped.values())
    if pairs + skipped_total != rows_in:  # nothing may be dropped silently
        raise RuntimeError(f"internal error: {pairs} kept + {skipped_total} skipped != {rows_in} rows read")
    report: dict[str, Any] = {
        "input": str(args.data),
        "input_name": source.name,
        "split": split,
        "rows_in": rows_in,
        "pairs": pairs,
        "rows_out": 2 * pairs,
        "rewritten": method_counts["rules"] + method_counts["llm"],
        "unchanged": method_counts["unchanged"],
        "by_method": dict(sorted(method_counts.items())),
        "skipped_total": skipped_total,
        "skipped": dict(sorted(skipped.items())),
        "coords": args.coords,
        "box_format": args.box_format,
        "columns": {"image": args.image_column, "question": args.question_column, "answer": args.answer_column, "bbox": args.bbox_column, "also_rewrite": args.also_rewrite, "id": id_column},
        "shards": [p.relative_to(out).as_posix() for p in shards],
        "llm": None,
    }
    if state is not None:
        report["llm"] = {
            "model": args.model,
            "base_url": safe_url(state.client.base_url),
            "client": dict(state.client.stats),
            "outcomes": dict(sorted(state.counts.items())),
            "gave_up": state.disabled,
        }
    write_json_atomic(out / "mirror_report.json", report)
    (out / "README.md").write_text(dataset_card(report, split), encoding="utf-8")

    parts = ", ".join(f"{r}={n}" for r, n in sorted(skipped.items())) or "none"
    print(
        f"mirrored {pairs} of {rows_in} rows ({report['rewritten']} rewritten, {report['unchanged']} unchanged) "
        f"-> {2 * pairs} rows in {out}; skipped {skipped_total}: {parts}"
    )
    if state is not None:
        print(f"llm: {report['llm']['outcomes']} (requests {state.client.stats['requests']}, cache hits {state.client.stats['cache_hits']})")
    return 0


def _process_batch(
    batch: list[Row],
    args: argparse.Namespace,
    source: Source,
    state: LLMState | None,
    executor: Any,
    writer: ShardWriter,
    skip: Any,
    method_counts: Counter[str],
    text_fields: list[str],
    coord_fields: list[str],
    id_column: str | None,
    seen_ids: set[str],
) -> int:
    """Rules for every row, LLM requests for the eligible ones (concurrently), then write."""
    from spatialrl.data.typed_answers import one_box, typed_answer

    prepared: list[tuple[Row, Any, bytes, str | None, RowOutcome] | None] = []
    for row in batch:
        try:
            if row.error:
                raise MirrorInputError(row.error)
            data, name = read_image_bytes(row.record[args.image_column], source.root, row.ref, args.image_column)
            image = open_image(data, row.ref, args.image_column)
        except Skip as s:
            skip(row, s.reason, s.detail, args.image_column)
            prepared.append(None)
            continue
        except MirrorInputError as exc:
            if not args.skip_bad_rows:
                raise
            skip(row, "bad_row", str(exc))
            prepared.append(None)
            continue
        outcome = mirror_fields(
            row.record,
            text_fields=text_fields,
            coord_fields=coord_fields,
            width=image.width,
            height=image.height,
            coords=args.coords,
            box_format=args.box_format,
        )
        if outcome.reason == "bad_row":
            if not args.skip_bad_rows:
                raise MirrorInputError(f"{row.ref}: field {outcome.field!r}: {outcome.detail}")
            skip(row, "bad_row", outcome.detail, outcome.field)
            prepared.append(None)
            continue
        prepared.append((row, image, data, name, outcome))

    # LLM: rows with direction words and no coordinates, that the rules rewrote or could not
    # classify (ambiguous_left_right). Content skips are never sent.
    def eligible(row: Row, outcome: RowOutcome) -> bool:
        return (
            outcome.has_direction
            and not outcome.has_coords
            and (outcome.ok or outcome.reason == "ambiguous_left_right")
            and isinstance(row.record[args.answer_column], str)
        )

    jobs: dict[int, Any] = {}
    if state is not None:
        for i, item in enumerate(prepared):
            if item is not None and eligible(item[0], item[4]):
                if state.disabled:
                    state.counts["not_sent_llm_given_up"] += 1
                    continue
                q, a = item[0].record[args.question_column], item[0].record[args.answer_column]
                jobs[i] = executor.submit(ask_llm, state, q, a)

    out_rows: list[dict[str, Any]] = []
    kept = 0
    for i, item in enumerate(prepared):
        if item is None:
            continue
        row, image, data, name, outcome = item
        values = outcome.values
        method = None
        if i in jobs:
            assert state is not None
            accepted = False
            parsed, label = jobs[i].result()
            if parsed is not None:
                q_new, a_new = parsed
                problem = check_llm_rewrite(row.record[args.question_column], q_new) or check_llm_rewrite(row.record[args.answer_column], a_new)
                if problem is None:
                    base = dict(values) if values is not None else {f: row.record.get(f) for f in text_fields}
                    if values is None:
                        # the rules could not classify the q/a; extra columns still need them
                        extra = mirror_fields(row.record, text_fields=args.also_rewrite, coord_fields=coord_fields, width=image.width, height=image.height, coords=args.coords, box_format=args.box_format)
                        if not extra.ok:
                            skip(row, extra.reason, extra.detail, extra.field)
                            state.counts["accepted_but_extra_column_skipped"] += 1
                            continue
                        base.update(extra.values or {})
                    base[args.question_column] = q_new
                    base[args.answer_column] = a_new
                    values = base
                    accepted = True
                    state.counts["accepted"] += 1
                    if q_new != row.record[args.question_column] or a_new != row.record[args.answer_column]:
                        method = "llm"  # else "unchanged" (or "rules" for extra columns), below
                else:
                    state.counts[f"rejected_{problem}"] += 1
            else:
                state.counts[label] += 1
            if not accepted and values is not None:
                state.counts["fallback_rules"] += 1
        if values is None:
            skip(row, outcome.reason or "ambiguous_left_right", outcome.detail, outcome.field)
            continue
        if method is None:
            changed = any(values.get(f) != row.record.get(f) for f in text_fields + coord_fields)
            method = "rules" if changed else "unchanged"
        if id_column:
            if row.record.get(id_column) is None:
                if not args.skip_bad_rows:
                    raise MirrorInputError(f"{row.ref}: field {id_column!r} is null (it names the pair)")
                skip(row, "bad_row", f"{row.ref}: field {id_column!r} is null")
                continue
            pair_id = str(row.record[id_column])
            if pair_id in seen_ids:
                raise MirrorInputError(f"{row.ref}: field {id_column!r}: duplicate id {pair_id!r} (pair ids must be unique; use --id-column)")
            seen_ids.add(pair_id)
        else:
            pair_id = f"{row.index:08d}"
        flipped, ext = flip_image(image, args.jpeg_quality)
        stem = Path(name).stem if name else f"{pair_id}"
        renamed = getattr(args, "renamed_columns", {})
        original = {renamed.get(k, k): v for k, v in row.record.items()}
        original[args.image_column] = {"bytes": data, "path": name}
        original.update(pair_id=pair_id, view="original", mirror_rewrite=None)
        mirror = {renamed.get(k, k): v for k, v in row.record.items()}
        mirror.update(values)
        mirror[args.image_column] = {"bytes": flipped, "path": f"{stem}.mirror{ext}"}
        mirror.update(pair_id=pair_id, view="mirror", mirror_rewrite=method)
        for view in (original, mirror):  # typed answers of each view's own text and box
            box = view.get(args.bbox_column) if args.bbox_column else None
            if args.bbox_column == "bbox" and box not in (None, []) and one_box(box) is None:
                raise MirrorInputError(f"{row.ref}: field 'bbox' is not one box [x1, y1, x2, y2]; the output's typed "
                                       "'bbox' column holds one box: rename the column and pass --bbox-column NAME")
            typed = typed_answer(view[args.question_column], view[args.answer_column], box)
            view.update(typed)
            if args.answer_column != "answer":  # the rewards read the reference from 'answer'
                view["answer"] = typed.get("answer", view[args.answer_column])
        out_rows += [original, mirror]
        method_counts[method] += 1
        kept += 1
    writer.write(out_rows)
    return kept
