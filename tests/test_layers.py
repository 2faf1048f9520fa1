"""Imports point down only (docs/architecture.md): a package never imports a layer above it.

Every ``from superlab.X ...`` / ``import superlab.X`` in src/, at module level or inside a
function, is checked against the layer table; the edges inside one layer that the table
allows are listed here, so a new one is a visible decision, not an accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "superlab"

LAYER = {
    "__main__": 8, "cli": 7, "cli_plan": 6,
    "ablate": 5, "mix": 5,
    "run": 4,
    "data": 3, "train": 3, "eval": 3, "serve": 3, "report": 3, "post": 3,
    "model": 2,
    "plan": 1,
    "config": 0, "common": 0,
}  # fmt: skip
# Edges inside one layer (or from numbers to math) that docs/architecture.md allows:
# importer -> the modules of the other package it may use.
ALLOWED = {
    ("eval", "data"): {"data.tokenizer", "data.probes", "data.chat"},
    ("serve", "data"): {"data.tokenizer", "data.chat", "data.images.codec"},
    ("report", "plan"): None,  # report draws plan's numbers
    ("plan", "model"): {"model.counts"},
    ("post", "data"): None,
    ("post", "train"): None,
    ("post", "serve"): None,
    ("post", "eval"): None,
    ("common", "config"): {"config.recipe", "config"},
    ("mix", "ablate"): None,  # a mixture search reuses the ablation runner and its checks
}


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("superlab."):
                names = [a.name for a in node.names]
                out += [f"{node.module}.{n}" for n in names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("superlab.")]
    return out


def _violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        me = path.relative_to(SRC).parts[0].removesuffix(".py")
        if me not in LAYER:
            continue
        for module in _imports(path):
            parts = module.split(".")
            other = parts[1]
            if other == me or other not in LAYER:
                continue
            if LAYER[other] < LAYER[me] and (me, other) not in ALLOWED:
                continue
            allowed = ALLOWED.get((me, other), set())
            if (me, other) in ALLOWED and (
                allowed is None or any(".".join(parts[1:]).startswith(a) for a in allowed)
            ):
                continue
            bad.append(f"{path.relative_to(SRC.parent)}: imports {module}")
    return sorted(set(bad))


def test_no_package_imports_a_layer_above_it_or_an_unlisted_neighbour() -> None:
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    fake = tmp_path / "superlab"
    (fake / "model").mkdir(parents=True)
    upward = "def f():\n    from superlab.serve.engine import Engine\n"  # inside a function
    (fake / "model" / "bad.py").write_text(upward)
    (fake / "plan").mkdir()
    (fake / "plan" / "ok.py").write_text("from superlab.model.counts import flops\n")
    (fake / "plan" / "no.py").write_text("from superlab.model.transformer import Transformer\n")
    globals()["SRC"], old = fake, SRC
    try:
        found = _violations()
    finally:
        globals()["SRC"] = old
    assert found == [
        "superlab/model/bad.py: imports superlab.serve.engine.Engine",
        "superlab/plan/no.py: imports superlab.model.transformer.Transformer",
    ]
