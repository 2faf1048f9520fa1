"""The accelerator catalog: peak dense throughput, memory and power, with sources.

Figures live in ``catalog.yaml`` next to this file; ``load_catalog()`` validates
them into ``Accelerator`` entries and ``get_accelerator(name)`` looks one up.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["bf16", "fp8"]

# All-in IT power per accelerator = TDP x server overhead x cluster overhead.
# Epoch AI ("The power required to train frontier AI models is doubling annually",
# 2024, methodology): 1.82 covers the rest of the server (CPUs, memory, NICs, fans),
# 1.14 the cluster around it (networking, storage). Facility power then adds PUE.
SERVER_OVERHEAD = 1.82
CLUSTER_OVERHEAD = 1.14
# The H100 SXM's dense peaks (NVIDIA datasheet): the unit of "H100-equivalents".
H100_PEAK: dict[str, float] = {"bf16": 989.0, "fp8": 1979.0}


class UnknownAcceleratorError(ValueError):
    """An accelerator name that is not in the catalog; the message lists the known ones."""


class Accelerator(BaseModel):
    """One catalog entry: dense peak TFLOP/s per precision, memory, bandwidth, board power."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    vendor: str
    sku: str
    tflops_bf16: float = Field(gt=0)
    tflops_fp8: float | None = Field(default=None, gt=0, description="None = not supported")
    memory_gb: float = Field(gt=0)
    bandwidth_tb_s: float = Field(gt=0)
    tdp_w: float | None = Field(default=None, gt=0, description="None = not published")
    source: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}(-\d{2})?$")
    tops_int8: float | None = Field(default=None, gt=0)
    # Per-accelerator share of a published whole-system power (GB200 NVL72 rack): it
    # already holds CPUs and switches, so it replaces TDP x server overhead.
    system_power_w: float | None = Field(default=None, gt=0)
    interconnect_gb_s: float | None = Field(default=None, gt=0)
    price_usd: tuple[float, float] | None = None
    rent_usd_per_hour: tuple[float, float] | None = None
    price_source: str | None = None
    uncertain: str | None = None

    @model_validator(mode="after")
    def _ranges(self) -> Accelerator:
        for name in ("price_usd", "rent_usd_per_hour"):
            pair = getattr(self, name)
            if pair is not None and not 0 <= pair[0] <= pair[1]:
                raise ValueError(f"{self.name}.{name}: need 0 <= low <= high, got {pair}")
            if pair is not None and not self.price_source:
                raise ValueError(f"{self.name}.{name} needs a price_source")
        return self

    def h100_equivalents(self, precision: Precision = "bf16") -> float:
        """This chip's dense peak at ``precision`` in units of H100 SXM (989 / 1,979 TFLOP/s)."""
        return self.peak_tflops(precision) / H100_PEAK[precision]

    def peak_tflops(self, precision: Precision) -> float:
        """Peak dense TFLOP/s at ``precision``; raises ValueError when unsupported."""
        value = {"bf16": self.tflops_bf16, "fp8": self.tflops_fp8}.get(precision)
        if value is None:
            raise ValueError(
                f"accelerator {self.name!r} has no {precision!r} figure in the catalog "
                f"(not supported); use precision 'bf16'"
            )
        return value

    def all_in_power_w(
        self,
        server_overhead: float = SERVER_OVERHEAD,
        cluster_overhead: float = CLUSTER_OVERHEAD,
    ) -> float | None:
        """IT power per accelerator incl. server and cluster overhead (Epoch AI); None w/o TDP."""
        if self.system_power_w is not None:
            return self.system_power_w * cluster_overhead
        if self.tdp_w is None:
            return None
        return self.tdp_w * server_overhead * cluster_overhead


@cache
def _load() -> dict[str, Accelerator]:
    text = resources.files("superlab.plan").joinpath("catalog.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {name: Accelerator(name=name, **entry) for name, entry in raw.items()}


def load_catalog() -> dict[str, Accelerator]:
    """Every catalog entry by name (a fresh dict; entries are frozen)."""
    return dict(_load())


def get_accelerator(name: str) -> Accelerator:
    """The catalog entry called ``name``; raises UnknownAcceleratorError listing known names."""
    catalog = _load()
    if name not in catalog:
        raise UnknownAcceleratorError(
            f"unknown accelerator {name!r}; known accelerators: {', '.join(sorted(catalog))}"
        )
    return catalog[name]
