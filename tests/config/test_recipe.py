from pathlib import Path

import pytest
from typer.testing import CliRunner

from superlab.cli import app
from superlab.config import Recipe, RecipeError, load_recipe

runner = CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


def test_tiny_recipe_resolves_with_defaults(repo):
    r = load_recipe(repo / "recipes" / "tiny.yaml")
    assert r.name == "tiny"
    assert r.model.moe is not None and r.model.moe.top_k == 2
    assert r.model.hidden == 352  # 8/3 * 128 = 341.3, rounded up to a multiple of 32
    assert r.data.filters.min_words == 50  # a default filled in
    assert [r.model.is_moe_layer(i) for i in range(4)] == [False, True, False, True]


def test_overrides_apply_with_yaml_types(repo):
    r = load_recipe(
        repo / "recipes" / "tiny.yaml",
        ["train.steps=7", "model.attention.kind=sliding", "model.attention.window=16"],
    )
    assert r.train.steps == 7 and r.model.attention.window == 16


BAD = {
    "unknown key": (
        "name: x\ntrain:\n  stepz: 3\n",
        ":3: train.stepz: unknown key; did you mean 'steps'?",
    ),
    "wrong type": ("name: x\ntrain:\n  lr: fast\n", ":3: train.lr: Input should be a valid number"),
    "top_k > experts": (
        "name: x\nmodel:\n  moe:\n    num_experts: 4\n    top_k: 8\n",
        ":5: model.moe.top_k: top_k (8) must not exceed num_experts (4)",
    ),
    "heads not dividing": (
        "name: x\nmodel:\n  d_model: 128\n  n_heads: 3\n",
        ":4: model.n_heads: n_heads (3) must divide d_model (128)",
    ),
    "seq_len over max": (
        "name: x\ntrain:\n  seq_len: 512\n",
        "train.seq_len: train.seq_len (512) exceeds model.max_seq_len (256)",
    ),
    "invalid yaml": ("name: x\nmodel: [1, 2\n", ": invalid YAML:"),
    "not a mapping": ("- a\n- b\n", ": a recipe must be a mapping of sections, got list"),
    "missing name": ("seed: 1\n", ": name: required field is missing"),
    "sliding without window": (
        "name: x\nmodel:\n  attention:\n    kind: sliding\n",
        "model.attention.window: kind 'sliding' needs 'window'",
    ),
    "pattern moe without moe": (
        "name: x\nmodel:\n  layer_pattern:\n    - {mlp: dense}\n    - {mlp: moe}\n",
        ":5: model.layer_pattern.1.mlp: mlp 'moe' needs a 'model.moe' section",
    ),
    "pattern chunked without size": (
        "name: x\nmodel:\n  layer_pattern:\n    - {attention: chunked}\n",
        "model.layer_pattern.0.chunk_size: kind 'chunked' needs 'chunk_size'",
    ),
    "pattern unknown key": (
        "name: x\nmodel:\n  layer_pattern:\n    - {ropee: false}\n",
        ":4: model.layer_pattern.0.ropee: unknown key",
    ),
    "llama3 scaling without original": (
        "name: x\nmodel:\n  rope_scaling: {type: llama3, factor: 8}\n",
        "model.rope_scaling.original_max_seq_len: type 'llama3' needs 'original_max_seq_len'",
    ),
}

LLAMA4_YAML = """name: llama4-like
model:
  n_layers: 8
  attention: {kind: chunked, chunk_size: 64}
  moe: {num_experts: 4, top_k: 1}
  qk_norm: l2
  rope_scaling: {type: llama3, factor: 16, original_max_seq_len: 128}
  nope_temperature: {floor_scale: 128, attn_scale: 0.1}
  layer_pattern:
    - {attention: chunked, rope: true, mlp: moe}
    - {attention: chunked, rope: true, mlp: dense}
    - {attention: chunked, rope: true, mlp: moe}
    - {attention: full, rope: false, mlp: dense}
"""


def test_llama4_layer_pattern_from_yaml(tmp_path):
    m = load_recipe(write(tmp_path, LLAMA4_YAML)).model
    assert [m.attention_for(i).kind for i in range(4)] == ["chunked"] * 3 + ["full"]
    assert [m.rope_for(i) for i in range(8)] == [True, True, True, False] * 2
    assert [m.is_moe_layer(i) for i in range(8)] == [True, False, True, False] * 2
    assert m.qk_norm == "l2" and m.nope_temperature is not None
    assert m.rope_scaling is not None and m.rope_scaling.low_freq_factor == 1.0  # default


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recipe_one_line_error_with_file_and_field(tmp_path, case):
    text, expected = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    msg = str(e.value)
    assert msg.startswith(str(path)), msg
    assert expected in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("command", [["config", "check"], ["run", "--quiet"]])
@pytest.mark.parametrize("case", ["unknown key", "wrong type", "top_k > experts", "invalid yaml"])
def test_cli_bad_recipe_exits_2_without_traceback(tmp_path, case, command):
    path = write(tmp_path, BAD[case][0])
    res = runner.invoke(
        app, [*command, str(path), *(["--runs-dir", str(tmp_path)] if "run" in command else [])]
    )
    assert res.exit_code == 2, res.output
    out = res.output.strip()
    assert out.startswith("error: ") and str(path) in out
    assert "Traceback" not in out and len(out.splitlines()) == 1
    assert not (tmp_path / "x").exists()  # nothing was started


def test_cli_missing_recipe_file(tmp_path):
    res = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {tmp_path / 'nope.yaml'}: recipe file not found"


def test_config_show_prints_every_default(repo):
    res = runner.invoke(
        app, ["config", "show", str(repo / "recipes" / "tiny.yaml"), "--format", "json"]
    )
    assert res.exit_code == 0
    import json

    shown = json.loads(res.output)
    assert shown == load_recipe(repo / "recipes" / "tiny.yaml").resolved()
    assert shown["train"]["grad_clip"] == 1.0 and shown["plan"]["goodput"] == 0.9


def test_unknown_override_path_is_named(repo):
    with pytest.raises(
        RecipeError,
        match=r"tiny.yaml \(--set train.stps=3\): train.stps: unknown key; did you mean 'steps'",
    ):
        load_recipe(repo / "recipes" / "tiny.yaml", ["train.stps=3"])


def test_recipe_load_classmethod(repo):
    assert Recipe.load(repo / "recipes" / "tiny.yaml").name == "tiny"


def test_did_you_mean_works_inside_list_items(tmp_path):
    path = write(
        tmp_path,
        "name: x\nmodel:\n  moe: {num_experts: 4, top_k: 1}\n  layer_pattern:\n"
        "    - {attention: full, mlpp: moe}\n",
    )
    with pytest.raises(RecipeError, match=r"layer_pattern.0.mlpp: unknown key; did you mean 'mlp'"):
        load_recipe(path)
