"""The transformer, as math on one device: config in ``__init__``, tensors in ``forward``.

Public API (torch is imported only when one of these is used):

- ``Transformer(cfg: ModelConfig)``; ``forward(idx_BT, targets_BT=None, doc_ids_BT=None,
  cache=None)`` returns ``ModelOutput(logits_BTV, loss, aux_loss, moe_stats)``; with a
  ``model.new_cache()`` it decodes incrementally (``superlab.model.cache``). ``loss`` is the
  mean next-token cross-entropy (None without targets), ``aux_loss`` the weighted
  sum of MoE auxiliary losses (0 for a dense model), ``moe_stats`` one dict per MoE
  layer (tokens per expert, dropped fraction, router entropy).
- ``save_model(model, directory)`` / ``load_model(directory) -> Transformer``:
  ``model.safetensors`` + ``model_config.json``.
- ``superlab.model.counts`` (no torch): parameter and FLOP counts from a ``ModelConfig``.
- ``superlab.model.llama2c.load_llama2c(path, tokenizer_path)``: llama2.c checkpoints.
- Routers (``superlab.model.routers``): token choice, DeepSeek-V3 aux-free, expert choice.
"""

from __future__ import annotations

from superlab.common.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "Transformer": "superlab.model.transformer",
        "ModelOutput": "superlab.model.transformer",
        "save_model": "superlab.model.io",
        "load_model": "superlab.model.io",
    },
)


__all__ = ["ModelOutput", "Transformer", "load_model", "save_model"]
