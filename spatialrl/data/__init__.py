"""Datasets: build, store and export spatial QA samples.

* :mod:`.schema` -- one row per sample (``datasets.Features``), documented in ``docs/data.md``.
* :mod:`.build` -- ``spatialrl data build``: the synthetic mirror-paired dataset as a Hugging
  Face dataset repository (parquet with embedded images, dataset card).
* :mod:`.export` -- TRL (conversational prompts with an image) and verl (RL parquet) formats.
* :mod:`.annotations` -- real 3D annotations (JSON) converted to scenes for the same question
  templates.
* :mod:`.mirror_text` / :mod:`.llm` -- mirrored twins of external datasets by text rewriting.
* :mod:`.typed_answers` -- typed answer columns (schema) from an external row's question and answer.
* :mod:`.vqasynth_rows` -- ``spatialrl data vqasynth``: VQASynth dialogues as single-turn rows.

Submodules are imported on demand (nothing heavy is imported here).
"""
