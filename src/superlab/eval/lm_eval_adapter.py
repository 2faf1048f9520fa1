"""lm-evaluation-harness model type ``superlab``: a run's newest checkpoint behind lm_eval's LM API.

    python -m superlab.eval.lm_eval_adapter run --model superlab \\
        --model_args path=runs/<name> --tasks hellaswag

``python -m superlab.eval.lm_eval_adapter`` is lm_eval's own command line (every
option and subcommand as ``lm_eval``) with this model type registered first.
lm-eval 0.4.13 discovers models only from its own ``MODEL_MAPPING`` (no entry
points), so a plain ``lm_eval`` process cannot see ``superlab`` unless something
imports this module; in Python, ``import superlab.eval.lm_eval_adapter`` before
``lm_eval.simple_evaluate(model="superlab", ...)`` is enough.

``model_args``: ``path`` (a run directory, its ``ckpt/`` or a ``step-N`` directory),
optionally ``tokenizer`` (default ``<run>/tokenizer/tokenizer.json``), ``device``,
``batch_size``. All scoring goes through ``superlab.eval.lm.Scorer``, so
lm_eval's log-likelihoods are our own: a (context, continuation) pair is tokenized
as ``encode(context + continuation)`` split after ``encode(context)`` (lm_eval's
rule, trailing spaces of the context moved to the continuation); an empty context
starts with EOS. ``generate_until`` decodes greedily (sampling is refused).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# lm_eval fills its model registry lazily, only while it is empty: import its models first
# so that registering ours does not hide the built-in ones (local-completions, hf, ...).
import lm_eval.models  # noqa: F401
import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from superlab.common.ckpt import resolve_checkpoint
from superlab.data.tokenizer import load_tokenizer
from superlab.eval.lm import Scorer
from superlab.model import load_model


def _tokenizer_path(ckpt: Path) -> Path:
    """``<run>/tokenizer/tokenizer.json`` for ``<run>/ckpt/step-N``."""
    return ckpt.parent.parent / "tokenizer" / "tokenizer.json"


@register_model("superlab")
class SuperlabLM(LM):
    """A superlab checkpoint as an lm_eval ``LM``."""

    def __init__(
        self,
        path: str,
        tokenizer: str | None = None,
        device: str | None = None,
        batch_size: int | str | None = 16,
        **_: Any,  # lm_eval also passes max_batch_size and others we do not use
    ) -> None:
        super().__init__()
        ckpt = resolve_checkpoint(path)
        dev = device or "cuda"
        if dev.startswith("cuda") and not torch.cuda.is_available():
            dev = "cpu"  # lm_eval's CLI passes device "cuda" unless told otherwise
        model = load_model(ckpt, dev)
        tok = load_tokenizer(tokenizer or _tokenizer_path(ckpt))
        size = int(batch_size) if str(batch_size).isdigit() else 16  # "auto" -> 16
        self.checkpoint = ckpt
        self.scorer = Scorer(model, tok, model.cfg.max_seq_len, size)

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        enc = self.scorer.encode
        whole, ctx = enc(context + continuation), enc(context)
        return ctx, whole[len(ctx) :]

    def loglikelihood(
        self, requests: list[Any], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        """``(log p(continuation | context), greedy)`` per request."""
        pairs = [self._pair(*req.args) for req in requests]
        scored = self.scorer.loglikelihood(pairs)
        return [(s.logprob, s.greedy) for s in scored]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of each whole string, EOS as its first context token."""
        out = []
        for req in tqdm(requests, disable=disable_tqdm):
            ids = [self.scorer.eos_id, *self.scorer.encode(req.args[0])]
            out.append(float(self.scorer.token_logprobs(ids).sum()))
        return out

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations, cut before the first ``until`` string."""
        out = []
        for req in tqdm(requests, disable=disable_tqdm):
            context, kwargs = req.args
            kwargs = dict(kwargs or {})
            if kwargs.get("do_sample") or float(kwargs.get("temperature", 0.0) or 0.0) > 0:
                raise ValueError("superlab's lm_eval adapter decodes greedily; sampling asked")
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.get("max_gen_toks", 256))
            prompt = self.scorer.encode(context)
            new = self.scorer.greedy(prompt, max_new, stop_strings=tuple(until))
            text = self.scorer.decode(new)
            for stop in until:
                text = text.split(stop)[0]
            out.append(text)
        return out


def main() -> None:
    """lm_eval's command line with the ``superlab`` model type registered."""
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
