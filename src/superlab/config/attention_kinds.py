"""The attention kinds a recipe may name, and the ``model.attention`` fields each one needs.

This is the torch-free half of the attention-kind registry: ``config`` sits below
``model`` and cannot import the kind objects (``superlab.model.attention_kinds``), yet it
must check a recipe on its own (``superlab plan`` never loads torch). So the names of the
shipped kinds and their required fields are declared here, and
``superlab.model.attention_kinds.register_kind`` declares every other kind (a plugin, a
test fixture) when it registers its behaviour. Validation in ``config.model`` is generic:
it asks this table, never tests a kind's name.
"""

from __future__ import annotations

# Kind name -> the AttentionConfig / LayerSpec fields it needs (set here or inherited from
# model.attention). A per-layer override of such a field applies only to the kinds that
# need it. Must match each kind object's ``needs`` (checked when it registers).
KIND_NEEDS: dict[str, tuple[str, ...]] = {
    "full": (),
    "sliding": ("window",),
    "chunked": ("chunk_size",),
    "sparse": (),
}


def declare_kind(name: str, needs: tuple[str, ...]) -> None:
    """Let recipes name ``name``; a second declaration must agree with the first."""
    known = KIND_NEEDS.get(name)
    if known is not None and known != needs:
        raise ValueError(f"attention kind '{name}' is declared needing {known}, not {needs}")
    KIND_NEEDS[name] = needs


def forget_kind(name: str) -> None:
    """Drop a declared kind (a test fixture's, when its test ends)."""
    KIND_NEEDS.pop(name, None)


def quoted(names: list[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``: names for an error message."""
    q = [f"'{n}'" for n in names]
    return q[0] if len(q) == 1 else f"{', '.join(q[:-1])} or {q[-1]}"


def check_kind(name: str) -> str:
    """``name`` when it is a declared kind; a ValueError listing the declared ones if not."""
    if name not in KIND_NEEDS:
        raise ValueError(f"Input should be {quoted(list(KIND_NEEDS))}, got '{name}'")
    return name


def kinds_needing(field: str) -> list[str]:
    """The declared kinds that need ``field`` (the kinds a per-layer override applies to)."""
    return [name for name, needs in KIND_NEEDS.items() if field in needs]
