"""Recipes name attention kinds from one table; the checks ask it, not the kind's name."""

from pathlib import Path

import pytest

from superlab.config import RecipeError, load_recipe
from superlab.config.attention_kinds import KIND_NEEDS, check_kind, kinds_needing, quoted


def _load(tmp_path: Path, text: str):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return load_recipe(p)


def test_an_unknown_kind_is_refused_at_its_line_listing_the_known_ones(tmp_path):
    with pytest.raises(RecipeError) as e:
        _load(tmp_path, "name: x\nmodel:\n  attention:\n    kind: slidng\n    window: 4\n")
    assert (
        ":4: model.attention.kind: Input should be 'full', 'sliding', 'chunked' or 'sparse', "
        "got 'slidng'" in str(e.value)
    )
    with pytest.raises(RecipeError, match=r"layer_pattern\.0\.attention: Input should be 'full'"):
        _load(tmp_path, "name: x\nmodel:\n  layer_pattern:\n    - {attention: dense}\n")


def test_the_table_names_each_kinds_fields():
    assert check_kind("chunked") == "chunked"
    assert kinds_needing("window") == ["sliding"] and kinds_needing("block_size") == []
    assert KIND_NEEDS["full"] == () and KIND_NEEDS["chunked"] == ("chunk_size",)
    assert quoted(["a"]) == "'a'" and quoted(["a", "b", "c"]) == "'a', 'b' or 'c'"


def test_a_chunk_size_on_a_sliding_layer_names_the_kind_it_applies_to(tmp_path):
    text = (
        "name: x\nmodel:\n  attention: {kind: sliding, window: 4}\n"
        "  layer_pattern:\n    - {chunk_size: 8}\n"
    )
    with pytest.raises(RecipeError) as e:
        _load(tmp_path, text)
    assert "'chunk_size' applies to kind 'chunked', not 'sliding'" in str(e.value)
