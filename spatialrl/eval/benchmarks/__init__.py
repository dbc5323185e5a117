"""Benchmark scorers, one module each, registered by name.

Importing this package imports every built-in benchmark module so ``get_benchmark(name)``
finds them; a user's own benchmark registers itself with ``register_benchmark``.
"""

from __future__ import annotations

import importlib
import pkgutil

from spatialrl.eval.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    EvalItem,
    ItemScore,
    register_benchmark,
    score_predictions,
)



def load_builtin_benchmarks() -> None:
    """Import every module of this package (each registers its ``Benchmark`` subclasses)."""
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def get_benchmark(name: str) -> Benchmark:
    """An instance of the benchmark registered as ``name``."""
    load_builtin_benchmarks()
    try:
        return BENCHMARKS[name]()
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}") from None


__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "BenchmarkDataError",
    "EvalItem",
    "ItemScore",
    "get_benchmark",
    "load_builtin_benchmarks",
    "register_benchmark",
    "score_predictions",
]
