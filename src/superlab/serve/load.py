"""What ``superlab serve PATH`` serves: a run directory, a checkpoint, or a Hugging Face dir."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from tokenizers import Tokenizer

from superlab.common.ckpt import latest_checkpoint, list_checkpoints, resolve_checkpoint
from superlab.config.recipe import ServeConfig


@dataclass
class Served:
    """A model ready to serve, its tokenizer, context length and public name."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    max_seq_len: int
    name: str
    # Names these weights for the prefix cache: the path plus a digest of its files' names,
    # sizes and modification times (new weights at the same path get a new namespace).
    cache_namespace: str | None = None


def weights_namespace(path: Path) -> str:
    """``path`` and a digest of the files under it (name, size, mtime): changes with the
    weights, costs no read of them."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    files = sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
    for q in files:
        st = q.stat()
        h.update(f"{q.relative_to(path) if path.is_dir() else q.name}:{st.st_size}:".encode())
        h.update(str(st.st_mtime_ns).encode())
    return f"{path.resolve()}#{h.hexdigest()}"


POST_STAGES = ("rl", "pref", "sft")  # newest post-training stage first


def newest_checkpoint(run_or_ckpt: Path) -> Path:
    """A run directory's (or its ``ckpt/``'s) newest post-trained checkpoint (rl, then pref,
    then sft), else its pre-training checkpoint; any other path as given."""
    root = run_or_ckpt / "ckpt" if (run_or_ckpt / "ckpt").is_dir() else run_or_ckpt
    for stage in POST_STAGES:
        found = latest_checkpoint(root / stage)
        if found is not None:
            return found
    return resolve_checkpoint(run_or_ckpt)


def named_checkpoint(run: Path, which: str) -> Path:
    """``superlab serve RUN --checkpoint WHICH``: ``base`` (the newest pre-training
    checkpoint), a post-training stage (``sft``, ``pref``: its newest), or one checkpoint,
    ``step-N`` (pre-training) or ``STAGE/step-N``."""
    root = run / "ckpt"
    if not root.is_dir():
        raise FileNotFoundError(f"--checkpoint needs a run directory; {run} has no ckpt/")
    stages = ("base", *sorted(POST_STAGES))
    stage, _, step = which.partition("/")
    if stage.startswith("step-") and not step:
        stage, step = "base", stage
    if stage not in stages or (step and not step.startswith("step-")):
        raise ValueError(
            f"--checkpoint {which!r}: expected one of {', '.join(stages)}, step-N or STAGE/step-N"
        )
    where = root if stage == "base" else root / stage
    found = where / step if step else latest_checkpoint(where)
    if found is None or not (found / "state.json").is_file():  # none, or not complete
        have = [p.name for _, p in list_checkpoints(where)]
        raise FileNotFoundError(
            f"--checkpoint {which!r}: no checkpoint at {found or where}"
            + (f" (there: {', '.join(have)})" if have else "")
        )
    return found


def load_served(path: str | Path) -> Served:
    """Load from a run dir / ``ckpt/`` (its newest post-trained checkpoint, else pre-trained) /
    ``step-N`` (tokenizer next to it, by its stage's checkpoints, or in the run's
    ``tokenizer/``) or from a Hugging Face directory with ``config.json`` + ``tokenizer.json``."""
    p = Path(path)
    if (p / "config.json").is_file():
        from superlab.model.hf import import_hf

        tok_path = p / "tokenizer.json"
        if not tok_path.is_file():
            raise FileNotFoundError(f"{p}: a Hugging Face directory needs tokenizer.json")
        model = import_hf(p)
        return Served(
            model.eval(),
            Tokenizer.from_file(str(tok_path)),
            model.cfg.max_seq_len,
            p.name,
            weights_namespace(p),
        )
    from superlab.model import load_model

    ckpt = newest_checkpoint(p)
    above = (d / "tokenizer" / "tokenizer.json" for d in ckpt.parents)
    candidates = [ckpt / "tokenizer.json", ckpt.parent / "tokenizer.json", *above]
    tok_path = next((c for c in candidates if c.is_file()), None)
    if tok_path is None:
        raise FileNotFoundError(f"{ckpt}: no tokenizer.json here or in a tokenizer/ above it")
    model = load_model(ckpt)
    run_name = ckpt.parent.parent.name if ckpt.parent.name == "ckpt" else ckpt.name
    if ckpt.parent.name in POST_STAGES and ckpt.parent.parent.name == "ckpt":
        run_name = f"{ckpt.parent.parent.parent.name}-{ckpt.parent.name}"
    tok = Tokenizer.from_file(str(tok_path))
    return Served(model.eval(), tok, model.cfg.max_seq_len, run_name, weights_namespace(ckpt))


def find_recipe(path: str | Path) -> Path | None:
    """The ``recipe.yaml`` of the run that ``path`` (a run dir, its ``ckpt/`` or a
    ``ckpt/step-N/``) belongs to; None for a Hugging Face directory or a bare checkpoint."""
    p = Path(path).resolve()
    for d in (p, p.parent, p.parent.parent):
        if (d / "recipe.yaml").is_file() and (d / "ckpt").is_dir():
            return d / "recipe.yaml"
    return None


def serve_config(path: str | Path, overrides: dict[str, Any]) -> tuple[ServeConfig, dict[str, str]]:
    """The server's settings: the run recipe's ``serve`` section, then ``overrides`` (CLI
    flags that were given); also where each non-default value came from."""
    from superlab.config import load_recipe

    recipe = find_recipe(path)
    base: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if recipe is not None:
        base = load_recipe(recipe).serve.model_dump()
        default = ServeConfig().model_dump()
        sources = {k: str(recipe) for k, v in base.items() if v != default[k]}
    given = {k: v for k, v in overrides.items() if v is not None}
    sources |= {k: "command line" for k in given}
    return ServeConfig.model_validate({**base, **given}), sources


def serve(path: str | Path, cfg: ServeConfig, keys_file: Path | None) -> int:
    """Load, build the app and serve until SIGTERM/SIGINT (drained) or engine death;
    returns the process exit status."""
    import os

    from superlab.serve.app import create_app
    from superlab.serve.auth import ENV_VAR, load_keys

    served = load_served(path)
    keys = load_keys(os.environ.get(ENV_VAR), keys_file)
    app = create_app(
        served.model,
        served.tokenizer,
        name=served.name,
        max_seq_len=served.max_seq_len,
        keys=keys,
        cfg=cfg,
        cache_namespace=served.cache_namespace,
    )
    return run_server(app, cfg.host, cfg.port, cfg.drain_timeout_s)


def run_server(
    app: Any, host: str, port: int, drain_timeout_s: float, log_level: str = "info"
) -> int:
    """Run ``app`` (from ``create_app``) with uvicorn in this thread until it stops.

    The first SIGTERM or SIGINT drains (``Lifecycle.drain``) and then stops; a second one
    stops at once. Returns 0 after a drain, ``ENGINE_DEAD_EXIT`` when the engine died.
    """
    import uvicorn

    from superlab.serve.lifecycle import ENGINE_DEAD_EXIT, Lifecycle

    life: Lifecycle = app.state.life

    class _Server(uvicorn.Server):
        draining = False
        drain_task: asyncio.Task[None] | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.draining or life.loop is None:
                super().handle_exit(sig, frame)  # a second signal, or before startup
                return
            self.draining = True
            loop = life.loop

            def start() -> None:
                self.drain_task = loop.create_task(life.drain(drain_timeout_s))

            loop.call_soon_threadsafe(start)

    # After a drain every stream has had its last event; this bounds the wait for the
    # sockets to close.
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5
    )
    server = _Server(config)
    life.stop = lambda: setattr(server, "should_exit", True)
    server.run()
    return ENGINE_DEAD_EXIT if life.state == "dead" else 0


class BackgroundServer:
    """Run an ASGI app with uvicorn on a daemon thread (tests, benchmarks): a context manager.

    ``port=0`` picks a free port; ``url`` is the base URL once started.
    """

    def __init__(self, app: object, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)

    def __enter__(self) -> BackgroundServer:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the server at {self.url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
