"""Multi-turn VQA dialogues (VQASynth ``messages``, LLaVA ``conversations``) as question/answer pairs.

One reader for both users of such rows: ``spatialrl data vqasynth`` (single-turn training rows)
and the VQASynth/OpenSpaces benchmark (``spatialrl.eval.benchmarks.vqasynth``). A turn's content
is a string or a list of typed parts (``{"type": "text", "text": ...}``, ``{"type": "image",
"index": ...}``); ``<image>`` tokens are removed from the text. Every error names the record and
the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DialogueError", "content_text", "split_dialogue"]

_IMAGE_TOKEN = re.compile(r"<image>\s*", re.IGNORECASE)


class DialogueError(ValueError):
    """A malformed dialogue; the message names the record and the field."""


def content_text(where: str, field: str, content: Any) -> tuple[str, list[int]]:
    """Text and image indices of one turn's content (a string or a list of typed parts)."""
    if isinstance(content, str):
        return _IMAGE_TOKEN.sub("", content).strip(), []
    if not isinstance(content, list):
        raise DialogueError(f"{where}: field {field} must be a list of parts or a string, "
                                 f"got {type(content).__name__}")
    texts: list[str] = []
    images: list[int] = []
    for j, part in enumerate(content):
        pfield = f"{field}[{j}]"
        if not isinstance(part, Mapping):
            raise DialogueError(f"{where}: field {pfield} must be an object with 'type'")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise DialogueError(f"{where}: field {pfield}.text must be a string, got {text!r}")
            texts.append(text)
        elif kind == "image":
            index = part.get("index")
            images.append(int(index) if isinstance(index, int) and not isinstance(index, bool) else 0)
        else:
            raise DialogueError(f"{where}: field {pfield}.type must be 'text' or 'image', got {kind!r}")
    return _IMAGE_TOKEN.sub("", " ".join(t.strip() for t in texts)).strip(), images


def split_dialogue(where: str, record: Mapping[str, Any]) -> tuple[list[tuple[str, str]], int]:
    """``([(question, answer), ...], image_index)`` from a row's ``messages`` (or LLaVA
    ``conversations``); ``image_index`` is the ``index`` of the dialogue's first image part (0
    without one).

    System turns are skipped; the rest must alternate user, assistant, starting with a user turn
    and ending with an assistant turn, each with non-empty text. ``DialogueError`` names
    ``where`` and the field otherwise.
    """
    if "messages" in record and record["messages"] is not None:
        field, turns, role_key, text_key = "messages", record["messages"], "role", "content"
        roles = {"user": "user", "assistant": "assistant", "system": "system"}
    elif "conversations" in record and record["conversations"] is not None:
        field, turns, role_key, text_key = "conversations", record["conversations"], "from", "value"
        roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
    else:
        raise DialogueError(f"{where}: field 'messages' missing (or 'conversations')")
    if not isinstance(turns, list) or not turns:
        raise DialogueError(f"{where}: field {field!r} must be a non-empty list of turns")
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    image_index: int | None = None
    for i, turn in enumerate(turns):
        tfield = f"{field!r}[{i}]"
        if not isinstance(turn, Mapping):
            raise DialogueError(f"{where}: field {tfield} must be an object")
        role = roles.get(turn.get(role_key)) if isinstance(turn.get(role_key), str) else None
        if role is None:
            raise DialogueError(f"{where}: field {tfield}.{role_key} must be one of "
                                     f"{sorted(roles)}, got {turn.get(role_key)!r}")
        if role == "system":
            continue
        if text_key not in turn:
            raise DialogueError(f"{where}: field {tfield}.{text_key} missing")
        text, images = content_text(where, f"{tfield}.{text_key}", turn[text_key])
        if image_index is None and images:
            image_index = images[0]
        if not text:
            raise DialogueError(f"{where}: field {tfield}.{text_key} has no text")
        if role == "user":
            if pending is not None:
                raise DialogueError(f"{where}: field {tfield}: two user turns in a row (no answer to "
                                         f"the question at {field!r}[{i - 1}])")
            pending = text
        else:
            if pending is None:
                raise DialogueError(f"{where}: field {tfield}: assistant turn without a question before it")
            pairs.append((pending, text))
            pending = None
    if pending is not None:
        raise DialogueError(f"{where}: field {field!r}: the last user turn has no answer")
    if not pairs:
        raise DialogueError(f"{where}: field {field!r} holds no question/answer pair")
    return pairs, image_index or 0
