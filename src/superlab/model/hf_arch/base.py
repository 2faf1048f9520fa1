"""What every Hugging Face architecture module shares: its record, and the mapping helpers.

An architecture is one ``HFArch``: its names in ``config.json``, transformers' defaults for
the fields a ``config.json`` may leave out, and both directions of its own fields
(``from_hf``: ``config.json`` -> ``ModelConfig`` fields; ``to_hf``: ``ModelConfig`` ->
``config.json`` fields). The fields all architectures share are mapped once, in
``superlab.model.hf_config``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from superlab.config.model import AttentionConfig, LayerSpec, ModelConfig, MoEConfig


@dataclass(frozen=True)
class HFArch:
    """One architecture: its ``config.json`` names, defaults and field mapping both ways.

    Each module builds its record as one row, the fields in this order:
    ``ARCH = HFArch(name, hf_class, model_type, title, DEFAULTS, from_hf, to_hf)``.
    """

    name: str  # ours, as ``export_hf(..., arch=name)`` takes it
    hf_class: str  # config.json ``architectures[0]``
    model_type: str  # config.json ``model_type``
    title: str  # in error messages
    defaults: dict[str, Any]  # transformers' class defaults
    from_hf: Callable[[dict[str, Any]], dict[str, Any]]
    to_hf: Callable[[ModelConfig], dict[str, Any]]


def refuse(field: str, value: Any, why: str) -> ValueError:
    """The error for a ``config.json`` field we cannot represent."""
    return ValueError(f"Hugging Face config field {field!r} = {value!r}: {why}")


def get(hf: dict[str, Any], defaults: dict[str, Any], key: str) -> Any:
    """``hf[key]``, or transformers' default when it is absent or null."""
    value = hf.get(key)
    return defaults.get(key) if value is None else value


def pattern(specs: list[LayerSpec]) -> list[LayerSpec] | None:
    """The shortest cycle of ``specs`` that repeats to all of them; None if all default."""
    if all(s == LayerSpec() for s in specs):
        return None
    n = len(specs)
    period = next(p for p in range(1, n + 1) if all(specs[i] == specs[i % p] for i in range(n)))
    return specs[:period]


def mlp_kinds(moe_layers: set[int], every: int, n: int) -> list[Literal["dense", "moe"] | None]:
    """Per layer None where ``moe.every`` already says it, else explicit dense / moe."""
    if moe_layers == {i for i in range(n) if (i + 1) % every == 0}:
        return [None] * n
    return ["moe" if i in moe_layers else "dense" for i in range(n)]


def require(title: str, checks: dict[str, tuple[Any, Any]]) -> None:
    """Refuse the first ``field: (value, wanted)`` whose value differs."""
    for field, (value, wanted) in checks.items():
        if value != wanted:
            raise ValueError(f"{field} = {value!r}: {title} needs {wanted!r}")


def kinds(cfg: ModelConfig, arch: str, allowed: tuple[str, ...]) -> list[AttentionConfig]:
    """Every layer's attention; refuses a kind ``arch`` lacks."""
    layers = [cfg.attention_for(i) for i in range(cfg.n_layers)]
    for a in layers:
        if a.kind not in allowed:
            raise ValueError(f"attention.kind {a.kind!r} has no {arch} equivalent")
    return layers


def refuse_set(cfg: ModelConfig, arch: str, names: tuple[str, ...]) -> None:
    """Refuse any of these model fields that is set (not its plain default)."""
    plain = {"layer_pattern": None, "qk_norm": "none", "nope_temperature": None}
    for name in names:
        if getattr(cfg, name) != plain[name]:
            raise ValueError(f"{name} is set: {arch} has no equivalent")


def moe_checks(moe: MoEConfig, **wanted: Any) -> dict[str, tuple[Any, Any]]:
    """``moe.<field>: (value, wanted)`` for ``require``."""
    return {f"moe.{k}": (getattr(moe, k), v) for k, v in wanted.items()}


def require_moe(cfg: ModelConfig, title: str, **wanted: Any) -> MoEConfig:
    """``cfg.moe``; refuses a dense model, and the first ``moe.<field>`` not as ``wanted``."""
    if cfg.moe is None:
        raise ValueError(f"moe is None: {title} needs an MoE config")
    require(title, moe_checks(cfg.moe, **wanted))
    return cfg.moe
