"""Generation throughput on CPU: superlab's continuous batching vs transformers' generate.

One random-init Llama-shaped model (superlab ``Transformer``, exported with
``superlab.model.hf.export_hf`` and loaded by transformers' ``LlamaForCausalLM``: the
same weights on both sides), 8 requests of mixed prompt lengths and mixed max_tokens,
greedy, EOS ignored (every request runs to its max_tokens). float32,
``torch.set_num_threads(2)``.

- ours: ``Engine`` with all 8 requests submitted at once; finished rows leave the batch.
- transformers: ``generate`` on the 8 prompts as one left-padded batch with
  ``max_new_tokens`` = the largest request (one static batch runs until the longest is
  done; each request's useful tokens are its own max_tokens), and one request at a time.

Metric: useful output tokens / wall seconds. Target: ours >= 2x transformers batched.

    .venv/bin/python bench/serve_throughput.py           # d=512, 8 layers, up to 256 tokens
    .venv/bin/python bench/serve_throughput.py --quick   # d=256, 4 layers, up to 64 tokens
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

from superlab.config.recipe import ModelConfig
from superlab.model import Transformer
from superlab.model.hf import export_hf
from superlab.serve.engine import Engine, GenRequest
from superlab.serve.sampling import SamplingParams

TARGET = 2.0
VOCAB = 4096


class _NoEosTokenizer:
    """The engine needs ``token_to_id`` and ``decode``; ids only here, no EOS."""

    def token_to_id(self, _: str) -> None:
        return None

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


def workload(quick: bool) -> list[tuple[list[int], int]]:
    g = torch.Generator().manual_seed(0)
    prompt_lens = [8, 24, 48, 96, 16, 64, 32, 120]
    scale = 64 if quick else 256
    max_tokens = [scale, scale // 2, scale // 4, scale, scale // 8, scale // 2, scale, scale // 4]
    return [
        (torch.randint(2, VOCAB, (n,), generator=g).tolist(), m)
        for n, m in zip(prompt_lens, max_tokens, strict=True)
    ]


def run_ours(model: Transformer, reqs: list[tuple[list[int], int]]) -> tuple[float, int]:
    engine = Engine(model, _NoEosTokenizer(), model.cfg.max_seq_len, max_batch=8)  # type: ignore[arg-type]
    start = time.perf_counter()
    for i, (ids, m) in enumerate(reqs):
        engine.submit(GenRequest(str(i), ids, SamplingParams(max_tokens=m)))
    n = 0
    while not engine.idle:
        n += sum(len(d.token_ids) for d in engine.step())
    return time.perf_counter() - start, n


def run_hf_batched(hf, reqs: list[tuple[list[int], int]]) -> tuple[float, int]:
    T = max(len(ids) for ids, _ in reqs)
    idx = torch.zeros((len(reqs), T), dtype=torch.long)
    mask = torch.zeros((len(reqs), T), dtype=torch.long)
    for b, (ids, _) in enumerate(reqs):
        idx[b, T - len(ids) :] = torch.tensor(ids)
        mask[b, T - len(ids) :] = 1
    longest = max(m for _, m in reqs)
    start = time.perf_counter()
    with torch.no_grad():
        hf.generate(
            input_ids=idx,
            attention_mask=mask,
            max_new_tokens=longest,
            min_new_tokens=longest,
            do_sample=False,
            pad_token_id=0,
        )
    return time.perf_counter() - start, sum(m for _, m in reqs)


def run_hf_sequential(hf, reqs: list[tuple[list[int], int]]) -> tuple[float, int]:
    start = time.perf_counter()
    with torch.no_grad():
        for ids, m in reqs:
            hf.generate(
                input_ids=torch.tensor([ids]),
                max_new_tokens=m,
                min_new_tokens=m,
                do_sample=False,
                pad_token_id=0,
            )
    return time.perf_counter() - start, sum(m for _, m in reqs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller model and fewer tokens")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from transformers import LlamaForCausalLM

    d, layers = (256, 4) if args.quick else (512, 8)
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=d,
        n_layers=layers,
        n_heads=8,
        n_kv_heads=4,
        vocab_size=VOCAB,
        max_seq_len=512,
        tie_embeddings=False,
    )
    model = Transformer(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        export_hf(model, tmp, "llama")
        hf = LlamaForCausalLM.from_pretrained(tmp, torch_dtype=torch.float32).eval()
    reqs = workload(args.quick)
    run_ours(model, reqs[:2])  # warm-up
    rows = []
    for name, fn, m in [
        ("superlab continuous batching", run_ours, model),
        ("transformers generate, batched", run_hf_batched, hf),
        ("transformers generate, one at a time", run_hf_sequential, hf),
    ]:
        secs, tokens = fn(m, reqs)
        rows.append((name, secs, tokens, tokens / secs))
        print(f"{name}: {tokens} tokens in {secs:.2f} s = {tokens / secs:.1f} tok/s", flush=True)
    speedup = rows[0][3] / rows[1][3]
    print(f"vs one at a time: {rows[0][3] / rows[2][3]:.2f}x")
    ok = speedup >= TARGET
    print(
        f"RESULT serve_throughput_vs_hf_generate {speedup:.2f} target >= {TARGET} "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
