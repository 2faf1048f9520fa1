"""The attention-kind registry: one object per kind, asked by name, consistent with config."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from superlab.config.attention_kinds import KIND_NEEDS
from superlab.config.recipe import AttentionConfig
from superlab.model.attention_kinds import KINDS, get_kind, register_kind, unregister_kind
from superlab.model.attention_kinds.full import Full

SHIPPED = {
    "full": AttentionConfig(kind="full"),
    "sliding": AttentionConfig(kind="sliding", window=4),
    "chunked": AttentionConfig(kind="chunked", chunk_size=3),
    "sparse": AttentionConfig(kind="sparse", block_size=2, top_k_blocks=1, local_blocks=1),
}


def test_every_shipped_kind_is_registered_with_the_fields_config_declares():
    assert set(SHIPPED) <= set(KINDS)
    for name in SHIPPED:
        assert get_kind(name).name == name
        assert get_kind(name).needs == KIND_NEEDS[name]


def test_unknown_and_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="attention kind 'nope' is not registered"):
        get_kind("nope")
    with pytest.raises(ValueError, match="'full' is already registered"):
        register_kind(Full())


def test_setting_reads_a_needed_field_and_names_it_when_unset():
    assert get_kind("sliding").setting(SHIPPED["sliding"], "window") == 4
    assert get_kind("chunked").setting(SHIPPED["chunked"], "chunk_size") == 3
    with pytest.raises(AssertionError, match="kind 'sliding' needs 'window'"):
        get_kind("sliding").setting(AttentionConfig(kind="full"), "window")


def test_a_kind_whose_fields_disagree_with_config_is_refused():
    class Odd(Full):
        name = "sliding-but-not"

    register_kind(Odd())
    try:
        assert KIND_NEEDS["sliding-but-not"] == ()
        AttentionConfig(kind="sliding-but-not")  # config now takes the name
    finally:
        unregister_kind("sliding-but-not")
    assert "sliding-but-not" not in KIND_NEEDS and "sliding-but-not" not in KINDS

    class Clash(Full):
        name = "sliding"
        needs = ()

    saved = KINDS.pop("sliding")
    try:
        with pytest.raises(ValueError, match="'sliding' is declared needing"):
            register_kind(Clash())
    finally:
        KINDS["sliding"] = saved


@pytest.mark.parametrize("name", SHIPPED)
def test_first_needed_is_the_oldest_key_any_later_query_sees(name):
    """The cache may drop keys before ``first_needed``: no query at n or later sees them."""
    cfg, kind = SHIPPED[name], get_kind(name)
    T = 12
    for n in range(T):
        first = int(kind.first_needed(cfg, torch.tensor([n]))[0])
        later = [(t, s) for t in range(n, T) for s in range(T) if kind.visible(cfg, t, s)]
        assert all(s >= first for _, s in later)
        if first > 0:  # and it is tight: some later query still sees it
            assert any(s == first for _, s in later)


@pytest.mark.parametrize("name", SHIPPED)
def test_bound_segment_and_keys_seen(name):
    cfg, kind = SHIPPED[name], get_kind(name)
    bounds = {"full": None, "sliding": 4, "chunked": 3, "sparse": None}
    assert kind.bound(cfg) == bounds[name] and kind.bounded(cfg) == (bounds[name] is not None)
    assert kind.segment(cfg) == (3 if name == "chunked" else None)
    if name != "sparse":  # sparse's keys depend on the keys' values (tests/model/test_counts)
        T = 10
        seen = sum(bool(kind.visible(cfg, t, s)) for t in range(T) for s in range(T))
        assert kind.keys_seen(cfg, T) == seen


def test_the_kinds_import_no_torch_and_config_validates_without_model():
    code = (
        "import sys; from superlab.config.recipe import AttentionConfig as A; "
        "A(kind='sliding', window=2); assert 'superlab.model' not in sys.modules; "
        "import superlab.model.attention_kinds; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
