"""Models: the tiny Qwen2.5-VL for CPU work and loading of any Qwen2.5-VL-like checkpoint.

Importing this package makes ``AutoProcessor`` return the image-only Qwen2.5-VL processor
(:class:`spatialrl.models.tiny.Qwen2_5_VLImageOnlyProcessor`) for ``qwen2_5_vl`` checkpoints
that name it, which is what ``spatialrl model tiny`` writes. The stock ``Qwen2_5_VLProcessor``
needs a video processor, hence torchvision, which has no CPU build here; without the
registration ``AutoProcessor`` silently falls back to the tokenizer alone and TRL treats the
model as text-only.

The registration is lazy so that ``import spatialrl`` stays cheap (importing transformers
takes seconds): if transformers' ``processing_auto`` module is already imported it happens
now, otherwise right after that module is first imported (a one-shot import hook).
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

__all__ = ["Qwen2_5_VLImageOnlyProcessor", "load_model_and_processor", "load_processor", "register",
           "register_lazily"]

_AUTO_MODULE = "transformers.models.auto.processing_auto"


def register() -> None:
    """Register the image-only processor with ``AutoProcessor`` now (imports transformers)."""
    from spatialrl.models.tiny import register as _register

    _register()


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of ``processing_auto`` so that :func:`register`
    runs right after that module has executed, then removes itself."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != _AUTO_MODULE:
            return None
        spec = None
        for finder in sys.meta_path:  # whoever would have found it (path finder, editable installs...)
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_register(module: Any) -> None:
            exec_module(module)
            _remove_hook()
            try:
                register()
            except Exception:  # pragma: no cover - never break transformers' import
                pass

        loader.exec_module = exec_and_register  # type: ignore[method-assign]
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterAfterImport)]


def register_lazily() -> None:
    """Register now if transformers' auto-processor module is loaded, else on its first import."""
    if _AUTO_MODULE in sys.modules:
        register()
    elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())


#: The ``config.json`` key where a model records the separator it was trained with between a
#: question and the answer-format instruction (``spatialrl.prompts.prompt_text``).
PROMPT_SEPARATOR_KEY = "spatialrl_prompt_separator"


def prompt_separator(model: Any) -> str | None:
    """The prompt separator recorded by ``model`` (a loaded model, or a local model directory),
    or ``None`` when it records none (a model we did not train: use SVQA-R1 Table 9's space)."""
    config = getattr(model, "config", None)
    if config is not None:
        value = getattr(config, PROMPT_SEPARATOR_KEY, None)
        return value if isinstance(value, str) else None
    import json
    from pathlib import Path

    try:
        path = Path(str(model)) / "config.json"
        value = json.loads(path.read_text(encoding="utf-8")).get(PROMPT_SEPARATOR_KEY) if path.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def load_model_and_processor(path: Any, dtype: Any = None, device: str | None = None,
                             min_pixels: int | None = None, max_pixels: int | None = None,
                             attn_implementation: str | None = None) -> tuple[Any, Any]:
    """See :func:`spatialrl.models.tiny.load_model_and_processor`."""
    from spatialrl.models.tiny import load_model_and_processor as _load

    return _load(path, dtype=dtype, device=device, min_pixels=min_pixels, max_pixels=max_pixels,
                 attn_implementation=attn_implementation)


def load_processor(path: Any, min_pixels: int | None = None, max_pixels: int | None = None) -> Any:
    """See :func:`spatialrl.models.tiny.load_processor`."""
    from spatialrl.models.tiny import load_processor as _load

    return _load(path, min_pixels=min_pixels, max_pixels=max_pixels)


def __getattr__(name: str) -> Any:
    if name == "Qwen2_5_VLImageOnlyProcessor":
        from spatialrl.models.tiny import processor_class

        return processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_lazily()
