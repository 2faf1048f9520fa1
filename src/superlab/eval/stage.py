"""The ``eval`` stage: run the recipe's eval section on the newest checkpoint, write ``eval.json``.

``eval.json`` (written atomically) holds the checkpoint's identity (path, step, weights
sha256), ``settings`` (per evaluator: eval data, prompt format, decoding; see
``superlab.eval.compare``) and one summary per evaluator: ``heldout``, ``probes``,
``hle``, ``contamination``, ``vqa`` (an image-task run: ``superlab.eval.vqa``). Per-item
rows go to ``eval/<evaluator>.jsonl`` beside it.

``superlab eval`` runs ``run`` in ``eval_context(recipe, runs_dir)``: on an existing run,
whatever its completion marker says, with a recipe whose ``eval`` section may differ
from the run's (evaluating a trained model again with new probes is the point).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superlab.common import RunDir, StageContext, StageError, atomic_write_json, atomic_write_text
from superlab.common.ckpt import latest_checkpoint
from superlab.common.rundir import stored_recipe_changes
from superlab.config import Recipe
from superlab.config.recipe import ProbeEvalConfig, ProbeSpec
from superlab.data.probes import make_items
from superlab.data.tokenizer import load_tokenizer
from superlab.eval import contamination, hle, vqa
from superlab.eval.lm import Scorer
from superlab.eval.mixture import heldout_by_source, mixture_usage
from superlab.eval.perplexity import heldout_stream, perplexity
from superlab.eval.probes.score import score_items, summarize
from superlab.model import load_model
from superlab.model.attention_kinds import get_kind

# The probe prompt format; bump the version when the text of items changes.
PROBE_FORMAT = "superlab-probes/2: EOS + context + query ('? key', '?? key', passkey question)"
PROBE_DECODING = {"method": "greedy", "check": "teacher-forced exact match of every answer token"}


def file_hash(*paths: Path) -> str:
    """sha256 over the bytes of ``paths``, in order."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def weights_hash(ckpt: Path) -> str:
    """sha256 of the checkpoint's ``model.safetensors``: which weights a result belongs to."""
    return file_hash(ckpt / "model.safetensors")


def _split_files(shards: Path, split: str) -> list[Path]:
    index = json.loads((shards / "index.json").read_text())
    return [shards / e["file"] for e in index["splits"].get(split) or []]


def _chunk_sizes(model: torch.nn.Module, cfg: ProbeEvalConfig) -> list[int]:
    """The model's own chunk sizes (its kinds' ``segment``) and the configured ones, ascending."""
    mc = model.cfg  # type: ignore[attr-defined]
    segments = (get_kind(a.kind).segment(a) for a in map(mc.attention_for, range(mc.n_layers)))
    own = {c for c in segments if c is not None}
    return sorted(own | set(cfg.chunk_sizes))


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _probes(ctx: StageContext, scorer: Scorer, result: dict[str, Any]) -> list[Any]:
    cfg = ctx.recipe.eval.probes
    assert cfg is not None
    spec = ProbeSpec(**cfg.model_dump(include=set(ProbeSpec.model_fields)))
    chunks = _chunk_sizes(scorer.model, cfg)
    kinds: dict[str, Any] = {}
    all_rows, audit_items = [], []
    with ctx.progress("probes", total=len(spec.kinds)) as bar:
        for kind in spec.kinds:
            items = make_items(kind, spec, cfg.seed, cfg.items)
            rows, skipped = score_items(items, scorer, chunks)
            kinds[kind] = {**summarize(rows, items[0].chance, chunks), "skipped": skipped}
            all_rows += rows
            correct = {r["id"]: float(r["correct"]) for r in rows}
            audit_items += [
                contamination.AuditItem(it.id, it.prompt + it.answer, correct[it.id])
                for it in items
                if it.id in correct
            ]
            bar.advance(1)
            ctx.log.info(
                "probes %s: accuracy %s over %d items (chance %g)",
                kind,
                _pct(kinds[kind]["accuracy"]),
                kinds[kind]["n"],
                kinds[kind]["chance"],
            )
    _write_rows(ctx.run.root / "eval" / "probes.jsonl", all_rows)
    result["settings"]["probes"] = {
        "prompt_format": PROBE_FORMAT,
        "decoding": PROBE_DECODING,
        "seed": cfg.seed,
        "items": cfg.items,
        "spec": spec.model_dump(mode="json"),
        # The configured sizes only: the model's own are a property of the model.
        "chunk_sizes": sorted(cfg.chunk_sizes),
    }
    result["probes"] = {"chunk_sizes": chunks, "kinds": kinds}
    return audit_items


def _hle(ctx: StageContext, scorer: Scorer, result: dict[str, Any]) -> list[Any]:
    cfg = ctx.recipe.eval.hle
    assert cfg is not None
    path = Path(cfg.path)
    items, skipped = hle.read_items(path, cfg.limit)
    if not items:
        raise StageError(f"{path}: no text-only items to score (skipped: {skipped})")
    with ctx.progress("HLE items", total=None):
        rows = hle.score(items, scorer, cfg.prompt, cfg.max_new_tokens)
    _write_rows(ctx.run.root / "eval" / "hle.jsonl", rows)
    result["settings"]["hle"] = {
        "file_sha256": file_hash(path),  # the items, wherever the file lives
        "prompt": cfg.prompt,
        "decoding": {"method": "greedy", "max_new_tokens": cfg.max_new_tokens, "stop": "newline"},
        "multiple_choice": "argmax log-likelihood over the listed letters",
        "limit": cfg.limit,
        "calibration_bin": cfg.calibration_bin,
    }
    result["hle"] = {**hle.summarize(rows, cfg.calibration_bin), "skipped": skipped}
    result["hle"]["file"] = str(path)
    ctx.log.info("HLE: accuracy %s over %d items", _pct(result["hle"]["accuracy"]), len(rows))
    correct = {r["id"]: float(r["correct"]) for r in rows}
    return [
        contamination.AuditItem(it.id, f"{it.question} {it.answer}", correct[it.id]) for it in items
    ]


def _contamination(
    ctx: StageContext, scorer: Scorer, sets: dict[str, list[Any]], result: dict[str, Any]
) -> None:
    cfg = ctx.recipe.eval.contamination
    assert cfg is not None
    shards = ctx.run.shards
    index = contamination.NGramIndex.build(
        shards, ctx.run.root / "eval" / f"ngrams-{cfg.ngram}", cfg.ngram
    )
    out: dict[str, Any] = {}
    all_rows = []
    for name, items in sets.items():
        report = contamination.audit(index, items, scorer.tokenizer, cfg.min_overlap)
        mink = contamination.min_k_scores(scorer, [it.text for it in items], cfg.min_k_percent)
        rows = report.pop("rows")
        for row, score in zip(rows, mink, strict=True):
            row["min_k"] = score
            row["set"] = name
        flagged = [r["min_k"] for r in rows if r["contaminated"]]
        clean = [r["min_k"] for r in rows if r["contaminated"] is False]
        report["min_k_clean"] = float(np.mean(clean)) if clean else None
        report["min_k_contaminated"] = float(np.mean(flagged)) if flagged else None
        out[name] = report
        all_rows += rows
        ctx.log.info(
            "contamination %s: %d of %d items share >= %.0f%% of their %d-grams with train",
            name,
            report["contaminated"],
            report["items"],
            100 * cfg.min_overlap,
            cfg.ngram,
        )
    if not sets:
        ctx.log.warning("contamination: no eval set configured (eval.probes or eval.hle)")
    _write_rows(ctx.run.root / "eval" / "contamination.jsonl", all_rows)
    result["settings"]["contamination"] = {
        "ngram": cfg.ngram,
        "min_overlap": cfg.min_overlap,
        "min_k_percent": cfg.min_k_percent,
        "sets": sorted(sets),
    }
    # Which training data was audited: a fact about the run, not a setting (runs trained
    # on different data are compared exactly to see which one leaked).
    out["train_sha256"] = file_hash(shards / "index.json")
    result["contamination"] = out


def _vqa(ctx: StageContext, model: torch.nn.Module, result: dict[str, Any]) -> None:
    cfg = ctx.recipe.eval.vqa
    assert cfg is not None
    images = ctx.run.data / "images"
    if not (images / "heldout.done").is_file():
        raise StageError(f"eval.vqa: {images}/heldout.done is missing; run the data stage")
    control = None
    if cfg.control:
        path = latest_checkpoint(ctx.run.ckpt / vqa.CONTROL)
        if path is None:
            raise StageError(
                f"eval.vqa.control: no checkpoint under {ctx.run.ckpt / vqa.CONTROL}; the train"
                " stage trains the control when eval.vqa.control is set"
            )
        control = load_model(path, next(model.parameters()).device)
        result["settings"]["vqa_control"] = {
            "checkpoint": str(path.relative_to(ctx.run.root)),
            "weights_sha256": weights_hash(path),
        }
    with ctx.progress("held-out VQA", total=None):
        summary, rows = vqa.evaluate(model, control, images, cfg.batch_size)
    _write_rows(ctx.run.root / "eval" / "vqa.jsonl", rows)
    result["settings"]["vqa"] = {
        "metric": "held-out exact match of the greedy answer (teacher-forced argmax on every"
        " answer token and <eos>), per question type",
        "heldout_sha256": file_hash(images / "heldout.tokens.npz", images / "heldout.pixels.npy"),
        "control": cfg.control,
    }
    result["vqa"] = summary
    v = summary["vision"]["all"]
    if control is None:
        ctx.log.info("VQA: held-out exact match %s", _pct(v))
    else:
        ctx.log.info(
            "VQA: held-out exact match %s with images, %s text-only: gain %+.3f",
            _pct(v),
            _pct(summary["text_only"]["all"]),
            summary["gain"],
        )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def run(ctx: StageContext) -> dict[str, Any]:
    """Evaluate the newest checkpoint of the run as the recipe's eval section says."""
    ckpt = latest_checkpoint(ctx.run.ckpt)
    if ckpt is None:
        raise StageError(f"no complete checkpoint under {ctx.run.ckpt}; run the train stage first")
    cfg = ctx.recipe.eval
    device = "cuda" if ctx.recipe.train.device != "cpu" and torch.cuda.is_available() else "cpu"
    model = load_model(ckpt, device)
    step = json.loads((ckpt / "state.json").read_text()).get("step")
    result: dict[str, Any] = {
        "checkpoint": str(ckpt.relative_to(ctx.run.root)),
        "step": step,
        "weights_sha256": weights_hash(ckpt),
        "torch": torch.__version__,
        "settings": {},
    }
    if cfg.perplexity and ctx.recipe.data.images is not None:
        raise StageError(
            "eval.perplexity needs text shards, which an image-task run (data.images) does not"
            " have; set eval.perplexity: false and score it with eval.vqa"
        )
    if cfg.vqa is not None:
        _vqa(ctx, model, result)
    if cfg.perplexity:
        tokens, text_bytes = heldout_stream(ctx.run.shards)
        seq_len = ctx.recipe.train.seq_len
        with ctx.progress("held-out perplexity", total=None):
            result["heldout"] = perplexity(
                model, tokens, text_bytes, seq_len, batch_size=8, max_batches=cfg.batches
            )
        result["heldout"]["seq_len"] = seq_len
        result["settings"]["heldout"] = {
            "seq_len": seq_len,
            "batches": cfg.batches,
            "heldout_sha256": file_hash(*_split_files(ctx.run.shards, "heldout")),
        }
        if ctx.recipe.data.sources:  # a mixture: each source's held-out text on its own
            result["heldout_by_source"] = heldout_by_source(
                model, ctx.run.shards, seq_len, cfg.batches
            )
        h = result["heldout"]
        ctx.log.info(
            "held-out loss %.4f, perplexity %.2f, %.3f bits/byte over %d tokens",
            h["loss"],
            h["perplexity"],
            h["bits_per_byte"],
            h["tokens_scored"],
        )
    if ctx.recipe.data.sources:  # planned and realised shares, epochs used
        state = json.loads((ckpt / "state.json").read_text())
        result["mixture"] = mixture_usage(ctx.recipe, state)
    sets: dict[str, list[Any]] = {}
    if cfg.probes is not None or cfg.hle is not None:
        batch = cfg.probes.batch_size if cfg.probes is not None else 16
        scorer = Scorer(model, load_tokenizer(ctx.run.tokenizer), model.cfg.max_seq_len, batch)
        if cfg.probes is not None:
            sets["probes"] = _probes(ctx, scorer, result)
        if cfg.hle is not None:
            sets["hle"] = _hle(ctx, scorer, result)
        if cfg.contamination is not None:
            _contamination(ctx, scorer, sets, result)
    elif cfg.contamination is not None:
        ctx.log.warning("contamination: no eval set configured (eval.probes or eval.hle)")
    post = {
        stage: json.loads(path.read_text())
        for stage in ("sft", "pref")
        if (path := ctx.run.root / stage / "eval.json").is_file()
    }
    if post:  # what the post-training stages measured (held-out chat loss, pass@k)
        result["post"] = post
    atomic_write_json(ctx.run.eval, result)
    return _summary(result)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"step": result["step"]}
    if "heldout" in result:
        summary |= {k: result["heldout"][k] for k in ("loss", "perplexity", "bits_per_byte")}
    for kind, s in (result.get("probes") or {}).get("kinds", {}).items():
        summary[f"{kind}_accuracy"] = s["accuracy"]
    if "hle" in result:
        summary["hle_accuracy"] = result["hle"]["accuracy"]
    if "vqa" in result:
        summary["vqa_accuracy"] = result["vqa"]["vision"]["all"]
        if "gain" in result["vqa"]:
            summary["vqa_gain_over_text_only"] = result["vqa"]["gain"]
    for name, c in (result.get("contamination") or {}).items():
        if isinstance(c, dict):  # one report per eval set, beside train_sha256
            summary[f"{name}_contaminated"] = c["contaminated"]
    return summary


def eval_context(recipe: Recipe, runs_dir: str | Path) -> StageContext:
    """The context ``superlab eval`` runs ``run`` in: an existing run of ``recipe``.

    The run's recipe.yaml must equal ``recipe`` outside the ``eval`` section.
    """
    run_dir = RunDir(Path(runs_dir) / recipe.name)
    try:
        found = stored_recipe_changes(run_dir, recipe.resolved(), ignore=("eval",))
    except ValueError as e:
        raise StageError(str(e)) from None
    if found is None:
        raise StageError(f"{run_dir.root}: no run here (no recipe.yaml); run `superlab run` first")
    changed, _ = found  # data.workers and the like never block it
    if changed:
        raise StageError(
            f"{run_dir.recipe} differs from the recipe outside its eval section: "
            + "; ".join(changed[:5])
        )
    log = logging.getLogger("superlab.eval")
    log.setLevel(logging.INFO)
    return StageContext(recipe=recipe, run=run_dir, log=log)


def evaluate(recipe: Recipe, runs_dir: str | Path) -> dict[str, Any]:
    """``superlab eval`` without the display: evaluate the run of ``recipe``; the summary."""
    return run(eval_context(recipe, runs_dir))
