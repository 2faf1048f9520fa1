"""Turning a trained model into answers: one decode engine, an OpenAI-compatible HTTP
server, a safety policy and sampling.

- ``engine``: the one decode loop (continuous batching over the model's KV cache);
  ``scheduler`` runs it on a worker thread for the server.
- ``generate``: ``Generator(model, tokenizer, max_seq_len).generate(prompt, params)``,
  in-process text in and text out through the engine; the ``serve`` stage (``stage``)
  answers the recipe's sample prompts with it.
- ``sampling`` (greedy, temperature, top-k, top-p, penalties, logit bias) and ``text``
  (incremental detokenization, stop strings).
- The server (``superlab serve``, ``load``): ``app`` (routes), ``keycheck`` (API keys,
  ``auth``), ``admission`` (request checks and limits), ``handling`` (requests to engine
  runs, output checks), ``responses`` (OpenAI's JSON and SSE shapes), ``lifecycle``
  (draining, shutdown), ``metrics``, ``protocol`` (request schemas, the chat template).
- ``safety``: the input and output policy (rules, classifier, optional Llama Guard, the
  minor-safety floor).
"""
