"""lm-evaluation-harness's ``local-completions`` grades the server with no adapter code.

A tiny local loglikelihood task (``data/lm_eval_tiny.jsonl``) is scored through the HTTP
server (remote tokenizer backend: ``/tokenizer_info``, ``/tokenize``, echo + logprobs)
and must give the log-likelihoods computed in-process from the same model.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi", reason="the server needs the serve extra")
lm_eval = pytest.importorskip("lm_eval", reason="needs lm-eval (dev extra)")

from superlab.serve.app import create_app  # noqa: E402
from superlab.serve.auth import ApiKey  # noqa: E402
from superlab.serve.load import BackgroundServer, load_served  # noqa: E402
from superlab.serve.safety import Policy  # noqa: E402
from superlab.serve.safety.rules import RuleCheck  # noqa: E402

DATA = Path(__file__).parent / "data" / "lm_eval_tiny.jsonl"
TASK = """task: superlab_tiny
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "{{{{context}}}}"
doc_to_target: "{{{{continuation}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def in_process_loglikelihood(served, context: str, continuation: str) -> float:
    """sum log p(continuation | context), split as lm-eval splits a pair into tokens."""
    tok = served.tokenizer
    whole = tok.encode(context + continuation).ids
    n_ctx = len(tok.encode(context).ids)
    with torch.no_grad():
        lp_TV = torch.log_softmax(served.model(torch.tensor([whole])).logits_BTV[0].float(), -1)
    return sum(float(lp_TV[t - 1, whole[t]]) for t in range(n_ctx, len(whole)))


def test_lm_eval_local_completions_matches_in_process(model_dir, tmp_path, monkeypatch):
    import json

    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("OPENAI_API_KEY", "sk-eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    (tmp_path / "superlab_tiny.yaml").write_text(TASK.format(data=DATA))
    served = load_served(model_dir)
    app = create_app(
        served.model,
        served.tokenizer,
        name=served.name,
        max_seq_len=64,
        keys=[ApiKey("sk-eval")],
        policy=Policy(checks=[RuleCheck.default()]),
    )
    with BackgroundServer(app) as s:
        out = lm_eval.simple_evaluate(
            model="local-completions",
            model_args={
                "model": served.name,
                "base_url": s.url + "/v1/completions",
                "tokenizer_backend": "remote",
                "auth_token": "sk-eval",
                "max_length": 64,
                "num_concurrent": 2,
            },
            tasks=["superlab_tiny"],
            task_manager=TaskManager(include_path=str(tmp_path)),
            log_samples=True,
        )
    samples = out["samples"]["superlab_tiny"]
    docs = [json.loads(line) for line in DATA.read_text().splitlines()]
    assert len(samples) == len(docs)
    served_ll = {s["doc"]["context"]: float(s["resps"][0][0][0]) for s in samples}
    for doc in docs:
        want = in_process_loglikelihood(served, doc["context"], doc["continuation"])
        assert math.isclose(served_ll[doc["context"]], want, abs_tol=1e-4), doc
    # The in-process adapter (superlab.eval.lm_eval_adapter) gives the same numbers.
    pytest.importorskip("superlab.eval.lm_eval_adapter")
    ours = lm_eval.simple_evaluate(
        model="superlab",
        model_args={"path": str(model_dir)},
        tasks=["superlab_tiny"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        log_samples=True,
    )
    for s in ours["samples"]["superlab_tiny"]:
        ll = float(s["resps"][0][0][0])
        assert math.isclose(served_ll[s["doc"]["context"]], ll, abs_tol=1e-4), s["doc"]
