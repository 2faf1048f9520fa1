"""The ``eval`` section: perplexity, long-context probes, contamination, HLE, image VQA."""

from __future__ import annotations

from pydantic import Field, model_validator

from superlab.config.probes import ProbeSpec
from superlab.config.section import FieldError, Section


class ProbeEvalConfig(ProbeSpec):
    """Long-context probes scored on the newest checkpoint (``superlab.eval.probes.score``)."""

    items: int = Field(default=100, ge=1, description="items per kind")
    seed: int = Field(default=0, description="must differ from data.probes.seed")
    # Chunk sizes to classify items by (same / adjacent / far chunk, straddling an edge),
    # besides the model's own chunk sizes.
    chunk_sizes: list[int] = Field(default_factory=list)
    batch_size: int = Field(default=16, ge=1)

    @model_validator(mode="after")
    def _positive_chunks(self) -> ProbeEvalConfig:
        for j, c in enumerate(self.chunk_sizes):
            if c < 1:
                raise FieldError(f"chunk_sizes.{j}", f"chunk size {c} must be at least 1")
        return self


class ContaminationConfig(Section):
    """N-gram overlap between the train shards and each eval set, and Min-K% probability."""

    # 13-grams as in GPT-3's contamination study (Brown et al. 2020, appendix C).
    ngram: int = Field(default=13, ge=1)
    # An item is contaminated when at least this fraction of its n-grams occur in the
    # train split (PaLM, Chowdhery et al. 2022, sec. 8, used 70% of 8-grams).
    min_overlap: float = Field(default=0.7, gt=0, le=1)
    # Min-K% probability (Shi et al. 2023): mean log-probability of the k% least likely tokens.
    min_k_percent: float = Field(default=20.0, gt=0, le=100)


class HLEConfig(Section):
    """A Humanity's Last Exam-format file (question, answer, answer_type, category)."""

    path: str = Field(description="local .json, .jsonl or .parquet file")
    prompt: str = "Question: {question}\nAnswer:"
    max_new_tokens: int = Field(default=32, ge=1)
    limit: int | None = Field(default=None, ge=1, description="first N items only")
    # Target items per calibration bin (HLE's beta = 100).
    calibration_bin: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _prompt_has_question(self) -> HLEConfig:
        if "{question}" not in self.prompt:
            raise FieldError("prompt", "prompt must contain '{question}'")
        return self


class VQAEvalConfig(Section):
    """Held-out exact match on the image task's questions, per question type
    (``superlab.eval.vqa``), against a text-only control.

    ``control``: the train stage also trains the recipe's model without the tower on the
    same questions without their images (same seed, steps and batches; a second training
    run, about a third of the vision model's time), and eval.json reports both and the
    difference, which is what the images contributed.
    """

    control: bool = True
    batch_size: int = Field(default=64, ge=1)


class EvalConfig(Section):
    """Evaluation of the newest checkpoint."""

    perplexity: bool = True
    batches: int = Field(default=8, ge=1)
    probes: ProbeEvalConfig | None = None
    contamination: ContaminationConfig | None = None
    hle: HLEConfig | None = None
    vqa: VQAEvalConfig | None = None
