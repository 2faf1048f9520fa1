"""published_runs.yaml: derivations load bit-identical; a bad entry names file, line, run."""

from __future__ import annotations

from pathlib import Path

import pytest

from superlab.plan.montecarlo import Dist
from superlab.plan.published_runs import (
    RUNS,
    SERVING_RUNS,
    PublishedRunsError,
    causal_attn_flops,
    load_published,
)

GOOD_RUN = """\
training:
  tiny:
    params_active: 1e9
    tokens: 20e9
    accelerator: a100
    precision: bf16
    num_gpus: 8
    published: 1_000
    source: a paper
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runs.yaml"
    path.write_text(text, "utf-8")
    return path


def test_derivations_are_the_published_arithmetic() -> None:
    runs = {r.name: r for r in RUNS}
    assert runs["llama-3.1-405b"].attn_flops_per_token == causal_attn_flops(126, 16_384, 8_192)
    deepseek = causal_attn_flops(61, 128 * (192 + 128) // 2, 4_096)
    assert runs["deepseek-v3"].attn_flops_per_token == deepseek
    assert runs["llama-2-70b"].attn_flops_per_token == 0.0  # 6N only
    assert runs["llama-1-65b"].mfu_input == 6 * 65.2e9 * 380 / 312e12
    assert runs["llama-3.1-405b"].mfu_input == Dist(low=0.38, high=0.43)
    assert runs["llama-3.1-405b"].params_active == 405e9  # e-notation is a float, not a str
    inputs = SERVING_RUNS[0].inputs
    assert inputs["cache_hit_rate"] == inputs["prefill_measured_hit_rate"] == 342 / 608
    assert inputs["peak_to_average"] == 278 / 226.75
    assert inputs["prefill_tok_s_per_node"] == Dist(low=73.65e3, high=73.75e3)


def test_a_good_file_loads(tmp_path: Path) -> None:
    (run,) = load_published(_write(tmp_path, GOOD_RUN)).training.values()
    assert (run.name, run.tokens, run.published, run.mfu_input) == ("tiny", 20e9, 1_000, 0.4)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("    tokens: 20e9\n", "", ":2: training.tiny.tokens: required field is missing"),
        ("num_gpus: 8", "num_gpus: eight", ":7: training.tiny.num_gpus:"),
        ("accelerator: a100", "accelerator: a1000", ":5: training.tiny.accelerator:"),
        ("precision: bf16", "precision: fp8", ":2: training.tiny: accelerator 'a100' has no"),
        ("published: 1_000", "published: 1_000\n    mfu: [0.5, 0.4]", ":9: training.tiny.mfu:"),
        (
            "source: a paper",
            "source: a paper\n    flops: 3",
            ":10: training.tiny.flops: unknown key",
        ),
    ],
)
def test_a_bad_training_entry_names_file_line_run_and_field(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    path = _write(tmp_path, GOOD_RUN.replace(old, new))
    with pytest.raises(PublishedRunsError) as err:
        load_published(path)
    assert str(err.value).startswith(f"{path}{where}"), str(err.value)


def test_a_gap_row_needs_its_pinned_throughput(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_RUN + "    kind: gap\n")
    with pytest.raises(PublishedRunsError, match=r"training\.tiny: a gap row needs"):
        load_published(path)


def test_a_bad_serving_entry_names_the_run(tmp_path: Path) -> None:
    serving = """\
serving:
  fleet:
    accelerator: h800
    precision: fp8
    published: 10
    inputs: {cache_hit_rate: {ratio: [1, 0]}, tokens_per_day: 5}
    fixed: {}
    source: a blog
"""
    path = _write(tmp_path, GOOD_RUN + serving)
    with pytest.raises(PublishedRunsError) as err:
        load_published(path)
    assert f"{path}:15: serving.fleet.inputs.cache_hit_rate: a ratio is" in str(err.value)
    fixed = serving.replace("[1, 0]", "[1, 2]")
    with pytest.raises(PublishedRunsError, match=r"serving\.fleet: not serving_outputs inputs: "):
        load_published(_write(tmp_path, GOOD_RUN + fixed))
