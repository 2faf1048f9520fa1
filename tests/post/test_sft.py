"""The sft stage: assistant-only gradients, rejects, checkpoints, Hugging Face init."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from superlab.common import RunDir, StageContext
from superlab.common.ckpt import list_checkpoints
from superlab.model.hf import export_hf
from superlab.model.io import load_model
from superlab.post.sft import SFTStage, run
from superlab.train.metrics import read_rows

from .conftest import chat_rows, make_pretrained, sft_recipe, write_jsonl
from .kill import kill_then_resume, rows


def test_no_gradient_reaches_a_non_assistant_position(tmp_path):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows())
    recipe = sft_recipe([str(data)])
    stage = SFTStage(recipe, run_dir, StageContext(recipe=recipe, run=run_dir).log)
    job = stage.build(0, 1, torch.device("cpu"))
    model = job.init()
    batch = job.loader.next_batch()
    seen = {}

    def keep(module, inputs, output):  # the final norm's output: one vector per position
        output.retain_grad()
        seen["h"] = output

    model.norm.register_forward_hook(keep)
    job.objective.loss(model, batch).loss.backward()
    grad_BT = seen["h"].grad.abs().sum(-1)
    target_BT = batch.y_BT != -100
    assert target_BT.any() and (~target_BT).any()
    assert torch.all(grad_BT[~target_BT] == 0)  # exactly zero, not small
    assert torch.all(grad_BT[target_BT] > 0)


def test_malformed_rows_go_to_rejects_with_file_line_and_reason(tmp_path):
    run_dir = make_pretrained(tmp_path)
    good = chat_rows(8)
    bad = [
        {"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]},
        {"prompt": "long " * 200, "completion": "answer"},
    ]
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(r) for r in good[:4] + bad + good[4:]]
    lines.insert(2, "{not json")
    path.write_text("\n".join(lines) + "\n")
    parquet = tmp_path / "more.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "2 + 2?", "completion": "4"}] * 3), parquet)
    recipe = sft_recipe([str(path), str(parquet)], steps=2)
    summary = run(StageContext(recipe=recipe, run=run_dir))
    rejects = [
        json.loads(x) for x in (run_dir.root / "sft" / "rejects.jsonl").read_text().split("\n") if x
    ]
    assert [(r["file"], r["line"]) for r in rejects] == [(str(path), n) for n in (3, 6, 7, 8, 9)]
    reasons = [r["reason"] for r in rejects]
    assert reasons[0].startswith("not JSON")
    assert reasons[1].startswith("unknown role: messages[0] is 'wizard'")
    assert reasons[2] == "no assistant turn"
    assert reasons[3].startswith("empty content")
    assert reasons[4].startswith("longer than allowed")
    assert summary["rejected"] == 5 and summary["rows"] == 8 + 5 + 3
    assert summary["rejected_by_reason"]["longer than allowed"] == 1
    assert summary["train_examples"] + summary["heldout_examples"] == 11


def test_sft_checkpoints_under_ckpt_sft_and_tags_its_metrics(tmp_path):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows())
    summary = run(StageContext(recipe=sft_recipe([str(data)]), run=run_dir))
    assert [s for s, _ in list_checkpoints(run_dir.ckpt / "sft")] == [4, 8]
    assert [s for s, _ in list_checkpoints(run_dir.ckpt)] == [10]  # pre-training's, untouched
    rows = read_rows(run_dir.metrics)
    assert {r["stage"] for r in rows} == {"sft"}
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))
    assert summary["heldout_loss"] is not None and summary["steps"] == 8
    assert (run_dir.ckpt / "sft" / "tokenizer.json").is_file()
    start = load_model(run_dir.ckpt / "step-10")
    tuned = load_model(run_dir.ckpt / "sft" / "step-8")
    assert not torch.equal(start.tok_emb.weight, tuned.tok_emb.weight)


def test_init_from_a_hugging_face_folder(tmp_path):
    pre = make_pretrained(tmp_path / "pre", seed=3)
    hf = tmp_path / "hf"
    export_hf(load_model(pre.ckpt / "step-10"), hf, "llama")
    (hf / "tokenizer.json").write_text(pre.tokenizer.read_text())
    run_dir = RunDir(tmp_path / "run")
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows())
    recipe = sft_recipe([str(data)], steps=1)
    recipe.sft.init = str(hf)
    stage = SFTStage(recipe, run_dir, StageContext(recipe=recipe, run=run_dir).log)
    model = stage.build(0, 1, torch.device("cpu")).init()
    want = load_model(pre.ckpt / "step-10").state_dict()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in want.items())
    run(StageContext(recipe=recipe, run=run_dir))
    assert list_checkpoints(run_dir.ckpt / "sft")


def test_an_unknown_init_is_refused_in_one_line(tmp_path):
    run_dir = make_pretrained(tmp_path)
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows())
    recipe = sft_recipe([str(data)])
    recipe.sft.init = str(tmp_path / "nowhere")
    with pytest.raises(Exception, match="is not 'run', 'sft', 'pref', 'rl', a Hugging Face folder"):
        run(StageContext(recipe=recipe, run=run_dir))


def test_sigkill_at_a_random_step_then_resume_is_exact(tmp_path):
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows(40))
    recipe = sft_recipe([str(data)], steps=14, threads=1, eval_every=5)
    reference = make_pretrained(tmp_path / "reference")
    run(StageContext(recipe=recipe, run=reference))

    run_dir = make_pretrained(tmp_path / "runs" / "tiny")
    where = kill_then_resume(tmp_path, recipe, "sft", run_dir, 14)
    assert rows(run_dir) == rows(reference), where  # floats compared exactly


def test_serve_loads_the_newest_post_trained_checkpoint_with_its_tokenizer(tmp_path):
    from superlab.serve.load import load_served

    run_dir = make_pretrained(tmp_path / "tiny")
    data = write_jsonl(tmp_path / "sft.jsonl", chat_rows())
    run(StageContext(recipe=sft_recipe([str(data)], steps=2, ckpt_every=2), run=run_dir))
    served = load_served(run_dir.root)
    tuned = load_model(run_dir.ckpt / "sft" / "step-2")
    assert torch.equal(served.model.tok_emb.weight, tuned.tok_emb.weight)
    assert served.name == "tiny-sft"
    assert served.tokenizer.to_str() == (run_dir.ckpt / "sft" / "tokenizer.json").read_text()
    pre = load_served(run_dir.ckpt / "step-10")  # another checkpoint, named explicitly
    assert torch.equal(
        pre.model.tok_emb.weight, load_model(run_dir.ckpt / "step-10").tok_emb.weight
    )


def test_pass_at_k_is_the_unbiased_estimator():
    from superlab.post.evaluate import pass_at_k

    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == 0.25 and pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(10, 3, 2) == 1 - (7 * 6) / (10 * 9)


def test_sft_on_arithmetic_writes_chat_loss_and_pass_at_k_for_eval(tmp_path):
    from superlab.eval.stage import run as eval_run

    run_dir = make_pretrained(tmp_path)
    arithmetic = {"generate": "arithmetic", "generate_rows": 30}
    recipe = sft_recipe([], arithmetic, steps=2, ckpt_every=2)
    summary = run(StageContext(recipe=recipe, run=run_dir))
    written = json.loads((run_dir.root / "sft" / "eval.json").read_text())
    assert written["heldout_loss"] == summary["heldout_loss"] is not None
    a = written["arithmetic"]
    assert a["items"] == 64 and a["samples"] == 4 and 0 <= a["pass@1"] <= a["pass@4"] <= 1
    recipe.eval.perplexity = False
    eval_run(StageContext(recipe=recipe, run=run_dir))
    assert json.loads(run_dir.eval.read_text())["post"]["sft"] == written
