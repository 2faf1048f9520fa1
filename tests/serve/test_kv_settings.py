"""The KV cache settings reach the engine (config, flags, app), the weights name the prefix
cache's namespace, and /metrics carries the engine's cache and step counters."""

import asyncio
import os

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from superlab.cli import app as cli
from superlab.config.recipe import ServeConfig
from superlab.serve.engine import Engine, GenRequest
from superlab.serve.load import load_served, serve_config, weights_namespace
from superlab.serve.metrics import Metrics
from superlab.serve.sampling import SamplingParams
from superlab.serve.scheduler import Scheduler

from .conftest import serve_app, tiny_model


def test_metrics_carry_prefix_cache_blocks_and_step_tokens(tokenizer):
    engine = Engine(tiny_model(tokenizer.get_vocab_size()), tokenizer, 64, kv_block_size=4)
    metrics = Metrics("t")
    sched = Scheduler(engine, queue_size=8, metrics=metrics)
    ids = tokenizer.encode("The history of mathematics is the study").ids

    async def one(rid: str) -> None:
        async for _ in sched.stream(GenRequest(rid, ids, SamplingParams(max_tokens=3))):
            pass

    asyncio.run(one("a"))
    asyncio.run(one("b"))  # the same prompt: its full blocks but the last token's hit
    sched.close()
    text = metrics.render()
    hits = (len(ids) - 1) // 4 * 4
    assert metrics.value("vllm:prefix_cache_queries_total") == 2 * len(ids)
    assert metrics.value("vllm:prefix_cache_hits_total") == hits
    assert metrics.value("vllm:num_preemptions_total") == 0
    assert metrics.gauges["superlab:prefix_cache_hit_rate"] == hits / (2 * len(ids))
    assert metrics.gauges["superlab:kv_blocks_used"] == 0  # both finished
    assert metrics.gauges["superlab:kv_blocks_free"] == engine.num_blocks
    assert metrics.gauges["superlab:step_decode_tokens"] == 1  # the last step decoded one
    for name in ("superlab:kv_blocks_free", "superlab:step_prefill_tokens"):
        assert f"# TYPE {name} gauge" in text
    assert 'vllm:prefix_cache_hits_total{model_name="t"}' in text


def test_settings_are_checked_and_reach_the_engine(model_dir):
    for bad in ({"kv_block_size": 0}, {"kv_cache_blocks": 0}, {"prefill_tokens": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            serve_config(model_dir, bad)
    cfg, sources = serve_config(
        model_dir, {"kv_block_size": 8, "prefix_caching": False, "prefill_tokens": 64}
    )
    assert sources["kv_block_size"] == "command line" and cfg.kv_cache_blocks is None
    served = load_served(model_dir)
    app = serve_app(served, cfg.model_copy(update={"kv_cache_blocks": 40}))
    with TestClient(app):
        engine = app.state.life.scheduler.engine
        assert (engine.block_size, engine.num_blocks, engine.prefill_tokens) == (8, 40, 64)
        assert engine.prefix_caching is False
    assert ServeConfig().prefix_caching is True and ServeConfig().kv_block_size == 16


def test_the_namespace_changes_with_the_weights(model_dir):
    served = load_served(model_dir)
    assert served.cache_namespace is not None
    step = model_dir / "ckpt" / "step-1"
    before = weights_namespace(step)
    assert before == weights_namespace(step) and str(step.resolve()) in before
    some = next(p for p in sorted(step.rglob("*")) if p.is_file() and p.name != "state.json")
    st = some.stat()
    os.utime(some, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        assert weights_namespace(step) != before
    finally:
        os.utime(some, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_serve_flags_include_the_cache_settings():
    out = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for field in ("prefill_tokens", "kv_block_size", "kv_cache_blocks", "prefix_caching"):
        assert f"the run recipe's serve.{field}" in out, field
