"""Mirror a QA dataset that has no scene graph: flip each image, rewrite its text (SVQA-R1).

SVQA-R1 (sec. 3.1) pairs every sample with its horizontally flipped image and a question and
answer adapted to the flipped view; the pair feeds Spatial-GRPO's view-consistency reward
(sec. 3.3). The paper asks GPT-4o to do the adaptation with a rewrite-and-verify prompt
(sec. 3.1, its prompt table), because naive left/right swapping gives inconsistent pairs.
Appendix A names what has to change: left/right relations (A.1) and bounding boxes (A.2),
while attributes, counts and global scene questions are unaffected (A.3); distances are
mirror-invariant (sec. 3.3).

This package does the adaptation with deterministic rules, and optionally with an LLM whose
rewrite is accepted only when a rule-based check agrees with it (``docs/mirroring.md``):

* :mod:`.rules` -- the rule rewriter: left/right words, rotation senses, clock directions, and
  the content it leaves out (:func:`rewrite_text`, :func:`mirror_fields`);
* :mod:`.coordinates` -- boxes and points in the text or a box column (appendix A.2);
* :mod:`.llm_rewrite` -- the paper's rewrite prompt, reading the reply, and the rule check
  that accepts or rejects it (:func:`check_llm_rewrite`);
* :mod:`.reasons` -- why a row is left out (:data:`REASONS`), and :class:`MirrorInputError`;
* :mod:`.sources`, :mod:`.images`, :mod:`.output` -- reading the records, flipping the
  images, writing the shards, report and dataset card;
* :mod:`.command` -- ``spatialrl data mirror`` (``HELP``, :func:`add_arguments`, :func:`run`).

Deviation from the paper: the paper uses GPT-4o alone; here rules are the default and the
LLM (``--llm``) is an option whose output must pass the rule check, else the rule rewrite is
used (or, when the rules could not classify the row, it is skipped with its reason).
"""

from spatialrl.data.mirror_text.command import HELP, add_arguments, run
from spatialrl.data.mirror_text.coordinates import COORD_MODES
from spatialrl.data.mirror_text.llm_rewrite import (
    SVQA_R1_REWRITE_PROMPT,
    build_rewrite_messages,
    check_llm_rewrite,
    parse_rewrite_reply,
)
from spatialrl.data.mirror_text.reasons import REASONS, MirrorInputError
from spatialrl.data.mirror_text.rules import RowOutcome, TextOutcome, mirror_fields, rewrite_text

__all__ = [
    "COORD_MODES",
    "HELP",
    "MirrorInputError",
    "REASONS",
    "RowOutcome",
    "TextOutcome",
    "SVQA_R1_REWRITE_PROMPT",
    "add_arguments",
    "build_rewrite_messages",
    "check_llm_rewrite",
    "mirror_fields",
    "parse_rewrite_reply",
    "rewrite_text",
    "run",
]
