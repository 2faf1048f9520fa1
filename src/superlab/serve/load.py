"""What ``superlab serve PATH`` serves: a run directory, a checkpoint, or a Hugging Face dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from superlab.common.ckpt import resolve_checkpoint


@dataclass
class Served:
    """A model ready to serve, its tokenizer, context length and public name."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    max_seq_len: int
    name: str


def load_served(path: str | Path) -> Served:
    """Load from a run dir / ``ckpt/`` / ``step-N`` (tokenizer from the run's ``tokenizer/``)
    or from a Hugging Face Llama/Mixtral directory with ``config.json`` + ``tokenizer.json``."""
    p = Path(path)
    if (p / "config.json").is_file():
        from superlab.model.hf import import_hf

        tok_path = p / "tokenizer.json"
        if not tok_path.is_file():
            raise FileNotFoundError(f"{p}: a Hugging Face directory needs tokenizer.json")
        model = import_hf(p)
        return Served(
            model.eval(), Tokenizer.from_file(str(tok_path)), model.cfg.max_seq_len, p.name
        )
    from superlab.model import load_model

    ckpt = resolve_checkpoint(p)
    above = (d / "tokenizer" / "tokenizer.json" for d in ckpt.parents)
    candidates = [ckpt / "tokenizer.json", *above]
    tok_path = next((c for c in candidates if c.is_file()), None)
    if tok_path is None:
        raise FileNotFoundError(f"{ckpt}: no tokenizer.json here or in a tokenizer/ above it")
    model = load_model(ckpt)
    run_name = ckpt.parent.parent.name if ckpt.parent.name == "ckpt" else ckpt.name
    return Served(model.eval(), Tokenizer.from_file(str(tok_path)), model.cfg.max_seq_len, run_name)


def serve(
    path: str | Path,
    host: str,
    port: int,
    keys_file: Path | None,
    policy: str | None,
) -> None:
    """Load, build the app and run uvicorn until interrupted."""
    import os

    import uvicorn

    from superlab.config.recipe import ServeConfig
    from superlab.serve.app import create_app
    from superlab.serve.auth import ENV_VAR, load_keys

    served = load_served(path)
    keys = load_keys(os.environ.get(ENV_VAR), keys_file)
    cfg = ServeConfig(host=host, port=port, policy=policy)
    app = create_app(
        served.model,
        served.tokenizer,
        name=served.name,
        max_seq_len=served.max_seq_len,
        keys=keys,
        cfg=cfg,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")


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
