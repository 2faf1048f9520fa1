"""Shared by ``dpo_vs_trl.py`` and ``sft_vs_trl.py``: one tiny model in both worlds.

A byte-level BPE tokenizer (with the chat tokens) trained on arithmetic text, a random
Llama-shaped superlab model exported to a Hugging Face folder with ``superlab export``'s
code (``data.chat.export.export_run``: weights, tokenizer, chat template), so TRL loads
exactly what superlab imports from the same folder (``post.start``, init = the folder).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from superlab.common import RunDir, atomic_write_json
from superlab.config.recipe import ModelConfig, TokenizerConfig
from superlab.data.chat.export import export_run
from superlab.data.tokenizer import train_tokenizer
from superlab.model.io import save_model
from superlab.model.transformer import Transformer

MODEL = {
    "d_model": 64,
    "n_layers": 2,
    "n_heads": 4,
    "n_kv_heads": 2,
    "max_seq_len": 64,
    "tie_embeddings": False,
}


def arithmetic_texts(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(question, right answer, wrong answer) triples."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        wrong = a + b + rng.choice([-10, -2, -1, 1, 2, 10])
        out.append((f"What is {a} + {b}?", f"{a} + {b} = {a + b}.", f"{a} + {b} = {wrong}."))
    return out


def hf_folder(root: Path, seed: int = 0) -> Path:
    """A random tiny model with a trained tokenizer, exported to ``root/hf``."""
    run = RunDir(root / "run")
    run.tokenizer_dir.mkdir(parents=True, exist_ok=True)
    texts = [" ".join(t) for t in arithmetic_texts(500, seed)]
    tok = train_tokenizer(iter(texts), TokenizerConfig(vocab_size=400), run.tokenizer)
    cfg = ModelConfig.model_validate({**MODEL, "vocab_size": tok.get_vocab_size()})
    torch.manual_seed(seed)
    save_model(Transformer(cfg), run.ckpt / "step-1")
    atomic_write_json(run.ckpt / "step-1" / "state.json", {"step": 1})
    export_run(run.root, root / "hf", "llama")
    warm_imports()
    return root / "hf"


def warm_imports() -> None:
    """Pay the process's one-time import costs before either side is timed: the first
    torch optimizer imports torch._dynamo (~9 s on a loaded 2-core machine), which would
    otherwise fall on whichever side runs first."""
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    import transformers  # noqa: F401  (TRL's side imports it; ours does not need it)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def result(name: str, value: float, op: str, target: float) -> None:
    ok = value <= target if op == "<=" else value >= target
    print(f"RESULT {name} {value:.4g} target {op} {target:g} {'PASS' if ok else 'FAIL'}")


# Our side's loop settings matching ``fp32_cpu_args``: constant lr, AdamW (0.9, 0.999)
# without weight decay, clipping at 1.0, fp32 on the CPU, a row per step, no checkpoints.
OUR_LOOP = {
    "warmup_steps": 0,
    "min_lr_ratio": 1.0,
    "weight_decay": 0.0,
    "beta2": 0.999,
    "grad_clip": 1.0,
    "precision": "fp32",
    "device": "cpu",
    "log_every": 1,
    "ckpt_every": 10_000,
    "tensorboard": False,
}


class InOrder:
    """A post stage whose examples are visited in file order (TRL's sampler, made
    sequential)."""

    def __init__(self, stage: Any) -> None:
        self.stage, self.name, self.tc = stage, stage.name, stage.tc

    def build(self, rank: int, world_size: int, device: torch.device) -> Any:
        job = self.stage.build(rank, world_size, device)
        job.loader.order.shuffle = False
        return job


def fp32_cpu_args(lr: float, steps: int) -> dict[str, Any]:
    """The training arguments every TRL side shares with ours: constant ``lr``, AdamW
    (0.9, 0.999) without weight decay, clipping at 1.0, fp32 on the CPU, a log row per step,
    no checkpoints, seed 0."""
    return {
        "max_steps": steps,
        "learning_rate": lr,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "max_grad_norm": 1.0,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "seed": 0,
        "dataloader_num_workers": 0,
    }


Ours = Callable[[Path, Path, Path, int], tuple[list[float], int, float]]
Theirs = Callable[[Path, list[dict[str, Any]], int], tuple[list[float], float]]


def loss_and_speed(
    kind: str,
    doc: str,
    write_rows: Callable[[Path, int], list[dict[str, Any]]],
    batch: int,
    ours: Ours,
    trl: Theirs,
) -> None:
    """The SFT/DPO bench: the same rows through ours and TRL's trainer from one exported
    model; per-step losses side by side, then ``<kind>_loss_max_abs_diff_vs_trl`` and
    ``<kind>_speedup_vs_trl`` (tokens/s)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 steps instead of 20")
    steps = 10 if parser.parse_args().quick else 20
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hf = hf_folder(root)
        data = root / "rows.jsonl"
        rows = write_rows(data, batch * steps)
        our_losses, tokens, our_s = ours(root, hf, data, steps)
        trl_losses, trl_s = trl(hf, rows, steps)
    diffs = [abs(a - b) for a, b in zip(our_losses, trl_losses, strict=True)]
    print(f"{'step':>4} {'superlab':>10} {'trl':>10}")
    for i, (a, b) in enumerate(zip(our_losses, trl_losses, strict=True), start=1):
        print(f"{i:>4} {a:10.6f} {b:10.6f}")
    print(
        f"tokens {tokens}: superlab {our_s:.2f} s ({tokens / our_s:,.0f} tok/s), "
        f"trl {trl_s:.2f} s ({tokens / trl_s:,.0f} tok/s)"
    )
    result(f"{kind}_loss_max_abs_diff_vs_trl", max(diffs), "<=", 1e-4)
    result(f"{kind}_speedup_vs_trl", (tokens / our_s) / (tokens / trl_s), ">=", 1.5)


def run_ours(
    root: Path, recipe: Any, stage_cls: Any, *, time_build: bool
) -> tuple[list[float], int, float]:
    """Our stage ``stage_cls`` on the pre-training ``Trainer``, examples in file order:
    per-step losses, tokens, seconds (``time_build``: building the stage is timed too)."""
    import logging

    from superlab.common import StageContext
    from superlab.train.metrics import read_rows
    from superlab.train.trainer import Trainer

    run = RunDir(root / "ours")
    ctx = StageContext(recipe=recipe, run=run, log=logging.getLogger("bench"))

    def build() -> Any:
        return Trainer(recipe, run, ctx, post=InOrder(stage_cls(recipe, run, ctx.log)))

    if time_build:
        summary, seconds = timed(lambda: build().train())
    else:
        trainer = build()
        summary, seconds = timed(trainer.train)
    losses = [r["loss"] for r in read_rows(run.metrics) if "loss" in r]
    return losses, summary["tokens"], seconds


def run_trl(
    trainer_cls: Any,
    config_cls: Any,
    hf: Path,
    rows: list[dict[str, Any]],
    steps: int,
    lr: float,
    **config: Any,
) -> tuple[list[float], float]:
    """TRL's ``trainer_cls`` on ``rows`` in order from the folder ``hf``: per-step losses
    (from ``compute_loss``, before any rounding) and the seconds of ``trainer.train()``."""
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer

    losses: list[float] = []

    class Recorded(trainer_cls):  # type: ignore[misc, valid-type]
        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(train_dataset or self.train_dataset)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if model.training:
                losses.append(float((out[0] if return_outputs else out).detach()))
            return out

    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(hf)
    args = config_cls(output_dir=str(hf.parent / "trl"), **config, **fp32_cpu_args(lr, steps))
    trainer = Recorded(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    _, seconds = timed(trainer.train)
    return losses, seconds
