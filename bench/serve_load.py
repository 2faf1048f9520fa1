"""Load test of the HTTP server on 127.0.0.1: 8, 32 and 128 concurrent streaming clients.

The server runs in this process (uvicorn on a thread, a free loopback port) with a small
random-init model; each client sends streaming chat completions back to back until it
has sent ``--requests`` in all or ``--seconds`` have passed (both bounded). Per level:
p50/p99 time to first token (first content chunk), p50/p99 time per output token
(between first and last chunk), 200 / 429 / other 4xx / 5xx counts. Target: zero 5xx.

    .venv/bin/python bench/serve_load.py --quick   # 40 requests per level, <= 40 s each
    .venv/bin/python bench/serve_load.py           # 200 requests per level, <= 120 s each
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx
import torch

from superlab.config.recipe import ModelConfig, ServeConfig
from superlab.model import Transformer
from superlab.serve.app import create_app
from superlab.serve.auth import ApiKey
from superlab.serve.load import BackgroundServer
from superlab.serve.safety import Policy
from superlab.serve.safety.rules import RuleCheck

KEY = "sk-bench"


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {"<|endoftext|>": 0, **{chr(c): c - 31 for c in range(32, 127)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    return tok


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def client(url: str, deadline: float, budget: list[int], out: dict) -> None:
    async with httpx.AsyncClient(timeout=120) as c:
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            body = {
                "model": "bench",
                "messages": [{"role": "user", "content": "Tell me a story"}],
                "max_tokens": 32,
                "temperature": 0.8,
                "stream": True,
            }
            start = time.perf_counter()
            stamps: list[float] = []
            try:
                async with c.stream(
                    "POST", url, json=body, headers={"Authorization": f"Bearer {KEY}"}
                ) as r:
                    if r.status_code != 200:
                        await r.aread()
                        out["status"][r.status_code] = out["status"].get(r.status_code, 0) + 1
                        if r.status_code == 429:
                            await asyncio.sleep(0.05)
                        continue
                    async for line in r.aiter_lines():
                        if line.startswith("data: {"):
                            chunk = json.loads(line[6:])
                            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                                stamps.append(time.perf_counter())
            except httpx.HTTPError:
                out["errors"] += 1
                continue
            out["status"][200] = out["status"].get(200, 0) + 1
            if stamps:
                out["ttft"].append(stamps[0] - start)
                if len(stamps) > 1:
                    out["tpot"].append((stamps[-1] - stamps[0]) / (len(stamps) - 1))


async def level(url: str, clients: int, requests: int, seconds: float) -> dict:
    out: dict = {"status": {}, "errors": 0, "ttft": [], "tpot": []}
    budget = [requests]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(client(url, deadline, budget, out) for _ in range(clients)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests, shorter levels")
    args = ap.parse_args()
    torch.set_num_threads(2)
    requests, seconds = (40, 40.0) if args.quick else (200, 120.0)
    tok = _tokenizer()
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=128, n_layers=4, n_heads=4, vocab_size=tok.get_vocab_size(), max_seq_len=256
    )
    model = Transformer(cfg).eval()
    serve_cfg = ServeConfig(max_batch=32, queue_size=64)
    app = create_app(
        model,
        tok,
        name="bench",
        max_seq_len=256,
        keys=[ApiKey(KEY)],
        cfg=serve_cfg,
        policy=Policy(checks=[RuleCheck.default()]),
    )
    ok = True
    with BackgroundServer(app) as s:
        url = s.url + "/v1/chat/completions"
        print(
            "| clients | done | 429 | other 4xx | 5xx | conn errors | TTFT p50 / p99 s "
            "| TPOT p50 / p99 s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for n in (8, 32, 128):
            r = asyncio.run(level(url, n, requests, seconds))
            st = r["status"]
            five = sum(v for k, v in st.items() if k >= 500)
            four = sum(v for k, v in st.items() if 400 <= k < 500 and k != 429)
            ok &= five == 0
            print(
                f"| {n} | {st.get(200, 0)} | {st.get(429, 0)} | {four} | {five} | {r['errors']} "
                f"| {pct(r['ttft'], 0.5):.3f} / {pct(r['ttft'], 0.99):.3f} "
                f"| {pct(r['tpot'], 0.5):.4f} / {pct(r['tpot'], 0.99):.4f} |",
                flush=True,
            )
            five_total = five
            print(
                f"RESULT serve_load_5xx_{n}_clients {five_total} target == 0 "
                f"{'PASS' if five_total == 0 else 'FAIL'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
