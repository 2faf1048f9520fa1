"""Training throughput on CPU: the tiny recipe's model, ours vs transformers' classes.

The same loop trains each model: AdamW (lr 3e-3, betas 0.9/0.95, weight decay 0.01 on
every parameter, the same for both sides), gradient clipping at 1.0, float32, the same
random token batches (the tiny recipe's batch: 16 x 256 tokens, vocab 4096), 2 torch
threads (``--threads``). The loss is the cross-entropy over every position, computed
from the logits the same way for both sides; MoE auxiliary losses are off on both sides
(Llama 4's causal-LM class has none, and Mixtral's is defined over all layers at once,
ours per layer), so both sides train exactly the same objective. Time = median wall
time of a full optimizer step (zero_grad, forward, backward, clip, step) after warmup
steps, the two models of a pair stepped alternately so load from other processes falls
on both alike; tokens/s = 4,096 / median.

Both sides hold the same weights: ours is built from ``recipes/tiny.yaml``'s model
(d 128, 4 layers, 4 heads, 2 KV heads, SwiGLU 352, 4 experts top-2, tied embeddings)
and exported with ``superlab.model.hf.export_hf``, which transformers loads. Each pair
sets what the other class can express:

- ``llama4``: ``Llama4ForCausalLM``. MoE every 2nd layer as in the recipe, RoPE and full
  attention in every layer, no QK-norm; Llama 4's MoE always has one shared expert and
  gates each expert's input by sigmoid(logit) unnormalised, so ours gets
  ``num_shared_experts: 1, score_func: sigmoid, norm_topk: false, gate_on: input``.
  transformers runs every expert on every token (a dense bmm over E copies).
- ``mixtral``: ``MixtralForCausalLM`` has MoE in every layer, so both get ``moe.every: 1``;
  transformers' default experts implementation (``grouped_mm`` in 5.x) as a user gets it.

The losses must agree step by step (same weights, same function, same updates); the
script prints the largest difference as a check that both sides train the same model. It
also prints how many more FLOPs per token transformers' class does (Llama 4 runs all E
experts instead of top-k: at E=4, k=2 that bounds the speedup a faster implementation of
the same kernels can reach).

    .venv/bin/python bench/train_vs_transformers.py           # 3 warmup + 12 timed steps
    .venv/bin/python bench/train_vs_transformers.py --quick   # 2 warmup + 5 timed steps

Targets: ours >= 2x tokens/s against Llama 4's class, >= 1.3x against Mixtral's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from superlab.config import load_recipe
from superlab.config.recipe import ModelConfig
from superlab.model.counts import flops_per_token
from superlab.model.hf import export_hf
from superlab.model.transformer import Transformer

ROOT = Path(__file__).resolve().parent.parent
LLAMA4_TARGET, MIXTRAL_TARGET = 2.0, 1.3
ARCHES = {"llama4": "Llama4ForCausalLM", "mixtral": "MixtralForCausalLM"}
VOCAB = 4096  # the tiny recipe's tokenizer.vocab_size (its model.vocab_size is None)


def tiny_config(**moe: object) -> tuple[ModelConfig, int, int]:
    """The tiny recipe's model config with ``moe`` overrides, its batch size and seq_len."""
    recipe = load_recipe(ROOT / "recipes" / "tiny.yaml")
    cfg = recipe.model.model_copy(update={"vocab_size": VOCAB})
    assert cfg.moe is not None
    cfg = cfg.model_copy(update={"moe": cfg.moe.model_copy(update=moe)})
    return (
        ModelConfig.model_validate(cfg.model_dump()),
        recipe.train.batch_size,
        recipe.train.seq_len,
    )


def build_hf(ours: Transformer, arch: str) -> nn.Module:
    """transformers' class for ``arch`` holding ``ours``'s weights (export, then load)."""
    import transformers

    cls = getattr(transformers, ARCHES[arch])
    with tempfile.TemporaryDirectory() as tmp:
        export_hf(ours, tmp, arch)  # type: ignore[arg-type]
        model = cls.from_pretrained(tmp, attn_implementation="sdpa", dtype=torch.float32)
    return model


def ours_loss(model: nn.Module, x_BT: torch.Tensor, y_BT: torch.Tensor) -> torch.Tensor:
    out = model(x_BT, y_BT)
    return out.loss + out.aux_loss  # aux_loss is 0: both coefficients are set to 0


def hf_loss(model: nn.Module, x_BT: torch.Tensor, y_BT: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on every position, as ours computes it."""
    logits_BTV = model(input_ids=x_BT).logits
    return nn.functional.cross_entropy(logits_BTV.float().flatten(0, 1), y_BT.flatten())


def flops_ratio(cfg: ModelConfig, arch: str, seq_len: int) -> float:
    """transformers' training FLOPs per token over ours: Llama 4 runs every expert."""
    ours = flops_per_token(cfg, seq_len)["total"]
    if arch != "llama4":
        return 1.0
    assert cfg.moe is not None
    idle = cfg.moe.num_experts - cfg.moe.top_k  # experts transformers runs on zeros
    moe_layers = sum(cfg.is_moe_layer(i) for i in range(cfg.n_layers))
    expert = 3 * cfg.d_model * (cfg.moe.expert_hidden or cfg.hidden)  # SwiGLU matmul weights
    return (ours + 6.0 * moe_layers * idle * expert) / ours


class Runner:
    """One model, its AdamW and its loss; ``step`` times one optimizer step."""

    def __init__(self, name: str, model: nn.Module, loss_fn: Callable[..., torch.Tensor]) -> None:
        self.name, self.model, self.loss_fn = name, model.train(), loss_fn
        self.opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95))  # wd 0.01
        self.times: list[float] = []
        self.losses: list[float] = []

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def step(self, x_BT: torch.Tensor, y_BT: torch.Tensor, timed: bool) -> None:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model, x_BT, y_BT)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        dt = time.perf_counter() - t0
        self.losses.append(loss.item())
        if timed:
            self.times.append(dt)


def run_pair(runners: tuple[Runner, Runner], batches: list, warmup: int) -> None:
    for i, (x_BT, y_BT) in enumerate(batches):
        for r in runners:
            r.step(x_BT, y_BT, timed=i >= warmup)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 warmup + 5 timed steps per model")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per model")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warmup = 2 if args.quick else 3
    timed = args.steps or (5 if args.quick else 12)
    import transformers

    transformers.utils.logging.disable_progress_bar()
    cfg_l4, B, T = tiny_config(
        num_shared_experts=1,
        score_func="sigmoid",
        norm_topk=False,
        gate_on="input",
        aux_loss_coef=0.0,
        z_loss_coef=0.0,
    )
    cfg_mx, _, _ = tiny_config(every=1, aux_loss_coef=0.0, z_loss_coef=0.0)
    gen = torch.Generator().manual_seed(0)
    data_BT1 = [torch.randint(0, VOCAB, (B, T + 1), generator=gen) for _ in range(warmup + timed)]
    batches = [(b[:, :-1].contiguous(), b[:, 1:].contiguous()) for b in data_BT1]
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, threads "
        f"{torch.get_num_threads()}, float32, batch {B} x {T} = {B * T} tokens/step, "
        f"{warmup} warmup + {timed} timed steps, median step time"
    )
    pairs = []
    for name, cfg, target in (
        ("llama4", cfg_l4, LLAMA4_TARGET),
        ("mixtral", cfg_mx, MIXTRAL_TARGET),
    ):
        torch.manual_seed(0)
        ours = Transformer(cfg)
        hf = Runner(ARCHES[name], build_hf(ours, name), hf_loss)
        pairs.append((name, Runner("ours", ours, ours_loss), hf, target))
    impl = getattr(pairs[1][2].model.config, "_experts_implementation", "?")
    print(f"mixtral: transformers experts implementation {impl!r}")

    rows, results, ok = [], [], True
    for name, ours, hf, target in pairs:
        assert ours.params() == hf.params(), (name, ours.params(), hf.params())
        t0 = time.perf_counter()
        run_pair((ours, hf), batches, warmup)
        tps_ours = B * T / statistics.median(ours.times)
        tps_hf = B * T / statistics.median(hf.times)
        speedup = tps_ours / tps_hf
        rows.append((name, ours, hf, tps_ours, tps_hf, speedup))
        results.append((f"train_speedup_vs_{name}", speedup, target))
        diff = max(abs(a - b) for a, b in zip(ours.losses, hf.losses, strict=True))
        print(
            f"{name}: {time.perf_counter() - t0:.0f} s, {ours.params():,} parameters each; "
            f"first loss ours {ours.losses[0]:.6f} vs transformers {hf.losses[0]:.6f}, "
            f"max |loss diff| over {len(ours.losses)} steps {diff:.1e}; transformers does "
            f"{flops_ratio(ours.model.cfg, name, T):.2f}x our FLOPs per token"
        )

    print()
    print("| pair | params | transformers tok/s | ours tok/s | speedup | last loss hf / ours |")
    print("|---|---|---|---|---|---|")
    for name, ours, hf, tps_ours, tps_hf, sp in rows:
        print(
            f"| {name} | {ours.params():,} | {tps_hf:,.0f} | {tps_ours:,.0f} | {sp:.2f}x | "
            f"{hf.losses[-1]:.3f} / {ours.losses[-1]:.3f} |"
        )
    print()
    for rname, value, target in results:
        passed = value >= target
        ok &= passed
        print(f"RESULT {rname} {value:.2f} target >= {target} {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
