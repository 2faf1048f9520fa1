"""The ``serve`` section: sampling, the HTTP server's limits and its safety policy."""

from __future__ import annotations

from pydantic import Field

from superlab.config.section import Section


class ServeConfig(Section):
    """Sampling settings; the run's serve stage answers ``prompts`` as a smoke test."""

    prompts: list[str] = Field(default_factory=lambda: ["The history of", "In mathematics,"])
    max_new_tokens: int = Field(default=48, ge=1)
    temperature: float = Field(default=0.8, ge=0, description="0 = greedy")
    top_k: int | None = Field(default=40, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The HTTP server (`superlab serve`): batching, limits and the safety policy.
    max_batch: int = Field(default=32, ge=1, description="sequences decoded together")
    # The engine's paged KV cache and prefill (docs/serve.md, "The KV cache").
    prefill_tokens: int = Field(
        default=1024,
        ge=1,
        le=1_048_576,
        description="prompt tokens prefilled per engine step; longer prompts take several",
    )
    prefill_share: float | None = Field(
        default=0.5,
        gt=0,
        description="while sequences decode, a step's prefill takes about this times their"
        " decode time (measured), or waiting / decoding requests if more, so running streams"
        " keep their pace; None = prefill_tokens only",
    )
    kv_block_size: int = Field(
        default=16, ge=1, le=1024, description="positions per KV cache block"
    )
    kv_cache_blocks: int | None = Field(
        default=None,
        ge=1,
        description="KV blocks per layer group; None = max_batch sequences of the context",
    )
    prefix_caching: bool = Field(
        default=True, description="reuse the KV blocks of prompt prefixes seen before"
    )
    queue_size: int = Field(default=64, ge=1, description="waiting requests before 429")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger bodies get 413")
    max_tokens_limit: int = Field(default=1024, ge=1, description="largest max_tokens allowed")
    default_max_tokens: int = Field(default=16, ge=1, description="OpenAI's completions default")
    request_timeout_s: float = Field(default=300.0, gt=0, description="per request, then 408")
    policy: str | None = Field(default=None, description="safety policy YAML; None = built-in")
    log_user_text: bool = Field(default=False, description="refusal logs carry the user's text")
    max_n: int = Field(default=4, ge=1, description="largest n (choices per prompt) allowed")
    drain_timeout_s: float = Field(
        default=30.0, ge=0, description="on SIGTERM, how long requests in flight may finish"
    )
    max_check_chars: int = Field(
        default=200_000, ge=1000, description="longest input the safety check scans, else 400"
    )
    check_workers: int = Field(default=2, ge=1, description="threads for safety checks")
    docs: bool = Field(default=False, description="serve /docs and /openapi.json")
    # Images in chat requests (superlab.serve.images); the body limit bounds them too.
    max_images: int = Field(default=8, ge=0, description="image parts per chat request, else 400")
    max_image_bytes: int = Field(
        default=1 << 20, ge=1, description="one image's encoded (PNG) size, else 400"
    )
