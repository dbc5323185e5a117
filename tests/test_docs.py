"""Documents the code and the recipes cite exist: docs/design.md (the design the configs and
modules refer to), and every docs/*.md or DESIGN.md a recipe names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = re.compile(r"\b(?:docs/[\w.-]+\.md|DESIGN\.md)\b")


def _cited(paths):
    for path in paths:
        for match in DOC.finditer(path.read_text(encoding="utf-8")):
            yield path.relative_to(ROOT).as_posix(), match.group(0)


def test_recipes_cite_only_documents_that_exist():
    missing = [(where, doc) for where, doc in _cited(sorted((ROOT / "configs").rglob("*.yaml")))
               if not (ROOT / doc).is_file()]
    assert not missing, f"recipes cite missing documents: {missing}"


def test_package_cites_only_docs_that_exist():
    cited = [(where, doc) for where, doc in _cited(sorted((ROOT / "spatialrl").rglob("*.py"))) if doc.startswith("docs/")]
    assert cited, "the package cites its docs"
    missing = [(where, doc) for where, doc in cited if not (ROOT / doc).is_file()]
    assert not missing, f"modules cite missing documents: {missing}"


def test_design_document_covers_pipeline_method_and_conventions():
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    for heading in ("## Pipeline", "## Method", "### Combined method", "## Conventions"):
        assert heading in text
    for formula in ("2 / (1 + exp(k * e))", "k_min + (k_max - k_min) * sigmoid(s * (t / T - tau))",
                    "r_hat_i ** alpha", "eta * |delta|", "T_conv = min{t : Acc_t >= 0.95 Acc_max}"):
        assert formula in text, formula


# Paths of the performance scripts and the investigations, as docs and READMEs cite them; a path
# inside the package (spatialrl/eval/benchmarks/...) is not one of them.
SCRIPT_PATH = re.compile(r"(?<![\w/.-])(?:benchmarks|experiments)/[\w./*<>-]*")


def _user_docs():
    """The README, docs/, and the scripts' own READMEs and usage lines."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
            *(p for folder in ("experiments", "benchmarks") for pattern in ("*.md", "*.py")
              for p in sorted((ROOT / folder).rglob(pattern)))]


def test_docs_cite_only_scripts_and_folders_that_exist():
    cited, missing = 0, []
    for doc in _user_docs():
        for match in SCRIPT_PATH.finditer(doc.read_text(encoding="utf-8")):
            path = match.group(0).rstrip(".")
            if any(c in path for c in "*<>"):  # a pattern such as experiments/<question>/<script>.py
                continue
            cited += 1
            if not (ROOT / path).exists():
                missing.append((doc.relative_to(ROOT).as_posix(), path))
    assert cited > 50, "the docs cite their scripts"
    assert not missing, f"docs cite missing scripts or folders: {missing}"


def _bench_scripts() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target, "the Makefile has a bench target"
    return set(re.findall(r"\bbenchmarks/[\w/.-]+\.py\b", target.group(1)))


def test_benchmarks_holds_only_what_make_bench_runs():
    # benchmarks/gpu/ is the GPU check (issue #23): performance too, but it needs a GPU, so
    # `make bench` on a CPU machine cannot run it; its README says how.
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.relative_to(ROOT).parts[:2] != ("benchmarks", "gpu")}
    assert (ROOT / "benchmarks" / "gpu" / "check.sh").is_file() and (ROOT / "benchmarks" / "gpu" / "README.md").is_file()
    run = _bench_scripts()
    assert run, "make bench runs the performance scripts"
    assert files == run, (f"benchmarks/ is for the scripts `make bench` runs; not run: {sorted(files - run)}, "
                          f"run but missing: {sorted(run - files)}. Investigations go to experiments/<question>/.")


def test_every_experiment_has_a_readme_with_its_commands_and_is_indexed():
    index = (ROOT / "experiments" / "README.md").read_text(encoding="utf-8")
    folders = [d for d in sorted((ROOT / "experiments").iterdir()) if d.is_dir() and not d.name.startswith(("_", "."))
               and d.name != "__pycache__"]
    assert folders, "experiments/ holds the investigations"
    for folder in folders:
        rel = folder.relative_to(ROOT).as_posix()
        assert f"`{rel}/`" in index, f"experiments/README.md does not list {rel}/"
        readme = folder / "README.md"
        assert readme.is_file(), f"{rel}/ has no README.md (the question, the command, the finding)"
        text = readme.read_text(encoding="utf-8")
        for script in sorted(folder.glob("*.py")):
            command = f"experiments/{folder.name}/{script.name}"
            assert command in text or script.name in text, f"{rel}/README.md does not give {script.name}'s command"
        assert ".venv/bin/python experiments/" in text, f"{rel}/README.md gives no command runnable from the repository root"
