import logging
import sys

import pytest

from superlab.train.metrics import MetricsLog, read_rows, scalars, truncate_after
from superlab.train.trainer import Trainer

from .conftest import tiny_recipe

ROW = {
    "step": 3,
    "loss": 4.0,
    "skipped": True,
    "moe": [{"layer": 1, "tokens_per_expert": [1, 2], "load_cv": 0.3, "z_loss": 2.0}],
}


def test_scalars_flatten_moe_layers_and_skip_lists_and_flags():
    assert scalars(ROW) == {"loss": 4.0, "moe/layer1/load_cv": 0.3, "moe/layer1/z_loss": 2.0}


def test_truncate_drops_later_and_torn_rows(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"step": 4, "lo')
    assert truncate_after(path, 2) == 2
    assert read_rows(path) == [{"step": 1}, {"step": 2}]


def test_without_tensorboard_the_jsonl_still_gets_every_row(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with caplog.at_level(logging.INFO, logger="test"):
        log = MetricsLog(tmp_path / "m.jsonl", tmp_path / "tb", 0, logging.getLogger("test"))
    assert log.tb is None and "tensorboard is not installed" in caplog.text
    log.write(ROW)
    log.close()
    assert read_rows(tmp_path / "m.jsonl") == [ROW] and not (tmp_path / "tb").exists()


def test_tensorboard_gets_the_rows_numbers(run_dir):
    pytest.importorskip("tensorboard", reason="tensorboard is optional (pip install tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(tiny_recipe(steps=3), run_dir).train()
    events = EventAccumulator(str(run_dir.root / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "heldout_loss"} <= set(tags)
    assert "moe/layer1/load_cv" in tags and "moe/layer1/router_entropy" in tags
    rows = [r for r in read_rows(run_dir.metrics) if "loss" in r]
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3]
    assert [e.value for e in events.Scalars("loss")] == pytest.approx([r["loss"] for r in rows])
