"""The recipe: one YAML file, validated by pydantic, resolved in one place.

``Recipe.load(path)`` returns a fully resolved recipe or raises ``RecipeError``
whose message is one line naming the file and the dotted field path.
"""

from superlab.config.load import RecipeError
from superlab.config.recipe import (
    AttentionConfig,
    DataConfig,
    DedupConfig,
    EvalConfig,
    FilterConfig,
    LanguageConfig,
    MinHashConfig,
    ModelConfig,
    MoEConfig,
    PIIConfig,
    PlanConfig,
    Recipe,
    ServeConfig,
    SourceConfig,
    TokenizerConfig,
    TrainConfig,
    load_recipe,
)

__all__ = [
    "AttentionConfig",
    "DataConfig",
    "DedupConfig",
    "EvalConfig",
    "FilterConfig",
    "LanguageConfig",
    "MinHashConfig",
    "MoEConfig",
    "ModelConfig",
    "PIIConfig",
    "PlanConfig",
    "Recipe",
    "RecipeError",
    "ServeConfig",
    "SourceConfig",
    "TokenizerConfig",
    "TrainConfig",
    "load_recipe",
]
