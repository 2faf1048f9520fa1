"""The ``data`` section: sources, filters, language and PII, dedup, shards, probe documents."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from superlab.config.probes import ProbeSpec
from superlab.config.section import FieldError, Section


class SourceConfig(Section):
    """Where documents come from."""

    kind: Literal["wiki_demo", "jsonl", "parquet", "warc"] = "wiki_demo"
    # jsonl / parquet / warc: files or globs. jsonl and parquet rows hold a text field;
    # warc (and .warc.gz, WET) records are HTML responses or plain text conversions.
    paths: list[str] = Field(default_factory=list)
    text_field: str = "text"
    id_field: str | None = "id"
    # warc: HTML-to-text extractor.
    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"
    # A record larger than this (bytes of text) is rejected as giant, not loaded whole.
    max_doc_bytes: int = Field(default=2_000_000, ge=1)
    # wiki_demo: how many source articles to draw (None = all 10,033) and the
    # seed that plants duplicates, boilerplate, spam and foreign pages.
    max_articles: int | None = Field(default=None, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _paths_for_files(self) -> SourceConfig:
        if self.kind != "wiki_demo" and not self.paths:
            raise FieldError("paths", f"kind '{self.kind}' needs at least one entry in 'paths'")
        return self


class FilterConfig(Section):
    """Quality filters. Thresholds are Gopher's (Rae et al. 2021, appendix A) and C4's."""

    min_words: int = Field(default=50, ge=0)
    max_words: int = Field(default=100_000, ge=1)
    # Gopher: mean word length within [3, 10] characters.
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    # Gopher: symbol-to-word ratio (# and ellipsis) at most 0.1.
    max_symbol_word_ratio: float = Field(default=0.1, ge=0)
    # Gopher: at most 90% of lines start with a bullet, at most 30% end with an ellipsis.
    max_bullet_lines_ratio: float = Field(default=0.9, ge=0, le=1)
    max_ellipsis_lines_ratio: float = Field(default=0.3, ge=0, le=1)
    # Gopher: at least 80% of words contain an alphabetic character.
    min_alpha_words_ratio: float = Field(default=0.8, ge=0, le=1)
    # Gopher: at least 2 of the English stop words (the, be, to, of, and, that, have, with).
    min_stop_words: int = Field(default=2, ge=0)
    # Gopher repetition: fraction of characters in duplicated lines at most 0.2,
    # top 2-gram character fraction at most 0.2.
    max_dup_line_char_ratio: float = Field(default=0.2, ge=0, le=1)
    max_top_2gram_char_ratio: float = Field(default=0.2, ge=0, le=1)
    # C4 line rules: drop lines without terminal punctuation, with fewer than 3
    # words, or mentioning javascript / cookie-policy boilerplate.
    c4_lines: bool = True
    # FineWeb's extra rules (Penedo et al. 2024, sec. 3.3): drop a document when at most
    # 12% of its lines end in punctuation, when at least 10% of its characters sit in
    # duplicated lines, or when at least 67% of its lines are shorter than 30 characters.
    fineweb: bool = True
    fineweb_min_punct_line_ratio: float = Field(default=0.12, ge=0, le=1)
    fineweb_max_dup_line_char_ratio: float = Field(default=0.1, ge=0, le=1)
    fineweb_max_short_line_ratio: float = Field(default=0.67, ge=0, le=1)
    fineweb_short_line_chars: int = Field(default=30, ge=1)
    # URL blocklist: documents whose metadata url's host is, or is under, a listed domain.
    url_blocklist: list[str] = Field(default_factory=list)
    url_blocklist_file: str | None = None


class LanguageConfig(Section):
    """Language identification with a model that works offline."""

    enabled: bool = True
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    # FineWeb keeps English with a fastText score of at least 0.65.
    min_score: float = Field(default=0.65, ge=0, le=1)


class PIIConfig(Section):
    """Mask personal data in kept documents."""

    emails: bool = True
    ips: bool = True


class MinHashConfig(Section):
    """Near-duplicate detection: MinHash over word n-grams with LSH banding (FineWeb's settings)."""

    enabled: bool = True
    ngram: int = Field(default=5, ge=1)
    bands: int = Field(default=14, ge=1)
    rows: int = Field(default=8, ge=1)
    seed: int = 1
    # Check each candidate pair's exact n-gram Jaccard and keep only pairs at or above it.
    verify: bool = False
    verify_threshold: float = Field(default=0.7, ge=0, le=1)


class DedupConfig(Section):
    """Deduplication settings."""

    exact: bool = True
    minhash: MinHashConfig = Field(default_factory=MinHashConfig)


class ProbeMixConfig(ProbeSpec):
    """Probe documents added to the train split by the data stage (never to held-out)."""

    docs: int = Field(default=0, ge=0, description="probe documents per kind")
    queries: int = Field(default=4, ge=1, description="answered queries per document")
    seed: int = Field(default=1, description="must differ from eval.probes.seed")


class DataConfig(Section):
    """Documents in, clean deduplicated text out, then tokenized shards."""

    source: SourceConfig = Field(default_factory=SourceConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    pii: PIIConfig = Field(default_factory=PIIConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    heldout_fraction: float = Field(default=0.02, ge=0, lt=0.5)
    shard_tokens: int = Field(default=1_000_000, ge=1024)
    executor: Literal["local", "ray"] = "local"
    workers: int = Field(default=0, ge=0, description="0 = all cores")
    # Long-context probe documents mixed into the train split (superlab.data.probes).
    probes: ProbeMixConfig | None = None
