"""``superlab serve RUN`` takes its settings from the run's recipe; flags override it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from superlab.cli import app
from superlab.config.recipe import ServeConfig
from superlab.serve.load import find_recipe, serve_config


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    root = tmp_path / "r"
    (root / "ckpt" / "step-3").mkdir(parents=True)
    (root / "recipe.yaml").write_text(
        "name: r\nserve:\n  max_body_bytes: 5000\n  queue_size: 7\n  request_timeout_s: 9\n"
        "  log_user_text: true\n  policy: p.yaml\n  max_batch: 3\n  port: 8100\n"
    )
    return root


def test_the_recipe_serve_section_is_used_from_any_path_in_the_run(run_dir):
    for path in (run_dir, run_dir / "ckpt", run_dir / "ckpt" / "step-3"):
        assert find_recipe(path) == (run_dir / "recipe.yaml").resolve()
        cfg, sources = serve_config(path, {})
        assert (cfg.max_body_bytes, cfg.queue_size, cfg.request_timeout_s) == (5000, 7, 9)
        assert (cfg.log_user_text, cfg.policy, cfg.max_batch, cfg.port) == (True, "p.yaml", 3, 8100)
        assert sources["queue_size"].endswith("recipe.yaml") and "drain_timeout_s" not in sources


def test_flags_override_the_recipe_and_unset_flags_do_not(run_dir):
    cfg, sources = serve_config(run_dir, {"queue_size": 2, "log_user_text": False, "port": None})
    assert cfg.queue_size == 2 and cfg.log_user_text is False and cfg.port == 8100
    assert sources["queue_size"] == sources["log_user_text"] == "command line"


def test_without_a_run_recipe_the_defaults_hold(tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    cfg, sources = serve_config(hf, {"max_n": 2})
    assert cfg == ServeConfig(max_n=2) and sources == {"max_n": "command line"}


def test_a_bad_value_is_refused_naming_the_field(run_dir):
    with pytest.raises(ValueError, match="queue_size"):
        serve_config(run_dir, {"queue_size": 0})


def test_help_says_where_each_value_comes_from():
    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for field in ("max_body_bytes", "queue_size", "request_timeout_s", "log_user_text", "policy",
                  "max_batch", "drain_timeout_s", "docs"):  # fmt: skip
        assert f"the run recipe's serve.{field}" in out, field
