"""The layout of ``runs/<name>/`` (see DESIGN.md, "A run"): one place names every path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory. Creating the object touches nothing on disk."""

    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def markers(self) -> Path:
        """Stage completion markers, ``<stage>.json``, written last by atomic rename."""
        return self.root / ".done"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def data_work(self) -> Path:
        """Intermediate data-step outputs and their own completion markers."""
        return self.data / "work"

    @property
    def shards(self) -> Path:
        return self.data / "shards"

    @property
    def data_stats(self) -> Path:
        return self.data / "stats.json"

    @property
    def tokenizer_dir(self) -> Path:
        return self.root / "tokenizer"

    @property
    def tokenizer(self) -> Path:
        return self.tokenizer_dir / "tokenizer.json"

    @property
    def ckpt(self) -> Path:
        return self.root / "ckpt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def eval(self) -> Path:
        return self.root / "eval.json"

    @property
    def samples(self) -> Path:
        return self.root / "samples.json"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def marker(self, stage: str) -> Path:
        return self.markers / f"{stage}.json"
