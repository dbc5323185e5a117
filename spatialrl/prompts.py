"""Every prompt spatialrl builds, in one place: data export, training and evaluation read it.

The training prompt (SVQA-R1 appendix E, Table 9, "Original"), :func:`prompt_text`: the
question, :data:`PROMPT_SEPARATOR` (a space, as Table 9 prints it), then
:data:`FORMAT_INSTRUCTION` (think in ``<think> </think>``, answer in ``<answer> </answer>``:
the structure the format reward of Smooth Operator eq. 4 / SVQA-R1 sec. 3.2 checks). The
dataset exports (``spatialrl.data.export``), SFT, GRPO and the world benchmark all build it
here. A model trained with another separator records it in its ``config.json``
(``spatialrl_prompt_separator``; the shipped tiny spatial VLM was pretrained with a newline):
training and evaluation read it (``spatialrl.models.prompt_separator``) and re-join the prompt
with :func:`with_separator`, so a model always sees the prompt it learned.

Evaluation prompt variants, by name: ``apply_prompt(question, variant) -> str``. Sources (the
texts below are the methods' prompts, reproduced exactly where a source gives them):

- ``"original"``: SVQA-R1 appendix E, Table 9, row "Original" -- the thinking prompt that
  SVQA-R1 trains and evaluates with (``{Question}`` followed by the <think>/<answer> instruction;
  the same text as :func:`prompt_text`).
- ``"spatial_reasoning"``: SVQA-R1 Table 9, row "Spatial Reasoning Prompt" (variant (b) of
  Table 8), verbatim as the table prints it. Our text copy of the table renders the prompt on
  one line; its content is, up to whitespace and a ``---`` separator line, Q-Spatial-Bench's
  ``prompt_templates/spatial_prompt_steps.txt`` (available here with its original layout as
  ``"qspatial_steps"``). What the table does not give: (1) the original line breaks of the
  prompt as SVQA-R1 sent it, (2) whether SVQA-R1 appended an answer-format instruction
  (the <think>/<answer> sentence or Q-Spatial's ``\\scalar{}`` system prompt) to it -- Table 8
  reports 100 % samples completed with it, so some format instruction was likely present --
  and (3) the "others tailored to the task context" that appendix E mentions but the table
  does not list. We implement the text as printed and nothing more.
- ``"qspatial_*"``: Q-Spatial-Bench (andrewliao11/Q-Spatial-Bench-code, ``prompt_templates/``):
  the system prompt and the ``spatial_prompt_single`` / ``spatial_prompt_steps`` /
  ``zero_shot_prompt`` templates (Jinja ``{{ question }}``, rendered here by plain
  substitution; the benchmark's texts, typo "thinkg" included). VLMEvalKit's ``QSpatial``
  dataset (open-compass/VLMEvalKit, ``vlmeval/dataset/image_vqa.py``, ``build_prompt``) sends
  ``f"{system_prompt}\\n{rendered template}"`` as one user text, with ``spatial_prompt_single``;
  ``"qspatial"`` is exactly that string. The repository's ``standard_prompt.txt`` (listed by
  VLMEvalKit) is not in the public repository snapshot we read, so it is not offered.
- ``"plain"``: the question unchanged.

Substitution is literal (``str.replace`` of the placeholder), so questions containing braces
are safe.
"""

from __future__ import annotations

__all__ = [
    "FORMAT_INSTRUCTION",
    "PROMPT_SEPARATOR",
    "PROMPT_VARIANTS",
    "QSPATIAL_SPATIAL_PROMPT_SINGLE",
    "QSPATIAL_SPATIAL_PROMPT_STEPS",
    "QSPATIAL_SYSTEM_PROMPT",
    "QSPATIAL_ZERO_SHOT_PROMPT",
    "SVQA_R1_ORIGINAL",
    "SVQA_R1_SPATIAL_REASONING",
    "apply_prompt",
    "prompt_text",
    "prompt_variants",
    "with_separator",
]

#: SVQA-R1 Table 9, "Original" prompt: appended after the question.
FORMAT_INSTRUCTION = (
    "First output the thinking process in <think> </think> tags and then output the final "
    "answer in <answer> </answer> tags."
)

#: SVQA-R1 Table 9 joins the question and the instruction with a space.
PROMPT_SEPARATOR = " "


def prompt_text(question: str, separator: str | None = None) -> str:
    """The user text: the question, ``separator`` (default :data:`PROMPT_SEPARATOR`, a space,
    as in Table 9), then :data:`FORMAT_INSTRUCTION`."""
    return f"{question}{PROMPT_SEPARATOR if separator is None else separator}{FORMAT_INSTRUCTION}"


def with_separator(prompt: str, separator: str | None) -> str:
    """``prompt`` re-joined with ``separator`` when it ends with :data:`FORMAT_INSTRUCTION`
    (a prompt built by :func:`prompt_text`); any other prompt, or ``separator=None``, unchanged."""
    if separator is None or not prompt.endswith(FORMAT_INSTRUCTION):
        return prompt
    head = prompt[: -len(FORMAT_INSTRUCTION)].rstrip(" \n")
    return f"{head}{separator}{FORMAT_INSTRUCTION}"


# SVQA-R1 Table 9, "Original" (placeholder {Question}).
SVQA_R1_ORIGINAL = prompt_text("{Question}")

# SVQA-R1 Table 9, "Spatial Reasoning Prompt", as printed (placeholder { Question }).
SVQA_R1_SPATIAL_REASONING = (
    "Question: { Question } Use the following 4 steps sequentially to answer the question: "
    "Step 1 **Analyze the question** "
    "Step 2 **Identify up to 10 reference scales in the image, ranging from large to small sizes, and list "
    "them in the specified format** "
    "- A reference scale must be typical in size. "
    "- A reference scale can be the dimensions of an object or an object part. "
    "- A reference scale must NOT be floor tiles or floor planks. "
    '- Formulate the reference scales using the format: """The [choose from front-to-back, side-to-side, '
    "left-to-right, diameter, height (top to bottom edge), or mounting height (bottom edge to floor)] of "
    '[object or object part] is approximately [dimension estimate].""" '
    "Step 3 **Propose a robust step-by-step plan to answer the question by using the reference scales in "
    "Step 2** "
    "- A robust step-by-step plan performs the estimation in a coarse-to-fine manner. "
    "- First, use a reliable and large-sized reference scale as the primary reference for estimation. "
    "- Then, gradually use a reliable and smaller-sized reference scale for adjustment. "
    "- Repeat until the estimation is precise enough. "
    "- When performing visual comparison, be aware of perspective distortion. "
    "- Do NOT rely on pixel measurements from the images. "
    "Step 4 **Focus on the image and follow the plan in Step 3 to answer the question**"
)

# Q-Spatial-Bench prompt_templates/system_prompt.txt
QSPATIAL_SYSTEM_PROMPT = (
    "You will be provided with a question and a 2D image. The question involves measuring the precise "
    "distance in 3D space through a 2D image. You will answer the question by providing a numeric answer "
    'consisting of a scalar and a distance unit in the format of """\\scalar{scalar} '
    '\\distance_unit{distance unit}""" at the end of your response.'
)

# Q-Spatial-Bench prompt_templates/spatial_prompt_single.txt (placeholder {{ question }})
QSPATIAL_SPATIAL_PROMPT_SINGLE = (
    "Question: {{ question }}\n"
    "Let's thinkg step by step and start by finding good reference objects or object parts in the image."
)

# Q-Spatial-Bench prompt_templates/zero_shot_prompt.txt
QSPATIAL_ZERO_SHOT_PROMPT = "Question: {{ question }}\nLet's think step by step."

# Q-Spatial-Bench prompt_templates/spatial_prompt_steps.txt
QSPATIAL_SPATIAL_PROMPT_STEPS = (
    "Question: {{ question }}\n"
    "\n"
    "---\n"
    "\n"
    "Use the following 4 steps sequentially to answer the question:\n"
    "\n"
    "Step 1 **Analyze the question**\n"
    "\n"
    "Step 2 **Identify up to 10 reference scales in the image, ranging from large to small sizes, and list "
    "them in the specified format**\n"
    "- A reference scale must be typical in size.\n"
    "- A reference scale can be the dimensions of an object or an object part.\n"
    "- A reference scale must NOT be floor tiles or floor planks.\n"
    '- Formulate the reference scales using the format: """The [choose from front-to-back, side-to-side, '
    "left-to-right, diameter, height (top to bottom edge), or mounting height (bottom edge to floor)] of "
    '[object or object part] is approximately [dimension estimate]."""\n'
    "\n"
    "Step 3 **Propose a robust step-by-step plan to answer the question by using the reference scales in "
    "Step 2**\n"
    "- A robust step-by-step plan performs the estimation in a coarse-to-fine manner.\n"
    "    - First, use a reliable and large-sized reference scale as the primary reference for estimation.\n"
    "    - Then, gradually use a reliable and smaller-sized reference scale for adjustment.\n"
    "    - Repeat until the estimation is precise enough.\n"
    "- When performing visual comparison, be aware of perspective distortion.\n"
    "- Do NOT rely on pixel measurements from the images.\n"
    "\n"
    "Step 4 **Focus on the image and follow the plan in Step 3 to answer the question**"
)


def _jinja(template: str, question: str) -> str:
    return template.replace("{{ question }}", question)


#: name -> (template, placeholder). ``None`` template means "the question unchanged".
_VARIANTS: dict[str, tuple[str, str]] = {
    "plain": ("{q}", "{q}"),
    "original": (SVQA_R1_ORIGINAL, "{Question}"),
    "spatial_reasoning": (SVQA_R1_SPATIAL_REASONING, "{ Question }"),
    "qspatial": (QSPATIAL_SYSTEM_PROMPT + "\n" + QSPATIAL_SPATIAL_PROMPT_SINGLE, "{{ question }}"),
    "qspatial_single": (QSPATIAL_SPATIAL_PROMPT_SINGLE, "{{ question }}"),
    "qspatial_steps": (QSPATIAL_SPATIAL_PROMPT_STEPS, "{{ question }}"),
    "qspatial_zero_shot": (QSPATIAL_ZERO_SHOT_PROMPT, "{{ question }}"),
    "qspatial_system_steps": (QSPATIAL_SYSTEM_PROMPT + "\n" + QSPATIAL_SPATIAL_PROMPT_STEPS, "{{ question }}"),
    "qspatial_system_zero_shot": (QSPATIAL_SYSTEM_PROMPT + "\n" + QSPATIAL_ZERO_SHOT_PROMPT, "{{ question }}"),
}

PROMPT_VARIANTS: tuple[str, ...] = tuple(_VARIANTS)
"""All variant names ``apply_prompt`` accepts."""


def prompt_variants() -> tuple[str, ...]:
    """The names ``apply_prompt`` accepts."""
    return PROMPT_VARIANTS


def apply_prompt(question: str, variant: str = "plain") -> str:
    """The prompt text for ``question`` under ``variant`` (see the module docstring for sources).

    >>> apply_prompt("How far is the door?", "original")[:41]
    'How far is the door? First output the thi'
    """
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, got {type(question).__name__}")
    try:
        template, placeholder = _VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown prompt variant {variant!r}; choose from {PROMPT_VARIANTS}") from None
    return template.replace(placeholder, question, 1)
