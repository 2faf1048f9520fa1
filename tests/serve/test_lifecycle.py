"""The server's life on 127.0.0.1: a dead engine answers 503 at once and the server exits 70;
SIGTERM drains within its deadline (a real ``superlab serve`` subprocess) and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server needs the serve extra")

from superlab.config.recipe import ServeConfig
from superlab.model import save_model
from superlab.serve.lifecycle import ENGINE_DEAD_EXIT
from superlab.serve.load import BackgroundServer, load_served, run_server

from .conftest import serve_app, tiny_model

KEY = "sk-test-1"
H = {"Authorization": f"Bearer {KEY}"}


def _break(engine) -> None:
    def step():
        raise RuntimeError("CUDA error: device-side assert triggered")

    engine.step = step


def test_a_dead_engine_answers_503_at_once_and_health_says_why(model_dir):
    app = serve_app(load_served(model_dir), ServeConfig(request_timeout_s=60))
    with BackgroundServer(app) as s:
        _break(app.state.life.scheduler.engine)
        t = time.monotonic()
        r = httpx.post(s.url + "/v1/completions", headers=H, json={"prompt": "hi"}, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_dead"
        assert time.monotonic() - t < 5  # not the 60 s request timeout
        h = httpx.get(s.url + "/health")
        assert h.status_code == 503 and h.json()["status"] == "dead"
        assert "device-side assert" in h.json()["reason"]
        r = httpx.post(s.url + "/v1/completions", headers=H, json={"prompt": "hi"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_dead"


def test_the_server_exits_non_zero_when_its_engine_dies(model_dir):
    app = serve_app(load_served(model_dir))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run_server(app, "127.0.0.1", port, 5, "warning")),
        daemon=True,
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while app.state.life.scheduler is None or not _up(url):
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    _break(app.state.life.scheduler.engine)
    httpx.post(url + "/v1/completions", headers=H, json={"prompt": "hi"}, timeout=30)
    thread.join(timeout=15)
    assert result == [ENGINE_DEAD_EXIT]


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def sliding_run(tmp_path: Path, tokenizer) -> Path:
    """A run directory with a sliding-attention model (it decodes past its context, so a
    stream can be long) and a recipe whose serve section the CLI must honour."""
    root = tmp_path / "drain-run"
    step = root / "ckpt" / "step-1"
    save_model(tiny_model(tokenizer.get_vocab_size(), "sliding"), step)
    (step / "state.json").write_text('{"step": 1}')
    (root / "tokenizer").mkdir()
    tokenizer.save(str(root / "tokenizer" / "tokenizer.json"))
    (root / "policy.yaml").write_text("classifier: false\n")  # rules and floor: fast to start
    (root / "recipe.yaml").write_text(
        "name: drain-run\nserve:\n  drain_timeout_s: 3\n  max_tokens_limit: 100000\n"
        f"  policy: {root / 'policy.yaml'}\n"
    )
    return root


def _sse(lines) -> list[dict | str]:
    out = []
    for ln in lines:
        if ln.startswith("data: "):
            out.append(ln[6:] if ln == "data: [DONE]" else json.loads(ln[6:]))
    return out


@contextmanager
def superlab_serve(path: Path, *flags: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``python -m superlab serve PATH FLAGS`` on a free 127.0.0.1 port, once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SUPERLAB_API_KEYS": KEY}
    cmd = [sys.executable, "-m", "superlab", "serve", str(path), "--port", str(port), *flags]
    # Its log goes to a file: a pipe nobody reads fills up and stalls the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while not _up(url):
                if proc.poll() is not None:
                    log.seek(0)
                    raise AssertionError(log.read().decode()[-2000:])
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            yield proc, url
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_health_p99_stays_under_50ms_while_1mb_prompts_arrive(model_dir, tmp_path):
    """Size and length are checked before tokenizing or the safety check, and a big body is
    parsed off the event loop: 1 MB prompts cannot stall the server."""
    (tmp_path / "policy.yaml").write_text("classifier: false\n")
    flags = ("--policy", str(tmp_path / "policy.yaml"), "--max-body-bytes", "2000000")
    big = "x" * 1_000_000
    bodies = [
        ("/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": big}]})),
        ("/v1/completions", json.dumps({"prompt": big})),
    ]
    with superlab_serve(model_dir, *flags) as (_, url):
        stop = time.monotonic() + 5
        codes: list[int] = []

        def flood() -> None:
            with httpx.Client(base_url=url, headers=H, timeout=30) as c:
                while time.monotonic() < stop:
                    for route, raw in bodies:
                        codes.append(c.post(route, content=raw.encode()).status_code)

        threads = [threading.Thread(target=flood) for _ in range(2)]
        for t in threads:
            t.start()
        lat = []
        with httpx.Client(base_url=url, timeout=5) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                assert c.get("/health").status_code == 200
                lat.append(time.perf_counter() - t0)
                time.sleep(0.01)
        for t in threads:
            t.join()
    lat.sort()
    p99 = lat[int(0.99 * (len(lat) - 1))]
    assert len(codes) >= 10 and set(codes) == {400}
    assert p99 < 0.050, (p99, lat[len(lat) // 2], len(lat))


def test_sigterm_drains_in_flight_requests_then_exits(sliding_run):
    with superlab_serve(sliding_run) as (proc, url):
        client = httpx.Client(base_url=url, headers=H, timeout=30)
        # max_tokens 50,000 passes only because the recipe raised serve.max_tokens_limit.
        # Greedy: a fixed text (a loop the policy allows), not a random one it might cut.
        long_body = {"prompt": "The history of", "max_tokens": 50_000, "temperature": 0}
        long_body["stream"] = True
        # Greedy too: a sampled six tokens may end early at end-of-text ("stop").
        short_body = {"prompt": "The history of", "max_tokens": 6, "temperature": 0}
        short_body["stream"] = True
        with (
            client.stream("POST", "/v1/completions", json=long_body) as long,
            client.stream("POST", "/v1/completions", json=short_body) as short,
        ):
            assert long.status_code == 200 and short.status_code == 200
            long_lines, short_lines = long.iter_lines(), short.iter_lines()
            next(ln for ln in long_lines if ln.startswith("data: {"))  # both in flight
            next(ln for ln in short_lines if ln.startswith("data: {"))
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            refused = client.post("/v1/completions", json={"prompt": "hi", "max_tokens": 2})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "server_shutting_down"
            assert httpx.get(url + "/health").json()["status"] == "draining"
            short_events = _sse(short_lines)
            long_events = _sse(long_lines)
        assert short_events[-1] == "[DONE]" and "error" not in short_events[-2]
        assert short_events[-2]["choices"][0]["finish_reason"] == "length"
        assert long_events[-1] == "[DONE]"
        assert long_events[-2].get("error", {}).get("code") == "server_shutdown", long_events[-2]
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 3 + 6  # the drain deadline, then a prompt exit
