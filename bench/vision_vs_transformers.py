"""Early fusion: vision tower speed against transformers, and what images add on a VQA task.

1. ``vision_encoder_speedup_vs_transformers``: forward + backward of the vision tower and
   projector (``superlab.model.vision.VisionTower``) against transformers'
   ``Llama4VisionModel`` + ``Llama4MultiModalProjector`` holding the same weights (copied
   by our import mapping; outputs checked equal first), fp32 on CPU, transformers' default
   SDPA attention. Median seconds per step over alternating repeats; speedup = theirs / ours.
2. ``vqa_accuracy_gain_over_text_only``: ``recipes/vision-tiny.yaml`` trained on the
   generated shapes task (``superlab.data.images``: train and held-out splits from
   different seeds, written to ``<run-dir>/data/images``), and a text-only control: the same
   model without the tower, same seed, same steps and batches of the same questions,
   without the images. Score: held-out exact match of the greedy answer, per question type
   (teacher-forced argmax on every answer token and ``<eos>``, which is the same thing).
   Written to ``<run-dir>/eval.json``; gain = vision - control overall, absolute.

    .venv/bin/python bench/vision_vs_transformers.py --quick   # ~3 min on 2 cores
    .venv/bin/python bench/vision_vs_transformers.py           # the recipe's steps
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superlab.common.atomic import atomic_write_json
from superlab.config.recipe import ModelConfig, load_recipe
from superlab.config.vision import VisionConfig
from superlab.data.images import shards, text
from superlab.model.hf_arch.llama4_vision import tensor_names
from superlab.model.transformer import Transformer
from superlab.model.vision import VisionTower

ROOT = Path(__file__).resolve().parent.parent
TRAIN_SEED, HELDOUT_SEED = 1, 2


def _speed(quick: bool) -> float:
    from transformers import Llama4Config
    from transformers.models.llama4 import modeling_llama4 as hf

    v = VisionConfig(
        image_size=112,
        patch_size=14,
        d_model=256,
        n_layers=4,
        n_heads=8,
        ffn_hidden=1024,
        projector_dim=512,
    )
    d_text, batch = 384, 16
    config = Llama4Config(
        text_config={"hidden_size": d_text},
        vision_config={
            "hidden_size": v.d_model,
            "num_hidden_layers": v.n_layers,
            "num_attention_heads": v.n_heads,
            "intermediate_size": v.ffn_hidden,
            "image_size": v.image_size,
            "patch_size": v.patch_size,
            "vision_output_dim": v.projector_dim,
            "projector_input_dim": v.projector_dim,
            "projector_output_dim": v.projector_dim,
        },
    )
    torch.manual_seed(0)
    theirs_tower = hf.Llama4VisionModel(config.vision_config).float()
    theirs_proj = hf.Llama4MultiModalProjector(config).float()
    ours = VisionTower(v, d_text)
    their_state = {f"vision_model.{k}": p for k, p in theirs_tower.state_dict().items()}
    their_state |= {f"multi_modal_projector.{k}": p for k, p in theirs_proj.state_dict().items()}
    ours.load_state_dict(
        {o.removeprefix("vision."): their_state[h] for h, o in tensor_names(v)}, strict=True
    )
    x = torch.randn(
        batch, 3, v.image_size, v.image_size, generator=torch.Generator().manual_seed(0)
    )

    def theirs(px: torch.Tensor) -> torch.Tensor:
        return theirs_proj(theirs_tower(px).last_hidden_state)

    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-4, rtol=1e-4)

    def step(fn: Any) -> float:
        px = x.clone().requires_grad_(False)
        t0 = time.perf_counter()
        fn(px).square().mean().backward()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"ours": [], "transformers": []}
    for _ in range(2):  # warm-up
        step(ours), step(theirs)
    for _ in range(5 if quick else 15):
        times["ours"].append(step(ours))
        times["transformers"].append(step(theirs))
    med = {k: statistics.median(t) for k, t in times.items()}
    print(
        f"vision tower + projector fwd+bwd, {batch} images of {v.image_size}px, "
        f"{v.n_layers} layers of {v.d_model}: ours {med['ours'] * 1e3:.1f} ms, "
        f"transformers {med['transformers'] * 1e3:.1f} ms"
    )
    return med["transformers"] / med["ours"]


def _pixels(images: np.ndarray, index: list[int]) -> torch.Tensor:
    x = torch.from_numpy(images[index]).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def _batch(
    rows: list[dict[str, Any]], images: np.ndarray, cfg: ModelConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    v = cfg.vision
    per = v.tokens_per_image if v is not None else 0
    x, y = text.batch(rows, per, image=v is not None)
    px = _pixels(images, [r["image"] for r in rows]) if v is not None else None
    return torch.from_numpy(x), torch.from_numpy(y), px


def _train(cfg: ModelConfig, rows, images, steps: int, recipe) -> Transformer:
    t = recipe.train
    torch.manual_seed(t.seed)
    model = Transformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    order = np.random.default_rng(t.seed)
    start = time.perf_counter()
    for step in range(steps):
        lr = t.lr * min(1.0, (step + 1) / max(1, t.warmup_steps))
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine to 10%
        for g in opt.param_groups:
            g["lr"] = lr
        picked = [rows[i] for i in order.integers(0, len(rows), t.batch_size)]
        x, y, px = _batch(picked, images, cfg)
        loss = model(x, y, pixels_NCHW=px).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            what = "vision" if cfg.vision is not None else "text-only"
            print(
                f"  {what} step {step} loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)"
            )
    return model.eval()


@torch.no_grad()
def _exact_match(model: Transformer, rows, images) -> dict[str, float]:
    right: dict[str, list[bool]] = defaultdict(list)
    for i in range(0, len(rows), 64):
        chunk = rows[i : i + 64]
        x, y, px = _batch(chunk, images, model.cfg)
        pred = model(x, pixels_NCHW=px).logits_BTV.argmax(-1)
        ok = ((pred == y) | (y == -100)).all(dim=1)
        for r, good in zip(chunk, ok.tolist(), strict=True):
            right[r["type"]].append(good)
    out = {k: sum(v) / len(v) for k, v in sorted(right.items())}
    out["all"] = sum(sum(v) for v in right.values()) / len(rows)
    return out


def _vqa(quick: bool, run_dir: Path, threads: int | None) -> float:
    recipe = load_recipe(ROOT / "recipes" / "vision-tiny.yaml")
    torch.set_num_threads(threads or recipe.train.threads or torch.get_num_threads())
    cfg = recipe.model
    assert cfg.vision is not None
    data = run_dir / "data"
    side = cfg.vision.image_size
    n_train, n_held = (1500, 300) if quick else (4000, 500)
    for split, n, seed in (("train", n_train, TRAIN_SEED), ("heldout", n_held, HELDOUT_SEED)):
        print(f"{split}: {shards.build_split(data, split, n, seed, side)}")
    train_images, train_rows = shards.read_split(data, "train")
    held_images, held_rows = shards.read_split(data, "heldout")
    steps = 300 if quick else recipe.train.steps
    scores = {}
    for name, model_cfg in (
        ("vision", cfg),
        ("text_only", cfg.model_copy(update={"vision": None})),
    ):
        t0 = time.perf_counter()
        model = _train(model_cfg, train_rows, train_images, steps, recipe)
        scores[name] = _exact_match(model, held_rows, held_images)
        print(f"{name}: {scores[name]} (trained in {time.perf_counter() - t0:.0f} s)")
    gain = scores["vision"]["all"] - scores["text_only"]["all"]
    atomic_write_json(
        run_dir / "eval.json",
        {
            "vqa_shapes": {
                "metric": "held-out exact match of the greedy answer, per question type",
                "settings": {
                    "recipe": "recipes/vision-tiny.yaml",
                    "steps": steps,
                    "train_images": n_train,
                    "heldout_images": n_held,
                    "seeds": {"train": TRAIN_SEED, "heldout": HELDOUT_SEED},
                    "heldout_questions": len(held_rows),
                },
                "vision": scores["vision"],
                "text_only": scores["text_only"],
                "gain": gain,
            }
        },
    )
    return gain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, steps and images")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "vision-tiny")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-vqa", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads (default: the recipe's)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file
    results = []
    if not args.skip_speed:
        speed = _speed(args.quick)
        ok = "PASS" if speed >= 1.0 else "FAIL"
        results.append(
            f"RESULT vision_encoder_speedup_vs_transformers {speed:.2f} target >= 1.0 {ok}"
        )
    if not args.skip_vqa:
        gain = _vqa(args.quick, args.run_dir, args.threads)
        ok = "PASS" if gain > 0.3 else "FAIL"
        results.append(f"RESULT vqa_accuracy_gain_over_text_only {gain:.3f} target > 0.3 {ok}")
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
