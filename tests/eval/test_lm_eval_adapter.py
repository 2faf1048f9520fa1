"""The lm-eval adapter, offline: local task YAMLs and data in tests/eval/data/lm_eval."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from superlab.common import RunDir
from superlab.eval.lm import Scorer

from .helpers import tiny_model, tokenizer, write_checkpoint

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install lm-eval)")

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "tests" / "eval" / "data" / "lm_eval"
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunDir:
    root = tmp_path_factory.mktemp("lm_eval")
    run = RunDir(root / "runs" / "tiny")
    tok = tokenizer(root / "tok.json")
    run.tokenizer_dir.mkdir(parents=True)
    shutil.copy(root / "tok.json", run.tokenizer)
    write_checkpoint(run, tiny_model(tok.get_vocab_size(), max_seq_len=64), 3)
    return run


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for k, v in {**OFFLINE, "HF_DATASETS_CACHE": str(tmp_path / "hf")}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(REPO)  # the task YAMLs name their data relative to the repo


def _direct_logprob(model, ids: list[int], n_cont: int) -> float:
    """Sum of log p over the last ``n_cont`` tokens of ``ids``, one forward pass."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids[:-1]])).logits_BTV[0].float(), -1)
    return sum(float(logp[t - 1, ids[t]]) for t in range(len(ids) - n_cont, len(ids)))


def test_loglikelihoods_match_our_own_scoring(run, offline):
    from lm_eval.tasks import TaskManager

    import superlab.eval.lm_eval_adapter as adapter

    res = lm_eval.simple_evaluate(
        model="superlab",
        model_args=f"path={run.root}",
        tasks=["superlab_tiny_mc", "superlab_tiny_rolling", "superlab_tiny_gen"],
        task_manager=TaskManager(include_path=str(TASKS), include_defaults=False),
        log_samples=True,
        batch_size=2,
    )
    assert lm_eval.api.registry.get_model("superlab") is adapter.SuperlabLM
    lm = adapter.SuperlabLM(path=str(run.root))
    model, enc = lm.scorer.model, lm.scorer.encode
    eos = lm.scorer.eos_id

    mc = res["samples"]["superlab_tiny_mc"]
    assert len(mc) == 3
    for sample in mc:
        for (context, continuation), resp in zip(sample["arguments"], sample["resps"], strict=True):
            ids, n = enc(context) + enc(continuation), len(enc(continuation))
            assert resp[0][0] == pytest.approx(_direct_logprob(model, ids, n), abs=1e-4)
    assert 0.0 <= res["results"]["superlab_tiny_mc"]["acc,none"] <= 1.0

    for sample in res["samples"]["superlab_tiny_rolling"]:
        ids = [eos, *enc(sample["doc"]["text"])]
        want = _direct_logprob(model, ids, len(ids) - 1)
        assert sample["resps"][0][0] == pytest.approx(want, abs=1e-4)

    for sample in res["samples"]["superlab_tiny_gen"]:
        ids = enc(sample["arguments"][0][0])
        new: list[int] = []
        for _ in range(6):  # greedy, by hand
            with torch.no_grad():
                nxt = int(model(torch.tensor([ids + new])).logits_BTV[0, -1].argmax())
            if nxt == eos:
                break
            new.append(nxt)
        text = lm.scorer.decode(new).split("\n")[0].split(".")[0]
        assert sample["resps"][0][0] == text


def test_rolling_windows_past_max_seq_len(run):
    tok_model = tiny_model(400, max_seq_len=16)
    from superlab.data.tokenizer import load_tokenizer

    scorer = Scorer(tok_model, load_tokenizer(run.tokenizer), max_seq_len=16)
    ids = list(range(5, 45))  # 40 tokens: windows predict 1-16, 17-32, then 33-39
    got = scorer.token_logprobs(ids)
    want = []
    for lo, hi, ctx_from in ((1, 17, 0), (17, 33, 16), (33, 40, 23)):
        window = ids[ctx_from:hi]
        with torch.no_grad():
            logp = torch.log_softmax(tok_model(torch.tensor([window[:-1]])).logits_BTV[0], -1)
        want += [float(logp[t - ctx_from - 1, ids[t]]) for t in range(lo, hi)]
    assert len(got) == 39
    assert got.tolist() == pytest.approx(want, abs=1e-5)


@pytest.mark.slow  # about 20 s: the lm_eval command line indexes all of its built-in tasks
def test_the_command_line_knows_the_superlab_model(run, tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "superlab.eval.lm_eval_adapter", "run",
        "--model", "superlab", "--model_args", f"path={run.root}",
        "--tasks", "superlab_tiny_mc", "--include_path", str(TASKS),
        "--output_path", str(out), "--batch_size", "2",
    ]  # fmt: skip
    env = {**os.environ, **OFFLINE, "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in out.rglob("results*.json")]
    assert len(results) == 1
    assert "acc,none" in results[0]["results"]["superlab_tiny_mc"]
