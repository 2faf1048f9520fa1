"""The shipped sums task: files reproducible from the generator, splits disjoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from superlab.post import tasks

SHIPPED = Path(__file__).resolve().parents[2] / "recipes" / "data"


def test_the_shipped_files_are_what_the_generator_writes(tmp_path):
    tasks.main([str(tmp_path)])
    for name in ("sums-pretrain.jsonl", "sums-sft.jsonl"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_no_split_holds_a_heldout_question():
    heldout = tasks.heldout_items()
    for split in ("train", "sft", "pretrain"):
        items, _ = tasks.split_items(split, 2000)
        tasks.check_disjoint(items, heldout)  # raises on any shared question
    with pytest.raises(ValueError, match="in both splits"):
        tasks.check_disjoint(heldout[:3], heldout)
