"""`superlab serve RUN --checkpoint WHICH` picks one of the run's checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from superlab.serve.load import named_checkpoint


def _ckpt(path: Path, complete: bool = True) -> Path:
    path.mkdir(parents=True)
    if complete:
        (path / "state.json").write_text("{}")
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    for step in (100, 300):
        _ckpt(root / "ckpt" / f"step-{step}")
    _ckpt(root / "ckpt" / "sft" / "step-50")
    _ckpt(root / "ckpt" / "sft" / "step-90")
    _ckpt(root / "ckpt" / "sft" / "step-120", complete=False)  # being written
    _ckpt(root / "ckpt" / "pref" / "step-20")
    return root


def test_a_stage_gives_its_newest_complete_checkpoint(run: Path) -> None:
    assert named_checkpoint(run, "base") == run / "ckpt" / "step-300"
    assert named_checkpoint(run, "sft") == run / "ckpt" / "sft" / "step-90"
    assert named_checkpoint(run, "pref") == run / "ckpt" / "pref" / "step-20"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        named_checkpoint(run, "rl")  # a stage that has not run


def test_one_step_by_name(run: Path) -> None:
    assert named_checkpoint(run, "step-100") == run / "ckpt" / "step-100"
    assert named_checkpoint(run, "sft/step-50") == run / "ckpt" / "sft" / "step-50"


def test_what_does_not_exist_is_refused_naming_what_does(run: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"sft/step-120 \(there: step-50, step-90\)"):
        named_checkpoint(run, "sft/step-120")  # incomplete
    with pytest.raises(ValueError, match="expected one of base"):
        named_checkpoint(run, "final")
    with pytest.raises(ValueError, match="expected one of"):
        named_checkpoint(run, "sft/last")
    with pytest.raises(FileNotFoundError, match="has no ckpt/"):
        named_checkpoint(run / "ckpt" / "step-100", "sft")
