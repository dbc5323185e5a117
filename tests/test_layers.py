"""The direction of dependencies inside ``spatialrl`` (docs/design.md, "Pipeline": every arrow
points down the pipeline, never back up).

Every module of the package is read with ``ast`` (nothing is imported, so no import side
effects), every ``import`` statement in it counts, at module level or inside a function, a
class or an ``if TYPE_CHECKING`` block, and the graph of module -> module edges must have

- no cycle, and
- no edge from a lower layer of :data:`LAYERS` to a higher one.

Edges into the root package ``spatialrl`` (``from spatialrl import __version__``) are not
counted: Python runs ``spatialrl/__init__.py`` before any submodule, so they say nothing about
direction. Modules that ``spatialrl.cli`` loads by name (``importlib.import_module``) are
not edges either; the CLI is on top, so they could only point down.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spatialrl"

#: The layers, from the bottom up: a module may import its own layer and the layers below it.
#: A module belongs to the layer of the longest prefix that names it or a package above it
#: (``spatialrl`` itself matches only the root package). The order is the pipeline of
#: docs/design.md: world -> data -> models -> train -> eval -> report, with the CLI on top
#: and the leaf libraries (parsing, rewards, advantages, prompts) below everything.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("leaf libraries", ("spatialrl._arrays", "spatialrl._extras", "spatialrl._fs", "spatialrl._image_size", "spatialrl.answers", "spatialrl.rewards",
                        "spatialrl.advantages", "spatialrl.prompts")),
    ("world", ("spatialrl.world",)),
    ("data", ("spatialrl.data",)),
    ("models", ("spatialrl.models",)),
    ("train", ("spatialrl.train",)),
    ("eval", ("spatialrl.eval",)),
    ("report", ("spatialrl.report",)),
    ("commands and edges", ("spatialrl", "spatialrl.__main__", "spatialrl.cli", "spatialrl.demo", "spatialrl.doctor",
                            "spatialrl.integrations", "spatialrl.reproduce")),
]

#: Downward edges that are still refused: a model does not know the world (it takes its
#: tokenizer corpus as an argument; ``spatialrl.data.corpus`` builds it from the world).
FORBIDDEN: list[tuple[str, str]] = [
    ("spatialrl.models", "spatialrl.world"),
]

#: Upward edges tolerated for now, each with the reason and its way out. Keep this list short
#: and remove an entry as soon as its edge is gone (``direction_problems(edges, allowed=[])``
#: lists what the entries still excuse).
ALLOWED_UPWARD: list[tuple[str, str, str]] = []


def _under(module: str, prefix: str) -> bool:
    """``module`` is ``prefix`` or inside it (``prefix`` = the root package matches only itself)."""
    if prefix == "spatialrl":
        return module == prefix
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of ``module``'s layer (longest matching prefix), or None."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _under(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def package_modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_edges(modules: dict[str, Path]) -> dict[tuple[str, str], int]:
    """``(importer, imported) -> first line``, for every import of a package module by another,
    wherever the import statement stands in the file."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[tuple[str, str], int] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # ``from pkg import sub`` depends on the submodule when ``sub`` is one
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.split(".")[0] == "spatialrl" else None
                if target is None or target == module or target == "spatialrl":
                    continue
                edges.setdefault((module, target), node.lineno)
    return edges


def cycles(edges: dict[tuple[str, str], int]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the package's size
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def direction_problems(edges: dict[tuple[str, str], int],
                       allowed: list[tuple[str, str, str]] | None = None) -> list[str]:
    """One line per edge that runs up the layers or is forbidden, and is not ``allowed`` for now
    (default :data:`ALLOWED_UPWARD`)."""
    allowed = ALLOWED_UPWARD if allowed is None else allowed
    problems = []
    for (a, b), line in sorted(edges.items()):
        la, lb = layer_of(a), layer_of(b)
        if la is None or lb is None:
            continue  # reported by test_every_module_has_a_layer
        if la < lb and not any(_under(a, x) and _under(b, y) for x, y, _ in allowed):
            problems.append(f"{a}:{line} imports {b}: {LAYERS[la][0]} must not import {LAYERS[lb][0]}")
        for x, y in FORBIDDEN:
            if _under(a, x) and _under(b, y):
                problems.append(f"{a}:{line} imports {b}: {x} must not import {y}")
    return problems


@pytest.fixture(scope="module")
def edges() -> dict[tuple[str, str], int]:
    return import_edges(package_modules())


def test_the_walk_sees_module_and_function_level_imports(edges):
    # a module-level import, and one inside a function: a vacuous graph must not pass
    assert ("spatialrl.data.export", "spatialrl.prompts") in edges
    assert ("spatialrl.data.build", "spatialrl.data.export") in edges  # inside BuildConfig.__post_init__
    assert ("spatialrl.train.grpo", "spatialrl.train.job") in edges  # inside train_grpo
    assert ("spatialrl.eval.runner", "spatialrl.models.generate") in edges


def test_every_module_has_a_layer():
    missing = [m for m in package_modules() if layer_of(m) is None]
    assert not missing, f"add these modules' packages to LAYERS in {__file__}: {missing}"


def test_no_import_cycle(edges):
    found = cycles(edges)
    detail = [" <-> ".join(c) + ": " + "; ".join(f"{a}:{line} -> {b}" for (a, b), line in sorted(edges.items())
                                                  if a in c and b in c) for c in found]
    assert not found, "import cycles inside spatialrl:\n" + "\n".join(detail)


def test_no_import_runs_up_the_layers(edges):
    problems = direction_problems(edges)
    assert not problems, "imports that run up the pipeline:\n" + "\n".join(problems)


def test_the_checks_catch_a_cycle_and_an_upward_edge():
    fake = {("spatialrl.data.a", "spatialrl.data.b"): 1, ("spatialrl.data.b", "spatialrl.data.a"): 2,
            ("spatialrl.world.x", "spatialrl.train.y"): 3, ("spatialrl.models.m", "spatialrl.world.w"): 4,
            ("spatialrl.eval.e", "spatialrl.world.w"): 5}
    assert cycles(fake) == [["spatialrl.data.a", "spatialrl.data.b"]]
    assert direction_problems(fake) == [
        "spatialrl.models.m:4 imports spatialrl.world.w: spatialrl.models must not import spatialrl.world",
        "spatialrl.world.x:3 imports spatialrl.train.y: world must not import train",
    ]
    assert layer_of("spatialrl") == layer_of("spatialrl.cli") == len(LAYERS) - 1
