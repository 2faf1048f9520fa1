"""A small multi-file corpus and helpers to run the data stage on it and compare outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from superlab.common import RunDir, StageContext
from superlab.config import Recipe

from ..helpers import english, write_jsonl

OUTPUTS = (
    "data/clean.jsonl",
    "data/rejects.jsonl",
    "data/duplicates.parquet",
    "tokenizer/tokenizer.json",
)

# The data stage in a process of its own: ``python -c STAGE RECIPE_JSON RUN_DIR``.
STAGE = """
import json, sys
from pathlib import Path
from superlab.common import RunDir, StageContext
from superlab.config import Recipe
from superlab.data.stage import run
recipe = Recipe.model_validate(json.loads(sys.argv[1]))
run(StageContext(recipe=recipe, run=RunDir(Path(sys.argv[2]))))
"""


def make_inputs(src: Path, files: int = 4, per_file: int = 30) -> list[Path]:
    """``files`` JSONL files: good pages, cross-file exact duplicates, a short page, a bad line."""
    paths = []
    for f in range(files):
        rows: list[Any] = [
            {"id": f"f{f}d{i}", "text": english(f"{f}:{i}")} for i in range(per_file)
        ]
        rows.append({"id": f"f{f}dup", "text": english(f"{(f + 1) % files}:0").upper()})
        rows.append({"id": f"f{f}short", "text": "Too short to keep."})
        paths.append(write_jsonl(src / f"part-{f}.jsonl", rows))
        with open(paths[-1], "a", encoding="utf-8") as out:
            out.write("{not json\n")
    return paths


def recipe(paths: list[Path], **data: Any) -> dict[str, Any]:
    """A recipe dict for ``paths``; language id off (the test text is made-up words)."""
    return {
        "name": "t",
        "data": {
            "source": {"kind": "jsonl", "paths": [str(p) for p in paths]},
            "language": {"enabled": False},
            "heldout_fraction": 0.1,
            "shard_tokens": 4096,
            **data,
        },
        "tokenizer": {"vocab_size": 300},
    }


def context(run_dir: Path, recipe_dict: dict[str, Any]) -> StageContext:
    return StageContext(recipe=Recipe.model_validate(recipe_dict), run=RunDir(run_dir))


def outputs(run_dir: Path) -> dict[str, Any]:
    """Every final output's bytes, and stats.json without timings or resume counts."""
    out: dict[str, Any] = {name: (run_dir / name).read_bytes() for name in OUTPUTS}
    for p in sorted((run_dir / "data" / "shards").iterdir()):
        out[f"shards/{p.name}"] = p.read_bytes()
    out["stats"] = _untimed(json.loads((run_dir / "data" / "stats.json").read_text()))
    return out


def _untimed(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in ("seconds", "shards_reused")}
    return obj
