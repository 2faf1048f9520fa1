"""Load test of the HTTP server on 127.0.0.1: N concurrent streaming clients per level.

The server is a real ``superlab serve RUN`` subprocess on a free loopback port, serving a
small random-init model saved as a run; the run's recipe sets its serve section (queue,
batch) and a policy file with the rule layer and the floor (no classifier). Clients run
in this process; ``/health`` is timed from a thread of its own. Every client
keeps one streaming chat request in flight for the level's whole duration (sending the
next as soon as the last ends), so a level of N clients has N requests open; a quarter of
the clients use a key with a small token quota (a fresh key per level), the rest an
unlimited key, and a poller reads ``/health`` every 50 ms. The low key's use is read from
the server's ``superlab:key_tokens_used`` gauge. Each request loop is bounded in count and in time.

Counted per level: streams that ended with ``[DONE]`` and no error (ok), streams that
ended with an error event (a 200 that failed: counted as errors, not as ok), 429s (quota
or queue), other 4xx, 5xx, connection errors; requests in flight (sampled every 50 ms);
p50/p99 time to first content chunk and time per output token; ``/health`` p99 and
failures; the low-quota key's use against its quota (it may never pass it: the worst
case is reserved at admission). Targets: 0 5xx, 0 connection errors, 0 error events,
quota held, ``/health`` answering throughout.

    .venv/bin/python bench/serve_load.py --quick   # 8, 32, 64, 128 clients, 8 s each
    .venv/bin/python bench/serve_load.py           # the same levels, 30 s each
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch

from superlab.config.recipe import ModelConfig
from superlab.model import Transformer, save_model

UNLIMITED = "sk-bench"
LOW_QUOTA_TOKENS = 1500  # about 20 requests' worth: used up within a quick level
MAX_TOKENS = 32
PER_CLIENT_MAX = 10_000  # requests; a bound beside the level's duration


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


@dataclass
class Level:
    """What one level measured."""

    clients: int
    ok: int = 0
    error_events: int = 0
    status: dict[int, int] = field(default_factory=dict)
    conn_errors: int = 0
    ttft: list[float] = field(default_factory=list)
    tpot: list[float] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    in_flight_unlimited: list[int] = field(default_factory=list)
    health: list[float] = field(default_factory=list)
    health_failures: int = 0
    open: int = 0
    open_unlimited: int = 0
    low_clients: int = 0
    low_used: int = 0
    low_quota: int = 0

    def count(self, code: int) -> None:
        self.status[code] = self.status.get(code, 0) + 1

    @property
    def five(self) -> int:
        return sum(v for k, v in self.status.items() if k >= 500)

    @property
    def four(self) -> int:
        return sum(v for k, v in self.status.items() if 400 <= k < 500 and k != 429)


async def one_request(c: httpx.AsyncClient, url: str, key: str, out: Level) -> int | None:
    """One streamed chat request; returns its HTTP status (None on a connection error)."""
    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0.8,
        "stream": True,
    }
    start = time.perf_counter()
    stamps: list[float] = []
    out.open += 1
    out.open_unlimited += key == UNLIMITED
    try:
        async with c.stream(
            "POST", url, json=body, headers={"Authorization": f"Bearer {key}"}
        ) as r:
            if r.status_code != 200:
                await r.aread()
                out.count(r.status_code)
                return r.status_code
            errored = done = False
            async for line in r.aiter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        errored = True
                    elif chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                        stamps.append(time.perf_counter())
    except httpx.HTTPError:
        out.conn_errors += 1
        return None
    finally:
        out.open -= 1
        out.open_unlimited -= key == UNLIMITED
    if errored or not done:
        out.error_events += 1
        return 200
    out.ok += 1
    if stamps:
        out.ttft.append(stamps[0] - start)
        if len(stamps) > 1:
            out.tpot.append((stamps[-1] - stamps[0]) / (len(stamps) - 1))
    return 200


async def client(c: httpx.AsyncClient, url: str, key: str, deadline: float, out: Level) -> None:
    """One client: a request in flight at every moment until the deadline."""
    for _ in range(PER_CLIENT_MAX):
        if time.monotonic() >= deadline:
            return
        status = await one_request(c, url, key, out)
        if status == 429:
            await asyncio.sleep(0.05)  # over quota or a full queue: back off a little


def watch(base: str, deadline: float, stop: threading.Event, out: Level) -> None:
    """Sample requests in flight until the deadline and time /health every 50 ms until
    ``stop`` (a thread of its own, so the clients' event loop does not delay it)."""
    with httpx.Client(timeout=5) as c:
        while not stop.is_set():
            if time.monotonic() < deadline:
                out.in_flight.append(out.open)
                out.in_flight_unlimited.append(out.open_unlimited)
            t = time.perf_counter()
            try:
                if c.get(base + "/health").status_code != 200:
                    out.health_failures += 1
            except httpx.HTTPError:
                out.health_failures += 1
            out.health.append(time.perf_counter() - t)
            stop.wait(0.05)


def key_used(base: str, name: str) -> int:
    """A key's used tokens, from the server's /metrics."""
    text = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {UNLIMITED}"}).text
    m = re.search(rf'superlab:key_tokens_used{{[^}}]*key="{name}"[^}}]*}} (\S+)', text)
    return int(float(m.group(1))) if m else 0


async def run_level(
    base: str, clients: int, seconds: float, low_key: str, low_name: str, low_quota: int
) -> Level:
    out = Level(clients)
    url = base + "/v1/chat/completions"
    # One connection pool with a connection per client: no client waits for another's.
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    c = httpx.AsyncClient(timeout=120, limits=limits)
    deadline = time.monotonic() + seconds
    n_low = out.low_clients = max(1, clients // 4)
    keys = [low_key] * n_low + [UNLIMITED] * (clients - n_low)
    stop = threading.Event()
    poller = threading.Thread(target=watch, args=(base, deadline, stop, out))
    poller.start()
    try:
        await asyncio.gather(*(client(c, url, k, deadline, out) for k in keys))
    finally:
        stop.set()
        poller.join()
        await c.aclose()
    out.low_used, out.low_quota = key_used(base, low_name), low_quota
    return out


def write_run(root: Path, levels: list[int]) -> Path:
    """A run directory as training leaves it, with a random-init model and a recipe."""
    tok = _tokenizer()
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=128, n_layers=4, n_heads=4, vocab_size=tok.get_vocab_size(), max_seq_len=256
    )
    run = root / "bench"
    step = run / "ckpt" / "step-1"
    save_model(Transformer(cfg).eval(), step)
    (step / "state.json").write_text('{"step": 1}')
    (run / "tokenizer").mkdir()
    tok.save(str(run / "tokenizer" / "tokenizer.json"))
    (run / "policy.yaml").write_text("classifier: false\n")
    # The queue holds every client, so a level of N keeps N requests open (none get 429
    # queue_full); max_batch 32 decodes 32 at once and the rest wait their turn.
    (run / "recipe.yaml").write_text(
        f"name: bench\nserve:\n  max_batch: 32\n  queue_size: {max(levels) + 8}\n"
        f"  policy: {run / 'policy.yaml'}\n"
    )
    return run


def start_server(run: Path, levels: list[int], low_quota: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    keys = [UNLIMITED, *(f"sk-low-{n} tokens={low_quota}" for n in levels)]
    env = {**os.environ, "SUPERLAB_API_KEYS": ",".join(keys)}
    cmd = [sys.executable, "-m", "superlab", "serve", str(run), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start (exit status {proc.poll()})")
        time.sleep(0.2)


def measure(levels: list[int], seconds: float, low_quota: int = LOW_QUOTA_TOKENS) -> list[Level]:
    """Start a server, run each level for ``seconds``, stop it (SIGTERM, drained)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(write_run(Path(tmp), levels), levels, low_quota)
        try:
            # Key names follow SUPERLAB_API_KEYS order: key1 is the unlimited one.
            return [
                asyncio.run(run_level(base, n, seconds, f"sk-low-{n}", f"key{i + 2}", low_quota))
                for i, n in enumerate(levels)
            ]
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def report(r: Level) -> bool:
    print(
        f"| {r.clients} | {pct(r.in_flight, 0.5):.0f} | {pct(r.in_flight_unlimited, 0.5):.0f} "
        f"of {r.clients - r.low_clients} | {r.ok} | {r.error_events} "
        f"| {r.status.get(429, 0)} | {r.four} | {r.five} | {r.conn_errors} "
        f"| {pct(r.ttft, 0.5):.3f} / {pct(r.ttft, 0.99):.3f} "
        f"| {pct(r.tpot, 0.5):.4f} / {pct(r.tpot, 0.99):.4f} "
        f"| {1000 * pct(r.health, 0.99):.1f} / {r.health_failures} "
        f"| {r.low_used} / {r.low_quota} |",
        flush=True,
    )
    checks = {
        f"serve_load_5xx_{r.clients}_clients": (r.five, "== 0", r.five == 0),
        f"serve_load_conn_errors_{r.clients}_clients": (r.conn_errors, "== 0", r.conn_errors == 0),
        f"serve_load_error_events_{r.clients}_clients": (
            r.error_events,
            "== 0",
            r.error_events == 0,
        ),
        f"serve_load_low_quota_used_{r.clients}_clients": (
            r.low_used,
            f"<= {r.low_quota}",
            r.low_used <= r.low_quota,
        ),
        f"serve_load_health_failures_{r.clients}_clients": (
            r.health_failures,
            "== 0",
            r.health_failures == 0 and len(r.health) > 0,
        ),
    }
    for name, (value, target, ok) in checks.items():
        print(f"RESULT {name} {value} target {target} {'PASS' if ok else 'FAIL'}")
    return all(ok for _, _, ok in checks.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 s per level instead of 30 s")
    ap.add_argument("--levels", default="8,32,64,128", help="client counts, comma-separated")
    args = ap.parse_args()
    seconds = 8.0 if args.quick else 30.0
    levels = [int(x) for x in args.levels.split(",")]
    print(
        "| clients | in flight p50 | unlimited-key in flight p50 | ok | error events | 429 "
        "| other 4xx | 5xx | conn errors "
        "| TTFT p50 / p99 s | TPOT p50 / p99 s | /health p99 ms / failures "
        "| low-quota key used / quota |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for r in measure(levels, seconds):
        ok &= report(r)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
