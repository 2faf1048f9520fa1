"""The outputs do not depend on the executor or the number of workers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from superlab.data.stage import run

from .corpus import context, make_inputs, outputs, recipe


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_inputs(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def reference(inputs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    run(context(run_dir, recipe(inputs, workers=1)))
    return outputs(run_dir)


def test_reference_run_counts(reference: dict) -> None:
    stats = reference["stats"]
    assert (stats["docs_in"], stats["docs_out"]) == (4 * 33, 4 * 30)
    assert stats["removed"] == {
        "dedup:exact": 4,
        "gopher:min_words": 4,
        "read:invalid_json": 4,
    }
    assert stats["shards"] == 4
    assert next(iter(stats["steps"])) == "read" and "ExactDedup" in stats["steps"]


def test_two_workers_match_one(inputs: list[Path], reference: dict, tmp_path: Path) -> None:
    run(context(tmp_path / "run", recipe(inputs, workers=2)))
    assert outputs(tmp_path / "run") == reference


# Near dedup as sharded tasks (forced on this small corpus: the threshold is 0 documents).
SHARDED = {"sharded_above_docs": 0, "bucket_shards": 3}


def test_sharded_dedup_matches_single_process(
    inputs: list[Path], reference: dict, tmp_path: Path
) -> None:
    run(context(tmp_path / "run", recipe(inputs, workers=1, dedup=SHARDED)))
    assert outputs(tmp_path / "run") == reference
    assert not (tmp_path / "run" / "data" / "work" / "minhash" / "lsh").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray not installed (superlab[ray])"
)
def test_ray_matches_local(inputs: list[Path], reference: dict, tmp_path: Path) -> None:
    # Sharded near dedup too: its tasks run on Ray like the per-shard cleaning.
    run(context(tmp_path / "run", recipe(inputs, executor="ray", workers=2, dedup=SHARDED)))
    assert outputs(tmp_path / "run") == reference
