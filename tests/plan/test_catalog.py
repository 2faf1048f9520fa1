"""The accelerator catalog: every entry loads, carries its source, and lookups fail clearly."""

from __future__ import annotations

import pytest

from superlab.plan import (
    CLUSTER_OVERHEAD,
    SERVER_OVERHEAD,
    UnknownAcceleratorError,
    get_accelerator,
    load_catalog,
)

EXPECTED = {
    "h100-sxm",
    "h200",
    "b200",
    "mi300x",
    "tpu-v5p",
    "h800",
    "a100",
    "gb200",
    "mtia-v1",
    "mtia-v2",
}


def test_catalog_has_every_accelerator_with_sources() -> None:
    catalog = load_catalog()
    assert set(catalog) >= EXPECTED
    for name, acc in catalog.items():
        assert acc.name == name
        assert acc.source.strip(), name
        assert acc.date[:2] == "20", name
        assert acc.tflops_bf16 > 0 and acc.memory_gb > 0 and acc.bandwidth_tb_s > 0


def test_datasheet_numbers_are_dense_figures() -> None:
    # Dense (not 2:4 sparsity) peaks from the vendors' datasheets.
    h100 = get_accelerator("h100-sxm")
    assert (h100.tflops_bf16, h100.tflops_fp8, h100.memory_gb, h100.tdp_w) == (989, 1979, 80, 700)
    assert h100.bandwidth_tb_s == pytest.approx(3.35)
    h200 = get_accelerator("h200")
    assert (h200.tflops_bf16, h200.memory_gb, h200.bandwidth_tb_s) == (989, 141, 4.8)
    b200 = get_accelerator("b200")
    assert (b200.tflops_bf16, b200.tflops_fp8, b200.tdp_w) == (2250, 4500, 1000)
    mi300x = get_accelerator("mi300x")
    assert (mi300x.tflops_bf16, mi300x.tflops_fp8, mi300x.memory_gb) == (1307, 2615, 192)
    v5p = get_accelerator("tpu-v5p")
    assert (v5p.tflops_bf16, v5p.memory_gb, v5p.bandwidth_tb_s) == (459, 95, 2.765)


def test_fp8_unsupported_on_tpu_v5p() -> None:
    v5p = get_accelerator("tpu-v5p")
    assert v5p.tflops_fp8 is None
    with pytest.raises(ValueError, match=r"'tpu-v5p' has no 'fp8'"):
        v5p.peak_tflops("fp8")
    assert get_accelerator("h100-sxm").peak_tflops("fp8") == 1979


def test_all_in_power_uses_epoch_overheads() -> None:
    assert (SERVER_OVERHEAD, CLUSTER_OVERHEAD) == (1.82, 1.14)
    # 700 W x 1.82 x 1.14 = 1452.36 W
    assert get_accelerator("h100-sxm").all_in_power_w() == pytest.approx(1452.36)
    assert get_accelerator("h100-sxm").all_in_power_w(1.0, 1.0) == 700
    assert get_accelerator("tpu-v5p").all_in_power_w() is None  # no published TDP


def test_unknown_accelerator_lists_known_names() -> None:
    with pytest.raises(UnknownAcceleratorError) as err:
        get_accelerator("v100")
    message = str(err.value)
    assert "'v100'" in message
    for name in EXPECTED:
        assert name in message


def test_load_catalog_returns_a_copy() -> None:
    load_catalog().pop("h100-sxm")
    assert "h100-sxm" in load_catalog()
