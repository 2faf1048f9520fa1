"""GRPO: superlab's rl stage against TRL's ``GRPOTrainer``, same SFT model, prompts, reward.

The SFT model is exported to a Hugging Face folder (``superlab export``'s code). It is the
SFT checkpoint of a finished ``recipes/rl-tiny.yaml`` run (``--run runs/rl-tiny``), or,
without ``--run``, a small model made here: a tokenizer and a random 2-layer model, then
our SFT stage on ``recipes/data/sums-sft.jsonl``. Both sides start from that folder and
train GRPO in fp32 on the CPU (TRL without vLLM: transformers' ``generate``) on the same
sums prompts in the same order (no shuffling on either side), with the same reward
(``exact_match`` on the answer tag, our built-in, called by TRL in its own signature),
group size 8, 8 prompts per step, at most 16 new tokens at temperature 1, stopping at
``<|end|>``, beta 0.04 (k3 KL to the starting model), one update per rollout, the
sequence-mean loss (TRL's ``loss_type="grpo"``), group-scaled advantages, constant lr.

- ``RESULT grpo_speedup_vs_trl``: prompts per second over the training loop (generation,
  rewards, reference and update), ours over TRL's, target >= 2.0. Model loading is
  outside both. The sides alternate ``--repeats`` times (default 2) and each keeps its
  fastest loop, since the machine is shared and its load varies.
- ``RESULT grpo_pass1_gain``: held-out pass@1 (greedy) of the RL checkpoint minus the SFT
  checkpoint's. With ``--run``, from that run's ``rl/eval.json`` (the recipe's 100 steps,
  target >= 0.10). Without, from this bench's own short run on the small model, with the
  lower target >= 0.02 said in its output.
- ``INFO trl_pass1_gain``: the same measure for TRL's model after the same steps.

    .venv/bin/python bench/grpo_vs_trl.py --quick [--run runs/rl-tiny]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from trl_common import MODEL, OUR_LOOP, fp32_cpu_args, result, timed

from superlab.common import RunDir, StageContext, atomic_write_json
from superlab.common.deps import require
from superlab.config.recipe import ModelConfig, Recipe, TokenizerConfig
from superlab.config.rl import RLConfig
from superlab.data.chat.export import export_run
from superlab.data.tokenizer import train_tokenizer
from superlab.model.io import save_model
from superlab.model.transformer import Transformer
from superlab.post.rewards import builtin
from superlab.post.rl import build_trainer
from superlab.post.rl_data import make_prompt
from superlab.post.rl_eval import pass_rates
from superlab.post.start import resolve_start
from superlab.post.tasks import heldout_items, split_items
from superlab.train.metrics import read_rows

REPO = Path(__file__).resolve().parent.parent
B, G, NEW_TOKENS, BETA, LR, EVAL_ITEMS = 8, 8, 16, 0.04, 1e-4, 128
LOOP = OUR_LOOP


def small_sft(root: Path, steps: int) -> Path:
    """A small model fine-tuned here on the sums task; returns its run directory."""
    from superlab.post.sft import run as sft

    run = RunDir(root / "sft-run")
    run.tokenizer_dir.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (REPO / "recipes/data/sums-sft.jsonl").open()]
    texts = [" ".join(m["content"] for m in r["messages"]) for r in rows[:2000]]
    tok = train_tokenizer(iter(texts), TokenizerConfig(vocab_size=400), run.tokenizer)
    cfg = ModelConfig.model_validate({**MODEL, "vocab_size": tok.get_vocab_size()})
    torch.manual_seed(0)
    save_model(Transformer(cfg), run.ckpt / "step-1")
    atomic_write_json(run.ckpt / "step-1" / "state.json", {"step": 1})
    recipe = Recipe.model_validate(
        {
            "name": "sft",
            "model": MODEL,
            "train": {"seq_len": 64},
            "sft": {
                "init": "run",
                "data": [str(REPO / "recipes/data/sums-sft.jsonl")],
                "heldout_every": 0,
                "train": {
                    **LOOP,
                    "steps": steps,
                    "batch_size": 16,
                    "seq_len": 64,
                    "lr": 3e-3,
                    "min_lr_ratio": 0.1,
                },
            },
        }
    )
    sft(StageContext(recipe=recipe, run=run, log=logging.getLogger("bench")))
    return run.root


def rl_cfg(hf: Path, steps: int) -> dict[str, Any]:
    return {
        "init": str(hf),
        "task": "sums",
        "task_items": 2 * B * steps,  # a few are dropped as held-out questions
        "rewards": [{"name": "exact_match"}],
        "group_size": G,
        "beta": BETA,
        "max_new_tokens": NEW_TOKENS,
        "eval_items": 0,
        "train": {**LOOP, "steps": steps, "batch_size": B, "seq_len": 64, "lr": LR},
    }


def heldout(tokenizer: Any, max_seq_len: int) -> list[Any]:
    """The held-out sums items as prompts (the items ``rl/eval.json`` uses)."""
    return [make_prompt(tokenizer, it.id, it.row(), max_seq_len - 1) for it in heldout_items()][
        :EVAL_ITEMS
    ]


def evaluate(path: Path, cfg: RLConfig) -> dict[str, Any]:
    """Held-out pass@1 / pass@8 of the model in a Hugging Face folder, through our engine."""
    start = resolve_start(str(path), RunDir(path.parent / "unused"), "bench")
    model = start.load()
    items = heldout(start.tokenizer, start.model_cfg.max_seq_len)
    return pass_rates(model, start.tokenizer, start.model_cfg.max_seq_len, items, cfg, 7)


def ours(root: Path, hf: Path, steps: int) -> tuple[float, Path, RLConfig]:
    recipe = Recipe.model_validate(
        {"name": "grpo-bench", "model": MODEL, "train": {"seq_len": 64}, "rl": rl_cfg(hf, steps)}
    )
    run = RunDir(root)
    ctx = StageContext(recipe=recipe, run=run, log=logging.getLogger("bench"))
    stage, trainer = build_trainer(ctx)
    assert stage.loader is not None and recipe.rl is not None
    stage.loader.order.shuffle = False  # the rows in order, as TRL with shuffle_dataset off
    _, seconds = timed(trainer.train)
    lengths = [r["completions/mean_length"] for r in read_rows(run.metrics) if r.get("stage")]
    print(f"superlab: {trainer.step} steps, mean completion length per step {lengths}")
    from superlab.model.hf import export_hf

    out = root / "hf"
    export_hf(trainer.model, out, "llama")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(hf / name, out / name)
    return seconds, out, recipe.rl


def trl(root: Path, hf: Path, steps: int, cfg: RLConfig) -> tuple[float, Path]:
    require("trl", "bench/grpo_vs_trl.py", extra="bench")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    items, _ = split_items("train", 2 * B * steps)  # the rl stage's prompts, in order
    rows = [
        {"prompt": [{"role": "user", "content": it.question}], "answer": it.answer}
        for it in items[: B * steps]
    ]
    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(hf)
    # TRL stops where the tokenizer's eos is (it aligns the generation config to it): make
    # that the end of the assistant turn, where the engine stops on our side.
    tok.eos_token = "<|end|>"
    args = GRPOConfig(
        output_dir=str(root / "out"),
        per_device_train_batch_size=B * G,
        num_generations=G,
        max_completion_length=NEW_TOKENS,
        temperature=1.0,
        top_p=1.0,
        beta=BETA,
        num_iterations=1,
        epsilon=0.2,
        loss_type="grpo",
        scale_rewards="group",
        shuffle_dataset=False,
        **fp32_cpu_args(LR, steps),
    )
    reward = builtin("exact_match", "answer", "answer")
    reward.__name__ = "exact_match"  # TRL names the reward's metrics by it
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
    )
    _, seconds = timed(trainer.train)
    trained = trainer.state.global_step
    if trained != steps:
        raise RuntimeError(f"TRL trained {trained} steps, not {steps}")
    lengths = [
        r["completions/mean_length"]
        for r in trainer.state.log_history
        if "completions/mean_length" in r
    ]
    print(f"trl: {trained} steps, mean completion length per step {lengths}")
    out = root / "hf"
    trainer.model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(hf / name, out / name)
    return seconds, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 steps instead of 20")
    parser.add_argument("--run", type=Path, help="a finished recipes/rl-tiny.yaml run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side; the fastest counts")
    args = parser.parse_args()
    steps = 6 if args.quick else 20
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = args.run if args.run is not None else small_sft(root, 150 if args.quick else 300)
        sft_ckpt = export_run(RunDir(source).ckpt / "sft", root / "hf", "llama")
        print(f"SFT model: {sft_ckpt}")
        hf = root / "hf"
        # The machine is shared: the sides alternate and each keeps its fastest run.
        our_times, trl_times = [], []
        for r in range(args.repeats):
            our_s, our_hf, cfg = ours(root / f"ours-{r}", hf, steps)
            trl_s, trl_hf = trl(root / f"trl-{r}", hf, steps, cfg)
            our_times.append(our_s)
            trl_times.append(trl_s)
        print(f"loop seconds, superlab: {our_times}, trl: {trl_times}")
        our_s, trl_s = min(our_times), min(trl_times)
        before = evaluate(hf, cfg)
        after_ours, after_trl = evaluate(our_hf, cfg), evaluate(trl_hf, cfg)
    prompts = B * steps
    print(
        f"{steps} steps x {B} prompts x {G} completions: superlab {our_s:.2f} s "
        f"({prompts / our_s:.2f} prompts/s), trl {trl_s:.2f} s ({prompts / trl_s:.2f} prompts/s)"
    )
    for name, r in (("sft", before), ("superlab rl", after_ours), ("trl rl", after_trl)):
        print(f"held-out {name}: pass@1 {r['pass@1']:.3f}, pass@8 {r['pass@8']:.3f}")
    result("grpo_speedup_vs_trl", (prompts / our_s) / (prompts / trl_s), ">=", 2.0)
    if args.run is not None:
        evaluated = json.loads((args.run / "rl" / "eval.json").read_text())
        print(
            f"grpo_pass1_gain from {args.run}/rl/eval.json (step {evaluated['step']}, "
            f"{evaluated['items']} held-out items)"
        )
        result("grpo_pass1_gain", evaluated["pass@1_gain"], ">=", 0.10)
    else:
        print(f"grpo_pass1_gain from this bench's {steps}-step run (no --run): lower bar 0.02")
        result("grpo_pass1_gain", after_ours["pass@1"] - before["pass@1"], ">=", 0.02)
    print(
        f"INFO trl_pass1_gain {after_trl['pass@1'] - before['pass@1']:.4g} "
        f"(after the same {steps} steps, from the same SFT model)"
    )


if __name__ == "__main__":
    main()
