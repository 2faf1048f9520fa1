"""Attention kinds by name: ``register_kind`` once per kind, ``get_kind`` everywhere else."""

from __future__ import annotations

from superlab.config.attention_kinds import declare_kind, forget_kind
from superlab.model.attention_kinds.base import AttentionKind

KINDS: dict[str, AttentionKind] = {}


def register_kind(kind: AttentionKind) -> AttentionKind:
    """Make ``kind`` known by its name, to recipes (its ``needs``) and to the model."""
    if kind.name in KINDS:
        raise ValueError(f"attention kind '{kind.name}' is already registered")
    declare_kind(kind.name, kind.needs)
    KINDS[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Forget kind ``name`` (a test fixture's, when its test ends)."""
    KINDS.pop(name, None)
    forget_kind(name)


def get_kind(name: str) -> AttentionKind:
    """The kind registered as ``name``."""
    kind = KINDS.get(name)
    if kind is None:
        known = ", ".join(f"'{n}'" for n in KINDS)
        raise ValueError(f"attention kind '{name}' is not registered (registered: {known})")
    return kind
