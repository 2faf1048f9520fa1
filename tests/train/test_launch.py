import pytest

from superlab.common import RunDir, atomic_write_json
from superlab.train.launch import ResumeRefused, check_resume, rank


def test_checkpoints_without_resume_are_refused_with_the_way_out(tmp_path):
    run = RunDir(tmp_path)
    check_resume(run, resume=False)  # nothing there: a fresh start
    (run.ckpt / "step-4").mkdir(parents=True)
    (run.ckpt / "step-4" / "state.json").write_text("{}")
    (run.ckpt / "step-8").mkdir()  # cut off: no state.json, not a checkpoint
    with pytest.raises(ResumeRefused, match="up to step-4: pass --resume"):
        check_resume(run, resume=False)
    check_resume(run, resume=True)
    atomic_write_json(run.marker("train"), {})
    check_resume(run, resume=False)  # complete: the runner reports nothing to do


def test_rank_comes_from_torchrun(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert rank() == 0
    monkeypatch.setenv("RANK", "3")
    assert rank() == 3
