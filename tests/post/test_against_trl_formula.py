"""One batch, our objectives against TRL's formulas written out per sequence, unpadded.

TRL's DPOTrainer (sigmoid): the log-probability of an answer is the sum over its
completion tokens of log_softmax(logits)[next token]; loss = mean over pairs of
-log σ(β ((πc - πr) - (rc - rr))). Its SFTTrainer with completion-only loss: the mean
next-token cross-entropy over every completion token of the batch. Here each sequence
runs alone, without padding, and the sums are plain Python loops in float64, so the test
pins the loss our batched, padded code gives (bench/dpo_vs_trl.py and bench/sft_vs_trl.py
compare against TRL itself, which this test does not need).
"""

from __future__ import annotations

import math

import torch

from superlab.common import StageContext
from superlab.post.pref import PrefStage
from superlab.post.sft import SFTStage

from .conftest import chat_rows, make_pretrained, pref_recipe, pref_rows, sft_recipe, write_jsonl


def _logp(model, ids, target) -> tuple[float, int]:
    """Sum of log p(ids[i] | ids[:i]) over the target positions i, and their count."""
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]])).logits_BTV[0].double()
    logp = torch.log_softmax(logits, -1)
    total, n = 0.0, 0
    for i in range(1, len(ids)):
        if target[i]:
            total += logp[i - 1, ids[i]].item()
            n += 1
    return total, n


def test_dpo_loss_of_one_batch_equals_trls_formula(tmp_path):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "pairs.jsonl", pref_rows())
    recipe = pref_recipe([str(data)])
    stage = PrefStage(recipe, run_dir, StageContext(recipe=recipe, run=run_dir).log)
    job = stage.build(0, 1, torch.device("cpu"))
    model = job.init().eval()
    idx = job.loader.order.next_indices()
    job.loader.order.reset()
    batch = job.loader.next_batch()
    with torch.no_grad():
        out = job.objective.loss(model, batch)
    beta = recipe.pref.beta
    losses = []
    for i in idx:  # the reference is the starting model: recompute it too
        pair = job.loader.pairs[i]
        pc = _logp(model, pair.chosen.ids.tolist(), pair.chosen.target)[0]
        pr = _logp(model, pair.rejected.ids.tolist(), pair.rejected.target)[0]
        rc, rr = pc, pr
        h = (pc - pr) - (rc - rr)
        losses.append(math.log1p(math.exp(-beta * h)))
    assert abs(out.loss.item() - sum(losses) / len(losses)) < 1e-6
    # and the cached reference values are these log-probabilities
    for r, i in enumerate(idx):
        pair = job.loader.pairs[i]
        pc = _logp(model, pair.chosen.ids.tolist(), pair.chosen.target)[0]
        assert abs(batch.ref_sum_P2[r, 0].item() - pc) < 1e-4


def test_sft_loss_of_one_batch_equals_trls_formula(tmp_path):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows())
    recipe = sft_recipe([str(data)])
    recipe.sft.packing = False
    stage = SFTStage(recipe, run_dir, StageContext(recipe=recipe, run=run_dir).log)
    job = stage.build(0, 1, torch.device("cpu"))
    model = job.init().eval()
    batch = job.loader.next_batch()
    with torch.no_grad():
        ours = job.objective.loss(model, batch).loss.item()
    total, n = 0.0, 0
    for x, y, real in zip(batch.x_BT, batch.y_BT, batch.real_BT, strict=True):
        k = int(real.sum())
        ids = [*x[:k].tolist(), int(y[k - 1])]  # the row's tokens: inputs, then the last target
        target = [False] + [int(t) != -100 for t in y[:k]]
        s, c = _logp(model, ids, target)
        total, n = total - s, n + c
    assert abs(ours - total / n) < 1e-6
