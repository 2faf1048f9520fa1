"""The recipe: every section's schema assembled, with the checks that span sections.

Each section's schema lives in its own module (``superlab.config.data``, ``.model``,
``.train``, ...); their public names are re-exported here so callers may import them from
``superlab.config.recipe`` as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from superlab.config.data import (
    DataConfig,
    DedupConfig,
    FilterConfig,
    LanguageConfig,
    MinHashConfig,
    MixSourceConfig,
    PIIConfig,
    ProbeMixConfig,
    SourceConfig,
)
from superlab.config.eval import ContaminationConfig, EvalConfig, HLEConfig, ProbeEvalConfig
from superlab.config.load import RecipeError, load_yaml
from superlab.config.model import (
    AttentionConfig,
    LayerSpec,
    ModelConfig,
    MoEConfig,
    NopeTemperatureConfig,
    RopeScalingConfig,
)
from superlab.config.plan import PlanConfig
from superlab.config.post import PrefConfig, SFTConfig
from superlab.config.probes import ProbeSpec
from superlab.config.rl import RewardSpec, RLConfig
from superlab.config.section import FieldError, Section
from superlab.config.serve import ServeConfig
from superlab.config.tokenizer import TokenizerConfig
from superlab.config.train import TrainConfig

__all__ = [
    "AttentionConfig",
    "ContaminationConfig",
    "DataConfig",
    "DedupConfig",
    "EvalConfig",
    "FieldError",
    "FilterConfig",
    "HLEConfig",
    "LanguageConfig",
    "LayerSpec",
    "MinHashConfig",
    "MixSourceConfig",
    "MoEConfig",
    "ModelConfig",
    "NopeTemperatureConfig",
    "PIIConfig",
    "PlanConfig",
    "PrefConfig",
    "ProbeEvalConfig",
    "ProbeMixConfig",
    "ProbeSpec",
    "RLConfig",
    "Recipe",
    "RecipeError",
    "RewardSpec",
    "RopeScalingConfig",
    "SFTConfig",
    "Section",
    "ServeConfig",
    "SourceConfig",
    "TokenizerConfig",
    "TrainConfig",
    "load_recipe",
]


class Recipe(Section):
    """One run, from web documents to a served model and its cost."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)
    sft: SFTConfig | None = None  # post-training stages run only when their section is set
    pref: PrefConfig | None = None
    rl: RLConfig | None = None

    @model_validator(mode="after")
    def _cross_section(self) -> Recipe:
        if (
            self.data.probes is not None
            and self.eval.probes is not None
            and self.data.probes.seed == self.eval.probes.seed
        ):
            raise FieldError(
                "eval.probes.seed",
                f"eval.probes.seed ({self.eval.probes.seed}) equals data.probes.seed: the eval "
                "items would be the training documents",
            )
        if self.train.seq_len > self.model.max_seq_len:
            raise FieldError(
                "train.seq_len",
                f"train.seq_len ({self.train.seq_len}) exceeds model.max_seq_len "
                f"({self.model.max_seq_len})",
            )
        if self.model.vocab_size is not None and self.model.vocab_size < self.tokenizer.vocab_size:
            raise FieldError(
                "model.vocab_size",
                f"model.vocab_size ({self.model.vocab_size}) is smaller than "
                f"tokenizer.vocab_size ({self.tokenizer.vocab_size})",
            )
        return self

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> Recipe:
        """Load and validate a recipe file; see ``superlab.config.load``."""
        return load_recipe(path, overrides)

    def resolved(self) -> dict[str, Any]:
        """The recipe with every default filled in, as plain data."""
        return self.model_dump(mode="json")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load, override and validate the recipe at ``path``."""
    return load_yaml(Recipe, path, overrides)
