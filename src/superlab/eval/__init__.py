"""Evaluation of a checkpoint: held-out perplexity, long-context probes, HLE files, contamination.

The shape: an evaluator takes a model (through ``superlab.eval.lm.Scorer``, the one
way we score text) and data it reads or generates itself, and returns per-item rows
and a summary dict; ``stage.run`` runs the evaluators the recipe's ``eval`` section
names, writes the summaries with ``settings`` (eval data, prompt format, decoding) and
the checkpoint's identity (step, weights sha256) into ``eval.json``, and per-item rows
into ``eval/<evaluator>.jsonl``. ``compare`` refuses results whose settings differ.

Modules: ``perplexity``, ``probes`` (recall, multi-hop, passkey; chunk relations),
``contamination`` (n-gram index, Min-K%), ``hle``, ``compare``, ``lm_eval_adapter``
(needs lm-eval), ``stage``. Ablation grids are in ``superlab.ablate``.
"""

from __future__ import annotations

from superlab.common.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {"evaluate": "superlab.eval.stage"})  # torch on use


__all__ = ["evaluate"]
