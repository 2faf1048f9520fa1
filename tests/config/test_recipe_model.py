"""Model fields of the recipe: explicit head dim, MoE gating options, expert choice's mode."""

from pathlib import Path

import pytest

from superlab.config import RecipeError, load_recipe
from superlab.config.recipe import ModelConfig, RopeScalingConfig


def _load(tmp_path: Path, model_yaml: str):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: x\nmodel:\n" + model_yaml)
    return load_recipe(path).model


def test_new_fields_default_to_the_old_behaviour(tmp_path):
    m = _load(tmp_path, "  moe: {num_experts: 4, top_k: 2}\n")
    assert m.d_head is None and m.head_dim == 128 // 4
    assert m.moe is not None and m.moe.norm_topk and m.moe.gate_on == "output"
    assert m.moe.expert_choice_mode == "causal"


def test_llama4_and_qwen3_options_from_yaml(tmp_path):
    m = _load(
        tmp_path,
        "  d_model: 64\n  n_heads: 4\n  d_head: 24\n"
        "  moe: {router: expert_choice, expert_choice_mode: batch, norm_topk: false,"
        " gate_on: input}\n",
    )
    assert m.d_head == m.head_dim == 24  # not 64 / 4
    assert m.moe is not None and m.moe.expert_choice_mode == "batch"
    assert not m.moe.norm_topk and m.moe.gate_on == "input"


def test_d_head_frees_d_model_from_n_heads():
    m = ModelConfig(d_model=60, n_heads=8, d_head=16, vocab_size=10)
    assert m.head_dim == 16
    with pytest.raises(ValueError, match="n_heads"):
        ModelConfig(d_model=60, n_heads=8, vocab_size=10)


@pytest.mark.parametrize(
    ("model_yaml", "expected"),
    [
        ("  d_head: 15\n", "model.d_head: d_head (15) must be even for RoPE"),
        ("  d_head: 0\n", "model.d_head: Input should be greater than or equal to 2"),
        (
            "  moe: {router: aux_free, expert_choice_mode: batch}\n",
            "model.moe.expert_choice_mode: expert_choice_mode applies to router "
            "'expert_choice', not 'aux_free'",
        ),
        ("  moe: {gate_on: middle}\n", "model.moe.gate_on: Input should be 'output' or 'input'"),
        (
            "  rope_scaling: {type: llama3, factor: 8, original_max_seq_len: 64,"
            " low_freq_factor: 2, high_freq_factor: 1}\n",
            "model.rope_scaling.high_freq_factor: high_freq_factor must not be below",
        ),
    ],
)
def test_bad_model_fields_name_the_field(tmp_path, model_yaml, expected):
    with pytest.raises(RecipeError) as e:
        _load(tmp_path, model_yaml)
    assert expected in str(e.value), str(e.value)


def test_llama3_scaling_with_equal_factors_is_llama4_scouts():
    s = RopeScalingConfig(type="llama3", factor=16, original_max_seq_len=8192, high_freq_factor=1.0)
    assert s.low_freq_factor == s.high_freq_factor == 1.0
