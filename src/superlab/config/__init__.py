"""The recipe: one YAML file, validated by pydantic, resolved in one place.

``Recipe.load(path)`` returns a fully resolved recipe or raises ``RecipeError``
whose message is one line naming the file and the dotted field path.
"""

from superlab.config.load import RecipeError, load_recipe
from superlab.config.recipe import (
    AttentionConfig,
    DataConfig,
    EvalConfig,
    FilterConfig,
    ModelConfig,
    MoEConfig,
    PlanConfig,
    Recipe,
    ServeConfig,
    SourceConfig,
    TokenizerConfig,
    TrainConfig,
)

__all__ = [
    "AttentionConfig",
    "DataConfig",
    "EvalConfig",
    "FilterConfig",
    "MoEConfig",
    "ModelConfig",
    "PlanConfig",
    "Recipe",
    "RecipeError",
    "ServeConfig",
    "SourceConfig",
    "TokenizerConfig",
    "TrainConfig",
    "load_recipe",
]
