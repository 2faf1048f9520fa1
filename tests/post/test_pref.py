"""The pref stage: reference cache, refusal of another vocabulary, TRL's metric names."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from superlab.common import StageContext, StageError
from superlab.common.ckpt import list_checkpoints
from superlab.config.recipe import TokenizerConfig
from superlab.data.tokenizer import train_tokenizer
from superlab.post.pref import PrefStage, run
from superlab.post.pref_data import pair_batch, sequence_logps
from superlab.train.metrics import read_rows

from .conftest import make_pretrained, pref_recipe, pref_rows, write_jsonl
from .kill import kill_then_resume, rows

TRL_NAMES = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)


def _build(recipe, run_dir):
    stage = PrefStage(recipe, run_dir, StageContext(recipe=recipe, run=run_dir).log)
    return stage, stage.build(0, 1, torch.device("cpu"))


def test_dpo_logs_trl_names_and_starts_at_log_2(tmp_path):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows())
    summary = run(StageContext(recipe=pref_recipe([str(data)]), run=run_dir))
    steps = [r for r in read_rows(run_dir.metrics) if "rewards/chosen" in r]
    assert [r["step"] for r in steps] == list(range(1, 9))
    assert all(name in steps[0] for name in TRL_NAMES) and steps[0]["stage"] == "pref"
    # the policy starts as the reference: every reward 0, the loss log 2
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert steps[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert steps[-1]["rewards/margins"] > 0  # it learned to prefer the right sums
    assert [s for s, _ in list_checkpoints(run_dir.ckpt / "pref")] == [4, 8]
    assert summary["reference"]["computed"] == 24


def test_reference_logps_are_computed_once_cached_and_resumable(tmp_path, monkeypatch):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows(150))
    recipe = pref_recipe([str(data)], steps=2)
    stage, job = _build(recipe, run_dir)
    assert stage.summary["reference"]["computed"] == 150
    cache = run_dir.root / "pref" / "reference"
    assert sorted(p.name for p in cache.glob("chunk-*.npy")) == [
        "chunk-00000.npy",
        "chunk-00001.npy",
        "chunk-00002.npy",
    ]
    # the cached values are the reference model's log-probabilities of the pairs
    model = job.init().eval()
    pairs = job.loader.pairs[:3]
    x, y = pair_batch(pairs, 1)
    with torch.no_grad():
        sums, counts = sequence_logps(model(x).logits_BTV, y)
    np.testing.assert_allclose(job.loader.ref[:3, 0], sums[:3].numpy(), rtol=1e-6)
    np.testing.assert_allclose(job.loader.ref[:3, 3], counts[3:].numpy())

    # every epoch reads the table: no reference model once it is cached
    import superlab.post.reference as reference

    calls = []
    real = reference._compute
    monkeypatch.setattr(reference, "_compute", lambda *a: calls.append(len(a[1])) or real(*a))
    stage, again = _build(recipe, run_dir)
    assert calls == [] and stage.summary["reference"] == {
        "computed": 0,
        "cached": 150,
        "source": str(run_dir.ckpt / "step-10"),
    }
    np.testing.assert_array_equal(again.loader.ref, job.loader.ref)
    # an interrupted computation resumes at the missing chunk
    (cache / "chunk-00001.npy").unlink()
    stage, _ = _build(recipe, run_dir)
    assert calls == [64] and stage.summary["reference"]["computed"] == 64
    # other pairs: the cache is cleared and computed again
    write_jsonl(tmp_path / "pairs.jsonl", pref_rows(30))
    stage, _ = _build(recipe, run_dir)
    assert stage.summary["reference"]["computed"] == 30 and len(list(cache.glob("chunk-*"))) == 1


def test_a_reference_with_another_vocabulary_is_refused_in_one_line(tmp_path):
    run_dir = make_pretrained(tmp_path / "run")
    other = make_pretrained(tmp_path / "other")
    texts = ["completely different words here"] * 50
    train_tokenizer(iter(texts), TokenizerConfig(vocab_size=290), other.tokenizer)
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows())
    recipe = pref_recipe([str(data)])
    recipe.pref.reference = str(other.root)
    with pytest.raises(StageError) as e:
        _build(recipe, run_dir)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"pref.reference {other.ckpt / 'step-10'} does not share")


def test_simpo_needs_no_reference(tmp_path):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows())
    summary = run(StageContext(recipe=pref_recipe([str(data)], "simpo", steps=2), run=run_dir))
    assert summary["reference"]["computed"] == 0
    assert not (run_dir.root / "pref" / "reference").exists()


def test_sigkill_at_a_random_step_then_resume_is_exact(tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows(40))
    recipe = pref_recipe([str(data)], steps=14, threads=1, eval_every=5)
    reference = make_pretrained(tmp_path / "reference")
    run(StageContext(recipe=recipe, run=reference))

    run_dir = make_pretrained(tmp_path / "runs" / "tiny")
    where = kill_then_resume(tmp_path, recipe, "pref", run_dir, 14)
    assert rows(run_dir, TRL_NAMES) == rows(reference, TRL_NAMES), where


def test_arithmetic_pairs_reject_the_models_own_wrong_samples(tmp_path):
    from superlab.post.arithmetic import items, sample_answers
    from superlab.post.start import resolve_start

    run_dir = make_pretrained(tmp_path)
    recipe = pref_recipe([], pref={"generate": "arithmetic", "generate_pairs": 12}, steps=1)
    stage, _ = _build(recipe, run_dir)
    written = [json.loads(x) for x in (run_dir.root / "pref" / "arithmetic.jsonl").open()]
    counts = json.loads((run_dir.root / "pref" / "arithmetic.json").read_text())
    assert counts["items"] == 12 and counts["pairs"] == len(written) > 0
    task = items(12, recipe.pref.train.seed)
    start = resolve_start("run", run_dir, "pref.init")
    samples = sample_answers(start, [q for q, _ in task], torch.device("cpu"), 1234)
    want = [
        {"prompt": q, "chosen": a, "rejected": s}
        for (q, a), s in zip(task, samples, strict=True)
        if s and s != a
    ]
    assert written == want  # chosen is right, rejected is the model's own (wrong) sample
    assert stage.summary["train_examples"] + stage.summary["heldout_examples"] == len(want)


def test_report_draws_the_post_training_section_and_keeps_training_to_train_rows(tmp_path):
    from superlab.report.post import post_training_section
    from superlab.report.sections import training_section

    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows())
    run(StageContext(recipe=pref_recipe([str(data)], steps=2), run=run_dir))
    section = post_training_section(run_dir)
    assert section.present and "Reward accuracy" in section.body
    assert "Log-probabilities: chosen vs rejected" in section.body and "<h3>SFT" not in section.body
    assert not training_section(run_dir).present  # only pref rows: no pre-training rows
