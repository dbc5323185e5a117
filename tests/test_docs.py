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
