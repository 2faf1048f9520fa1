"""A mixture search grid (``superlab mix GRID.yaml``): the schema of the grid file.

    name: mix-demo
    base: mix.yaml             # a recipe with data.sources (path relative to the grid, or inline)
    mode: regmix               # or leave_one_out
    proxies: 24                # regmix: proxy runs, mixtures drawn around the natural one
    proxy: {train.steps: 60}   # dotted overrides for the proxy runs (never data or tokenizer)
    confirm: {}                # dotted overrides for the confirmation runs
    confirm_seeds: [0, 1]
    target: {metric: bits_per_byte, sources: null}   # mean over these sources (null: all)

See ``superlab.mix`` for what each field does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TargetConfig(BaseModel):
    """What the search minimizes: a held-out figure per source, averaged over sources."""

    model_config = ConfigDict(extra="forbid")

    metric: Literal["bits_per_byte", "loss"] = "bits_per_byte"
    sources: list[str] | None = None  # None: the mean over every source


class MixGridConfig(BaseModel):
    """The grid file's schema."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=60)
    base: dict[str, Any] | str
    mode: Literal["regmix", "leave_one_out"] = "regmix"
    proxies: int = Field(default=24, ge=4)
    seed: int = 0  # draws the proxy mixtures, the cross-validation folds and the search
    # Dirichlet(alpha = c * K * natural), with c log-uniform in this range per draw: small c
    # gives sparse mixtures, large c ones near the natural distribution (RegMix, sec. 3).
    concentration: tuple[float, float] = (0.3, 5.0)
    proxy: dict[str, Any] = Field(default_factory=dict)
    confirm: dict[str, Any] = Field(default_factory=dict)
    proxy_seed: int = 0
    confirm_seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    target: TargetConfig = Field(default_factory=TargetConfig)
    # quadratic: ridge regression on the weights and their pairwise products (scikit-learn);
    # gbm: gradient-boosted trees (scikit-learn's LightGBM-style HistGradientBoosting).
    regression: Literal["quadratic", "gbm"] = "quadratic"
    cv_folds: int = Field(default=5, ge=2)
    search_samples: int = Field(default=100_000, ge=1000)
    top_k: int = Field(default=100, ge=1)  # the predicted mixture: mean of the top_k found
    jobs: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> MixGridConfig:
        lo, hi = self.concentration
        if not 0 < lo <= hi:
            raise ValueError(f"concentration: need 0 < low <= high, got {self.concentration}")
        for key in ("proxy", "confirm"):
            for dotted in getattr(self, key):
                if dotted.split(".")[0] in ("data", "tokenizer", "name", "seed"):
                    raise ValueError(f"{key}: '{dotted}' would change the shared data stage")
        return self
