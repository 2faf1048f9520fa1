"""The engine thread: a dead engine loop fails every open request at once and says why."""

import asyncio
import time

import pytest

from superlab.serve.engine import Engine, GenRequest
from superlab.serve.metrics import Metrics
from superlab.serve.sampling import SamplingParams
from superlab.serve.scheduler import Scheduler, Unavailable

from .conftest import tiny_model


def test_engine_death_fails_open_requests_at_once_and_refuses_new_ones(tokenizer, monkeypatch):
    engine = Engine(tiny_model(tokenizer.get_vocab_size()), tokenizer, 64)
    died: list[str] = []
    sched = Scheduler(engine, queue_size=8, metrics=Metrics("t"), on_death=died.append)

    def broken_step():
        raise RuntimeError("CUDA error: an illegal memory access")

    monkeypatch.setattr(engine, "step", broken_step)

    async def one(i: int) -> str:
        req = GenRequest(str(i), [5, 6], SamplingParams(max_tokens=50))
        try:
            async for _ in sched.stream(req):
                pass
        except Unavailable as e:
            return e.code
        return "finished"

    async def main() -> list[str]:
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(3))), 5)

    start = time.monotonic()
    assert asyncio.run(main()) == ["engine_dead"] * 3
    assert time.monotonic() - start < 2  # at once, not after a request timeout
    assert sched.dead is not None and "illegal memory access" in sched.dead
    assert died == [sched.dead]

    async def late() -> None:
        async for _ in sched.stream(GenRequest("x", [5], SamplingParams())):
            pass

    with pytest.raises(Unavailable, match="illegal memory access"):
        asyncio.run(late())
    sched.close()


def test_fail_all_ends_every_open_request(tokenizer):
    engine = Engine(tiny_model(tokenizer.get_vocab_size(), "sliding"), tokenizer, 64)
    sched = Scheduler(engine, queue_size=8, metrics=Metrics("t"))

    async def main() -> list[object]:
        async def one(i: int) -> object:
            n = 0
            try:
                async for _ in sched.stream(
                    GenRequest(str(i), [5], SamplingParams(max_tokens=10**6))
                ):
                    n += 1
                    if n == 3 and i == 0:
                        sched.fail_all("shutting down", "server_shutdown")
            except Unavailable as e:
                return e.code
            return "finished"

        return await asyncio.wait_for(asyncio.gather(one(0), one(1)), 10)

    assert asyncio.run(main()) == ["server_shutdown", "server_shutdown"]
    time.sleep(0.3)
    assert engine.idle and sched.in_flight == 0  # both aborted in the engine too
    sched.close()
