"""``model.vision``: the image encoder and projector of an early-fusion model (Llama 4's).

A ViT over ``patch_size`` patches of a square ``image_size`` image (2-D RoPE over patch
rows and columns, a learned class token and absolute position table), then pixel shuffle
(``pixel_shuffle_ratio`` 0.5 merges each 2x2 patch block into one token) and an MLP
projector into the text model's width. Each image becomes ``tokens_per_image``
placeholder tokens (``image_token_id``) between ``image_start_id`` and ``image_end_id``
in the text; the projector's outputs replace the placeholders' embeddings
(``superlab.model.vision``). Names and defaults follow transformers'
``Llama4VisionConfig`` (Scout: 448 px, 14 px patches, 34 layers of width 1408).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from superlab.config.section import FieldError, Section


class VisionConfig(Section):
    """The vision tower, pixel shuffle, projector, and the image token ids."""

    image_size: int = Field(default=448, ge=1, description="square input side, pixels")
    patch_size: int = Field(default=14, ge=1)
    channels: int = Field(default=3, ge=1)
    d_model: int = Field(default=1408, ge=4)
    n_layers: int = Field(default=34, ge=1)
    n_heads: int = Field(default=16, ge=1)
    ffn_hidden: int = Field(default=5632, ge=1)
    rope_theta: float = Field(default=10_000.0, gt=0)
    # 0.5: each 2x2 block of patch outputs becomes one token of 4x the width.
    pixel_shuffle_ratio: float = Field(default=0.5, gt=0, le=1)
    # Width of the pixel-shuffle MLP (transformers' projector_input_dim = projector_output_dim
    # = vision_output_dim); a last linear maps it to the text model's d_model.
    projector_dim: int = Field(default=4096, ge=1)
    # Token ids in the text vocabulary (None = the tokenizer's, filled in like vocab_size).
    image_token_id: int | None = Field(default=None, ge=0)
    image_start_id: int | None = Field(default=None, ge=0)
    image_end_id: int | None = Field(default=None, ge=0)
    # Pixel normalisation, per channel: (x / 255 - mean) / std (``superlab.model.vision.
    # normalize``). Llama 4's image processor: mean = std = 0.5, i.e. [-1, 1].
    pixel_mean: list[float] = Field(default_factory=lambda: [0.5, 0.5, 0.5])
    pixel_std: list[float] = Field(default_factory=lambda: [0.5, 0.5, 0.5])

    @model_validator(mode="after")
    def _shapes(self) -> VisionConfig:
        if self.image_size % self.patch_size:
            raise FieldError(
                "patch_size",
                f"patch_size ({self.patch_size}) must divide image_size ({self.image_size})",
            )
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 4:
            raise FieldError(
                "n_heads",
                f"head dim d_model/n_heads ({self.d_model}/{self.n_heads}) must be a multiple"
                " of 4 for 2-D RoPE",
            )
        for name in ("pixel_mean", "pixel_std"):
            if len(getattr(self, name)) != self.channels:
                raise FieldError(name, f"{name} needs one value per channel ({self.channels})")
        if any(s <= 0 for s in self.pixel_std):
            raise FieldError("pixel_std", f"pixel_std values must be > 0, got {self.pixel_std}")
        side, merge = self.grid, round(1 / self.pixel_shuffle_ratio)
        if abs(merge * self.pixel_shuffle_ratio - 1) > 1e-9 or side % merge:
            raise FieldError(
                "pixel_shuffle_ratio",
                f"1/pixel_shuffle_ratio must be an integer dividing the patch grid side ({side})",
            )
        return self

    @property
    def grid(self) -> int:
        """Patches along each side."""
        return self.image_size // self.patch_size

    @property
    def merge(self) -> int:
        """Patches merged along each side by pixel shuffle (2 for ratio 0.5)."""
        return round(1 / self.pixel_shuffle_ratio)

    @property
    def tokens_per_image(self) -> int:
        """Placeholder tokens one image takes in the text: (grid / merge)^2."""
        return (self.grid // self.merge) ** 2
