"""MoE layer forward+backward on CPU: superlab's MoE vs transformers' own MoE blocks.

Two comparisons, each with identical weights copied from the transformers block into
``superlab.model.moe.MoE``, float32, ``torch.set_num_threads(2)``:

- Llama 4 (``Llama4TextMoe``): 16 experts, top-1, one shared expert. transformers runs
  every expert on every token (a dense bmm over E copies of the input, non-chosen
  experts see a zero input). Ours is configured with Llama 4's routing function
  (top-1 on raw logits, sigmoid of the chosen logit scaling the expert *input*:
  ``moe.gate_on: input``, ``moe.norm_topk: false``), so the outputs and input
  gradients agree to float tolerance. Target: ours >= 5x faster.
- Mixtral (``MixtralSparseMoeBlock``, eager experts: a loop over hit experts with
  index_add_): 8 experts, top-2, softmax then renormalised top-2. Same function as our
  token_choice router with softmax scores, no capacity. Target: ours >= 1.5x faster.

Width: hidden (D) 512, expert hidden (F) 1024 on both sides. Tokens: 4096 (batch 4 x
1024 positions); --quick: 1024 (batch 1 x 1024). Loss = sum(y * P) for a fixed random
P; time = median of forward+backward (incl. zero_grad) after 2 warmup steps, the two
blocks timed alternately.

    .venv/bin/python bench/moe_vs_transformers.py           # 4096 tokens
    .venv/bin/python bench/moe_vs_transformers.py --quick   # 1024 tokens
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from superlab.config.recipe import ModelConfig, MoEConfig
from superlab.model.moe import MoE

D, FF = 512, 1024
LLAMA4_TARGET, MIXTRAL_TARGET = 5.0, 1.5


def ours(num_experts: int, top_k: int, shared: int, score_func: str, llama4: bool = False) -> MoE:
    """Our MoE; ``llama4``: its routing function (sigmoid weight on the expert input, no
    renormalisation), so outputs equal transformers' block."""
    cfg = ModelConfig(
        d_model=D,
        n_heads=8,
        moe=MoEConfig(
            num_experts=num_experts,
            top_k=top_k,
            expert_hidden=FF,
            num_shared_experts=shared,
            router="token_choice",
            score_func=score_func,
            capacity_factor=None,
            gate_on="input" if llama4 else "output",
            norm_topk=not llama4,
        ),
    )
    return MoE(cfg)


def build_llama4() -> tuple[nn.Module, MoE]:
    from transformers import Llama4TextConfig
    from transformers.models.llama4.modeling_llama4 import Llama4TextMoe

    hf_cfg = Llama4TextConfig(
        hidden_size=D,
        intermediate_size=FF,
        num_local_experts=16,
        num_experts_per_tok=1,
        hidden_act="silu",
    )
    hf = Llama4TextMoe(hf_cfg)
    with torch.no_grad():
        for p in hf.parameters():
            nn.init.normal_(p, std=D**-0.5)
    m = ours(16, 1, 1, "sigmoid", llama4=True)
    with torch.no_grad():
        m.router.weight.copy_(hf.router.weight)  # (E, D) both
        gate_DF, up_DF = hf.experts.gate_up_proj.chunk(2, dim=-1)  # (E, D, 2F)
        m.w1_EFD.copy_(gate_DF.transpose(1, 2))
        m.w3_EFD.copy_(up_DF.transpose(1, 2))
        m.w2_EDF.copy_(hf.experts.down_proj.transpose(1, 2))  # (E, F, D) -> (E, D, F)
        m.shared.w1.weight.copy_(hf.shared_expert.gate_proj.weight)
        m.shared.w3.weight.copy_(hf.shared_expert.up_proj.weight)
        m.shared.w2.weight.copy_(hf.shared_expert.down_proj.weight)
    return hf, m


def build_mixtral() -> tuple[nn.Module, MoE]:
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    hf_cfg = MixtralConfig(
        hidden_size=D,
        intermediate_size=FF,
        num_local_experts=8,
        num_experts_per_tok=2,
        hidden_act="silu",
        router_jitter_noise=0.0,
        experts_implementation="eager",
    )
    hf = MixtralSparseMoeBlock(hf_cfg)
    with torch.no_grad():
        for p in hf.parameters():
            nn.init.normal_(p, std=D**-0.5)
    m = ours(8, 2, 0, "softmax")
    with torch.no_grad():
        m.router.weight.copy_(hf.gate.weight)  # (E, D) both
        gate_FD, up_FD = hf.experts.gate_up_proj.chunk(2, dim=1)  # (E, 2F, D)
        m.w1_EFD.copy_(gate_FD)
        m.w3_EFD.copy_(up_FD)
        m.w2_EDF.copy_(hf.experts.down_proj)  # (E, D, F) both
    return hf, m


def out(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = mod(x)
    return (y[0] if isinstance(y, tuple) else y).view(x.shape)


def time_fwd_bwd(
    mods: tuple[nn.Module, nn.Module], x: torch.Tensor, proj: torch.Tensor, reps: int
) -> tuple[float, float]:
    """Median ms of zero_grad + forward + (y * proj).sum().backward() for each module.

    The two are timed alternately, rep by rep, so load from other processes on the
    machine falls on both alike.
    """

    def step(mod: nn.Module) -> float:
        t0 = time.perf_counter()
        mod.zero_grad(set_to_none=True)
        xi = x.detach().requires_grad_(True)
        (out(mod, xi) * proj).sum().backward()
        return (time.perf_counter() - t0) * 1e3

    for _ in range(2):
        for mod in mods:
            step(mod)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        for mod, ts in zip(mods, times, strict=True):
            ts.append(step(mod))
    return statistics.median(times[0]), statistics.median(times[1])


def max_grad_diff(hf: nn.Module, m: MoE, x: torch.Tensor, proj: torch.Tensor) -> float:
    """Max abs difference of d loss / d x between the two blocks."""
    grads = []
    for mod in (hf, m):
        xi = x.detach().requires_grad_(True)
        (out(mod, xi) * proj).sum().backward()
        grads.append(xi.grad)
    return (grads[0] - grads[1]).abs().max().item()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1024 tokens instead of 4096")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions (median)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    B, L = (1, 1024) if args.quick else (4, 1024)
    reps = args.reps or (5 if args.quick else 7)
    T = B * L
    import transformers

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, threads "
        f"{torch.get_num_threads()}, float32, tokens {T} (B={B}, L={L}), D={D}, F={FF}, "
        f"median of {reps} fwd+bwd"
    )
    x = torch.randn(B, L, D)
    proj = torch.randn(B, L, D)

    rows, results = [], []
    for name, build, target in (
        ("llama4", build_llama4, LLAMA4_TARGET),
        ("mixtral", build_mixtral, MIXTRAL_TARGET),
    ):
        hf, m = build()
        hf.train(), m.train()
        with torch.no_grad():
            y_hf, y_m = out(hf, x), out(m, x)
            diff = (y_hf - y_m).abs().max().item()
            ref = y_hf.abs().max().item()
            print(f"{name}: max |y_hf - y_ours| = {diff:.3e} (max |y_hf| = {ref:.3e})")
        gdiff = max_grad_diff(hf, m, x, proj)
        print(f"{name}: max |dL/dx_hf - dL/dx_ours| = {gdiff:.3e}")
        if diff > 1e-4:
            print(f"{name}: WARNING outputs differ beyond 1e-4")
        t_hf, t_m = time_fwd_bwd((hf, m), x, proj, reps)
        speedup = t_hf / t_m
        rows.append((name, t_hf, t_m, speedup, diff))
        results.append((f"moe_speedup_vs_{name}", speedup, target))

    print()
    print("| block | transformers ms | ours ms | speedup | max abs out diff |")
    print("|---|---|---|---|---|")
    for name, t_hf, t_m, sp, diff in rows:
        print(f"| {name} | {t_hf:.1f} | {t_m:.1f} | {sp:.2f}x | {diff:.2e} |")
    print()
    ok = True
    for rname, value, target in results:
        passed = value >= target
        ok &= passed
        print(f"RESULT {rname} {value:.2f} target >= {target} {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
