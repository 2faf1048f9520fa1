"""Published training and serving runs: their authors' figures, with sources, as data.

Figures live in ``published_runs.yaml`` next to this file; ``load_published()``
validates them into ``Run`` and ``ServingRun`` entries (errors name the file, line and
``training.<run>.<field>``) and computes what an entry states by its derivation:
attention FLOPs from the attention shape, MFU from a published throughput, ratios.
``RUNS`` and ``SERVING_RUNS`` are the packaged file's entries, loaded at import.
"""

from __future__ import annotations

import inspect
import re
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from superlab.config.load import explain, line_index
from superlab.plan.catalog import Precision, get_accelerator
from superlab.plan.estimate import attention_flops_per_token
from superlab.plan.montecarlo import Input, as_input
from superlab.plan.scenario import Fraction, fraction
from superlab.plan.serving import serving_outputs

PUBLISHED_RUNS = "published_runs.yaml"
# serving_outputs keywords a serving entry may set; the chip's come from the catalog.
SERVING_KEYWORDS = frozenset(inspect.signature(serving_outputs).parameters) - {
    "peak_tflops",
    "bandwidth_tb_s",
    "memory_gb",
}


class PublishedRunsError(ValueError):
    """A published-runs file that cannot be used; the message names file, line and field."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``405e9`` as a string; read it as the float it is (YAML 1.2, Python)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def causal_attn_flops(layers: int, d_attn: int, seq_len: int) -> float:
    """Training attention FLOPs per token, causal: 12 L d_attn (T + 1) / 2 (model.counts')."""
    return attention_flops_per_token(layers, d_attn, seq_len)


class Attention(BaseModel):
    """A run's attention shape; it sets the attention FLOPs per token (``causal_attn_flops``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: int = Field(gt=0)
    d_attn: int = Field(gt=0, description="heads x head dim (MLA: heads x (qk + v) / 2)")
    seq_len: int = Field(gt=0)

    @cached_property
    def flops_per_token(self) -> float:
        """12 x layers x d_attn x (seq_len + 1) / 2."""
        return causal_attn_flops(self.layers, self.d_attn, self.seq_len)

    @model_validator(mode="after")
    def _computable(self) -> Attention:
        _ = self.flops_per_token  # computed at load: a shape ModelConfig refuses fails here
        return self


class Throughput(BaseModel):
    """A published training throughput, given instead of an MFU (6N accounting)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_per_s_per_gpu: float = Field(gt=0)

    def mfu(self, params_active: float, peak_tflops: float) -> float:
        """6 x params_active x tokens/s / peak: the MFU the throughput implies."""
        return 6 * params_active * self.tokens_per_s_per_gpu / (peak_tflops * 1e12)


def _mfu(value: Any) -> Any:
    if isinstance(value, dict) and "tokens_per_s_per_gpu" in value:
        return Throughput.model_validate(value)
    return fraction(value)


def _serving_input(value: Any) -> Input:
    """An ``Input``, or ``{ratio: [a, b]}`` for a / b (a derivation kept in the data)."""
    if isinstance(value, dict) and set(value) == {"ratio"}:
        pair = value["ratio"]
        if not (isinstance(pair, list) and len(pair) == 2 and pair[1]):
            raise ValueError(f"a ratio is [numerator, nonzero denominator], got {pair!r}")
        return float(pair[0]) / float(pair[1])
    return as_input(value)


def _catalogued(name: str) -> str:
    get_accelerator(name)  # raises naming the known accelerators
    return name


ServingInput = Annotated[Any, BeforeValidator(_serving_input)]
AcceleratorName = Annotated[str, AfterValidator(_catalogued)]


class Run(BaseModel):
    """One published run: inputs as published and the published figure to match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params_active: float = Field(gt=0)
    tokens: float = Field(gt=0)
    accelerator: AcceleratorName
    precision: Precision
    num_gpus: int = Field(gt=0)
    # GPU-hours, or FLOPs when metric == "total_flops"; a whole count stays an int (JSON)
    published: int | float = Field(gt=0)
    source: str = Field(min_length=1)
    mfu: Annotated[Any, BeforeValidator(_mfu)] = 0.4  # an Input, or a Throughput
    goodput: Fraction = 1.0
    attention: Attention | None = None  # None: 6N only, no attention term
    metric: Literal["gpu_hours", "total_flops"] = "gpu_hours"
    kind: Literal["reproduce", "gap"] = "reproduce"
    implied_tflops_expected: float | None = Field(default=None, gt=0)  # gap rows: pinned
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Run:
        _ = self.peak_tflops  # raises for a precision the chip lacks
        if self.kind == "gap" and (
            self.metric != "gpu_hours" or self.implied_tflops_expected is None
        ):
            raise ValueError("a gap row needs metric gpu_hours and implied_tflops_expected")
        return self

    @cached_property
    def peak_tflops(self) -> float:
        """The accelerator's dense peak at the run's precision (catalog)."""
        return get_accelerator(self.accelerator).peak_tflops(self.precision)

    @property
    def attn_flops_per_token(self) -> float:
        """Attention FLOPs per token from the attention shape; 0 without one (6N only)."""
        return self.attention.flops_per_token if self.attention else 0.0

    @property
    def mfu_input(self) -> Input:
        """The MFU to draw: as published, or the one a published throughput implies."""
        if isinstance(self.mfu, Throughput):
            return self.mfu.mfu(self.params_active, self.peak_tflops)
        return self.mfu


class ServingRun(BaseModel):
    """A published serving fleet: its tokens and throughputs, and the fleet size to match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    accelerator: AcceleratorName
    precision: Precision
    published: float = Field(gt=0)  # nodes_avg
    inputs: dict[str, ServingInput]  # serving_outputs keywords, as published
    fixed: dict[str, bool | float]  # non-numeric serving_outputs keywords
    source: str = Field(min_length=1)
    note: str = ""
    # Other readings of the same publication: label -> inputs that change.
    readings: dict[str, dict[str, ServingInput]] = Field(default_factory=dict)
    # Further published figures checked loosely: output -> published value.
    also: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keywords(self) -> ServingRun:
        get_accelerator(self.accelerator).peak_tflops(self.precision)
        changed = [k for change in self.readings.values() for k in change]
        unknown = sorted({*self.inputs, *self.fixed, *changed} - SERVING_KEYWORDS)
        if unknown:
            raise ValueError(f"not serving_outputs inputs: {', '.join(unknown)}")
        return self


class PublishedRuns(BaseModel):
    """The file: training runs and serving fleets, each keyed by its name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    training: dict[str, Run]
    serving: dict[str, ServingRun] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        """Each entry's key is its name."""
        if not isinstance(data, dict):
            return data
        named = dict(data)
        for section in ("training", "serving"):
            runs = data.get(section)
            if isinstance(runs, dict):
                named[section] = {
                    k: {"name": k, **v} if isinstance(v, dict) else v for k, v in runs.items()
                }
        return named


def load_published(path: str | Path | None = None) -> PublishedRuns:
    """Read and validate a published-runs YAML (default: the packaged one); errors name
    ``file:line: section.run.field``."""
    if path is None:
        packaged = resources.files("superlab.plan").joinpath(PUBLISHED_RUNS)
        path, text = Path(str(packaged)), packaged.read_text("utf-8")
    else:
        path = Path(path)
        text = path.read_text("utf-8")
    loader = _Loader(text)  # one parse: the nodes give the lines, the data is built from them
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise PublishedRunsError(f"{path}: invalid YAML: {e}") from None
    finally:
        loader.dispose()
    try:
        return PublishedRuns.model_validate(raw)
    except ValidationError as e:
        raise PublishedRunsError(explain(e, PublishedRuns, path, line_index(node))) from None


_PACKAGED = load_published()
RUNS: tuple[Run, ...] = tuple(_PACKAGED.training.values())
SERVING_RUNS: tuple[ServingRun, ...] = tuple(_PACKAGED.serving.values())
