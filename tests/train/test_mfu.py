import pytest
import torch

from superlab.config.recipe import TrainConfig
from superlab.model.counts import flops_per_token
from superlab.train.metrics import read_rows
from superlab.train.mfu import catalog_name, peak_tflops
from superlab.train.trainer import Trainer

from .conftest import tiny_recipe


@pytest.mark.parametrize(
    ("device_name", "entry"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA GB200", "gb200"),
        ("AMD Instinct MI300X", "mi300x"),
        ("NVIDIA H100 PCIe", None),  # another part: 756 TFLOP/s, not the SXM's 989
        ("NVIDIA A100 80GB PCIe", None),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_cuda_device_names_map_to_catalog_entries(device_name, entry):
    assert catalog_name(device_name) == entry


def test_peak_comes_from_the_recipe_or_the_catalog_never_a_guess(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert peak_tflops(TrainConfig(), cpu, bf16=False)[0] is None
    assert peak_tflops(TrainConfig(peak_tflops=2.5), cpu, bf16=False) == (2.5, "train.peak_tflops")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 80GB HBM3")
    assert peak_tflops(TrainConfig(), cuda, bf16=True) == (989.0, "plan catalog h100-sxm bf16")
    peak, why = peak_tflops(TrainConfig(), cuda, bf16=False)
    assert peak is None and "bf16/fp8 peaks only" in why
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 PCIe")
    peak, why = peak_tflops(TrainConfig(), cuda, bf16=True)
    assert peak is None and "train.peak_tflops" in why


def test_mfu_in_metrics_is_model_flops_over_the_given_peak(run_dir):
    summary = Trainer(tiny_recipe(steps=3, peak_tflops=0.5), run_dir).train()
    rows = [r for r in read_rows(run_dir.metrics) if "loss" in r]
    cfg = tiny_recipe().model.model_copy(update={"vocab_size": 64})
    per_token = 3 * flops_per_token(cfg, 32)["forward"]
    for r in rows:
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * per_token / 0.5e12)
    assert summary["mfu"] == pytest.approx(summary["tokens_per_s"] * per_token / 0.5e12)
    assert 0 < summary["mfu"] < 1
