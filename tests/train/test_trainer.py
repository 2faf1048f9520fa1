import json
import math
import os
import signal

import pytest
import torch

from superlab.common import RunDir, StageContext, StageError
from superlab.common.ckpt import list_checkpoints
from superlab.train.metrics import read_rows
from superlab.train.trainer import NonFiniteLossError, Trainer, TrainingInterrupted

from .conftest import EOS, tiny_recipe, write_shards


def _losses(run_dir):
    return {r["step"]: r["loss"] for r in read_rows(run_dir.metrics) if "loss" in r}


def test_trains_logs_and_checkpoints(run_dir):
    summary = Trainer(tiny_recipe(), run_dir).train()
    assert summary["steps"] == 12 and summary["tokens"] == 12 * 4 * 32
    assert summary["params_total"] > summary["params_active"]
    rows = read_rows(run_dir.metrics)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, 13))
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert {"lr", "grad_norm", "tokens_per_s", "elapsed"} <= set(train_rows[0])
    moe = train_rows[0]["moe"]
    assert [m["layer"] for m in moe] == [1] and sum(moe[0]["tokens_per_expert"]) == 4 * 32 * 2
    assert [r["step"] for r in rows if "heldout_loss" in r] == [5, 10, 12]
    assert summary["heldout_loss"] == rows[-1]["heldout_loss"]
    # Checkpoints at 4, 8, 12; keep_last = 2.
    assert [s for s, _ in list_checkpoints(run_dir.ckpt)] == [8, 12]
    state = json.loads((run_dir.ckpt / "step-12" / "state.json").read_text())
    assert state["step"] == 12 and state["loader"] == {"epoch": 0, "index": 48}


class Crash(Exception):
    pass


def test_resume_is_bitwise_identical(run_dir, tmp_path_factory):
    straight = RunDir(tmp_path_factory.mktemp("uninterrupted"))
    write_shards(straight.root, {"train": [3000, 2000], "heldout": [700]})
    Trainer(tiny_recipe(), straight).train()

    # Crash after step 6: the newest checkpoint is step 4, metrics run to step 6.
    first = Trainer(tiny_recipe(), run_dir)
    step = first._train_step

    def step_then_crash():
        step()
        if first.step == 6:
            raise Crash

    first._train_step = step_then_crash
    with pytest.raises(Crash):
        first.train()
    assert max(_losses(run_dir)) == 6
    (run_dir.ckpt / ".step-8.abc.tmp").mkdir()  # a checkpoint half-written at the crash

    resumed = Trainer(tiny_recipe(), run_dir)
    assert resumed.step == 4 and max(r["step"] for r in read_rows(run_dir.metrics)) == 4
    assert not (run_dir.ckpt / ".step-8.abc.tmp").exists()
    resumed.train()

    keys = ("step", "loss", "aux_loss", "lr", "grad_norm", "heldout_loss", "moe")
    rows = [{k: r.get(k) for k in keys} for r in read_rows(run_dir.metrics)]
    assert rows == [{k: r.get(k) for k in keys} for r in read_rows(straight.metrics)]
    assert len(_losses(run_dir)) == 12  # float equality above: bitwise
    a = torch.load(run_dir.ckpt / "step-12" / "optim.pt")
    b = torch.load(straight.ckpt / "step-12" / "optim.pt")
    name = "blocks.0.attn.wq.weight"
    assert all(
        torch.equal(a["state"][name][k], b["state"][name][k]) for k in ("exp_avg", "exp_avg_sq")
    )


def test_resume_without_a_checkpoint_drops_all_rows(run_dir):
    first = Trainer(tiny_recipe(), run_dir)
    first._train_step()
    first._train_step()
    assert len(_losses(run_dir)) == 2
    assert Trainer(tiny_recipe(), run_dir).step == 0
    assert read_rows(run_dir.metrics) == []


def test_nonfinite_steps_are_skipped_then_raise(run_dir):
    trainer = Trainer(tiny_recipe(), run_dir)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with torch.no_grad():
        trainer.model.norm.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="5 steps in a row"):
        trainer.train()
    rows = read_rows(run_dir.metrics)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and all(r["skipped"] for r in rows)
    for p, q in zip(trainer.model.parameters(), before, strict=True):
        if p is not trainer.model.norm.weight:
            assert torch.equal(p, q)  # no update was applied


def test_sigterm_saves_a_checkpoint_then_raises(run_dir):
    trainer = Trainer(tiny_recipe(ckpt_every=100), run_dir)
    step = trainer._train_step

    def step_then_signal():
        step()
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer._train_step = step_then_signal
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: ray.init installs one
    with pytest.raises(TrainingInterrupted, match="SIGTERM at step 3"):
        trainer.train()
    assert [s for s, _ in list_checkpoints(run_dir.ckpt)] == [3]
    assert signal.getsignal(signal.SIGTERM) is before  # the trainer put the old handler back
    assert Trainer(tiny_recipe(), run_dir).step == 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_repeated_sigterm_still_saves_but_a_second_ctrl_c_stops_at_once(run_dir, sig):
    trainer = Trainer(tiny_recipe(ckpt_every=100), run_dir)
    step = trainer._train_step

    def step_then_signal_twice():
        step()
        if trainer.step == 3:
            os.kill(os.getpid(), sig)
            os.kill(os.getpid(), sig)  # e.g. a process pool terminating its workers again

    trainer._train_step = step_then_signal_twice
    with pytest.raises(KeyboardInterrupt) as caught:
        trainer.train()
    saved = [s for s, _ in list_checkpoints(run_dir.ckpt)]
    if sig == signal.SIGTERM:
        assert isinstance(caught.value, TrainingInterrupted) and saved == [3]
    else:
        assert not isinstance(caught.value, TrainingInterrupted) and saved == []


def test_resume_refuses_a_different_model(run_dir):
    Trainer(tiny_recipe(steps=4), run_dir).train()
    recipe = tiny_recipe()
    recipe.model.d_model = 64
    with pytest.raises(StageError, match="different model config"):
        Trainer(recipe, run_dir)


def _run(root, heldout: bool = True, **train) -> tuple[Trainer, RunDir]:
    run = RunDir(root)
    write_shards(root, {"train": [3000, 2000], "heldout": [700] if heldout else []})
    return Trainer(tiny_recipe(**train), run), run


def test_bf16_autocast_trains_close_to_fp32(tmp_path):
    fp32, fp32_run = _run(tmp_path / "fp32", precision="fp32")
    bf16, bf16_run = _run(tmp_path / "bf16", precision="bf16")
    assert not fp32.bf16 and bf16.bf16
    assert Trainer(tiny_recipe(precision="auto"), fp32_run).bf16 is False  # auto: fp32 on CPU
    dtypes = []
    bf16.model.blocks[0].attn.wq.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    fp32.train()
    assert bf16.train()["precision"] == "bf16"
    a, b = _losses(fp32_run), _losses(bf16_run)
    assert set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # fp32 master weights
    assert a != b  # bf16 really ran, and stays close: max |diff| 3e-4 measured
    assert max(abs(a[s] - b[s]) for s in a) < 0.01 and b[12] < b[1]


def test_compile_wraps_the_blocks_and_matches_eager(tmp_path):
    # ~12 s on the 2-core machine, nearly all of it inductor compiling two blocks once; no
    # held-out split, so no second compile for eval mode.
    eager, eager_run = _run(tmp_path / "eager", heldout=False, steps=3)
    compiled, compiled_run = _run(tmp_path / "compiled", heldout=False, steps=3, compile=True)
    dense, moe = compiled.model.blocks  # layer 1 is MoE (every 2)
    assert dense._compiled_call_impl is not None and moe.attn._compiled_call_impl is not None
    assert moe._compiled_call_impl is None  # router statistics stay eager
    eager.train()
    compiled.train()
    a, b = _losses(eager_run), _losses(compiled_run)
    assert sorted(b) == [1, 2, 3]
    assert max(abs(a[s] - b[s]) for s in a) < 1e-4


def test_document_mask_feeds_doc_ids_that_change_after_each_eos(run_dir):
    trainer = Trainer(tiny_recipe(document_mask=True, steps=2, eval_every=2), run_dir)
    seen = []

    def record(module, args, kwargs):
        seen.append((args[0], kwargs["doc_ids_BT"]))

    trainer.model.register_forward_pre_hook(record, with_kwargs=True)
    trainer.train()
    assert len(seen) == 2 + 2  # two training steps, two held-out batches
    for x_BT, doc_ids_BT in seen:
        assert doc_ids_BT.shape == x_BT.shape and (doc_ids_BT[:, 0] == 0).all()
        # conftest's documents end with EOS and hold no other EOS.
        new_doc_BT = doc_ids_BT[:, 1:] - doc_ids_BT[:, :-1]
        assert torch.equal(new_doc_BT, (x_BT[:, :-1] == EOS).long())
        assert new_doc_BT.sum() > 0
    plain = Trainer(tiny_recipe(steps=1), run_dir)
    assert plain.loader.doc_starts is None


def test_injected_nan_losses_are_skipped_counted_and_n_in_a_row_stop(run_dir):
    trainer = Trainer(tiny_recipe(max_bad_steps=3), run_dir)
    forward = trainer._forward
    bad = {3, 6, 7, 8}

    def nan_on_bad_steps(batch):
        out = forward(batch)
        if trainer.step + 1 in bad:
            out.loss = out.loss * float("nan")
        return out

    trainer._forward = nan_on_bad_steps

    def unchanged_since(before: list[torch.Tensor]) -> bool:
        now = trainer.model.parameters()
        return all(torch.equal(p, q) for p, q in zip(now, before, strict=True))

    trainer._train_step()
    trainer._train_step()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer._train_step()  # step 3: NaN, no update
    assert unchanged_since(before)
    trainer._train_step()  # step 4: trains again
    assert not unchanged_since(before)
    with pytest.raises(NonFiniteLossError, match=r"3 steps in a row \(steps 6 to 8\)"):
        trainer.train()
    rows = {r["step"]: r for r in read_rows(run_dir.metrics) if "loss" in r}
    assert [s for s, r in rows.items() if r.get("skipped")] == [3, 6, 7, 8]
    assert rows[3]["skipped_total"] == 1 and rows[8]["skipped_total"] == 4
    assert rows[5]["skipped_total"] == 1 and "skipped" not in rows[5]
    assert trainer.skipped == 4 and trainer.step == 8


def test_expert_load_stats_match_counts_recomputed_from_the_router(run_dir):
    # Two micro-batches per step and a capacity limit, so counts add up and tokens drop.
    recipe = tiny_recipe(steps=3, grad_accum=2, eval_every=100)
    recipe.model.moe.capacity_factor = 1.0
    trainer = Trainer(recipe, run_dir)
    logits = []
    router = trainer.model.blocks[1].mlp.router
    router.register_forward_hook(
        lambda m, i, out: logits.append(out.detach().float()) if m.training else None
    )
    trainer.train()
    rows = [r for r in read_rows(run_dir.metrics) if "moe" in r]
    assert [r["step"] for r in rows] == [1, 2, 3] and len(logits) == 6
    E, K = 4, 2
    for row, step_logits in zip(rows, (logits[0:2], logits[2:4], logits[4:6]), strict=True):
        (stats,) = row["moe"]
        counts, dropped, entropy = torch.zeros(E, dtype=torch.long), [], []
        for logits_BLE in step_logits:
            probs_TE = logits_BLE.reshape(-1, E).softmax(-1)
            T = probs_TE.shape[0]
            routed_E = torch.bincount(probs_TE.topk(K, dim=-1).indices.flatten(), minlength=E)
            capacity = math.ceil(1.0 * T * K / E)
            dropped.append((routed_E - capacity).clamp(min=0).sum().item() / (T * K))
            entropy.append(-(probs_TE * probs_TE.log()).sum(-1).mean().item())
            counts += routed_E
        mean = counts.float().mean().item()
        assert stats["layer"] == 1 and stats["tokens_per_expert"] == counts.tolist()
        assert sum(stats["tokens_per_expert"]) == 2 * 4 * 32 * K
        assert stats["mean_load"] == pytest.approx(mean)
        assert stats["max_load"] == pytest.approx(counts.max().item() / mean)
        assert stats["load_cv"] == pytest.approx(counts.float().std(correction=0).item() / mean)
        assert stats["dropped_fraction"] == pytest.approx(sum(dropped) / 2)
        assert stats["router_entropy"] == pytest.approx(sum(entropy) / 2, rel=1e-5)
        assert {"balance_loss", "z_loss"} <= set(stats)
    assert any(r["moe"][0]["dropped_fraction"] > 0 for r in rows)


class Bars:
    def __init__(self) -> None:
        self.descriptions: list[str] = []
        self.advanced = 0

    def advance(self, n: float = 1) -> None:
        self.advanced += n

    def update(self, *, total=None, description=None) -> None:
        if description is not None:
            self.descriptions.append(description)


def test_progress_bar_shows_loss_and_tokens_per_second(run_dir):
    bar = Bars()
    ctx = StageContext(recipe=tiny_recipe(steps=3), run=run_dir, _open_bar=lambda d, t: bar)
    Trainer(ctx.recipe, run_dir, ctx).train()
    assert bar.advanced == 3 and len(bar.descriptions) == 3
    rows = [r for r in read_rows(run_dir.metrics) if "loss" in r]
    last = bar.descriptions[-1]
    assert last.startswith(f"train loss {rows[-1]['loss']:.3f} · ") and last.endswith(" tok/s")
    assert last.split(" · ")[1] == f"{rows[-1]['tokens_per_s']:,.0f} tok/s"
